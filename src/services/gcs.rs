//! fake-gcs-server (Cloud Storage's JSON API): health, buckets, seed objects (uploaded when
//! new or changed, compared by size and CRC32C; pruned where a command asks for it), and
//! snapshots (every bucket's objects with their bytes and metadata).

pub mod browse;
mod undo;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use futures_util::stream::{self, StreamExt};

use futures_util::future::BoxFuture;

use super::seed::{SeedError, SeedEvent, SeedReporter, failure, succeeded, walk};
use super::{
    BranchData, Counted, Emptied, FollowedBranch, SeedMode, SeedPaths, Seeded, ServiceKind,
    Settings, SettingsInput, SnapshotIo, Stage, Store, StoreMark, WaitFor,
};
use crate::branches::{OnBranch, bucket_name};
use crate::config::BranchesConfig;
use crate::ready::describe_reqwest;

/// The bucket the stack gets when `x-vibedev: buckets` names none.
pub const DEFAULT_BUCKET: &str = "vibesdk-templates";

/// fake-gcs-server (the app's Cloud Storage buckets).
pub struct Gcs;

impl ServiceKind for Gcs {
    fn name(&self) -> &'static str {
        "gcs"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["fake-gcs", "storage"]
    }

    fn settings(&self, input: &SettingsInput<'_>) -> Result<Settings, String> {
        Ok(Settings {
            buckets: input
                .x
                .buckets
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_BUCKET.into()]),
            ..Settings::default()
        })
    }

    /// Ready moments after its container starts: last.
    fn start_rank(&self, _fresh_data: bool) -> u8 {
        2
    }

    /// Its health endpoint; an older fake-gcs without one proves it serves the API by listing
    /// buckets.
    fn wait(&self) -> WaitFor {
        WaitFor::Http {
            paths: vec!["/_internal/healthcheck".into(), "/storage/v1/b".into()],
            body: None,
        }
    }

    /// Creates the stack's missing buckets once it answers (the default branch's: a branch's
    /// own are copies of them, made by [`ServiceKind::ensure_branch`]).
    fn prepare<'a>(
        &'a self,
        store: &'a Store<'a>,
        stage: Stage,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            if stage != Stage::Ready {
                return Ok(Vec::new());
            }
            let client = super::http_client();
            let base = store.base_url();
            let existing = list_buckets(&client, &base).await?;
            let mut created = Vec::new();
            for bucket in store.settings.default_buckets() {
                if existing.contains(bucket) {
                    continue;
                }
                create_bucket(&client, &base, store.gcp_project, bucket).await?;
                created.push(format!("bucket {bucket}"));
            }
            Ok(created)
        })
    }

    /// `[branches] bucket`: each of the stack's buckets gets the branch's own, `<bucket>-<slug>`
    /// (see [`bucket_name`]).
    fn follow_branch(
        &self,
        config: &BranchesConfig,
        settings: &mut Settings,
        gcp_project: &str,
        on: &OnBranch,
    ) -> Option<String> {
        if !config.bucket {
            return None;
        }
        let default_buckets = settings.default_buckets().to_vec();
        settings.buckets = default_buckets
            .iter()
            .map(|b| bucket_name(b, &on.slug))
            .collect();
        settings.branch = Some(FollowedBranch {
            branch: on.branch.clone(),
            slug: on.slug.clone(),
            default_project: gcp_project.to_string(),
            default_buckets,
        });
        None
    }

    /// A branch's bucket is made the first time the branch is used, as a copy of the default
    /// branch's bucket (its objects copied on the server), empty when that one does not exist.
    /// Its record says first that the copy is being made, then that it was: a copy never
    /// finished (an interrupted first use) is made anew, and a bucket the branch emptied stays
    /// empty.
    fn ensure_branch<'a>(
        &'a self,
        store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let Some(branch) = &store.settings.branch else {
                return Ok(Vec::new());
            };
            let client = super::http_client();
            let base = store.base_url();
            let existing = list_buckets(&client, &base).await?;
            let recorded = record_names(&client, &base, &existing).await?;
            let mut made = Vec::new();
            for (source, bucket) in branch.default_buckets.iter().zip(&store.settings.buckets) {
                let mut record = Record {
                    branch: branch.branch.clone(),
                    slug: branch.slug.clone(),
                    source: source.clone(),
                    copying: true,
                };
                // Only this branch's own records are read (a request each), not every branch's.
                let is_recorded = recorded.contains(bucket);
                let interrupted = is_recorded
                    && read_record(&client, &base, bucket)
                        .await?
                        .is_some_and(|r| r.copying);
                if existing.contains(bucket) && !interrupted {
                    // Made, or made before records were kept: recorded as made.
                    if !is_recorded {
                        record.copying = false;
                        write_record(&client, &base, store.gcp_project, bucket, &record).await?;
                    }
                    continue;
                }
                // Recorded before it is made: a branch's bucket is always found by `branch ls`,
                // and one never finished is known.
                write_record(&client, &base, store.gcp_project, bucket, &record).await?;
                if interrupted && existing.contains(bucket) {
                    let silent: SeedReporter = std::sync::Arc::new(|_| {});
                    empty_bucket(&client, &base, bucket, &silent)
                        .await
                        .map_err(message)?;
                }
                create_bucket(&client, &base, store.gcp_project, bucket).await?;
                let anew = if interrupted {
                    " anew (the copy begun before was interrupted)"
                } else {
                    ""
                };
                let what = if existing.contains(source) {
                    let copied = copy_objects(&client, &base, source, bucket).await?;
                    format!(
                        "bucket {bucket}{anew} (a copy of {source}: {})",
                        Counted::new(copied as u64, "objects")
                    )
                } else {
                    format!("bucket {bucket}{anew} (empty: {source} does not exist)")
                };
                record.copying = false;
                write_record(&client, &base, store.gcp_project, bucket, &record).await?;
                made.push(what);
            }
            Ok(made)
        })
    }

    fn branch_data<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async move {
            if !config.bucket {
                return Ok(Vec::new());
            }
            let client = super::http_client();
            let base = store.base_url();
            let existing = list_buckets(&client, &base).await?;
            let mut held = Vec::new();
            for default in store.settings.default_buckets() {
                let bucket = bucket_name(default, slug);
                if !existing.contains(&bucket) {
                    continue;
                }
                let objects = list_objects(&client, &base, &bucket)
                    .await
                    .map_err(message)?;
                held.push(BranchData {
                    what: format!("bucket {bucket}"),
                    count: Counted::new(objects.len() as u64, "objects"),
                    bytes: Some(objects.iter().map(|o| o.size).sum()),
                });
            }
            Ok(held)
        })
    }

    /// The branches whose buckets vibedev recorded as made from this stack's.
    fn branch_marks<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<StoreMark>, String>> {
        Box::pin(async move {
            if !config.bucket {
                return Ok(Vec::new());
            }
            let client = super::http_client();
            let base = store.base_url();
            let existing = list_buckets(&client, &base).await?;
            let defaults = store.settings.default_buckets();
            Ok(list_records(&client, &base, &existing)
                .await?
                .into_iter()
                .filter(|(_, r)| defaults.contains(&r.source))
                .map(|(_, r)| StoreMark {
                    slug: r.slug,
                    branch: r.branch,
                })
                .collect())
        })
    }

    /// Deletes the branch's buckets with their objects, and then their records.
    fn remove_branch<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async move {
            let held = self.branch_data(config, store, slug).await?;
            let client = super::http_client();
            let base = store.base_url();
            let silent: SeedReporter = std::sync::Arc::new(|_| {});
            for default in store.settings.default_buckets() {
                let bucket = bucket_name(default, slug);
                if !held.iter().any(|h| h.what == format!("bucket {bucket}")) {
                    continue;
                }
                empty_bucket(&client, &base, &bucket, &silent)
                    .await
                    .map_err(message)?;
                delete_bucket(&client, &base, &bucket).await?;
            }
            let existing = list_buckets(&client, &base).await?;
            if existing.iter().any(|b| b == RECORDS_BUCKET) {
                for default in store.settings.default_buckets() {
                    let bucket = bucket_name(default, slug);
                    delete_object(&client, &base, RECORDS_BUCKET, &bucket)
                        .await
                        .map_err(message)?;
                }
            }
            Ok(held)
        })
    }

    fn url(&self, store: &Store<'_>, _with_password: bool) -> String {
        store.base_url()
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        let mut env = vec![("STORAGE_EMULATOR_HOST".to_string(), store.base_url())];
        if let Some(bucket) = store.settings.buckets.first() {
            env.push(("TEMPLATES_BUCKET".to_string(), bucket.clone()));
        }
        env
    }

    fn seed_name(&self) -> Option<&'static str> {
        Some("bucket")
    }

    fn seed_title(&self) -> &'static str {
        "bucket"
    }

    fn seed_setting(&self) -> &'static str {
        "bucket_dir = \"seed/bucket\""
    }

    fn seed_folder<'a>(&self, seeds: &'a SeedPaths) -> Option<&'a std::path::Path> {
        seeds.bucket_dir.as_deref()
    }

    fn seed<'a>(
        &'a self,
        store: &'a Store<'a>,
        seeds: &'a SeedPaths,
        mode: SeedMode,
        report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Seeded>, SeedError>> {
        Box::pin(async move {
            let Some(dir) = &seeds.bucket_dir else {
                return Ok(None);
            };
            let client = super::seed::http_client();
            let base = store.base_url();
            let bucket = seed_bucket_name(store, seeds);
            if mode == SeedMode::IfEmpty {
                // A bucket that does not exist yet is empty too (seeding creates it).
                let objects = list_objects(&client, &base, &bucket).await;
                if objects.is_ok_and(|o| !o.is_empty()) {
                    return Ok(None);
                }
            }
            let prune = mode == SeedMode::Exactly;
            let out = seed_bucket(
                &client,
                &base,
                store.gcp_project,
                &bucket,
                dir,
                prune,
                report,
            )
            .await
            .map_err(|e| e.for_service(store.service))?;
            Ok(Some(Seeded::Objects {
                bucket,
                uploaded: out.uploaded.len(),
                unchanged: out.unchanged,
                deleted: out.deleted.len(),
            }))
        })
    }

    /// Deletes every object of the stack's buckets, except the seed bucket when a seed will
    /// make it exact right after (`reseed`).
    fn empty<'a>(
        &'a self,
        store: &'a Store<'a>,
        reseed: Option<&'a SeedPaths>,
        report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Emptied>, SeedError>> {
        Box::pin(async move {
            let client = super::seed::http_client();
            let base = store.base_url();
            let keep = reseed
                .filter(|s| s.bucket_dir.is_some())
                .map(|s| seed_bucket_name(store, s));
            let mut emptied = Vec::new();
            for bucket in &store.settings.buckets {
                if keep.as_ref() == Some(bucket) {
                    continue;
                }
                let deleted = empty_bucket(&client, &base, bucket, report)
                    .await
                    .map_err(|e| e.for_service(store.service))?;
                emptied.push((bucket.clone(), deleted.len()));
            }
            Ok(Some(Emptied::Buckets(emptied)))
        })
    }

    fn snapshot_save<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async move {
            let index = save_objects(store, io.dir).await?;
            super::snapshot::write_json(io.dir, INDEX_FILE, &index)?;
            Ok(Some(Counted::new(index.objects.len() as u64, "objects")))
        })
    }

    fn snapshot_restore<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        Box::pin(async move {
            let saved: SnapshotIndex = super::snapshot::read_json(io.dir, INDEX_FILE)?;
            let index = saved.renamed(|b| this_branchs(store, b));
            restore_objects(store, &index, io.dir).await?;
            Ok(Counted::new(index.objects.len() as u64, "objects"))
        })
    }

    /// What it overwrites or deletes is kept aside first and put back when the restore fails or
    /// is stopped (see [`undo`]).
    fn snapshot_restore_in_one_step(&self) -> bool {
        true
    }

    /// A restore stopped midway (Ctrl-C): the buckets are put back from what it kept aside.
    fn snapshot_abandon<'a>(&'a self, store: &'a Store<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(dir) = undo::folder(store) {
                let _ = undo::rollback(store, &dir).await;
            }
        })
    }
}

