//! Chatbot scripts (Odoo's `chatbot.script`): a title, the name visitors see as the bot,
//! an active flag and ordered steps, some of them questions whose answers later steps may
//! depend on ("only if"). One stream per script (`chatbot-<uuid>`); its stream version is the
//! script's version, and a conversation copies the whole [`Script`] when its bot starts, so
//! editing a script never changes a conversation already running.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{item, Audited};
use crate::event::Aggregate;
use crate::values::{optional_text, text, Invalid};

pub const MAX_TITLE_CHARS: usize = 100;
pub use crate::limits::MAX_MESSAGE_CHARS;
pub const MAX_LABEL_CHARS: usize = 200;
pub const MAX_LINK_CHARS: usize = 2000;
pub const MAX_STEPS: usize = 100;
pub const MAX_ANSWERS: usize = 20;

/// What a step does (Odoo's `step_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// The bot says it and goes on.
    #[default]
    Text,
    QuestionSelection,
    QuestionEmail,
    QuestionPhone,
    FreeInputSingle,
    FreeInputMulti,
    /// Hands the conversation to an operator through the channel's routing.
    ForwardOperator,
}

impl StepType {
    /// Whether the bot waits for the visitor after saying it.
    pub fn expects_answer(self) -> bool {
        !matches!(self, StepType::Text | StepType::ForwardOperator)
    }
}

/// A choice of a `question_selection` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub answer_id: Uuid,
    pub label: String,
    /// Choosing it ends the script and sends the visitor there.
    pub redirect_link: Option<String>,
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub step_id: Uuid,
    pub step_type: StepType,
    pub message: String,
    pub answers: Vec<Answer>,
    /// "Only if": answers of earlier steps; the step runs when, for every earlier step named
    /// here, the visitor chose one of the listed answers there.
    pub only_if: Vec<Uuid>,
}

/// A script version: what a running conversation follows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub chatbot_id: Uuid,
    /// The script stream's version when copied.
    pub version: u64,
    pub title: String,
    /// The bot's name as visitors see it.
    pub author_name: String,
    pub steps: Vec<Step>,
}

impl Script {
    fn step_index(&self, step_id: Uuid) -> Option<usize> {
        self.steps.iter().position(|s| s.step_id == step_id)
    }

    /// The step owning `answer_id`, by index.
    pub fn answer_owner(&self, answer_id: Uuid) -> Option<usize> {
        self.steps.iter().position(|s| s.answers.iter().any(|a| a.answer_id == answer_id))
    }

    /// Odoo's welcome steps: every step up to and including the first that is not `text`.
    pub fn welcome_steps(&self) -> &[Step] {
        let end = self.steps.iter().position(|s| s.step_type != StepType::Text).map_or(self.steps.len(), |i| i + 1);
        &self.steps[..end]
    }
}

/// Odoo's `first_step_warning`: the welcome part ends badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// The welcome ends by forwarding to an operator: the bot greets nobody.
    FirstStepOperator,
    /// The welcome ends in a step expecting no answer: the bot never waits for the visitor.
    FirstStepInvalid,
}

/// Warnings about a script, as Odoo shows them on the form.
pub fn warnings(script: &Script) -> Vec<Warning> {
    match script.welcome_steps().last() {
        Some(s) if s.step_type == StepType::ForwardOperator => vec![Warning::FirstStepOperator],
        Some(s) if !s.step_type.expects_answer() => vec![Warning::FirstStepInvalid],
        _ => vec![],
    }
}

/// What happened to a script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "data")]
pub enum ChatbotEvent {
    ChatbotCreated {
        chatbot_id: Uuid,
        title: String,
        /// `None`: the title (and it follows renames).
        author_name: Option<String>,
        active: bool,
    },
    ChatbotChanged {
        title: String,
        author_name: Option<String>,
        active: bool,
    },
    ChatbotStepAdded {
        step_id: Uuid,
        step_type: StepType,
        message: String,
        /// Its place in the list (0 first).
        index: usize,
    },
    ChatbotStepEdited {
        step_id: Uuid,
        step_type: StepType,
        message: String,
        only_if: Vec<Uuid>,
    },
    /// Removed with its answers; conditions on them are dropped.
    ChatbotStepRemoved {
        step_id: Uuid,
    },
    /// Steps in a new order; `pruned` are the conditions that no longer point at an earlier
    /// step, dropped from the steps holding them.
    ChatbotStepsReordered {
        order: Vec<Uuid>,
        pruned: Vec<Uuid>,
    },
    ChatbotAnswerAdded {
        step_id: Uuid,
        answer_id: Uuid,
        label: String,
        redirect_link: Option<String>,
    },
    ChatbotAnswerEdited {
        step_id: Uuid,
        answer_id: Uuid,
        label: String,
        redirect_link: Option<String>,
    },
    /// Conditions on it are dropped.
    ChatbotAnswerRemoved {
        step_id: Uuid,
        answer_id: Uuid,
    },
    ChatbotAnswersReordered {
        step_id: Uuid,
        order: Vec<Uuid>,
    },
}

