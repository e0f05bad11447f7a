//! Choosing the operator for a new conversation (Odoo's `_get_operator`, made deterministic).
//!
//! Candidates are the operators joined to the channel and online. The visitor's previous
//! operator wins when available; otherwise operators speaking the visitor's language are
//! preferred, then operators from the visitor's country, then everyone. Among them the least
//! active wins (fewest conversations open or with a message in the last 30 minutes); where
//! Odoo picks at random among equals, the one assigned least recently wins, then the lowest
//! id, so that the choice is fair and testable. An optional per-channel maximum of concurrent
//! conversations skips operators at the maximum.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::values::Country;

/// An operator who could take the conversation, with what routing needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub user_id: Uuid,
    /// Language codes (`fr` or `fr_BE`).
    pub languages: Vec<String>,
    pub country: Option<Country>,
    /// Conversations open or with a message in the last 30 minutes (Odoo's "active").
    pub active_conversations: u32,
    /// Conversations open now (what the per-operator maximum counts).
    pub open_conversations: u32,
    /// When this operator was last given a conversation.
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// What is known about the visitor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Visitor {
    pub previous_operator: Option<Uuid>,
    /// Preferred languages, best first (from the widget or `Accept-Language`).
    pub languages: Vec<String>,
    pub country: Option<Country>,
}

/// The primary subtag: `fr_BE` and `fr-be` both speak `fr`.
fn primary(language: &str) -> String {
    language.split(['_', '-']).next().unwrap_or_default().to_ascii_lowercase()
}

fn speaks(c: &Candidate, language: &str) -> bool {
    let wanted = primary(language);
    c.languages.iter().any(|l| primary(l) == wanted)
}

