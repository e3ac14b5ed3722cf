//! JSON read as dockerd's Go `encoding/json` decodes it into its structs, so that a guard
//! sees the value the daemon will act on:
//!
//! - **Field names match case-insensitively**, with Go's folding: ASCII letters in either
//!   case, plus `ſ` (U+017F) for `s` and `K` (Kelvin sign, U+212A) for `k`, whose Unicode
//!   fold orbits contain those letters. So `"privileged"`, `"PRIVILEGED"` and
//!   `"Privileged"` all set `Privileged`, and `"Bindſ"` sets `Binds`.
//! - **Duplicates**: each occurrence is decoded into the field in order, so for a scalar
//!   or a slice the last one wins; for a struct behind a pointer (`HostConfig`) the
//!   objects *merge* (each sets only the fields it names), and a `null` resets it.
//! - **`null`** has no effect on a bool, number or string field, and sets a slice, map or
//!   pointer to nil.
//! - Map keys (`DriverConfig.Options`) match exactly; the last duplicate wins.
//!
//! Objects keep every entry in order ([`Json::Object`] is a list, not a map), which is
//! what these rules need. Anything this module cannot decode (invalid JSON or UTF-8,
//! nesting deeper than serde_json's limit of 128, trailing data) is an error: guards
//! refuse it rather than guess.

use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(body: &[u8]) -> Result<Json, serde_json::Error> {
        serde_json::from_slice(body)
    }

    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// A value of the wrong JSON type for the field: dockerd refuses the request with an
/// error, and so does a guard.
#[derive(Debug, PartialEq, Eq)]
pub struct TypeError {
    pub field: String,
    pub found: &'static str,
    pub expected: &'static str,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} where the daemon expects {}",
            self.field, self.found, self.expected
        )
    }
}

