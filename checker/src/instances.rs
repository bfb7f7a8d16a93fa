//! Where the filter's configurations are in a file: the file itself may be one, or an Envoy
//! config or a part of one (every listener's and route's Wasm or dynamic-module filter that loads hardening,
//! wherever it sits), or Kubernetes manifests (Istio's `WasmPlugin`, Envoy Gateway's
//! `EnvoyExtensionPolicy`).

use serde_json::Value;

use crate::yaml::join;

/// The name the filter goes by: its `root_id`, module file, dynamic module and plugin names.
pub const FILTER: &str = "hardening";

const WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const DYNAMIC_MODULE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";
const DYNAMIC_MODULE_PER_ROUTE: &str = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
const STRUCT: &str = "type.googleapis.com/google.protobuf.Struct";

/// Top-level fields of Envoy's bootstrap (and of xDS resource files).
const ENVOY_FIELDS: &[&str] = &[
    "static_resources",
    "dynamic_resources",
    "admin",
    "node",
    "layered_runtime",
    "overload_manager",
    "cluster_manager",
    "stats_sinks",
    "resources",
];

/// One configuration of the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Where it is in the document (`""`: the document is the configuration).
    pub path: String,
    pub config: Config,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Config {
    /// A YAML or JSON object (a `google.protobuf.Struct`, a manifest's field), at `path`.
    Object(Value),
    /// JSON text (a `google.protobuf.StringValue`); the text is at `path`.
    Text(String),
    /// Something the filter cannot be given, and why.
    Unusable(String),
}

/// What a document holds.
#[derive(Debug, PartialEq)]
pub enum Found {
    /// The document is a filter configuration.
    FilterConfig,
    /// An Envoy config or a manifest, with the filter's configurations in it (maybe none).
    Instances(Vec<Instance>),
}

pub fn find(document: &Value) -> Found {
    let Some(object) = document.as_object() else {
        // A list of HTTP filters, as docs show them.
        let mut found = Vec::new();
        walk(document, "", &mut found);
        return match found.is_empty() {
            true => Found::FilterConfig,
            false => Found::Instances(found),
        };
    };
    if object.contains_key("apiVersion") && object.contains_key("kind") {
        return Found::Instances(in_manifest(document));
    }
    // A fragment of the Wasm filter's config, as docs show them.
    if let Some(any) = object
        .get("configuration")
        .filter(|c| c.get("@type").is_some())
    {
        return Found::Instances(vec![any_at(Some(any), "configuration")]);
    }
    let mut found = Vec::new();
    walk(document, "", &mut found);
    if found.is_empty() && !ENVOY_FIELDS.iter().any(|field| object.contains_key(*field)) {
        return Found::FilterConfig;
    }
    Found::Instances(found)
}

/// Istio's `WasmPlugin` (`spec.pluginConfig`) and Envoy Gateway's `EnvoyExtensionPolicy`
/// (`spec.wasm[].config`) when they load the filter; other kinds hold none.
fn in_manifest(manifest: &Value) -> Vec<Instance> {
    let spec = &manifest["spec"];
    match manifest["kind"].as_str() {
        Some("WasmPlugin") if names_filter(&spec["pluginName"]) || names_filter(&spec["url"]) => {
            vec![object_at(spec.get("pluginConfig"), "spec.pluginConfig")]
        }
        Some("EnvoyExtensionPolicy") => spec["wasm"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, wasm)| names_filter(&wasm["name"]) || names_filter(&wasm["rootID"]))
            .map(|(i, wasm)| object_at(wasm.get("config"), &format!("spec.wasm[{i}].config")))
            .collect(),
        // A list of manifests, each checked as one.
        Some("List") => manifest["items"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, item)| {
                in_manifest(item).into_iter().map(move |instance| Instance {
                    path: format!("items[{i}].{}", instance.path),
                    ..instance
                })
            })
            .collect(),
        // Any other kind (an Istio EnvoyFilter, whose patches hold Envoy filters): the
        // filter wherever its `@type` is.
        _ => {
            let mut found = Vec::new();
            walk(manifest, "", &mut found);
            found
        }
    }
}

fn object_at(config: Option<&Value>, path: &str) -> Instance {
    let config = match config {
        None | Some(Value::Null) => Config::Object(Value::Object(Default::default())),
        Some(object @ Value::Object(_)) => Config::Object(object.clone()),
        Some(_) => Config::Unusable("the configuration must be an object".into()),
    };
    Instance {
        path: path.to_string(),
        config,
    }
}

