//! Settings of the use cases (HTTP settings stay in `api`).

use std::path::PathBuf;
use std::time::Duration;

/// What the use cases and their workers are configured with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lifetime of a bearer token.
    pub token_ttl: Duration,
    /// An operator without activity for this long is taken offline and leaves their channels.
    pub inactivity: Duration,
    /// A conversation in which the visitor never wrote is abandoned after this long.
    pub abandon_after: Duration,
    /// An operator's slot claimed for a conversation that does not name them within this
    /// long (a crash between the claim and the conversation's write) is freed: routing and
    /// takes ignore it at once, the sweeper releases it (`--claim-timeout-seconds`). It must
    /// exceed the longest claim-to-write time plus the clock skew between nodes.
    pub claim_timeout: Duration,
    /// Where transcripts go (SMTP or `.eml` files).
    pub mailer: MailerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token_ttl: Duration::from_secs(12 * 3600),
            inactivity: Duration::from_secs(30 * 60),
            abandon_after: Duration::from_secs(60 * 60),
            claim_timeout: Duration::from_secs(15),
            mailer: MailerConfig::default(),
        }
    }
}

/// Where transcripts go.
#[derive(Clone, Debug)]
pub struct MailerConfig {
    /// `host:port` of a plain SMTP server; `None` writes `.eml` files into `dir` instead.
    pub smtp: Option<(String, u16)>,
    /// The `From` of transcripts.
    pub from: String,
    /// Folder of the `.eml` files when there is no SMTP server.
    pub dir: PathBuf,
    /// How long the SMTP conversation may take before the attempt counts as failed.
    pub timeout: Duration,
}

impl Default for MailerConfig {
    fn default() -> Self {
        MailerConfig {
            smtp: None,
            from: "livechat@localhost".into(),
            dir: PathBuf::from("data/transcripts"),
            timeout: Duration::from_secs(30),
        }
    }
}
