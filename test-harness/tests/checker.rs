//! The offline checker (`hardening-check`) and a real Envoy agree: on the demo's Envoy config
//! and on broken copies of it, `envoy --mode validate` and the checker pass or refuse the same
//! configurations, and the checker's error is the line Envoy logs.

use hardening_check::check::Checker;
use test_harness::envoy::validate;
use xtask::demo_stack::ENVOY_CONFIG;
use xtask::paths;

/// Each change to the demo's config, the filter's error as Envoy and the checker say it, and
/// the text of the line the checker names (the field the error is about).
const BREAKAGES: &[(&str, &str, &str, &str)] = &[
    (
        "match: { path: /users, methods: [POST] }",
        "match: { paht: /users, methods: [POST] }",
        "invalid configuration at `routes[0].match.paht`: unknown field `paht`, expected one of `path`, `prefix`, `methods`, `exact`, `operations`",
        "paht: /users",
    ),
    (
        "limit: 100",
        "limit: 0",
        "invalid configuration at `defaults.rate_limit.limit`: must be at least 1",
        "limit: 0",
    ),
    (
        "- http://localhost:3000",
        "- http://localhost:3000/app",
        "invalid configuration at `defaults.cors.allow_origins[1]`",
        "- http://localhost:3000/app",
    ),
    (
        "password: { type: string, minLength: 8, maxLength: 128 }",
        "password: { type: strin, minLength: 8, maxLength: 128 }",
        "invalid configuration at `routes[0].validate.body`: the schema does not compile",
        "  body:",
    ),
    (
        // So it does with the numbers of a JSON Schema written in YAML.
        "path_params: { id: { type: integer, minimum: 1 } }",
        "path_params: { id: { type: integer, minimum: 0.5 } }",
        "invalid configuration at `routes[2].validate.path_params`: the schema does not compile: \"0.5\" is not of type \"number\"",
        "minimum: 0.5",
    ),
    (
        // Envoy 1.40's YAML loader hands a plain `600.0` over as a string.
        "max_age: 600",
        "max_age: 600.0",
        "invalid configuration at `defaults.cors.max_age`: invalid type: string \"600.0\", expected u32",
        "max_age: 600.0",
    ),
    (
        // Beyond 32 bits, Envoy's YAML loader makes an integer a string.
        "max_age: 600",
        "max_age: 4294967296",
        "invalid configuration at `defaults.cors.max_age`: invalid type: string \"4294967296\", expected u32",
        "max_age: 4294967296",
    ),
];

/// Changes Envoy's YAML loader reads as the same config (yaml-cpp's booleans and integer
/// bases), which the checker must take too.
const SAME_FOR_ENVOY: &[(&str, &str)] = &[
    (
        "remove_owasp_leaky_headers: true",
        "remove_owasp_leaky_headers: yes",
    ),
    ("allow_credentials: true", "allow_credentials: On"),
    ("max_age: 600", "max_age: 0x258"),
];

