//! Live chat channels: Odoo's channel form (options, operators, rules) and who is joined.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{item, Audited};
use crate::event::Aggregate;
use crate::rules::{Rule, RuleInput};
use crate::values::{optional_text, text, Color, Invalid};

/// The options tab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOptions {
    /// The text bubble next to the chat button.
    pub notification_text: String,
    pub welcome_message: String,
    pub input_placeholder: String,
    pub button_color: Color,
    pub button_text_color: Color,
    pub header_color: Color,
    pub header_text_color: Color,
    /// Beyond Odoo 17: at most this many open conversations per operator (`None`: no limit).
    #[serde(default)]
    pub max_conversations_per_operator: Option<u32>,
    /// The public ratings page (`/livechat/channel/{id}`) is published.
    #[serde(default)]
    pub ratings_public: bool,
}

pub const DEFAULT_NOTIFICATION_TEXT: &str = "Have a Question? Chat with us.";
pub const DEFAULT_WELCOME_MESSAGE: &str = "Hello, how may I help you?";
pub const DEFAULT_CHANNEL_NAME: &str = "YourWebsite.com";
const PURPLE: &str = "#875A7B";
const WHITE: &str = "#FFFFFF";

impl Default for ChannelOptions {
    /// Odoo's defaults.
    fn default() -> Self {
        ChannelOptions {
            notification_text: DEFAULT_NOTIFICATION_TEXT.into(),
            welcome_message: DEFAULT_WELCOME_MESSAGE.into(),
            input_placeholder: String::new(),
            button_color: Color::known(PURPLE),
            button_text_color: Color::known(WHITE),
            header_color: Color::known(PURPLE),
            header_text_color: Color::known(WHITE),
            max_conversations_per_operator: None,
            ratings_public: false,
        }
    }
}

impl ChannelOptions {
    fn with_default_colors(&self) -> ChannelOptions {
        let d = ChannelOptions::default();
        ChannelOptions {
            button_color: d.button_color,
            button_text_color: d.button_text_color,
            header_color: d.header_color,
            header_text_color: d.header_text_color,
            ..self.clone()
        }
    }
}

/// Options as submitted: absent fields keep their current value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct OptionsInput {
    pub notification_text: Option<String>,
    pub welcome_message: Option<String>,
    pub input_placeholder: Option<String>,
    pub button_color: Option<String>,
    pub button_text_color: Option<String>,
    pub header_color: Option<String>,
    pub header_text_color: Option<String>,
    /// 0 removes the limit.
    pub max_conversations_per_operator: Option<u32>,
    /// Publishes (or withdraws) the public ratings page.
    pub ratings_public: Option<bool>,
}

