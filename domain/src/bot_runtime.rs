//! What a chatbot does next, as a pure function of the script version a conversation follows
//! and the answers given since the last restart (Odoo's `_fetch_next_step` and
//! `_process_answer`). The conversation's decisions (`session::bot_*`) turn it into events.

use uuid::Uuid;

use crate::chatbot::{Script, Step, StepType};
use crate::values::Invalid;

/// Odoo's message when the bot restarts.
pub const RESTARTING: &str = "Restarting conversation...";
/// Longest single-line free input and phone number, in characters.
pub const MAX_LINE_CHARS: usize = 500;

/// Odoo's words for an invalid email answer.
pub fn invalid_email(raw: &str) -> String {
    format!("'{raw}' does not look like a valid email. Can you please try again?")
}

/// "NAME has joined", posted when a forward finds an operator.
pub fn joined(name: &str) -> String {
    format!("{name} has joined")
}

/// Whether `step`'s "only if" holds for the answers chosen so far: for every step its
/// conditions name, one of the listed answers was chosen there (OR within a step, AND across
/// steps). A step without conditions always runs.
pub fn condition_holds(script: &Script, step: &Step, chosen: &[Uuid]) -> bool {
    let mut owners: Vec<usize> = step.only_if.iter().filter_map(|a| script.answer_owner(*a)).collect();
    owners.sort_unstable();
    owners.dedup();
    owners
        .iter()
        .all(|&owner| step.only_if.iter().any(|a| script.answer_owner(*a) == Some(owner) && chosen.contains(a)))
}

/// The first step after `after` (from the start when `None`) whose condition holds.
pub fn next_step(script: &Script, after: Option<usize>, chosen: &[Uuid]) -> Option<usize> {
    let from = after.map_or(0, |i| i + 1);
    (from..script.steps.len()).find(|&i| condition_holds(script, &script.steps[i], chosen))
}

/// Where the bot stops after saying what it has to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It said this step and waits for the visitor's answer.
    Await(usize),
    /// It reached this `forward_operator` step: routing decides (it says the step's message
    /// only if an operator is found, as Odoo does).
    Forward(usize),
    /// No step is left.
    End,
}

/// The steps the bot says, in order, and where it stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub say: Vec<usize>,
    pub stop: Stop,
}

/// What the bot does from `after`, given the answers chosen so far.
pub fn plan(script: &Script, after: Option<usize>, chosen: &[Uuid]) -> Plan {
    let mut say = vec![];
    let mut at = after;
    loop {
        let Some(i) = next_step(script, at, chosen) else { return Plan { say, stop: Stop::End } };
        match script.steps[i].step_type {
            StepType::ForwardOperator => return Plan { say, stop: Stop::Forward(i) },
            t if t.expects_answer() => {
                say.push(i);
                return Plan { say, stop: Stop::Await(i) };
            }
            _ => {
                say.push(i);
                at = Some(i);
            }
        }
    }
}

/// A visitor's answer, once checked against the step it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A choice; a redirect link ends the script.
    Chosen { answer_id: Uuid, label: String, redirect_link: Option<String> },
    /// Text kept as the answer (an email lower-cased in its domain, trimmed).
    Text(String),
    /// Not acceptable (an invalid email): said back, and the bot asks again.
    Retry { raw: String, message: String },
}

fn free_text(raw: Option<&str>, max: usize, single_line: bool) -> Result<String, Invalid> {
    let t = raw.map(str::trim).unwrap_or_default();
    if t.is_empty() {
        return Err(Invalid::new("text", "is required"));
    }
    if t.chars().count() > max {
        return Err(Invalid::new("text", format!("is longer than {max} characters")));
    }
    if t.contains('\0') || (single_line && t.chars().any(char::is_control)) {
        return Err(Invalid::new("text", "contains control characters"));
    }
    Ok(t.to_string())
}

