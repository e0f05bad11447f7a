//! Throttling of failed logins, per login and per client address.
//!
//! A sliding window: once a login has `per_login` failed attempts within `window` (or an
//! address `per_address`), further attempts are refused with 429 and `Retry-After` until the
//! oldest failure leaves the window, even with the right password. A success clears the
//! login's failures (not the address's: one good password must not unlock guessing others).
//!
//! Every attempt counts as a failure the moment it starts and is taken back if it succeeds,
//! so concurrent guesses cannot slip past the limit while passwords are being verified.
//!
//! **In memory, per node**: with N API nodes an attacker gets up to N times the budget, and
//! a restart forgets the counters. That is acceptable for the threat (online guessing is
//! still bounded and argon2 is slow); a shared limiter would be the fix if it is not.
//!
//! The client address is the TCP peer (`ConnectInfo`), never a header a client can set.
//! Behind a reverse proxy every client shares the proxy's address, so 20 failures from anyone
//! would refuse everyone's logins for the window: there, set `per_address` to 0 (no limit per
//! address; the per-login limit still applies). Without connect info (tests with `oneshot`),
//! only the per-login limit applies. IPv6 addresses are grouped by /64, the usual allocation
//! to one subscriber.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};

/// How many failures are allowed, and over which window.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Failures allowed per login within the window; 0 turns the limit off.
    pub per_login: usize,
    /// Failures allowed per client address within the window; 0 turns the limit off.
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_login: 5, per_address: 20, window: Duration::minutes(15) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Login(String),
    Address(IpAddr),
}

/// An attempt in progress, counted as a failure unless reported with [`Throttle::succeeded`]
/// or [`Throttle::abandoned`].
#[derive(Debug)]
#[must_use = "report a success with Throttle::succeeded"]
pub struct Attempt {
    login: Option<Key>,
    address: Option<Key>,
    at: DateTime<Utc>,
}

/// Failed attempts by login and by address (see the module documentation).
pub struct Throttle {
    limits: Limits,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_key: HashMap<Key, VecDeque<DateTime<Utc>>>,
    /// Attempts since the last sweep of expired keys.
    since_sweep: usize,
}

impl Failures {
    /// Removes one failure recorded at `at` under `key`.
    fn take_back(&mut self, key: &Key, at: DateTime<Utc>) {
        if let Some(times) = self.by_key.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.by_key.remove(key);
            }
        }
    }
}

/// How many attempts between two sweeps of keys whose failures all expired.
const SWEEP_EVERY: usize = 1024;

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(Limits::default())
    }
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Throttle { limits, failures: Mutex::default() }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Starts an attempt for `login` (normalised by the caller) from `address`: refused with
    /// the time to wait when a limit is reached, else counted as a failure until
    /// [`Throttle::succeeded`] takes it back.
    pub fn begin(&self, login: &str, address: Option<IpAddr>, now: DateTime<Utc>) -> Result<Attempt, Duration> {
        let login = Some(Key::Login(login.to_string())).filter(|_| self.limits.per_login > 0);
        let address = address.map(|a| Key::Address(group(a))).filter(|_| self.limits.per_address > 0);
        let window = self.limits.window;
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.since_sweep += 1;
        if f.since_sweep >= SWEEP_EVERY {
            f.since_sweep = 0;
            f.by_key.retain(|_, times| times.back().is_some_and(|t| *t > now - window));
        }
        let mut wait = Duration::zero();
        let checks = [(login.as_ref(), self.limits.per_login), (address.as_ref(), self.limits.per_address)];
        for (key, limit) in checks {
            let Some(key) = key else { continue };
            if let Some(times) = f.by_key.get_mut(key) {
                while times.front().is_some_and(|t| *t <= now - window || *t > now) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    // Free again when enough of the oldest failures have left the window.
                    let oldest_to_expire = times[times.len() - limit];
                    wait = wait.max(oldest_to_expire + window - now);
                }
            }
        }
        if wait > Duration::zero() {
            return Err(wait);
        }
        for (key, limit) in checks {
            let Some(key) = key else { continue };
            let times = f.by_key.entry(key.clone()).or_default();
            times.push_back(now);
            // Only the last `limit` failures matter.
            while times.len() > limit {
                times.pop_front();
            }
        }
        Ok(Attempt { login, address, at: now })
    }

    /// The attempt succeeded: clears the login's failures and takes back the address's count.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(login) = &attempt.login {
            f.by_key.remove(login);
        }
        if let Some(address) = &attempt.address {
            f.take_back(address, attempt.at);
        }
    }

    /// The attempt could not be judged (the store failed): it does not count.
    pub fn abandoned(&self, attempt: Attempt) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in attempt.login.iter().chain(&attempt.address) {
            f.take_back(key, attempt.at);
        }
    }
}

/// IPv6 addresses count per /64; IPv4 (and IPv4-mapped IPv6) per address.
fn group(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => a,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The TCP peer's address, when the server was started with connect info (never a header).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await.ok();
        Ok(ClientAddr(peer.map(|ConnectInfo(a)| a.ip())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_login_is_blocked_after_its_limit_until_the_oldest_failure_expires() {
        let th = Throttle::default();
        for i in 0..5 {
            let _ = th.begin("ada@example.com", None, t0() + Duration::minutes(i)).unwrap();
        }
        let wait = th.begin("ada@example.com", None, t0() + Duration::minutes(5)).unwrap_err();
        assert_eq!(wait, Duration::minutes(10), "the failure at t0 leaves the window at t0+15");
        assert!(th.begin("bob@example.com", None, t0()).is_ok(), "other logins are not affected");
        assert!(th.begin("ada@example.com", None, t0() + Duration::minutes(15)).is_ok());
    }

    #[test]
    fn a_success_clears_the_login_but_not_the_address() {
        let th = Throttle::new(Limits { per_login: 2, per_address: 3, window: Duration::minutes(15) });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _ = th.begin("a@x.io", Some(ip), t0()).unwrap();
        let ok = th.begin("a@x.io", Some(ip), t0()).unwrap();
        th.succeeded(ok);
        let _ = th.begin("a@x.io", Some(ip), t0()).unwrap();
        let _ = th.begin("b@x.io", Some(ip), t0()).unwrap();
        assert!(th.begin("c@x.io", Some(ip), t0()).is_err(), "3 failures from the address");
        assert!(th.begin("c@x.io", Some("192.0.2.2".parse().unwrap()), t0()).is_ok());
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let th = Throttle::new(Limits { per_login: 1, per_address: 0, window: Duration::minutes(15) });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..50 {
            let _ = th.begin(&format!("u{i}@x.io"), Some(ip), t0()).unwrap();
        }
        assert!(th.begin("u0@x.io", Some(ip), t0()).is_err(), "the login limit still applies");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(group("2001:db8:1:2:3:4:5:6".parse().unwrap()), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(group("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