impl OptionsInput {
    /// Applies the submitted fields over `current`, collecting every error.
    pub fn apply_to(&self, current: &ChannelOptions) -> Result<ChannelOptions, Vec<Invalid>> {
        let mut errors = Vec::new();
        let mut out = current.clone();
        let mut txt = |field: &str, v: &Option<String>, max: usize, slot: &mut String| {
            if let Some(v) = v {
                match optional_text(field, v, max) {
                    Ok(t) => *slot = t,
                    Err(e) => errors.push(e),
                }
            }
        };
        txt("notification_text", &self.notification_text, 250, &mut out.notification_text);
        txt("welcome_message", &self.welcome_message, 1000, &mut out.welcome_message);
        txt("input_placeholder", &self.input_placeholder, 250, &mut out.input_placeholder);
        let mut col = |field: &str, v: &Option<String>, slot: &mut Color| {
            if let Some(v) = v {
                match Color::parse(field, v) {
                    Ok(c) => *slot = c,
                    Err(e) => errors.push(e),
                }
            }
        };
        col("button_color", &self.button_color, &mut out.button_color);
        col("button_text_color", &self.button_text_color, &mut out.button_text_color);
        col("header_color", &self.header_color, &mut out.header_color);
        col("header_text_color", &self.header_text_color, &mut out.header_text_color);
        match self.max_conversations_per_operator {
            Some(0) => out.max_conversations_per_operator = None,
            Some(n) if n > 1000 => {
                errors.push(Invalid::new("max_conversations_per_operator", "is more than 1000 (0 removes the limit)"))
            }
            Some(n) => out.max_conversations_per_operator = Some(n),
            None => {}
        }
        if let Some(public) = self.ratings_public {
            out.ratings_public = public;
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// Why an operator stopped being joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They left.
    Left,
    /// No activity for longer than the inactivity limit.
    Inactive,
    /// An admin removed them from the channel's operators.
    Removed,
    /// Their account was deactivated.
    Deactivated,
    /// The channel was archived.
    Archived,
}

/// What happened to a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum ChannelEvent {
    ChannelCreated {
        channel_id: Uuid,
        name: String,
        options: ChannelOptions,
    },
    ChannelRenamed {
        name: String,
    },
    ChannelArchived {},
    ChannelOptionsChanged {
        options: ChannelOptions,
    },
    /// The four colors went back to Odoo's defaults.
    ChannelColorsReset {},
    OperatorAdded {
        user_id: Uuid,
    },
    OperatorRemoved {
        user_id: Uuid,
    },
    RuleAdded {
        rule: Rule,
    },
    RuleUpdated {
        rule: Rule,
    },
    RuleRemoved {
        rule_id: Uuid,
    },
    RulesReordered {
        rule_ids: Vec<Uuid>,
    },
    OperatorJoined {
        user_id: Uuid,
    },
    OperatorLeft {
        user_id: Uuid,
        reason: LeaveReason,
    },
}

crate::schema::schema_versions!(ChannelEvent {
    // v2: the options carry every field explicitly (v1 predates the per-operator maximum
    // and the public ratings page).
    ChannelCreated => 2,
    ChannelRenamed => 1,
    ChannelArchived => 1,
    // v2: the options carry every field explicitly (v1 predates the per-operator maximum
    // and the public ratings page).
    ChannelOptionsChanged => 2,
    ChannelColorsReset => 1,
    OperatorAdded => 1,
    OperatorRemoved => 1,
    RuleAdded => 1,
    RuleUpdated => 1,
    RuleRemoved => 1,
    RulesReordered => 1,
    OperatorJoined => 1,
    OperatorLeft => 1,
});

/// A channel as rebuilt from its stream (serialized by the audit projector: a change of
/// shape needs its version bumped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: Option<Uuid>,
    pub name: String,
    pub archived: bool,
    pub options: ChannelOptions,
    pub operators: Vec<Uuid>,
    /// Operators joined now, in the order they joined.
    pub joined: Vec<Uuid>,
    pub rules: Vec<Rule>,
}

impl Aggregate for Channel {
    type Event = ChannelEvent;
    const CATEGORY: &'static str = "channel";

    fn apply(&mut self, e: &ChannelEvent) {
        match e {
            ChannelEvent::ChannelCreated { channel_id, name, options } => {
                *self = Channel {
                    id: Some(*channel_id),
                    name: name.clone(),
                    options: options.clone(),
                    ..Default::default()
                }
            }
            ChannelEvent::ChannelRenamed { name } => self.name = name.clone(),
            ChannelEvent::ChannelArchived {} => self.archived = true,
            ChannelEvent::ChannelOptionsChanged { options } => self.options = options.clone(),
            ChannelEvent::ChannelColorsReset {} => self.options = self.options.with_default_colors(),
            ChannelEvent::OperatorAdded { user_id } => self.operators.push(*user_id),
            ChannelEvent::OperatorRemoved { user_id } => self.operators.retain(|u| u != user_id),
            ChannelEvent::RuleAdded { rule } => self.rules.push(rule.clone()),
            ChannelEvent::RuleUpdated { rule } => {
                if let Some(r) = self.rules.iter_mut().find(|r| r.rule_id == rule.rule_id) {
                    *r = rule.clone();
                }
            }
            ChannelEvent::RuleRemoved { rule_id } => self.rules.retain(|r| r.rule_id != *rule_id),
            ChannelEvent::RulesReordered { rule_ids } => {
                self.rules.sort_by_key(|r| rule_ids.iter().position(|id| *id == r.rule_id).unwrap_or(usize::MAX))
            }
            ChannelEvent::OperatorJoined { user_id } => self.joined.push(*user_id),
            ChannelEvent::OperatorLeft { user_id, .. } => self.joined.retain(|u| u != user_id),
        }
    }
}

