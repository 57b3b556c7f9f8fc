//! Snapshots of the stack's data: every store saved under a name, restored by name, listed and
//! removed. Storage lives in the user's data folder (outside the checkout; see [`root`]), one
//! folder per snapshot with a manifest (when, git branch and commit, migration head, size and
//! checksums per store). Each kind moves its own data (`ServiceKind::snapshot_save` /
//! `snapshot_restore`); this module decides where, checks what it reads, and never prints.

mod archive;

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::Project;
use crate::data::Stores;
use crate::engine::{Engine, EngineError};
use crate::migrate::{self, Bookkeeping};
use crate::services::snapshot::ExecOutput;
use crate::services::{ContainerExec, Counted, Kind, SnapshotIo, Store};

/// The manifest format this vibedev writes and reads.
pub const FORMAT: u32 = 1;

pub use archive::ARCHIVE_FORMAT;

const MANIFEST: &str = "manifest.json";

/// Folders of saves still being written start with this (never a snapshot's name).
const PARTIAL: &str = ".partial-";

/// Why a snapshot command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{name:?} cannot name a snapshot: {why}")]
    BadName { name: String, why: &'static str },
    #[error("project {project} has no snapshot {name:?}")]
    NotFound {
        project: String,
        name: String,
        known: Vec<String>,
    },
    #[error("project {project} already has a snapshot {name:?}")]
    Exists { project: String, name: String },
    #[error("--only {what}: the stack has no service or kind of that name")]
    UnknownOnly { what: String, known: Vec<String> },
    #[error("project {project} has no automatic snapshot")]
    NoAutomatic { project: String },
    #[error(
        "cannot save the automatic snapshot before {command}: {source}; the database was not changed"
    )]
    AutoSave {
        command: String,
        source: Box<SnapshotError>,
    },
    #[error("nothing to save: no running service of the stack keeps data")]
    Nothing,
    #[error("snapshot {name:?} holds {service}, which is not running")]
    NotRunning { name: String, service: String },
    #[error(
        "snapshot {name:?} was written by a newer vibedev (format {found}; this one reads {FORMAT})"
    )]
    NewerFormat { name: String, found: u32 },
    #[error("snapshot {name:?} is damaged: {why}; nothing was changed")]
    Damaged { name: String, why: String },
    #[error("cannot save {service}: {message}")]
    Save { service: String, message: String },
    #[error("{}", restore_failure(failed, partial, restored))]
    Restore {
        /// The snapshot.
        name: String,
        /// Services restored (the others ran at the same time).
        restored: Vec<String>,
        /// Services whose restore failed, with why (their data is as it was).
        failed: Vec<(String, String)>,
        /// Of those, the ones whose container is no longer running (killed or stopped meanwhile).
        stopped: Vec<String>,
        /// Of those, the ones whose kind restores piece by piece: they may hold part of the
        /// snapshot.
        partial: Vec<String>,
    },
    #[error("{} already exists", path.display())]
    FileExists { path: PathBuf },
    #[error("{} cannot be imported: {why}; nothing was changed", path.display())]
    BadArchive { path: PathBuf, why: String },
    #[error(
        "{} was exported by a newer vibedev (archive format {found}; this one reads {ARCHIVE_FORMAT}); nothing was changed",
        path.display()
    )]
    NewerArchive { path: PathBuf, found: u32 },
    #[error("{}", interrupted(kept, partial, restored))]
    Interrupted {
        name: String,
        restored: Vec<String>,
        kept: Vec<String>,
        /// Stores of a kind that restores piece by piece, stopped midway.
        partial: Vec<String>,
    },
    #[error("cannot pause {service}: {reason}; nothing was saved")]
    Pause { service: String, reason: String },
    #[error(
        "cannot unpause {}: {reason}; {}",
        services.join(", "),
        saved.as_ref().map_or_else(|| "nothing was saved".to_string(), |n| format!("snapshot {n} was saved"))
    )]
    Unpause {
        services: Vec<String>,
        reason: String,
        /// The snapshot, when it was saved all the same.
        saved: Option<String>,
    },
    #[error("cannot find the user's data folder: neither XDG_DATA_HOME nor HOME is set")]
    NoDataFolder,
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn restore_failure(failed: &[(String, String)], partial: &[String], restored: &[String]) -> String {
    let mut text = failed
        .iter()
        .map(|(s, why)| {
            if partial.contains(s) {
                format!("cannot restore {s}: {why}; {s} may hold part of the snapshot")
            } else {
                format!("cannot restore {s}: {why}; {s} keeps its data as it was")
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if !restored.is_empty() {
        text.push_str(&format!("; restored: {}", restored.join(", ")));
    }
    text
}

fn interrupted(kept: &[String], partial: &[String], restored: &[String]) -> String {
    if kept.is_empty() && partial.is_empty() && restored.is_empty() {
        return "interrupted before any store was changed".into();
    }
    let mut text = "interrupted".to_string();
    let mut parts = Vec::new();
    if !kept.is_empty() {
        parts.push(format!(
            "{} {} its data as it was",
            kept.join(", "),
            if kept.len() == 1 { "keeps" } else { "keep" }
        ));
    }
    if !partial.is_empty() {
        parts.push(format!(
            "{} may hold part of the snapshot",
            partial.join(", ")
        ));
    }
    if !parts.is_empty() {
        text.push_str(": ");
        text.push_str(&parts.join("; "));
    }
    if !restored.is_empty() {
        text.push_str(&format!("; restored already: {}", restored.join(", ")));
    }
    text
}

impl SnapshotError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SnapshotError::BadName { .. } => Some(
                "use letters, digits, `.`, `_` and `-` (up to 100, not starting with `.` or `-`)"
                    .into(),
            ),
            SnapshotError::NotFound { known, .. } if known.is_empty() => {
                Some("take one with `vibedev snapshot save [NAME]`".into())
            }
            SnapshotError::NotFound { known, .. } => {
                Some(format!("snapshots of this project: {}", known.join(", ")))
            }
            SnapshotError::Exists { name, .. } => Some(format!(
                "pick another name, or remove the old one first (`vibedev snapshot rm {name}`)"
            )),
            SnapshotError::UnknownOnly { known, .. } => {
                Some(format!("--only takes any of: {}", known.join(", ")))
            }
            SnapshotError::NoAutomatic { .. } => Some(
                "one is taken before `reset-db` and `migrate` change the app database (unless `[snapshots] auto = false`); `vibedev snapshot list` shows the others".into(),
            ),
            SnapshotError::AutoSave { source, .. } => Some(match source.hint() {
                Some(hint) => format!(
                    "{hint}; or turn automatic snapshots off with `[snapshots] auto = false` in vibedev.toml"
                ),
                None => "turn automatic snapshots off with `[snapshots] auto = false` in vibedev.toml".into(),
            }),
            SnapshotError::Nothing => Some("start the stack with `vibedev up`".into()),
            SnapshotError::NotRunning { service, .. } => Some(format!(
                "start it with `vibedev up {service}`, or leave it out with --only"
            )),
            SnapshotError::NewerFormat { .. } => {
                Some("restore it with that vibedev version or a newer one".into())
            }
            SnapshotError::Damaged { name, .. } => Some(format!(
                "the snapshot cannot be restored; remove it with `vibedev snapshot rm {name}`"
            )),
            SnapshotError::Save { service, .. } => Some(format!(
                "nothing was saved; check that {service} is running (`vibedev status`) and see `vibedev logs {service}`"
            )),
            SnapshotError::Restore {
                name,
                failed,
                stopped,
                ..
            } => {
                if !stopped.is_empty() {
                    return Some(format!(
                        "{} stopped during the restore: `vibedev up` starts {} again, then `vibedev snapshot restore {name}` restores the snapshot (and removes what this restore left half built)",
                        stopped.join(", "),
                        if stopped.len() == 1 { "it" } else { "them" },
                    ));
                }
                failed.first().map(|(service, _)| {
                    format!(
                        "see `vibedev logs {service}`, then run `vibedev snapshot restore {name}` again"
                    )
                })
            }
            SnapshotError::FileExists { .. } => {
                Some("export to another file, or remove that one first".into())
            }
            SnapshotError::BadArchive { .. } => Some(
                "export the snapshot again on the machine it comes from, and copy the whole file"
                    .into(),
            ),
            SnapshotError::NewerArchive { .. } => {
                Some("import it with that vibedev version or a newer one".into())
            }
            SnapshotError::Interrupted { name, .. } => Some(format!(
                "run `vibedev snapshot restore {name}` again to restore it all"
            )),
            SnapshotError::Pause { service, .. } => Some(format!(
                "see `vibedev status` and `vibedev logs {service}`, or save without --pause"
            )),
            SnapshotError::Unpause { .. } => {
                Some("`vibedev up` unpauses every paused container of the stack".into())
            }
            SnapshotError::NoDataFolder => {
                Some("set XDG_DATA_HOME to the folder where vibedev may keep data".into())
            }
            SnapshotError::Io { .. } => {
                Some("check the folder's permissions and free space".into())
            }
            SnapshotError::Engine(e) => e.hint(),
        }
    }
}

