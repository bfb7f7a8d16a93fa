//! A policy section that may be turned off: `false` (off), `true` (on with its defaults) or an
//! object of options. Hand-written so that errors inside the object keep their field path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub enum Section<T> {
    Off,
    On(T),
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SectionVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for SectionVisitor<T> {
            type Value = Section<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("false, true or options")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
                Ok(if on {
                    Section::On(T::default())
                } else {
                    Section::Off
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Section::On)
            }

            // Sections whose options are a list (several rate limits).
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Section::On)
            }
        }

        deserializer.deserialize_any(SectionVisitor(PhantomData))
    }
}

impl<T> Section<T> {
    pub fn as_ref(&self) -> Section<&T> {
        match self {
            Self::Off => Section::Off,
            Self::On(t) => Section::On(t),
        }
    }
}

/// `false`, `true`, or the options' own schema.
#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Section<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Section_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [{"type": "boolean"}, generator.subschema_for::<T>()]
        })
    }
}
