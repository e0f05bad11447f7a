//! A throw-away PostgreSQL for tests (ARCHITECTURE.md section 8).
//!
//! * `DATABASE_URL` set: every [`fresh_database`] is a new database on that server.
//! * Otherwise one cluster, shared by every test process on this machine, is started with the
//!   local binaries (`initdb`/`pg_ctl` on `PATH` or under `/usr/lib/postgresql/*/bin`, as the
//!   `postgres` OS user when running as root) on port 54329 (`LIVECHAT_TEST_PG_PORT`), in
//!   `<temp dir>/livechat-test-pg-<port>`, and left running for the next test process.
//! * Neither: tests are skipped with a message on stderr, or fail when `LIVECHAT_REQUIRE_PG=1`.
//!
//! ```text
//! let Some(url) = store::testkit::pg::fresh_database().await else { return };
//! // or: let url = store::pg_database_or_skip!();
//! ```

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use crate::error::chain;

/// Port of the throw-away cluster unless `LIVECHAT_TEST_PG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 54329;

/// Prefix of the databases [`fresh_database`] creates.
pub const DATABASE_PREFIX: &str = "livechat_test_";

/// Test databases older than this are dropped by the next test process (best effort).
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

const NO_SERVER: &str = "no initdb found (set DATABASE_URL or install PostgreSQL)";

static ADMIN: OnceLock<Option<String>> = OnceLock::new();
static SWEPT: AtomicBool = AtomicBool::new(false);

/// `let url = store::pg_database_or_skip!();` in an async test: a fresh database, or return
/// from the test when no PostgreSQL is available (see the module docs).
#[macro_export]
macro_rules! pg_database_or_skip {
    () => {
        match $crate::testkit::pg::fresh_database().await {
            Some(url) => url,
            None => return,
        }
    };
}

/// URL of a brand-new empty database, or `None` (after saying so on stderr) when there is no
/// PostgreSQL to test against. Panics if PostgreSQL is required or cannot be set up.
pub async fn fresh_database() -> Option<String> {
    let admin = match tokio::task::spawn_blocking(admin_url).await {
        Ok(admin) => admin?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let shown = crate::connect::StoreUrl::Postgres(admin.clone()).to_string();
    let (client, connection) = tokio_postgres::connect(&admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {shown}: {}", chain(&e)));
    let task = tokio::spawn(connection);
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&client).await;
    }
    let name = database_name();
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name} on {shown}: {}", chain(&e)));
    drop(client);
    let _ = task.await;
    Some(with_database(&admin, &name))
}

/// URL of a database to create test databases through (`DATABASE_URL`, or the `postgres`
/// database of the throw-away cluster, started if needed). Blocks while a cluster starts.
pub fn admin_url() -> Option<String> {
    ADMIN
        .get_or_init(|| {
            if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
                return Some(url);
            }
            let Some(bin) = find_bin_dir() else {
                if std::env::var("LIVECHAT_REQUIRE_PG").is_ok_and(|v| v == "1") {
                    panic!("PostgreSQL tests are required (LIVECHAT_REQUIRE_PG=1) but {NO_SERVER}");
                }
                // Straight to stderr: the test harness does not capture it, so the skip shows.
                let _ = writeln!(std::io::stderr(), "skipping PostgreSQL tests: {NO_SERVER}");
                return None;
            };
            let port = match test_port() {
                Ok(port) => port,
                Err(e) => panic!("{e}"),
            };
            // Tests want speed, not durability: fsync off.
            match start_cluster(&bin, port, "test", "-c fsync=off -c max_connections=300") {
                Ok(url) => Some(url),
                Err(e) => panic!("cannot start the throw-away PostgreSQL cluster: {e}"),
            }
        })
        .clone()
}

/// Admin URL of a throw-away cluster with durable settings (fsync and synchronous commit on,
/// as in production) on `port`, started if needed: for benchmarks, where the test cluster's
/// `fsync=off` would flatter every number.
pub fn durable_cluster(port: u16) -> Result<String, String> {
    let bin = find_bin_dir().ok_or_else(|| NO_SERVER.to_string())?;
    start_cluster(&bin, port, "bench", "-c max_connections=200 -c shared_buffers=1GB")
}

/// `livechat_test_<unix seconds>_<random>`: unique, and old ones can be told apart.
fn database_name() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{DATABASE_PREFIX}{secs}_{}", &random[..12])
}

