//! The raw baseline: a plain single-row INSERT of the same payload, on the same database
//! engine with the same durability, through the same kind of connection handling.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// One engine's raw INSERT path.
pub enum RawInsert {
    /// One writer connection behind a mutex, used off the runtime: the store's design.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    /// A deadpool pool sized like the store's.
    Postgres(Pool),
}

const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_raw (
    position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
    event_type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    UNIQUE (stream_id, stream_version))";

const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_raw (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, stream_id text NOT NULL,
    stream_version bigint NOT NULL, event_type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, stream_version))";

impl RawInsert {
    pub fn sqlite(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
        conn.execute_batch(SQLITE_TABLE)?;
        Ok(RawInsert::Sqlite(Arc::new(Mutex::new(conn))))
    }

    pub async fn postgres(url: &str) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse()?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(32).build()?;
        pool.get().await?.batch_execute(PG_TABLE).await?;
        Ok(RawInsert::Postgres(pool))
    }

    pub async fn insert(&self, stream: &str, version: u64, data: serde_json::Value) -> Result<()> {
        match self {
            RawInsert::Sqlite(conn) => {
                let (conn, stream) = (conn.clone(), stream.to_string());
                tokio::task::spawn_blocking(move || -> Result<()> {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    conn.prepare_cached(
                        "INSERT INTO bench_raw (stream_id, stream_version, event_type, data, metadata, recorded_at)
                         VALUES (?1, ?2, 'MessagePosted', ?3, ?4, ?5)",
                    )?
                    .execute(rusqlite::params![
                        stream,
                        version as i64,
                        data.to_string(),
                        crate::metadata().to_string(),
                        chrono_now_micros()
                    ])?;
                    Ok(())
                })
                .await?
            }
            RawInsert::Postgres(pool) => {
                let client = pool.get().await?;
                let stmt = client
                    .prepare_cached(
                        "INSERT INTO bench_raw (stream_id, stream_version, event_type, data, metadata)
                         VALUES ($1, $2, 'MessagePosted', $3, $4)",
                    )
                    .await?;
                client.execute(&stmt, &[&stream, &(version as i64), &data, &crate::metadata()]).await?;
                Ok(())
            }
        }
    }
}

fn chrono_now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// A new database on `server`.
pub async fn fresh_pg_database(server: &str) -> Result<String> {
    let (client, conn) = tokio_postgres::connect(server, NoTls).await.with_context(|| format!("connect {server}"))?;
    tokio::spawn(conn);
    let name = format!("livechat_bench_{}", uuid::Uuid::now_v7().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let mut config: tokio_postgres::Config = server.parse()?;
    config.dbname(&name);
    Ok(url_of(&config, &name))
}

fn url_of(config: &tokio_postgres::Config, db: &str) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    match config.get_password() {
        Some(p) => format!("postgres://{user}:{}@{host}:{port}/{db}", String::from_utf8_lossy(p)),
        None => format!("postgres://{user}@{host}:{port}/{db}"),
    }
}

/// A fresh database in a throw-away cluster with durable settings (fsync on, default
/// `synchronous_commit`), unlike the test cluster.
pub async fn durable_cluster_database() -> Result<String> {
    let server = tokio::task::spawn_blocking(|| store::testkit::pg::durable_cluster(54330))
        .await?
        .map_err(anyhow::Error::msg)?;
    fresh_pg_database(&server).await
}