crate::schema::schema_versions!(ChatbotEvent {
    ChatbotCreated => 1,
    ChatbotChanged => 1,
    ChatbotStepAdded => 1,
    ChatbotStepEdited => 1,
    ChatbotStepRemoved => 1,
    ChatbotStepsReordered => 1,
    ChatbotAnswerAdded => 1,
    ChatbotAnswerEdited => 1,
    ChatbotAnswerRemoved => 1,
    ChatbotAnswersReordered => 1,
});

/// A script as rebuilt from its stream (serialized by the audit projector: a change of
/// shape needs its version bumped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Chatbot {
    pub id: Option<Uuid>,
    pub title: String,
    /// Set explicitly; otherwise the title is the author name.
    pub author_name: Option<String>,
    pub active: bool,
    pub steps: Vec<Step>,
}

impl Chatbot {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn author(&self) -> &str {
        self.author_name.as_deref().unwrap_or(&self.title)
    }

    /// The script at stream version `version`, as a conversation copies it.
    pub fn script(&self, version: u64) -> Script {
        Script {
            chatbot_id: self.id.unwrap_or_default(),
            version,
            title: self.title.clone(),
            author_name: self.author().to_string(),
            steps: self.steps.clone(),
        }
    }

    fn step_mut(&mut self, step_id: Uuid) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.step_id == step_id)
    }

    fn drop_conditions(&mut self, answers: &[Uuid]) {
        for s in &mut self.steps {
            s.only_if.retain(|a| !answers.contains(a));
        }
    }
}

impl Aggregate for Chatbot {
    type Event = ChatbotEvent;
    const CATEGORY: &'static str = "chatbot";

    fn apply(&mut self, e: &ChatbotEvent) {
        match e {
            ChatbotEvent::ChatbotCreated { chatbot_id, title, author_name, active } => {
                *self = Chatbot {
                    id: Some(*chatbot_id),
                    title: title.clone(),
                    author_name: author_name.clone(),
                    active: *active,
                    steps: vec![],
                }
            }
            ChatbotEvent::ChatbotChanged { title, author_name, active } => {
                self.title = title.clone();
                self.author_name = author_name.clone();
                self.active = *active;
            }
            ChatbotEvent::ChatbotStepAdded { step_id, step_type, message, index } => {
                let step = Step {
                    step_id: *step_id,
                    step_type: *step_type,
                    message: message.clone(),
                    answers: vec![],
                    only_if: vec![],
                };
                self.steps.insert((*index).min(self.steps.len()), step);
            }
            ChatbotEvent::ChatbotStepEdited { step_id, step_type, message, only_if } => {
                if let Some(s) = self.step_mut(*step_id) {
                    s.step_type = *step_type;
                    s.message = message.clone();
                    s.only_if = only_if.clone();
                }
            }
            ChatbotEvent::ChatbotStepRemoved { step_id } => {
                let gone: Vec<Uuid> = self
                    .steps
                    .iter()
                    .filter(|s| s.step_id == *step_id)
                    .flat_map(|s| s.answers.iter().map(|a| a.answer_id))
                    .collect();
                self.steps.retain(|s| s.step_id != *step_id);
                self.drop_conditions(&gone);
            }
            ChatbotEvent::ChatbotStepsReordered { order, pruned } => {
                self.steps.sort_by_key(|s| order.iter().position(|id| *id == s.step_id).unwrap_or(usize::MAX));
                self.drop_conditions(pruned);
            }
            ChatbotEvent::ChatbotAnswerAdded { step_id, answer_id, label, redirect_link } => {
                if let Some(s) = self.step_mut(*step_id) {
                    s.answers.push(Answer {
                        answer_id: *answer_id,
                        label: label.clone(),
                        redirect_link: redirect_link.clone(),
                    });
                }
            }
            ChatbotEvent::ChatbotAnswerEdited { step_id, answer_id, label, redirect_link } => {
                if let Some(a) =
                    self.step_mut(*step_id).and_then(|s| s.answers.iter_mut().find(|a| a.answer_id == *answer_id))
                {
                    a.label = label.clone();
                    a.redirect_link = redirect_link.clone();
                }
            }
            ChatbotEvent::ChatbotAnswerRemoved { step_id, answer_id } => {
                if let Some(s) = self.step_mut(*step_id) {
                    s.answers.retain(|a| a.answer_id != *answer_id);
                }
                self.drop_conditions(&[*answer_id]);
            }
            ChatbotEvent::ChatbotAnswersReordered { step_id, order } => {
                if let Some(s) = self.step_mut(*step_id) {
                    s.answers.sort_by_key(|a| order.iter().position(|id| *id == a.answer_id).unwrap_or(usize::MAX));
                }
            }
        }
    }
}

