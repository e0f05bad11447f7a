//! `livechat user`: accounts from the command line, used by a running server.

use serde_json::{json, Value};

use crate::harness::*;

const ADA: &str = "ada@example.com";

/// `livechat user ARGS...`, with the password (if any) on stdin.
fn user(url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = livechat(url);
    cmd.env_remove("LIVECHAT_USER_PASSWORD").arg("user").args(args);
    run(cmd, stdin)
}

async fn login(server: &Server, login: &str, password: &str) -> (u16, Value) {
    let body = json!({ "login": login, "password": password });
    let res =
        reqwest::Client::new().post(format!("{}/api/v1/auth/token", server.base)).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn one_line_usage_error(out: &std::process::Output, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(expected), "{expected:?} in {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_created_on_the_command_line_log_in_change_password_and_get_deactivated() {
    let dir = scratch();
    let url = sqlite_url(&dir);
    let mut server = Server::start(&url);

    let out = user(
        &url,
        &["create", "--login", "Ada@Example.com", "--name", "Ada Lovelace", "--language", "fr-be", "--country", "be"],
        "first secret!\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("created operator ada@example.com ("), "{}", stdout(&out));
    let (status, token) = login(&server, ADA, "first secret!").await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["role"], "operator");

    // The flag (or LIVECHAT_USER_PASSWORD) instead of stdin; an admin this time.
    let out = user(
        &url,
        &["create", "--login", "bob@example.com", "--name", "Bob", "--role", "admin", "--password", "bob's secret"],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut cmd = livechat(&url);
    cmd.env("LIVECHAT_USER_PASSWORD", "cy's secret!").args([
        "user",
        "create",
        "--login",
        "cy@example.com",
        "--name",
        "Cy",
    ]);
    assert_eq!(run(cmd, "").status.code(), Some(0));
    assert_eq!(login(&server, "cy@example.com", "cy's secret!").await.0, 200);

    let out = user(&url, &["list", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["login"].as_str().unwrap(), u["role"].as_str().unwrap(), u["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (ADA, "operator", true),
            (ADMIN_LOGIN, "admin", true),
            ("bob@example.com", "admin", true),
            ("cy@example.com", "operator", true)
        ]
    );
    assert_eq!(listed[0]["languages"], json!(["fr_BE"]));
    assert!(!stdout(&out).contains("argon2"), "no password hashes");
    let table = stdout(&user(&url, &["list"], ""));
    assert!(table.starts_with("LOGIN"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with(ADA) && l.contains("Ada Lovelace") && l.contains("operator")),
        "{table}"
    );

    // The server's view picks up users written by another process.
    server.login().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, page) = server.get("/api/v1/users").await;
        assert_eq!(status, 200, "{page}");
        if page["users"].as_array().unwrap().len() == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the users view never showed the new users: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // passwd revokes the old password and the tokens issued with it.
    let out = user(&url, &["passwd", ADA], "second secret\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let old_token = token["access_token"].as_str().unwrap();
    let me =
        reqwest::Client::new().get(format!("{}/api/v1/me", server.base)).bearer_auth(old_token).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 401, "the old token is revoked");
    assert_eq!(login(&server, ADA, "first secret!").await.0, 401);
    assert_eq!(login(&server, ADA, "second secret").await.0, 200);

    let out = user(&url, &["deactivate", ADA], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(login(&server, ADA, "second secret").await.0, 401, "a deactivated user cannot log in");
    let listed: Value = serde_json::from_str(&stdout(&user(&url, &["list", "--json"], ""))).unwrap();
    assert_eq!(listed[0]["active"], false);

    // Operator mistakes: one line, exit code 2, nothing written.
    one_line_usage_error(
        &user(&url, &["create", "--login", "ADA@example.com", "--name", "Again"], "another secret\n"),
        "cannot create user ADA@example.com: this login is already used by another user",
    );
    one_line_usage_error(
        &user(&url, &["create", "--login", "dan@example.com", "--name", "Dan"], "short\n"),
        "password must have at least 10 characters",
    );
    one_line_usage_error(&user(&url, &["create", "--login", "eve@example.com", "--name", "Eve"], ""), "no password");
    one_line_usage_error(
        &user(&url, &["passwd", "nobody@example.com"], "whatever long\n"),
        "no user has the login nobody@example.com",
    );
    one_line_usage_error(&user(&url, &["deactivate", "not-an-email"], ""), "'not-an-email' is not an email address");
    let listed: Value = serde_json::from_str(&stdout(&user(&url, &["list", "--json"], ""))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
