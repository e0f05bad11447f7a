//! What an event changed in a resource, as a person sees the resource.
//!
//! Each audited aggregate says how it looks to a person ([`Audited::audit_view`]); what an
//! event changed is the structural difference ([`changes`]) between that view before and
//! after the event is applied ([`apply`]). The difference knows nothing of any aggregate:
//!
//! - objects are compared field by field, with dotted paths (`options.button_color`); a
//!   field that is absent or `null` on one side is `null` there;
//! - lists of objects that each have an `id` are collections: an item added, removed (its
//!   whole value on one side, `null` on the other) or changed (field by field inside it),
//!   each change naming the item's id; a new order is one change of `<path>.order` with the
//!   ids before and after (naming the item that holds the list, for a nested one);
//! - everything else (text, numbers, lists of plain values) is compared whole.
//!
//! An empty list and no value at all are the same (a creation does not list empty
//! collections).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Aggregate;

/// What a secret shows as, before and after.
pub const REDACTED: &str = "[redacted]";

/// A resource whose changes are audited.
pub trait Audited: Aggregate {
    /// Top-level fields of the view holding a secret (a password hash): compared like any
    /// other field, so a new password is a change, but always shown as [`REDACTED`]. They
    /// must not sit inside a collection (an added item is shown whole).
    const SECRETS: &'static [&'static str] = &[];

    /// The resource as a person sees it: `null` while it does not exist, otherwise an object
    /// shaped as described in the module documentation. It holds the fields named in
    /// [`Audited::SECRETS`] in clear: read it through [`apply`], which redacts them.
    fn audit_view(&self) -> Value;

    /// Blanks the secrets of a state the audit keeps (the projector's documents), so that no
    /// copy of them is made: they are only ever compared, and a blank one differs from any
    /// new secret as the real one would.
    fn forget_secrets(&mut self) {}
}

/// One thing an event changed.
///
/// JSON: `{"field": "options.button_color", "before": "#112233", "after": "#875A7B"}`, with
/// `"item": "<id>"` when the change is about an item of a collection (`field` is then the
/// collection's path, or the path of the item's field that changed). `before` and `after` are
/// any JSON value; `null` means "none" (not yet there, or gone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default)]
    pub before: Value,
    #[serde(default)]
    pub after: Value,
}

/// Applies `event` to `state` and says what it changed, secrets redacted.
pub fn apply<A: Audited>(state: &mut A, event: &A::Event) -> Vec<Change> {
    let before = state.audit_view();
    state.apply(event);
    let mut out = changes(&before, &state.audit_view());
    for c in out.iter_mut().filter(|c| c.item.is_none() && A::SECRETS.contains(&c.field.as_str())) {
        for v in [&mut c.before, &mut c.after] {
            if !v.is_null() {
                *v = Value::String(REDACTED.into());
            }
        }
    }
    out
}

/// The differences between two views of a resource (see the module documentation).
pub fn changes(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff("", None, before, after, &mut out);
    out
}

/// `value` serialized, with its `id_field` renamed `id` (how a view marks collection items).
pub fn item(value: &impl Serialize, id_field: &str) -> Value {
    let mut v = serde_json::to_value(value).expect("domain values always serialize");
    if let Some(map) = v.as_object_mut() {
        if let Some(id) = map.remove(id_field) {
            map.insert("id".into(), id);
        }
    }
    v
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn diff(path: &str, item: Option<&str>, before: &Value, after: &Value, out: &mut Vec<Change>) {
    if before == after {
        return;
    }
    let push = |out: &mut Vec<Change>| {
        out.push(Change {
            field: path.to_string(),
            item: item.map(str::to_string),
            before: before.clone(),
            after: after.clone(),
        })
    };
    match (before, after) {
        (Value::Object(_) | Value::Null, Value::Object(_) | Value::Null) => {
            let empty = Map::new();
            let (b, a) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
            let mut fields: Vec<&String> = b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))).collect();
            fields.sort();
            for f in fields {
                let (fb, fa) = (b.get(f).unwrap_or(&Value::Null), a.get(f).unwrap_or(&Value::Null));
                diff(&join(path, f), item, fb, fa, out);
            }
        }
        _ => match (collection(before), collection(after)) {
            (Some(b), Some(a)) => diff_collection(path, item, b, a, out),
            _ => push(out),
        },
    }
}

/// The items of a collection (`null` and `[]` are an empty one), or `None` if `v` is not one.
fn collection(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Null => Some(&[]),
        Value::Array(items) if items.iter().all(|i| i.get("id").is_some()) => Some(items),
        _ => None,
    }
}

