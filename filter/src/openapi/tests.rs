//! Documents compiled into routes and checked against requests, through the same config
//! and validation code a filter runs: the OAI petstores (3.0 and our 3.1 port) and the
//! orders API the end-to-end test uses, in both dialects.

use serde_json::{Value, json};

use crate::config::Config;
use crate::policy::validate::{self, BodyPlan, UnknownRoutes};
use crate::request::{Headers, RequestHead};
use crate::syntax::path_only;

#[cfg(not(target_family = "wasm"))]
mod documents;

fn load(config: &Value) -> Result<Config, String> {
    Config::from_bytes(config.to_string().as_bytes()).map_err(|e| e.to_string())
}

/// What the filter does with a request: the status of its refusal with the pointers of
/// its errors, or 0 when it passes (after its body, if any).
fn verdict(
    config: &Config,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<String>) {
    let mut pairs: Vec<(&[u8], &[u8])> =
        vec![(b":method", method.as_bytes()), (b":path", path.as_bytes())];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let headers = Headers::new(pairs);
    let head = RequestHead::from_headers(&headers);
    let refused = |refusal: validate::Refusal| {
        let problem: Value = serde_json::from_slice(&refusal.response.body).unwrap_or_default();
        let pointers = problem["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|e| e["pointer"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (refusal.response.status, pointers)
    };
    let Some(route) = config.routes.find(method, path) else {
        if config.unknown_routes == UnknownRoutes::Allow {
            return (0, Vec::new());
        }
        return refused(validate::unknown_route(
            config.routes.methods_for_path(path),
            &head,
        ));
    };
    let Some(validation) = route.policies.validate.as_ref() else {
        return (0, Vec::new());
    };
    let params = route.params(path_only(path));
    match validation.on_request(&head, params.as_deref(), body.is_none()) {
        Err(refusal) => refused(refusal),
        Ok(BodyPlan::Buffer { required, .. }) => {
            match validation.on_body(body.unwrap_or("").as_bytes(), required, None) {
                Ok(()) => (0, Vec::new()),
                Err(refusal) => refused(refusal),
            }
        }
        Ok(_) => (0, Vec::new()),
    }
}

fn passes(v: (u16, Vec<String>)) -> bool {
    v == (0, Vec::new())
}

#[test]
fn a_document_in_json_text_loads_like_one_in_an_object() {
    let document = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/things/{id}": {"get": {"operationId": "getThing", "parameters": [
            {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}
        ]}}
    }});
    for given in [document.clone(), Value::String(document.to_string())] {
        let config = load(&json!({"openapi": {"document": given}})).expect("loads");
        assert!(passes(verdict(&config, "GET", "/things/7", &[], None)));
        assert_eq!(
            verdict(&config, "GET", "/things/x", &[], None),
            (400, vec!["/path/id".into()])
        );
        assert_eq!(verdict(&config, "GET", "/other", &[], None).0, 404);
        assert_eq!(verdict(&config, "POST", "/things/7", &[], None).0, 405);
    }
}

