//! Building blocks every other module uses, importing nothing of this crate: config errors
//! with field paths, `false`/`true`/options sections, ordered maps, durations, HTTP methods,
//! paths and safe excerpts of text.

mod duration;
pub mod error;
mod method;
mod ordered_map;
mod section;
mod text;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use method::parse_method;
pub use ordered_map::{OneOrMany, OrderedMap};
pub use section::Section;
pub use text::{excerpt, label, path_only};
