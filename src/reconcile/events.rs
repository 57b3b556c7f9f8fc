//! What `up` and `down` report as they go.

use std::sync::Arc;
use std::time::Duration;

/// What happened, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    PullStarted {
        image: String,
    },
    PullProgress {
        image: String,
        current: u64,
        total: u64,
    },
    PullStatus {
        image: String,
        status: String,
    },
    PullDone {
        image: String,
        elapsed: Duration,
    },
    /// The action chosen for a service (create, recreate, start, keep).
    Planned {
        service: String,
        action: &'static str,
    },
    Waiting {
        service: String,
    },
    /// Ready, after `action` (`keep` when nothing was changed).
    Ready {
        service: String,
        action: &'static str,
        elapsed: Duration,
    },
    /// Something prepared on a ready service (a role, a database, a bucket).
    Prepared {
        service: String,
        what: String,
    },
    OrphanRemoved {
        service: String,
    },
    /// A container of the project whose service left the stack, kept (`--remove-orphans`).
    OrphanKept {
        service: String,
    },
    /// Duplicate project networks were reduced to one, or a missing network is made again.
    NetworkRepaired {
        what: String,
    },
    /// A service's image is being built (`build:`).
    BuildStarted {
        service: String,
        image: String,
    },
    /// A line of a build's output.
    BuildOutput {
        service: String,
        line: String,
    },
    BuildDone {
        service: String,
        image: String,
        elapsed: Duration,
    },
    /// A missing bind-mount source folder was created, as Compose does.
    MountSourceCreated {
        service: String,
        path: std::path::PathBuf,
    },
    /// A service bind-mounts host paths while the engine runs on another machine: the paths
    /// are that machine's.
    RemoteBindMounts {
        service: String,
        paths: Vec<std::path::PathBuf>,
    },
    Removed {
        name: String,
    },
}

/// The reporter: called from many tasks, so it must be cheap and thread-safe.
pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;
