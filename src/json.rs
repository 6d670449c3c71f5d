//! JSON text into values through one reader only.
//!
//! `serde_json::from_str` and `serde_json::from_slice` parse with two reader types, and every
//! `Deserialize` impl is compiled once per reader it meets; the `.wasm` would carry both
//! copies. Text is parsed here as its UTF-8 bytes, so only one copy exists. Values and error
//! messages are serde_json's, except that a struct is never read from a JSON array (serde_json
//! would read it from its fields in order): see [`Objects`].

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// `serde_json::json!` of an object (`"key": value` pairs, each value an expression, `null`,
/// `[]` or an object of the same kind): the same value, built by one shared loop instead of an
/// inline insertion per key at every call site.
macro_rules! object {
    ({ $($body:tt)* }) => {
        $crate::json::object_of(&mut $crate::json::object!(@fields [] $($body)*))
    };
    (@fields [$($done:tt)*]) => { [$($done)*] };
    (@fields [$($done:tt)*] $key:literal: { $($inner:tt)* } $(, $($rest:tt)*)?) => {
        $crate::json::object!(@fields [$($done)* ($key, $crate::json::object!({ $($inner)* })),]
            $($($rest)*)?)
    };
    (@fields [$($done:tt)*] $key:literal: null $(, $($rest:tt)*)?) => {
        $crate::json::object!(@fields [$($done)* ($key, serde_json::Value::Null),] $($($rest)*)?)
    };
    (@fields [$($done:tt)*] $key:literal: [] $(, $($rest:tt)*)?) => {
        $crate::json::object!(@fields [$($done)* ($key, serde_json::Value::Array(Vec::new())),]
            $($($rest)*)?)
    };
    (@fields [$($done:tt)*] $key:literal: $value:expr $(, $($rest:tt)*)?) => {
        $crate::json::object!(@fields [$($done)* ($key, $crate::json::to_value(&$value)),]
            $($($rest)*)?)
    };
}
pub(crate) use object;

/// `serde_json::to_value`, as `json!` calls it for a value.
pub fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

