//! Reading FHIR JSON as it was written (ADR 0011): a key twice in one object is refused, not
//! silently resolved to the last one, and numbers keep their text (`6.10` stays `6.10`: the
//! workspace builds serde_json with `arbitrary_precision`, so no float is ever made of a
//! value on the record path).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::problem::Problem;

/// Parses a resource's JSON text. Duplicate keys are each reported with their path (the
/// resource type first, when the text names one); malformed JSON is one problem at `$`.
pub fn parse(text: &[u8]) -> Result<Value, Vec<Problem>> {
    let value: Value = serde_json::from_slice(text).map_err(|e| {
        vec![Problem {
            path: "$".to_owned(),
            message: format!("not JSON: {e}"),
        }]
    })?;
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(text);
    // The text parsed once already: this second pass only looks for repeated keys.
    let _ = Duplicates {
        steps: &mut Vec::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    if found.is_empty() {
        return Ok(value);
    }
    let root = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("$");
    Err(found
        .into_iter()
        .map(|p| Problem {
            path: format!("{root}{p}"),
            message: "this key appears more than once in one object".to_owned(),
        })
        .collect())
}

/// One step of the path to where the walk is.
enum Step {
    Key(String),
    Index(usize),
}

/// Walks the text, noting every key that repeats in its object (at most
/// `problem::MAX_PROBLEMS` of them). The path is kept as steps and written out only for a
/// duplicate, so the work is linear in the text whatever its shape.
struct Duplicates<'a> {
    steps: &'a mut Vec<Step>,
    found: &'a mut Vec<String>,
}

impl Duplicates<'_> {
    fn path(&self, key: &str) -> String {
        let mut out = String::new();
        for s in self.steps.iter() {
            match s {
                Step::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out.push('.');
        out.push_str(key);
        out
    }
}

impl<'de> DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            self.steps.push(Step::Index(i));
            let more = seq
                .next_element_seed(Duplicates {
                    steps: &mut *self.steps,
                    found: &mut *self.found,
                })?
                .is_some();
            self.steps.pop();
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                if self.found.len() < crate::problem::MAX_PROBLEMS {
                    let path = self.path(&key);
                    self.found.push(path);
                }
            } else {
                seen.insert(key.clone());
            }
            self.steps.push(Step::Key(key));
            map.next_value_seed(Duplicates {
                steps: &mut *self.steps,
                found: &mut *self.found,
            })?;
            self.steps.pop();
        }
        Ok(())
    }
}

/// Whether `value` has at most `nodes` nodes (objects, arrays and scalars) and `bytes` bytes
/// of keys and strings, counted only as far as needed: a bound on the work of walking it.
pub fn within(value: &Value, nodes: usize, bytes: usize) -> bool {
    fn walk(value: &Value, nodes: &mut usize, bytes: &mut usize) -> bool {
        if *nodes == 0 {
            return false;
        }
        *nodes -= 1;
        let spend = |bytes: &mut usize, n: usize| match bytes.checked_sub(n) {
            Some(left) => {
                *bytes = left;
                true
            }
            None => false,
        };
        match value {
            Value::String(s) => spend(bytes, s.len()),
            Value::Array(items) => items.iter().all(|v| walk(v, nodes, bytes)),
            Value::Object(map) => map
                .iter()
                .all(|(k, v)| spend(bytes, k.len()) && walk(v, nodes, bytes)),
            _ => true,
        }
    }
    let (mut nodes, mut bytes) = (nodes, bytes);
    walk(value, &mut nodes, &mut bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_named_wherever_they_are() {
        let text = br#"{"resourceType": "Observation", "status": "final", "status": "amended",
            "code": {"text": "x", "coding": [{"code": "a", "code": "b"}]}}"#;
        let paths: Vec<String> = parse(text)
            .unwrap_err()
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            ["Observation.status", "Observation.code.coding[0].code"]
        );
    }

    #[test]
    fn duplicates_are_bounded() {
        let mut text = String::from("{");
        for i in 0..1000 {
            text.push_str(&format!("\"a\": {i},"));
        }
        text.push_str("\"b\": 1}");
        assert_eq!(
            parse(text.as_bytes()).unwrap_err().len(),
            crate::problem::MAX_PROBLEMS
        );
    }

    #[test]
    fn numbers_keep_their_text() {
        let text = br#"{"a": 6.10, "b": 0.0100, "c": 12345678901234567890.5, "d": 1e2}"#;
        let v = parse(text).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":6.10,"b":0.0100,"c":12345678901234567890.5,"d":1e+2}"#
        );
    }

    #[test]
    fn malformed_text_is_one_problem() {
        assert_eq!(parse(b"{\"a\": ").unwrap_err()[0].path, "$");
        assert_eq!(parse(b"[1, 2]").unwrap(), serde_json::json!([1, 2]));
    }

    #[test]
    fn nodes_and_bytes_are_counted_only_as_far_as_the_bound() {
        let v: Value = serde_json::json!({"a": [1, 2, {"b": null}], "c": "xyz"});
        // Seven nodes; keys a, b, c and the string xyz: six bytes.
        assert!(within(&v, 7, 6));
        assert!(!within(&v, 6, 100));
        assert!(!within(&v, 100, 5));
        assert!(!within(&v, 0, 100));
        let long: Value = serde_json::json!({"div": "x".repeat(1 << 20)});
        assert!(
            !within(&long, 1000, 32 * 1024),
            "a few nodes, a megabyte of text"
        );
    }
}