/// A snapshot as its manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub project: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// The vibedev that wrote it.
    pub vibedev: String,
    pub git: Option<GitHead>,
    /// The app database's latest applied migration, when a Postgres store is in it.
    pub migrations: Option<MigrationHead>,
    /// The command an automatic snapshot was taken before (`reset-db`, `migrate`); `None` for
    /// one saved by hand.
    #[serde(default)]
    pub auto: Option<String>,
    pub stores: Vec<StoreEntry>,
}

impl Manifest {
    /// Bytes on disk, all stores together.
    pub fn bytes(&self) -> u64 {
        self.stores.iter().map(|s| s.bytes).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitHead {
    pub commit: String,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MigrationHead {
    /// How many migrations the bookkeeping table records.
    pub applied: usize,
    /// The newest one's journal tag (when the project's journal still lists it).
    pub latest: Option<String>,
    /// The newest one's `created_at` (drizzle's `when`).
    pub latest_when: Option<i64>,
}

/// One store's part of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreEntry {
    /// The service it was saved from.
    pub service: String,
    /// Its kind (`postgres`, `redis`, ...).
    pub kind: String,
    pub saved: Counted,
    pub bytes: u64,
    pub files: Vec<FileEntry>,
}

/// One file with its size and checksum, checked before a restore touches anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub crc32c: u32,
}

/// Where this user's snapshots of `project` live: `$XDG_DATA_HOME/vibedev/snapshots/<project>`,
/// else `~/.local/share/vibedev/snapshots/<project>`. Outside every checkout, and untouched by
/// `vibedev down --volumes`.
pub fn root(project: &str) -> Result<PathBuf, SnapshotError> {
    let base = crate::dirs::data_dir().ok_or(SnapshotError::NoDataFolder)?;
    Ok(base.join("snapshots").join(project))
}

/// Checks a snapshot name: letters, digits, `.`, `_`, `-`; a folder name on every system.
pub fn check_name(name: &str) -> Result<(), SnapshotError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 100 {
        Some("it is longer than 100 characters")
    } else if name.starts_with('.') || name.starts_with('-') {
        Some("it starts with `.` or `-`")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("it holds a character other than a letter, digit, `.`, `_` or `-`")
    } else {
        None
    };
    match why {
        Some(why) => Err(SnapshotError::BadName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// The name a snapshot gets when none is given: the time, then the git branch.
pub fn default_name(now: chrono::DateTime<chrono::Utc>, branch: Option<&str>) -> String {
    let mut name = now.format("%Y%m%d-%H%M%S").to_string();
    if let Some(branch) = branch {
        let branch: String = branch
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(60)
            .collect();
        name.push('-');
        name.push_str(&branch);
    }
    name
}

/// A running store with its container, as a snapshot reaches it.
struct Target<'a> {
    kind: Kind,
    store: Store<'a>,
    container: String,
}

/// The first running service of each kind, with its container.
fn targets<'a>(stores: &'a Stores<'_>) -> Vec<Target<'a>> {
    let mut out: Vec<Target<'a>> = Vec::new();
    for (spec, rt) in stores.stack.services.iter().zip(&stores.runtimes) {
        let Some(kind) = spec.kind else { continue };
        if !rt.running() || out.iter().any(|t| t.kind == kind) {
            continue;
        }
        let (Some(container), Some(store)) = (&rt.container, rt.store(stores.stack, spec)) else {
            continue;
        };
        out.push(Target {
            kind,
            store,
            container: container.id.clone(),
        });
    }
    out
}

/// True when `--only` names this service (by its name, or its kind's name or alias).
fn selected(only: &[String], service: &str, kind: &str) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| o == service || o == kind || Kind::parse(o).is_some_and(|k| k.name() == kind))
}

