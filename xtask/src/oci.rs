//! `cargo xtask oci`: `dist/hardening.wasm` as an OCI image that Istio (`WasmPlugin`, `url:
//! oci://...`) and Envoy Gateway (`EnvoyExtensionPolicy`, `code.type: Image`) pull.
//!
//! The image is the "compat" variant of the Wasm image conventions both fetchers implement
//! (istio/istio `pkg/wasm/imagefetcher.go`, envoyproxy/gateway `internal/wasm/imagefetcher.go`,
//! solo-io/wasm `spec/spec-compat.md`): an ordinary OCI image manifest with one
//! `application/vnd.oci.image.layer.v1.tar+gzip` layer holding the module as `plugin.wasm`.
//! Both fetchers accept it, and so does every OCI tool and registry, since none of its media
//! types is Wasm-specific. The other variant (the module raw, as an
//! `application/vnd.module.wasm.content.layer.v1+wasm` layer) must have exactly two layers in
//! both fetchers, and needs registries that take custom media types.
//!
//! Written as an OCI image layout (`dist/oci/`) and a tar of it (`dist/hardening-oci.tar`),
//! byte-for-byte reproducible: the same module gives the same digests. `--push REF` uploads the
//! same bytes (blobs and manifest as written, not re-serialised), so the registry's manifest
//! digest is the layout's.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{paths, wasm};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file both fetchers look for in the layer (`extractWasmPluginBinary`).
pub const MODULE_FILE_NAME: &str = "plugin.wasm";
/// solo-io/wasm `spec/spec-compat.md`: a compat image with an OCI tar+gzip layer "must add the
/// annotation `module.wasm.image/variant=compat` in the manifest".
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// The module's own sha256 (hex, as in `dist/hardening.wasm.sha256`), which the fetchers do not
/// check (they compare `sha256` fields with the manifest digest) but people and scripts can.
pub const MODULE_SHA256_ANNOTATION: &str = "envoy-hardening.wasm.sha256";
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Platform of the config, as Go's GOOS/GOARCH name a WASI preview 1 module (the image-spec asks
/// for GOOS/GOARCH values; the CNCF Wasm OCI artifact layout uses the same pair for modules).
pub const ARCHITECTURE: &str = "wasm";
pub const OS: &str = "wasip1";

/// One blob of the image: its bytes and the descriptor fields derived from them.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        Self {
            media_type,
            bytes,
            digest,
        }
    }

    /// The digest's hex part: the blob's file name under `blobs/sha256/`, and what `sha256` of
    /// a `WasmPlugin` or an `EnvoyExtensionPolicy` holds for the manifest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    fn descriptor(&self, annotations: BTreeMap<&'static str, String>) -> Descriptor {
        Descriptor {
            media_type: self.media_type,
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            annotations,
        }
    }
}

/// The image: its three blobs and the layout's `index.json`.
#[derive(Debug, Clone)]
pub struct Image {
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
    pub index: Vec<u8>,
    /// The tag, the workspace version (`org.opencontainers.image.version`).
    pub version: String,
    /// The module's sha256 (hex).
    pub module_sha256: String,
}

/// What goes into the image besides the module.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub version: String,
    /// RFC 3339, `org.opencontainers.image.created` and the config's `created`.
    pub created: String,
}

impl ImageInfo {
    /// The workspace version, and `created` from `SOURCE_DATE_EPOCH` (reproducible-builds.org)
    /// or else the Unix epoch: a build time would change the digests on every run.
    pub fn from_env() -> crate::Result<Self> {
        let seconds = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(text) if !text.trim().is_empty() => text.trim().parse::<i64>().map_err(|e| {
                format!(
                    "SOURCE_DATE_EPOCH={text:?} is not whole seconds since 1970 ({e}); fix or \
                     unset it"
                )
            })?,
            _ => 0,
        };
        let created = chrono::DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("SOURCE_DATE_EPOCH={seconds} is out of range; unset it"))?
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            created,
        })
    }
}

// Structs rather than `serde_json::Value`: their fields serialise in declaration order whatever
// serde_json features other crates of the workspace turn on (`preserve_order` would reorder a
// map's keys and so change the digests).
#[derive(Serialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ImageConfig {
    created: String,
    architecture: &'static str,
    os: &'static str,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_json(value: &impl Serialize) -> crate::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| format!("cannot serialise the image's JSON: {e}"))
}

/// A tar with one regular file, with everything but its name and bytes fixed (mode 0644, owner
/// 0:0, mtime 0), so that the same bytes give the same archive.
fn single_file_tar(name: &str, bytes: &[u8]) -> crate::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    append_file(&mut archive, name, bytes)?;
    archive
        .into_inner()
        .map_err(|e| format!("cannot finish the tar of {name}: {e}"))
}

fn append_file(archive: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) -> crate::Result<()> {
    let mut header = fixed_header(tar::EntryType::Regular, 0o644);
    header.set_size(bytes.len() as u64);
    archive
        .append_data(&mut header, name, bytes)
        .map_err(|e| format!("cannot add {name} to a tar: {e}"))
}