/// Checks an answer to `step`: a choice for `question_selection` (`answer_id` of this step),
/// text for the others.
pub fn check_answer(step: &Step, answer_id: Option<Uuid>, text: Option<&str>) -> Result<Reply, Invalid> {
    match step.step_type {
        StepType::QuestionSelection => {
            let id = answer_id.ok_or_else(|| Invalid::new("answer_id", "is required: choose one of the answers"))?;
            let a = step
                .answers
                .iter()
                .find(|a| a.answer_id == id)
                .ok_or_else(|| Invalid::new("answer_id", "is not one of this step's answers"))?;
            Ok(Reply::Chosen { answer_id: id, label: a.label.clone(), redirect_link: a.redirect_link.clone() })
        }
        StepType::QuestionEmail => {
            let raw = free_text(text, MAX_LINE_CHARS, true)?;
            Ok(match crate::values::recipient("text", &raw) {
                Ok(email) => Reply::Text(email),
                Err(_) => Reply::Retry { message: invalid_email(&raw), raw },
            })
        }
        StepType::QuestionPhone | StepType::FreeInputSingle => Ok(Reply::Text(free_text(text, MAX_LINE_CHARS, true)?)),
        StepType::FreeInputMulti => Ok(Reply::Text(free_text(text, crate::limits::MAX_MESSAGE_CHARS, false)?)),
        StepType::Text | StepType::ForwardOperator => Err(Invalid::new("step_id", "this step expects no answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatbot::Answer;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn step(n: u128, step_type: StepType, answers: &[u128], only_if: &[u128]) -> Step {
        Step {
            step_id: id(n),
            step_type,
            message: format!("step {n}"),
            answers: answers
                .iter()
                .map(|a| Answer {
                    answer_id: id(*a),
                    label: format!("answer {a}"),
                    redirect_link: (*a == 99).then(|| "https://example.com/docs".into()),
                })
                .collect(),
            only_if: only_if.iter().map(|a| id(*a)).collect(),
        }
    }

    /// 0 hello; 1 topic? (11 sales, 12 support, 99 docs→link); 2 size? (21 small, 22 big);
    /// 3 only if sales; 4 only if (sales or support) and big; 5 email?; 6 forward; 7 bye.
    fn script() -> Script {
        use StepType::*;
        Script {
            steps: vec![
                step(100, Text, &[], &[]),
                step(101, QuestionSelection, &[11, 12, 99], &[]),
                step(102, QuestionSelection, &[21, 22], &[]),
                step(103, Text, &[], &[11]),
                step(104, Text, &[], &[11, 12, 22]),
                step(105, QuestionEmail, &[], &[]),
                step(106, ForwardOperator, &[], &[]),
                step(107, Text, &[], &[]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn next_steps_follow_the_order_and_the_only_if_conditions() {
        let s = script();
        // (after, chosen answers) -> next step index
        let table: &[(Option<usize>, &[u128], Option<usize>)] = &[
            (None, &[], Some(0)),          // plain sequence from the start
            (Some(0), &[], Some(1)),       // then the next one
            (Some(2), &[12, 21], Some(5)), // support + small: neither 3 nor 4
            (Some(2), &[11, 21], Some(3)), // sales: 3 runs
            (Some(3), &[11, 21], Some(5)), // sales + small: 4 needs big too (AND across steps)
            (Some(3), &[11, 22], Some(4)), // sales + big
            (Some(2), &[12, 22], Some(4)), // support + big: OR within the topic's answers
            (Some(2), &[22], Some(5)),     // big without any topic: AND fails
            (Some(6), &[], Some(7)),       // past a forward
            (Some(7), &[], None),          // end of the script
        ];
        for (after, chosen, expected) in table {
            let chosen: Vec<Uuid> = chosen.iter().map(|a| id(*a)).collect();
            assert_eq!(next_step(&s, *after, &chosen), *expected, "after {after:?} with {chosen:?}");
        }
    }

    #[test]
    fn a_plan_says_text_steps_and_stops_at_a_question_a_forward_or_the_end() {
        let s = script();
        let chosen = |a: &[u128]| a.iter().map(|a| id(*a)).collect::<Vec<_>>();
        // (after, chosen) -> (steps said, stop)
        type Row = (Option<usize>, Vec<Uuid>, Vec<usize>, Stop);
        let table: Vec<Row> = vec![
            (None, vec![], vec![0, 1], Stop::Await(1)),                  // the welcome
            (Some(1), chosen(&[11]), vec![2], Stop::Await(2)),           // next question
            (Some(2), chosen(&[11, 22]), vec![3, 4, 5], Stop::Await(5)), // conditional texts
            (Some(5), chosen(&[11, 22]), vec![], Stop::Forward(6)),      // forward
            (Some(6), vec![], vec![7], Stop::End),                       // nobody found: go on
            (Some(7), vec![], vec![], Stop::End),
        ];
        for (after, chosen, say, stop) in table {
            assert_eq!(plan(&s, after, &chosen), Plan { say, stop }, "after {after:?} with {chosen:?}");
        }
    }

    #[test]
    fn answers_are_checked_against_their_step() {
        let s = script();
        let topic = &s.steps[1];
        assert_eq!(
            check_answer(topic, Some(id(99)), None),
            Ok(Reply::Chosen {
                answer_id: id(99),
                label: "answer 99".into(),
                redirect_link: Some("https://example.com/docs".into())
            }),
            "a redirect answer carries its link"
        );
        assert_eq!(check_answer(topic, Some(id(21)), None).unwrap_err().field, "answer_id", "another step's answer");
        assert_eq!(check_answer(topic, None, Some("sales")).unwrap_err().field, "answer_id");
        let email = &s.steps[5];
        assert_eq!(
            check_answer(email, None, Some("marie@")),
            Ok(Reply::Retry {
                raw: "marie@".into(),
                message: "'marie@' does not look like a valid email. Can you please try again?".into()
            })
        );
        assert_eq!(check_answer(email, None, Some(" marie@Example.COM ")), Ok(Reply::Text("marie@example.com".into())));
        assert_eq!(check_answer(email, None, Some("  ")).unwrap_err().field, "text");
        assert_eq!(check_answer(&s.steps[0], None, Some("hi")).unwrap_err().field, "step_id");
        let multi = step(1, StepType::FreeInputMulti, &[], &[]);
        assert_eq!(check_answer(&multi, None, Some("line 1\nline 2")), Ok(Reply::Text("line 1\nline 2".into())));
        let single = step(1, StepType::FreeInputSingle, &[], &[]);
        assert!(check_answer(&single, None, Some("line 1\nline 2")).is_err());
    }
}
