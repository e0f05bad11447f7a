//! The visitor's country, from the request: never from the visitor's own claim.

use axum::http::HeaderMap;
use domain::values::Country;

/// Where countries come from: a trusted proxy header (such as `CF-IPCountry`) set by a
/// proxy in front of the server.
#[derive(Default)]
pub struct CountryResolver {
    /// Header a trusted proxy sets to the client's ISO country code.
    pub header: Option<String>,
}

impl CountryResolver {
    /// The request's country, or `None` when no source is configured or it does not know.
    pub fn country(&self, headers: &HeaderMap, _peer: Option<std::net::IpAddr>) -> Option<Country> {
        let name = self.header.as_deref()?;
        let raw = headers.get(name)?.to_str().ok()?;
        Country::parse("country", raw).ok()
    }

    /// Whether any source is configured.
    pub fn configured(&self) -> bool {
        self.header.is_some()
    }
}
