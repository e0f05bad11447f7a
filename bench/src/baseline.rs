//! The raw baseline: a plain single-row INSERT of the same payload, on the same database
//! engine with the same durability, through the same kind of connection handling.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Which table a raw INSERT goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// The reference measurements' table: primary key and UNIQUE (stream_id, stream_version).
    Minimal,
    /// A copy of the store's `events` table: the same columns and indexes, so the difference
    /// is what the append path itself costs (expected-version check, idempotency).
    SameSchema,
}

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

/// Created after the store migrated, in the same database.
const SQLITE_SAME: &str = "CREATE TABLE IF NOT EXISTS bench_events (
    position INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
    category TEXT NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, data TEXT NOT NULL,
    metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE (stream_id, stream_version));
  CREATE INDEX IF NOT EXISTS bench_events_by_category ON bench_events (category, position);";

const PG_SAME: &str = "CREATE TABLE IF NOT EXISTS bench_events (LIKE events INCLUDING ALL)";

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

    pub async fn insert(&self, table: Table, stream: &str, version: u64, data: serde_json::Value) -> Result<()> {
        let id = uuid::Uuid::now_v7();
        match self {
            RawInsert::Sqlite(conn) => {
                let (conn, stream) = (conn.clone(), stream.to_string());
                tokio::task::spawn_blocking(move || -> Result<()> {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    let (data, metadata, at) = (data.to_string(), crate::metadata().to_string(), now_micros());
                    match table {
                        Table::Minimal => conn
                            .prepare_cached(
                                "INSERT INTO bench_raw (stream_id, stream_version, event_type, data, metadata, recorded_at)
                                 VALUES (?1, ?2, 'MessagePosted', ?3, ?4, ?5)",
                            )?
                            .execute(rusqlite::params![stream, version as i64, data, metadata, at])?,
                        Table::SameSchema => conn
                            .prepare_cached(
                                "INSERT INTO bench_events (event_id, stream_id, stream_version, category, event_type,
                                     schema_version, data, metadata, recorded_at)
                                 VALUES (?1, ?2, ?3, 'bench', 'MessagePosted', 1, ?4, ?5, ?6)",
                            )?
                            .execute(rusqlite::params![id.to_string(), stream, version as i64, data, metadata, at])?,
                    };
                    Ok(())
                })
                .await?
            }
            RawInsert::Postgres(pool) => {
                let client = pool.get().await?;
                let metadata = crate::metadata();
                match table {
                    Table::Minimal => {
                        let stmt = client
                            .prepare_cached(
                                "INSERT INTO bench_raw (stream_id, stream_version, event_type, data, metadata)
                                 VALUES ($1, $2, 'MessagePosted', $3, $4)",
                            )
                            .await?;
                        client.execute(&stmt, &[&stream, &(version as i64), &data, &metadata]).await?
                    }
                    Table::SameSchema => {
                        let stmt = client
                            .prepare_cached(
                                "INSERT INTO bench_events (event_id, stream_id, stream_version, event_type, schema_version,
                                     data, metadata, recorded_at)
                                 VALUES ($1, $2, $3, 'MessagePosted', 1, $4, $5, now())",
                            )
                            .await?;
                        client.execute(&stmt, &[&id, &stream, &(version as i64), &data, &metadata]).await?
                    }
                };
                Ok(())
            }
        }
    }

    /// Another handle on the same connection or pool.
    pub fn clone_handle(&self) -> RawInsert {
        match self {
            RawInsert::Sqlite(c) => RawInsert::Sqlite(c.clone()),
            RawInsert::Postgres(p) => RawInsert::Postgres(p.clone()),
        }
    }

    /// Creates the tables that copy the store's schema (call after the store migrated).
    pub async fn prepare(&self) -> Result<()> {
        match self {
            RawInsert::Sqlite(conn) => {
                conn.lock().unwrap_or_else(|p| p.into_inner()).execute_batch(SQLITE_SAME)?;
            }
            RawInsert::Postgres(pool) => pool.get().await?.batch_execute(PG_SAME).await?,
        }
        Ok(())
    }
}

fn now_micros() -> i64 {
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
