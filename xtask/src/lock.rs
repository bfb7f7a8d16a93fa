use std::fs::{self, File};
use std::path::Path;

/// An exclusive lock on a file under `.work/locks`, held until dropped. Test binaries run in
/// parallel and each may try to build the wasm or install Envoy; the lock makes the second one
/// wait and then find the work done.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn acquire(name: &str) -> crate::Result<Self> {
        let dir = crate::paths::work().join("locks");
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(name);
        let file = open(&path)?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(Self { _file: file })
    }
}

fn open(path: &Path) -> crate::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}
