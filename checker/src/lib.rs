//! Offline checks of the hardening filter's configuration, with the filter's own code: the
//! config's JSON Schema (`schema`), YAML read with the line of every field (`yaml`), the
//! filter's instances found in an Envoy config or Kubernetes manifests (`instances`), and the
//! check itself (`check`): each instance compiled exactly as the filter compiles it when Envoy
//! hands it over, each error with its field path and line.

pub mod check;
pub mod docs;
pub mod instances;
pub mod schema;
pub mod yaml;