impl Audited for Channel {
    /// Odoo's form: name, options, operators (with whether each is joined now), rules.
    fn audit_view(&self) -> serde_json::Value {
        if self.id.is_none() {
            return serde_json::Value::Null;
        }
        let operators: Vec<_> =
            self.operators.iter().map(|u| serde_json::json!({"id": u, "joined": self.joined.contains(u)})).collect();
        let rules: Vec<_> = self.rules.iter().map(|r| item(r, "rule_id")).collect();
        serde_json::json!({
            "name": self.name,
            "archived": self.archived,
            "options": self.options,
            "operators": operators,
            "rules": rules,
        })
    }
}

/// Why a channel command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelError {
    /// 404
    #[error("no such channel")]
    NotFound,
    /// 409
    #[error("this channel already exists")]
    AlreadyExists,
    /// 409
    #[error("the channel is archived")]
    Archived,
    /// 409
    #[error("this user is already an operator of the channel")]
    AlreadyOperator,
    /// 409
    #[error("this user is not an operator of the channel")]
    NotOperator,
    /// 404
    #[error("no such rule in this channel")]
    RuleNotFound,
    /// 404
    #[error("no such active user")]
    UnknownUser,
    /// 422
    #[error("invalid input")]
    Invalid(Vec<Invalid>),
}

impl From<Invalid> for ChannelError {
    fn from(e: Invalid) -> Self {
        ChannelError::Invalid(vec![e])
    }
}

fn open(state: &Channel) -> Result<(), ChannelError> {
    match (state.id, state.archived) {
        (None, _) => Err(ChannelError::NotFound),
        (Some(_), true) => Err(ChannelError::Archived),
        _ => Ok(()),
    }
}

/// Creates a channel with Odoo's default options; its creator becomes its first operator.
pub fn create(
    state: &Channel,
    channel_id: Uuid,
    name: &str,
    creator: Option<Uuid>,
    options: ChannelOptions,
) -> Result<Vec<ChannelEvent>, ChannelError> {
    if state.id.is_some() {
        return Err(ChannelError::AlreadyExists);
    }
    let name = text("name", name, 100)?;
    let mut events = vec![ChannelEvent::ChannelCreated { channel_id, name, options }];
    events.extend(creator.map(|user_id| ChannelEvent::OperatorAdded { user_id }));
    Ok(events)
}

pub fn rename(state: &Channel, name: &str) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    let name = text("name", name, 100)?;
    Ok(if name == state.name { vec![] } else { vec![ChannelEvent::ChannelRenamed { name }] })
}

/// Archiving makes everyone joined leave.
pub fn archive(state: &Channel) -> Result<Vec<ChannelEvent>, ChannelError> {
    if state.id.is_none() {
        return Err(ChannelError::NotFound);
    }
    if state.archived {
        return Ok(vec![]);
    }
    let mut events: Vec<_> = state
        .joined
        .iter()
        .map(|&user_id| ChannelEvent::OperatorLeft { user_id, reason: LeaveReason::Archived })
        .collect();
    events.push(ChannelEvent::ChannelArchived {});
    Ok(events)
}

pub fn change_options(state: &Channel, input: &OptionsInput) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    let options = input.apply_to(&state.options).map_err(ChannelError::Invalid)?;
    Ok(if options == state.options { vec![] } else { vec![ChannelEvent::ChannelOptionsChanged { options }] })
}

