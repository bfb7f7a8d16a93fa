//! Building blocks every other module uses, importing nothing of this crate: config errors
//! with field paths, `false`/`true`/options sections and a route's over the defaults'
//! (`impl_over!`), ordered maps, durations, HTTP methods and header names, paths and safe
//! excerpts of text.

mod duration;
pub mod error;
mod header;
mod method;
mod ordered_map;
mod over;
mod section;
mod text;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use header::{check_header_name, is_header_name};
pub use method::{parse_method, parse_methods};
pub use ordered_map::{OneOrMany, OrderedMap};
pub(crate) use over::impl_over;
pub use section::Section;
pub use text::{excerpt, label, path_only};
