//! Dotted field paths (`kubernetes.namespace`) on JSON documents.

use serde_json::{Map, Value};

pub fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| v.as_object()?.get(key))
}

/// Sets `path`, creating objects on the way; a non-object in the way is replaced.
pub fn set(doc: &mut Value, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = doc;
    while let Some(key) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if parts.peek().is_none() {
            map.insert(key.to_owned(), value);
            return;
        }
        cur = map.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

pub fn remove(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (get_mut(doc, parent)?, last),
        None => (doc, path),
    };
    parent.as_object_mut()?.remove(last)
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(doc, |v, key| v.as_object_mut()?.get_mut(key))
}

/// A field as text for templates and comparisons: strings as they are, numbers and booleans printed.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut doc = json!({"a": {"b": 1}, "c": "x"});
        assert_eq!(get(&doc, "a.b"), Some(&json!(1)));
        assert_eq!(get(&doc, "a.z"), None);
        assert_eq!(get(&doc, "c.d"), None);
        set(&mut doc, "a.d.e", json!(true));
        set(&mut doc, "c.f", json!(2));
        assert_eq!(doc, json!({"a": {"b": 1, "d": {"e": true}}, "c": {"f": 2}}));
        assert_eq!(remove(&mut doc, "a.b"), Some(json!(1)));
        assert_eq!(remove(&mut doc, "nope.x"), None);
        assert_eq!(doc, json!({"a": {"d": {"e": true}}, "c": {"f": 2}}));
    }
}
