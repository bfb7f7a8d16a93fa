//! OpenAPI documents as the filter's routes and validation (issue 19, being built): so far the
//! translation of OpenAPI 3.0 schemas to JSON Schema 2020-12 ([`schema30`]). Nothing in the
//! config reads an `openapi` section yet.

pub mod schema30;
