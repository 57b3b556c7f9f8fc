//! What the bucket and Firestore seeds share: reading a seed folder, the error type with its
//! hints, the progress events, and an HTTP client with room for large uploads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why seeding an emulator failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{service}: {message}")]
    Api { service: String, message: String },
    /// Loading SQL seed files.
    #[error(transparent)]
    Sql(#[from] crate::migrate::MigrateError),
}

impl SeedError {
    /// The message alone: what the store's API said, without naming the service (for callers
    /// that name it themselves).
    pub fn into_message(self) -> String {
        match self {
            SeedError::Api { message, .. } => message,
            other => other.to_string(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SeedError::Read { .. } => Some("check the paths under [seed] in vibedev.toml".into()),
            SeedError::Invalid { .. } => Some("fix the file named above".into()),
            SeedError::Api { service, .. } => Some(format!(
                "check that {service} is running (`vibedev status`) and see `vibedev logs {service}`"
            )),
            SeedError::Sql(e) => e.hint(),
        }
    }

    pub(crate) fn api(service: &str, message: impl Into<String>) -> SeedError {
        SeedError::Api {
            service: service.to_string(),
            message: message.into(),
        }
    }

    /// The same error, naming the service as the stack calls it.
    pub fn for_service(self, name: &str) -> SeedError {
        match self {
            SeedError::Api { message, .. } => SeedError::Api {
                service: name.to_string(),
                message,
            },
            other => other,
        }
    }
}

/// One thing a seed did, as it happens.
#[derive(Debug, Clone)]
pub enum SeedEvent {
    Uploaded {
        bucket: String,
        object: String,
    },
    Deleted {
        bucket: String,
        object: String,
    },
    Written {
        document: String,
    },
    /// An SQL seed file's progress.
    Sql(crate::migrate::Progress),
}

/// The seed progress callback.
pub type SeedReporter = Arc<dyn Fn(SeedEvent) + Send + Sync>;

/// A client for seeding: no proxy, and time enough for large files.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default()
}

/// The files under `dir` (recursively, sorted), as paths relative to it with `/` separators.
/// Hidden files and folders (`.gitkeep`, `.DS_Store`) are skipped.
pub fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>, SeedError> {
    let mut out = Vec::new();
    walk_into(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

fn walk_into(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), SeedError> {
    let read_err = |source| SeedError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Follows symlinks, as `cp -r` users expect of a seed folder.
        if path.is_dir() {
            walk_into(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Reads a response's body for an error message.
/// `Ok` for a successful answer, else [`failure`]'s message.
pub(crate) async fn succeeded(what: &str, resp: reqwest::Response) -> Result<(), String> {
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(failure(what, resp).await)
    }
}

pub(crate) async fn failure(what: &str, resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(300).collect();
    if body.is_empty() {
        format!("{what} answered {status}")
    } else {
        format!("{what} answered {status}: {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_nested_files_sorted_without_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("b/c/x.txt"), "x").unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".gitkeep"), "").unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "").unwrap();
        let names: Vec<String> = walk(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a.json", "b/c/x.txt"]);
    }

    #[test]
    fn walk_of_a_missing_folder_names_it() {
        let err = walk(Path::new("/nonexistent/seed")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/seed"));
    }
}