/// Every `--only` word must name a service or a kind of the stack.
fn check_only(stores: &Stores<'_>, only: &[String]) -> Result<(), SnapshotError> {
    let mut known: Vec<String> = Vec::new();
    for spec in &stores.stack.services {
        if let Some(kind) = spec.kind {
            known.push(spec.name.clone());
            known.push(kind.name().to_string());
        }
    }
    known.sort();
    known.dedup();
    for word in only {
        let kind_word = Kind::parse(word).map(|k| k.name().to_string());
        if !known.contains(word) && !kind_word.is_some_and(|k| known.contains(&k)) {
            return Err(SnapshotError::UnknownOnly {
                what: word.clone(),
                known,
            });
        }
    }
    Ok(())
}

/// Runs programs in one container through the engine.
struct EngineExec<'a> {
    engine: &'a Engine,
    container: &'a str,
}

impl ContainerExec for EngineExec<'_> {
    fn exec<'a>(
        &'a self,
        cmd: Vec<String>,
        env: Vec<String>,
    ) -> BoxFuture<'a, Result<ExecOutput, String>> {
        Box::pin(async move {
            let out = self
                .engine
                .exec(self.container, &cmd, &env)
                .await
                .map_err(|e| e.reason())?;
            Ok(ExecOutput {
                code: out.code,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }
}

/// What `save` did.
#[derive(Debug)]
pub struct Saved {
    pub manifest: Manifest,
    pub path: PathBuf,
    /// Services of a kind that keeps data that were not running (not in the snapshot).
    pub skipped: Vec<String>,
    /// With `pauses`: the services paused during the save, and for how long.
    pub paused: Option<(Vec<String>, std::time::Duration)>,
}

/// Saves every running store (or those `only` names) as snapshot `name`. Written beside its
/// final place and renamed there once complete: a failed save leaves nothing behind.
pub async fn save(
    engine: &Engine,
    project: &Project,
    stores: &Stores<'_>,
    name: Option<&str>,
    only: &[String],
    pauses: Option<&Pauses>,
) -> Result<Saved, SnapshotError> {
    check_only(stores, only)?;
    let git = crate::git::head(&project.root).map(|(commit, branch)| GitHead { commit, branch });
    let now = chrono::Utc::now();
    let name = match name {
        Some(n) => n.to_string(),
        None => default_name(now, git.as_ref().and_then(|g| g.branch.as_deref())),
    };
    save_as(engine, project, stores, name, only, git, now, None, pauses).await
}

/// `save` once the name is decided; `auto` marks an automatic snapshot.
#[allow(clippy::too_many_arguments)]
async fn save_as(
    engine: &Engine,
    project: &Project,
    stores: &Stores<'_>,
    name: String,
    only: &[String],
    git: Option<GitHead>,
    now: chrono::DateTime<chrono::Utc>,
    auto: Option<String>,
    pauses: Option<&Pauses>,
) -> Result<Saved, SnapshotError> {
    check_name(&name)?;
    let project_name = &stores.stack.project;
    let root = root(project_name)?;
    let dest = root.join(&name);
    if dest.exists() {
        return Err(SnapshotError::Exists {
            project: project_name.clone(),
            name,
        });
    }
    let targets: Vec<Target<'_>> = targets(stores)
        .into_iter()
        .filter(|t| selected(only, t.store.service, t.kind.name()))
        .collect();
    let skipped = stores
        .stopped()
        .into_iter()
        .filter(|s| s.kind.is_some_and(|k| selected(only, &s.name, k.name())))
        .map(|s| s.name.clone())
        .collect();
    remove_partial_saves(&root);
    let partial = root.join(format!("{PARTIAL}{name}-{}", std::process::id()));
    let (result, thawed) = match pauses {
        Some(pauses) => {
            pause(engine, stores, &targets, pauses).await?;
            let result = save_into(engine, project, &targets, &partial).await;
            (result, thaw(engine, pauses).await)
        }
        None => (save_into(engine, project, &targets, &partial).await, Ok(())),
    };
    let (stores_saved, migrations) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            // A container left paused matters more than why the save failed.
            thawed?;
            return Err(e);
        }
    };
    if stores_saved.is_empty() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(SnapshotError::Nothing);
    }
    let manifest = Manifest {
        format: FORMAT,
        name: name.clone(),
        project: project_name.clone(),
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        vibedev: crate::cli::VERSION.to_string(),
        git,
        migrations,
        auto,
        stores: stores_saved,
    };
    let finish = || -> std::io::Result<()> {
        std::fs::write(
            partial.join(MANIFEST),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        if dest.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a snapshot of that name appeared meanwhile",
            ));
        }
        std::fs::rename(&partial, &dest)
    };
    if let Err(source) = finish() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(SnapshotError::Io {
            action: "write snapshot",
            path: dest,
            source,
        });
    }
    if let Err(SnapshotError::Unpause {
        services, reason, ..
    }) = thawed
    {
        return Err(SnapshotError::Unpause {
            services,
            reason,
            saved: Some(name),
        });
    }
    Ok(Saved {
        manifest,
        path: dest,
        skipped,
        paused: pauses.map(Pauses::report),
    })
}

