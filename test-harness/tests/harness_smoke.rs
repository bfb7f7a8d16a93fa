use serde_json::json;
use test_harness::host::{Harness, HarnessError};
use test_harness::{Request, Response};

#[test]
fn plain_get_passes_through() {
    let envoy = Harness::filter().config(json!({})).workers(2).start().expect("starts");
    let exchange = envoy.request(Request::get("/users")).expect("request");
    let upstream = exchange.upstream_request().expect("forwarded");
    assert_eq!(upstream.target, "/users");
    let response = exchange.respond(Response::ok().header("x-powered-by", "Express").body("[]")).expect("response");
    assert_eq!(response.status, 200);
    println!("cost: {:?}", exchange.cost());
}

#[test]
fn bad_config_is_rejected() {
    let err = Harness::filter().config(json!({"rotues": []})).start().err().expect("rejected");
    match err {
        HarnessError::ConfigRejected { log, .. } => assert_eq!(log, vec!["invalid configuration at `rotues`: unknown field `rotues`, expected `routes` at line 1 column 9".to_string()]),
        other => panic!("{other}"),
    }
}