/// The object of `fields` (a later key replaces an earlier one, as in `json!`).
pub fn object_of(fields: &mut [(&str, serde_json::Value)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (key, value) in fields {
        map.insert((*key).to_string(), std::mem::take(value));
    }
    serde_json::Value::Object(map)
}

/// A field that a flat wire struct holds as optional but its variant requires, or serde's
/// own "missing field" error: for the hand-written readers of tagged shapes (actor calls,
/// outgoing messages, failure records).
pub fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{name}`"))
}

/// `serde_json::from_str` of a whole document, read as [`from_slice`] of its bytes.
pub fn from_str<'a, T: serde::Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    from_slice(text.as_bytes())
}

/// `serde_json::from_slice` of a whole document, except that structs are read from JSON
/// objects only (see [`Objects`]): everything the Worker reads (requests, rule sets, TikTok's
/// answers and deliveries, its own records and calls) is documented as objects.
pub fn from_slice<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = T::deserialize(Objects(&mut de))?;
    de.end()?;
    Ok(value)
}

/// Deserializes a `T` from the start of `json` (whatever follows it is not read) and, on
/// failure, names the value at fault with [`error_path`].
pub fn from_slice_traced<T: serde::de::DeserializeOwned>(
    json: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    T::deserialize(Objects(&mut serde_json::Deserializer::from_slice(json)))
        .map_err(|e| (error_path(json, &e), e))
}

/// A deserializer that reads every struct from a JSON object only, never from an array.
///
/// serde_json reads a struct from an array of its fields in order too, so every derived
/// `Deserialize` it meets is compiled twice over (once for objects, once for arrays).
/// Everything this Worker reads is documented as objects: read through this, its types lose
/// the array copy. Structs are asked for as maps at every depth this wrapper sees: an array
/// where a struct belongs is an error ("invalid type: sequence, expected struct ...") like any
/// other non-object, `[]` included. Types that serde reads by buffering their input first
/// (internally tagged and untagged enums, `flatten`) and struct variants of externally tagged
/// enums are read by serde_json's own code inside, which still takes arrays there. Everything
/// else is serde_json's own reading, errors included.
struct Objects<D>(D);

/// Hands the inner deserializer's values to `V`, wrapping what it reads them from.
struct Visit<V>(V);

/// A seed whose value is read through [`Objects`].
struct Seed<S>(S);

/// Map, sequence and enum access whose values are read through [`Objects`].
struct Access<A>(A);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* Visit(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Objects<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Visit(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Objects(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Objects(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Access(a))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Access(a))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Access(a))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Objects(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<A> {
    type Error = A::Error;
    type Variant = Access<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Seed(seed))?;
        Ok((value, Access(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Visit(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Visit(visitor))
    }
}

/// One open object (with the key whose value is being read, once known) or array (with the
/// index of the element being read) on the way to an error.
enum Frame {
    Object(Option<String>),
    Array(usize),
}

/// The path to the value a deserialization error of `json` is about: `rules[0].text`,
/// `away.open.mon`, or `.` for the whole document, as `serde_path_to_error` (used before) named
/// it.
///
/// Found from the error's line and column instead of tracked through every `Deserialize`
/// impl: the tracking wrapped each of them in a copy of its own (about 11 KiB of `.wasm`
/// gzip). serde_json places an error about a value just after the value (or at the `{` or `[`
/// opening it), so the text before that point, read as nested objects and arrays, leads to it:
/// an object's current key counts from its closing quote until the next `,`, an array's index
/// from its `[` or `,`. An unknown field is named with its key; a duplicate one, and an enum
/// written as `{"variant": ...}` with an unknown variant, are errors of the object or enum (no
/// key). Checked against the tracking on 200,000 mangled documents: the same name for every
/// error about a value. Syntax errors (a rule set names a field for them too) are named after
/// the innermost key or index open where the error is, where the tracking said `?` for a key
/// it never read, or named the container between two of its items.
pub fn error_path(json: &[u8], e: &serde_json::Error) -> String {
    let message = e.to_string();
    // Errors about a key read as an object's own field (twice) or as an enum's variant name:
    // named after the object or the enum, without the key.
    let not_a_field =
        message.starts_with("duplicate field `") || message.starts_with("unknown variant `");
    let mut at = match e.line() {
        0 => 0,
        line => {
            let line_start: usize = json
                .split(|&b| b == b'\n')
                .take(line - 1)
                .map(|l| l.len() + 1)
                .sum();
            (line_start + e.column()).min(json.len())
        }
    };
    // An error about a key is placed after the `}` when one follows it directly.
    if (not_a_field || message.starts_with("unknown field `")) && at > 0 && json[at - 1] == b'}' {
        at -= 1;
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    // A key was read and its `:` was not yet.
    let mut before_colon = false;
    let mut i = 0;
    while i < at {
        match json[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                if std::mem::take(&mut expect_key) {
                    before_colon = true;
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let quoted = &json[start..(i + 1).min(json.len())];
                        *key = Some(from_slice(quoted).unwrap_or_default());
                    }
                }
            }
            b':' => before_colon = false,
            b'{' => {
                before_colon = false;
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => {
                before_colon = false;
                stack.push(Frame::Array(0));
                expect_key = false;
            }
            b'}' | b']' => {
                before_colon = false;
                stack.pop();
                expect_key = false;
            }
            b',' => {
                before_colon = false;
                match stack.last_mut() {
                    Some(Frame::Object(key)) => {
                        *key = None;
                        expect_key = true;
                    }
                    Some(Frame::Array(n)) => *n += 1,
                    None => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    if not_a_field && before_colon {
        if let Some(Frame::Object(key)) = stack.last_mut() {
            *key = None;
        }
    }
    let mut path = String::new();
    let mut separator = "";
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                path.push_str(separator);
                path.push_str(key);
            }
            Frame::Object(None) => continue,
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
        separator = ".";
    }
    if separator.is_empty() {
        path.push('.');
    }
    path
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        n: u64,
        #[serde(default)]
        items: Vec<crate::tiktok::types::Template>,
        #[serde(default)]
        map: std::collections::BTreeMap<String, Vec<u64>>,
    }

    fn path(json: &str) -> String {
        super::from_slice_traced::<Doc>(json.as_bytes())
            .unwrap_err()
            .0
    }

    #[test]
    fn object_is_json() {
        let (n, s, o) = (7u64, "x".to_string(), Some(1.5));
        assert_eq!(
            crate::json::object!({
                "n": n, "s": s, "o": o, "none": None::<u8>, "null": null, "list": [],
                "v": vec![1, 2], "inner": {"t": true, "deeper": {"s": &s}}, "n": n + 1,
            }),
            serde_json::json!({
                "n": n, "s": s, "o": o, "none": None::<u8>, "null": null, "list": [],
                "v": vec![1, 2], "inner": {"t": true, "deeper": {"s": &s}}, "n": n + 1,
            })
        );
        assert_eq!(crate::json::object!({}), serde_json::json!({}));
    }

    #[test]
    fn own_records_are_read_from_objects_only() {
        let text = r#"{"n":3,"map":{"a":[1,2]},"items":[{"type":"QA_LINK_CARD","title":"t",
            "buttons":[{"title":"a","id":"b"}]}]}"#;
        let d: Doc = super::from_str(text).unwrap();
        assert_eq!(
            (d.n, d.map["a"].len(), d.items[0].buttons[0].id.as_str()),
            (3, 2, "b")
        );
        let e = super::from_str::<Doc>("[1]").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid type: sequence, expected struct Doc"),
            "{e}"
        );
        let e = super::from_str::<Doc>(r#"{"items":[["QA_LINK_CARD","t",[]]]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid type: sequence, expected struct Template"),
            "{e}"
        );
        // The same errors as serde_json's own reading otherwise.
        for bad in [
            r#"{"n":"x"}"#,
            r#"{"bogus":1}"#,
            r#"{"n":1} x"#,
            r#"{"items":[{}]}"#,
        ] {
            assert_eq!(
                super::from_str::<Doc>(bad).unwrap_err().to_string(),
                serde_json::from_str::<Doc>(bad).unwrap_err().to_string()
            );
        }
    }

    #[test]
    fn structs_in_bodies_are_read_from_objects_only() {
        let e = super::from_slice_traced::<Doc>(b"[1]")
            .unwrap_err()
            .1
            .to_string();
        assert!(
            e.starts_with("invalid type: sequence, expected struct Doc"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_named_as_the_tracking_named_them() {
        let cases = [
            (r#"{"n":"x"}"#, "n"),
            (r#"{"n":{"a":1}}"#, "n"),
            (r#"{"bogus":1}"#, "bogus"),
            (r#"{"bogus"}"#, "bogus"),
            (r#"{"n":1, "n":2}"#, "."),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","title":"t","buttons":[]},{"type":"x"}]}"#,
                "items[1].type",
            ),
            (r#"{"items":[{"type":{"x":1}}]}"#, "items[0].type"),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","buttons":[{"title":"a","id":7}]}]}"#,
                "items[0].buttons[0].id",
            ),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","buttons":[]}]}"#,
                "items[0]",
            ),
            (
                r#"{"items":[{"type":"QA_LINK_CARD","title":"t","buttons":[{"title":"a","id":"b","x":1}]}]}"#,
                "items[0].buttons[0].x",
            ),
            ("{\n \"map\": {\"a\\u0062\": [1, \"2\"]}}", "map.ab[1]"),
            (r#"{"map":{"":true}}"#, "map."),
            (r#"{"map":{"a":[1,"x"]}}"#, "map.a[1]"),
        ];
        for (json, expected) in cases {
            assert_eq!(path(json), expected, "{json}");
        }
    }
}