/// vibedev's own bucket, holding one record per branch bucket made (named as that bucket): no
/// app uses it, and its `_` is in no branch's bucket name (`<bucket>-<slug>`, `_` as `-`). It
/// lives and goes with the buckets it describes.
pub const RECORDS_BUCKET: &str = "vibedev_branches";

/// What vibedev records about a branch's bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The git branch.
    branch: String,
    slug: String,
    /// The default branch's bucket it was made from.
    source: String,
    /// The copy was begun and is not known to be finished (records without it: made).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    copying: bool,
}

/// The branch buckets recorded (none while the records' bucket is not among `existing`).
async fn record_names(
    client: &reqwest::Client,
    base: &str,
    existing: &[String],
) -> Result<Vec<String>, String> {
    if !existing.iter().any(|b| b == RECORDS_BUCKET) {
        return Ok(Vec::new());
    }
    Ok(list_objects(client, base, RECORDS_BUCKET)
        .await
        .map_err(message)?
        .into_iter()
        .map(|o| o.name)
        .collect())
}

/// Every record of a branch bucket, each with the bucket's name (none while the records' bucket
/// is not among `existing`).
async fn list_records(
    client: &reqwest::Client,
    base: &str,
    existing: &[String],
) -> Result<Vec<(String, Record)>, String> {
    if !existing.iter().any(|b| b == RECORDS_BUCKET) {
        return Ok(Vec::new());
    }
    let objects = list_objects(client, base, RECORDS_BUCKET)
        .await
        .map_err(message)?;
    let mut records = Vec::new();
    for object in objects {
        if let Some(record) = read_record(client, base, &object.name).await? {
            records.push((object.name, record));
        }
    }
    Ok(records)
}