/// The containers `save --pause` paused: recorded before each is paused, so that whatever
/// stops the save (a failure, Ctrl-C dropping it midway) can unpause them all ([`thaw`]).
#[derive(Debug, Default)]
pub struct Pauses {
    state: std::sync::Mutex<PauseState>,
}

#[derive(Debug, Default)]
struct PauseState {
    /// (service, container) of every container paused or being paused.
    paused: Vec<(String, String)>,
    since: Option<std::time::Instant>,
    held: Option<std::time::Duration>,
}

impl Pauses {
    fn record(&self, writers: &[(String, String)]) {
        if let Ok(mut s) = self.state.lock() {
            s.paused = writers.to_vec();
            s.since = Some(std::time::Instant::now());
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        if let Some(since) = s.since.take() {
            s.held = Some(since.elapsed());
        }
        s.paused.clone()
    }

    /// The services paused, and for how long (so far, while still paused).
    pub fn report(&self) -> (Vec<String>, std::time::Duration) {
        let Ok(s) = self.state.lock() else {
            return (Vec::new(), std::time::Duration::ZERO);
        };
        let held = s
            .held
            .or_else(|| s.since.map(|t| t.elapsed()))
            .unwrap_or_default();
        (s.paused.iter().map(|(n, _)| n.clone()).collect(), held)
    }
}

/// The stack's running containers a save does not read (services of no store kind, stores
/// left out by `--only`, a second service of a saved kind): (service, container).
fn writers(stores: &Stores<'_>, targets: &[Target<'_>]) -> Vec<(String, String)> {
    stores
        .stack
        .services
        .iter()
        .zip(&stores.runtimes)
        .filter(|(_, rt)| rt.running())
        .filter_map(|(spec, rt)| Some((spec.name.clone(), rt.container.as_ref()?.id.clone())))
        .filter(|(_, id)| !targets.iter().any(|t| &t.container == id))
        .collect()
}

/// Pauses every writer at once; when one cannot be paused, unpauses the others.
async fn pause(
    engine: &Engine,
    stores: &Stores<'_>,
    targets: &[Target<'_>],
    pauses: &Pauses,
) -> Result<(), SnapshotError> {
    let writers = writers(stores, targets);
    pauses.record(&writers);
    let results = futures_util::future::join_all(
        writers
            .iter()
            .map(|(_, id)| async move { engine.pause_container(id).await }),
    )
    .await;
    let failed = writers
        .iter()
        .zip(results)
        .find_map(|((service, _), r)| r.err().map(|e| (service.clone(), e.reason())));
    if let Some((service, reason)) = failed {
        thaw(engine, pauses).await?;
        return Err(SnapshotError::Pause { service, reason });
    }
    Ok(())
}

/// Unpauses every container `pauses` recorded (one not paused counts as unpaused). Each is
/// checked afterwards: a pause still on its way when the save was stopped is undone too.
pub async fn thaw(engine: &Engine, pauses: &Pauses) -> Result<(), SnapshotError> {
    let paused = pauses.take();
    let mut failed: Vec<(String, String)> = Vec::new();
    for attempt in 0..3 {
        let results =
            futures_util::future::join_all(paused.iter().map(|(service, id)| async move {
                if let Err(e) = engine.unpause_container(id).await {
                    return Some((service.clone(), e.reason()));
                }
                match engine.inspect_container(id).await {
                    Ok(Some(c)) if c.state.as_ref().and_then(|s| s.paused) == Some(true) => {
                        Some((service.clone(), "it is still paused".to_string()))
                    }
                    _ => None,
                }
            }))
            .await;
        failed = results.into_iter().flatten().collect();
        if failed.is_empty() {
            return Ok(());
        }
        if attempt < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    Err(SnapshotError::Unpause {
        services: failed.iter().map(|(s, _)| s.clone()).collect(),
        reason: failed
            .into_iter()
            .map(|(_, r)| r)
            .next()
            .unwrap_or_default(),
        saved: None,
    })
}

/// What an automatic save did.
#[derive(Debug)]
pub struct AutoSaved {
    pub saved: Saved,
    /// Older automatic snapshots removed to keep the newest `keep`.
    pub removed: Vec<String>,
}

/// Before `command` changes the app database: saves it as the automatic snapshot
/// `auto-<command>-<time>`, then removes the oldest automatic ones beyond `keep`. `None` when
/// the app database does not exist yet (nothing to lose). The caller holds the project's lock.
pub async fn save_automatic(
    engine: &Engine,
    project: &Project,
    stores: &Stores<'_>,
    command: &str,
    keep: usize,
) -> Result<Option<AutoSaved>, SnapshotError> {
    save_automatic_unwrapped(engine, project, stores, command, keep)
        .await
        .map_err(|source| SnapshotError::AutoSave {
            command: command.to_string(),
            source: Box::new(source),
        })
}

async fn save_automatic_unwrapped(
    engine: &Engine,
    project: &Project,
    stores: &Stores<'_>,
    command: &str,
    keep: usize,
) -> Result<Option<AutoSaved>, SnapshotError> {
    let Ok(db) = stores.database() else {
        return Ok(None);
    };
    let admin = db
        .target
        .connect_admin()
        .await
        .map_err(|e| SnapshotError::Save {
            service: db.service.clone(),
            message: format!(
                "as admin user {:?}: {}",
                db.target.app.admin_user,
                crate::pg::pg_error(&e)
            ),
        })?;
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&db.target.app.database],
        )
        .await
        .map_err(|e| SnapshotError::Save {
            service: db.service.clone(),
            message: format!(
                "cannot look up the app database: {}",
                crate::pg::pg_error(&e)
            ),
        })?
        .is_some();
    drop(admin);
    if !exists {
        return Ok(None);
    }
    let project_name = &stores.stack.project;
    let root = root(project_name)?;
    let now = chrono::Utc::now();
    let base = format!("auto-{command}-{}", now.format("%Y%m%d-%H%M%S"));
    let name = (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|n| !root.join(n).exists())
        .unwrap_or(base);
    let git = crate::git::head(&project.root).map(|(commit, branch)| GitHead { commit, branch });
    let only = [db.service.clone()];
    let saved = save_as(
        engine,
        project,
        stores,
        name,
        &only,
        git,
        now,
        Some(command.to_string()),
        None,
    )
    .await?;
    let automatic: Vec<String> = list(project_name)?
        .into_iter()
        .filter(|m| m.auto.is_some())
        .map(|m| m.name)
        .collect();
    let extra = automatic.len().saturating_sub(keep.max(1));
    let removed = automatic[..extra].to_vec();
    remove(project_name, &removed)?;
    Ok(Some(AutoSaved { saved, removed }))
}

