//! Watching the project's files: notify plus a debouncer, directories rather than file handles
//! (editors replace files on save), each event path mapped to the kind of change it is. The
//! command that acts on the changes lives in `commands/watch.rs`; nothing here prints.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, Debouncer, NoCache, RecommendedCache, new_debouncer_opt,
};
use tokio::sync::mpsc;

use crate::config::Project;
use crate::services::Kind;

/// How long the debouncer waits for a burst of events to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(60);

/// What changed, in the order its action runs when several changed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// `vibedev.toml` or the compose file: reconcile the stack.
    Stack,
    /// The checkout's git HEAD (a branch switch) with a database per branch: use the branch's.
    Branch,
    /// The migrations folder: apply pending migrations.
    Migrations,
    /// A kind's seed folder (the bucket's, Firestore's): load it into that store.
    Seed(Kind),
    /// The env template: pull secrets.
    EnvTemplate,
}

impl Change {
    /// A change of a watched folder (whose watch may need renewing), not of a single file.
    pub fn is_folder(self) -> bool {
        matches!(self, Change::Migrations | Change::Seed(_))
    }

    pub fn describe(self) -> String {
        match self {
            Change::Stack => "config".into(),
            Change::Branch => "git HEAD".into(),
            Change::Migrations => "migrations".into(),
            Change::Seed(kind) => format!("{} seed", kind.seed_name().unwrap_or(kind.name())),
            Change::EnvTemplate => "env template".into(),
        }
    }
}

/// The files and folders a project's watch follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchPaths {
    pub config: Option<PathBuf>,
    pub compose: Option<PathBuf>,
    pub env_template: Option<PathBuf>,
    pub migrations: Option<PathBuf>,
    /// Each kind's seed folder.
    pub seeds: Vec<(Kind, PathBuf)>,
    /// The checkout's git HEAD file, followed when something under `[branches]` follows the
    /// branch.
    pub git_head: Option<PathBuf>,
}

impl WatchPaths {
    /// The paths a project's config names (whether or not they exist yet).
    pub fn of(project: &Project) -> WatchPaths {
        let paths = project.paths();
        WatchPaths {
            config: project.config_path.clone().map(canonical),
            compose: paths.compose.map(canonical),
            env_template: paths.env_template.map(canonical),
            migrations: Some(canonical(paths.migrations)),
            seeds: Kind::ALL
                .into_iter()
                .filter_map(|k| Some((k, canonical(k.seed_folder(&paths.seeds)?.to_path_buf()))))
                .collect(),
            git_head: project
                .file
                .branches
                .follows_any()
                .then(|| crate::git::head_file(&project.root))
                .flatten()
                .map(canonical),
        }
    }

    /// Which change an event on `path` is, if any.
    pub fn classify(&self, path: &Path) -> Option<Change> {
        let name = path.file_name()?.to_string_lossy();
        // Editors' swap, backup and temp files are not saves.
        if name.starts_with('.')
            || name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".tmp")
        {
            return None;
        }
        let is = |p: &Option<PathBuf>| p.as_deref() == Some(path);
        // Inside the folder, the folder itself (deleted, moved, put back), or a folder on the way
        // to it (`mkdir -p seed/bucket`).
        let under_dir = |dir: &Path| path.starts_with(dir) || dir.starts_with(path);
        let under = |p: &Option<PathBuf>| p.as_deref().is_some_and(under_dir);
        if is(&self.config) || is(&self.compose) {
            Some(Change::Stack)
        } else if is(&self.git_head) {
            Some(Change::Branch)
        } else if is(&self.env_template) {
            Some(Change::EnvTemplate)
        } else if under(&self.migrations) {
            Some(Change::Migrations)
        } else {
            self.seeds
                .iter()
                .find(|(_, dir)| under_dir(dir))
                .map(|(kind, _)| Change::Seed(*kind))
        }
    }

    /// The directories to watch: the parents of single files (not recursive), and the folders
    /// (recursive) with their parents (not recursive), so a folder deleted or moved and put back
    /// is seen. A folder that does not exist (yet, or any more) is watched through its nearest
    /// existing ancestor.
    pub fn roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut roots: Vec<(PathBuf, RecursiveMode)> = Vec::new();
        let mut add = |dir: PathBuf, mode: RecursiveMode| {
            if let Some(existing) = roots.iter_mut().find(|(d, _)| *d == dir) {
                if mode == RecursiveMode::Recursive {
                    existing.1 = mode;
                }
            } else {
                roots.push((dir, mode));
            }
        };
        for file in [
            &self.config,
            &self.compose,
            &self.env_template,
            &self.git_head,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(dir) = file.parent() {
                add(dir.to_path_buf(), RecursiveMode::NonRecursive);
            }
        }
        for dir in self
            .migrations
            .iter()
            .chain(self.seeds.iter().map(|(_, dir)| dir))
        {
            if dir.is_dir() {
                add(dir.clone(), RecursiveMode::Recursive);
            }
            if let Some(existing) = dir.ancestors().skip(1).find(|a| a.is_dir()) {
                add(existing.to_path_buf(), RecursiveMode::NonRecursive);
            }
        }
        roots
    }
}

