//! The top-level error: every domain error, its hint (the next step for the user) and its exit
//! code. Rendered once, by `ui`.

mod diagnostic;

use crate::autoports::PortsError;
use crate::branches::BranchError;
use crate::config::ConfigError;
use crate::data::DataError;
use crate::engine::EngineError;
use crate::lock::LockError;
use crate::migrate::MigrateError;
use crate::reconcile::UpError;
use crate::scaffold::InitError;
use crate::secrets::SecretsError;
use crate::services::seed::SeedError;
use crate::snapshot::SnapshotError;
use crate::stack::UnknownService;
use crate::watch::WatchError;
use crate::web::WebError;

pub use crate::exit::Exit;

/// What every error shown to the user answers: how vibedev exits because of it, and what to do
/// next. Each implementation matches every variant by name, so a new variant needs a decision.
pub trait Diagnostic: std::error::Error {
    /// The exit code the failure ends vibedev with.
    fn exit_code(&self) -> Exit;
    /// The next step for the user, when there is one.
    fn hint(&self) -> Option<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Up(#[from] UpError),
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Ports(#[from] PortsError),
    #[error(transparent)]
    Branch(#[from] BranchError),
    #[error(transparent)]
    Web(#[from] WebError),
    #[error("interrupted")]
    Interrupted { hint: String },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Failures of a command itself rather than of a domain module.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// `vibedev logs` on a project without containers.
    #[error("project {project} has no containers")]
    NoContainers { project: String },
    /// `vibedev run`: a variable Linux would refuse to pass to any command.
    #[error(
        "{key} in {file} is {size} bytes, over the {limit}-byte limit Linux sets on one environment variable: no command can be started with it"
    )]
    VariableTooLarge {
        key: String,
        file: &'static str,
        size: usize,
        limit: usize,
    },
    /// `vibedev run` without a command.
    #[error("no command to run")]
    NoCommand,
    /// `vibedev env` while no service of the stack runs.
    #[error("the stack of project {project} is not running")]
    StackNotRunning { project: String },
    /// `vibedev env`: a value a dotenv line cannot hold.
    #[error("the value of {key} cannot be written as a dotenv line: {why}")]
    NotDotenv { key: String, why: String },
    /// `vibedev run`: `VIBEDEV_RUN_GRACE` is not a number of seconds vibedev accepts.
    #[error("VIBEDEV_RUN_GRACE={value:?} is not a number of seconds from 0 to 3600")]
    BadGrace { value: String },
    /// `vibedev run --watch`: a file it follows cannot be watched.
    #[error("cannot watch {}", path.display())]
    Watch {
        path: std::path::PathBuf,
        #[source]
        source: notify::Error,
    },
    /// `vibedev reset-db` without `--yes` and without a terminal to ask on.
    #[error(
        "reset-db replaces database {database:?} and needs confirmation, but there is no terminal to ask on"
    )]
    NeedsConfirmation { database: String },
    /// `vibedev prune` without `--yes` and without a terminal to ask on.
    #[error(
        "prune removes {stacks} stack(s) with their data and needs confirmation, but there is no terminal to ask on"
    )]
    PruneNeedsConfirmation { stacks: usize },
    /// `vibedev branch prune` without `--yes` and without a terminal to ask on.
    #[error(
        "branch prune removes the data of {branches} branch(es) and needs confirmation, but there is no terminal to ask on"
    )]
    BranchPruneNeedsConfirmation { branches: usize },
    /// `vibedev run`: the command could not be started.
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Container log lines that explain the failure, per service.
    pub fn log_lines(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Error::Up(e) => e.log_lines(),
            _ => Vec::new(),
        }
    }
}
