//! Channel rules: where the chat button shows and how, and Odoo's matching order.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Country, Invalid};

/// What the widget does on a page a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Show,
    ShowWithNotification,
    /// Opens the chat window after `timer_seconds`.
    OpenAutomatically,
    Hide,
}

/// A chatbot a rule starts (scripts come with the chatbot issue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChatbot {
    pub chatbot_id: Uuid,
    /// Start the bot only while no operator is available.
    pub only_if_no_operator: bool,
}

/// One rule; its place in the channel's list is its sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub rule_id: Uuid,
    pub action: RuleAction,
    pub timer_seconds: u32,
    /// Searched anywhere in the page's relative URL; empty matches every page.
    pub url_regex: String,
    /// Empty: every country.
    pub countries: Vec<Country>,
    pub chatbot: Option<RuleChatbot>,
}

/// Longest accepted pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 500;
/// Compiled-size budget: a hostile pattern (`(a{1000}){1000}`) is refused instead of costing
/// the server memory and time.
const COMPILED_LIMIT: usize = 256 * 1024;

/// Compiles a URL pattern within the limits, or explains what is wrong with it.
pub fn compile_pattern(field: &str, pattern: &str) -> Result<Regex, Invalid> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(Invalid::new(field, format!("is longer than {MAX_PATTERN_LEN} characters")));
    }
    RegexBuilder::new(pattern).size_limit(COMPILED_LIMIT).dfa_size_limit(COMPILED_LIMIT).build().map_err(|e| {
        let message = match e {
            regex::Error::CompiledTooBig(_) => "is too complex (its compiled form exceeds the limit)".to_string(),
            // The syntax error's own text shows the pattern with a caret under the problem.
            other => format!("is not a valid regular expression:\n{other}"),
        };
        Invalid::new(field, message)
    })
}

/// A rule as submitted, before validation.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RuleInput {
    pub action: Option<RuleAction>,
    #[serde(default)]
    pub timer_seconds: u32,
    #[serde(default)]
    pub url_regex: String,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub chatbot_id: Option<Uuid>,
    #[serde(default)]
    pub chatbot_only_if_no_operator: bool,
}

impl RuleInput {
    /// Validates every field into a rule with id `rule_id`, collecting all errors.
    pub fn parse(&self, rule_id: Uuid) -> Result<Rule, Vec<Invalid>> {
        let mut errors = Vec::new();
        let action = self.action.unwrap_or(RuleAction::Show);
        if let Err(e) = compile_pattern("url_regex", &self.url_regex) {
            errors.push(e);
        }
        if self.timer_seconds > 3600 {
            errors.push(Invalid::new("timer_seconds", "is more than an hour (3600)"));
        }
        let mut countries = Vec::new();
        for (i, c) in self.countries.iter().enumerate() {
            match Country::parse(&format!("countries[{i}]"), c) {
                Ok(c) if !countries.contains(&c) => countries.push(c),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Rule {
            rule_id,
            action,
            timer_seconds: if action == RuleAction::OpenAutomatically { self.timer_seconds } else { 0 },
            url_regex: self.url_regex.clone(),
            countries,
            chatbot: self
                .chatbot_id
                .map(|chatbot_id| RuleChatbot { chatbot_id, only_if_no_operator: self.chatbot_only_if_no_operator }),
        })
    }
}

/// The rule that applies to a page, as Odoo picks it: rules listing the visitor's country
/// first, then rules without countries, each group in sequence order; a rule applies when its
/// pattern is found anywhere in the URL. Patterns that no longer compile never match.
pub fn match_rule<'a>(rules: &'a [Rule], url: &str, country: Option<&Country>) -> Option<&'a Rule> {
    let found = |r: &Rule| compile_pattern("url_regex", &r.url_regex).is_ok_and(|re| re.is_match(url));
    let by_country = country.and_then(|c| rules.iter().filter(|r| r.countries.contains(c)).find(|r| found(r)));
    by_country.or_else(|| rules.iter().filter(|r| r.countries.is_empty()).find(|r| found(r)))
}