#[test]
fn bad_documents_are_refused_with_their_place() {
    let error = |document: Value| {
        load(&json!({"openapi": {"document": document}}))
            .err()
            .unwrap_or_default()
    };
    assert_eq!(
        error(json!({"swagger": "2.0"})),
        "invalid configuration at `openapi.document.swagger`: Swagger 2.0 is not read: convert the document to OpenAPI 3 (e.g. with swagger2openapi)"
    );
    assert_eq!(
        error(json!("openapi: 3.0.0")),
        "invalid configuration at `openapi.document`: as text it must be JSON (expected value at line 1 column 1); give YAML as an object in the config"
    );
    let with = |operation: Value| json!({"openapi": "3.0.3", "paths": {"/users/{id}": {"get": operation}}});
    assert_eq!(
        error(with(
            json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}},
                                         {"name": "q", "in": "query", "schema": {"type": ["string", "null"]}}]})
        )),
        "invalid configuration at `openapi.document.paths./users/{id}.get.parameters[1].schema.type`: in OpenAPI 3.0 `type` is one type name, not a list (write `nullable`, or use 3.1)"
    );
    assert_eq!(
        error(with(json!({}))),
        "invalid configuration at `openapi.document.paths./users/{id}.get.parameters`: the path's `{id}` has no `in: path` parameter"
    );
    assert_eq!(
        error(with(json!({"parameters": [{"$ref": "other.yaml#/Id"}]}))),
        "invalid configuration at `openapi.document.paths./users/{id}.get.parameters[0].$ref`: `other.yaml#/Id` points outside the document: external references are not followed; bundle the document first"
    );
    assert_eq!(
        error(with(
            json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                          "requestBody": {"content": {"application/json": {"schema": {"type": "string", "pattern": "("}}}}})
        )),
        "invalid configuration at `openapi.document.paths./users/{id}.get.validate.body`: the schema does not compile: \"(\" is not a \"regex\" (at /pattern)"
    );
}

#[test]
fn config_routes_add_policies_to_operations_by_id_or_path() {
    let document = json!({"openapi": "3.1.0", "paths": {
        "/pets": {"post": {"operationId": "createPet", "requestBody": {"required": true,
            "content": {"application/json": {"schema": {"type": "object", "required": ["name"]}}}}}},
        "/pets/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                       "get": {}, "delete": {}}
    }});
    let config = load(&json!({"openapi": {"document": document}, "routes": [
        {"name": "health", "match": {"path": "/healthz"}},
        {"match": {"operations": "createPet"}, "validate": {"max_body_bytes": 10},
         "rate_limit": {"name": "creates", "limit": 5, "window": "1m", "key": "client_ip"}},
        {"match": {"operations": ["/pets/{id}"]}, "cors": {"allow_origins": ["https://a.example"]}}
    ]}))
    .expect("loads");
    let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["health", "createPet", "GET /pets/{id}", "DELETE /pets/{id}"]
    );
    let create = config.routes.find("POST", "/pets").expect("route");
    assert!(create.policies.rate_limit.is_some());
    assert_eq!(
        create.policies.validate.as_ref().map(|v| v.max_body_bytes),
        Some(10)
    );
    // The document's checks stay under the route's additions.
    assert_eq!(
        verdict(
            &config,
            "POST",
            "/pets",
            &[("content-type", "application/json")],
            Some("{\"name\": \"Rexford\"}")
        )
        .0,
        413
    );
    assert_eq!(
        verdict(
            &config,
            "POST",
            "/pets",
            &[("content-type", "application/json")],
            Some("{\"a\":1}")
        )
        .1,
        [""]
    );
    let get = config.routes.find("GET", "/pets/1").expect("route");
    assert!(get.policies.cors.is_some() && get.policies.rate_limit.is_none());
    // A listed route of its own comes first, and is not refused as unknown.
    assert_eq!(
        config
            .routes
            .find("GET", "/healthz")
            .map(|r| r.name.as_str()),
        Some("health")
    );

    let error = |routes: Value| {
        load(&json!({"openapi": {"document": document}, "routes": routes}))
            .err()
            .unwrap_or_default()
    };
    assert_eq!(
        error(json!([{"match": {"operations": "nope"}}])),
        "invalid configuration at `routes[0].match.operations[0]`: `nope` names no operation of the document (write an operationId, `METHOD /path` or `/path` as the document does)"
    );
    assert_eq!(
        error(
            json!([{"match": {"operations": "createPet"}}, {"match": {"operations": "POST /pets"}}])
        ),
        "invalid configuration at `routes[1].match.operations[0]`: operation `createPet` is already named by routes[0]; one route adds to an operation"
    );
    assert_eq!(
        error(json!([{"match": {"operations": "createPet", "methods": ["GET"]}}])),
        "invalid configuration at `routes[0].match.methods`: a route that names `operations` takes their paths and methods"
    );
    assert_eq!(
        load(&json!({"routes": [{"match": {"operations": "createPet"}}]}))
            .err()
            .unwrap_or_default(),
        "invalid configuration at `routes[0].match.operations`: names operations of an `openapi` document, which the config does not have"
    );
}