pub fn reset_colors(state: &Channel) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    Ok(if state.options.with_default_colors() == state.options {
        vec![]
    } else {
        vec![ChannelEvent::ChannelColorsReset {}]
    })
}

/// `user_is_active`: whether the user exists and is active (the caller looked it up).
pub fn add_operator(state: &Channel, user_id: Uuid, user_is_active: bool) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    if !user_is_active {
        return Err(ChannelError::UnknownUser);
    }
    if state.operators.contains(&user_id) {
        return Err(ChannelError::AlreadyOperator);
    }
    Ok(vec![ChannelEvent::OperatorAdded { user_id }])
}

/// Removing a joined operator makes them leave first.
pub fn remove_operator(state: &Channel, user_id: Uuid) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    if !state.operators.contains(&user_id) {
        return Err(ChannelError::NotOperator);
    }
    let mut events = Vec::new();
    if state.joined.contains(&user_id) {
        events.push(ChannelEvent::OperatorLeft { user_id, reason: LeaveReason::Removed });
    }
    events.push(ChannelEvent::OperatorRemoved { user_id });
    Ok(events)
}

pub fn add_rule(state: &Channel, rule_id: Uuid, input: &RuleInput) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    let rule = input.parse(rule_id).map_err(ChannelError::Invalid)?;
    Ok(vec![ChannelEvent::RuleAdded { rule }])
}

pub fn update_rule(state: &Channel, rule_id: Uuid, input: &RuleInput) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    let current = state.rules.iter().find(|r| r.rule_id == rule_id).ok_or(ChannelError::RuleNotFound)?;
    let rule = input.parse(rule_id).map_err(ChannelError::Invalid)?;
    Ok(if rule == *current { vec![] } else { vec![ChannelEvent::RuleUpdated { rule }] })
}

pub fn remove_rule(state: &Channel, rule_id: Uuid) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    if !state.rules.iter().any(|r| r.rule_id == rule_id) {
        return Err(ChannelError::RuleNotFound);
    }
    Ok(vec![ChannelEvent::RuleRemoved { rule_id }])
}

/// `rule_ids` must name every rule of the channel exactly once.
pub fn reorder_rules(state: &Channel, rule_ids: &[Uuid]) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    let mut given = rule_ids.to_vec();
    given.sort();
    let mut have: Vec<Uuid> = state.rules.iter().map(|r| r.rule_id).collect();
    let current = have.clone();
    have.sort();
    if given != have {
        return Err(Invalid::new("rule_ids", "must list every rule of the channel exactly once").into());
    }
    Ok(if current == rule_ids { vec![] } else { vec![ChannelEvent::RulesReordered { rule_ids: rule_ids.to_vec() }] })
}

/// An operator of the channel joins it (their own presence); joining twice changes nothing.
pub fn join(state: &Channel, user_id: Uuid) -> Result<Vec<ChannelEvent>, ChannelError> {
    open(state)?;
    if !state.operators.contains(&user_id) {
        return Err(ChannelError::NotOperator);
    }
    Ok(if state.joined.contains(&user_id) { vec![] } else { vec![ChannelEvent::OperatorJoined { user_id }] })
}

