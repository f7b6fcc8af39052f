//! CloudTrail's renderings of EC2's XML: members under camelCase or
//! PascalCase names, lists in several shapes, query-name wrappers.

use std::collections::BTreeMap;

use dredge_core::ownership::{push_unique, tag_map};
use serde_json::Value;

/// The member `name` of an object, or its PascalCase spelling (the query
/// names newer APIs are recorded with). Null counts as absent.
pub(super) fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    let found = match object.get(name) {
        Some(v) => v,
        None => {
            let mut chars = name.chars();
            let first = chars.next()?;
            let pascal: String = first.to_uppercase().chain(chars).collect();
            object.get(&pascal)?
        }
    };
    (!found.is_null()).then_some(found)
}

/// A non-empty string member.
pub(super) fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    get(value, name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(super) fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// The only string member of an object (`{"assignedIpv6Addresses": "..."}`,
/// `{"content": "...", "tag": 1}`).
pub(super) fn sole_string(value: &Value) -> Option<&str> {
    let mut strings = value.as_object()?.values().filter_map(Value::as_str);
    let first = strings.next()?;
    strings.next().is_none().then_some(first)
}

/// `{"Ipv6AddressesRequest": {...}}` → `{...}`: the query-name wrapper some
/// newer EC2 APIs' records use.
pub(super) fn unwrap_query<'a>(value: Option<&'a Value>, event: &str, suffix: &str) -> Option<&'a Value> {
    let value = value?;
    if let Some(object) = value.as_object() {
        if object.len() == 1 {
            if let Some((key, inner)) = object.iter().next() {
                if inner.is_object() && key.strip_suffix(suffix) == Some(event) {
                    return Some(inner);
                }
            }
        }
    }
    Some(value)
}

/// The elements of a list as CloudTrail renders EC2's XML lists: under
/// `items` or `item` (both in one object are merged), as an array, a single
/// element, or an object whose only member is an array. Empty lists come as
/// `{}`, `""` or null. Identical elements are kept once.
pub(super) fn items(set: Option<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    let Some(set) = set else {
        return out;
    };
    match set {
        Value::Array(elements) => extend_unique(&mut out, elements),
        Value::Object(object) => {
            let lists: Vec<&Value> = ["item", "items"].iter().filter_map(|k| object.get(*k)).collect();
            if !lists.is_empty() {
                for list in lists {
                    match list {
                        Value::Array(elements) => extend_unique(&mut out, elements),
                        one => extend_unique(&mut out, std::slice::from_ref(one)),
                    }
                }
            } else if let (1, Some(Value::Array(elements))) = (object.len(), object.values().next()) {
                extend_unique(&mut out, elements);
            } else if !object.is_empty() {
                out.push(set);
            }
        }
        Value::String(s) if !s.is_empty() => out.push(set),
        _ => {}
    }
    out
}

fn extend_unique<'a>(out: &mut Vec<&'a Value>, elements: &'a [Value]) {
    for element in elements {
        let empty = match element {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if !empty {
            push_unique(out, element);
        }
    }
}

/// `tagSet` items (`key`/`value`, or `Key`/`Value`) as (key, value).
pub(super) fn tag_pairs(set: Option<&Value>) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
    items(set).into_iter().map(|tag| (text(tag, "key"), get(tag, "value").and_then(Value::as_str)))
}

/// `tagSet` items as a map ([`tag_map`]).
pub(super) fn tags(set: Option<&Value>) -> BTreeMap<String, String> {
    tag_map(tag_pairs(set))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::json;
    use super::*;

    #[test]
    fn list_shapes() {
        let set = json(r#"{"item": [{"a": 1}, {"a": 2}], "items": [{"a": 2}, {"a": 3}]}"#);
        assert_eq!(items(Some(&set)).len(), 3, "merged, the shared element once");
        let single = json(r#"{"item": {"a": 1}}"#);
        assert_eq!(items(Some(&single)), vec![&json(r#"{"a": 1}"#)]);
        let wrapper = json(r#"{"assignedPrivateIpAddressSetType": [{"a": 1}, {"a": 2}]}"#);
        assert_eq!(items(Some(&wrapper)).len(), 2);
        for empty in [r#"{}"#, r#""""#, "null", "[]", r#"{"items": []}"#, r#"{"item": null}"#] {
            assert!(items(Some(&json(empty))).is_empty(), "{empty}");
        }
        assert!(items(None).is_empty());
        assert_eq!(items(Some(&json(r#""10.0.0.1""#))).len(), 1);
    }
}