/// An item's id as the change names it (ids are strings in every view; others are shown as
/// JSON).
fn id_of(item: &Value) -> Cow<'_, str> {
    match &item["id"] {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn diff_collection(path: &str, holder: Option<&str>, before: &[Value], after: &[Value], out: &mut Vec<Change>) {
    // The usual case (the same items in the same order): item by item, nothing else.
    if before.len() == after.len() && before.iter().zip(after).all(|(b, a)| b["id"] == a["id"]) {
        for (b, a) in before.iter().zip(after) {
            diff(path, Some(&id_of(a)), b, a, out);
        }
        return;
    }
    let old: HashMap<Cow<str>, &Value> = before.iter().map(|i| (id_of(i), i)).collect();
    let new: HashMap<Cow<str>, &Value> = after.iter().map(|i| (id_of(i), i)).collect();
    let change = |item: &str, before: &Value, after: &Value| Change {
        field: path.to_string(),
        item: Some(item.to_string()),
        before: before.clone(),
        after: after.clone(),
    };
    for a in after {
        let id = id_of(a);
        match old.get(&id) {
            Some(b) => diff(path, Some(&id), b, a, out),
            None => out.push(change(&id, &Value::Null, a)),
        }
    }
    for b in before {
        let id = id_of(b);
        if !new.contains_key(&id) {
            out.push(change(&id, b, &Value::Null));
        }
    }
    // The order is a change only if it is not "the items kept in their order, then the new
    // ones": adding at the end is just an addition.
    let kept = before.iter().filter(|b| new.contains_key(&id_of(b)));
    let added = after.iter().filter(|a| !old.contains_key(&id_of(a)));
    if !kept.chain(added).map(|i| &i["id"]).eq(after.iter().map(|i| &i["id"])) {
        let ids = |items: &[Value]| Value::Array(items.iter().map(|i| i["id"].clone()).collect());
        out.push(Change {
            field: join(path, "order"),
            item: holder.map(str::to_string),
            before: ids(before),
            after: ids(after),
        });
    }
}

#[cfg(test)]
mod tests {
    //! The generic difference; what each event of each aggregate records is tabled in
    //! `domain/tests/audit.rs`.
    use super::*;
    use serde_json::json;

    fn c(field: &str, item: Option<&str>, before: Value, after: Value) -> Change {
        Change { field: field.into(), item: item.map(Into::into), before, after }
    }

    #[test]
    fn objects_are_compared_field_by_field_with_dotted_paths() {
        let before = json!({"name": "Support", "options": {"color": "#112233", "text": "Hi"}});
        let after = json!({"name": "Support", "options": {"color": "#875A7B", "text": "Hi"}});
        assert_eq!(changes(&before, &after), vec![c("options.color", None, json!("#112233"), json!("#875A7B"))]);
        assert_eq!(changes(&after, &after), vec![], "nothing changed, nothing recorded");
    }

    #[test]
    fn a_creation_lists_every_field_and_no_empty_collection() {
        let after = json!({"name": "S", "tags": ["a"], "none": null, "empty": [], "items": [], "o": {"x": 1}});
        assert_eq!(
            changes(&Value::Null, &after),
            vec![
                c("name", None, Value::Null, json!("S")),
                c("o.x", None, Value::Null, json!(1)),
                c("tags", None, Value::Null, json!(["a"])),
            ]
        );
    }

    #[test]
    fn collections_record_items_added_removed_and_changed_by_id() {
        let before = json!({"rules": [{"id": "r1", "url": "/a"}, {"id": "r2", "url": "/b"}]});
        let after = json!({"rules": [{"id": "r1", "url": "/c"}, {"id": "r3", "url": "/d"}]});
        assert_eq!(
            changes(&before, &after),
            vec![
                c("rules.url", Some("r1"), json!("/a"), json!("/c")),
                c("rules", Some("r3"), Value::Null, json!({"id": "r3", "url": "/d"})),
                c("rules", Some("r2"), json!({"id": "r2", "url": "/b"}), Value::Null),
            ]
        );
    }

    #[test]
    fn a_new_order_is_one_change_and_an_addition_at_the_end_is_not_one() {
        let (a, b, n) = (json!({"id": "a"}), json!({"id": "b"}), json!({"id": "n"}));
        let view = |items: Vec<&Value>| json!({ "rules": items });
        assert_eq!(
            changes(&view(vec![&a, &b]), &view(vec![&b, &a])),
            vec![c("rules.order", None, json!(["a", "b"]), json!(["b", "a"]))]
        );
        assert_eq!(changes(&view(vec![&a]), &view(vec![&a, &n])), vec![c("rules", Some("n"), Value::Null, n.clone())]);
        assert_eq!(
            changes(&view(vec![&a]), &view(vec![&n, &a])),
            vec![
                c("rules", Some("n"), Value::Null, n.clone()),
                c("rules.order", None, json!(["a"]), json!(["n", "a"]))
            ],
            "an insertion elsewhere says where"
        );
        assert_eq!(changes(&view(vec![&a, &b]), &view(vec![&b])), vec![c("rules", Some("a"), a.clone(), Value::Null)]);
    }

    #[test]
    fn nested_collections_name_the_innermost_item() {
        let before =
            json!({"steps": [{"id": "s", "answers": [{"id": "x", "label": "Yes"}, {"id": "y", "label": "No"}]}]});
        let after =
            json!({"steps": [{"id": "s", "answers": [{"id": "y", "label": "Nope"}, {"id": "x", "label": "Yes"}]}]});
        assert_eq!(
            changes(&before, &after),
            vec![
                c("steps.answers.label", Some("y"), json!("No"), json!("Nope")),
                c("steps.answers.order", Some("s"), json!(["x", "y"]), json!(["y", "x"])),
            ]
        );
    }

    #[test]
    fn plain_lists_and_values_of_another_type_are_compared_whole() {
        assert_eq!(
            changes(&json!({"l": ["fr"]}), &json!({"l": ["fr", "en"]})),
            vec![c("l", None, json!(["fr"]), json!(["fr", "en"]))]
        );
        assert_eq!(changes(&json!({"x": {"a": 1}}), &json!({"x": 3})), vec![c("x", None, json!({"a": 1}), json!(3))]);
        assert_eq!(changes(&json!({"x": {"a": 1}}), &json!({"x": null})), vec![c("x.a", None, json!(1), Value::Null)]);
    }

    #[test]
    fn items_are_renamed_to_carry_their_id() {
        #[derive(Serialize)]
        struct Rule {
            rule_id: u32,
            url: &'static str,
        }
        assert_eq!(item(&Rule { rule_id: 7, url: "/a" }, "rule_id"), json!({"id": 7, "url": "/a"}));
    }
}
