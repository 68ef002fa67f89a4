//! Untrusted JSON bodies to typed values, with one error per bad field.
//!
//! Invariants: a body never panics the server and never allocates more than its (already
//! bounded) bytes; an error names the field, the constraint and the allowed range, and never
//! quotes the value sent (a prompt is never echoed); `null` counts as absent, as OpenAI's API
//! treats it.

use serde_json::{Map, Value};

/// One field that failed validation (the worker API's 400 body lists them all).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    /// `required`, `type`, `range`, `length`, `count`, `json`, `unsupported`, `context_length`.
    pub constraint: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, constraint: &'static str, message: impl Into<String>) -> Self {
        FieldError { field: field.to_string(), constraint, message: message.into() }
    }

    pub fn json(&self) -> Value {
        serde_json::json!({"field": self.field, "constraint": self.constraint, "message": self.message})
    }
}

/// A JSON object body being read field by field; errors accumulate.
#[derive(Debug)]
pub(crate) struct Fields {
    map: Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl Fields {
    /// The body must be one JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Fields, FieldError> {
        match serde_json::from_slice::<Value>(bytes) {
            // serde_json's message gives line and column, never the text.
            Err(e) => Err(FieldError::new("body", "json", format!("the body is not valid JSON: {e}"))),
            Ok(Value::Object(map)) => Ok(Fields { map, errors: Vec::new() }),
            Ok(_) => Err(FieldError::new("body", "type", "the body must be a JSON object")),
        }
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn value(&self, k: &str) -> Option<&Value> {
        self.get(k)
    }

    pub fn err(&mut self, field: &str, constraint: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, constraint, message));
    }

    /// A number in `[lo, hi]` (`lo` excluded when `lo_open`).
    pub fn num(&mut self, k: &str, lo: f64, hi: f64, lo_open: bool) -> Option<f32> {
        let v = self.get(k)?;
        let range = match (lo_open, hi.is_finite()) {
            (true, true) => format!("in ({lo}, {hi}]"),
            (true, false) => format!("> {lo}"),
            (false, true) => format!("in [{lo}, {hi}]"),
            (false, false) => format!(">= {lo}"),
        };
        let Some(x) = v.as_f64() else {
            self.err(k, "type", format!("{k} must be a number {range}"));
            return None;
        };
        let ok = x.is_finite() && (if lo_open { x > lo } else { x >= lo }) && x <= hi;
        if !ok {
            self.err(k, "range", format!("{k} must be {range}"));
            return None;
        }
        Some(x as f32)
    }

    /// An integer in `[lo, hi]`.
    pub fn int(&mut self, k: &str, lo: i64, hi: i64) -> Option<i64> {
        let v = self.get(k)?;
        let Some(x) = v.as_i64().or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))) else {
            self.err(k, "type", format!("{k} must be an integer in [{lo}, {hi}]"));
            return None;
        };
        if x < lo || x > hi {
            self.err(k, "range", format!("{k} must be an integer in [{lo}, {hi}]"));
            return None;
        }
        Some(x)
    }

    /// Any unsigned 64-bit integer (seeds); negative integers wrap as two's complement (OpenAI
    /// clients may send them).
    pub fn seed(&mut self, k: &str) -> Option<u64> {
        let v = self.get(k)?;
        match (v.as_u64(), v.as_i64()) {
            (Some(u), _) => Some(u),
            (None, Some(i)) => Some(i as u64),
            _ => {
                self.err(k, "type", format!("{k} must be an integer"));
                None
            }
        }
    }

    pub fn boolean(&mut self, k: &str) -> Option<bool> {
        let v = self.get(k)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.err(k, "type", format!("{k} must be true or false"));
                None
            }
        }
    }

    /// A string of `min..=max` characters.
    pub fn string(&mut self, k: &str, required: bool, min: usize, max: usize) -> Option<String> {
        let Some(v) = self.get(k) else {
            if required {
                self.err(k, "required", format!("{k} is required"));
            }
            return None;
        };
        let Some(s) = v.as_str() else {
            self.err(k, "type", format!("{k} must be a string"));
            return None;
        };
        // Count at most max + 1 characters: a huge string is not walked twice.
        let n = s.chars().take(max.saturating_add(1)).count();
        if n < min || n > max {
            self.err(k, "length", format!("{k} must have {min} to {max} characters"));
            return None;
        }
        Some(s.to_string())
    }

    /// Stop strings: one string or an array of at most `max` non-empty strings, each at most
    /// `max_chars` characters.
    pub fn stop(&mut self, k: &str, max: usize, max_chars: usize) -> Vec<String> {
        let Some(v) = self.get(k) else { return Vec::new() };
        let items: Vec<&Value> = match v {
            Value::String(_) => vec![v],
            Value::Array(a) => a.iter().collect(),
            _ => {
                self.err(k, "type", format!("{k} must be a string or an array of strings"));
                return Vec::new();
            }
        };
        if items.len() > max {
            self.err(k, "count", format!("{k} may hold at most {max} strings"));
            return Vec::new();
        }
        let mut out = Vec::new();
        for it in items {
            match it.as_str() {
                Some(s) if !s.is_empty() && s.chars().count() <= max_chars => out.push(s.to_string()),
                Some(_) => {
                    self.err(k, "length", format!("each {k} string must have 1 to {max_chars} characters"));
                    return Vec::new();
                }
                None => {
                    self.err(k, "type", format!("{k} must be a string or an array of strings"));
                    return Vec::new();
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_fields_and_never_quote_values() {
        let body =
            br#"{"prompt": "SECRET-PROMPT", "temperature": 9, "top_k": -1, "stop": ["a","b","c","d","e"], "x": null}"#;
        let mut f = Fields::parse(body).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(f.num("temperature", 0.0, 2.0, false), None);
        assert_eq!(f.int("top_k", 0, i64::MAX), None);
        assert!(f.stop("stop", 4, 100).is_empty());
        assert_eq!(f.string("prompt", true, 1, 5), None);
        assert_eq!(f.string("x", true, 1, 5), None);
        let fields: Vec<_> = f.errors.iter().map(|e| (e.field.as_str(), e.constraint)).collect();
        assert_eq!(
            fields,
            [("temperature", "range"), ("top_k", "range"), ("stop", "count"), ("prompt", "length"), ("x", "required")]
        );
        for e in &f.errors {
            assert!(!e.message.contains("SECRET"), "{e:?}");
        }
    }

    #[test]
    fn bodies_that_are_not_objects_are_typed_errors() {
        assert_eq!(Fields::parse(b"[1]").map(|_| ()).unwrap_err().constraint, "type");
        assert_eq!(Fields::parse(b"{\"a\":").map(|_| ()).unwrap_err().constraint, "json");
        assert_eq!(Fields::parse(&[0xff, 0xfe]).map(|_| ()).unwrap_err().constraint, "json");
    }
}
