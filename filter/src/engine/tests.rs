//! The whole engine under arbitrary requests and responses, with every policy on: it never
//! panics (a panic kills the worker's VM), and every error it answers is problem+json.

use std::cell::Cell;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::Config;
use crate::environment::{Environment, MemorySharedData};
use crate::logging::Level;
use crate::reply::LocalResponse;
use crate::request::Headers;
use crate::response::ResponseHeaders;

struct MemoryEnvironment {
    shared: MemorySharedData,
    now: Cell<u64>,
}

impl Environment for MemoryEnvironment {
    fn now_unix_nanos(&self) -> u64 {
        self.now.set(self.now.get() + 1_000_000);
        self.now.get()
    }
    fn client_address(&self) -> Option<String> {
        Some("192.0.2.7:41000".into())
    }
    fn rate_store(&self) -> &dyn RateStore {
        &self.shared
    }
    fn increment(&self, _metric: usize, _by: u64) {}
    fn log(&self, _level: Level, _line: &str) {}
}

fn engine_with_every_policy(env: &MemoryEnvironment) -> Engine {
    let config = json!({
        "defaults": {
            "security_headers": {"remove_owasp_leaky_headers": true},
            "cors": {"allow_origins": ["https://app.example.com", "https://*.example.org", {"regex": "^https://pr-[0-9]+\\.example\\.net$"}], "allow_credentials": true},
            "rate_limit": {"name": "api", "limit": 3, "window": "1s", "key": ["client_ip", "header:x-api-key"], "slots": 64},
            "https_redirect": {"hosts": ["api.example.com"], "exempt_paths": ["/healthz"]},
            "errors": {},
            "validate": {"unknown_routes": "reject", "max_body_bytes": 256}
        },
        "routes": [
            {"name": "create_user", "match": {"path": "/users", "methods": ["POST"]}, "validate": {
                "body": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]},
                "content_types": ["application/json"]}},
            {"name": "user", "match": {"path": "/users/{id}", "methods": ["GET", "DELETE"]}, "validate": {
                "path_params": {"id": {"type": "integer"}},
                "query": {"type": "object", "properties": {"limit": {"type": "integer"}, "tag": {"type": "array", "items": {"type": "string"}}}},
                "headers": {"type": "object", "properties": {"x-api-key": {"type": "string", "maxLength": 8}}}}},
            {"name": "public", "match": {"prefix": "/public/"}, "cors": {"allow_origins": ["*"], "allow_credentials": false}, "rate_limit": false}
        ],
        "health": {"checks": {}}
    });
    let config = Config::from_bytes(config.to_string().as_bytes()).expect("valid config");
    let mut engine = Engine::new(config);
    engine.prepare(&env.shared, [7; 16]).expect("prepared");
    engine
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("HEAD".to_string()),
        Just("POST".to_string()),
        Just("DELETE".to_string()),
        Just("OPTIONS".to_string()),
        Just("CONNECT".to_string()),
        "[A-Za-z]{0,8}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/users".to_string()),
        Just("/users/".to_string()),
        Just("/public/".to_string()),
        Just("/healthz".to_string()),
        Just("12".to_string()),
        Just("?limit=5".to_string()),
        Just("?limit[]=9&tag[0]=a".to_string()),
        Just("&id[$ne]=x".to_string()),
        Just("%".to_string()),
        Just("%ZZ".to_string()),
        Just("#frag".to_string()),
        "\\PC{0,12}",
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