fn canonical(p: PathBuf) -> PathBuf {
    match p.canonicalize() {
        Ok(c) => c,
        // Not there yet: canonicalize the parent so paths compare equal to notify's.
        Err(_) => match (
            p.parent().and_then(|d| d.canonicalize().ok()),
            p.file_name(),
        ) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => p,
        },
    }
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the OS file watcher ran out of watches (inotify limit) while watching {path}")]
    TooManyWatches { path: PathBuf },
    #[error("cannot watch {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl WatchError {
    pub fn hint(&self) -> Option<String> {
        match self {
            WatchError::TooManyWatches { .. } => Some(
                "raise the limit (`sudo sysctl fs.inotify.max_user_watches=524288` and `fs.inotify.max_user_instances=1024`), or run `vibedev watch --poll`"
                    .into(),
            ),
            WatchError::Watch { .. } => None,
        }
    }
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    inner: Inner,
    /// The directories watched now, as [`WatchPaths::roots`] gave them.
    armed: Vec<(PathBuf, RecursiveMode)>,
}

enum Inner {
    Native(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, NoCache>),
}

impl Watcher {
    fn watch(&mut self, dir: &Path, mode: RecursiveMode) -> Result<(), WatchError> {
        let r = match &mut self.inner {
            Inner::Native(d) => d.watch(dir, mode),
            Inner::Poll(d) => d.watch(dir, mode),
        };
        r.map_err(|source| to_watch_error(dir.to_path_buf(), source))
    }

    fn unwatch(&mut self, dir: &Path) {
        // Gone with its directory already, or never armed: nothing to undo.
        let _ = match &mut self.inner {
            Inner::Native(d) => d.unwatch(dir),
            Inner::Poll(d) => d.unwatch(dir),
        };
    }

    /// Watches what `paths` needs now, keeping the queue of events: a folder that appeared is
    /// watched, one that disappeared is followed through its parent, and folder watches are
    /// renewed (a folder deleted and put back is another directory, unknown to the old watch).
    pub fn rearm(&mut self, paths: &WatchPaths) -> Result<(), WatchError> {
        let wanted = paths.roots();
        let armed = std::mem::take(&mut self.armed);
        for (dir, mode) in armed {
            if mode == RecursiveMode::NonRecursive && wanted.contains(&(dir.clone(), mode)) {
                self.armed.push((dir, mode));
            } else {
                self.unwatch(&dir);
            }
        }
        for (dir, mode) in wanted {
            if !self.armed.contains(&(dir.clone(), mode)) {
                self.watch(&dir, mode)?;
                self.armed.push((dir, mode));
            }
        }
        Ok(())
    }
}

/// A batch of changes, or errors the watcher reported.
pub type Batch = Result<BTreeSet<Change>, String>;

/// Starts watching; batches of classified changes arrive on the returned channel. The notify
/// callback never blocks: it classifies and forwards.
pub fn start(
    paths: &WatchPaths,
    poll: bool,
) -> Result<(Watcher, mpsc::UnboundedReceiver<Batch>), WatchError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let classify = paths.clone();
    let handler = move |result: DebounceEventResult| {
        let batch = match result {
            Ok(events) => {
                let changes: BTreeSet<Change> = events
                    .iter()
                    .filter(|e| !e.kind.is_access())
                    .flat_map(|e| e.paths.iter())
                    .filter_map(|p| classify.classify(p))
                    .collect();
                if changes.is_empty() {
                    return;
                }
                Ok(changes)
            }
            Err(errors) => Err(errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")),
        };
        let _ = tx.send(batch);
    };
    let inner = if poll {
        let config = notify::Config::default().with_poll_interval(Duration::from_millis(200));
        Inner::Poll(
            new_debouncer_opt::<_, PollWatcher, NoCache>(DEBOUNCE, None, handler, NoCache, config)
                .map_err(|source| WatchError::Watch {
                    path: PathBuf::from("."),
                    source,
                })?,
        )
    } else {
        Inner::Native(
            new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
                DEBOUNCE,
                None,
                handler,
                RecommendedCache::new(),
                notify::Config::default(),
            )
            .map_err(|source| to_watch_error(PathBuf::from("."), source))?,
        )
    };
    let mut watcher = Watcher {
        inner,
        armed: Vec::new(),
    };
    watcher.rearm(paths)?;
    Ok((watcher, rx))
}