/// Go's case-insensitive field match of a JSON key against an ASCII field name.
pub fn key_matches(key: &str, field: &str) -> bool {
    let mut f = field.bytes();
    for c in key.chars() {
        let Some(want) = f.next() else {
            return false;
        };
        let ok = match c {
            c if c.is_ascii() => (c as u8).eq_ignore_ascii_case(&want),
            '\u{17f}' => want.eq_ignore_ascii_case(&b's'),
            '\u{212a}' => want.eq_ignore_ascii_case(&b'k'),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    f.next().is_none()
}

/// A struct as Go has decoded it from one or more JSON objects: the objects that were
/// decoded into it, in order (several when its key was duplicated, merged; none when it
/// is absent or was reset by `null`). `path` names it in messages.
#[derive(Clone, Debug)]
pub struct Struct<'a> {
    objects: Vec<&'a [(String, Json)]>,
    path: String,
}

impl<'a> Struct<'a> {
    /// The top-level object of a body; not an object is a type error.
    pub fn root(v: &'a Json, name: &str) -> Result<Struct<'a>, TypeError> {
        match v {
            Json::Object(entries) => Ok(Struct {
                objects: vec![entries],
                path: name.to_owned(),
            }),
            // A body of `null` decodes to an empty struct.
            Json::Null => Ok(Struct {
                objects: Vec::new(),
                path: name.to_owned(),
            }),
            other => Err(TypeError {
                field: name.to_owned(),
                found: other.kind(),
                expected: "an object",
            }),
        }
    }

    /// `field`'s full name in messages (`HostConfig.Binds`).
    pub fn field_name(&self, field: &str) -> String {
        self.name(field)
    }

    /// The value that decides a field of any type, `null` included; `None` when absent.
    pub fn last_value(&self, field: &str) -> Option<&'a Json> {
        self.last(field)
    }

    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    /// Every value given for `field`, in order.
    fn occurrences(&self, field: &str) -> impl Iterator<Item = &'a Json> + '_ {
        let field = field.to_owned();
        self.objects
            .iter()
            .flat_map(|o| o.iter())
            .filter(move |(k, _)| key_matches(k, &field))
            .map(|(_, v)| v)
    }

    /// The value that decides a scalar field: the last that is not `null`.
    fn scalar(&self, field: &str) -> Option<&'a Json> {
        self.occurrences(field).filter(|v| **v != Json::Null).last()
    }

    /// The value that decides a slice or map field: the last, `null` included.
    fn last(&self, field: &str) -> Option<&'a Json> {
        self.occurrences(field).last()
    }

    pub fn bool(&self, field: &str) -> Result<bool, TypeError> {
        match self.scalar(field) {
            None => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.type_error(field, other, "a boolean")),
        }
    }

    pub fn string(&self, field: &str) -> Result<Option<&'a str>, TypeError> {
        match self.scalar(field) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.type_error(field, other, "a string")),
        }
    }

    /// A `[]string` field.
    pub fn strings(&self, field: &str) -> Result<Vec<&'a str>, TypeError> {
        match self.last(field) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Json::String(s) => Ok(s.as_str()),
                    // A null element of a []string is "".
                    Json::Null => Ok(""),
                    other => Err(self.type_error(field, other, "an array of strings")),
                })
                .collect(),
            Some(other) => Err(self.type_error(field, other, "an array of strings")),
        }
    }

    /// moby's `strslice.StrSlice` (`CapAdd`): an array of strings, or one string.
    pub fn str_slice(&self, field: &str) -> Result<Vec<&'a str>, TypeError> {
        match self.last(field) {
            Some(Json::String(s)) => Ok(vec![s.as_str()]),
            _ => self.strings(field),
        }
    }

    /// A slice field's length (`Devices`): how many elements the daemon gets.
    pub fn len(&self, field: &str) -> Result<usize, TypeError> {
        match self.last(field) {
            None | Some(Json::Null) => Ok(0),
            Some(Json::Array(items)) => Ok(items.len()),
            Some(other) => Err(self.type_error(field, other, "an array")),
        }
    }

    /// A `[]struct` field (`Mounts`): one struct per element.
    pub fn structs(&self, field: &str) -> Result<Vec<Struct<'a>>, TypeError> {
        match self.last(field) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Struct::root(item, &format!("{}[{i}]", self.name(field))))
                .collect(),
            Some(other) => Err(self.type_error(field, other, "an array")),
        }
    }

    /// A struct field, behind a pointer or not: the objects after the last `null`,
    /// merged.
    pub fn child(&self, field: &str) -> Result<Struct<'a>, TypeError> {
        let mut objects = Vec::new();
        for v in self.occurrences(field) {
            match v {
                Json::Null => objects.clear(),
                Json::Object(entries) => objects.push(entries.as_slice()),
                other => return Err(self.type_error(field, other, "an object")),
            }
        }
        Ok(Struct {
            objects,
            path: self.name(field),
        })
    }

    /// A `map[string]T` field: keys exactly as written (maps do not fold), merged over
    /// duplicates of the field, the last duplicate key winning; `null` resets the map.
    pub fn map(&self, field: &str) -> Result<Vec<(&'a str, &'a Json)>, TypeError> {
        let mut out: Vec<(&'a str, &'a Json)> = Vec::new();
        for v in self.occurrences(field) {
            match v {
                Json::Null => out.clear(),
                Json::Object(entries) => {
                    for (k, v) in entries {
                        out.retain(|(ok, _)| *ok != k.as_str());
                        out.push((k.as_str(), v));
                    }
                }
                other => return Err(self.type_error(field, other, "an object")),
            }
        }
        Ok(out)
    }

    /// The keys of a map field (`EndpointsConfig`).
    pub fn map_keys(&self, field: &str) -> Result<Vec<&'a str>, TypeError> {
        Ok(self.map(field)?.into_iter().map(|(k, _)| k).collect())
    }

    fn type_error(&self, field: &str, found: &Json, expected: &'static str) -> TypeError {
        TypeError {
            field: self.name(field),
            found: found.kind(),
            expected,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value()?;
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Json {
        Json::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn keys_fold_as_go_does() {
        for key in ["Privileged", "privileged", "PRIVILEGED", "pRiViLeGeD"] {
            assert!(key_matches(key, "Privileged"), "{key}");
        }
        assert!(key_matches("Bind\u{17f}", "Binds"));
        assert!(key_matches("Networ\u{212a}Mode", "NetworkMode"));
        for key in [
            "Privilege",
            "Privilegedx",
            "Privil\u{e9}ged",
            "",
            "Pr\u{131}vileged",
        ] {
            assert!(!key_matches(key, "Privileged"), "{key}");
        }
    }

    #[test]
    fn last_duplicate_wins_and_null_keeps_scalars() {
        let v = root(r#"{"Privileged": true, "privileged": false}"#);
        assert!(!Struct::root(&v, "").unwrap().bool("Privileged").unwrap());
        let v = root(r#"{"privileged": false, "PRIVILEGED": true}"#);
        assert!(Struct::root(&v, "").unwrap().bool("Privileged").unwrap());
        let v = root(r#"{"Privileged": true, "Privileged": null}"#);
        assert!(Struct::root(&v, "").unwrap().bool("Privileged").unwrap());
        let v = root(r#"{"Binds": ["/:/host"], "binds": null}"#);
        assert!(Struct::root(&v, "")
            .unwrap()
            .strings("Binds")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn duplicated_structs_merge_and_null_resets_them() {
        let v =
            root(r#"{"HostConfig": {"Privileged": true}, "hostconfig": {"CapAdd": "SYS_ADMIN"}}"#);
        let hc = Struct::root(&v, "").unwrap().child("HostConfig").unwrap();
        assert!(hc.bool("Privileged").unwrap());
        assert_eq!(hc.str_slice("CapAdd").unwrap(), ["SYS_ADMIN"]);
        let v =
            root(r#"{"HostConfig": {"Privileged": true}, "HostConfig": null, "HostConfig": {}}"#);
        let hc = Struct::root(&v, "").unwrap().child("HostConfig").unwrap();
        assert!(!hc.bool("Privileged").unwrap());
    }

    #[test]
    fn type_errors_name_the_field() {
        let v = root(r#"{"HostConfig": {"Privileged": "true"}}"#);
        let hc = Struct::root(&v, "").unwrap().child("HostConfig").unwrap();
        let e = hc.bool("Privileged").unwrap_err();
        assert_eq!(
            e.to_string(),
            "HostConfig.Privileged is a string where the daemon expects a boolean"
        );
    }

    #[test]
    fn maps_keep_exact_keys() {
        let v = root(r#"{"Options": {"o": "bind", "O": "x", "o": "ro"}}"#);
        let m = Struct::root(&v, "").unwrap().map("Options").unwrap();
        assert_eq!(
            m,
            vec![
                ("O", &Json::String("x".into())),
                ("o", &Json::String("ro".into()))
            ]
        );
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        for bad in [
            &b"{"[..],
            b"{\"a\":1}x",
            b"{\"a\":\"\xff\"}",
            b"",
            b"{'a':1}",
        ] {
            assert!(
                Json::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Json::parse(deep.as_bytes()).is_err());
    }
}