fn append_dir(archive: &mut tar::Builder<Vec<u8>>, name: &str) -> crate::Result<()> {
    let mut header = fixed_header(tar::EntryType::Directory, 0o755);
    header.set_size(0);
    archive
        .append_data(&mut header, name, std::io::empty())
        .map_err(|e| format!("cannot add {name} to a tar: {e}"))
}

fn fixed_header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// gzip without a file name and with mtime 0 (and flate2's fixed "unknown" OS byte), so that
/// the same tar gives the same layer digest.
fn gzip(bytes: &[u8]) -> crate::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("cannot gzip the layer: {e}"))
}

impl Image {
    /// The image of `module`: layer, config, manifest and the layout's index, in memory.
    pub fn build(module: &[u8], info: &ImageInfo) -> crate::Result<Self> {
        let layer_tar = single_file_tar(MODULE_FILE_NAME, module)?;
        let layer = Blob::new(LAYER_MEDIA_TYPE, gzip(&layer_tar)?);
        let config = Blob::new(
            CONFIG_MEDIA_TYPE,
            to_json(&ImageConfig {
                created: info.created.clone(),
                architecture: ARCHITECTURE,
                os: OS,
                rootfs: RootFs {
                    kind: "layers",
                    // diff_ids name the layer uncompressed (image-spec config.md).
                    diff_ids: vec![format!("sha256:{}", sha256_hex(&layer_tar))],
                },
            })?,
        );
        let manifest = Blob::new(
            MANIFEST_MEDIA_TYPE,
            to_json(&Manifest {
                schema_version: 2,
                media_type: MANIFEST_MEDIA_TYPE,
                config: config.descriptor(BTreeMap::new()),
                layers: vec![layer.descriptor(BTreeMap::new())],
                annotations: manifest_annotations(module, info),
            })?,
        );
        let index = to_json(&Index {
            schema_version: 2,
            media_type: INDEX_MEDIA_TYPE,
            manifests: vec![manifest.descriptor(BTreeMap::from([(
                REF_NAME_ANNOTATION,
                info.version.clone(),
            )]))],
        })?;
        Ok(Self {
            layer,
            config,
            manifest,
            index,
            version: info.version.clone(),
            module_sha256: sha256_hex(module),
        })
    }

    /// The layout's files, relative to its root, in the order the tar lists them.
    pub fn layout_files(&self) -> Vec<(String, &[u8])> {
        let mut files: Vec<(String, &[u8])> = vec![
            ("oci-layout".into(), OCI_LAYOUT),
            ("index.json".into(), &self.index),
        ];
        for blob in [&self.config, &self.layer, &self.manifest] {
            files.push((format!("blobs/sha256/{}", blob.hex()), &blob.bytes));
        }
        files
    }
}

/// The image-spec's `oci-layout` file (image-layout.md).
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn manifest_annotations(module: &[u8], info: &ImageInfo) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (VARIANT_ANNOTATION, "compat".to_string()),
        (MODULE_SHA256_ANNOTATION, sha256_hex(module)),
        ("org.opencontainers.image.created", info.created.clone()),
        (
            "org.opencontainers.image.licenses",
            env!("CARGO_PKG_LICENSE").to_string(),
        ),
        ("org.opencontainers.image.title", "hardening".to_string()),
        ("org.opencontainers.image.version", info.version.clone()),
    ])
}

/// Writes `image` as an OCI image layout in `dir` (replacing what was there, so that no blob of
/// an older build lingers) and as a tar of the same files at `archive`.
pub fn write(image: &Image, dir: &Path, archive: &Path) -> crate::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    for (name, bytes) in image.layout_files() {
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let tar = layout_tar(image)?;
    fs::write(archive, tar).map_err(|e| format!("cannot write {}: {e}", archive.display()))
}

/// The layout as a tar (what `skopeo copy oci-archive:...` reads), directories first.
fn layout_tar(image: &Image) -> crate::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    append_dir(&mut archive, "blobs/")?;
    append_dir(&mut archive, "blobs/sha256/")?;
    for (name, bytes) in image.layout_files() {
        append_file(&mut archive, &name, bytes)?;
    }
    archive
        .into_inner()
        .map_err(|e| format!("cannot finish the layout's tar: {e}"))
}

/// `dist/oci/`.
pub fn layout_dir() -> PathBuf {
    paths::dist().join("oci")
}

/// `dist/hardening-oci.tar`.
pub fn archive_path() -> PathBuf {
    paths::dist().join("hardening-oci.tar")
}

/// Builds the image of `module_path` into `dir` and `archive`.
pub fn package(module_path: &Path, dir: &Path, archive: &Path) -> crate::Result<Image> {
    let module =
        fs::read(module_path).map_err(|e| format!("cannot read {}: {e}", module_path.display()))?;
    let image = Image::build(&module, &ImageInfo::from_env()?)?;
    write(&image, dir, archive)?;
    Ok(image)
}

