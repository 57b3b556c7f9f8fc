//! What a kind's snapshot code is given and gives back: the folder its files go in, a way to run
//! a program inside the service's container, and a count of what it saved or restored. The
//! caller (`crate::snapshot`) owns storage, manifests, checksums and locking; a kind only moves
//! its data between its store and its folder. Free of Docker plumbing.

use std::path::Path;

use futures_util::future::BoxFuture;

/// What a program run inside the service's container printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs a program inside the service's container (its `env` reaches the program only, never
/// its command line).
pub trait ContainerExec: Send + Sync {
    fn exec<'a>(
        &'a self,
        cmd: Vec<String>,
        env: Vec<String>,
    ) -> BoxFuture<'a, Result<ExecOutput, String>>;
}

/// Where one store's part of a snapshot lives, and how to reach inside its container.
pub struct SnapshotIo<'a> {
    /// The store's own folder in the snapshot (created and empty on save).
    pub dir: &'a Path,
    pub exec: &'a dyn ContainerExec,
}

/// How much a store's part of a snapshot holds: `count` of `unit` (`12 tables`, `3 keys`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    pub count: u64,
    pub unit: String,
}

impl Counted {
    pub fn new(count: u64, unit: &str) -> Counted {
        Counted {
            count,
            unit: unit.to_string(),
        }
    }
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Units are plural nouns (`tables`, `keys`): one of them drops the `s`.
        match (self.count, self.unit.strip_suffix('s')) {
            (1, Some(one)) => write!(f, "1 {one}"),
            _ => write!(f, "{} {}", self.count, self.unit),
        }
    }
}

/// Reads a file of the snapshot, naming it in the error.
pub fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes a file of the snapshot, naming it in the error.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a JSON file of the snapshot.
pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, String> {
    let bytes = read(dir, name)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} in the snapshot is not what vibedev wrote: {e}", name))
}

/// Where a restore of the store `store` reaches keeps aside `what` it is about to replace, so a
/// failure or Ctrl-C can put it back: `restore-undo/<host>_<port>-<what>` in the user's data
/// folder, one per server (`None` without a data folder: the restore then keeps nothing aside).
pub fn undo_path(store: &super::Store<'_>, what: &str) -> Option<std::path::PathBuf> {
    let server: String = format!("{}-{}", store.host, store.port)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(
        crate::dirs::data_dir()?
            .join("restore-undo")
            .join(format!("{server}-{what}")),
    )
}

/// Writes `bytes` to `path` whole (see [`crate::envfile::write_atomic`]), its folder made
/// private first.
pub fn write_aside(path: &Path, bytes: &[u8]) -> Result<(), String> {
    path.parent()
        .map_or(Ok(()), crate::dirs::create_private)
        .and_then(|()| crate::envfile::write_atomic(path, bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes a JSON file of the snapshot.
pub fn write_json<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| format!("cannot encode {name}: {e}"))?;
    write(dir, name, &bytes)
}