/// The operator to assign, or `None` when nobody is available.
pub fn choose(candidates: &[Candidate], visitor: &Visitor, max_per_operator: Option<u32>) -> Option<Uuid> {
    let available: Vec<&Candidate> =
        candidates.iter().filter(|c| max_per_operator.is_none_or(|max| c.open_conversations < max)).collect();
    if let Some(previous) = visitor.previous_operator {
        if available.iter().any(|c| c.user_id == previous) {
            return Some(previous);
        }
    }
    let by_language = visitor
        .languages
        .iter()
        .map(|l| available.iter().copied().filter(|c| speaks(c, l)).collect::<Vec<_>>())
        .find(|pool| !pool.is_empty());
    let by_country = || {
        let pool: Vec<&Candidate> =
            available.iter().copied().filter(|c| visitor.country.is_some() && c.country == visitor.country).collect();
        (!pool.is_empty()).then_some(pool)
    };
    let pool = by_language.or_else(by_country).unwrap_or(available);
    pool.into_iter()
        .min_by(|a, b| {
            a.active_conversations
                .cmp(&b.active_conversations)
                // Never assigned sorts first: `None < Some(_)`.
                .then(a.last_assigned_at.cmp(&b.last_assigned_at))
                .then(a.user_id.cmp(&b.user_id))
        })
        .map(|c| c.user_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(minute: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 1, 1, 9, minute, 0).unwrap())
    }

    fn op(n: u128, languages: &[&str], country: Option<&str>, active: u32, last: Option<DateTime<Utc>>) -> Candidate {
        Candidate {
            user_id: Uuid::from_u128(n),
            languages: languages.iter().map(|l| l.to_string()).collect(),
            country: country.map(|c| Country::parse("c", c).unwrap()),
            active_conversations: active,
            open_conversations: active,
            last_assigned_at: last,
        }
    }

    fn visitor(previous: Option<u128>, languages: &[&str], country: Option<&str>) -> Visitor {
        Visitor {
            previous_operator: previous.map(Uuid::from_u128),
            languages: languages.iter().map(|l| l.to_string()).collect(),
            country: country.map(|c| Country::parse("c", c).unwrap()),
        }
    }

    #[test]
    fn routing_follows_odoo_and_breaks_ties_by_least_recent_assignment() {
        let team = vec![
            op(1, &["en"], Some("US"), 2, at(1)),
            op(2, &["fr", "nl"], Some("BE"), 3, at(2)),
            op(3, &["fr_BE"], Some("FR"), 1, at(3)),
            op(4, &["de"], Some("BE"), 1, at(0)),
            op(5, &["en"], None, 1, None),
        ];
        // (visitor, max per operator) -> chosen operator
        let table: Vec<(Visitor, Option<u32>, Option<u128>)> = vec![
            (visitor(Some(2), &["en"], None), None, Some(2)), // the previous operator wins, busy or not
            (visitor(Some(9), &["en"], None), None, Some(5)), // a previous operator who is not available is ignored
            (visitor(None, &["fr_BE"], None), None, Some(3)), // language (primary subtag), then least active
            (visitor(None, &["it", "nl"], None), None, Some(2)), // the first language someone speaks
            (visitor(None, &["it"], Some("BE")), None, Some(4)), // nobody speaks it: country
            (visitor(None, &["it"], Some("JP")), None, Some(5)), // nobody from there: everyone; 3, 4, 5 tie at 1, 5 never assigned
            (visitor(None, &[], None), None, Some(5)),
            (visitor(Some(2), &[], None), Some(3), Some(5)), // the previous operator is at the maximum
            (visitor(None, &["fr"], None), Some(3), Some(3)), // 2 speaks fr but is at the maximum of 3
            (visitor(None, &["fr"], None), Some(1), None),   // everyone has an open conversation: nobody
        ];
        for (i, (v, max, expected)) in table.iter().enumerate() {
            let got = choose(&team, v, *max).map(|u| u.as_u128());
            assert_eq!(got, *expected, "row {i}: {v:?} max {max:?}");
        }
    }

    #[test]
    fn ties_go_to_the_one_assigned_least_recently() {
        let team = vec![op(1, &[], None, 0, at(30)), op(2, &[], None, 0, at(10)), op(3, &[], None, 0, at(20))];
        assert_eq!(choose(&team, &Visitor::default(), None), Some(Uuid::from_u128(2)));
    }

    #[test]
    fn nobody_available_means_no_operator() {
        assert_eq!(choose(&[], &visitor(Some(1), &["en"], Some("BE")), None), None);
        let full = vec![op(1, &[], None, 2, None)];
        assert_eq!(choose(&full, &Visitor::default(), Some(2)), None);
        assert_eq!(choose(&full, &Visitor::default(), Some(3)), Some(Uuid::from_u128(1)));
    }

    /// Candidates are distinct operators.
    fn unique(team: Vec<Candidate>) -> Vec<Candidate> {
        let mut seen = std::collections::HashSet::new();
        team.into_iter().filter(|c| seen.insert(c.user_id)).collect()
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        (
            1u128..20,
            prop::sample::subsequence(vec!["en", "fr", "nl", "de"], 0..3),
            0u32..5,
            proptest::option::of(0u32..59),
        )
            .prop_map(|(id, langs, active, last)| op(id, &langs, None, active, last.and_then(at)))
    }

    proptest! {
        /// Whoever is chosen is a candidate under the maximum; nobody is chosen only when
        /// everyone is at the maximum; and the choice does not depend on the list's order.
        #[test]
        fn the_choice_is_a_valid_candidate_and_order_independent(
            team in prop::collection::vec(arb_candidate(), 0..8).prop_map(unique),
            langs in prop::sample::subsequence(vec!["en", "fr", "it"], 0..2),
            max in proptest::option::of(1u32..4),
        ) {
            let v = visitor(None, &langs, None);
            let chosen = choose(&team, &v, max);
            let under_max: Vec<&Candidate> = team.iter().filter(|c| max.is_none_or(|m| c.open_conversations < m)).collect();
            match chosen {
                Some(id) => prop_assert!(under_max.iter().any(|c| c.user_id == id)),
                None => prop_assert!(under_max.is_empty()),
            }
            let mut reversed = team.clone();
            reversed.reverse();
            prop_assert_eq!(choose(&reversed, &v, max), chosen);
        }

        /// Among operators who all speak the visitor's language (or when it is unknown), the
        /// chosen one is never more active than another candidate.
        #[test]
        fn the_least_active_wins_within_the_preferred_pool(team in prop::collection::vec(arb_candidate(), 1..8).prop_map(unique)) {
            let chosen = choose(&team, &Visitor::default(), None).unwrap();
            let load = team.iter().find(|c| c.user_id == chosen).unwrap().active_conversations;
            prop_assert!(team.iter().all(|c| c.active_conversations >= load));
        }
    }
}
