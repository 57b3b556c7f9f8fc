//! The top-level error: every domain error, its hint (the next step for the user) and its exit
//! code. Rendered once, by `ui`.

use crate::config::ConfigError;
use crate::data::DataError;
use crate::engine::EngineError;
use crate::lock::LockError;
use crate::migrate::MigrateError;
use crate::reconcile::UpError;
use crate::secrets::SecretsError;
use crate::services::seed::SeedError;
use crate::stack::UnknownService;
use crate::watch::WatchError;

/// Exit codes, stable for scripts (documented in the README).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_DOCKER: u8 = 3;
/// `vibedev doctor`: at least one check warned, none failed.
pub const EXIT_DOCTOR_WARN: u8 = 4;
/// `vibedev doctor`: at least one check failed.
pub const EXIT_DOCTOR_FAIL: u8 = 5;
/// `vibedev migrate status --exit-code`: some journal entry is pending, drifted or out of order.
pub const EXIT_MIGRATIONS_NOT_IN_STEP: u8 = 6;
/// `vibedev status --exit-code`: some service is not running or not ready.
pub const EXIT_NOT_READY: u8 = 7;
pub const EXIT_INTERRUPTED: u8 = 130;

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
    #[error("interrupted")]
    Interrupted { hint: String },
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn failed(message: impl Into<String>, hint: Option<String>) -> Error {
        Error::Failed {
            message: message.into(),
            hint,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The next step for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Engine(e) => e.hint(),
            Error::Up(e) => e.hint(),
            Error::UnknownService(u) => {
                Some(format!("services of this stack: {}", u.known.join(", ")))
            }
            Error::Migrate(e) => e.hint(),
            Error::Seed(e) => e.hint(),
            Error::Data(e) => e.hint(),
            Error::Secrets(e) => e.hint(),
            Error::Watch(e) => e.hint(),
            Error::Lock(e) => e.hint(),
            Error::Interrupted { hint } => Some(hint.clone()),
            Error::Failed { hint, .. } => hint.clone(),
            Error::Io { .. } => None,
        }
    }

    /// Container log lines that explain the failure, per service.
    pub fn log_lines(&self) -> Vec<(String, Vec<String>)> {
        match self {
            Error::Up(e) => e.log_lines(),
            _ => Vec::new(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::UnknownService(_) => EXIT_USAGE,
            Error::Secrets(e) if e.is_usage() => EXIT_USAGE,
            Error::Up(UpError::UnknownService(_)) => EXIT_USAGE,
            // A DOCKER_HOST vibedev cannot use is a setting to fix, not an engine to start.
            Error::Engine(EngineError::BadEndpoint { .. }) => EXIT_USAGE,
            Error::Engine(e) if e.is_connection_lost() => EXIT_DOCKER,
            Error::Up(e) if e.is_connection_lost() => EXIT_DOCKER,
            Error::Data(DataError::Engine(e)) if e.is_connection_lost() => EXIT_DOCKER,
            Error::Interrupted { .. } => EXIT_INTERRUPTED,
            _ => EXIT_FAILURE,
        }
    }
}