impl Audited for Chatbot {
    /// The form: title, the author name visitors see, active, and the steps with their
    /// answers and conditions.
    fn audit_view(&self) -> serde_json::Value {
        if self.id.is_none() {
            return serde_json::Value::Null;
        }
        let steps: Vec<_> = self
            .steps
            .iter()
            .map(|s| {
                let answers: Vec<_> = s.answers.iter().map(|a| item(a, "answer_id")).collect();
                serde_json::json!({
                    "id": s.step_id,
                    "step_type": s.step_type,
                    "message": s.message,
                    "answers": answers,
                    "only_if": s.only_if,
                })
            })
            .collect();
        serde_json::json!({
            "title": self.title,
            "author_name": self.author(),
            "active": self.active,
            "steps": steps,
        })
    }
}

/// Why a script command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatbotError {
    /// 404
    #[error("no such chatbot")]
    NotFound,
    /// 404
    #[error("no such step in this chatbot")]
    StepNotFound,
    /// 404
    #[error("no such answer in this step")]
    AnswerNotFound,
    /// 409
    #[error("this chatbot already exists")]
    AlreadyExists,
    /// 422
    #[error("invalid chatbot")]
    Invalid(Vec<Invalid>),
}

impl From<Invalid> for ChatbotError {
    fn from(i: Invalid) -> Self {
        ChatbotError::Invalid(vec![i])
    }
}

fn author_name(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Ok(Some(text("author_name", n, MAX_TITLE_CHARS)?)),
        None => Ok(None),
    }
}

fn message(step_type: StepType, raw: &str) -> Result<String, Invalid> {
    if raw.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Invalid::new("message", format!("is longer than {MAX_MESSAGE_CHARS} characters")));
    }
    if raw.contains('\0') {
        return Err(Invalid::new("message", "contains a NUL character"));
    }
    // A forward may stay silent; every other step says something.
    if raw.trim().is_empty() && step_type != StepType::ForwardOperator {
        return Err(Invalid::new("message", "is required"));
    }
    Ok(raw.trim().to_string())
}

fn redirect_link(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    let Some(link) = raw.map(str::trim).filter(|l| !l.is_empty()) else { return Ok(None) };
    let link = optional_text("redirect_link", link, MAX_LINK_CHARS)?;
    let lower = link.to_ascii_lowercase();
    if !(lower.starts_with("https://")
        || lower.starts_with("http://")
        || (link.starts_with('/') && !link.starts_with("//")))
    {
        return Err(Invalid::new("redirect_link", "must be an http(s) URL or a path starting with /"));
    }
    Ok(Some(link))
}

/// Creates a script; the author name defaults to the title.
pub fn create(
    state: &Chatbot,
    chatbot_id: Uuid,
    title: &str,
    author: Option<&str>,
    active: bool,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    if state.exists() {
        return Err(ChatbotError::AlreadyExists);
    }
    let mut errors = vec![];
    let title = text("title", title, MAX_TITLE_CHARS).map_err(|e| errors.push(e)).ok();
    let author_name = author_name(author).map_err(|e| errors.push(e)).ok();
    match (title, author_name) {
        (Some(title), Some(author_name)) => {
            Ok(vec![ChatbotEvent::ChatbotCreated { chatbot_id, title, author_name, active }])
        }
        _ => Err(ChatbotError::Invalid(errors)),
    }
}

