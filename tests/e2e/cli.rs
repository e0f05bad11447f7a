//! Operator mistakes and the schema: one-line errors, exit code 2.

use crate::harness::*;

#[test]
fn an_unknown_store_url_is_a_one_line_error_with_exit_code_2() {
    let out = run(livechat("mysql://nope"), "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown store 'mysql://nope'"), "{err}");
    assert_eq!(err.trim().lines().count(), 3, "clap's message, usage and hint; no backtrace: {err}");
}

#[test]
fn an_unreachable_database_is_a_one_line_error_with_exit_code_2() {
    let out = run(livechat("postgres://nobody@127.0.0.1:9/none"), "");
    let mut cmd = livechat("postgres://nobody@127.0.0.1:9/none");
    cmd.arg("migrate");
    let out2 = run(cmd, "");
    assert_eq!(out.status.code(), Some(2), "missing subcommand is a usage error");
    assert_eq!(out2.status.code(), Some(2));
    let err = stderr(&out2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("livechat: cannot open store postgres://nobody@127.0.0.1:9/none"), "{err}");
}

#[test]
fn a_bad_flag_exits_with_code_2() {
    let mut cmd = livechat("memory:");
    cmd.args(["serve", "--listen", "not-an-address"]);
    let out = run(cmd, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid value 'not-an-address'"));
}

#[test]
fn migrate_is_idempotent_and_a_newer_schema_is_refused() {
    let dir = scratch();
    let url = sqlite_url(&dir);
    let mut first = livechat(&url);
    first.arg("migrate");
    let out = run(first, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("applied migration 1 (events)"));
    let mut again = livechat(&url);
    again.arg("migrate");
    assert!(stdout(&run(again, "")).contains("schema is up to date"));

    let db = rusqlite::Connection::open(dir.join("livechat.db")).unwrap();
    db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')", []).unwrap();
    for args in [vec!["migrate"], vec!["events", "tail"], vec!["serve", "--listen", "127.0.0.1:0"]] {
        let mut cmd = livechat(&url);
        cmd.args(&args);
        let out = run(cmd, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("schema is at version 99, newer than this binary knows (4)"), "{args:?}: {err}");
    }
}

#[test]
fn help_explains_the_commands() {
    let out = run(livechat("memory:"), "");
    assert_eq!(out.status.code(), Some(2));
    let mut help = livechat("memory:");
    help.arg("--help");
    let text = stdout(&run(help, ""));
    for word in ["serve", "migrate", "events", "projections", "export", "import", "DATABASE_URL"] {
        assert!(text.contains(word), "--help mentions {word}: {text}");
    }
}