/// The newest automatic snapshot's name.
pub fn last_automatic(project: &str) -> Result<String, SnapshotError> {
    list(project)?
        .into_iter()
        .rev()
        .find(|m| m.auto.is_some())
        .map(|m| m.name)
        .ok_or_else(|| SnapshotError::NoAutomatic {
            project: project.to_string(),
        })
}

/// Removes what interrupted saves left (the caller holds the project's lock, so no save of
/// this project is running).
fn remove_partial_saves(root: &Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Every target's store into `partial/stores/<service>`, all at once.
async fn save_into(
    engine: &Engine,
    project: &Project,
    targets: &[Target<'_>],
    partial: &Path,
) -> Result<(Vec<StoreEntry>, Option<MigrationHead>), SnapshotError> {
    let migrations = match targets.iter().find(|t| t.kind.holds_app_database()) {
        Some(t) => migration_head(project, &t.store).await,
        None => None,
    };
    let saves = targets.iter().map(|t| async move {
        let dir = partial.join("stores").join(t.store.service);
        std::fs::create_dir_all(&dir).map_err(|source| SnapshotError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let exec = EngineExec {
            engine,
            container: &t.container,
        };
        let io = SnapshotIo {
            dir: &dir,
            exec: &exec,
        };
        let saved = t
            .kind
            .snapshot_save(&t.store, &io)
            .await
            .map_err(|message| SnapshotError::Save {
                service: t.store.service.to_string(),
                message,
            })?;
        let Some(saved) = saved else {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        };
        let files = checksums(&dir)?;
        Ok(Some(StoreEntry {
            service: t.store.service.to_string(),
            kind: t.kind.name().to_string(),
            saved,
            bytes: files.iter().map(|f| f.size).sum(),
            files,
        }))
    });
    let results: Vec<Result<Option<StoreEntry>, SnapshotError>> =
        futures_util::future::join_all(saves).await;
    let mut entries = Vec::new();
    for r in results {
        if let Some(entry) = r? {
            entries.push(entry);
        }
    }
    Ok((entries, migrations))
}

/// The app database's newest applied migration (best effort: a database without the
/// bookkeeping table has none).
async fn migration_head(project: &Project, store: &Store<'_>) -> Option<MigrationHead> {
    let target = store.postgres()?;
    let client = migrate::connect_app(&target, &target.app.database)
        .await
        .ok()?;
    let bookkeeping = Bookkeeping::configured(&project.file.migrations);
    let rows = migrate::runner::read_rows(&client, &bookkeeping)
        .await
        .ok()?;
    let newest = rows.iter().max_by_key(|r| (r.created_at, r.id))?;
    let journal = migrate::project_journal(&project.paths(), false)
        .ok()
        .flatten();
    let latest = journal.and_then(|j| {
        j.migrations
            .iter()
            .find(|m| Some(m.when) == newest.created_at && m.hash == newest.hash)
            .or_else(|| {
                j.migrations
                    .iter()
                    .find(|m| Some(m.when) == newest.created_at)
            })
            .map(|m| m.tag.clone())
    });
    Some(MigrationHead {
        applied: rows.len(),
        latest,
        latest_when: newest.created_at,
    })
}

/// Where a restored app database stands against the project's migrations folder.
#[derive(Debug)]
pub struct MigrationCheck {
    /// The app database's service.
    pub service: String,
    /// Migrations of the folder newer than the database's newest, in journal order: `--migrate`
    /// (or `vibedev migrate`) applies them.
    pub pending: Vec<String>,
    /// Migrations the database records that the folder does not list: the snapshot was taken
    /// with a newer folder (another branch, a later commit).
    pub unknown: usize,
    /// How many migrations the folder lists.
    pub journal_len: usize,
}

impl MigrationCheck {
    /// True when the database is neither behind nor ahead of the folder.
    pub fn in_step(&self) -> bool {
        self.pending.is_empty() && self.unknown == 0
    }
}

/// Compares the app database (as a restore left it) with the project's migrations folder;
/// `None` when the project has no migrations folder or the database is not running.
pub async fn check_migrations(
    project: &Project,
    stores: &Stores<'_>,
) -> Result<Option<MigrationCheck>, migrate::MigrateError> {
    let Ok(db) = stores.database() else {
        return Ok(None);
    };
    let paths = project.paths();
    let Some(journal) = migrate::project_journal(&paths, paths.migrations_named)? else {
        return Ok(None);
    };
    let client = migrate::connect_app(&db.target, &db.target.app.database).await?;
    let bookkeeping = Bookkeeping::configured(&project.file.migrations);
    let plan = migrate::runner::status(&client, &journal, &bookkeeping).await?;
    Ok(Some(MigrationCheck {
        service: db.service,
        pending: plan.pending().iter().map(|e| e.tag.clone()).collect(),
        unknown: plan.unknown_rows.len(),
        journal_len: journal.migrations.len(),
    }))
}

/// Every file under `dir` with its size and CRC32C, by path relative to `dir`.
fn checksums(dir: &Path) -> Result<Vec<FileEntry>, SnapshotError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let io = |source| SnapshotError::Io {
            action: "read",
            path: folder.clone(),
            source,
        };
        for entry in std::fs::read_dir(&folder).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let (size, crc32c) = file_checksum(&path)?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push(FileEntry {
                path: rel,
                size,
                crc32c,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn file_checksum(path: &Path) -> Result<(u64, u32), SnapshotError> {
    use std::io::Read;
    let io = |source| SnapshotError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut size, mut crc) = (0u64, 0u32);
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok((size, crc));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        size += n as u64;
    }
}

/// Reads a snapshot's manifest.
pub fn load(project: &str, name: &str) -> Result<(Manifest, PathBuf), SnapshotError> {
    check_name(name)?;
    let dir = root(project)?.join(name);
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::NotFound {
                project: project.to_string(),
                name: name.to_string(),
                known: list(project)?.into_iter().map(|m| m.name).collect(),
            });
        }
        Err(source) => {
            return Err(SnapshotError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let manifest = parse_manifest(name, &bytes)?;
    Ok((manifest, dir))
}

fn parse_manifest(name: &str, bytes: &[u8]) -> Result<Manifest, SnapshotError> {
    #[derive(Deserialize)]
    struct Version {
        format: u32,
    }
    let damaged = |e: serde_json::Error| SnapshotError::Damaged {
        name: name.to_string(),
        why: format!("its manifest does not read: {e}"),
    };
    let version: Version = serde_json::from_slice(bytes).map_err(damaged)?;
    if version.format > FORMAT {
        return Err(SnapshotError::NewerFormat {
            name: name.to_string(),
            found: version.format,
        });
    }
    serde_json::from_slice(bytes).map_err(damaged)
}

/// The project's snapshots, oldest first (saves in progress and unreadable folders left out).
pub fn list(project: &str) -> Result<Vec<Manifest>, SnapshotError> {
    let root = root(project)?;
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Io {
                action: "read",
                path: root,
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path().join(MANIFEST))
            && let Ok(m) = parse_manifest(&name, &bytes)
        {
            out.push(m);
        }
    }
    out.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    Ok(out)
}

/// Removes snapshots by name; every name must exist (checked before any is removed).
pub fn remove(project: &str, names: &[String]) -> Result<Vec<u64>, SnapshotError> {
    let mut dirs = Vec::new();
    for name in names {
        let (manifest, dir) = load(project, name)?;
        dirs.push((manifest.bytes(), dir));
    }
    let mut freed = Vec::new();
    for (bytes, dir) in dirs {
        std::fs::remove_dir_all(&dir).map_err(|source| SnapshotError::Io {
            action: "remove",
            path: dir.clone(),
            source,
        })?;
        freed.push(bytes);
    }
    Ok(freed)
}

/// What `export` wrote.
#[derive(Debug)]
pub struct Exported {
    pub manifest: Manifest,
    /// The file's size.
    pub bytes: u64,
}

/// Writes snapshot `name` into one compressed, checksummed file (see [`archive`]). The
/// snapshot's files are checked against its manifest first: a damaged one is not exported.
pub async fn export(project: &str, name: &str, file: &Path) -> Result<Exported, SnapshotError> {
    let (manifest, dir) = load(project, name)?;
    for store in &manifest.stores {
        verify(name, &dir.join("stores").join(&store.service), &store.files)?;
    }
    let file = file.to_path_buf();
    blocking(move || {
        let bytes = archive::export(&manifest, &dir, &file)?;
        Ok(Exported { manifest, bytes })
    })
    .await
}

/// Imports a file `export` wrote as snapshot `name` (default: the name it was exported
/// under) of `project`. The file is checked whole, unpacked beside the project's snapshots,
/// every store checked against the manifest, and only then renamed into place.
pub async fn import(
    project: &str,
    file: &Path,
    name: Option<&str>,
) -> Result<Manifest, SnapshotError> {
    let root = root(project)?;
    if let Some(name) = name {
        check_name(name)?;
        if root.join(name).exists() {
            return Err(SnapshotError::Exists {
                project: project.to_string(),
                name: name.to_string(),
            });
        }
    }
    let (project, file, name) = (
        project.to_string(),
        file.to_path_buf(),
        name.map(str::to_string),
    );
    blocking(move || {
        remove_partial_saves(&root);
        let partial = root.join(format!("{PARTIAL}import-{}", std::process::id()));
        let result = import_into(&project, &root, &file, name, &partial);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        result
    })
    .await
}

fn import_into(
    project: &str,
    root: &Path,
    file: &Path,
    name: Option<String>,
    partial: &Path,
) -> Result<Manifest, SnapshotError> {
    let mut manifest = archive::unpack(file, partial)?;
    for store in &manifest.stores {
        let dir = partial.join("stores").join(&store.service);
        verify(&manifest.name, &dir, &store.files).map_err(|e| SnapshotError::BadArchive {
            path: file.to_path_buf(),
            why: match e {
                SnapshotError::Damaged { why, .. } => {
                    why.replace(&format!("{}/", dir.display()), "")
                }
                other => other.to_string(),
            },
        })?;
    }
    let name = name.unwrap_or_else(|| manifest.name.clone());
    check_name(&name)?;
    let dest = root.join(&name);
    if dest.exists() {
        return Err(SnapshotError::Exists {
            project: project.to_string(),
            name,
        });
    }
    manifest.name = name;
    manifest.project = project.to_string();
    let io = |source| SnapshotError::Io {
        action: "write snapshot",
        path: dest.clone(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(partial.join(MANIFEST), bytes).map_err(io)?;
    std::fs::rename(partial, &dest).map_err(io)?;
    Ok(manifest)
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> Result<T, SnapshotError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(SnapshotError::Io {
            action: "finish",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })
    })
}

/// Removes every snapshot of `project` (and what interrupted saves left): how many there were
/// and their size.
pub fn remove_all(project: &str) -> Result<(usize, u64), SnapshotError> {
    let snapshots = list(project)?;
    let root = root(project)?;
    match std::fs::remove_dir_all(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SnapshotError::Io {
                action: "remove",
                path: root,
                source,
            });
        }
    }
    Ok((snapshots.len(), snapshots.iter().map(Manifest::bytes).sum()))
}