/// The record of branch bucket `bucket` (`None` for an object that is not a record).
async fn read_record(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
) -> Result<Option<Record>, String> {
    let bytes = download(client, base, RECORDS_BUCKET, bucket).await?;
    Ok(serde_json::from_slice(&bytes).ok())
}

async fn write_record(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    bucket: &str,
    record: &Record,
) -> Result<(), String> {
    create_bucket(client, base, project, RECORDS_BUCKET).await?;
    let bytes = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    let resp = client
        .post(format!(
            "{}/upload/storage/v1/b/{}/o",
            base.trim_end_matches('/'),
            super::encode(RECORDS_BUCKET)
        ))
        .query(&[("uploadType", "media"), ("name", bucket)])
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    succeeded(&format!("recording bucket {bucket} as the branch's"), resp).await
}

/// The snapshot's list of buckets and objects; each object's bytes are in `objects/<n>`.
const INDEX_FILE: &str = "index.json";

/// Object metadata a snapshot keeps (what an upload can set).
const KEPT_METADATA: [&str; 6] = [
    "contentType",
    "contentEncoding",
    "contentDisposition",
    "contentLanguage",
    "cacheControl",
    "metadata",
];

/// The buckets and objects of a snapshot, each bucket named as the default branch names it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SnapshotIndex {
    buckets: Vec<String>,
    objects: Vec<SavedObject>,
}

