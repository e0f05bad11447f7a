//! Given/when/then for the decision tests of every aggregate: `given(&history)` is the state
//! a decision sees, the decision is the "when", and `then(&history, decided)` is the history
//! it leaves (a refused decision fails the test where it happened).

use crate::event::Aggregate;

/// Which aggregate a history of these events folds into (one line in each module's tests).
pub trait History: Clone {
    type State: Aggregate<Event = Self>;
}

/// The state after `history`.
pub fn given<E: History>(history: &[E]) -> E::State {
    E::State::from_history(history)
}

/// What a decision produced: its events, or its result when it may be refused.
pub trait Decided<E> {
    fn events(self) -> Vec<E>;
}

impl<E> Decided<E> for Vec<E> {
    fn events(self) -> Vec<E> {
        self
    }
}

impl<E, Err: std::fmt::Debug> Decided<E> for Result<Vec<E>, Err> {
    fn events(self) -> Vec<E> {
        self.expect("the decision was refused")
    }
}

/// `history` followed by what the decision produced.
pub fn then<E: Clone>(history: &[E], decided: impl Decided<E>) -> Vec<E> {
    let mut h = history.to_vec();
    h.extend(decided.events());
    h
}
