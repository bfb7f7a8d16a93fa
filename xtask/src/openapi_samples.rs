//! Real OpenAPI descriptions too large to vendor, fetched reproducibly for the tests: GitHub's
//! REST description (`api.github.com.json`, OpenAPI 3.0.3, 1,223 operations; what it exercises
//! is in docs/research/openapi.md) from one published npm package version, pinned by the sha256
//! of the tarball and of the file. Cached under `target/openapi-samples/`, so the network is
//! needed once per checkout (and again after `cargo clean`).
//!
//! Through npm rather than a URL: the machines reach the npm registry with its own client, and
//! `npm pack` fetches exactly one published version without installing anything. A missing npm
//! or a failed fetch is an error naming the command, never a skip: a test that skips quietly
//! checks nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::lock::FileLock;
use crate::process::{describe, run};

/// One file of a published npm package, pinned: the tarball `npm pack` writes and the member
/// taken from it, each with its sha256, so that a republished or damaged download is refused
/// instead of being tested against.
#[derive(Debug, Clone, Copy)]
struct NpmSample<'a> {
    /// What `npm pack` is given: `name@exact-version`.
    spec: &'a str,
    /// The tarball's name as `npm pack` writes it (`@scope/name` becomes `scope-name`).
    tarball: &'a str,
    tarball_sha256: &'a str,
    /// The file's path inside the tarball (npm puts everything under `package/`).
    member: &'a str,
    file_sha256: &'a str,
    /// The name the file is cached under, directly in the cache directory.
    file: &'a str,
}

/// GitHub's REST description as `@octokit/openapi` 23.0.2 publishes it.
const GITHUB: NpmSample<'static> = NpmSample {
    spec: "@octokit/openapi@23.0.2",
    tarball: "octokit-openapi-23.0.2.tgz",
    tarball_sha256: "71a18407dd5e8464f4e0525daf03deabbe65abd9287d6adc7b5d98f516cd0d0c",
    member: "package/generated/api.github.com.json",
    file_sha256: "829b4bebb19a53133289f7b0bc819f4f1118115821db2ca9f25e9ee995a7da2a",
    file: "api.github.com.json",
};

/// The cache, relative to the root: under `target/`, which git ignores and `cargo clean` empties.
const CACHE: &str = "target/openapi-samples";

/// The path of GitHub's REST description (`api.github.com.json` from `@octokit/openapi@23.0.2`),
/// fetched with npm into `root/target/openapi-samples/` unless a copy with the pinned sha256 is
/// already there. Safe to call from parallel tests and test processes.
pub fn github_description(root: &Path) -> crate::Result<PathBuf> {
    let cached = root.join(CACHE).join(GITHUB.file);
    if has_sha256(&cached, GITHUB.file_sha256) {
        return Ok(cached);
    }
    fetch(&GITHUB, &root.join(CACHE), &ensure_npm()?)
}

/// The `npm` to run, installing Debian's when there is none (machines have Node.js's own).
fn ensure_npm() -> crate::Result<String> {
    crate::process::ensure_program(
        "npm",
        "npm",
        "GitHub's description is fetched with `npm pack`",
    )
}

/// The sample's file in `dir`: the cached copy when its digest is the pinned one, else the
/// member extracted from the tarball, which `npm` packs unless a copy with the pinned digest is
/// already there (a damaged file then needs no network).
fn fetch(sample: &NpmSample, dir: &Path, npm: &str) -> crate::Result<PathBuf> {
    let file = dir.join(sample.file);
    if has_sha256(&file, sample.file_sha256) {
        return Ok(file);
    }
    let _lock = FileLock::acquire("openapi-samples")?;
    // Another test may have fetched it while this one waited for the lock.
    if has_sha256(&file, sample.file_sha256) {
        return Ok(file);
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tarball = dir.join(sample.tarball);
    if !has_sha256(&tarball, sample.tarball_sha256) {
        pack(sample, dir, npm)?;
        check_sha256(&tarball, sample.tarball_sha256)?;
    }
    let extracted = extract(sample, &tarball, dir)?;
    check_sha256(&extracted, sample.file_sha256)?;
    // Moved only once checked: a file under its final name always has the pinned digest.
    fs::rename(&extracted, &file).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            extracted.display(),
            file.display()
        )
    })?;
    Ok(file)
}

/// Runs `npm pack <spec> --pack-destination <dir> --silent`, which downloads the published
/// tarball into `dir` (through npm's own cache).
fn pack(sample: &NpmSample, dir: &Path, npm: &str) -> crate::Result<()> {
    let mut cmd = Command::new(npm);
    cmd.args(["pack", sample.spec, "--pack-destination"])
        .arg(dir)
        .arg("--silent");
    eprintln!("xtask: {}", describe(&cmd));
    run(&mut cmd).map_err(|e| {
        format!(
            "{e}: fetching {} needs npm (Node.js's client; Debian package npm) and the npm \
             registry",
            sample.spec
        )
    })
}