fn to_watch_error(path: PathBuf, source: notify::Error) -> WatchError {
    let too_many = matches!(source.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&source.kind, notify::ErrorKind::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EMFILE));
    if too_many {
        WatchError::TooManyWatches { path }
    } else {
        WatchError::Watch { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> WatchPaths {
        WatchPaths {
            config: Some("/p/vibedev.toml".into()),
            compose: Some("/p/compose/docker-compose.yml".into()),
            env_template: Some("/p/templates/env.gcp.tmpl".into()),
            migrations: Some("/p/drizzle".into()),
            seeds: vec![
                (Kind::GCS, "/p/seed/bucket".into()),
                (Kind::FIRESTORE, "/p/seed/firestore".into()),
            ],
            git_head: Some("/p/.git/worktrees/p/HEAD".into()),
        }
    }

    #[test]
    fn paths_map_to_changes() {
        let w = paths();
        let c = |p: &str| w.classify(Path::new(p));
        assert_eq!(c("/p/vibedev.toml"), Some(Change::Stack));
        assert_eq!(c("/p/compose/docker-compose.yml"), Some(Change::Stack));
        assert_eq!(c("/p/templates/env.gcp.tmpl"), Some(Change::EnvTemplate));
        assert_eq!(c("/p/drizzle/0004_x.sql"), Some(Change::Migrations));
        assert_eq!(c("/p/drizzle/meta/_journal.json"), Some(Change::Migrations));
        assert_eq!(c("/p/seed/bucket/a/b.txt"), Some(Change::Seed(Kind::GCS)));
        assert_eq!(
            c("/p/seed/firestore/apps/1.json"),
            Some(Change::Seed(Kind::FIRESTORE))
        );
        assert_eq!(c("/p/.git/worktrees/p/HEAD"), Some(Change::Branch));
        assert_eq!(c("/p/.git/worktrees/p/HEAD.lock"), None);
        assert_eq!(c("/p/.git/worktrees/p/index"), None);
        assert_eq!(c("/p/.env.gcp"), None);
        assert_eq!(c("/p/README.md"), None);
        assert_eq!(c("/p/drizzle/.0004_x.sql.swp"), None);
        assert_eq!(c("/p/vibedev.toml~"), None);
        // The folder itself deleted, moved or put back.
        assert_eq!(c("/p/drizzle"), Some(Change::Migrations));
        assert_eq!(c("/p/drizzle.old"), None);
    }

    #[test]
    fn roots_are_directories_with_the_right_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("drizzle")).unwrap();
        let w = WatchPaths {
            config: Some(root.join("vibedev.toml")),
            migrations: Some(root.join("drizzle")),
            seeds: vec![(Kind::GCS, root.join("seed/bucket"))],
            ..Default::default()
        };
        let roots = w.roots();
        assert!(roots.contains(&(root.clone(), RecursiveMode::NonRecursive)));
        assert!(roots.contains(&(root.join("drizzle"), RecursiveMode::Recursive)));
        // Not there yet: its nearest existing ancestor is watched, so its creation is seen.
        assert_eq!(roots.len(), 2, "{roots:?}");
        assert_eq!(
            w.classify(&root.join("seed")),
            Some(Change::Seed(Kind::GCS))
        );
    }

    #[test]
    fn a_folders_parent_is_watched_so_it_can_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("db/migrations")).unwrap();
        let w = WatchPaths {
            migrations: Some(root.join("db/migrations")),
            ..Default::default()
        };
        assert_eq!(
            w.roots(),
            [
                (root.join("db/migrations"), RecursiveMode::Recursive),
                (root.join("db"), RecursiveMode::NonRecursive)
            ]
        );
        std::fs::remove_dir_all(root.join("db")).unwrap();
        assert_eq!(w.roots(), [(root.clone(), RecursiveMode::NonRecursive)]);
        assert_eq!(w.classify(&root.join("db")), Some(Change::Migrations));
    }

    #[test]
    fn running_out_of_inotify_watches_says_what_to_raise() {
        let err = to_watch_error(
            PathBuf::from("/p"),
            notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
        );
        assert!(matches!(err, WatchError::TooManyWatches { .. }), "{err:?}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("fs.inotify.max_user_watches") && hint.contains("--poll"),
            "{hint}"
        );
        let other = to_watch_error(
            PathBuf::from("/p"),
            notify::Error::io(std::io::Error::from_raw_os_error(libc::EACCES)),
        );
        assert!(matches!(other, WatchError::Watch { .. }), "{other:?}");
    }
}