/// Options of `cargo xtask oci`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--push REF`: the registry reference to push to.
    pub push: Option<String>,
    /// `--insecure`: plain HTTP to the registry (always so for localhost).
    pub insecure: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> crate::Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--push" => {
                    let reference = args
                        .next()
                        .ok_or("--push needs a reference: --push registry.example.com/hardening")?;
                    options.push = Some(reference.clone());
                }
                "--insecure" => options.insecure = true,
                other => {
                    return Err(format!(
                        "unknown argument `{other}` for `oci`; it takes [--push REF] [--insecure]"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// `cargo xtask oci`: builds the module when stale, writes the layout and its tar, and pushes
/// when asked.
pub fn run(options: &Options) -> crate::Result<()> {
    let module_path = wasm::ensure(&wasm::FILTER)?;
    let (dir, archive) = (layout_dir(), archive_path());
    let image = package(&module_path, &dir, &archive)?;
    println!("layout   {} (tag {})", dir.display(), image.version);
    println!("archive  {}", archive.display());
    // The digest that `sha256` of a WasmPlugin or an EnvoyExtensionPolicy image is compared with.
    println!("manifest {}", image.manifest.digest);
    println!("module   sha256:{}", image.module_sha256);
    if let Some(reference) = &options.push {
        let pushed = push(&image, reference, options.insecure)?;
        println!("pushed   {pushed}");
    }
    Ok(())
}

/// Pushes `image` to `reference` (`registry/repository[:tag]`; without a tag, the version is the
/// tag) and returns `registry/repository:tag@sha256:<manifest digest>`. Plain HTTP with
/// `insecure` or to a registry on localhost; credentials from `OCI_USERNAME` and `OCI_PASSWORD`,
/// else anonymous.
pub fn push(image: &Image, reference: &str, insecure: bool) -> crate::Result<String> {
    let reference = tagged_reference(reference, &image.version)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime for the push: {e}"))?;
    runtime.block_on(push_blobs_and_manifest(image, &reference, insecure))?;
    Ok(format!("{}@{}", reference.whole(), image.manifest.digest))
}

/// `reference` parsed, with the version as its tag when it names none (never `latest` by
/// default). A digest is refused: a push names a tag, and the digest is the manifest's.
pub fn tagged_reference(reference: &str, version: &str) -> crate::Result<Reference> {
    let last_segment = reference.rsplit('/').next().unwrap_or(reference);
    if last_segment.contains('@') {
        return Err(format!(
            "--push {reference}: give a tag (or none, for {version}), not a digest; the digest \
             is the manifest's"
        ));
    }
    let tagged = if last_segment.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:{version}")
    };
    tagged.parse::<Reference>().map_err(|e| {
        format!(
            "--push {reference}: not an image reference ({e}); write it as \
             registry.example.com/hardening:{version}"
        )
    })
}

async fn push_blobs_and_manifest(
    image: &Image,
    reference: &Reference,
    insecure: bool,
) -> crate::Result<()> {
    let client = registry_client(reference, insecure)?;
    let auth = registry_auth()?;
    let failed = |step: &str, e: OciDistributionError| {
        format!(
            "{step} at {reference} failed: {}; check the reference, the credentials \
             (OCI_USERNAME, OCI_PASSWORD) and, for a plain-HTTP registry, --insecure",
            error_chain(&e)
        )
    };
    client
        .auth(reference, &auth, RegistryOperation::Push)
        .await
        .map_err(|e| failed("logging in", e))?;
    for blob in [&image.layer, &image.config] {
        client
            .push_blob(reference, blob.bytes.clone(), &blob.digest)
            .await
            .map_err(|e| failed(&format!("uploading the blob {}", blob.media_type), e))?;
    }
    // The manifest's own bytes, so that the registry stores (and digests) what the layout has.
    client
        .push_manifest_raw(
            reference,
            image.manifest.bytes.clone(),
            HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
        )
        .await
        .map_err(|e| failed("uploading the manifest", e))?;
    Ok(())
}

/// `error` and its sources on one line (reqwest's own message leaves out why a request failed).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An OCI client for `reference`'s registry: HTTPS, or plain HTTP when `insecure` or local.
pub fn registry_client(reference: &Reference, insecure: bool) -> crate::Result<Client> {
    // reqwest is built without a crypto provider; ring is the process-wide one. rustls 0.23.48
    // deprecates ring's provider for lacking post-quantum key exchange, which aws-lc-rs has, but
    // aws-lc-sys needs cmake and clang to build; a push to a registry does without it. An error
    // only says that a provider is already installed.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if insecure || is_local(reference.registry()) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let config = ClientConfig {
        protocol,
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| format!("cannot create the OCI client: {e}"))
}

/// A registry on this machine (`localhost`, `127.x.x.x`, `[::1]`, with or without a port).
fn is_local(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Basic credentials from `OCI_USERNAME` and `OCI_PASSWORD` when both are set, anonymous when
/// neither is.
pub fn registry_auth() -> crate::Result<RegistryAuth> {
    let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match (read("OCI_USERNAME"), read("OCI_PASSWORD")) {
        (Some(user), Some(password)) => Ok(RegistryAuth::Basic(user, password)),
        (None, None) => Ok(RegistryAuth::Anonymous),
        _ => Err("set both OCI_USERNAME and OCI_PASSWORD, or neither (anonymous)".to_string()),
    }
}