/// What the widget does once the rule is known (Odoo's `available_for_me`): the rule's
/// chatbot starts unless it is meant only for when no operator is available and one is; the
/// button shows when a chatbot starts, or when an operator is available and no rule hides it.
pub fn widget_decision(rule: Option<&Rule>, operator_available: bool) -> (Option<&RuleChatbot>, bool) {
    let chatbot = rule.and_then(|r| r.chatbot.as_ref()).filter(|c| !(c.only_if_no_operator && operator_available));
    let hidden = rule.is_some_and(|r| r.action == RuleAction::Hide);
    let show_button = chatbot.is_some() || (operator_available && !hidden);
    (chatbot, show_button)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(n: u128, action: RuleAction, url_regex: &str, countries: &[&str]) -> Rule {
        Rule {
            rule_id: Uuid::from_u128(n),
            action,
            timer_seconds: 0,
            url_regex: url_regex.into(),
            countries: countries.iter().map(|c| Country::parse("c", c).unwrap()).collect(),
            chatbot: None,
        }
    }

    #[test]
    fn rules_match_as_odoo_matches_them() {
        use RuleAction::*;
        let rules = vec![
            rule(1, Hide, "^/checkout", &[]),
            rule(2, Show, "/shop", &[]),
            rule(3, OpenAutomatically, "/shop", &["BE", "NL"]),
            rule(4, ShowWithNotification, "/", &[]),
            rule(5, Hide, "/shop/cart", &["BE"]),
        ];
        let be = Country::parse("c", "BE").unwrap();
        let fr = Country::parse("c", "FR").unwrap();
        // (url, country) -> expected rule
        let table: &[(&str, Option<&Country>, Option<u128>)] = &[
            ("/shop", Some(&be), Some(3)),         // a country rule beats an earlier generic one
            ("/shop", Some(&fr), Some(2)),         // other countries fall back to generic rules
            ("/shop", None, Some(2)),              // unknown country: generic rules only
            ("/shop/cart", Some(&be), Some(3)),    // sequence order within the country group
            ("/checkout/pay", Some(&be), Some(1)), // no country rule matches: generic, in order
            ("/blog/checkout", None, Some(4)),     // ^ anchors; "/" matches every page
            ("/contact", None, Some(4)),
            ("/en/shop?x=1", None, Some(2)), // found anywhere in the URL
        ];
        for (url, country, expected) in table {
            let got = match_rule(&rules, url, *country).map(|r| r.rule_id.as_u128());
            assert_eq!(got, *expected, "{url} from {country:?}");
        }
        assert!(match_rule(&[rule(1, Show, "/shop", &["BE"])], "/shop", None).is_none());
        assert_eq!(match_rule(&[rule(7, Show, "", &[])], "/anything", None).map(|r| r.rule_id.as_u128()), Some(7));
        assert!(match_rule(&[], "/", None).is_none());
    }

    #[test]
    fn the_button_shows_for_a_bot_or_an_available_operator_unless_hidden() {
        let bot = |only_if_no_operator| Rule {
            chatbot: Some(RuleChatbot { chatbot_id: Uuid::nil(), only_if_no_operator }),
            ..rule(1, RuleAction::Show, "", &[])
        };
        let hide = rule(2, RuleAction::Hide, "", &[]);
        let show = rule(3, RuleAction::Show, "", &[]);
        // (rule, operator available) -> (bot starts, button shows)
        let table: Vec<(Option<&Rule>, bool, bool, bool)> = vec![
            (None, true, false, true),
            (None, false, false, false),
            (Some(&show), true, false, true),
            (Some(&hide), true, false, false),
            (Some(&hide), false, false, false),
        ];
        for (r, available, bot_starts, shows) in table {
            let (b, s) = widget_decision(r, available);
            assert_eq!((b.is_some(), s), (bot_starts, shows), "{r:?} available={available}");
        }
        let always = bot(false);
        assert!(widget_decision(Some(&always), true).1);
        assert!(widget_decision(Some(&always), true).0.is_some());
        let fallback = bot(true);
        assert!(widget_decision(Some(&fallback), true).0.is_none(), "operators first");
        assert!(widget_decision(Some(&fallback), false).0.is_some() && widget_decision(Some(&fallback), false).1);
    }

    #[test]
    fn invalid_and_hostile_patterns_are_refused_with_a_pointer() {
        let err = compile_pattern("url_regex", "/shop(").unwrap_err();
        assert!(err.message.contains("not a valid regular expression"), "{}", err.message);
        assert!(err.message.contains('^'), "points at the error: {}", err.message);
        let huge = compile_pattern("url_regex", "(a{1000}){1000}").unwrap_err();
        assert!(huge.message.contains("too complex"), "{}", huge.message);
        let long = compile_pattern("url_regex", &"a".repeat(501)).unwrap_err();
        assert!(long.message.contains("longer than 500"));
        assert!(compile_pattern("url_regex", "^/(shop|store)/[0-9]+").is_ok());
    }

    #[test]
    fn rule_input_collects_every_error() {
        let input = RuleInput {
            action: Some(RuleAction::OpenAutomatically),
            timer_seconds: 99_999,
            url_regex: "[".into(),
            countries: vec!["BE".into(), "ZZ".into()],
            ..Default::default()
        };
        let fields: Vec<_> = input.parse(Uuid::nil()).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["url_regex", "timer_seconds", "countries[1]"]);
        let ok = RuleInput { action: Some(RuleAction::Show), timer_seconds: 30, ..Default::default() };
        assert_eq!(ok.parse(Uuid::nil()).unwrap().timer_seconds, 0, "the timer only counts for open_automatically");
    }
}
