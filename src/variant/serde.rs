//! The serde bridge (feature `serde`): Rust values <-> [`Variant`].
//!
//! | Rust (serde data model) | `Variant` |
//! |---|---|
//! | `bool`, integers (`u64` up to `i64::MAX`), floats | `Bool`, `Int`, `Float` |
//! | `char`, `String`, `&str` | `String` (a `StringName` also reads as one) |
//! | bytes (`serde_bytes`) | `PackedByteArray` (which also reads as a sequence) |
//! | `Option`: `None` / `Some(v)` | `Nil` / `v` |
//! | unit, unit struct | `Nil` |
//! | sequences, tuples (`Vec<T>`, `[T; N]`, `(A, B)`) | `Array` (every `Packed*Array` also reads as one) |
//! | structs, maps | `Dictionary` (struct fields as `String` keys, in declaration order) |
//! | enums | unit variant: `String` name; others: `{ name: value }` |
//! | newtype structs | the inner value |
//!
//! Math types read as sequences of their numbers (`Vector2` as `[x, y]`), so
//! a `(f32, f32)` or `[f32; 2]` field accepts a `Vector2`.
//!
//! Errors name where they happened: `at `players[3].name`: invalid type...`.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Serialize};

use super::{Array, CompactString, Dictionary, Variant, VariantError};

/// Converts a Rust value into a [`Variant`] (feature `serde`).
///
/// # Errors
///
/// [`VariantError::Conversion`] naming the field when a value has no Variant
/// form (a `u64` or `i128` beyond `i64`).
///
/// # Example
///
/// ```
/// use lunanet::variant;
/// use lunanet::vdict;
///
/// #[derive(serde::Serialize)]
/// struct Player { id: u32, name: String, hp: f64 }
///
/// let v = variant::to_variant(&Player { id: 7, name: "ada".into(), hp: 3.5 })?;
/// assert_eq!(v, vdict! { "id" => 7, "name" => "ada", "hp" => 3.5 });
/// # Ok::<(), lunanet::variant::VariantError>(())
/// ```
pub fn to_variant<T: Serialize + ?Sized>(value: &T) -> Result<Variant, VariantError> {
    value.serialize(Serializer)
}

/// Converts a [`Variant`] into a Rust value (feature `serde`).
///
/// # Errors
///
/// [`VariantError::Conversion`] with the path of the offending field
/// (`players[3].name`) and serde's message (wrong type, missing field,
/// integer out of range...).
///
/// # Example
///
/// ```
/// use lunanet::variant::{self, VariantError};
/// use lunanet::{varray, vdict};
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Player { id: u32, name: String }
/// #[derive(serde::Deserialize, Debug)]
/// struct State { players: Vec<Player> }
///
/// let v = vdict! { "players" => varray![vdict! { "id" => 1, "name" => "ada" }] };
/// let s: State = variant::from_variant(v)?;
/// assert_eq!(s.players[0], Player { id: 1, name: "ada".into() });
///
/// let bad = vdict! { "players" => varray![vdict! { "id" => 1, "name" => 5 }] };
/// let e = variant::from_variant::<State>(bad).unwrap_err();
/// assert!(e.to_string().starts_with("at `players[0].name`: invalid type: integer `5`"), "{e}");
/// # Ok::<(), VariantError>(())
/// ```
pub fn from_variant<T: DeserializeOwned>(value: Variant) -> Result<T, VariantError> {
    T::deserialize(Deserializer(value))
}

impl ser::Error for VariantError {
    fn custom<T: std::fmt::Display>(msg: T) -> VariantError {
        VariantError::Conversion {
            path: String::new(),
            message: msg.to_string(),
        }
    }
}

impl de::Error for VariantError {
    fn custom<T: std::fmt::Display>(msg: T) -> VariantError {
        VariantError::Conversion {
            path: String::new(),
            message: msg.to_string(),
        }
    }
}

/// Prefixes the path of a conversion error with `segment` (`name` or `[i]`).
fn under(segment: impl FnOnce() -> String) -> impl FnOnce(VariantError) -> VariantError {
    move |e| match e {
        VariantError::Conversion { path, message } => {
            let mut s = segment();
            if !path.is_empty() && !path.starts_with('[') {
                s.push('.');
            }
            s.push_str(&path);
            VariantError::Conversion { path: s, message }
        }
        other => other,
    }
}