/// Extracts the one member into `dir` (as `dir/<member>`) with the system's tar, rather than
/// gzip and tar crates for one file.
fn extract(sample: &NpmSample, tarball: &Path, dir: &Path) -> crate::Result<PathBuf> {
    let mut cmd = Command::new("tar");
    cmd.arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(dir)
        .arg(sample.member);
    run(&mut cmd)?;
    Ok(dir.join(sample.member))
}

/// Refuses a file whose digest is not the pinned one, saying what to do.
fn check_sha256(path: &Path, expected: &str) -> crate::Result<()> {
    let actual = sha256_of(path)?;
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{} has sha256 {actual}, not the pinned {expected}: it is not the published file \
             the tests were written against; delete it to fetch it again, or pin the new \
             digest once the difference is understood",
            path.display()
        ))
    }
}

fn has_sha256(path: &Path, expected: &str) -> bool {
    sha256_of(path).is_ok_and(|actual| actual == expected)
}

/// The file's sha256 as lowercase hex, as `sha256sum` prints it.
fn sha256_of(path: &Path) -> crate::Result<String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths;

    /// A fresh directory under `target/xtask-tests/`.
    fn scratch(name: &str) -> PathBuf {
        let dir = paths::root().join("target/xtask-tests").join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    }

    #[test]
    fn digests_are_lowercase_hex_as_sha256sum_prints_them() {
        let dir = scratch("openapi-samples-digest");
        let file = dir.join("abc");
        fs::write(&file, "abc").expect("write");
        assert_eq!(
            sha256_of(&file).as_deref(),
            Ok("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let error = check_sha256(&file, GITHUB.file_sha256).expect_err("wrong digest");
        assert!(error.contains("not the pinned 829b4beb"), "{error}");
        assert!(!has_sha256(&dir.join("missing"), GITHUB.file_sha256));
    }

    #[test]
    fn a_missing_npm_is_an_error_naming_the_command() {
        let dir = scratch("openapi-samples-no-npm");
        let error = fetch(&GITHUB, &dir, "npm-missing-for-this-test").expect_err("no npm");
        assert!(
            error.starts_with(&format!(
                "cannot run npm-missing-for-this-test pack @octokit/openapi@23.0.2 \
                 --pack-destination {} --silent: ",
                dir.display()
            )),
            "{error}"
        );
        assert!(error.ends_with("and the npm registry"), "{error}");
    }

    /// The steps after `npm pack`, on a tarball made here: extraction, digests, the cache, and
    /// a damaged file taken again from the tarball; none of it runs npm.
    #[test]
    fn a_pinned_tarball_is_extracted_and_cached_without_npm() {
        let dir = scratch("openapi-samples-tarball");
        let content = r#"{"openapi":"3.0.3"}"#;
        fs::create_dir_all(dir.join("package/generated")).expect("mkdir");
        fs::write(dir.join("package/generated/sample.json"), content).expect("write");
        run(Command::new("tar")
            .arg("-czf")
            .arg(dir.join("sample-1.0.0.tgz"))
            .arg("-C")
            .arg(&dir)
            .arg("package"))
        .expect("tar");
        fs::remove_dir_all(dir.join("package")).expect("remove");
        let tarball_sha256 = sha256_of(&dir.join("sample-1.0.0.tgz")).expect("digest");
        fs::write(dir.join("expected"), content).expect("write");
        let file_sha256 = sha256_of(&dir.join("expected")).expect("digest");
        let sample = NpmSample {
            spec: "sample@1.0.0",
            tarball: "sample-1.0.0.tgz",
            tarball_sha256: &tarball_sha256,
            member: "package/generated/sample.json",
            file_sha256: &file_sha256,
            file: "sample.json",
        };
        let npm = "npm-missing-for-this-test";
        let cached = dir.join("sample.json");
        assert_eq!(fetch(&sample, &dir, npm), Ok(cached.clone()));
        assert_eq!(fs::read_to_string(&cached).ok().as_deref(), Some(content));
        assert_eq!(fetch(&sample, &dir, npm), Ok(cached.clone()));
        fs::write(&cached, "damaged").expect("write");
        assert_eq!(fetch(&sample, &dir, npm), Ok(cached.clone()));
        assert_eq!(fs::read_to_string(&cached).ok().as_deref(), Some(content));
    }
}
