//! Validated values ("parse, don't validate"): each `parse` says precisely what is wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused; the API turns it into a field error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Invalid { field: field.to_string(), message: message.into() }
    }
}

/// A required, trimmed, single-line text of bounded length.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(Invalid::new(field, "is required"));
    }
    optional_text(field, t, max)
}

/// Like [`text`], but may be empty.
pub fn optional_text(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let t = raw.trim();
    if t.chars().count() > max {
        return Err(Invalid::new(field, format!("is longer than {max} characters")));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(field, "contains control characters"));
    }
    Ok(t.to_string())
}

/// A `#RRGGBB` color.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Color(String);

impl Color {
    pub fn parse(field: &str, raw: &str) -> Result<Color, Invalid> {
        let ok = raw.len() == 7 && raw.starts_with('#') && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(Invalid::new(field, format!("'{raw}' is not a color like #875A7B")));
        }
        Ok(Color(raw.to_ascii_uppercase()))
    }

    /// For constants known to be valid.
    pub fn known(raw: &'static str) -> Color {
        Color(raw.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Country(String);

/// Every assigned ISO 3166-1 alpha-2 code.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS \
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM \
FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV \
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD \
SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC \
VE VG VI VN VU WF WS YE YT ZA ZM ZW";

impl Country {
    pub fn parse(field: &str, raw: &str) -> Result<Country, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && COUNTRIES.split_whitespace().any(|c| c == code) {
            Ok(Country(code))
        } else {
            Err(Invalid::new(field, format!("'{raw}' is not an ISO 3166-1 alpha-2 country code")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login: an email address under [`EmailRules::Login`], lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Email, Invalid> {
        email(field, raw, EmailRules::Login).map(Email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which addresses [`email`] accepts. Both need exactly one `@`, a non-empty local part, at
/// least two dot-separated domain labels of ASCII letters, digits and hyphens, no spaces or
/// control characters, and at most 254 characters in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailRules {
    /// Logins, as livechat has always accepted them: nothing more than the common rules, the
    /// whole address lower-cased. Not tightened, because logins already stored must keep
    /// signing in (their lookup parses what the user types with these rules).
    Login,
    /// Addresses mail is sent to (transcripts, a bot's email question): a deliberately careful
    /// subset of RFC 5321/5322, ASCII only (no SMTPUTF8), so that what we accept every relay
    /// accepts:
    ///
    /// - local part: 1 to 64 characters of RFC 5322 `atext` and dots, no leading, trailing or
    ///   double dot (a dot-atom: quoted local parts are refused);
    /// - domain labels of 1 to 63 characters, none starting or ending with a hyphen, and a
    ///   top-level label that is not all digits (address literals like `[127.0.0.1]` are
    ///   refused). The domain is lower-cased; the local part is kept as written (it may be
    ///   case-sensitive).
    Deliverable,
}

/// The one email address check: `raw` trimmed and normalised as `rules` say.
pub fn email(field: &str, raw: &str, rules: EmailRules) -> Result<String, Invalid> {
    let deliverable = rules == EmailRules::Deliverable;
    let e = if deliverable { raw.trim().to_string() } else { raw.trim().to_lowercase() };
    // A login's refusal names the input; a recipient's says what is wrong with it.
    let bad = |why: &str| match rules {
        EmailRules::Login => Invalid::new(field, format!("'{raw}' is not an email address")),
        EmailRules::Deliverable => Invalid::new(field, format!("is not a deliverable email address: {why}")),
    };
    if deliverable && e.is_empty() {
        return Err(Invalid::new(field, "is required"));
    }
    if e.len() > 254 {
        return Err(bad("longer than 254 characters"));
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control() || (deliverable && !c.is_ascii())) {
        return Err(bad("spaces, control or non-ASCII characters"));
    }
    let (local, domain) = match e.split('@').collect::<Vec<_>>()[..] {
        [local, domain] => (local, domain),
        _ => return Err(bad("it needs exactly one @")),
    };
    const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";
    let local_ok = !local.is_empty()
        && (!deliverable
            || local.len() <= 64
                && local.split('.').all(|atom| {
                    !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || ATEXT.contains(c))
                }));
    if !local_ok {
        return Err(bad("the part before @ is empty, too long or has characters mail servers refuse"));
    }
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && (!deliverable || l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'))
    };
    let top_ok = !deliverable || labels.last().is_some_and(|t| !t.chars().all(|c| c.is_ascii_digit()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !top_ok {
        return Err(bad("the domain after @ is not a name like example.com"));
    }
    Ok(format!("{local}@{domain}"))
}

/// An email address mail may be sent to (a transcript, a bot's email question): [`email`]
/// under [`EmailRules::Deliverable`].
pub fn recipient(field: &str, raw: &str) -> Result<String, Invalid> {
    email(field, raw, EmailRules::Deliverable)
}

/// A language tag such as `en`, `fr_BE` or `pt-BR`, normalised to `ll_CC`.
pub fn language(field: &str, raw: &str) -> Result<String, Invalid> {
    let t = raw.trim().replace('-', "_");
    let mut parts = t.split('_');
    let lang = parts.next().unwrap_or_default();
    let region = parts.next();
    let ok = (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_alphabetic())
        && region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()))
        && parts.next().is_none();
    if !ok {
        return Err(Invalid::new(field, format!("'{raw}' is not a language code like en or fr_BE")));
    }
    Ok(match region {
        Some(r) => format!("{}_{}", lang.to_ascii_lowercase(), r.to_ascii_uppercase()),
        None => lang.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_hash_and_six_hex_digits() {
        assert_eq!(Color::parse("c", "#875a7b").unwrap().as_str(), "#875A7B");
        for bad in ["875A7B", "#875A7", "#875A7BB", "#GGGGGG", "", "red"] {
            assert!(Color::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_are_assigned_alpha_2_codes() {
        assert_eq!(Country::parse("c", "be").unwrap().as_str(), "BE");
        for bad in ["XX", "BEL", "", "B"] {
            assert!(Country::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(Email::parse("l", " Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["ada", "ada@", "@x.com", "ada@localhost", "a b@x.com", "ada@x..com", "ada@.x.com"] {
            assert!(Email::parse("l", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logins_and_recipients_differ_where_stored_logins_need_it() {
        // Accepted as logins since the first release, refused as places to send mail.
        for login_only in ["a@127.0.0.1", "\"ada\"@example.com", ".ada@example.com", "ada@-x.com", "adé@example.com"] {
            assert!(Email::parse("login", login_only).is_ok(), "{login_only}");
            assert!(recipient("email", login_only).is_err(), "{login_only}");
        }
        assert_eq!(Email::parse("login", "Ada@X.com").unwrap().as_str(), "ada@x.com", "a login is lower-cased whole");
        assert_eq!(recipient("email", "Ada@X.com").unwrap(), "Ada@x.com", "a recipient keeps its local part");
        assert_eq!(Email::parse("login", "ada").unwrap_err().message, "'ada' is not an email address");
        assert_eq!(recipient("email", "").unwrap_err().message, "is required");
    }

    /// The checks as they were before they became one [`email`]: both must answer as before,
    /// messages included.
    mod before_one_validator {
        use super::super::Invalid;

        fn old_login(field: &str, raw: &str) -> Result<String, Invalid> {
            let e = raw.trim().to_lowercase();
            let bad = || Invalid::new(field, format!("'{raw}' is not an email address"));
            let (local, domain) = e.split_once('@').ok_or_else(bad)?;
            let domain_ok = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            let local_ok = !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@');
            if !domain_ok || !local_ok || e.len() > 254 {
                return Err(bad());
            }
            Ok(e)
        }

        fn old_recipient(field: &str, raw: &str) -> Result<String, Invalid> {
            let e = raw.trim();
            let bad = |why: &str| Invalid::new(field, format!("is not a deliverable email address: {why}"));
            if e.is_empty() {
                return Err(Invalid::new(field, "is required"));
            }
            if e.len() > 254 {
                return Err(bad("longer than 254 characters"));
            }
            if e.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
                return Err(bad("spaces, control or non-ASCII characters"));
            }
            let (local, domain) = match e.split('@').collect::<Vec<_>>()[..] {
                [local, domain] => (local, domain),
                _ => return Err(bad("it needs exactly one @")),
            };
            const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";
            let local_ok = !local.is_empty()
                && local.len() <= 64
                && local.split('.').all(|atom| {
                    !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || ATEXT.contains(c))
                });
            if !local_ok {
                return Err(bad("the part before @ is empty, too long or has characters mail servers refuse"));
            }
            let domain = domain.to_ascii_lowercase();
            let labels: Vec<&str> = domain.split('.').collect();
            let label_ok = |l: &&str| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            };
            let top_ok = labels.last().is_some_and(|t| !t.chars().all(|c| c.is_ascii_digit()));
            if labels.len() < 2 || !labels.iter().all(label_ok) || !top_ok {
                return Err(bad("the domain after @ is not a name like example.com"));
            }
            Ok(format!("{local}@{domain}"))
        }

        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn the_one_validator_answers_as_the_two_did(raw in "[aA.\"'é _\t\\-\\[]{0,5}(@[aZ1.\\-\\]]{0,6}){0,2}") {
                prop_assert_eq!(super::super::email("f", &raw, super::super::EmailRules::Login), old_login("f", &raw));
                prop_assert_eq!(super::super::recipient("f", &raw), old_recipient("f", &raw));
            }
        }

        #[test]
        fn long_and_edge_addresses_answer_as_before() {
            let edges = [
                "",
                "  ",
                "a@1.1",
                "a@x.1",
                "a@[1.1]",
                "-@-.z",
                "a@x-.com",
                "a..b@x.com",
                "\"a\"@x.com",
                "a@x.com.",
                "é@x.com",
                "a@é.com",
                "a@@x.com",
                "a@b@x.com",
                " A+b@X.Com ",
                "a\r\n@x.com",
                "a@x.com\tb",
            ];
            for raw in edges.map(String::from).into_iter().chain([
                format!("{}@example.com", "a".repeat(64)),
                format!("{}@example.com", "a".repeat(65)),
                format!("a@{}.com", "b.".repeat(130)),
                format!("a@{}.com", "b".repeat(64)),
                format!("{}@x.com", "İ".repeat(100)),
            ]) {
                assert_eq!(
                    super::super::email("f", &raw, super::super::EmailRules::Login),
                    old_login("f", &raw),
                    "{raw}"
                );
                assert_eq!(super::super::recipient("f", &raw), old_recipient("f", &raw), "{raw}");
            }
        }
    }

    #[test]
    fn texts_are_trimmed_bounded_and_single_line() {
        assert_eq!(text("n", "  Support ", 10).unwrap(), "Support");
        assert_eq!(text("n", "   ", 10), Err(Invalid::new("n", "is required")));
        assert!(text("n", "12345678901", 10).is_err());
        assert!(text("n", "a\nb", 10).is_err());
        assert_eq!(optional_text("n", "", 10).unwrap(), "");
    }

    #[test]
    fn languages_normalise_to_ll_cc() {
        assert_eq!(language("l", "fr-be").unwrap(), "fr_BE");
        assert_eq!(language("l", "EN").unwrap(), "en");
        for bad in ["e", "english", "fr_BEL", "fr_BE_x", ""] {
            assert!(language("l", bad).is_err(), "{bad}");
        }
    }
}
