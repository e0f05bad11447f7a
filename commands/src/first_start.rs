//! First start on an empty store: an admin account and Odoo's default channel.

use domain::channel::{self, Channel, ChannelOptions, DEFAULT_CHANNEL_NAME};
use domain::user::{self, claim_login, password_policy, Login, ProfileInput, Role, User};
use domain::values::Email;
use domain::Aggregate;
use rand::distributions::{Alphanumeric, DistString};
use uuid::Uuid;

use crate::accounts::{secrets::hash_password, system_context};
use crate::{execute, stream_id, App, CommandError};

/// What the first start created.
#[derive(Debug)]
pub struct Bootstrapped {
    pub login: String,
    /// The generated password, to print once; `None` when it came from the environment.
    pub generated_password: Option<String>,
    /// The default channel, when there was no channel yet.
    pub channel_id: Option<Uuid>,
}

/// Why the first start failed (a message for whoever starts the server).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FirstStartError(pub String);

impl<E: std::fmt::Display> From<CommandError<E>> for FirstStartError {
    fn from(e: CommandError<E>) -> Self {
        FirstStartError(e.to_string())
    }
}

/// Whether the log holds a stream of this category.
async fn any_stream(app: &App, category: &str) -> Result<bool, FirstStartError> {
    let filter = store::EventFilter { category: Some(category.to_string()), ..Default::default() };
    let q = store::ReadAll { filter, ..store::ReadAll::forward(store::Position::START, 1) };
    Ok(!app.events.read_all(&q).await.map_err(|e| FirstStartError(e.to_string()))?.is_empty())
}

/// The first admin's id: the same on every node, so that nodes starting at once on one empty
/// store create one admin (the login claim and the user stream are each written once).
fn admin_id(login: &Email) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("livechat/bootstrap/admin/{}", login.as_str()).as_bytes())
}

/// The default channel's id: the same on every node, so that only one is ever created.
pub fn default_channel_id() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"livechat/bootstrap/default-channel")
}

/// On a store without users, creates the admin (`login`, `password` or a generated one) and,
/// if there is no channel either, Odoo's default channel; otherwise does nothing.
///
/// Safe on several nodes starting at once: they write the same streams with the same ids,
/// each step is a no-op for whoever finds it done, and only the node whose `UserCreated`
/// landed reports the admin (its password is the one stored). A node that finds another's
/// admin answers `None`, as on a store that already had users.
pub async fn first_start(
    app: &App,
    login: &str,
    password: Option<String>,
) -> Result<Option<Bootstrapped>, FirstStartError> {
    if any_stream(app, User::CATEGORY).await? {
        return Ok(None);
    }
    let create_channel = !any_stream(app, Channel::CATEGORY).await?;
    let login = Email::parse("LIVECHAT_ADMIN_LOGIN", login).map_err(|e| FirstStartError(e.to_string()))?;
    let generated = password.is_none().then(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 20));
    let password = password.or(generated.clone()).unwrap_or_default();
    password_policy("LIVECHAT_ADMIN_PASSWORD", &password).map_err(|e| FirstStartError(e.to_string()))?;
    let hash = hash_password(password).await.ok_or_else(|| FirstStartError("internal error".into()))?;
    let ctx = system_context(app);

    let admin = admin_id(&login);
    let profile = ProfileInput { name: "Administrator".into(), ..Default::default() }
        .parse()
        .map_err(|e| FirstStartError(format!("{e:?}")))?;
    // `claim_login` is a no-op when the admin already holds the login (another node's claim).
    execute::<Login, _>(app.events.as_ref(), &stream_id::<Login>(login.as_str()), &ctx, None, |l| {
        claim_login(l, admin).map_err(|e| e.to_string())
    })
    .await?;
    let created = execute::<User, _>(app.events.as_ref(), &stream_id::<User>(admin), &ctx, None, |u| {
        if u.exists() {
            return Ok(vec![]); // another node created it
        }
        user::create(u, admin, login.clone(), profile.clone(), Role::Admin, hash.clone()).map_err(|e| e.to_string())
    })
    .await?;
    let channel_id = default_channel_id();
    let channel = match create_channel {
        true => {
            execute::<Channel, _>(app.events.as_ref(), &stream_id::<Channel>(channel_id), &ctx, None, |c| {
                if c.id.is_some() {
                    return Ok(vec![]); // another node created it
                }
                channel::create(c, channel_id, DEFAULT_CHANNEL_NAME, Some(admin), ChannelOptions::default())
                    .map_err(|e| e.to_string())
            })
            .await?
            .written
        }
        false => 0,
    };
    if created.written == 0 {
        return Ok(None);
    }
    Ok(Some(Bootstrapped {
        login: login.as_str().to_string(),
        generated_password: generated,
        channel_id: (channel > 0).then_some(channel_id),
    }))
}