/// One store a restore changed.
#[derive(Debug)]
pub struct RestoredStore {
    pub service: String,
    pub restored: Counted,
}

/// Restores snapshot `name` (or the stores `only` names) into the running stack. Every file is
/// checked against the manifest's sizes and checksums first; then each store is restored
/// (each kind builds the new state beside the old or reads everything before changing its
/// store), so a failure leaves that store as it was and says so.
pub async fn restore(
    engine: &Engine,
    stores: &Stores<'_>,
    name: &str,
    only: &[String],
    progress: &RestoreProgress,
) -> Result<(Manifest, Vec<RestoredStore>), SnapshotError> {
    check_only(stores, only)?;
    let (manifest, dir) = load(&stores.stack.project, name)?;
    let running = targets(stores);
    let mut plan: Vec<(&StoreEntry, &Target<'_>)> = Vec::new();
    for entry in &manifest.stores {
        if !selected(only, &entry.service, &entry.kind) {
            continue;
        }
        // The service of that name when it still has that kind, else the stack's one of it.
        let target = running
            .iter()
            .find(|t| t.store.service == entry.service && t.kind.name() == entry.kind)
            .or_else(|| running.iter().find(|t| t.kind.name() == entry.kind));
        match target {
            Some(t) => plan.push((entry, t)),
            None => {
                let service = stores
                    .stack
                    .services
                    .iter()
                    .find(|s| s.kind.is_some_and(|k| k.name() == entry.kind))
                    .map_or_else(|| entry.service.clone(), |s| s.name.clone());
                return Err(SnapshotError::NotRunning {
                    name: name.to_string(),
                    service,
                });
            }
        }
    }
    for (entry, _) in &plan {
        verify(name, &dir.join("stores").join(&entry.service), &entry.files)?;
    }
    progress.plan(plan.iter().map(|(_, t)| {
        (
            t.store.service.to_string(),
            t.kind.snapshot_restore_in_one_step(),
        )
    }));
    let restores = plan.iter().map(|(entry, t)| {
        let dir = dir.join("stores").join(&entry.service);
        async move {
            let exec = EngineExec {
                engine,
                container: &t.container,
            };
            let io = SnapshotIo {
                dir: &dir,
                exec: &exec,
            };
            let result = t.kind.snapshot_restore(&t.store, &io).await;
            if result.is_ok() {
                progress.done(t.store.service);
            }
            (t.store.service.to_string(), result)
        }
    });
    let results = futures_util::future::join_all(restores).await;
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for (service, result) in results {
        match result {
            Ok(counted) => restored.push(RestoredStore {
                service,
                restored: counted,
            }),
            Err(why) => failed.push((service, why)),
        }
    }
    if !failed.is_empty() {
        let mut stopped = Vec::new();
        for (service, _) in &failed {
            let Some((_, t)) = plan.iter().find(|(_, t)| t.store.service == service) else {
                continue;
            };
            if !still_running(engine, &t.container).await {
                stopped.push(service.clone());
            }
        }
        let partial = failed
            .iter()
            .filter(|(service, _)| {
                plan.iter().any(|(_, t)| {
                    t.store.service == service && !t.kind.snapshot_restore_in_one_step()
                })
            })
            .map(|(service, _)| service.clone())
            .collect();
        return Err(SnapshotError::Restore {
            name: name.to_string(),
            restored: restored.into_iter().map(|r| r.service).collect(),
            failed,
            stopped,
            partial,
        });
    }
    Ok((manifest, restored))
}

/// Whether a container still runs a moment after its store failed (a store killed during a
/// restore closes its connections just before the engine records that it exited).
async fn still_running(engine: &Engine, container: &str) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match engine.inspect_container(container).await {
            Ok(Some(c)) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {}
            Ok(_) => return false,
            // The engine cannot say: nothing more is known than the store's own error.
            Err(_) => return true,
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Which stores a restore set out to replace and which it has replaced, readable when the
/// restore is stopped midway (Ctrl-C).
#[derive(Debug, Default)]
pub struct RestoreProgress {
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Debug, Default)]
struct ProgressState {
    /// Every store to restore, with whether its kind restores in one step.
    planned: Vec<(String, bool)>,
    done: Vec<String>,
}

impl RestoreProgress {
    fn plan(&self, services: impl Iterator<Item = (String, bool)>) {
        if let Ok(mut s) = self.state.lock() {
            s.planned = services.collect();
        }
    }

    fn done(&self, service: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.done.push(service.to_string());
        }
    }

    /// (services restored, services not yet).
    pub fn split(&self) -> (Vec<String>, Vec<String>) {
        let Ok(s) = self.state.lock() else {
            return (Vec::new(), Vec::new());
        };
        let unfinished = s
            .planned
            .iter()
            .filter(|(p, _)| !s.done.contains(p))
            .map(|(p, _)| p.clone())
            .collect();
        (s.done.clone(), unfinished)
    }

    /// What a restore stopped now leaves: the error that says, per store, whether it was
    /// restored, keeps its data (a kind that restores in one step) or may hold part of it.
    pub fn interrupted(&self, name: String) -> SnapshotError {
        let (restored, unfinished) = self.split();
        let one_step = |service: &String| {
            self.state.lock().is_ok_and(|s| {
                s.planned
                    .iter()
                    .any(|(p, one_step)| p == service && *one_step)
            })
        };
        let (kept, partial) = unfinished.into_iter().partition(one_step);
        SnapshotError::Interrupted {
            name,
            restored,
            kept,
            partial,
        }
    }
}

