//! The policy sections (`defaults` and each route's), merged and compiled into the
//! [`PolicySet`] a request gets.
//!
//! Every policy is registered here, in two places: its line in `for_each_policy!` (its config
//! field, in the order fields are listed) and its [`Policy`] impl (how its section merges and
//! compiles). Everything else made per policy comes from the list: the fields of `defaults`
//! ([`RawPolicies`]) and of each route (`config::RawRoute`), their borrowed view
//! ([`RawSections`]), the compiled [`PolicySet`] and its predicates.

use serde::Deserialize;

use crate::policy::cors::{self, Cors, RawCors};
use crate::policy::errors::{self, Errors, RawErrors};
use crate::policy::https_redirect::{self, HttpsRedirect, RawHttpsRedirect};
use crate::policy::rate_limit::{self, RateLimits, RawLimits};
use crate::policy::security_headers::{self, RawSecurityHeaders, SecurityHeaders};
use crate::policy::validate::{self, RawValidate, Validation};
use crate::syntax::{ConfigError, Section};

/// What the set needs of a policy to build it from the config.
pub trait Policy: Sized {
    /// The section's options as written; `true` is `Default`.
    type Raw: Clone + Default;

    /// Whether the policy is on when `defaults` does not mention it.
    const ON_BY_DEFAULT: bool = false;
    /// Whether deciding about a request reads its headers (beyond the route).
    const READS_REQUEST_HEADERS: bool;
    /// Whether the policy edits response headers.
    const EDITS_RESPONSE_HEADERS: bool;

    /// A route's options over the defaults' (the defaults' are `Default` when off).
    fn over(route: &Self::Raw, defaults: &Self::Raw) -> Self::Raw;

    /// Refuses options that only `defaults` may set; runs before any section compiles.
    fn check_route(_route: &Self::Raw) -> Result<(), ConfigError> {
        Ok(())
    }

    /// `route_params`: the route template's `{name}` parameters; `None` for the defaults.
    fn compile(raw: &Self::Raw, route_params: Option<&[&str]>) -> Result<Self, ConfigError>;
}

/// The policies, each as its config field and its compiled type (a [`Policy`]), in the order
/// the config lists them (unknown-field messages name them in this order, and sections compile
/// in it). Hands the list to `$then!`, after the tokens given in braces.
macro_rules! for_each_policy {
    ($then:path { $($input:tt)* }) => {
        $then! { { $($input)* }
            security_headers: $crate::policy::security_headers::SecurityHeaders,
            cors: $crate::policy::cors::Cors,
            rate_limit: $crate::policy::rate_limit::RateLimits,
            validate: $crate::policy::validate::Validation,
            https_redirect: $crate::policy::https_redirect::HttpsRedirect,
            errors: $crate::policy::errors::Errors,
        }
    };
}
pub(crate) use for_each_policy;

