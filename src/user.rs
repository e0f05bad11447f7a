//! `livechat user`: accounts from the command line, written directly to the store with the
//! same use cases as the HTTP API (`commands::accounts`), so the same rules apply; refusals
//! read as the API's problem documents do.

use std::io::{BufRead, IsTerminal, Write};

use api::problem::Problem;
use commands::accounts::{self as users, AccountError, NewUser};
use commands::App;
use store::StoreUrl;

use crate::cli::{PasswordArg, RoleArg, UserCommand};
use crate::failure::Failure;
use crate::store_open::open_migrated;

pub async fn run(url: &StoreUrl, command: UserCommand) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let state = App::new(store.events(), store.views(), commands::Config::default());
    let ctx = users::system_context(&state);
    match command {
        UserCommand::Create(args) => {
            let password = password(args.password, &args.login)?;
            let role = match args.role {
                RoleArg::Admin => "admin",
                RoleArg::Operator => "operator",
            };
            let new = NewUser {
                login: args.login.clone(),
                password,
                name: args.name,
                chat_name: args.chat_name,
                languages: args.languages,
                country: args.country,
                role: Some(role.to_string()),
            };
            let written = users::create_user(&state, &ctx, new)
                .await
                .map_err(|p| failure(&format!("cannot create user {}", args.login), p))?;
            println!("created {role} {} ({})", written.user.login, written.user.user_id);
        }
        UserCommand::Passwd { login, password: arg } => {
            let id =
                users::find_by_login(&state, &login).await.map_err(|p| failure("cannot change the password", p))?;
            let password = password(arg, &login)?;
            users::set_password(&state, &ctx, id, password, None)
                .await
                .map_err(|p| failure(&format!("cannot change the password of {login}"), p))?;
            println!("changed the password of {login}; their tokens are revoked");
        }
        UserCommand::Deactivate { login } => {
            let id = users::find_by_login(&state, &login).await.map_err(|p| failure("cannot deactivate", p))?;
            users::deactivate_user(&state, &ctx, id)
                .await
                .map_err(|p| failure(&format!("cannot deactivate {login}"), p))?;
            println!("deactivated {login}");
        }
        UserCommand::Reactivate { login } => {
            let id = users::find_by_login(&state, &login).await.map_err(|p| failure("cannot reactivate", p))?;
            users::reactivate_user(&state, &ctx, id)
                .await
                .map_err(|p| failure(&format!("cannot reactivate {login}"), p))?;
            println!("reactivated {login}");
        }
        UserCommand::List { json } => {
            let all = users::all_users(&state).await.map_err(|p| failure("cannot list users", p))?;
            let rows = serde_json::to_value(&all).map_err(|e| Failure::Runtime(e.to_string()))?;
            let rows = rows.as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| Failure::Runtime(e.to_string()))?);
            } else {
                print_table(&rows);
            }
        }
    }
    Ok(())
}

/// The password from the flag or environment, else the first line of stdin.
fn password(arg: PasswordArg, login: &str) -> Result<String, Failure> {
    if let Some(p) = arg.password {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // No echo control without a terminal library: say so.
        eprint!("password for {login} (visible as you type): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(Failure::Usage(
            "no password: pass --password, set LIVECHAT_USER_PASSWORD or write it on stdin".to_string(),
        ));
    }
    Ok(line)
}

/// A refused operation as one line: the operator's mistake (exit 2) or a failure (exit 1).
fn failure(what: &str, e: AccountError) -> Failure {
    let p = Problem::from(e);
    let why = if p.errors.is_empty() || p.code != "validation-failed" {
        p.detail.clone()
    } else {
        p.errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
    };
    let message = format!("{what}: {why}");
    if p.status.is_client_error() {
        Failure::Usage(message)
    } else {
        Failure::Runtime(message)
    }
}

fn print_table(rows: &[serde_json::Value]) {
    let columns = ["login", "name", "role", "status", "active", "user_id"];
    let cell = |row: &serde_json::Value, c: &str| match &row[c] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    };
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in rows {
        for (i, c) in columns.iter().enumerate() {
            widths[i] = widths[i].max(cell(row, c).chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| if *c == "user_id" { "ID".to_string() } else { c.to_uppercase() }).collect());
    for row in rows {
        line(columns.iter().map(|c| cell(row, c)).collect());
    }
}