#[test]
fn literal_paths_win_over_templates_whatever_the_order() {
    let document = json!({"openapi": "3.1.0", "paths": {
        "/users/{id}": {"get": {"operationId": "byId", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]}},
        "/users/me": {"get": {"operationId": "me"}},
        "/users/{id}/keys/{key}": {"delete": {"operationId": "dropKey", "parameters": [
            {"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}},
            {"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}]}},
        "/users/me/keys/current": {"get": {"operationId": "currentKey"}}
    }});
    let config = load(&json!({"openapi": {"document": document}})).expect("loads");
    let name = |m: &str, p: &str| config.routes.find(m, p).map(|r| r.name.clone());
    assert_eq!(name("GET", "/users/me").as_deref(), Some("me"));
    assert_eq!(name("GET", "/Users/ME/").as_deref(), Some("me"));
    assert_eq!(name("GET", "/users/7").as_deref(), Some("byId"));
    assert_eq!(
        name("GET", "/users/me/keys/current").as_deref(),
        Some("currentKey")
    );
    // A literal branch without the method falls back to the template that has it.
    assert_eq!(
        name("DELETE", "/users/me/keys/current").as_deref(),
        Some("dropKey")
    );
    assert_eq!(
        verdict(&config, "DELETE", "/users/me/keys/current", &[], None),
        (400, vec!["/path/id".into()])
    );
    assert_eq!(verdict(&config, "PUT", "/users/me", &[], None).0, 405);
}

#[test]
fn parameter_styles_are_read_as_the_wire_writes_them() {
    let document = json!({"openapi": "3.1.0", "paths": {"/s": {"get": {"parameters": [
        {"name": "ids", "in": "query", "style": "form", "explode": false, "schema": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}},
        {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["a", "b,c"]}}},
        {"name": "pipes", "in": "query", "style": "pipeDelimited", "schema": {"type": "array", "items": {"type": "integer"}}},
        {"name": "words", "in": "query", "style": "spaceDelimited", "schema": {"type": "array", "items": {"type": "string", "maxLength": 3}}},
        {"name": "f", "in": "query", "style": "deepObject", "schema": {"type": "object", "properties": {"min": {"type": "integer"}}, "additionalProperties": false}},
        {"name": "page", "in": "query", "schema": {"$ref": "#/components/schemas/Page"}},
        {"name": "where", "in": "query", "content": {"application/json": {"schema": {"type": "object", "required": ["x"]}}}},
        {"name": "X-Ids", "in": "header", "schema": {"type": "array", "items": {"type": "integer"}}},
        {"name": "$top", "in": "query", "style": "form", "explode": false, "schema": {"type": "integer", "maximum": 50}},
        {"name": "session", "in": "cookie", "required": true, "schema": {"type": "string", "minLength": 4}}
    ]}}}, "components": {"schemas": {"Page": {"type": "integer", "minimum": 1}}}});
    let config = load(&json!({"openapi": {"document": document}})).expect("loads");
    let check = |query: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("cookie", "a=1; session=abcd")];
        all.extend_from_slice(headers);
        verdict(&config, "GET", &format!("/s?{query}"), &all, None)
    };
    assert!(passes(check(
        "ids=1,2,3&tags=a&tags=b%2Cc&pipes=1|2&words=ab%20cd&f[min]=5&page=2&where=%7B%22x%22%3A1%7D",
        &[("x-ids", "1, 2")]
    )));
    assert_eq!(check("ids=1,2,3,4", &[]).1, ["/query/ids"]);
    assert_eq!(check("ids=1,x", &[]).1, ["/query/ids/1"]);
    // An encoded comma is data, not a separator.
    assert_eq!(check("ids=1%2C2", &[]).1, ["/query/ids/0"]);
    // Exploded form: `b,c` is one item.
    assert!(passes(check("tags=b,c", &[])));
    assert_eq!(check("tags=b", &[]).1, ["/query/tags/0"]);
    assert_eq!(check("pipes=1|y", &[]).1, ["/query/pipes/1"]);
    assert_eq!(check("words=abcd%20e", &[]).1, ["/query/words/0"]);
    assert_eq!(check("f[min]=x", &[]).1, ["/query/f/min"]);
    assert_eq!(check("f[max]=1", &[]).1, ["/query/f"]);
    assert_eq!(check("f[a][b]=1", &[]).1, ["/query/f"]);
    assert_eq!(check("page=0", &[]).1, ["/query/page"]);
    // Not exploded, a primitive is one value (Microsoft Graph's `$top`).
    assert!(passes(check("%24top=5", &[])));
    assert_eq!(check("$top=51", &[]).1, ["/query/$top"]);
    assert_eq!(check("page=", &[]).1, ["/query/page"]);
    assert_eq!(check("where=%7B%7D", &[]).1, ["/query/where"]);
    assert_eq!(check("", &[("x-ids", "1,z")]).1, ["/headers/x-ids/1"]);
    assert_eq!(
        verdict(&config, "GET", "/s", &[("cookie", "session=ab")], None).1,
        ["/cookies/session"]
    );
    assert_eq!(verdict(&config, "GET", "/s", &[], None).1, ["/cookies"]);
}

