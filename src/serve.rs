//! `livechat serve`: migrate, start the application (`api::Application`: projector runners,
//! sweeper, mailer) and its HTTP server; on SIGTERM or Ctrl-C stop accepting, answer what
//! was accepted (`api::server`), then let the workers stop and projectors commit, exit 0.

use std::time::Duration;

use api::application::{Application, Settings};
use api::ApiConfig;
use store::StoreUrl;

use crate::as_of::replayed;
use crate::cli::ServeArgs;
use crate::failure::Failure;
use crate::store_open::open_with;

pub async fn serve(url: &StoreUrl, args: ServeArgs) -> Result<(), Failure> {
    let (timeouts, request_timeout) = args.timeouts()?;
    let claim_timeout = Duration::from_secs(args.claim_timeout_seconds);
    if claim_timeout < request_timeout + timeouts.call {
        // A conversation write cut off by the deadline can still commit within the store's
        // bound: a claim freed before that may leave its operator one over their maximum.
        tracing::warn!(?claim_timeout, ?request_timeout, store_timeout = ?timeouts.call,
            "--claim-timeout-seconds is shorter than --request-timeout plus --store-timeout");
    }
    let geo = country_sources(&args)?;
    let mailer = mailer_settings(url, &args)?;
    // `--as-of`: a copy of the log up to that point, in memory, with its views rebuilt; the
    // live store is only read (another server may be running on it).
    let (store, _lock) = match args.as_of {
        Some(as_of) => {
            let live = open_with(url, timeouts).await?;
            live.check_schema().await?;
            tracing::info!(?as_of, "rebuilding the views as of that point, in memory");
            (replayed(&live, as_of, &StoreUrl::Memory).await?, None)
        }
        None => {
            let store = open_with(url, timeouts).await?;
            let lock = store.lock_exclusive("serve")?;
            let applied = store.migrate().await?;
            for m in applied {
                tracing::info!(version = m.version, name = m.name, "applied migration");
            }
            (store, Some(lock))
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener.local_addr()?;

    let config = commands::Config {
        inactivity: Duration::from_secs(args.inactivity_minutes * 60),
        abandon_after: Duration::from_secs(args.abandon_minutes * 60),
        claim_timeout,
        mailer,
        ..commands::Config::default()
    };
    let http = ApiConfig {
        address_key: std::env::var("LIVECHAT_ADDRESS_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| ApiConfig::default().address_key),
        read_only: args.read_only || args.as_of.is_some(),
        public_url: args.public_url.clone(),
        request_timeout,
        ..ApiConfig::default()
    };
    let throttle = api::throttle::Limits { per_address: args.login_attempts_per_address, ..Default::default() };
    // Projectors, sweeper and mailer (these two not in read-only mode) start here.
    let mut app = Application::build(&store, Settings { config, http, geo, throttle, ..Settings::default() });
    let bootstrap = match app.state().http.read_only {
        true => Ok(None),
        false => {
            api::bootstrap::bootstrap(app.state(), &args.admin_login, std::env::var("LIVECHAT_ADMIN_PASSWORD").ok())
                .await
        }
    };
    match bootstrap {
        Ok(Some(b)) => {
            tracing::info!(login = %b.login, default_channel = ?b.channel_id, "first start: created the admin");
            if let Some(password) = b.generated_password {
                // Shown once, never logged: on its own lines on stderr, where a person
                // starting the server looks, and out of any log collector's JSON.
                eprintln!("{}", first_admin_banner(&b.login, &password));
            }
        }
        Ok(None) => {}
        Err(e) => return Err(Failure::Usage(format!("cannot create the first admin: {e}"))),
    }
    tracing::info!(store = %url, "livechat listening on http://{address}");
    app.serve(listener, Duration::from_millis(args.shutdown_linger_ms));
    wait_for_signal().await;
    tracing::info!("shutting down: draining requests, committing projectors");
    // The HTTP server drains first; projectors, sweeper and mailer stop once it is done, so
    // that the last requests still see them run.
    app.shutdown().await.map_err(|e| Failure::Runtime(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
}

/// The first admin's credentials, framed so they stand out from the log lines around them.
fn first_admin_banner(login: &str, password: &str) -> String {
    let lines = [
        "First start: an admin was created.".to_string(),
        format!("  login:    {login}"),
        format!("  password: {password}"),
        "Shown only this once. Sign in and keep it somewhere safe;".to_string(),
        format!("to change it later: livechat user passwd {login}"),
    ];
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = format!("+{}+", "-".repeat(width + 2));
    let mut out = vec![rule.clone()];
    out.extend(lines.iter().map(|l| format!("| {l:<width$} |")));
    out.push(rule);
    out.join("\n")
}

/// The visitor-country sources of `--country-header` and `--geoip`; a bad header name or an
/// unreadable database is the operator's mistake (exit 2), found before anything starts.
fn country_sources(args: &ServeArgs) -> Result<api::geo::CountryResolver, Failure> {
    let mut geo = api::geo::CountryResolver::default();
    if let Some(name) = &args.country_header {
        geo = geo.with_header(name).map_err(|e| Failure::Usage(format!("--country-header: {e}")))?;
    }
    if let Some(path) = &args.geoip {
        geo = geo.with_database_file(path).map_err(|e| Failure::Usage(format!("--geoip: {e}")))?;
    }
    tracing::info!(sources = %geo.describe(), "visitor country sources");
    Ok(geo)
}

/// Where transcripts go; a bad `--smtp-from` is the operator's mistake (exit 2).
fn mailer_settings(url: &StoreUrl, args: &ServeArgs) -> Result<commands::MailerConfig, Failure> {
    commands::mailer::parse_from(&args.smtp_from).map_err(|e| Failure::Usage(format!("--smtp-from: {e}")))?;
    let dir = match (&args.transcripts_dir, url) {
        (Some(d), _) => d.clone(),
        // Next to the SQLite file: the data folder.
        (None, StoreUrl::Sqlite(path)) => path.parent().unwrap_or(std::path::Path::new(".")).join("transcripts"),
        (None, _) => std::path::PathBuf::from("data/transcripts"),
    };
    match &args.smtp {
        Some((host, port)) => tracing::info!(%host, port, "transcripts are sent by SMTP"),
        None => tracing::info!(dir = %dir.display(), "no --smtp: transcripts are written as .eml files"),
    }
    Ok(commands::MailerConfig { smtp: args.smtp.clone(), from: args.smtp_from.clone(), dir, ..Default::default() })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

// Here rather than in `cli.rs`, which holds only the flags: reading them is serving's business.
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
fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
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
