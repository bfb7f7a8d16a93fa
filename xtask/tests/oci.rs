//! `cargo xtask oci`: the image layout, checked against the OCI image specification (its JSON
//! schemas, vendored in tests/fixtures/oci-image-spec, and the rules the schemas cannot state:
//! digests and sizes equal to the blobs, diff_ids of the uncompressed layer), the layer holding
//! the real module as `plugin.wasm` (what Istio's and Envoy Gateway's fetchers extract),
//! reproducibility, and a push to a real registry (Debian's docker-registry) pulled back.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonschema::{Draft, Retrieve, Uri, Validator};
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use xtask::oci::{self, Image};

/// A directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("xtask-oci-{label}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn module_path() -> PathBuf {
    xtask::wasm::ensure(&xtask::wasm::FILTER).expect("build dist/hardening.wasm")
}

/// Builds the image of the real module into `dir/oci` and `dir/hardening-oci.tar`.
fn package_into(dir: &Path) -> Image {
    oci::package(
        &module_path(),
        &dir.join("oci"),
        &dir.join("hardening-oci.tar"),
    )
    .expect("package the OCI image")
}

/// Resolves the schemas' `$ref`s to the vendored files by file name, whatever base URI the
/// schemas' `id`s give them; nothing is fetched.
struct VendoredSchemas;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci-image-spec")
}

fn read_fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Retrieve for VendoredSchemas {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path.rsplit('/').next().unwrap_or(path);
        let file = fixtures_dir().join(name);
        if !file.is_file() {
            return Err(format!("{uri} is not a vendored schema").into());
        }
        Ok(read_fixture(name))
    }
}

fn validator(schema_file: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .with_retriever(VendoredSchemas)
        .should_validate_formats(true)
        .build(&read_fixture(schema_file))
        .unwrap_or_else(|e| panic!("compile {schema_file}: {e}"))
}

fn assert_valid(schema_file: &str, what: &str, document: &Value) {
    let errors: Vec<String> = validator(schema_file)
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} breaks {schema_file}: {errors:?}\n{document:#}"
    );
}

fn json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"))
}

/// The blob a descriptor names, read from the layout, after checking that its digest and size
/// are the blob's (image-spec descriptor.md).
fn blob_of(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("descriptor digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
    assert_eq!(oci::sha256_hex(&bytes), hex, "digest of {digest}");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "size of {digest}"
    );
    bytes
}

/// The entries of a tar+gzip layer: (path, header, bytes).
fn layer_entries(layer: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut entries = Vec::new();
    for entry in archive.entries().expect("read the layer as tar+gzip") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("entry path").display().to_string();
        let header = entry.header().clone();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry bytes");
        entries.push((path, header, bytes));
    }
    entries
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip the layer");
    out
}

/// Asserts that the layer holds `module` as `plugin.wasm`, its only entry, with fixed metadata.
fn assert_layer_is_the_module(layer: &[u8], module: &[u8]) {
    let entries = layer_entries(layer);
    let names: Vec<&str> = entries.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names, [oci::MODULE_FILE_NAME], "the layer's entries");
    let (_, header, bytes) = &entries[0];
    assert!(
        bytes == module,
        "plugin.wasm differs from dist/hardening.wasm"
    );
    assert_eq!(header.entry_type(), tar::EntryType::Regular);
    assert_eq!(header.mode().ok(), Some(0o644));
    assert_eq!((header.uid().ok(), header.gid().ok()), (Some(0), Some(0)));
    assert_eq!(header.mtime().ok(), Some(0));
}

/// Files under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).expect("read a layout dir") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                found.insert(relative.display().to_string());
            }
        }
    }
    found
}

fn unpack(archive: &Path, into: &Path) {
    let file = fs::File::open(archive).expect("open the layout's tar");
    tar::Archive::new(file)
        .unpack(into)
        .expect("unpack the layout's tar");
}