fn request_header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        Just("origin"),
        Just("access-control-request-method"),
        Just("access-control-request-headers"),
        Just("access-control-request-private-network"),
        Just("x-forwarded-proto"),
        Just(":authority"),
        Just("content-length"),
        Just("content-type"),
        Just("transfer-encoding"),
        Just("upgrade"),
        Just("x-api-key"),
        Just("x-request-id"),
    ];
    let value = prop_oneof![
        Just(b"https://app.example.com".to_vec()),
        Just(b"https://a.b.example.org".to_vec()),
        Just(b"https://pr-12.example.net".to_vec()),
        Just(b"null".to_vec()),
        Just(b"POST".to_vec()),
        Just(b"http".to_vec()),
        Just(b"https, http".to_vec()),
        Just(b"api.example.com:80".to_vec()),
        Just(b"application/json; charset=utf-8".to_vec()),
        Just(b"websocket".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"0".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    (name.prop_map(str::to_string), value)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"email":"ada@example.com"}"#.to_vec()),
        Just(br#"{"email":"ada@example.com","email":"x"}"#.to_vec()),
        Just(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
        Just(b"1e999999".to_vec()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn response_header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        Just("content-type".to_string()),
        Just("vary".to_string()),
        Just("access-control-allow-origin".to_string()),
        Just("ratelimit".to_string()),
        Just("x-powered-by".to_string()),
        Just("content-length".to_string()),
        Just("cache-control".to_string()),
        "[a-z-]{1,12}",
    ];
    (name, prop::collection::vec(any::<u8>(), 0..30))
}

/// An answer the filter makes itself: errors are problem+json.
fn assert_one_format(response: &LocalResponse) -> Result<(), TestCaseError> {
    prop_assert!((200..600).contains(&response.status), "{}", response.status);
    if response.status >= 400 {
        let content_type = response
            .headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, value)| value.as_str());
        prop_assert_eq!(content_type, Some("application/problem+json"));
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(body["status"].as_u64(), Some(u64::from(response.status)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn any_exchange_is_decided_without_a_panic(
        method in method(),
        path in path(),
        headers in prop::collection::vec(request_header(), 0..8),
        end_of_stream in any::<bool>(),
        body in body(),
        chunks in 1usize..4,
        trailers in any::<bool>(),
        status in prop_oneof![Just(200u16), Just(204), Just(404), Just(500), Just(503), 0u16..1000],
        response_headers in prop::collection::vec(response_header(), 0..6),
    ) {
        let env = MemoryEnvironment { shared: MemorySharedData::default(), now: Cell::new(1_700_000_000_000_000_000) };
        let engine = engine_with_every_policy(&env);
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":method", method.as_bytes()), (b":path", path.as_bytes()), (b":scheme", b"http")];
        pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
        let request = Headers::new(pairs);
        let (mut state, decision) = engine.on_request_headers(Some(&request), end_of_stream, &env);
        let mut answered = false;
        if let RequestDecision::Respond(response) = &decision {
            assert_one_format(response)?;
            answered = true;
        }
        // What the shell does: the request goes on to the router (which opens the upstream
        // request) at the first Continue. A refusal after that would reach the upstream, which
        // only a body longer than its declared Content-Length could cause (Envoy's codecs
        // refuse those before the filter sees them).
        let mut released = decision == RequestDecision::Continue;
        let honest_length = headers
            .iter()
            .filter(|(k, _)| k == "content-length")
            .all(|(_, v)| std::str::from_utf8(v).ok().and_then(|v| v.trim().parse::<usize>().ok()) == Some(body.len()));
        if !answered && !end_of_stream {
            let step = chunks.max(1);
            let mut received = 0;
            let size = body.len().div_ceil(step).max(1);
            for chunk in body.chunks(size) {
                received += chunk.len();
                let last = received == body.len() && !trailers;
                match engine.on_request_body(&mut state, received, last, &env) {
                    BodyStep::Respond(response) => {
                        assert_one_format(&response)?;
                        prop_assert!(!released || !honest_length, "refused after it went upstream");
                        answered = true;
                        break;
                    }
                    BodyStep::Check { size } => {
                        prop_assert!(!released, "a body checked after the request went upstream");
                        let held = body.get(..size.min(body.len())).unwrap_or_default();
                        match engine.on_request_body_complete(&mut state, held, &env) {
                            RequestDecision::Respond(response) => {
                                assert_one_format(&response)?;
                                answered = true;
                            }
                            _ => released = true,
                        }
                        break;
                    }
                    BodyStep::Continue => released = true,
                    BodyStep::Pause => {}
                }
            }
            if !answered && trailers {
                match engine.on_request_trailers(&mut state, &env) {
                    BodyStep::Respond(response) => {
                        assert_one_format(&response)?;
                        prop_assert!(!released || !honest_length, "refused after it went upstream");
                    }
                    BodyStep::Check { size } => {
                        prop_assert!(!released, "a body checked after the request went upstream");
                        let held = body.get(..size.min(body.len())).unwrap_or_default();
                        if let RequestDecision::Respond(response) = engine.on_request_body_complete(&mut state, held, &env) {
                            assert_one_format(&response)?;
                        }
                    }
                    BodyStep::Continue | BodyStep::Pause => {}
                }
            }
        }
        let status_text = status.to_string();
        let mut response_pairs: Vec<(&[u8], &[u8])> = vec![(b":status", status_text.as_bytes())];
        response_pairs.extend(response_headers.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
        let mut response = ResponseHeaders::new(response_pairs);
        if let ResponseDecision::Replace(replacement) = engine.on_response_headers(&state, &mut response, &env) {
            assert_one_format(&replacement)?;
        }
    }
}