/// Drops test databases left by test processes long gone, so the cluster does not grow forever.
async fn drop_stale_databases(client: &tokio_postgres::Client) {
    let Ok(rows) =
        client.query("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", &[&DATABASE_PREFIX]).await
    else {
        return;
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for row in rows {
        let name: String = row.get(0);
        let created = name[DATABASE_PREFIX.len()..].split('_').next().and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|c| c + STALE_AFTER.as_secs() < now) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
    }
}

/// `url` pointing at database `db` instead (URL or `key=value` form).
fn with_database(url: &str, db: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url} dbname={db}");
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    let mut out = format!("{scheme}://{authority}/{db}");
    let kept: Vec<&str> = query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.starts_with("dbname=")).collect();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out
}

/// The folder holding `initdb` and `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("initdb"))
        .find(|f| f.is_file());
    if let Some(initdb) = on_path {
        // Resolve symlinks: `postgres` and `pg_ctl` live next to the real binary.
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent().filter(|d| complete(d)) {
            return Some(dir.to_path_buf());
        }
    }
    // Debian and Ubuntu keep them out of PATH: take the newest version.
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version =
                entry.file_name().to_string_lossy().split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

fn test_port() -> Result<u16, String> {
    match std::env::var("LIVECHAT_TEST_PG_PORT") {
        Ok(p) => p.trim().parse().map_err(|_| format!("LIVECHAT_TEST_PG_PORT={p} is not a port number")),
        Err(_) => Ok(DEFAULT_PORT),
    }
}

fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(1)).is_ok()
}

/// Effective uid 0, read from `/proc/self/status` (no libc needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Uid and gid of the `postgres` OS user, from `/etc/passwd`.
fn postgres_user() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .ok_or_else(|| "running as root, but there is no `postgres` user to run PostgreSQL as".to_string())
}

/// Makes `postgres` the owner of `dir`: as root, the cluster runs as that user.
#[cfg(unix)]
fn hand_to_postgres(dir: &Path) -> Result<(), String> {
    let (uid, gid) = postgres_user()?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .map_err(|e| format!("cannot hand {} to the postgres user: {e}", dir.display()))
}