/// Follows `oci-layout` and `index.json` of the layout at `layout` to the manifest, checking
/// both against the spec; returns the manifest's descriptor in the index.
fn check_layout_root(layout: &Path, image: &Image) -> Value {
    let oci_layout = json(
        &fs::read(layout.join("oci-layout")).expect("oci-layout"),
        "oci-layout",
    );
    assert_valid("image-layout-schema.json", "oci-layout", &oci_layout);
    assert_eq!(
        oci_layout,
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );

    let index = json(
        &fs::read(layout.join("index.json")).expect("index.json"),
        "index.json",
    );
    assert_valid("image-index-schema.json", "index.json", &index);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], oci::INDEX_MEDIA_TYPE);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "one image in the layout");
    let entry = &manifests[0];
    assert_eq!(entry["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(entry["digest"], image.manifest.digest.as_str());
    assert_eq!(
        entry["annotations"][oci::REF_NAME_ANNOTATION],
        env!("CARGO_PKG_VERSION"),
        "the index names the image by the version tag"
    );
    entry.clone()
}

/// Checks the manifest (schema, fields, annotations) and returns it.
fn check_manifest(bytes: &[u8], module: &[u8]) -> Value {
    let manifest = json(bytes, "the manifest");
    assert_valid("image-manifest-schema.json", "the manifest", &manifest);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], oci::CONFIG_MEDIA_TYPE);
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "the compat variant has exactly one layer");
    assert_eq!(layers[0]["mediaType"], oci::LAYER_MEDIA_TYPE);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations[oci::VARIANT_ANNOTATION], "compat");
    assert_eq!(
        annotations[oci::MODULE_SHA256_ANNOTATION],
        oci::sha256_hex(module)
    );
    assert_eq!(
        annotations["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(annotations["org.opencontainers.image.title"], "hardening");
    let created = annotations["org.opencontainers.image.created"]
        .as_str()
        .expect("created");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "created {created:?} is RFC 3339"
    );
    manifest
}

/// Checks the config (schema, platform, diff_ids of the uncompressed layer).
fn check_config(bytes: &[u8], manifest: &Value, layer: &[u8]) {
    let config = json(bytes, "the config");
    assert_valid("config-schema.json", "the config", &config);
    assert_eq!(config["architecture"], oci::ARCHITECTURE);
    assert_eq!(config["os"], oci::OS);
    assert_eq!(config["rootfs"]["type"], "layers");
    let diff_id = format!("sha256:{}", oci::sha256_hex(&gunzip(layer)));
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([diff_id]));
    assert_eq!(
        config["created"], manifest["annotations"]["org.opencontainers.image.created"],
        "one creation time"
    );
}

#[test]
fn the_layout_follows_the_image_spec_and_its_layer_is_the_module() {
    let work = TempDir::new("layout");
    let image = package_into(&work.0);
    let module = fs::read(module_path()).expect("read dist/hardening.wasm");

    // The tar unpacks to the same files as the layout directory, and is read from there on.
    let unpacked = work.0.join("unpacked");
    unpack(&work.0.join("hardening-oci.tar"), &unpacked);
    let files = files_under(&unpacked);
    assert_eq!(
        files,
        files_under(&work.0.join("oci")),
        "the tar holds the layout"
    );
    let blobs: Vec<&String> = files.iter().filter(|f| f.starts_with("blobs/")).collect();
    assert_eq!(
        blobs.len(),
        3,
        "manifest, config and layer, nothing else: {blobs:?}"
    );

    let manifest_descriptor = check_layout_root(&unpacked, &image);
    let manifest_bytes = blob_of(&unpacked, &manifest_descriptor);
    let manifest = check_manifest(&manifest_bytes, &module);
    let layer = blob_of(&unpacked, &manifest["layers"][0]);
    let config = blob_of(&unpacked, &manifest["config"]);
    check_config(&config, &manifest, &layer);
    assert_layer_is_the_module(&layer, &module);

    // gzip header (RFC 1952): no file name (FLG 0) and MTIME 0, so the layer is reproducible.
    assert_eq!(&layer[..4], &[0x1f, 0x8b, 8, 0], "gzip, deflate, no flags");
    assert_eq!(&layer[4..8], &[0, 0, 0, 0], "gzip MTIME 0");
}