/// Changes the title, the author name (`Some("")` goes back to following the title) and
/// the active flag; absent ones keep their value.
pub fn change(
    state: &Chatbot,
    title: Option<&str>,
    author: Option<&str>,
    active: Option<bool>,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    if !state.exists() {
        return Err(ChatbotError::NotFound);
    }
    let mut errors = vec![];
    let title = title.map(|t| text("title", t, MAX_TITLE_CHARS)).transpose().map_err(|e| errors.push(e)).ok();
    let author = author.map(|a| author_name(Some(a))).transpose().map_err(|e| errors.push(e)).ok();
    if !errors.is_empty() {
        return Err(ChatbotError::Invalid(errors));
    }
    let title = title.flatten().unwrap_or_else(|| state.title.clone());
    let author_name = match author.flatten() {
        Some(a) => a,
        None => state.author_name.clone(),
    };
    let active = active.unwrap_or(state.active);
    if (&title, &author_name, active) == (&state.title, &state.author_name, state.active) {
        return Ok(vec![]);
    }
    Ok(vec![ChatbotEvent::ChatbotChanged { title, author_name, active }])
}

fn existing(state: &Chatbot) -> Result<(), ChatbotError> {
    if state.exists() {
        Ok(())
    } else {
        Err(ChatbotError::NotFound)
    }
}

/// Adds a step at `index` (default: last).
pub fn add_step(
    state: &Chatbot,
    step_id: Uuid,
    step_type: StepType,
    text: &str,
    index: Option<usize>,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    existing(state)?;
    if state.steps.iter().any(|s| s.step_id == step_id) {
        return Err(ChatbotError::AlreadyExists);
    }
    if state.steps.len() >= MAX_STEPS {
        return Err(Invalid::new("steps", format!("a script has at most {MAX_STEPS} steps")).into());
    }
    let message = message(step_type, text)?;
    let index = index.unwrap_or(state.steps.len());
    if index > state.steps.len() {
        return Err(Invalid::new("index", format!("is past the end of the {} steps", state.steps.len())).into());
    }
    Ok(vec![ChatbotEvent::ChatbotStepAdded { step_id, step_type, message, index }])
}

/// Changes a step's type, message and conditions (absent ones keep their value). Conditions
/// must name answers of earlier steps; a step with answers stays a `question_selection`.
pub fn edit_step(
    state: &Chatbot,
    step_id: Uuid,
    step_type: Option<StepType>,
    text: Option<&str>,
    only_if: Option<&[Uuid]>,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    existing(state)?;
    let script = state.script(0);
    let index = script.step_index(step_id).ok_or(ChatbotError::StepNotFound)?;
    let step = &state.steps[index];
    let step_type = step_type.unwrap_or(step.step_type);
    let mut errors = vec![];
    if step_type != StepType::QuestionSelection && !step.answers.is_empty() {
        errors.push(Invalid::new("step_type", "only a question_selection step has answers: remove them first"));
    }
    let message = match text {
        Some(t) => message(step_type, t).map_err(|e| errors.push(e)).unwrap_or_default(),
        None => message(step_type, &step.message).map_err(|e| errors.push(e)).unwrap_or_default(),
    };
    let mut conditions = vec![];
    for (i, a) in only_if.unwrap_or(&step.only_if).iter().enumerate() {
        match script.answer_owner(*a) {
            Some(owner) if owner < index => {
                if !conditions.contains(a) {
                    conditions.push(*a)
                }
            }
            Some(_) => errors.push(Invalid::new(&format!("only_if[{i}]"), "is an answer of a later step")),
            None => errors.push(Invalid::new(&format!("only_if[{i}]"), "is not an answer of this chatbot")),
        }
    }
    if !errors.is_empty() {
        return Err(ChatbotError::Invalid(errors));
    }
    if (step_type, &message, &conditions) == (step.step_type, &step.message, &step.only_if) {
        return Ok(vec![]);
    }
    Ok(vec![ChatbotEvent::ChatbotStepEdited { step_id, step_type, message, only_if: conditions }])
}

