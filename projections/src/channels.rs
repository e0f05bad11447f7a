//! The channels view: one document per channel with its whole form (options, operators,
//! rules) and who is joined now. It serves the dashboard and the channel form.

use domain::aggregate::Aggregate;
use domain::channel::{Channel, ChannelEvent, ChannelOptions};
use domain::rules::Rule;
use serde::{Deserialize, Serialize};
use store::views::ViewStore;
use store::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

pub const VIEW: &str = "channels";
/// Partition of channels in use.
pub const ACTIVE: &str = "active";
/// Partition of archived channels.
pub const ARCHIVED: &str = "archived";

/// A channel as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelDoc {
    pub channel_id: Uuid,
    pub name: String,
    pub archived: bool,
    pub options: ChannelOptions,
    pub operators: Vec<Uuid>,
    /// Operators joined now, in the order they joined.
    pub joined: Vec<Uuid>,
    /// In sequence order.
    pub rules: Vec<Rule>,
    /// Version of the channel's stream: the `ETag` to send in `If-Match`.
    pub version: u64,
}

impl ChannelDoc {
    fn from_state(c: &Channel, version: u64) -> Option<ChannelDoc> {
        Some(ChannelDoc {
            channel_id: c.id?,
            name: c.name.clone(),
            archived: c.archived,
            options: c.options.clone(),
            operators: c.operators.clone(),
            joined: c.joined.clone(),
            rules: c.rules.clone(),
            version,
        })
    }

    fn state(&self) -> Channel {
        Channel {
            id: Some(self.channel_id),
            name: self.name.clone(),
            archived: self.archived,
            options: self.options.clone(),
            operators: self.operators.clone(),
            joined: self.joined.clone(),
            rules: self.rules.clone(),
        }
    }
}

/// Builds [`ChannelDoc`]s by folding channel events with the domain's own `apply`, so the
/// view and the aggregate cannot disagree.
pub struct Channels;

impl Projector for Channels {
    fn name(&self) -> &'static str {
        "channels"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &RecordedEvent) -> Vec<(&'static str, String)> {
        if e.category() == Channel::CATEGORY {
            vec![(VIEW, e.stream_id.clone())]
        } else {
            vec![]
        }
    }

    fn apply(&self, e: &RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        if e.category() != Channel::CATEGORY {
            return Ok(());
        }
        let event: ChannelEvent = ProjectionError::domain_event(e)?;
        let current: Option<ChannelDoc> = docs
            .get(VIEW, &e.stream_id)
            .map(|d| serde_json::from_value(d.body.clone()))
            .transpose()
            .map_err(|err| ProjectionError::Inconsistent(format!("stored channel unreadable: {err}")))?;
        let mut state = current.map(|d| d.state()).unwrap_or_default();
        state.apply(&event);
        let doc = ChannelDoc::from_state(&state, e.stream_version)
            .ok_or_else(|| ProjectionError::Inconsistent(format!("{} before ChannelCreated", e.event_type)))?;
        let partition = if doc.archived { ARCHIVED } else { ACTIVE };
        let sort_key = format!("{}\u{1f}{}", doc.name.to_lowercase(), doc.channel_id);
        let body = serde_json::to_value(&doc).map_err(|err| ProjectionError::Inconsistent(err.to_string()))?;
        docs.put(VIEW, &e.stream_id, Draft { partition: partition.into(), sort_key, body });
        Ok(())
    }
}

/// Every active channel, in listing order.
pub async fn active(views: &dyn ViewStore) -> Result<Vec<ChannelDoc>, StoreError> {
    crate::read::all(views, VIEW, Some(ACTIVE)).await
}

/// One channel's document (archived or not).
pub async fn get(views: &dyn ViewStore, channel_id: Uuid) -> Result<Option<ChannelDoc>, StoreError> {
    crate::read::get(views, VIEW, &domain::event::stream_id::<Channel>(channel_id)).await
}