impl SnapshotIndex {
    /// The index with every bucket renamed by `rename`.
    fn renamed(mut self, rename: impl Fn(&str) -> String) -> SnapshotIndex {
        for bucket in &mut self.buckets {
            *bucket = rename(bucket);
        }
        for object in &mut self.objects {
            object.bucket = rename(&object.bucket);
        }
        self
    }
}

/// A bucket of the stack as the default branch names it (a branch's own bucket is saved under
/// its default name, so a snapshot restores into whichever branch the checkout is on, as the
/// database and the documents do); any other bucket as it is.
fn default_branchs(store: &Store<'_>, bucket: &str) -> String {
    let own = &store.settings.buckets;
    match own.iter().position(|b| b == bucket) {
        Some(i) => store.settings.default_buckets()[i].clone(),
        None => bucket.to_string(),
    }
}

/// The reverse of [`default_branchs`]: a default-branch bucket as the current branch names it.
fn this_branchs(store: &Store<'_>, bucket: &str) -> String {
    match store
        .settings
        .default_buckets()
        .iter()
        .position(|b| b == bucket)
    {
        Some(i) => store.settings.buckets[i].clone(),
        None => bucket.to_string(),
    }
}

/// The buckets on the server that are not this branch's to save or restore: other branches' own
/// (as recorded), the records' bucket, and on a branch the default branch's. The stack's own
/// buckets are never among them.
async fn others_buckets(
    client: &reqwest::Client,
    store: &Store<'_>,
    existing: &[String],
) -> Result<HashSet<String>, String> {
    let mut others: HashSet<String> = record_names(client, &store.base_url(), existing)
        .await?
        .into_iter()
        .collect();
    others.insert(RECORDS_BUCKET.to_string());
    others.extend(store.settings.default_buckets().iter().cloned());
    others.retain(|b| !store.settings.buckets.contains(b));
    Ok(others)
}