pub fn remove_step(state: &Chatbot, step_id: Uuid) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    existing(state)?;
    state.steps.iter().find(|s| s.step_id == step_id).ok_or(ChatbotError::StepNotFound)?;
    Ok(vec![ChatbotEvent::ChatbotStepRemoved { step_id }])
}

/// Puts the steps in `order` (every step exactly once) and drops the conditions that would
/// point at a step that is no longer earlier (Odoo prunes them the same way).
pub fn reorder_steps(state: &Chatbot, order: &[Uuid]) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    existing(state)?;
    same_ids("order", state.steps.iter().map(|s| s.step_id), order)?;
    let current: Vec<Uuid> = state.steps.iter().map(|s| s.step_id).collect();
    if current == order {
        return Ok(vec![]);
    }
    let script = state.script(0);
    let position = |step: Uuid| order.iter().position(|id| *id == step).unwrap_or(usize::MAX);
    let mut pruned = vec![];
    for s in &state.steps {
        for a in &s.only_if {
            let owner = script.answer_owner(*a).map(|i| state.steps[i].step_id);
            if owner.is_none_or(|o| position(o) >= position(s.step_id)) && !pruned.contains(a) {
                pruned.push(*a);
            }
        }
    }
    Ok(vec![ChatbotEvent::ChatbotStepsReordered { order: order.to_vec(), pruned }])
}

fn same_ids(field: &str, current: impl Iterator<Item = Uuid>, order: &[Uuid]) -> Result<(), ChatbotError> {
    let mut a: Vec<Uuid> = current.collect();
    let mut b = order.to_vec();
    a.sort();
    b.sort();
    if a != b {
        return Err(Invalid::new(field, "must list every id exactly once").into());
    }
    Ok(())
}

fn selection_step(state: &Chatbot, step_id: Uuid) -> Result<&Step, ChatbotError> {
    existing(state)?;
    state.steps.iter().find(|s| s.step_id == step_id).ok_or(ChatbotError::StepNotFound)
}

/// Adds an answer to a `question_selection` step.
pub fn add_answer(
    state: &Chatbot,
    step_id: Uuid,
    answer_id: Uuid,
    label: &str,
    link: Option<&str>,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    let step = selection_step(state, step_id)?;
    if step.answers.iter().any(|a| a.answer_id == answer_id) {
        return Err(ChatbotError::AlreadyExists);
    }
    let mut errors = vec![];
    if step.step_type != StepType::QuestionSelection {
        errors.push(Invalid::new("step_type", "only a question_selection step has answers"));
    }
    if step.answers.len() >= MAX_ANSWERS {
        errors.push(Invalid::new("answers", format!("a step has at most {MAX_ANSWERS} answers")));
    }
    let label = text("label", label, MAX_LABEL_CHARS).map_err(|e| errors.push(e)).unwrap_or_default();
    let redirect_link = redirect_link(link).map_err(|e| errors.push(e)).unwrap_or_default();
    if !errors.is_empty() {
        return Err(ChatbotError::Invalid(errors));
    }
    Ok(vec![ChatbotEvent::ChatbotAnswerAdded { step_id, answer_id, label, redirect_link }])
}

/// Changes an answer's label and/or link (`Some("")` removes the link).
pub fn edit_answer(
    state: &Chatbot,
    step_id: Uuid,
    answer_id: Uuid,
    label: Option<&str>,
    link: Option<&str>,
) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    let step = selection_step(state, step_id)?;
    let answer = step.answers.iter().find(|a| a.answer_id == answer_id).ok_or(ChatbotError::AnswerNotFound)?;
    let mut errors = vec![];
    let label = match label {
        Some(l) => text("label", l, MAX_LABEL_CHARS).map_err(|e| errors.push(e)).unwrap_or_default(),
        None => answer.label.clone(),
    };
    let redirect_link = match link {
        Some(l) => redirect_link(Some(l)).map_err(|e| errors.push(e)).unwrap_or_default(),
        None => answer.redirect_link.clone(),
    };
    if !errors.is_empty() {
        return Err(ChatbotError::Invalid(errors));
    }
    if (&label, &redirect_link) == (&answer.label, &answer.redirect_link) {
        return Ok(vec![]);
    }
    Ok(vec![ChatbotEvent::ChatbotAnswerEdited { step_id, answer_id, label, redirect_link }])
}

