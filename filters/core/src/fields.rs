//! A strict reader over one JSON object of plugin configuration.
//!
//! Every error names the route and the full dotted field path, and never
//! echoes a string value back (strings may be secrets). Fields are taken
//! out of the object as they are read, so whatever remains at the end is,
//! by construction, an unknown field.

use serde_json::{Map, Value};
use std::fmt;

/// A configuration error: which route, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub route: String,
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(route: &str, field: &str, message: impl Into<String>) -> Self {
        ConfigError {
            route: route.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "route \"{}\": {}", self.route, self.message)
        } else {
            write!(
                f,
                "route \"{}\": field \"{}\": {}",
                self.route, self.field, self.message
            )
        }
    }
}

/// Describes a JSON value's type for error messages without its content.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads typed fields out of a JSON object, consuming them.
#[derive(Debug)]
pub struct Fields {
    route: String,
    prefix: String,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(route: &str, map: Map<String, Value>) -> Self {
        Fields {
            route: route.to_string(),
            prefix: String::new(),
            map,
        }
    }

    /// The names of the fields not read yet (an object of free names,
    /// such as a table of headers).
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// The route label errors are reported under.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The full dotted path of a field of this object.
    pub fn path(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// An error about a field of this object.
    pub fn error(&self, name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.route, &self.path(name), message)
    }

    /// Whether the field is present (and not null).
    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    /// Takes a raw value; JSON `null` counts as absent.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        match self.map.remove(name) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.error(name, format!("must be a string, got {}", type_name(&other))))
            }
        }
    }

    /// A string that must be present and non-empty.
    pub fn required_string(&mut self, name: &str) -> Result<String, ConfigError> {
        match self.string(name)? {
            None => Err(self.error(name, "is required")),
            Some(s) if s.is_empty() => Err(self.error(name, "must not be empty")),
            Some(s) => Ok(s),
        }
    }

    /// An optional string that, when present, must be non-empty.
    pub fn non_empty_string(&mut self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.string(name)? {
            Some(s) if s.is_empty() => Err(self.error(name, "must not be empty")),
            other => Ok(other),
        }
    }

    /// An optional non-empty string that will be sent as a header value
    /// (a key, token or secret): control characters are refused, since
    /// they could split or corrupt the header.
    pub fn header_value(&mut self, name: &str) -> Result<Option<String>, ConfigError> {
        let value = self.non_empty_string(name)?;
        if value
            .as_deref()
            .is_some_and(|v| v.bytes().any(|b| b.is_ascii_control()))
        {
            return Err(self.error(name, "must not contain control characters"));
        }
        Ok(value)
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.error(
                name,
                format!("must be a boolean, got {}", type_name(&other)),
            )),
        }
    }

    /// A whole number within `[min, max]`.
    pub fn integer(&mut self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let value = match self.take(name) {
            None => return Ok(None),
            Some(v) => v,
        };
        let number = match &value {
            Value::Number(n) => n,
            other => {
                return Err(self.error(
                    name,
                    format!("must be an integer, got {}", type_name(other)),
                ))
            }
        };
        match number.as_u64() {
            Some(n) if n >= min && n <= max => Ok(Some(n)),
            Some(n) => Err(self.error(name, format!("must be between {min} and {max}, got {n}"))),
            None => Err(self.error(
                name,
                format!("must be a whole number between {min} and {max}, got {number}"),
            )),
        }
    }

    /// A nested object, read with its own reader (errors carry `name.` as prefix).
    pub fn object(&mut self, name: &str) -> Result<Option<Fields>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                route: self.route.clone(),
                prefix: format!("{}{}.", self.prefix, name),
                map,
            })),
            Some(other) => Err(self.error(
                name,
                format!("must be an object, got {}", type_name(&other)),
            )),
        }
    }

    /// The fields not read so far.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// Fails on the first field nobody read.
    pub fn finish(self) -> Result<(), ConfigError> {
        // The first unknown name in order: `min`, not a sort (a sort's
        // code is kilobytes of the module).
        match self.map.keys().min() {
            None => Ok(()),
            Some(name) => Err(self.error(name, "unknown field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields::new("r1", m),
            _ => Fields::new("r1", Map::new()),
        }
    }

    #[test]
    fn integer_range_and_type_errors_name_the_field() {
        let mut f = fields(json!({"timeout": 50, "pool": "x", "frac": 1.5}));
        let e = f.integer("timeout", 100, 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route \"r1\": field \"timeout\": must be between 100 and 1000, got 50"
        );
        let e = f.integer("pool", 1, 10).unwrap_err();
        assert_eq!(e.field, "pool");
        assert!(e.message.contains("got string"));
        let e = f.integer("frac", 1, 10).unwrap_err();
        assert!(e.message.contains("whole number"));
    }

    #[test]
    fn string_errors_never_echo_the_value() {
        let mut f = fields(json!({"secret": 12345, "empty": ""}));
        let e = f.string("secret").unwrap_err();
        assert!(!e.to_string().contains("12345"));
        let e = f.required_string("empty").unwrap_err();
        assert_eq!(e.message, "must not be empty");
        let e = f.required_string("missing").unwrap_err();
        assert_eq!(e.message, "is required");
    }

    #[test]
    fn nested_objects_carry_the_dotted_path_and_unknown_fields_fail() {
        let mut f = fields(json!({"authorization": {"service_token": 1, "extra": true}}));
        let mut auth = f.object("authorization").unwrap().unwrap();
        let e = auth.string("service_token").unwrap_err();
        assert_eq!(e.field, "authorization.service_token");
        let e = auth.finish().unwrap_err();
        assert_eq!(e.field, "authorization.extra");
        assert_eq!(e.message, "unknown field");
        assert!(f.finish().is_ok());
    }

    #[test]
    fn header_values_refuse_control_characters() {
        let mut f = fields(json!({"key": "a\r\nInjected: 1", "ok": "k-1", "empty": ""}));
        let e = f.header_value("key").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("key", "must not contain control characters")
        );
        assert_eq!(f.header_value("ok").unwrap().as_deref(), Some("k-1"));
        assert_eq!(
            f.header_value("empty").unwrap_err().message,
            "must not be empty"
        );
        assert_eq!(f.header_value("absent").unwrap(), None);
    }

    #[test]
    fn null_is_absent() {
        let mut f = fields(json!({"timeout": null}));
        assert_eq!(f.integer("timeout", 1, 2).unwrap(), None);
        assert!(f.finish().is_ok());
    }
}