#[cfg(not(unix))]
fn hand_to_postgres(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
fn run(program: &Path, args: &[OsString], as_postgres: bool) -> Result<(), String> {
    let mut cmd = if as_postgres {
        let runuser =
            ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].into_iter().find(|p| Path::new(p).is_file());
        let mut cmd = Command::new(runuser.unwrap_or("runuser"));
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    // A folder every user may enter: `postgres` might not be able to read our working directory.
    cmd.args(args).current_dir(std::env::temp_dir()).stdin(Stdio::null());
    let shown = format!("{}{} {}", if as_postgres { "runuser -u postgres -- " } else { "" }, program.display(), {
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    });
    let out = cmd.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Starts (or finds running) a throw-away cluster of `kind` on `port` with extra server
/// `settings`; returns its admin URL.
fn start_cluster(bin: &Path, port: u16, kind: &str, settings: &str) -> Result<String, String> {
    let tmp = std::env::temp_dir();
    let data = tmp.join(format!("livechat-{kind}-pg-{port}"));
    let initialized = tmp.join(format!("livechat-{kind}-pg-{port}.initialized"));
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");

    // One process at a time past this point; the others then find the server answering.
    let lock_path = tmp.join(format!("livechat-{kind}-pg-{port}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    if answers(port) {
        return Ok(url);
    }
    let as_postgres = running_as_root();
    if !(initialized.is_file() && data.join("PG_VERSION").is_file()) {
        // Nothing, or the remains of an interrupted initdb: start over.
        let _ = std::fs::remove_file(&initialized);
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| format!("cannot remove {}: {e}", data.display()))?;
        }
        std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        if as_postgres {
            hand_to_postgres(&data)?;
        }
        let args: Vec<OsString> = vec![
            "-D".into(),
            data.clone().into(),
            "-U".into(),
            "postgres".into(),
            "--auth=trust".into(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C".into(),
        ];
        run(&bin.join("initdb"), &args, as_postgres)?;
        std::fs::write(&initialized, b"").map_err(|e| format!("cannot write {}: {e}", initialized.display()))?;
    }
    let log = data.join("livechat-test-server.log");
    let options = format!("-p {port} -c listen_addresses=127.0.0.1 {settings} -k {}", data.display());
    let args: Vec<OsString> = vec![
        "start".into(),
        "-w".into(),
        "-t".into(),
        "120".into(),
        "-D".into(),
        data.clone().into(),
        "-l".into(),
        log.clone().into(),
        "-o".into(),
        options.into(),
    ];
    if let Err(e) = run(&bin.join("pg_ctl"), &args, as_postgres) {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!("{e}\n--- {} (last lines) ---\n{}", log.display(), tail.join("\n")));
    }
    drop(lock);
    Ok(url)
}

/// A cluster of one test's own, in a scratch folder on a free port: for tests that stop or
/// break the server, which must never touch the cluster the other tests share. Stopped and
/// removed when dropped.
pub struct PrivateCluster {
    /// Admin URL (`postgres` database).
    pub url: String,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl PrivateCluster {
    /// Starts one, or `None` (after saying so on stderr) without local PostgreSQL binaries;
    /// panics when they are required (`LIVECHAT_REQUIRE_PG=1`) or the cluster cannot start.
    pub fn start() -> Option<PrivateCluster> {
        let Some(bin) = find_bin_dir() else {
            if std::env::var("LIVECHAT_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL tests are required (LIVECHAT_REQUIRE_PG=1) but {NO_SERVER}");
            }
            let _ = writeln!(std::io::stderr(), "skipping a test on a private PostgreSQL cluster: {NO_SERVER}");
            return None;
        };
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port for a private cluster: {e}"));
        let parent = crate::testkit::scratch_dir();
        let as_postgres = running_as_root();
        if as_postgres {
            // `postgres` must reach the data folder inside the scratch folder.
            let _ = std::fs::set_permissions(&parent, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
        let data = parent.join("pg");
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("cannot create {}: {e}", data.display()));
        if as_postgres {
            hand_to_postgres(&data).unwrap_or_else(|e| panic!("{e}"));
        }
        let init: Vec<OsString> = ["-D".into(), data.clone().into_os_string(), "-U".into(), "postgres".into()]
            .into_iter()
            .chain(["--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"].map(OsString::from))
            .collect();
        run(&bin.join("initdb"), &init, as_postgres).unwrap_or_else(|e| panic!("{e}"));
        let options = format!("-p {port} -c listen_addresses=127.0.0.1 -c fsync=off -k {}", data.display());
        let log = data.join("server.log");
        let start: Vec<OsString> = vec![
            "start".into(),
            "-w".into(),
            "-t".into(),
            "120".into(),
            "-D".into(),
            data.clone().into(),
            "-l".into(),
            log.into(),
            "-o".into(),
            options.into(),
        ];
        run(&bin.join("pg_ctl"), &start, as_postgres).unwrap_or_else(|e| panic!("{e}"));
        Some(PrivateCluster { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), data, bin, as_postgres })
    }

    /// The postmaster and every process it started (from `postmaster.pid` and `/proc`).
    fn processes(&self) -> Vec<u32> {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        let Some(pid) = pid else { return vec![] };
        let mut all = vec![pid];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            // `/proc/<pid>/stat`: "pid (name) state ppid ...": the name may hold spaces.
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(pid) {
                all.push(child);
            }
        }
        all
    }

    fn signal(&self, signal: &str, pids: &[u32]) {
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("kill").arg(signal).args(pids.iter().map(u32::to_string)).status();
    }

    /// Stops (SIGSTOP) the postmaster and all its children: the server keeps accepting TCP
    /// connections (the kernel does) but answers nothing, as a hung host would.
    pub fn freeze(&self) {
        let pids = self.processes();
        assert!(!pids.is_empty(), "no running private cluster to stop");
        // The postmaster first, so that it starts no child meanwhile.
        self.signal("-STOP", &pids[..1]);
        self.signal("-STOP", &self.processes());
    }

    /// Lets every process of the cluster run again (SIGCONT).
    pub fn thaw(&self) {
        let pids = self.processes();
        self.signal("-CONT", &pids.iter().skip(1).copied().collect::<Vec<_>>());
        self.signal("-CONT", &pids[..pids.len().min(1)]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.thaw();
        let stop: Vec<OsString> = ["stop", "-m", "immediate", "-D"]
            .map(OsString::from)
            .into_iter()
            .chain([self.data.clone().into()])
            .collect();
        let _ = run(&self.bin.join("pg_ctl"), &stop, self.as_postgres);
        if let Some(parent) = self.data.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_points_a_url_at_another_database() {
        assert_eq!(with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgresql://u@h/db?sslmode=disable&dbname=db", "x"),
            "postgresql://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres:///db?host=/tmp", "x"), "postgres:///x?host=/tmp");
        assert_eq!(with_database("host=/tmp user=me", "x"), "host=/tmp user=me dbname=x");
    }

    #[test]
    fn test_database_names_are_unique_and_dated() {
        let (a, b) = (database_name(), database_name());
        assert_ne!(a, b);
        assert!(a.starts_with(DATABASE_PREFIX) && a.len() < 63, "{a}");
    }
}