#[test]
fn request_bodies_take_their_media_types() {
    let document = json!({"openapi": "3.0.3", "paths": {"/up": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"type": "object", "required": ["a"]}},
        "application/merge-patch+json": {"schema": {"type": "object", "required": ["a"]}},
        "text/*": {}
    }}}, "put": {"requestBody": {"required": true, "content": {"*/*": {}}}}}}});
    let config =
        load(&json!({"openapi": {"document": document, "max_body_bytes": 100}})).expect("loads");
    let post = |ct: &str, body: Option<&str>| {
        verdict(&config, "POST", "/up", &[("content-type", ct)], body)
    };
    assert!(passes(post("application/json", Some("{\"a\":1}"))));
    assert!(passes(post(
        "application/merge-patch+json; charset=utf-8",
        Some("{\"a\":1}")
    )));
    assert_eq!(
        post("application/json", Some("{}")),
        (400, vec![String::new()])
    );
    // Another media type the operation lists is let through unparsed.
    assert!(passes(post("text/csv", Some("a,b"))));
    assert_eq!(post("application/xml", Some("<a/>")).0, 415);
    // Optional (OpenAPI's default): an empty POST passes.
    assert!(passes(post("application/json", None)));
    let put = |headers: &[(&str, &str)], body: Option<&str>| {
        verdict(&config, "PUT", "/up", headers, body)
    };
    assert!(passes(put(&[("content-type", "image/png")], Some("x"))));
    assert!(passes(put(&[], Some("x"))));
    assert_eq!(put(&[], None).0, 400);
    assert_eq!(put(&[("content-length", "101")], Some("x")).0, 413);
}

/// GitHub's description holds `${...}` in its descriptions: the document is data, and only
/// the rest of the config reads secrets.
#[test]
fn secrets_are_not_read_in_the_document() {
    let document = json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"description": "see ${externalDocs/x}"}}}});
    let config =
        json!({"openapi": {"document": document}, "logging": {"include_headers": ["${HEADER}"]}});
    let env = |name: &str| (name == "HEADER").then(|| "x-trace".to_string());
    let loaded = Config::from_bytes_with_env(config.to_string().as_bytes(), &env).expect("loads");
    assert_eq!(loaded.routes.len(), 1);
    assert!(format!("{:?}", loaded.logging).contains("x-trace"));
    let missing = Config::from_bytes(config.to_string().as_bytes()).map_err(|e| e.to_string());
    assert_eq!(
        missing.err().as_deref(),
        Some(
            "invalid configuration at `logging.include_headers[0]`: the required secret HEADER is not set (add it to vm_config.environment_variables, or Envoy's environment for the native build, or write ${HEADER:-default})"
        )
    );
    let plain = json!({"openapi": {"document": document}});
    assert!(Config::from_bytes(plain.to_string().as_bytes()).is_ok());
}

