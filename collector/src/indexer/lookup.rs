//! Reading a few fields of a JSON document in one pass, without building it: routing an unprocessed document needs
//! its `@timestamp` and the index name's fields, and nothing else. The pass still checks that the whole document is
//! JSON, so what it accepts is what a full parse accepts.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The dotted paths wanted, as a tree of keys; a node may be wanted itself and lead to wanted children.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Node {
    children: Vec<(String, Node)>,
    slot: Option<usize>,
}

impl Node {
    fn child(&self, key: &str) -> Option<&Node> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// A key seen again replaces what its first value gave, as a full parse keeps the last duplicate.
    fn clear(&self, values: &mut [Option<Cow<'_, str>>]) {
        if let Some(slot) = self.slot {
            values[slot] = None;
        }
        for (_, child) in &self.children {
            child.clear(values);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    paths: Vec<String>,
    root: Node,
}

impl Lookup {
    pub fn new<'p>(paths: impl IntoIterator<Item = &'p str>) -> Self {
        let mut lookup = Self { paths: Vec::new(), root: Node::default() };
        for path in paths {
            if lookup.paths.iter().any(|p| p == path) {
                continue;
            }
            let mut node = &mut lookup.root;
            for key in path.split('.') {
                let at = match node.children.iter().position(|(k, _)| k == key) {
                    Some(at) => at,
                    None => {
                        node.children.push((key.to_owned(), Node::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            node.slot = Some(lookup.paths.len());
            lookup.paths.push(path.to_owned());
        }
        lookup
    }

    /// The wanted fields of `bytes` as text (strings as they are, numbers and booleans printed); `None` when the
    /// bytes are not one JSON object.
    pub fn read<'l, 'a>(&'l self, bytes: &'a [u8]) -> Option<Found<'l, 'a>> {
        // Validated whole, once: skipped strings are not checked on the way, and a `str` reader then trusts the
        // keys instead of checking each again.
        let text = std::str::from_utf8(bytes).ok()?;
        let mut values = Values::from_elem(None, self.paths.len());
        let mut de = serde_json::Deserializer::from_str(text);
        Walk { node: &self.root, values: &mut values }.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(Found { paths: &self.paths, values })
    }
}

/// What [`Lookup::read`] found, by path.
#[derive(Debug)]
pub struct Found<'l, 'a> {
    paths: &'l [String],
    values: Values<'a>,
}

/// Found values by slot; an index name reads a few fields, which fit without an allocation per record.
type Values<'a> = smallvec::SmallVec<[Option<Cow<'a, str>>; 4]>;

impl Found<'_, '_> {
    pub fn get(&self, path: &str) -> Option<&str> {
        let slot = self.paths.iter().position(|p| p == path)?;
        self.values[slot].as_deref()
    }
}

/// An object whose keys are matched against `node`.
struct Walk<'n, 'v, 'a> {
    node: &'n Node,
    values: &'v mut [Option<Cow<'a, str>>],
}

impl<'a> DeserializeSeed<'a> for Walk<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for Walk<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Key<'a>>()? {
            match self.node.child(&key.0) {
                Some(child) => {
                    child.clear(self.values);
                    map.next_value_seed(Value { node: child, values: &mut *self.values })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'a> de::Deserialize<'a> for Key<'a> {
    fn deserialize<D: de::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'a> Visitor<'a> for KeyVisitor {
    type Value = Key<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'a str) -> Result<Key<'a>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// The value of a wanted key: kept when it is text, a number or a boolean; searched when it is an object.
struct Value<'n, 'v, 'a> {
    node: &'n Node,
    values: &'v mut [Option<Cow<'a, str>>],
}

impl<'a> Value<'_, '_, 'a> {
    fn keep<E>(self, text: impl Into<Cow<'a, str>>) -> Result<(), E> {
        if let Some(slot) = self.node.slot {
            self.values[slot] = Some(text.into());
        }
        Ok(())
    }
}

impl<'a> DeserializeSeed<'a> for Value<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Value<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'a str) -> Result<(), E> {
        self.keep(v)
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.keep(v.to_owned())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.keep(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.keep(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.keep(v.to_string())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // Printed as a parsed document prints it, so both routes name the same index.
        self.keep(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<M: MapAccess<'a>>(self, map: M) -> Result<(), M::Error> {
        Walk { node: self.node, values: self.values }.visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn full_parse(doc: &[u8], path: &str) -> Option<String> {
        let full: Value = serde_json::from_slice(doc).ok()?;
        crate::indexer::fields::get(&full, path).and_then(crate::indexer::fields::text)
    }

    /// JSON values over a few keys, so that generated documents often hold the paths looked up.
    fn json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["a", "b", "c", "k\"q", "é"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "[a-z\"\\\\\n é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        /// On any JSON object, compact or pretty, the one-pass reader finds what a full parse finds.
        #[test]
        fn agrees_with_a_full_parse(doc in json().prop_filter("an object", Value::is_object), pretty in any::<bool>()) {
            let paths = ["a", "a.b", "b.a.c", "k\"q.é", "c"];
            let bytes = if pretty { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) }.unwrap();
            let lookup = Lookup::new(paths);
            let found = lookup.read(&bytes).expect("a JSON object is read");
            for path in paths {
                prop_assert_eq!(found.get(path).map(str::to_owned), full_parse(&bytes, path), "{}", path);
            }
        }

        /// Whatever the bytes, the reader accepts exactly what a full parse accepts as an object, and agrees on it.
        #[test]
        fn accepts_what_a_full_parse_accepts(bytes in prop::collection::vec(prop::sample::select(b"{}[]\":,\\ a1tn-\xff\xc3\xa9".to_vec()), 0..40)) {
            let lookup = Lookup::new(["a"]);
            let full = serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object);
            prop_assert_eq!(lookup.read(&bytes).is_some(), full.is_some());
            if let Some(found) = lookup.read(&bytes) {
                prop_assert_eq!(found.get("a").map(str::to_owned), full_parse(&bytes, "a"));
            }
        }
    }

    /// Every case is also checked against a full parse: the one-pass reader must agree with it.
    #[test]
    fn reads_what_a_full_parse_reads() {
        let paths = ["@timestamp", "kubernetes.namespace", "kubernetes", "n", "f", "b", "a.b.c", "esc", "nul", "arr"];
        let lookup = Lookup::new(paths);
        let docs = [
            r#"{"@timestamp":"2026-11-22T08:00:00Z","kubernetes":{"namespace":"shop","pod":{"name":"x"}},"m":[1,{"n":2}]}"#,
            r#"{"n":3,"f":1.0,"b":true,"a":{"b":{"c":-7}},"nul":null,"arr":[1,2]}"#,
            r#"{"esc":"tab\there","k\u0065y":1,"n":1e3}"#,
            r#"{"a":{"b":{"c":1}},"a":{"x":2}}"#,
            r#"{"n":"first","n":"second","kubernetes":"flat"}"#,
            r#"{"a":{"b":"not an object"}}"#,
            r#"{"\u006e":"escaped key","f":"é ü 日本"}"#,
            " {\n \"n\" : [ ] ,\t\"f\" : { } }\r\n",
            r#"{}"#,
        ];
        for doc in docs {
            let found = lookup.read(doc.as_bytes()).unwrap_or_else(|| panic!("{doc}"));
            for path in paths {
                assert_eq!(found.get(path).map(str::to_owned), full_parse(doc.as_bytes(), path), "{path} in {doc}");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_one_json_object() {
        let lookup = Lookup::new(["a"]);
        for bad in [
            &b"[1]"[..],
            b"\"a\"",
            b"{\"a\":",
            b"{\"a\":1} x",
            b"{\"a\":1}{}",
            b"",
            b"{\"a\":tru}",
            b"\xff",
            b"{\"z\":\"\xff\"}",
        ] {
            assert!(lookup.read(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(lookup.read(b" {\"a\":1}\n").is_some());
    }

    #[test]
    fn paths_share_their_prefixes() {
        let lookup = Lookup::new(["a.b", "a.c", "a.b", "d"]);
        assert_eq!(lookup.paths, ["a.b", "a.c", "d"]);
        assert_eq!(lookup.root.children.len(), 2);
        assert_eq!(lookup.root.child("a").map(|a| a.children.len()), Some(2));
    }
}