/// Leaving when not joined changes nothing.
pub fn leave(state: &Channel, user_id: Uuid, reason: LeaveReason) -> Result<Vec<ChannelEvent>, ChannelError> {
    if state.id.is_none() {
        return Err(ChannelError::NotFound);
    }
    Ok(if state.joined.contains(&user_id) { vec![ChannelEvent::OperatorLeft { user_id, reason }] } else { vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, then, History};

    impl History for ChannelEvent {
        type State = Channel;
    }
    use crate::event::{decode, encode};
    use crate::rules::RuleAction;

    const ADMIN: Uuid = Uuid::from_u128(1);
    const ADA: Uuid = Uuid::from_u128(2);

    fn support() -> Vec<ChannelEvent> {
        create(&Channel::default(), Uuid::from_u128(10), "Support", Some(ADMIN), ChannelOptions::default()).unwrap()
    }

    #[test]
    fn the_creator_becomes_the_first_operator() {
        assert_eq!(
            support(),
            vec![
                ChannelEvent::ChannelCreated {
                    channel_id: Uuid::from_u128(10),
                    name: "Support".into(),
                    options: ChannelOptions::default()
                },
                ChannelEvent::OperatorAdded { user_id: ADMIN }
            ]
        );
        let err = create(&Channel::default(), Uuid::nil(), "  ", None, ChannelOptions::default()).unwrap_err();
        assert_eq!(err, ChannelError::Invalid(vec![Invalid::new("name", "is required")]));
    }

    #[test]
    fn adding_an_operator_twice_or_removing_a_non_operator_is_refused() {
        let h = then(&support(), add_operator(&given(&support()), ADA, true).unwrap());
        assert_eq!(add_operator(&given(&h), ADA, true), Err(ChannelError::AlreadyOperator));
        assert_eq!(add_operator(&given(&h), Uuid::from_u128(99), false), Err(ChannelError::UnknownUser));
        assert_eq!(remove_operator(&given(&h), Uuid::from_u128(99)), Err(ChannelError::NotOperator));
        let h = then(&h, remove_operator(&given(&h), ADA).unwrap());
        assert_eq!(given(&h).operators, vec![ADMIN]);
    }

    #[test]
    fn removing_a_joined_operator_makes_them_leave_first() {
        let h = then(&support(), join(&given(&support()), ADMIN).unwrap());
        assert_eq!(
            remove_operator(&given(&h), ADMIN).unwrap(),
            vec![
                ChannelEvent::OperatorLeft { user_id: ADMIN, reason: LeaveReason::Removed },
                ChannelEvent::OperatorRemoved { user_id: ADMIN }
            ]
        );
    }

    #[test]
    fn only_operators_join_and_joining_twice_changes_nothing() {
        let s = given(&support());
        assert_eq!(join(&s, ADA), Err(ChannelError::NotOperator));
        let h = then(&support(), join(&s, ADMIN).unwrap());
        assert_eq!(join(&given(&h), ADMIN), Ok(vec![]));
        assert_eq!(leave(&given(&support()), ADMIN, LeaveReason::Left), Ok(vec![]));
        let h = then(&h, leave(&given(&h), ADMIN, LeaveReason::Inactive).unwrap());
        assert!(given(&h).joined.is_empty());
    }

    #[test]
    fn bad_colors_are_refused_and_a_reset_restores_odoos_colors() {
        let bad = OptionsInput {
            button_color: Some("purple".into()),
            header_color: Some("#12345".into()),
            ..Default::default()
        };
        let err = change_options(&given(&support()), &bad).unwrap_err();
        let ChannelError::Invalid(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["button_color", "header_color"]);

        let good = OptionsInput {
            button_color: Some("#000000".into()),
            welcome_message: Some("Hi!".into()),
            ..Default::default()
        };
        let h = then(&support(), change_options(&given(&support()), &good).unwrap());
        assert_eq!(given(&h).options.button_color.as_str(), "#000000");
        let h = then(&h, reset_colors(&given(&h)).unwrap());
        assert_eq!(given(&h).options.button_color.as_str(), "#875A7B");
        assert_eq!(given(&h).options.welcome_message, "Hi!", "a color reset keeps the texts");
        assert_eq!(reset_colors(&given(&h)), Ok(vec![]));
    }

    #[test]
    fn the_ratings_page_is_published_and_withdrawn_through_the_options() {
        assert!(!ChannelOptions::default().ratings_public, "unpublished until the admin says so");
        let publish = OptionsInput { ratings_public: Some(true), ..Default::default() };
        let h = then(&support(), change_options(&given(&support()), &publish).unwrap());
        assert!(given(&h).options.ratings_public);
        assert_eq!(change_options(&given(&h), &publish), Ok(vec![]), "already published");
        let other = OptionsInput { welcome_message: Some("Hi!".into()), ..Default::default() };
        let h = then(&h, change_options(&given(&h), &other).unwrap());
        assert!(given(&h).options.ratings_public, "absent means unchanged");
        let withdraw = OptionsInput { ratings_public: Some(false), ..Default::default() };
        let h = then(&h, change_options(&given(&h), &withdraw).unwrap());
        assert!(!given(&h).options.ratings_public);
        // Options stored before the field existed read as unpublished.
        let mut stored = serde_json::to_value(ChannelOptions::default()).unwrap();
        stored.as_object_mut().unwrap().remove("ratings_public");
        assert!(!serde_json::from_value::<ChannelOptions>(stored).unwrap().ratings_public);
    }

    #[test]
    fn an_archived_channel_cannot_be_edited_and_its_operators_leave() {
        let h = then(&support(), join(&given(&support()), ADMIN).unwrap());
        let archived = archive(&given(&h)).unwrap();
        assert_eq!(
            archived,
            vec![
                ChannelEvent::OperatorLeft { user_id: ADMIN, reason: LeaveReason::Archived },
                ChannelEvent::ChannelArchived {}
            ]
        );
        let h = then(&h, archived);
        let s = given(&h);
        assert_eq!(rename(&s, "New"), Err(ChannelError::Archived));
        assert_eq!(change_options(&s, &OptionsInput::default()), Err(ChannelError::Archived));
        assert_eq!(add_rule(&s, Uuid::nil(), &RuleInput::default()), Err(ChannelError::Archived));
        assert_eq!(join(&s, ADMIN), Err(ChannelError::Archived));
        assert_eq!(archive(&s), Ok(vec![]));
        assert_eq!(rename(&Channel::default(), "x"), Err(ChannelError::NotFound));
    }

    #[test]
    fn rules_are_added_edited_reordered_and_removed() {
        let (r1, r2) = (Uuid::from_u128(21), Uuid::from_u128(22));
        let shop = RuleInput { action: Some(RuleAction::Show), url_regex: "/shop".into(), ..Default::default() };
        let mut h = support();
        h = then(&h, add_rule(&given(&h), r1, &shop).unwrap());
        h = then(&h, add_rule(&given(&h), r2, &RuleInput::default()).unwrap());
        let bad = RuleInput { url_regex: "(".into(), ..Default::default() };
        assert!(matches!(add_rule(&given(&h), Uuid::nil(), &bad), Err(ChannelError::Invalid(_))));
        let hide = RuleInput { action: Some(RuleAction::Hide), ..shop.clone() };
        h = then(&h, update_rule(&given(&h), r1, &hide).unwrap());
        assert_eq!(given(&h).rules[0].action, RuleAction::Hide);
        assert_eq!(update_rule(&given(&h), Uuid::nil(), &hide), Err(ChannelError::RuleNotFound));
        assert!(reorder_rules(&given(&h), &[r2]).is_err(), "must name every rule");
        assert!(reorder_rules(&given(&h), &[r2, r2]).is_err());
        h = then(&h, reorder_rules(&given(&h), &[r2, r1]).unwrap());
        assert_eq!(given(&h).rules.iter().map(|r| r.rule_id).collect::<Vec<_>>(), vec![r2, r1]);
        h = then(&h, remove_rule(&given(&h), r2).unwrap());
        assert_eq!(given(&h).rules.len(), 1);
        assert_eq!(remove_rule(&given(&h), r2), Err(ChannelError::RuleNotFound));
    }

    #[test]
    fn channel_events_keep_their_stored_names() {
        let names: Vec<String> = support().iter().map(|e| encode(e).0).collect();
        assert_eq!(names, vec!["ChannelCreated", "OperatorAdded"]);
        for e in support() {
            let (t, d) = encode(&e);
            assert_eq!(decode::<ChannelEvent>(&t, &d).unwrap(), e);
        }
    }
}
