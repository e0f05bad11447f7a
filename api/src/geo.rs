//! The visitor's country, from the request: never from the visitor's own claim.
//!
//! Two sources, both configured by the operator of the server:
//! - a header that a trusted proxy in front of the server sets (such as Cloudflare's
//!   `CF-IPCountry`). When it is configured and present, it is the answer, even when its value
//!   is not a country (`XX`, `T1`): the proxy knows the client, while the peer address we see
//!   is the proxy's own.
//! - a MaxMind-format country database (GeoLite2-Country, GeoIP2-Country or -City, DB-IP's
//!   lite databases...), where the peer address of the connection is looked up. Forwarding
//!   headers such as `X-Forwarded-For` are never read: a visitor can write them.
//!
//! Without a source, or when neither knows, the country is unknown, and rules restricted to
//! countries never match.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use axum::http::{HeaderMap, HeaderName};
use domain::values::Country;

/// Where countries come from; [`CountryResolver::default`] has no source.
#[derive(Default)]
pub struct CountryResolver {
    header: Option<HeaderName>,
    database: Option<maxminddb::Reader<Vec<u8>>>,
}

/// Why a country source cannot be used (a one-line message for the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoError(String);

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GeoError {}

/// Some library messages span lines; the command line prints one.
fn one_line(s: impl fmt::Display) -> String {
    s.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl CountryResolver {
    /// Trusts the header `name` (case-insensitive), set by a proxy in front of the server.
    pub fn with_header(mut self, name: &str) -> Result<Self, GeoError> {
        let header = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| GeoError(format!("'{name}' is not a valid HTTP header name")))?;
        self.header = Some(header);
        Ok(self)
    }

    /// Looks peer addresses up in the MaxMind-format database at `path`, read into memory now.
    pub fn with_database_file(self, path: &Path) -> Result<Self, GeoError> {
        let bytes =
            std::fs::read(path).map_err(|e| GeoError(format!("cannot read {}: {}", path.display(), one_line(e))))?;
        self.with_database(bytes)
            .map_err(|e| GeoError(format!("{} is not a MaxMind-format database: {e}", path.display())))
    }

    /// Looks peer addresses up in this MaxMind-format database.
    pub fn with_database(mut self, bytes: Vec<u8>) -> Result<Self, GeoError> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| GeoError(one_line(e)))?;
        self.database = Some(reader);
        Ok(self)
    }

    /// The request's country, or `None` when no source is configured or none knows.
    ///
    /// `peer` is the address of the TCP peer, when the server knows it.
    pub fn country(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<Country> {
        if let Some(name) = &self.header {
            if let Some(value) = headers.get(name) {
                // Present: the proxy has spoken, even if only to say it does not know.
                return Country::parse("country", value.to_str().ok()?).ok();
            }
        }
        self.lookup(peer?)
    }

    /// The country of `ip` in the database, if there is a database and it knows.
    pub fn lookup(&self, ip: IpAddr) -> Option<Country> {
        let db = self.database.as_ref()?;
        // IPv4 peers of a dual-stack socket arrive as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        let found = db.lookup(ip).and_then(|r| r.decode_path::<String>(&maxminddb::path!["country", "iso_code"]));
        match found {
            Ok(code) => code.and_then(|c| Country::parse("country", &c).ok()),
            Err(e) => {
                tracing::debug!(%ip, error = %e, "country lookup failed");
                None
            }
        }
    }

    /// Whether any source is configured.
    pub fn configured(&self) -> bool {
        self.header.is_some() || self.database.is_some()
    }

    /// The configured sources, for the start-up log: `header CF-IPCountry, database GeoLite2-Country`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = &self.header {
            parts.push(format!("header {h}"));
        }
        if let Some(db) = &self.database {
            let meta = db.metadata();
            let built = i64::try_from(meta.build_epoch)
                .ok()
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map_or_else(|| "at an unknown date".to_string(), |t| t.format("%Y-%m-%d").to_string());
            parts.push(format!("database {} built {built}", meta.database_type));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}
