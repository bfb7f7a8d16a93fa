//! The fixture documents (test-harness/fixtures/openapi/, YAML as published): the OAI's
//! petstores, our 3.1 port, and the orders API in 3.0 and 3.1, which must mean the same.

use super::*;

fn document(name: &str) -> Value {
    let path = format!(
        "{}/../test-harness/fixtures/openapi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_yaml_ng::from_str(&text).expect("YAML")
}

fn config(name: &str) -> Config {
    load(&json!({"openapi": {"document": document(name)}})).expect("loads")
}

#[test]
fn the_petstores_load_and_check_their_requests() {
    for name in ["petstore-3.0.yaml", "petstore-3.1.yaml"] {
        let config = config(name);
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["listPets", "createPets", "showPetById"], "{name}");
        let check = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
            verdict(&config, method, path, headers, body)
        };
        assert!(
            passes(check("GET", "/v1/pets?limit=100", &[], None)),
            "{name}"
        );
        assert_eq!(
            check("GET", "/v1/pets?limit=101", &[], None),
            (400, vec!["/query/limit".into()]),
            "{name}"
        );
        assert_eq!(
            check("GET", "/v1/pets?limit=abc", &[], None).1,
            ["/query/limit"],
            "{name}"
        );
        assert!(passes(check("GET", "/v1/pets/abc", &[], None)), "{name}");
        let rex = r#"{"id": 1, "name": "Rex"}"#;
        assert!(
            passes(check("POST", "/v1/pets", &[JSON], Some(rex))),
            "{name}"
        );
        assert_eq!(
            check("POST", "/v1/pets", &[JSON], Some(r#"{"id": 1}"#)),
            (400, vec![String::new()]),
            "{name}"
        );
        let text_id = r#"{"id": "1", "name": "Rex"}"#;
        assert_eq!(
            check("POST", "/v1/pets", &[JSON], Some(text_id)).1,
            ["/id"],
            "{name}"
        );
        assert_eq!(
            check(
                "POST",
                "/v1/pets",
                &[("content-type", "text/plain")],
                Some("Rex")
            )
            .0,
            415,
            "{name}"
        );
        assert_eq!(check("POST", "/v1/pets", &[JSON], None).0, 400, "{name}");
        assert_eq!(check("PUT", "/v1/pets", &[], None).0, 405, "{name}");
        assert_eq!(check("GET", "/pets", &[], None).0, 404, "{name}");
    }
    // 3.1's `tag: [string, null]` takes null; 3.0's `tag: string` does not.
    let tagged = Some(r#"{"id": 1, "name": "Rex", "tag": null}"#);
    assert!(passes(verdict(
        &config("petstore-3.1.yaml"),
        "POST",
        "/v1/pets",
        &[JSON],
        tagged
    )));
    assert_eq!(
        verdict(
            &config("petstore-3.0.yaml"),
            "POST",
            "/v1/pets",
            &[JSON],
            tagged
        )
        .1,
        ["/tag"]
    );
}

#[test]
fn the_expanded_petstore_reads_arrays_and_all_of() {
    let config = config("petstore-expanded-3.0.yaml");
    assert!(passes(verdict(
        &config,
        "GET",
        "/v2/pets?tags=a&tags=b&limit=3",
        &[],
        None
    )));
    assert_eq!(
        verdict(&config, "GET", "/v2/pets/abc", &[], None).1,
        ["/path/id"]
    );
    assert!(passes(verdict(&config, "DELETE", "/v2/pets/12", &[], None)));
    let json = [("content-type", "application/json")];
    assert!(passes(verdict(
        &config,
        "POST",
        "/v2/pets",
        &json,
        Some(r#"{"name": "Rex"}"#)
    )));
    assert_eq!(
        verdict(&config, "POST", "/v2/pets", &json, Some(r#"{"tag": "x"}"#)).1,
        [""]
    );
}

#[test]
fn the_other_oai_examples_load() {
    let tictactoe = config("tictactoe-3.1.yaml");
    assert!(passes(verdict(&tictactoe, "GET", "/board/1/3", &[], None)));
    assert_eq!(
        verdict(&tictactoe, "GET", "/board/1/4", &[], None).1,
        ["/path/column"]
    );
    let json = [("content-type", "application/json")];
    assert!(passes(verdict(
        &tictactoe,
        "PUT",
        "/board/2/2",
        &json,
        Some("\"X\"")
    )));
    assert_eq!(
        verdict(&tictactoe, "PUT", "/board/2/2", &json, Some("\"Z\"")).1,
        [""]
    );
    // Webhooks only: no route, and nothing is refused as unknown by a route it lacks.
    assert!(config("webhook-example-3.1.yaml").routes.is_empty());
}

/// Runs `check` on the orders API in both dialects.
fn orders(
    check: impl Fn(&str, &dyn Fn(&str, &str, &[(&str, &str)], Option<&str>) -> (u16, Vec<String>)),
) {
    for name in ["api-3.0.yaml", "api-3.1.yaml"] {
        let config = config(name);
        check(name, &|method, path, headers, body| {
            verdict(&config, method, path, headers, body)
        });
    }
}

const TENANT: (&str, &str) = ("x-tenant", "acme");
const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn the_orders_api_checks_query_and_headers_in_3_0_and_3_1() {
    orders(|name, check| {
        assert!(
            passes(check(
                "GET",
                "/api/orders?limit=5&status=open,shipped",
                &[TENANT],
                None
            )),
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders?limit=0", &[TENANT], None).1,
            ["/query/limit"],
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders?status=open,lost", &[TENANT], None).1,
            ["/query/status/1"],
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders", &[("x-tenant", "AC")], None).1,
            ["/headers/x-tenant"],
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders", &[], None).1,
            ["/headers"],
            "{name}"
        );
        assert!(
            passes(check(
                "GET",
                "/api/orders/search?q=ab&filter[minTotal]=10&filter[currency]=EUR",
                &[],
                None
            )),
            "{name}"
        );
        assert_eq!(
            check(
                "GET",
                "/api/orders/search?q=ab&filter[currency]=GBP",
                &[],
                None
            )
            .1,
            ["/query/filter/currency"],
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders/search", &[], None).1,
            ["/query"],
            "{name}"
        );
    });
}

#[test]
fn the_orders_api_checks_bodies_in_3_0_and_3_1() {
    orders(|name, check| {
        let order = r#"{"item": "book", "quantity": 2, "note": null, "price": 0.5}"#;
        assert!(
            passes(check("POST", "/api/orders", &[TENANT, JSON], Some(order))),
            "{name}"
        );
        let with_id = r#"{"item": "b", "quantity": 1, "id": 4}"#;
        assert!(
            passes(check("POST", "/api/orders", &[TENANT, JSON], Some(with_id))),
            "{name}"
        );
        let free = r#"{"item": "b", "quantity": 1, "price": 0}"#;
        assert_eq!(
            check("POST", "/api/orders", &[TENANT, JSON], Some(free)).1,
            ["/price"],
            "{name}"
        );
        let two_wrongs = r#"{"item": "b", "quantity": 101, "x": 1}"#;
        assert_eq!(
            check("POST", "/api/orders", &[TENANT, JSON], Some(two_wrongs))
                .1
                .len(),
            2,
            "{name}"
        );
        assert_eq!(
            check("POST", "/api/orders", &[JSON], Some(order)).1,
            ["/headers"],
            "{name}"
        );
    });
}

#[test]
fn the_orders_api_checks_paths_in_3_0_and_3_1() {
    orders(|name, check| {
        assert!(passes(check("GET", "/api/orders/42", &[], None)), "{name}");
        assert_eq!(
            check("GET", "/api/orders/0", &[], None).1,
            ["/path/orderId"],
            "{name}"
        );
        assert!(
            passes(check("DELETE", "/api/orders/42", &[], None)),
            "{name}"
        );
        assert_eq!(check("PATCH", "/api/orders/42", &[], None).0, 405, "{name}");
        assert!(
            passes(check("GET", "/api/orders/42/items/AB-1234", &[], None)),
            "{name}"
        );
        assert_eq!(
            check("GET", "/api/orders/42/items/ab-1234", &[], None).1,
            ["/path/itemId"],
            "{name}"
        );
        assert_eq!(check("GET", "/api/nothing", &[], None).0, 404, "{name}");
    });
}
