//! Comparing a committed vector file with the freshly computed one: the first difference as a
//! JSON path with both values, and the pretty form the files are written in.

use std::collections::BTreeSet;

use serde_json::Value;

/// How much of a value a difference report shows.
const SHOWN_BYTES_MAX: usize = 200;

/// A value for a difference report: `<absent>`, or its JSON cut at 200 bytes.
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "<absent>".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > SHOWN_BYTES_MAX {
                let mut end = SHOWN_BYTES_MAX;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &s[..end])
            } else {
                s
            }
        }
    }
}

/// The first place where `committed` and `computed` differ, as a JSON path (starting at
/// `path`, e.g. `$`) with both values; `None` when they are equal.
pub fn first_diff(path: &str, committed: &Value, computed: &Value) -> Option<String> {
    match (committed, computed) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_diff(&p, x, y),
                    (x, y) => Some(format!("{p}: committed {}, computed {}", show(x), show(y))),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => (0..a.len().max(b.len())).find_map(|i| {
            let p = format!("{path}[{i}]");
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) => first_diff(&p, x, y),
                (x, y) => Some(format!("{p}: committed {}, computed {}", show(x), show(y))),
            }
        }),
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{path}: committed {}, computed {}",
            show(Some(a)),
            show(Some(b))
        )),
    }
}

/// The pretty JSON of `v` with a final newline: the form of every committed vector file.
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_difference() {
        let v = json!({"a": [1, {"b": "c"}], "d": null});
        assert_eq!(first_diff("$", &v, &v.clone()), None);
    }

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let committed = json!({"a": [1, {"b": "c"}], "z": 1});
        let computed = json!({"a": [1, {"b": "d"}], "z": 2});
        assert_eq!(
            first_diff("$", &committed, &computed).as_deref(),
            Some(r#"$.a[1].b: committed "c", computed "d""#)
        );
        assert_eq!(
            first_diff("$", &json!({"a": [1]}), &json!({"a": [1, 2]})).as_deref(),
            Some("$.a[1]: committed <absent>, computed 2")
        );
        assert_eq!(
            first_diff("$", &json!({}), &json!({"k": true})).as_deref(),
            Some("$.k: committed <absent>, computed true")
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("é".repeat(300));
        let shown = show(Some(&long));
        assert!(shown.ends_with("...") && shown.len() <= 204, "{shown}");
    }

    #[test]
    fn pretty_ends_with_a_newline() {
        assert_eq!(pretty(&json!({"a": 1})), "{\n  \"a\": 1\n}\n");
    }
}