/// Shapes found by review: recursive, nullable, composed and `$ref`-with-siblings schemas.
#[test]
fn composed_and_recursive_parameter_schemas_are_read() {
    let document = json!({"openapi": "3.1.0", "paths": {
        "/r/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"allOf": [{"$ref": "#/components/schemas/Id"}]}}],
            "get": {"parameters": [
                {"name": "tree", "in": "query", "schema": {"$ref": "#/components/schemas/Tree"}},
                {"name": "page", "in": "query", "schema": {"$ref": "#/components/schemas/Page", "maximum": 10}},
                {"name": "limit", "in": "query", "schema": {"allOf": [{"$ref": "#/components/schemas/Page"}]}},
                {"name": "opts", "in": "query", "schema": {"type": ["object", "null"], "properties": {"depth": {"type": "integer", "maximum": 5}}}},
                {"name": "X-Id", "in": "header", "schema": {"type": "integer"}}
            ]},
            "head": {"operationId": "headR"},
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"allOf": [{"$ref": "#/components/schemas/Id"}]}},
                           {"name": "x-id", "in": "header", "schema": {"type": "string"}}]
        }
    }, "components": {"schemas": {
        "Id": {"type": "integer", "minimum": 1},
        "Tree": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
        "Page": {"type": "integer", "minimum": 1}
    }}});
    let config = load(&json!({"openapi": {"document": document}})).expect("loads");
    let get = |path: &str, headers: &[(&str, &str)]| verdict(&config, "GET", path, headers, None);
    assert!(passes(get("/r/3?page=5&limit=3&depth=2", &[("x-id", "7")])));
    assert_eq!(get("/r/0", &[]).1, ["/path/id"]);
    assert_eq!(get("/r/3?page=11", &[]).1, ["/query/page"]);
    assert_eq!(get("/r/3?page=0", &[]).1, ["/query/page"]);
    assert_eq!(get("/r/3?limit=0", &[]).1, ["/query/limit"]);
    // A nullable exploded object: its properties are the query's keys.
    assert_eq!(get("/r/3?depth=9", &[]).1, ["/query/depth"]);
    // The operation's `X-Id` (an integer) overrides the path item's `x-id`.
    assert_eq!(get("/r/3", &[("x-id", "seven")]).1, ["/headers/x-id"]);
    // A document's `head` operation takes HEAD before the `get`.
    assert_eq!(
        config.routes.find("HEAD", "/r/3").map(|r| r.name.as_str()),
        Some("headR")
    );
}

#[test]
fn a_schema_under_a_range_checks_json_bodies() {
    let document = json!({"openapi": "3.1.0", "paths": {"/up": {"post": {"requestBody": {"required": true,
        "content": {"*/*": {"schema": {"type": "object", "required": ["a"]}}}}}}}});
    let config = load(&json!({"openapi": {"document": document}})).expect("loads");
    let post =
        |ct: &str, body: &str| verdict(&config, "POST", "/up", &[("content-type", ct)], Some(body));
    assert_eq!(post("application/json", "{}").1, [""]);
    assert!(passes(post("application/json", "{\"a\": 1}")));
    assert!(passes(post("text/plain", "anything")));
    assert_eq!(
        load(&json!({"defaults": {"validate": {"body_required": true}}}))
            .err()
            .unwrap_or_default(),
        "invalid configuration at `defaults.validate.body_required`: only on a route (defaults hold size and content-type limits)"
    );
}
