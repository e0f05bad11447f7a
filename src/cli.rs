//! Flags and subcommands: the clap definitions only (and the parsers of their values).
//! `main.rs` parses them and hands each subcommand's arguments to its module.

use std::net::SocketAddr;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use commands::AsOf;
use store::{Position, StoreUrl};

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
        #[arg(long, value_parser = parse_as_of)]
        until: Option<AsOf>,
    },
    /// Read a log written by `export` from stdin into an empty store (any backend).
    Import,
    /// Manage operator and admin accounts directly in the store.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the conversations or operators report (table, CSV or JSON), as the HTTP API
    /// computes it: `livechat report conversations --group-by channel,week --from 2026-11-01`.
    Report(ReportArgs),
    /// Rebuild the views as they were at a point of the log into a separate store (the live
    /// views are untouched) and print them: `livechat replay --until 2026-11-01T12:00:00Z --view channels`.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve the views as they were at this point of the log (an RFC 3339 time or a position
    /// TX:POS), rebuilt in memory; implies --read-only.
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,
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
    #[arg(long, env = "LIVECHAT_SMTP", value_name = "HOST:PORT", value_parser = commands::mailer::parse_smtp)]
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

// `livechat user ...`

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. The password comes from --password, LIVECHAT_USER_PASSWORD or the
    /// first line of stdin.
    Create(CreateArgs),
    /// Set a user's password; every token of the user is revoked.
    Passwd {
        /// The user's login (email).
        login: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Deactivate a user: their tokens are revoked, they cannot log in, they leave every
    /// channel.
    Deactivate {
        /// The user's login (email).
        login: String,
    },
    /// Let a deactivated user log in again.
    Reactivate {
        /// The user's login (email).
        login: String,
    },
    /// List every user, by login, as read from the event log.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct PasswordArg {
    /// The password, 10 to 200 characters. Other local users can see command lines: prefer
    /// LIVECHAT_USER_PASSWORD or stdin.
    #[arg(long, env = "LIVECHAT_USER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum RoleArg {
    Admin,
    Operator,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Login: an email address, unique among users.
    #[arg(long)]
    pub login: String,
    /// Full name.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum, default_value_t = RoleArg::Operator)]
    pub role: RoleArg,
    /// The name visitors see.
    #[arg(long)]
    pub chat_name: Option<String>,
    /// A language the user speaks (en, fr_BE...); repeat for several.
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[arg(long)]
    pub country: Option<String>,
    #[command(flatten)]
    pub password: PasswordArg,
}

// `livechat report ...`

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportKind {
    /// One count per conversation (Odoo's "Sessions").
    Conversations,
    /// One count per operator who handled a conversation (Odoo's "Operator Analysis"); its
    /// total leaves out conversations no operator ever had.
    Operators,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Shown by `livechat report --help`.
const MORE_HELP: &str = "\
Groupings: channel (where it started), operator (the last one; in the operators report every
operator who handled it), day, week (ISO), month, hour, weekday (of the start, UTC), country,
rating (Happy, Neutral, Unhappy, none).

Measures: count, messages_avg, duration_avg, time_to_answer_avg, time_to_answer_p50,
time_to_answer_p90, unanswered, unanswered_percent, satisfaction_percent, rating_avg, abandoned.
Averages and percentages are rounded to 2 decimals, half away from zero, from exact sums.
Conversations in which the visitor never wrote are left out unless --include-empty; `abandoned`
counts them either way. Without --group-by there is one row, the total. The operators report
counts a conversation once per operator who handled it; its total counts each conversation
once and leaves out those no operator ever had (a chatbot's alone, abandoned in the queue).
An empty list or name (--measures \"\", --group-by a,,b), an unknown name or one given twice is
a usage error. Exact definitions: docs/reports.md.

The numbers are those of GET /api/v1/reports/..., computed by the same code from the store's
report view as the projectors last wrote it (the view of a stopped server may lag the log).

Example: livechat report operators --group-by operator,week --from 2026-11-01 --format csv";

#[derive(Args, Debug)]
#[command(after_long_help = MORE_HELP)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: ReportKind,
    /// One or two groupings, comma-separated (e.g. `channel,week`); left out: one total row.
    #[arg(long, value_name = "NAMES")]
    pub group_by: Option<String>,
    /// Measures to print, comma-separated (left out: all).
    #[arg(long, value_name = "NAMES")]
    pub measures: Option<String>,
    /// Conversations started at or after: RFC 3339 time or YYYY-MM-DD (UTC midnight).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Conversations started before: RFC 3339 time or YYYY-MM-DD (UTC midnight).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Only conversations that started in this channel (id).
    #[arg(long, value_name = "ID")]
    pub channel: Option<String>,
    /// Only conversations this operator (user id) handled.
    #[arg(long, value_name = "ID")]
    pub operator: Option<String>,
    /// Only visitors from this country (ISO code), or `none` for unknown.
    #[arg(long)]
    pub country: Option<String>,
    /// Also count conversations in which the visitor never wrote.
    #[arg(long)]
    pub include_empty: bool,
    /// Output: an aligned table, CSV or the JSON the API answers.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = s.parse::<DateTime<Utc>>() {
        return Ok(t);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| format!("'{s}' is neither an RFC 3339 time nor YYYY-MM-DD"))
}

// `livechat replay ...`

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The point in the log: an RFC 3339 time (`2026-11-01T12:00:00Z`) or a position
    /// (`TX:POS`, as in `events tail`); the events after it are left out.
    #[arg(long, value_parser = parse_as_of)]
    pub until: AsOf,
    /// Print this view's documents as JSON lines (`{view, id, partition, sort_key, body}`);
    /// without it, the number of documents of each view.
    #[arg(long)]
    pub view: Option<String>,
    /// Where to rebuild: `memory:` (gone when the command ends) or a new `sqlite:PATH` to keep.
    #[arg(long, default_value = "memory:")]
    pub into: StoreUrl,
}

/// `--until`/`--as-of`: an RFC 3339 time or a position `TX:POS`.
pub fn parse_as_of(raw: &str) -> Result<AsOf, String> {
    raw.parse()
}