/// After a restore was stopped midway: removes what the stores it had not finished were
/// building beside their data (their data itself is as it was).
pub async fn abandon_restore(stores: &Stores<'_>, progress: &RestoreProgress) {
    let (_, unfinished) = progress.split();
    let running = targets(stores);
    let cleanups = running
        .iter()
        .filter(|t| unfinished.iter().any(|s| s == t.store.service))
        .map(|t| t.kind.snapshot_abandon(&t.store));
    futures_util::future::join_all(cleanups).await;
}

/// Checks that every file of a store is there with its recorded size and checksum.
fn verify(name: &str, dir: &Path, files: &[FileEntry]) -> Result<(), SnapshotError> {
    for f in files {
        let path = dir.join(&f.path);
        let damaged = |why: String| SnapshotError::Damaged {
            name: name.to_string(),
            why,
        };
        let (size, crc) = match file_checksum(&path) {
            Ok(v) => v,
            Err(_) => {
                return Err(damaged(format!(
                    "{} is missing or unreadable",
                    path.display()
                )));
            }
        };
        if size != f.size {
            return Err(damaged(format!(
                "{} has {size} bytes, {} were saved",
                path.display(),
                f.size
            )));
        }
        if crc != f.crc32c {
            return Err(damaged(format!(
                "{} does not match its checksum",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("before-migration_2.1").is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a b", "ünï", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn default_names_carry_time_and_branch() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T02:15:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            default_name(t, Some("feature/x y")),
            "20261130-021530-feature-x-y"
        );
        assert_eq!(default_name(t, None), "20261130-021530");
        assert!(check_name(&default_name(t, Some("a/b"))).is_ok());
    }

    #[test]
    fn newer_manifests_are_refused_with_their_format() {
        let err = parse_manifest("s", br#"{"format": 99}"#).unwrap_err();
        assert!(
            matches!(err, SnapshotError::NewerFormat { found: 99, .. }),
            "{err}"
        );
        let err = parse_manifest("s", b"{").unwrap_err();
        assert!(matches!(err, SnapshotError::Damaged { .. }), "{err}");
    }

    #[test]
    fn a_stopped_restore_says_which_stores_kept_their_data_and_which_may_hold_part() {
        let progress = RestoreProgress::default();
        progress.plan(
            [("db", true), ("cache", true), ("blobs", false)]
                .into_iter()
                .map(|(s, one)| (s.to_string(), one)),
        );
        progress.done("cache");
        let err = progress.interrupted("base".into());
        assert_eq!(
            err.to_string(),
            "interrupted: db keeps its data as it was; blobs may hold part of the snapshot; restored already: cache"
        );
        assert_eq!(
            err.hint().unwrap(),
            "run `vibedev snapshot restore base` again to restore it all"
        );
        let failed = SnapshotError::Restore {
            name: "base".into(),
            restored: vec!["cache".into()],
            failed: vec![
                ("db".into(), "connection closed".into()),
                ("blobs".into(), "connection refused".into()),
            ],
            stopped: vec!["db".into()],
            partial: vec!["blobs".into()],
        };
        assert_eq!(
            failed.to_string(),
            "cannot restore db: connection closed; db keeps its data as it was; \
             cannot restore blobs: connection refused; blobs may hold part of the snapshot; restored: cache"
        );
        assert!(
            failed
                .hint()
                .unwrap()
                .starts_with("db stopped during the restore: `vibedev up` starts it again, then `vibedev snapshot restore base`"),
        );
    }

    #[test]
    fn damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/0.copy"), b"rows").unwrap();
        let files = checksums(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "data/0.copy");
        verify("s", dir.path(), &files).unwrap();
        std::fs::write(dir.path().join("data/0.copy"), b"rowz").unwrap();
        let err = verify("s", dir.path(), &files).unwrap_err().to_string();
        assert!(err.contains("0.copy") && err.contains("checksum"), "{err}");
        std::fs::write(dir.path().join("data/0.copy"), b"row").unwrap();
        let err = verify("s", dir.path(), &files).unwrap_err().to_string();
        assert!(err.contains("3 bytes"), "{err}");
    }

    fn exported(dir: &Path) -> PathBuf {
        let snap = dir.join("snap");
        std::fs::create_dir_all(snap.join("stores/redis")).unwrap();
        std::fs::write(snap.join("stores/redis/keys.bin"), vec![7u8; 100_000]).unwrap();
        let files = checksums(&snap.join("stores/redis")).unwrap();
        let manifest = Manifest {
            format: FORMAT,
            name: "s".into(),
            project: "p".into(),
            created: "2026-11-30T02:15:30.000Z".into(),
            vibedev: "0".into(),
            git: None,
            migrations: None,
            auto: None,
            stores: vec![StoreEntry {
                service: "redis".into(),
                kind: "redis".into(),
                saved: Counted::new(1, "keys"),
                bytes: 100_000,
                files,
            }],
        };
        let file = dir.join("s.vdsnap");
        let bytes = archive::export(&manifest, &snap, &file).unwrap();
        assert_eq!(bytes, std::fs::metadata(&file).unwrap().len());
        assert!(bytes < 10_000, "compressed: {bytes}");
        file
    }

    #[test]
    fn exports_unpack_whole_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = exported(dir.path());
        let into = dir.path().join("into");
        let m = archive::unpack(&file, &into).unwrap();
        assert_eq!(m.stores[0].service, "redis");
        verify("s", &into.join("stores/redis"), &m.stores[0].files).unwrap();

        let bytes = std::fs::read(&file).unwrap();
        let write = |b: &[u8]| {
            let f = dir.path().join("bad.vdsnap");
            std::fs::write(&f, b).unwrap();
            f
        };
        let refused = |b: &[u8]| {
            let into = dir.path().join(format!("into-{}", b.len()));
            let err = archive::unpack(&write(b), &into).unwrap_err();
            assert!(!into.join(MANIFEST).exists());
            err.to_string()
        };
        let mut corrupt = bytes.clone();
        corrupt[30] ^= 1;
        assert!(refused(&corrupt).contains("corrupt"));
        assert!(refused(&bytes[..bytes.len() - 5]).contains("truncated"));
        assert!(refused(&bytes[..bytes.len() / 2]).contains("truncated"));
        assert!(refused(b"PK\x03\x04 a zip").contains("not a snapshot file"));
        let mut future = bytes.clone();
        future[16..20].copy_from_slice(&2u32.to_le_bytes());
        let err = archive::unpack(&write(&future), &dir.path().join("f")).unwrap_err();
        assert!(
            matches!(err, SnapshotError::NewerArchive { found: 2, .. }),
            "{err}"
        );
        // An existing file is never overwritten.
        let m = archive::unpack(&file, &dir.path().join("again")).unwrap();
        let err = archive::export(&m, &dir.path().join("again"), &file).unwrap_err();
        assert!(matches!(err, SnapshotError::FileExists { .. }), "{err}");
    }
}