pub fn remove_answer(state: &Chatbot, step_id: Uuid, answer_id: Uuid) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    let step = selection_step(state, step_id)?;
    step.answers.iter().find(|a| a.answer_id == answer_id).ok_or(ChatbotError::AnswerNotFound)?;
    Ok(vec![ChatbotEvent::ChatbotAnswerRemoved { step_id, answer_id }])
}

pub fn reorder_answers(state: &Chatbot, step_id: Uuid, order: &[Uuid]) -> Result<Vec<ChatbotEvent>, ChatbotError> {
    let step = selection_step(state, step_id)?;
    same_ids("order", step.answers.iter().map(|a| a.answer_id), order)?;
    if step.answers.iter().map(|a| a.answer_id).eq(order.iter().copied()) {
        return Ok(vec![]);
    }
    Ok(vec![ChatbotEvent::ChatbotAnswersReordered { step_id, order: order.to_vec() }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, then, History};

    impl History for ChatbotEvent {
        type State = Chatbot;
    }
    use crate::event::{decode, encode};

    const BOT: Uuid = Uuid::from_u128(1);

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(100 + n)
    }

    /// Welcome text, a choice (two answers), an email question, a forward.
    fn sample() -> Vec<ChatbotEvent> {
        let h = create(&Chatbot::default(), BOT, "Support bot", None, true).unwrap();
        let h = then(&h, add_step(&given(&h), id(1), StepType::Text, "Hello!", None));
        let h = then(&h, add_step(&given(&h), id(2), StepType::QuestionSelection, "What about?", None));
        let h = then(&h, add_answer(&given(&h), id(2), id(21), "Sales", None));
        let h = then(&h, add_answer(&given(&h), id(2), id(22), "Docs", Some("https://example.com/docs")));
        let h = then(&h, add_step(&given(&h), id(3), StepType::QuestionEmail, "Your email?", None));
        then(&h, add_step(&given(&h), id(4), StepType::ForwardOperator, "", None))
    }

    #[test]
    fn the_author_name_follows_the_title_until_it_is_set() {
        let h = create(&Chatbot::default(), BOT, "  Support bot ", None, true).unwrap();
        assert_eq!(given(&h).author(), "Support bot");
        let h = then(&h, change(&given(&h), Some("Helper"), None, None));
        assert_eq!(given(&h).author(), "Helper", "follows renames");
        let h = then(&h, change(&given(&h), None, Some("Robin"), Some(false)));
        let s = given(&h);
        assert_eq!((s.author(), s.title.as_str(), s.active), ("Robin", "Helper", false));
        let h = then(&h, change(&given(&h), None, Some(""), None));
        assert_eq!(given(&h).author(), "Helper", "blank goes back to the title");
        assert_eq!(change(&given(&h), Some("Helper"), None, Some(false)), Ok(vec![]), "no change, no event");
        assert!(matches!(create(&Chatbot::default(), BOT, " ", None, true), Err(ChatbotError::Invalid(_))));
        assert_eq!(create(&given(&h), BOT, "x", None, true), Err(ChatbotError::AlreadyExists));
        assert_eq!(change(&Chatbot::default(), Some("x"), None, None), Err(ChatbotError::NotFound));
    }

    #[test]
    fn steps_and_answers_are_added_edited_reordered_and_removed() {
        let h = sample();
        let s = given(&h);
        let ids: Vec<Uuid> = s.steps.iter().map(|s| s.step_id).collect();
        assert_eq!(ids, vec![id(1), id(2), id(3), id(4)]);
        assert_eq!(s.steps[1].answers[1].redirect_link.as_deref(), Some("https://example.com/docs"));
        let h = then(&h, add_step(&s, id(5), StepType::Text, "First!", Some(0)));
        assert_eq!(given(&h).steps[0].step_id, id(5));
        let h = then(&h, reorder_answers(&given(&h), id(2), &[id(22), id(21)]));
        assert_eq!(given(&h).steps[2].answers[0].answer_id, id(22));
        let h = then(&h, edit_answer(&given(&h), id(2), id(22), Some("Documentation"), Some("")));
        assert_eq!(given(&h).steps[2].answers[0].redirect_link, None);
        let h = then(&h, remove_step(&given(&h), id(5)));
        assert_eq!(given(&h).steps.len(), 4);
        assert_eq!(remove_step(&given(&h), id(5)), Err(ChatbotError::StepNotFound));
        assert_eq!(remove_answer(&given(&h), id(2), id(99)), Err(ChatbotError::AnswerNotFound));
        let bad_order = reorder_steps(&given(&h), &[id(1), id(2)]);
        assert!(matches!(bad_order, Err(ChatbotError::Invalid(e)) if e[0].field == "order"));
    }

    #[test]
    fn answers_belong_to_selection_steps_and_links_are_urls_or_paths() {
        let s = given(&sample());
        let on_text = add_answer(&s, id(1), id(30), "Yes", None);
        assert!(matches!(on_text, Err(ChatbotError::Invalid(e)) if e[0].field == "step_type"));
        let bad_link = add_answer(&s, id(2), id(30), "Yes", Some("javascript:alert(1)"));
        assert!(matches!(bad_link, Err(ChatbotError::Invalid(e)) if e[0].field == "redirect_link"));
        assert!(add_answer(&s, id(2), id(30), "Yes", Some("/contact")).is_ok());
        let retype = edit_step(&s, id(2), Some(StepType::Text), None, None);
        assert!(matches!(retype, Err(ChatbotError::Invalid(e)) if e[0].field == "step_type"));
        let silent = add_step(&s, id(9), StepType::Text, "  ", None);
        assert!(matches!(silent, Err(ChatbotError::Invalid(e)) if e[0].field == "message"));
    }

    #[test]
    fn conditions_point_at_earlier_steps_and_reordering_prunes_the_others() {
        let h = sample();
        let s = given(&h);
        let later = edit_step(&s, id(1), None, None, Some(&[id(21)]));
        assert!(matches!(later, Err(ChatbotError::Invalid(e)) if e[0].field == "only_if[0]"));
        let unknown = edit_step(&s, id(3), None, None, Some(&[id(77)]));
        assert!(matches!(unknown, Err(ChatbotError::Invalid(e)) if e[0].message.contains("not an answer")));
        let h = then(&h, edit_step(&s, id(3), None, None, Some(&[id(21)])));
        assert_eq!(given(&h).steps[2].only_if, vec![id(21)]);
        // The email step moves before the question: its condition no longer points back.
        let reordered = reorder_steps(&given(&h), &[id(1), id(3), id(2), id(4)]).unwrap();
        assert_eq!(
            reordered,
            vec![ChatbotEvent::ChatbotStepsReordered { order: vec![id(1), id(3), id(2), id(4)], pruned: vec![id(21)] }]
        );
        let h = then(&h, reordered);
        let s = given(&h);
        assert_eq!((s.steps[1].step_id, s.steps[1].only_if.clone()), (id(3), vec![]));
        // Removing an answer drops the conditions on it.
        let h = then(&h, reorder_steps(&s, &[id(1), id(2), id(3), id(4)]));
        let h = then(&h, edit_step(&given(&h), id(3), None, None, Some(&[id(22)])));
        let h = then(&h, remove_answer(&given(&h), id(2), id(22)));
        assert!(given(&h).steps[2].only_if.is_empty());
    }

    #[test]
    fn the_welcome_part_is_warned_about_as_odoo_does() {
        let s = given(&sample()).script(6);
        assert_eq!(s.welcome_steps().len(), 2, "up to and including the first question");
        assert_eq!(warnings(&s), vec![]);
        let forward = given(&then(&sample(), vec![ChatbotEvent::ChatbotStepRemoved { step_id: id(2) }]));
        // Welcome: text, then the email question: fine.
        assert_eq!(warnings(&forward.script(0)), vec![]);
        let only_text = Script { steps: vec![given(&sample()).steps[0].clone()], ..Default::default() };
        assert_eq!(warnings(&only_text), vec![Warning::FirstStepInvalid]);
        let mut to_operator = given(&sample()).script(0);
        to_operator.steps.retain(|s| s.step_id != id(2) && s.step_id != id(3));
        assert_eq!(warnings(&to_operator), vec![Warning::FirstStepOperator]);
    }

    #[test]
    fn chatbot_events_round_trip_through_their_stored_form() {
        let mut h = sample();
        h.push(ChatbotEvent::ChatbotStepsReordered { order: vec![id(2), id(1)], pruned: vec![] });
        for e in h {
            let (t, d) = encode(&e);
            assert_eq!(decode::<ChatbotEvent>(&t, &d).unwrap(), e, "{t}");
        }
    }
}
