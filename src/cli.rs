//! Flags and subcommands.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use store::{Position, Store, StoreUrl};

use crate::Failure;

/// Event-sourced live-chat backend.
///
/// Every action is an event appended to a log; projectors build the views the API serves.
/// The store is an embedded SQLite file by default; pass a postgres:// URL for production.
#[derive(Parser, Debug)]
#[command(name = "livechat", version, about, long_about)]
pub struct Cli {
    /// Where events and views live: `sqlite:PATH`, `postgres://USER@HOST/DB` or `memory:`.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = "sqlite:./data/livechat.db")]
    pub store: StoreUrl,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LIVECHAT_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server and the projectors (migrates the schema first).
    Serve(Box<ServeArgs>),
    /// Apply the embedded schema migrations and exit.
    Migrate,
    /// Read the event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Inspect and rebuild the projected views.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Write the whole event log to stdout as JSON lines (one event per line, in log order).
    Export {
        /// Stop at this point of the log: an RFC 3339 time or a position TX:POS.
        #[arg(long, value_parser = crate::replay::parse_as_of)]
        until: Option<commands::AsOf>,
    },
    /// Read a log written by `export` from stdin into an empty store (any backend).
    Import,
    /// Manage operator and admin accounts directly in the store.
    #[command(subcommand)]
    User(crate::user::UserCommand),
    /// Print the conversations or operators report (table, CSV or JSON), as the HTTP API
    /// computes it: `livechat report conversations --group-by channel,week --from 2026-11-01`.
    Report(crate::report::ReportArgs),
    /// Rebuild the views as they were at a point of the log into a separate store (the live
    /// views are untouched) and print them: `livechat replay --until 2026-11-01T12:00:00Z --view channels`.
    Replay(crate::replay::ReplayArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve the views as they were at this point of the log (an RFC 3339 time or a position
    /// TX:POS), rebuilt in memory; implies --read-only.
    #[arg(long, value_parser = crate::replay::parse_as_of)]
    pub as_of: Option<commands::AsOf>,
    /// Take no writes (405 problem documents), except logins; needs --as-of, since logging in
    /// writes a token event (into the in-memory copy, never the live log).
    #[arg(long, requires = "as_of")]
    pub read_only: bool,
    /// Address to listen on.
    #[arg(long, env = "LIVECHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// On SIGTERM, how long connections kept alive stay open for a request already on its
    /// way (answered, with Connection: close) before idle ones are closed (at most 10 s; the
    /// whole drain is bounded by 30 s).
    #[arg(long, env = "LIVECHAT_SHUTDOWN_LINGER_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub shutdown_linger_ms: u64,
    /// The address visitors reach this server at, like https://chat.example.com: the
    /// widget snippet and the direct link use it. Unset, they use the request's Host and
    /// X-Forwarded-Proto.
    #[arg(long, env = "LIVECHAT_PUBLIC_URL", value_parser = api::parse_public_url)]
    pub public_url: Option<String>,
    /// Login of the admin created on the first start (its password comes from
    /// LIVECHAT_ADMIN_PASSWORD, or is generated and printed once).
    #[arg(long, env = "LIVECHAT_ADMIN_LOGIN", default_value = "admin@example.com")]
    pub admin_login: String,
    /// Header a trusted proxy sets to the visitor's ISO country code (e.g. CF-IPCountry).
    #[arg(long, env = "LIVECHAT_COUNTRY_HEADER")]
    pub country_header: Option<String>,
    /// MaxMind-format country database to look visitors' addresses up in.
    #[arg(long, env = "LIVECHAT_GEOIP")]
    pub geoip: Option<std::path::PathBuf>,
    /// Minutes without activity after which an operator goes offline and leaves their channels.
    #[arg(long, env = "LIVECHAT_INACTIVITY_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub inactivity_minutes: u64,
    /// Minutes after which a conversation in which the visitor never wrote is abandoned.
    #[arg(long, env = "LIVECHAT_ABANDON_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub abandon_minutes: u64,
    /// Seconds after which an operator's slot claimed for a conversation that never got
    /// written (a crash between the claim and the conversation) is freed. Routing and takes
    /// ignore such a slot at once; the sweeper releases it. Keep it above the longest
    /// claim-to-write time (--request-timeout plus --store-timeout: a write cut off by the
    /// request's deadline may still commit within the store's bound) and the clock skew
    /// between nodes.
    #[arg(long, env = "LIVECHAT_CLAIM_TIMEOUT_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub claim_timeout_seconds: u64,
    /// Failed logins allowed per client address in 15 minutes (0: no per-address limit, for
    /// servers behind a proxy where every client shares one address).
    #[arg(long, env = "LIVECHAT_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = 20)]
    pub login_attempts_per_address: usize,
    /// Plain SMTP server (HOST:PORT) that sends transcripts by email; TLS and
    /// authentication are for that relay to handle. Without it, transcripts are written as
    /// .eml files into --transcripts-dir.
    #[arg(long, env = "LIVECHAT_SMTP", value_name = "HOST:PORT", value_parser = api::mailer::parse_smtp)]
    pub smtp: Option<(String, u16)>,
    /// The From address of transcripts.
    #[arg(long, env = "LIVECHAT_SMTP_FROM", default_value = "livechat@localhost")]
    pub smtp_from: String,
    /// Folder of the .eml transcripts when there is no --smtp (default: `transcripts` next to
    /// the SQLite file, or ./data/transcripts).
    #[arg(long, env = "LIVECHAT_TRANSCRIPTS_DIR")]
    pub transcripts_dir: Option<std::path::PathBuf>,
    /// Longest a single store call may take (waiting for a connection, connecting and the
    /// statement included); also PostgreSQL's statement_timeout and SQLite's busy timeout.
    /// A request whose store call runs out answers 503 `store-timeout`, saying whether the
    /// write may have been applied. Seconds (`5`) or with a unit (`500ms`, `5s`, `1m`).
    #[arg(long, env = "LIVECHAT_STORE_TIMEOUT", default_value = "5s", value_name = "DURATION")]
    pub store_timeout: String,
    /// Longest opening a PostgreSQL connection may take (TCP and startup).
    #[arg(long, env = "LIVECHAT_STORE_CONNECT_TIMEOUT", default_value = "5s", value_name = "DURATION")]
    pub store_connect_timeout: String,
    /// Longest a store call waits for a free pooled PostgreSQL connection when all are busy
    /// (then 503 `store-timeout`, nothing written).
    #[arg(long, env = "LIVECHAT_STORE_POOL_WAIT_TIMEOUT", default_value = "3s", value_name = "DURATION")]
    pub store_pool_wait_timeout: String,
    /// Longest any HTTP request may take before it is answered 503 `deadline-exceeded`
    /// (outcome unknown for writes); must be longer than --store-timeout. WebSockets are
    /// bounded until their upgrade only.
    #[arg(long, env = "LIVECHAT_REQUEST_TIMEOUT", default_value = "10s", value_name = "DURATION")]
    pub request_timeout: String,
}

impl ServeArgs {
    /// The store's bounds and the request deadline; a malformed or inconsistent value is the
    /// operator's mistake (exit 2, one line).
    pub fn timeouts(&self) -> Result<(store::Timeouts, std::time::Duration), Failure> {
        let parse = |flag: &str, raw: &str| {
            parse_duration(raw).map_err(|e| Failure::Usage(format!("--{flag}: invalid duration '{raw}': {e}")))
        };
        let timeouts = store::Timeouts {
            call: parse("store-timeout", &self.store_timeout)?,
            connect: parse("store-connect-timeout", &self.store_connect_timeout)?,
            pool_wait: parse("store-pool-wait-timeout", &self.store_pool_wait_timeout)?,
        };
        let request = parse("request-timeout", &self.request_timeout)?;
        if request <= timeouts.call {
            return Err(Failure::Usage(format!(
                "--request-timeout ({}) must be longer than --store-timeout ({}), so that a stuck store answers first",
                self.request_timeout, self.store_timeout
            )));
        }
        Ok((timeouts, request))
    }
}

/// `5` (seconds), `2.5s`, `500ms` or `1m`: more than zero, at most an hour.
pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number.parse().map_err(|_| "expected a number of seconds, or one with ms, s or m".to_string())?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit '{other}': use ms, s or m")),
    };
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err("must be more than zero and at most an hour".into());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 1m "), Ok(Duration::from_secs(60)));
        for bad in ["", "0", "-1", "5h", "ms", "1.2.3s", "2 hours", "7200"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print events as JSON lines, oldest first.
    Tail(TailArgs),
    /// Print every event of one stream as JSON lines.
    Show {
        /// Stream id, e.g. `channel-0190c6d2-...`.
        stream: String,
    },
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Start at this position (inclusive), as printed in `position`.
    #[arg(long)]
    pub from: Option<Position>,
    /// Keep waiting for new events (Ctrl-C to stop).
    #[arg(long, short)]
    pub follow: bool,
    /// Only streams of this category.
    #[arg(long)]
    pub category: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Checkpoint, lag (events and seconds), parked events and version of each projector.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild views from the whole log into shadow documents, then swap them in.
    Rebuild(RebuildArgs),
    /// List the events a projector could not apply (JSON lines: stream, position, error).
    Parked {
        /// Projector name (see `projections status`).
        name: String,
        /// At most this many, oldest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct RebuildArgs {
    /// Projector to rebuild (see `projections status`).
    pub name: Option<String>,
    /// Rebuild every projector.
    #[arg(long)]
    pub all: bool,
}

/// Opens the store with the default bounds.
pub async fn open(url: &StoreUrl) -> Result<Store, Failure> {
    open_with(url, store::Timeouts::default()).await
}

/// Opens the store with these bounds on its calls.
pub async fn open_with(url: &StoreUrl, timeouts: store::Timeouts) -> Result<Store, Failure> {
    Store::open_with(url, timeouts).await.map_err(|e| Failure::Usage(format!("cannot open store {url}: {e}")))
}

/// Opens the store for a read or write that needs the schema in place.
pub async fn open_migrated(url: &StoreUrl) -> Result<Store, Failure> {
    let store = open(url).await?;
    store.check_schema().await?;
    Ok(store)
}