fn key_name(key: &Variant) -> String {
    match key {
        Variant::String(s) | Variant::StringName(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

// ---- Serializer -----------------------------------------------------------

struct Serializer;

fn int_from<T: TryInto<i64> + std::fmt::Display + Copy>(v: T) -> Result<Variant, VariantError> {
    v.try_into()
        .map(Variant::Int)
        .map_err(|_| ser::Error::custom(format_args!("integer {v} does not fit a Godot int (i64)")))
}

struct SeqBuilder {
    items: Vec<Variant>,
}

struct MapBuilder {
    map: Dictionary,
    key: Option<Variant>,
}

/// A struct or tuple variant: `{ name: inner }`.
struct VariantBuilder<B> {
    name: &'static str,
    inner: B,
}

impl ser::Serializer for Serializer {
    type Ok = Variant;
    type Error = VariantError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantBuilder<MapBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Variant, VariantError> {
        Ok(Variant::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Variant, VariantError> {
        int_from(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Variant, VariantError> {
        Ok(Variant::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Variant, VariantError> {
        int_from(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Variant, VariantError> {
        int_from(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Variant, VariantError> {
        Ok(Variant::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Variant, VariantError> {
        Ok(Variant::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Variant, VariantError> {
        Ok(Variant::String(CompactString::new(
            v.encode_utf8(&mut [0; 4]),
        )))
    }
    fn serialize_str(self, v: &str) -> Result<Variant, VariantError> {
        Ok(Variant::String(CompactString::new(v)))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Variant, VariantError> {
        Ok(Variant::PackedByteArray(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Variant, VariantError> {
        Ok(Variant::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Variant, VariantError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Variant, VariantError> {
        Ok(Variant::Nil)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Variant, VariantError> {
        Ok(Variant::Nil)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Variant, VariantError> {
        Ok(Variant::String(CompactString::const_new(variant)))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Variant, VariantError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Variant, VariantError> {
        let inner = value
            .serialize(Serializer)
            .map_err(under(|| variant.to_owned()))?;
        let mut d = Dictionary::with_capacity(1);
        d.insert(variant, inner);
        Ok(Variant::Dictionary(d))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, VariantError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0).min(4096)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, VariantError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, VariantError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, VariantError> {
        Ok(VariantBuilder {
            name: variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, VariantError> {
        Ok(MapBuilder {
            map: Dictionary::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, VariantError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<MapBuilder>, VariantError> {
        Ok(VariantBuilder {
            name: variant,
            inner: self.serialize_map(Some(len))?,
        })
    }
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        let i = self.items.len();
        let v = value
            .serialize(Serializer)
            .map_err(under(|| format!("[{i}]")))?;
        self.items.push(v);
        Ok(())
    }
    fn finish(self) -> Variant {
        Variant::Array(Array::from(self.items))
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        self.push(value)
    }
    fn end(self) -> Result<Variant, VariantError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        self.push(value)
    }
    fn end(self) -> Result<Variant, VariantError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        self.push(value)
    }
    fn end(self) -> Result<Variant, VariantError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        let name = self.name;
        self.inner.push(value).map_err(under(|| name.to_owned()))
    }
    fn end(self) -> Result<Variant, VariantError> {
        let mut d = Dictionary::with_capacity(1);
        d.insert(self.name, self.inner.finish());
        Ok(Variant::Dictionary(d))
    }
}

impl MapBuilder {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), VariantError> {
        let v = value
            .serialize(Serializer)
            .map_err(under(|| key.to_owned()))?;
        self.map.insert(key, v);
        Ok(())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), VariantError> {
        self.key = Some(key.serialize(Serializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), VariantError> {
        let key = self.key.take().ok_or_else(|| {
            <VariantError as ser::Error>::custom("serialize_value before serialize_key")
        })?;
        let v = value
            .serialize(Serializer)
            .map_err(under(|| key_name(&key)))?;
        self.map.insert(key, v);
        Ok(())
    }
    fn end(self) -> Result<Variant, VariantError> {
        Ok(Variant::Dictionary(self.map))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), VariantError> {
        self.field(key, value)
    }
    fn end(self) -> Result<Variant, VariantError> {
        Ok(Variant::Dictionary(self.map))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<MapBuilder> {
    type Ok = Variant;
    type Error = VariantError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), VariantError> {
        let name = self.name;
        self.inner
            .field(key, value)
            .map_err(under(|| name.to_owned()))
    }
    fn end(self) -> Result<Variant, VariantError> {
        let mut d = Dictionary::with_capacity(1);
        d.insert(self.name, Variant::Dictionary(self.inner.map));
        Ok(Variant::Dictionary(d))
    }
}

// ---- Deserializer ---------------------------------------------------------

struct Deserializer(Variant);

/// The elements of a sequence-like value, as Variants.
fn elements(v: Variant) -> Option<Vec<Variant>> {
    fn floats(v: &[f32]) -> Vec<Variant> {
        v.iter().map(|&f| Variant::Float(f.into())).collect()
    }
    Some(match v {
        Variant::Array(a) => a.into_vec(),
        Variant::PackedByteArray(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedInt32Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedInt64Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedFloat32Array(v) => floats(&v),
        Variant::PackedFloat64Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedStringArray(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedVector2Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedVector3Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedColorArray(v) => v.into_iter().map(Variant::from).collect(),
        Variant::PackedVector4Array(v) => v.into_iter().map(Variant::from).collect(),
        Variant::Vector2(v) => floats(&[v.x, v.y]),
        Variant::Vector3(v) => floats(&[v.x, v.y, v.z]),
        Variant::Vector4(v) => floats(&[v.x, v.y, v.z, v.w]),
        Variant::Quaternion(v) => floats(&[v.x, v.y, v.z, v.w]),
        Variant::Color(v) => floats(&[v.r, v.g, v.b, v.a]),
        Variant::Rect2(r) => floats(&[r.position.x, r.position.y, r.size.x, r.size.y]),
        Variant::Vector2i(v) => vec![v.x.into(), v.y.into()],
        Variant::Vector3i(v) => vec![v.x.into(), v.y.into(), v.z.into()],
        Variant::Vector4i(v) => vec![v.x.into(), v.y.into(), v.z.into(), v.w.into()],
        _ => return None,
    })
}

struct Seq {
    items: std::vec::IntoIter<Variant>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = VariantError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, VariantError> {
        let Some(v) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(Deserializer(v))
            .map(Some)
            .map_err(under(|| format!("[{i}]")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    entries: std::vec::IntoIter<(Variant, Variant)>,
    value: Option<(String, Variant)>,
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = VariantError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, VariantError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        let name = key_name(&k);
        let key = seed
            .deserialize(Deserializer(k))
            .map_err(under(|| name.clone()))?;
        self.value = Some((name, v));
        Ok(Some(key))
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, VariantError> {
        let (name, v) = self
            .value
            .take()
            .ok_or_else(|| <VariantError as de::Error>::custom("value before key"))?;
        seed.deserialize(Deserializer(v)).map_err(under(|| name))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Enum {
    name: Variant,
    value: Option<Variant>,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = VariantError;
    type Variant = VariantValue;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantValue), VariantError> {
        let name = key_name(&self.name);
        let tag = seed.deserialize(Deserializer(self.name))?;
        Ok((
            tag,
            VariantValue {
                name,
                value: self.value,
            },
        ))
    }
}

struct VariantValue {
    name: String,
    value: Option<Variant>,
}

impl<'de> de::VariantAccess<'de> for VariantValue {
    type Error = VariantError;
    fn unit_variant(self) -> Result<(), VariantError> {
        match self.value {
            None | Some(Variant::Nil) => Ok(()),
            Some(v) => Err(de::Error::invalid_type(unexpected(&v), &"a unit variant")),
        }
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, VariantError> {
        let name = self.name;
        seed.deserialize(Deserializer(self.value.unwrap_or_default()))
            .map_err(under(|| name))
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        let name = self.name;
        de::Deserializer::deserialize_seq(Deserializer(self.value.unwrap_or_default()), visitor)
            .map_err(under(|| name))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        let name = self.name;
        de::Deserializer::deserialize_map(Deserializer(self.value.unwrap_or_default()), visitor)
            .map_err(under(|| name))
    }
}

fn unexpected(v: &Variant) -> de::Unexpected<'_> {
    match v {
        Variant::Nil => de::Unexpected::Unit,
        Variant::Bool(b) => de::Unexpected::Bool(*b),
        Variant::Int(i) => de::Unexpected::Signed(*i),
        Variant::Float(f) => de::Unexpected::Float(*f),
        Variant::String(s) | Variant::StringName(s) => de::Unexpected::Str(s),
        Variant::PackedByteArray(b) => de::Unexpected::Bytes(b),
        Variant::Array(_) => de::Unexpected::Seq,
        Variant::Dictionary(_) => de::Unexpected::Map,
        other => de::Unexpected::Other(other.type_name()),
    }
}

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = VariantError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, VariantError> {
        match self.0 {
            Variant::Nil => visitor.visit_unit(),
            Variant::Bool(b) => visitor.visit_bool(b),
            Variant::Int(i) => visitor.visit_i64(i),
            Variant::Float(f) => visitor.visit_f64(f),
            // A heap string hands its buffer over; an inline one (a field
            // name, a short value) is lent, so identifiers cost nothing.
            Variant::String(s) | Variant::StringName(s) if s.is_heap_allocated() => {
                visitor.visit_string(s.into_string())
            }
            Variant::String(s) | Variant::StringName(s) => visitor.visit_str(&s),
            Variant::PackedByteArray(b) => visitor.visit_byte_buf(b),
            Variant::Dictionary(d) => visitor.visit_map(Map {
                entries: d.into_entries().into_iter(),
                value: None,
            }),
            Variant::NodePath(p) => visitor.visit_string(p.to_string()),
            Variant::Rid(id) | Variant::Object(id) => visitor.visit_u64(id),
            other => {
                let name = other.type_name();
                match elements(other) {
                    Some(items) => visitor.visit_seq(Seq {
                        items: items.into_iter(),
                        index: 0,
                    }),
                    None => Err(de::Error::invalid_type(
                        de::Unexpected::Other(name),
                        &visitor,
                    )),
                }
            }
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, VariantError> {
        match self.0 {
            Variant::PackedByteArray(b) => visitor.visit_seq(Seq {
                items: b
                    .into_iter()
                    .map(Variant::from)
                    .collect::<Vec<_>>()
                    .into_iter(),
                index: 0,
            }),
            other => Deserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, VariantError> {
        match self.0 {
            Variant::Nil => visitor.visit_none(),
            other => visitor.visit_some(Deserializer(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, VariantError> {
        match self.0 {
            Variant::Dictionary(d) if d.len() == 1 => {
                let mut entries = d.into_entries();
                let (name, value) = entries.pop().unwrap_or_default();
                visitor.visit_enum(Enum {
                    name,
                    value: Some(value),
                })
            }
            s @ (Variant::String(_) | Variant::StringName(_) | Variant::Int(_)) => visitor
                .visit_enum(Enum {
                    name: s,
                    value: None,
                }),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"an enum: a name or { name: value }",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{varray, vdict};
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Kind {
        Idle,
        Walk(f32),
        Jump { height: f32 },
        Pair(i32, i32),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Player {
        id: u64,
        name: String,
        pos: (f32, f32),
        hp: Option<f64>,
        inventory: Vec<i32>,
        #[serde(with = "bytes_as_packed")]
        blob: Vec<u8>,
        kind: Kind,
        tags: BTreeMap<String, bool>,
    }

    mod bytes_as_packed {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            <Vec<u8> as serde::Deserialize>::deserialize(d)
        }
    }

    fn player() -> Player {
        Player {
            id: 7,
            name: "ada".into(),
            pos: (1.5, -2.0),
            hp: None,
            inventory: vec![1, 2],
            blob: vec![9, 8],
            kind: Kind::Jump { height: 2.0 },
            tags: [("vip".to_owned(), true)].into_iter().collect(),
        }
    }

    #[test]
    fn structs_round_trip_through_dictionaries() {
        let v = to_variant(&player()).expect("to_variant");
        assert_eq!(
            v,
            vdict! {
                "id" => 7, "name" => "ada", "pos" => varray![1.5, -2.0], "hp" => Variant::Nil,
                "inventory" => varray![1, 2], "blob" => vec![9u8, 8],
                "kind" => vdict! { "Jump" => vdict! { "height" => 2.0 } },
                "tags" => vdict! { "vip" => true },
            }
        );
        // Field order is declaration order.
        let keys: Vec<_> = v
            .as_dictionary()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys[..3], ["id", "name", "pos"]);
        assert_eq!(from_variant::<Player>(v).expect("from_variant"), player());
        for k in [Kind::Idle, Kind::Walk(1.0), Kind::Pair(1, 2)] {
            let v = to_variant(&k).unwrap();
            assert_eq!(from_variant::<Kind>(v).unwrap(), k);
        }
    }

    #[test]
    fn godot_values_read_as_rust_types() {
        // A Vector2 as a tuple, a PackedInt32Array as a Vec, a PackedByteArray as bytes.
        let mut v = to_variant(&player()).unwrap();
        let d = v.as_dictionary_mut().unwrap();
        d.insert("pos", crate::variant::Vector2::new(3.0, 4.0));
        d.insert("inventory", vec![5i32, 6]);
        d.insert("hp", 1);
        let p: Player = from_variant(v).unwrap();
        assert_eq!(
            (p.pos, p.inventory, p.hp),
            ((3.0, 4.0), vec![5, 6], Some(1.0))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = to_variant(&vec![player(), player()]).unwrap();
        v.as_array_mut().unwrap()[1]
            .as_dictionary_mut()
            .unwrap()
            .get_mut(&"kind".into())
            .unwrap()
            .as_dictionary_mut()
            .unwrap()
            .insert("Jump", vdict! { "height" => "high" });
        let e = from_variant::<Vec<Player>>(v).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("at `[1].kind.Jump.height`: invalid type"),
            "{e}"
        );

        let mut v = to_variant(&player()).unwrap();
        v.as_dictionary_mut().unwrap().remove(&"name".into());
        let e = from_variant::<Player>(v).unwrap_err();
        assert_eq!(e.to_string(), "missing field `name`");

        #[derive(Serialize)]
        struct Big {
            n: u64,
        }
        let e = to_variant(&[Big { n: u64::MAX }]).unwrap_err();
        assert!(e.to_string().starts_with("at `[0].n`: integer"), "{e}");
    }
}