/// Declares a config struct with its own fields (each ending with a comma) followed by one
/// section per policy (`false`, `true` or options; absent: as the defaults say), and its
/// `sections()`. serde's `flatten` would share these fields, but not with
/// `deny_unknown_fields`, which names a mistyped field.
macro_rules! with_policy_sections {
    ({ $(#[$attr:meta])* $vis:vis struct $name:ident { $($own:tt)* } }
     $($field:ident: $policy:ty,)*) => {
        $(#[$attr])*
        $vis struct $name {
            $($own)*
            $(
                #[serde(default)]
                pub $field: Option<
                    $crate::syntax::Section<<$policy as $crate::policy::set::Policy>::Raw>,
                >,
            )*
        }

        impl $name {
            /// The policy sections, borrowed.
            pub fn sections(&self) -> $crate::policy::set::RawSections<'_> {
                $crate::policy::set::RawSections { $($field: self.$field.as_ref(),)* }
            }
        }
    };
    ($($declaration:tt)*) => {
        $crate::policy::set::for_each_policy!(
            $crate::policy::set::with_policy_sections { $($declaration)* }
        );
    };
}
pub(crate) use with_policy_sections;

/// The borrowed sections, the compiled set and how one becomes the other.
macro_rules! policy_set {
    ({} $($field:ident: $policy:ty,)*) => {
        /// The policy sections of `defaults` or of a route, borrowed; `None`: not given.
        #[derive(Debug, Clone, Copy, Default)]
        pub struct RawSections<'a> {
            $(pub $field: Option<&'a Section<<$policy as Policy>::Raw>>,)*
        }

        impl RawSections<'_> {
            /// Whether no section is given (a route that overrides nothing).
            pub fn is_empty(&self) -> bool {
                true $(&& self.$field.is_none())*
            }
        }

        /// The compiled policies that apply to a request; `None`: off.
        #[derive(Debug, Default)]
        pub struct PolicySet {
            $(pub $field: Option<$policy>,)*
        }

        impl PolicySet {
            /// Whether the response headers need to be read and rewritten at all.
            pub fn edits_response_headers(&self) -> bool {
                false $(|| (<$policy as Policy>::EDITS_RESPONSE_HEADERS && self.$field.is_some()))*
            }

            /// Whether deciding needs the request's headers (beyond the route).
            pub fn reads_request_headers(&self) -> bool {
                false $(|| (<$policy as Policy>::READS_REQUEST_HEADERS && self.$field.is_some()))*
            }

            /// Each section of `route` over the same of `defaults`, checked, then compiled.
            fn compile(
                defaults: &RawSections<'_>,
                route: &RawSections<'_>,
                route_params: Option<&[&str]>,
            ) -> Result<Self, ConfigError> {
                $(
                    if let Some(Section::On(raw)) = route.$field {
                        <$policy as Policy>::check_route(raw)
                            .map_err(|e| e.within(stringify!($field)))?;
                    }
                )*
                Ok(Self {
                    $($field: compile_one::<$policy>(
                        stringify!($field),
                        defaults.$field,
                        route.$field,
                        route_params,
                    )?,)*
                })
            }
        }
    };
}

for_each_policy!(policy_set {});

with_policy_sections! {
    /// The `defaults` section: applies to every request, and is what routes override.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(deny_unknown_fields)]
    pub struct RawPolicies {}
}

/// Absent from `defaults`: on, with helmet's headers. A route's section overrides the
/// defaults' field by field.
impl Policy for SecurityHeaders {
    type Raw = RawSecurityHeaders;
    const ON_BY_DEFAULT: bool = true;
    const READS_REQUEST_HEADERS: bool = false;
    const EDITS_RESPONSE_HEADERS: bool = true;

    fn over(route: &RawSecurityHeaders, defaults: &RawSecurityHeaders) -> RawSecurityHeaders {
        route.over(defaults)
    }

    fn compile(raw: &RawSecurityHeaders, _: Option<&[&str]>) -> Result<Self, ConfigError> {
        security_headers::compile(raw)
    }
}

/// Absent: off (no CORS headers; browsers keep cross-origin responses from pages). A route's
/// section overrides the defaults' field by field.
impl Policy for Cors {
    type Raw = RawCors;
    const READS_REQUEST_HEADERS: bool = true;
    const EDITS_RESPONSE_HEADERS: bool = true;

    fn over(route: &RawCors, defaults: &RawCors) -> RawCors {
        route.over(defaults)
    }

    fn compile(raw: &RawCors, _: Option<&[&str]>) -> Result<Self, ConfigError> {
        cors::compile(raw)
    }
}

/// Absent: off. One limit or a list.
impl Policy for RateLimits {
    type Raw = RawLimits;
    const READS_REQUEST_HEADERS: bool = true;
    const EDITS_RESPONSE_HEADERS: bool = true;

    /// A route's limits replace the defaults'. Restate a limit under the same name and
    /// settings to count both against one table.
    fn over(route: &RawLimits, _: &RawLimits) -> RawLimits {
        route.clone()
    }

    fn compile(raw: &RawLimits, _: Option<&[&str]>) -> Result<Self, ConfigError> {
        rate_limit::compile(raw)
    }
}

/// Absent: off. In `defaults`: size and content-type limits for every request, and what to
/// do with requests no route describes; a route's section overrides them field by field and
/// adds its schemas.
impl Policy for Validation {
    type Raw = RawValidate;
    const READS_REQUEST_HEADERS: bool = true;
    const EDITS_RESPONSE_HEADERS: bool = false;

    fn over(route: &RawValidate, defaults: &RawValidate) -> RawValidate {
        route.over(defaults)
    }

    fn check_route(route: &RawValidate) -> Result<(), ConfigError> {
        match route.unknown_routes {
            Some(_) => Err(ConfigError::new(
                "unknown_routes",
                "only in defaults.validate (it is about requests no route matches)",
            )),
            None => Ok(()),
        }
    }

    fn compile(raw: &RawValidate, route_params: Option<&[&str]>) -> Result<Self, ConfigError> {
        validate::compile(raw, route_params)
    }
}

/// Absent: off. A route's section overrides the defaults' field by field; `false` exempts it.
impl Policy for HttpsRedirect {
    type Raw = RawHttpsRedirect;
    const READS_REQUEST_HEADERS: bool = true;
    const EDITS_RESPONSE_HEADERS: bool = false;

    fn over(route: &RawHttpsRedirect, defaults: &RawHttpsRedirect) -> RawHttpsRedirect {
        route.over(defaults)
    }

    fn compile(raw: &RawHttpsRedirect, _: Option<&[&str]>) -> Result<Self, ConfigError> {
        https_redirect::compile(raw)
    }
}

/// Absent: off. A route's section overrides the defaults' field by field; `false` lets the
/// route's upstream errors through untouched.
impl Policy for Errors {
    type Raw = RawErrors;
    const READS_REQUEST_HEADERS: bool = true;
    const EDITS_RESPONSE_HEADERS: bool = true;

    fn over(route: &RawErrors, defaults: &RawErrors) -> RawErrors {
        route.over(defaults)
    }

    fn compile(raw: &RawErrors, _: Option<&[&str]>) -> Result<Self, ConfigError> {
        errors::compile(raw)
    }
}

/// One policy as a route resolves it: the route's section over the defaults' options, or the
/// defaults' alone; `None` when it is off. Errors are placed under `field`.
fn compile_one<P: Policy>(
    field: &str,
    defaults: Option<&Section<P::Raw>>,
    route: Option<&Section<P::Raw>>,
    route_params: Option<&[&str]>,
) -> Result<Option<P>, ConfigError> {
    let base = match defaults {
        None if P::ON_BY_DEFAULT => Some(P::Raw::default()),
        Some(Section::On(raw)) => Some(raw.clone()),
        None | Some(Section::Off) => None,
    };
    let raw = match route {
        None => base,
        Some(Section::Off) => None,
        Some(Section::On(raw)) => Some(P::over(raw, &base.unwrap_or_default())),
    };
    raw.map(|raw| P::compile(&raw, route_params))
        .transpose()
        .map_err(|e| e.within(field))
}

/// The policies of requests no route matches (and of routes that override nothing): a route
/// that sets no section.
pub fn compile_defaults(defaults: &RawPolicies) -> Result<PolicySet, ConfigError> {
    PolicySet::compile(&defaults.sections(), &RawSections::default(), None)
}

/// A route's policies, or `None` when it sets no section (it shares the defaults' set). Each
/// section it sets overrides the defaults' (see each [`Policy`]); `false` turns the policy off
/// for the route. `params`: the route template's `{name}` parameters.
pub fn compile_route(
    defaults: &RawPolicies,
    route: &RawSections<'_>,
    params: &[&str],
) -> Result<Option<PolicySet>, ConfigError> {
    if route.is_empty() {
        return Ok(None);
    }
    PolicySet::compile(&defaults.sections(), route, Some(params)).map(Some)
}

#[cfg(test)]
mod tests;