#[test]
fn the_checker_and_envoy_agree() {
    xtask::wasm::ensure(&xtask::wasm::FILTER).expect("wasm builds");
    let checker = Checker::new().expect("the schema compiles");
    let demo = std::fs::read_to_string(paths::root().join(ENVOY_CONFIG)).expect("envoy.yaml");
    let dir = std::env::temp_dir().join(format!("hardening-checker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let (passed, output) =
        validate(&paths::root().join(ENVOY_CONFIG), &paths::root()).expect("envoy runs");
    let report = checker.check(&demo);
    assert!(passed, "{output}");
    assert!(report.passed(), "{report:#?}");

    for (good, bad, error, on_line) in BREAKAGES {
        assert!(
            demo.contains(good),
            "envoy.yaml has no `{good}`: update this test"
        );
        let broken = demo.replacen(good, bad, 1);
        let path = dir.join("broken.yaml");
        std::fs::write(&path, &broken).expect("written");
        let (passed, output) = validate(&path, &paths::root()).expect("envoy runs");
        assert!(!passed, "Envoy took `{bad}`:\n{output}");
        assert!(
            output.contains(error),
            "Envoy's output lacks `{error}`:\n{output}"
        );

        let report = checker.check(&broken);
        let refusal = report.configs.first().and_then(|c| c.error.as_ref());
        let refusal = refusal.unwrap_or_else(|| panic!("the checker took `{bad}`: {report:#?}"));
        assert!(
            refusal.message.starts_with(error),
            "`{}` is not `{error}...`",
            refusal.message
        );
        // Envoy logs the filter's message whole: the checker's is the same text.
        assert!(
            output.contains(&refusal.message),
            "Envoy's output lacks the checker's `{}`:\n{output}",
            refusal.message
        );
        let line = broken
            .lines()
            .position(|l| l.contains(on_line))
            .map(|i| i + 1);
        assert_eq!(refusal.line, line, "{bad}");
    }
    for (good, same) in SAME_FOR_ENVOY {
        assert!(
            demo.contains(good),
            "envoy.yaml has no `{good}`: update this test"
        );
        let changed = demo.replacen(good, same, 1);
        let path = dir.join("same.yaml");
        std::fs::write(&path, &changed).expect("written");
        let (passed, output) = validate(&path, &paths::root()).expect("envoy runs");
        assert!(passed, "Envoy refused `{same}`:\n{output}");
        let report = checker.check(&changed);
        assert!(report.passed(), "the checker refused `{same}`: {report:#?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check-jsonschema` (PyPI, on python-jsonschema), installed into target/ for this test.
fn check_jsonschema() -> std::path::PathBuf {
    let venv = paths::root().join("target/check-jsonschema");
    let bin = venv.join("bin/check-jsonschema");
    if !bin.exists() {
        let _lock = xtask::lock::FileLock::acquire("check-jsonschema").expect("lock");
        let run = |cmd: &mut std::process::Command| {
            let status = cmd.status().expect("runs");
            assert!(status.success(), "{cmd:?} failed");
        };
        if !venv.join("bin/pip").exists() {
            run(std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv));
        }
        run(std::process::Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "check-jsonschema==0.39.0",
        ]));
    }
    bin
}

/// The schema as published works in another validator than the checker's, as docs/config.md
/// tells CI users: a documented configuration passes, a mistyped field and a value out of
/// range are refused, naming the field.
#[test]
fn another_validator_reads_the_published_schema() {
    let bin = check_jsonschema();
    let dir = std::env::temp_dir().join(format!("hardening-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let schema = dir.join("hardening.schema.json");
    let text = serde_json::to_string_pretty(&hardening_check::schema::generate()).expect("json");
    std::fs::write(&schema, text).expect("written");
    let cases = [
        (
            "valid.yaml",
            "defaults:\n  rate_limit: { name: api, limit: 100, window: 15m }\n  cors: { allow_origins: [https://app.example.com] }\nroutes:\n  - match: { path: \"/users/{id}\", methods: [GET] }\n    validate: { path_params: { id: { type: integer } } }\n",
            true,
            "",
        ),
        (
            "typo.yaml",
            "routes:\n  - match: { paht: /users }\n",
            false,
            "'paht' was unexpected",
        ),
        (
            "range.yaml",
            "defaults:\n  rate_limit: { limit: 5, window: 1m, ipv4_prefix: 33 }\n",
            false,
            "33 is greater than the maximum of 32",
        ),
    ];
    for (name, config, valid, expected) in cases {
        let file = dir.join(name);
        std::fs::write(&file, config).expect("written");
        let out = std::process::Command::new(&bin)
            .arg("--schemafile")
            .arg(&schema)
            .arg(&file)
            .output()
            .expect("check-jsonschema runs");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), valid, "{name}:\n{output}");
        assert!(
            output.contains(expected),
            "{name}: no `{expected}` in\n{output}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