/// The buckets on the server that a snapshot of this branch covers.
async fn this_branchs_buckets(
    client: &reqwest::Client,
    store: &Store<'_>,
) -> Result<Vec<String>, String> {
    let existing = list_buckets(client, &store.base_url()).await?;
    let others = others_buckets(client, store, &existing).await?;
    Ok(existing
        .into_iter()
        .filter(|b| !others.contains(b))
        .collect())
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SavedObject {
    bucket: String,
    name: String,
    /// The file holding its bytes.
    file: String,
    size: u64,
    /// The metadata an upload sets again (`contentType`, `metadata`, ...).
    resource: serde_json::Map<String, serde_json::Value>,
}

/// Downloads every object of every bucket into `dir`, checking each against its listed CRC32C.
async fn save_objects(store: &Store<'_>, dir: &Path) -> Result<SnapshotIndex, String> {
    let client = super::seed::http_client();
    let base = &store.base_url();
    let buckets = this_branchs_buckets(&client, store).await?;
    let mut listed = Vec::new();
    for bucket in &buckets {
        for item in list_items(&client, base, bucket).await.map_err(message)? {
            listed.push((bucket.clone(), item));
        }
    }
    std::fs::create_dir_all(dir.join("objects"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let client = &client;
    let results: Vec<Result<SavedObject, String>> = stream::iter(listed.into_iter().enumerate())
        .map(|(i, (bucket, item))| async move {
            let name = item
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            let bytes = download(client, base, &bucket, &name).await?;
            if let Some(crc) = item.get("crc32c").and_then(|c| c.as_str())
                && crc32c_base64(&bytes) != crc
            {
                return Err(format!(
                    "{bucket}/{name} changed while it was being saved; save again"
                ));
            }
            let file = format!("objects/{i}");
            super::snapshot::write(dir, &file, &bytes)?;
            let resource = kept_metadata(&item);
            Ok(SavedObject {
                bucket,
                name,
                file,
                size: bytes.len() as u64,
                resource,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut objects = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    objects.sort_by(|a, b| (&a.bucket, &a.name).cmp(&(&b.bucket, &b.name)));
    Ok(SnapshotIndex { buckets, objects }.renamed(|b| default_branchs(store, b)))
}

/// The metadata of a listed object that a snapshot keeps.
fn kept_metadata(item: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    KEPT_METADATA
        .iter()
        .filter_map(|k| Some((k.to_string(), item.get(*k)?.clone())))
        .collect()
}

fn message(e: SeedError) -> String {
    e.into_message()
}

/// One object's bytes.
async fn download(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
    name: &str,
) -> Result<Vec<u8>, String> {
    let resp = client
        .get(objects_url(base, bucket, Some(name)).map_err(message)?)
        .query(&[("alt", "media")])
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if !resp.status().is_success() {
        return Err(failure(&format!("downloading {bucket}/{name}"), resp).await);
    }
    Ok(resp
        .bytes()
        .await
        .map_err(|e| describe_reqwest(&e))?
        .to_vec())
}

/// Makes the server hold exactly the snapshot's buckets and objects. Every object's bytes are
/// read before anything changes, and what the restore will overwrite or delete is kept aside
/// ([`undo`]); then objects are uploaded (replacing what has their name), objects the snapshot
/// lacks are deleted, and buckets it lacks are emptied (and removed unless the stack declares
/// them). A failure puts the buckets back as they were.
async fn restore_objects(
    store: &Store<'_>,
    index: &SnapshotIndex,
    dir: &Path,
) -> Result<(), String> {
    let mut uploads = Vec::with_capacity(index.objects.len());
    for (i, object) in index.objects.iter().enumerate() {
        let bytes = super::snapshot::read(dir, &object.file)?;
        if bytes.len() as u64 != object.size {
            return Err(format!(
                "{} in the snapshot is damaged: {} bytes, {} expected",
                object.file,
                bytes.len(),
                object.size
            ));
        }
        uploads.push((i, bytes));
    }
    let client = super::seed::http_client();
    let client = &client;
    let base = &store.base_url();
    let existing = this_branchs_buckets(client, store).await?;
    // Every object the server holds, by bucket and name.
    let mut held = HashMap::new();
    for bucket in &existing {
        for item in list_items(client, base, bucket).await.map_err(message)? {
            if let Some(name) = item.get("name").and_then(|n| n.as_str()) {
                held.insert((bucket.clone(), name.to_string()), item);
            }
        }
    }
    // What the server already holds byte for byte, with the same metadata, stays as it is.
    let objects = &index.objects;
    uploads.retain(|(i, bytes)| {
        let object = &objects[*i];
        !held
            .get(&(object.bucket.clone(), object.name.clone()))
            .is_some_and(|item| same_object(item, object, bytes))
    });
    let wanted: HashSet<(&str, &str)> = objects
        .iter()
        .map(|o| (o.bucket.as_str(), o.name.as_str()))
        .collect();
    let removed_buckets: Vec<String> = existing
        .iter()
        .filter(|b| !index.buckets.contains(b))
        .filter(|b| {
            !store.settings.buckets.contains(b) && !store.settings.default_buckets().contains(b)
        })
        .cloned()
        .collect();
    let created_buckets: Vec<String> = index
        .buckets
        .iter()
        .filter(|b| !existing.contains(b))
        .cloned()
        .collect();
    // Overwritten and deleted objects are kept aside first, so a failure can put them back.
    let mut to_save = Vec::new();
    let mut stale: HashMap<&str, Vec<String>> = HashMap::new();
    for ((bucket, name), item) in &held {
        let replaced = uploads
            .iter()
            .any(|(i, _)| objects[*i].bucket == *bucket && objects[*i].name == *name);
        let deleted = !wanted.contains(&(bucket.as_str(), name.as_str()));
        if deleted {
            stale.entry(bucket.as_str()).or_default().push(name.clone());
        }
        if replaced || deleted {
            to_save.push((bucket.clone(), name.clone(), item.clone()));
        }
    }
    let added = uploads
        .iter()
        .map(|(i, _)| (objects[*i].bucket.clone(), objects[*i].name.clone()))
        .filter(|key| !held.contains_key(key))
        .collect();
    let undo_dir = undo::folder(store);
    if let Some(dir) = &undo_dir {
        undo::prepare(
            client,
            base,
            dir,
            to_save,
            undo::Journal {
                added,
                created_buckets: created_buckets.clone(),
                removed_buckets: removed_buckets.clone(),
                ..Default::default()
            },
        )
        .await?;
    }
    let changed = async {
        for bucket in &created_buckets {
            create_bucket(client, base, store.gcp_project, bucket).await?;
        }
        let results: Vec<Result<(), String>> = stream::iter(uploads)
            .map(|(i, bytes): (usize, Vec<u8>)| async move {
                upload_with_metadata(client, base, &objects[i], bytes).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<_>, _>>()?;
        let silent: SeedReporter = std::sync::Arc::new(|_| {});
        for (bucket, names) in stale {
            delete_all(client, base, bucket, names.into_iter(), &silent)
                .await
                .map_err(message)?;
        }
        for bucket in &removed_buckets {
            delete_bucket(client, base, bucket).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    let Some(dir) = undo_dir else {
        return changed;
    };
    match changed {
        Ok(()) => {
            undo::clear(&dir);
            Ok(())
        }
        Err(why) => Err(match undo::rollback(store, &dir).await {
            Ok(()) => format!("{why} (the buckets were put back as they were)"),
            Err(e) => format!(
                "{why}; putting the buckets back failed too ({e}): they hold part of the snapshot; what they held is in {}",
                dir.display()
            ),
        }),
    }
}

/// Whether the listed `item` is `object` (whose bytes are `bytes`): same size, same CRC32C and
/// the same kept metadata.
fn same_object(item: &serde_json::Value, object: &SavedObject, bytes: &[u8]) -> bool {
    json_u64(item.get("size")) == bytes.len() as u64
        && item.get("crc32c").and_then(|c| c.as_str()) == Some(crc32c_base64(bytes).as_str())
        && KEPT_METADATA
            .iter()
            .all(|k| item.get(*k) == object.resource.get(*k))
}

/// Uploads one object with its metadata (a multipart upload: the resource, then the bytes).
async fn upload_with_metadata(
    client: &reqwest::Client,
    base: &str,
    object: &SavedObject,
    bytes: Vec<u8>,
) -> Result<(), String> {
    let mut resource = object.resource.clone();
    resource.insert("name".into(), object.name.clone().into());
    let content_type = resource
        .get("contentType")
        .and_then(|c| c.as_str())
        .unwrap_or("application/octet-stream")
        .to_string();
    let boundary = format!("vibedev-{:016x}", rand::random::<u64>());
    let mut body = Vec::with_capacity(bytes.len() + 512);
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&serde_json::to_vec(&resource).map_err(|e| e.to_string())?);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = client
        .post(format!(
            "{}/upload/storage/v1/b/{}/o",
            base.trim_end_matches('/'),
            super::encode(&object.bucket)
        ))
        .query(&[("uploadType", "multipart")])
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/related; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(failure(
            &format!("uploading {}/{}", object.bucket, object.name),
            resp,
        )
        .await)
    }
}

/// Deletes an empty bucket; one already gone is fine.
async fn delete_bucket(client: &reqwest::Client, base: &str, bucket: &str) -> Result<(), String> {
    let resp = client
        .delete(format!("{base}/storage/v1/b/{}", super::encode(bucket)))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if resp.status().is_success() || resp.status().as_u16() == 404 {
        Ok(())
    } else {
        Err(failure(&format!("deleting bucket {bucket}"), resp).await)
    }
}

/// The seed bucket: `[seed] bucket`, else the service's first bucket, else the default; on a
/// branch with its own buckets, the branch's copy of it.
pub fn seed_bucket_name(store: &Store<'_>, seeds: &SeedPaths) -> String {
    let settings = store.settings;
    let Some(named) = &seeds.bucket else {
        return settings
            .buckets
            .first()
            .cloned()
            .unwrap_or_else(|| DEFAULT_BUCKET.to_string());
    };
    match &settings.branch {
        Some(branch) if settings.default_buckets().contains(named) => {
            bucket_name(named, &branch.slug)
        }
        _ => named.clone(),
    }
}

/// Copies every object of `source` into `bucket` on the server (`copyTo`); returns how many.
async fn copy_objects(
    client: &reqwest::Client,
    base: &str,
    source: &str,
    bucket: &str,
) -> Result<usize, String> {
    let names: Vec<String> = list_objects(client, base, source)
        .await
        .map_err(message)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    let count = names.len();
    let results: Vec<Result<(), String>> = stream::iter(names)
        .map(|name| async move {
            let mut url = objects_url(base, source, Some(&name)).map_err(message)?;
            url.path_segments_mut()
                .map_err(|_| format!("bad address {base}"))?
                .extend(["copyTo", "b", bucket, "o", &name]);
            let resp = client
                .post(url)
                .send()
                .await
                .map_err(|e| describe_reqwest(&e))?;
            succeeded(&format!("copying {source}/{name} into {bucket}"), resp).await
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(count)
}

/// Bucket names.
pub async fn list_buckets(client: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let resp = client
        .get(format!("{base}/storage/v1/b"))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if !resp.status().is_success() {
        return Err(format!("listing buckets answered {}", resp.status()));
    }
    let json: serde_json::Value = resp.json().await.map_err(|e| describe_reqwest(&e))?;
    Ok(json
        .get("items")
        .and_then(|i| i.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Creates a bucket; one that already exists is fine.
pub async fn create_bucket(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    bucket: &str,
) -> Result<(), String> {
    let resp = client
        .post(format!("{base}/storage/v1/b"))
        .query(&[("project", project)])
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    let status = resp.status();
    if status.is_success() || status.as_u16() == 409 {
        Ok(())
    } else {
        let body = resp.text().await.unwrap_or_default();
        Err(format!(
            "creating bucket {bucket} answered {status}: {}",
            body.trim()
        ))
    }
}

/// One object as a bucket listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
    /// Base64 of the big-endian CRC32C, as the JSON API reports it.
    pub crc32c: Option<String>,
}

/// Every object of a bucket (following page tokens).
pub async fn list_objects(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
) -> Result<Vec<ObjectInfo>, SeedError> {
    Ok(list_items(client, base, bucket)
        .await?
        .iter()
        .filter_map(|item| {
            Some(ObjectInfo {
                name: item.get("name")?.as_str()?.to_string(),
                size: json_u64(item.get("size")),
                crc32c: item
                    .get("crc32c")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
            })
        })
        .collect())
}

/// Every object resource of a bucket as the JSON API lists it (following page tokens).
async fn list_items(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
) -> Result<Vec<serde_json::Value>, SeedError> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut req = client.get(objects_url(base, bucket, None)?);
        if let Some(token) = &page {
            req = req.query(&[("pageToken", token.as_str())]);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SeedError::api("gcs", describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            return Err(SeedError::api(
                "gcs",
                failure(&format!("listing bucket {bucket}"), resp).await,
            ));
        }
        let mut json: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| SeedError::api("gcs", describe_reqwest(&e)))?;
        if let Some(serde_json::Value::Array(items)) = json.get_mut("items").map(std::mem::take) {
            out.extend(
                items
                    .into_iter()
                    .filter(|i| i.get("name").is_some_and(|n| n.is_string())),
            );
        }
        match json.get("nextPageToken").and_then(|t| t.as_str()) {
            Some(t) if !t.is_empty() => page = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

fn json_u64(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// `{base}/storage/v1/b/{bucket}/o[/{object}]`, each part percent-encoded as one path segment.
fn objects_url(base: &str, bucket: &str, object: Option<&str>) -> Result<reqwest::Url, SeedError> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|e| SeedError::api("gcs", format!("bad address {base}: {e}")))?;
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| SeedError::api("gcs", format!("bad address {base}")))?;
        segs.pop_if_empty()
            .extend(["storage", "v1", "b", bucket, "o"]);
        if let Some(object) = object {
            segs.push(object);
        }
    }
    Ok(url)
}

/// The CRC32C of `bytes` as the JSON API writes it (base64 of the big-endian value).
pub fn crc32c_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(bytes).to_be_bytes())
}

/// Uploads one object.
pub async fn upload(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Result<(), SeedError> {
    let resp = client
        .post(format!(
            "{}/upload/storage/v1/b/{}/o",
            base.trim_end_matches('/'),
            super::encode(bucket)
        ))
        .query(&[("uploadType", "media"), ("name", name)])
        .header(reqwest::header::CONTENT_TYPE, content_type(name))
        .body(bytes)
        .send()
        .await
        .map_err(|e| SeedError::api("gcs", describe_reqwest(&e)))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(SeedError::api(
            "gcs",
            failure(&format!("uploading {bucket}/{name}"), resp).await,
        ))
    }
}

/// Deletes one object; one already gone is fine.
pub async fn delete_object(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
    name: &str,
) -> Result<(), SeedError> {
    let resp = client
        .delete(objects_url(base, bucket, Some(name))?)
        .send()
        .await
        .map_err(|e| SeedError::api("gcs", describe_reqwest(&e)))?;
    if resp.status().is_success() || resp.status().as_u16() == 404 {
        Ok(())
    } else {
        Err(SeedError::api(
            "gcs",
            failure(&format!("deleting {bucket}/{name}"), resp).await,
        ))
    }
}

/// A content type from the file extension (the emulator and the app only care for common ones).
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js" | "mjs") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("zip") => "application/zip",
        Some("gz" | "tgz") => "application/gzip",
        Some("tar") => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// What seeding a bucket did.
#[derive(Debug, Clone, Default)]
pub struct BucketSeed {
    pub uploaded: Vec<String>,
    pub unchanged: usize,
    pub deleted: Vec<String>,
}

/// Makes `bucket` hold the files of `dir` (object name = path relative to `dir`): uploads what
/// is new or changed (same size and CRC32C means unchanged) and, with `prune`, deletes objects
/// that have no file. Creates the bucket when missing.
pub async fn seed_bucket(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    bucket: &str,
    dir: &Path,
    prune: bool,
    report: &SeedReporter,
) -> Result<BucketSeed, SeedError> {
    let files = walk(dir)?;
    create_bucket(client, base, project, bucket)
        .await
        .map_err(|m| SeedError::api("gcs", m))?;
    let existing: HashMap<String, ObjectInfo> = list_objects(client, base, bucket)
        .await?
        .into_iter()
        .map(|o| (o.name.clone(), o))
        .collect();
    let mut outcome = BucketSeed::default();
    let mut uploads = Vec::new();
    for (name, path) in &files {
        let bytes = std::fs::read(path).map_err(|source| SeedError::Read {
            path: path.clone(),
            source,
        })?;
        let same = existing.get(name).is_some_and(|o| {
            o.size == bytes.len() as u64 && o.crc32c.as_deref() == Some(&crc32c_base64(&bytes))
        });
        if same {
            outcome.unchanged += 1;
        } else {
            uploads.push((name.clone(), bytes));
        }
    }
    let results: Vec<Result<String, SeedError>> = stream::iter(uploads)
        .map(|(name, bytes)| async move {
            upload(client, base, bucket, &name, bytes).await?;
            report(SeedEvent::Uploaded {
                bucket: bucket.to_string(),
                object: name.clone(),
            });
            Ok(name)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        outcome.uploaded.push(r?);
    }
    outcome.uploaded.sort();
    if prune {
        let wanted: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let mut stale: Vec<&String> = existing
            .keys()
            .filter(|n| !wanted.contains(n.as_str()))
            .collect();
        stale.sort();
        outcome.deleted =
            delete_all(client, base, bucket, stale.into_iter().cloned(), report).await?;
    }
    Ok(outcome)
}

/// Deletes every object of `bucket`; returns their names.
pub async fn empty_bucket(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
    report: &SeedReporter,
) -> Result<Vec<String>, SeedError> {
    let names = list_objects(client, base, bucket)
        .await?
        .into_iter()
        .map(|o| o.name);
    delete_all(client, base, bucket, names, report).await
}

async fn delete_all(
    client: &reqwest::Client,
    base: &str,
    bucket: &str,
    names: impl Iterator<Item = String>,
    report: &SeedReporter,
) -> Result<Vec<String>, SeedError> {
    let results: Vec<Result<String, SeedError>> = stream::iter(names)
        .map(|name| async move {
            delete_object(client, base, bucket, &name).await?;
            report(SeedEvent::Deleted {
                bucket: bucket.to_string(),
                object: name.clone(),
            });
            Ok(name)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut deleted = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    deleted.sort();
    Ok(deleted)
}

/// Requests in flight at once while seeding.
const CONCURRENCY: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_json_api_encoding() {
        // The CRC32C check value of "123456789" is 0xE3069283.
        assert_eq!(crc32c_base64(b"123456789"), "4waSgw==");
    }

    #[test]
    fn object_urls_encode_slashes_in_names() {
        let url = objects_url("http://127.0.0.1:4443", "b", Some("dir/a b.txt")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:4443/storage/v1/b/b/o/dir%2Fa%20b.txt"
        );
        assert_eq!(crate::services::encode("my bucket"), "my%20bucket");
    }

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type("t/app.JSON"), "application/json");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
