//! A route's section over the defaults', for raw sections whose fields are all `Option`s.

/// Implements `pub fn over(&self, base: &Self) -> Self` for a raw section: every field this
/// section sets wins, the others come from `base`. Lists every field, so a field added to the
/// struct and not here does not compile.
///
/// ```ignore
/// impl_over!(RawCors { allow_origins, allow_methods, ... });
/// ```
macro_rules! impl_over {
    ($raw:ty { $($field:ident),* $(,)? }) => {
        impl $raw {
            /// A route's section over the defaults': every field the route sets wins.
            pub fn over(&self, base: &Self) -> Self {
                Self { $($field: self.$field.clone().or_else(|| base.$field.clone())),* }
            }
        }
    };
}
pub(crate) use impl_over;