/// Every filter of the hardening module under `value`: HTTP filters, per-route and
/// extension configs alike, found by their `@type`.
fn walk(value: &Value, path: &str, found: &mut Vec<Instance>) {
    match value {
        Value::Object(object) => {
            if let Some(instance) = filter_at(value, path) {
                found.push(instance);
                return;
            }
            for (key, child) in object {
                walk(child, &join(path, key), found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

fn filter_at(value: &Value, path: &str) -> Option<Instance> {
    match value["@type"].as_str()? {
        WASM if loads_filter(&value["config"]) => Some(any_at(
            value["config"].get("configuration"),
            &join(path, "config.configuration"),
        )),
        DYNAMIC_MODULE if mentions_filter(&value["dynamic_module_config"]) => Some(any_at(
            value.get("filter_config"),
            &join(path, "filter_config"),
        )),
        DYNAMIC_MODULE_PER_ROUTE if mentions_filter(&value["dynamic_module_config"]) => {
            Some(Instance {
                path: path.to_string(),
                config: Config::Unusable(
                    "the filter reads no per-route config: give the route its policies in the \
                     filter's own `routes`"
                        .into(),
                ),
            })
        }
        _ => None,
    }
}

/// A Wasm `PluginConfig` that loads this filter: by its root id, name or module.
fn loads_filter(plugin: &Value) -> bool {
    names_filter(&plugin["root_id"])
        || names_filter(&plugin["name"])
        || mentions_filter(&plugin["vm_config"]["code"])
}

fn names_filter(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.contains(FILTER))
}

fn mentions_filter(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(FILTER),
        Value::Object(object) => object.values().any(mentions_filter),
        Value::Array(items) => items.iter().any(mentions_filter),
        _ => false,
    }
}

/// A `google.protobuf.Any` holding the configuration: a `Struct` or a `StringValue` of JSON;
/// none is `{}`.
fn any_at(any: Option<&Value>, path: &str) -> Instance {
    let at = |config| Instance {
        path: join(path, "value"),
        config,
    };
    let Some(any) = any else {
        return object_at(None, path);
    };
    match (any["@type"].as_str(), any.get("value")) {
        (Some(STRUCT), value) => Instance {
            path: join(path, "value"),
            ..object_at(value, "")
        },
        (Some(STRING_VALUE), Some(Value::String(text))) => at(Config::Text(text.clone())),
        (Some(STRING_VALUE), None) => at(Config::Text(String::new())),
        (Some(other), _) => at(Config::Unusable(format!(
            "`{other}`: the configuration is a google.protobuf.Struct or a StringValue of JSON"
        ))),
        (None, _) => at(Config::Unusable(
            "the configuration needs an `@type` (google.protobuf.Struct or StringValue)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wasm(configuration: Value) -> Value {
        json!({"@type": WASM, "config": {"root_id": "hardening", "configuration": configuration}})
    }

    #[test]
    fn envoy_filters_and_kinds_of_configuration() {
        let envoy = json!({"static_resources": {"listeners": [{"hcm": {"http_filters": [
            {"name": "other", "typed_config": {"@type": WASM, "config": {"root_id": "x"}}},
            {"name": "a", "typed_config": wasm(json!({"@type": STRUCT, "value": {"routes": []}}))},
            {"name": "b", "typed_config": wasm(json!({"@type": STRING_VALUE, "value": "{}"}))},
            {"name": "c", "typed_config": {"@type": WASM, "config": {"vm_config": {"code": {"local": {"filename": "dist/hardening.wasm"}}}}}},
            {"name": "d", "typed_config": {"@type": DYNAMIC_MODULE, "dynamic_module_config": {"name": "hardening"}, "filter_config": {"@type": "type.googleapis.com/google.protobuf.BytesValue"}}},
        ]}}]}});
        let Found::Instances(found) = find(&envoy) else {
            panic!("an Envoy config");
        };
        let base = "static_resources.listeners[0].hcm.http_filters";
        assert_eq!(
            found,
            vec![
                Instance {
                    path: format!("{base}[1].typed_config.config.configuration.value"),
                    config: Config::Object(json!({"routes": []}))
                },
                Instance {
                    path: format!("{base}[2].typed_config.config.configuration.value"),
                    config: Config::Text("{}".into())
                },
                Instance {
                    path: format!("{base}[3].typed_config.config.configuration"),
                    config: Config::Object(json!({}))
                },
                Instance {
                    path: format!("{base}[4].typed_config.filter_config.value"),
                    config: Config::Unusable("`type.googleapis.com/google.protobuf.BytesValue`: the configuration is a google.protobuf.Struct or a StringValue of JSON".into())
                },
            ]
        );
    }

    #[test]
    fn manifests_and_plain_configs() {
        let plugin = json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "spec": {"url": "oci://r.example.com/hardening:0.1.0", "pluginConfig": {"routes": []}}});
        assert_eq!(
            find(&plugin),
            Found::Instances(vec![Instance {
                path: "spec.pluginConfig".into(),
                config: Config::Object(json!({"routes": []}))
            }])
        );
        let policy = json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyExtensionPolicy",
            "spec": {"wasm": [{"name": "other"}, {"name": "hardening"}]}});
        assert_eq!(
            find(&policy),
            Found::Instances(vec![Instance {
                path: "spec.wasm[1].config".into(),
                config: Config::Object(json!({}))
            }])
        );
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap"},
            {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter", "spec": {"configPatches": [
                {"patch": {"value": {"typed_config": {"@type": DYNAMIC_MODULE,
                    "dynamic_module_config": {"module": {"local": {"filename": "/m/libhardening.so"}}},
                    "filter_config": {"@type": STRUCT, "value": {"routes": []}}}}}}
            ]}}
        ]});
        assert_eq!(
            find(&list),
            Found::Instances(vec![Instance {
                path: "items[1].spec.configPatches[0].patch.value.typed_config.filter_config.value"
                    .into(),
                config: Config::Object(json!({"routes": []}))
            }])
        );
        assert_eq!(find(&json!({"routes": []})), Found::FilterConfig);
        assert_eq!(find(&json!({"kind": "x"})), Found::FilterConfig);
    }
}
