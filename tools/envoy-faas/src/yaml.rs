//! Small builders for ordered YAML output (`serde_yaml::Mapping` keeps
//! insertion order, so the output reads like a hand-written config).

use serde_yaml::{Mapping, Value};

/// A mapping with its keys in the order given.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

pub fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

pub fn n(number: u64) -> Value {
    Value::Number(number.into())
}

pub fn b(value: bool) -> Value {
    Value::Bool(value)
}

pub fn seq(items: Vec<Value>) -> Value {
    Value::Sequence(items)
}

/// Adds `key: value` to a mapping (no-op on anything else).
pub fn insert(target: &mut Value, key: &str, value: Value) {
    if let Value::Mapping(m) = target {
        m.insert(Value::String(key.to_string()), value);
    }
}

/// A JSON value as YAML (objects keep serde_json's key order).
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Number(u.into()),
            (None, Some(i), _) => Value::Number(i.into()),
            (None, None, Some(f)) => Value::Number(f.into()),
            _ => Value::Null,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Sequence(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            let mut m = Mapping::new();
            for (k, v) in o {
                m.insert(Value::String(k.clone()), from_json(v));
            }
            Value::Mapping(m)
        }
    }
}

/// Several documents as one YAML stream.
pub fn documents(docs: &[Value]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(doc)?);
    }
    Ok(out)
}
