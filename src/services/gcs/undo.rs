//! What a bucket restore is about to overwrite or delete, kept aside before it changes anything:
//! the objects as they were (bytes and metadata), the objects and buckets it adds and the
//! buckets it removes. A failure, or Ctrl-C (through `snapshot_abandon`), puts the buckets back
//! as they were from it. It lives in the user's data folder, one per server, and is removed
//! once the restore is done or undone; one a killed vibedev left is dropped by the next restore
//! of that server (which then makes the buckets the snapshot's anyway).

use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};

use super::{CONCURRENCY, SavedObject, message};
use crate::services::Store;

/// The record of what to put back.
const JOURNAL: &str = "undo.json";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Journal {
    /// Objects as they were before the restore; their bytes are in the folder's `file`s.
    pub saved: Vec<SavedObject>,
    /// Objects the restore writes where there was none (bucket, name): deleted again.
    pub added: Vec<(String, String)>,
    /// Buckets the restore creates: emptied and removed again.
    pub created_buckets: Vec<String>,
    /// Buckets the restore removes: made again (their objects are among `saved`).
    pub removed_buckets: Vec<String>,
}

/// The undo folder of the server `store` reaches (`None` without a data folder: the restore
/// then runs without one, as before).
pub(super) fn folder(store: &Store<'_>) -> Option<PathBuf> {
    crate::services::snapshot::undo_path(store, "buckets")
}

/// Removes what an earlier, killed restore of this server left.
pub(super) fn clear(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Downloads the objects `to_save` (bucket, name, listed item) into `dir` and writes the
/// journal last: the buckets are changed only once it is complete.
pub(super) async fn prepare(
    client: &reqwest::Client,
    base: &str,
    dir: &Path,
    to_save: Vec<(String, String, serde_json::Value)>,
    mut journal: Journal,
) -> Result<(), String> {
    clear(dir);
    crate::dirs::create_private(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let results: Vec<Result<SavedObject, String>> = stream::iter(to_save.into_iter().enumerate())
        .map(|(i, (bucket, name, item))| async move {
            let bytes = super::download(client, base, &bucket, &name).await?;
            let file = format!("objects/{i}");
            crate::services::snapshot::write(dir, &file, &bytes)?;
            Ok(SavedObject {
                resource: super::kept_metadata(&item),
                bucket,
                name,
                file,
                size: bytes.len() as u64,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    journal.saved = results.into_iter().collect::<Result<_, _>>()?;
    let bytes =
        serde_json::to_vec(&journal).map_err(|e| format!("cannot encode {JOURNAL}: {e}"))?;
    crate::services::snapshot::write_aside(&dir.join(JOURNAL), &bytes)
}

/// Puts the buckets back as the journal in `dir` says they were, then removes `dir`. Nothing to
/// do without a journal (the restore had not changed anything yet).
pub(super) async fn rollback(store: &Store<'_>, dir: &Path) -> Result<(), String> {
    let journal: Journal = match std::fs::read(dir.join(JOURNAL)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} does not read: {e}", dir.join(JOURNAL).display()))?,
        Err(_) => {
            clear(dir);
            return Ok(());
        }
    };
    let client = crate::services::seed::http_client();
    let client = &client;
    let base = &store.base_url();
    for bucket in &journal.removed_buckets {
        super::create_bucket(client, base, store.gcp_project, bucket).await?;
    }
    let deletes: Vec<Result<(), String>> = stream::iter(journal.added.iter().cloned())
        .map(|(bucket, name): (String, String)| async move {
            super::delete_object(client, base, &bucket, &name)
                .await
                .map_err(message)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    deletes.into_iter().collect::<Result<Vec<_>, _>>()?;
    let saved = &journal.saved;
    let uploads: Vec<Result<(), String>> = stream::iter(0..saved.len())
        .map(|i: usize| async move {
            let bytes = crate::services::snapshot::read(dir, &saved[i].file)?;
            super::upload_with_metadata(client, base, &saved[i], bytes).await
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    uploads.into_iter().collect::<Result<Vec<_>, _>>()?;
    let silent: crate::services::seed::SeedReporter = std::sync::Arc::new(|_| {});
    for bucket in &journal.created_buckets {
        super::empty_bucket(client, base, bucket, &silent)
            .await
            .map_err(message)?;
        super::delete_bucket(client, base, bucket).await?;
    }
    clear(dir);
    Ok(())
}