#[test]
fn two_builds_of_the_same_module_give_the_same_digests_and_bytes() {
    let (first, second) = (TempDir::new("first"), TempDir::new("second"));
    let a = package_into(&first.0);
    let b = package_into(&second.0);
    assert_eq!(a.manifest.digest, b.manifest.digest);
    assert_eq!(a.config.digest, b.config.digest);
    assert_eq!(a.layer.digest, b.layer.digest);
    let tar = |dir: &TempDir| fs::read(dir.0.join("hardening-oci.tar")).expect("the tar");
    assert!(tar(&first) == tar(&second), "the layout's tars differ");
}

/// Debian's docker-registry (distribution 2.8) serving a temp dir on a free loopback port;
/// killed when dropped, also when the test panics.
struct Registry {
    child: Child,
    address: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

impl Registry {
    fn start() -> Self {
        let program = xtask::process::ensure_program(
            "docker-registry",
            "docker-registry",
            "the OCI push test runs a local registry",
        )
        .unwrap_or_else(|e| panic!("cannot install the registry for the push test: {e}"));
        let dir = TempDir::new("registry");
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.0.join("config.yml");
        let storage = dir.0.join("storage");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {address}\n",
                storage.display()
            ),
        )
        .expect("write the registry's config");
        let log = dir.0.join("registry.log");
        let log_file = fs::File::create(&log).expect("create the registry's log");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log file"))
            .stderr(log_file)
            .spawn()
            .expect("start docker-registry");
        let registry = Self {
            child,
            address,
            log,
            _dir: dir,
        };
        registry.wait_until_ready();
        registry
    }

    /// Polls `GET /v2/` (the distribution API's version check) until it answers 200.
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.answers_v2() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        panic!(
            "docker-registry on {} did not answer /v2/ in 20 s; its log:\n{log}",
            self.address
        );
    }

    fn answers_v2(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.address) else {
            return false;
        };
        let request = format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }
}

/// Pulls `reference`'s manifest (its bytes and the registry's digest of them) and the layer that
/// `layer_digest_of` finds in it.
fn pull(
    reference: &Reference,
    layer_digest_of: impl Fn(&[u8]) -> String,
) -> (Vec<u8>, String, Vec<u8>) {
    let client = oci::registry_client(reference, false).expect("an OCI client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (manifest, digest) = client
            .pull_manifest_raw(
                reference,
                &RegistryAuth::Anonymous,
                &[oci::MANIFEST_MEDIA_TYPE],
            )
            .await
            .expect("pull the manifest back");
        let mut layer = Vec::new();
        client
            .pull_blob(reference, layer_digest_of(&manifest).as_str(), &mut layer)
            .await
            .expect("pull the layer back");
        (manifest.to_vec(), digest, layer)
    })
}

#[test]
fn push_to_a_local_registry_and_pull_the_same_image_back() {
    let registry = Registry::start();
    let work = TempDir::new("push");
    let image = package_into(&work.0);
    let module = fs::read(module_path()).expect("read dist/hardening.wasm");

    // No tag in the reference: the version is the tag. A loopback registry is plain HTTP.
    let pushed = oci::push(&image, &format!("{}/hardening", registry.address), false)
        .expect("push to the local registry");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        pushed,
        format!(
            "{}/hardening:{version}@{}",
            registry.address, image.manifest.digest
        )
    );

    let reference: Reference = format!("{}/hardening:{version}", registry.address)
        .parse()
        .expect("a reference");
    let layer_digest_of = |manifest: &[u8]| {
        let manifest = json(manifest, "the pulled manifest");
        manifest["layers"][0]["digest"]
            .as_str()
            .expect("layer digest")
            .to_string()
    };
    let (manifest, digest, layer) = pull(&reference, layer_digest_of);
    assert_eq!(
        digest, image.manifest.digest,
        "the registry's manifest digest is the layout's"
    );
    assert!(
        manifest == image.manifest.bytes,
        "the registry serves the layout's manifest bytes"
    );
    assert_eq!(
        format!("sha256:{}", oci::sha256_hex(&layer)),
        image.layer.digest
    );
    assert_layer_is_the_module(&layer, &module);
}
