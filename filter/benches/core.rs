//! Micro-benchmarks of the core's per-request functions, natively (`cargo xtask bench`).

use criterion::{Criterion, criterion_group, criterion_main};
use hardening::config::Config;
use hardening::problem::Problem;
use http::StatusCode;
use std::hint::black_box;

fn config() -> Config {
    let json = serde_json::json!({
        "routes": [
            {"name": "health", "match": {"path": "/health"}},
            {"name": "users", "match": {"path": "/users", "methods": ["GET", "POST"]}},
            {"name": "user", "match": {"path": "/users/{id}", "methods": ["GET", "PUT", "DELETE"]}},
            {"name": "posts", "match": {"path": "/users/{id}/posts/{post}"}},
            {"name": "static", "match": {"prefix": "/static/"}}
        ]
    });
    Config::from_bytes(json.to_string().as_bytes()).expect("valid")
}

fn routes(c: &mut Criterion) {
    let config = config();
    c.bench_function("route: template match", |b| {
        b.iter(|| {
            config
                .routes
                .find(black_box("PUT"), black_box("/users/42?x=1"))
        })
    });
    c.bench_function("route: no match (all routes tried)", |b| {
        b.iter(|| {
            config
                .routes
                .find(black_box("GET"), black_box("/nothing/here"))
        })
    });
}

fn problems(c: &mut Criterion) {
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests, try again later.",
    );
    c.bench_function("problem+json: render", |b| {
        b.iter(|| problem.to_json(black_box(Some("0f6a2c1e-7b7a-4d7e-9e1a-3b5f8f0c2d11"))))
    });
}

fn config_load(c: &mut Criterion) {
    let text =
        serde_json::json!({"routes": [{"match": {"path": "/users/{id}", "methods": ["GET"]}}]})
            .to_string();
    c.bench_function("config: parse and compile", |b| {
        b.iter(|| Config::from_bytes(black_box(text.as_bytes())))
    });
}

criterion_group!(benches, routes, problems, config_load);
criterion_main!(benches);
