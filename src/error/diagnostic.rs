//! [`Diagnostic`] for every error that reaches the user: exit codes decided here, variant by
//! variant; hints come from the domain types, which know their facts best.

use super::{CommandError, Diagnostic, Error, Exit};
use crate::autoports::PortsError;
use crate::branches::BranchError;
use crate::config::ConfigError;
use crate::data::DataError;
use crate::engine::EngineError;
use crate::lock::LockError;
use crate::migrate::MigrateError;
use crate::migrate::journal::JournalError;
use crate::reconcile::UpError;
use crate::scaffold::InitError;
use crate::secrets::SecretsError;
use crate::services::seed::SeedError;
use crate::snapshot::SnapshotError;
use crate::stack::UnknownService;
use crate::watch::WatchError;
use crate::web::WebError;

impl Diagnostic for Error {
    fn exit_code(&self) -> Exit {
        match self {
            Error::Config(e) => e.exit_code(),
            Error::Engine(e) => e.exit_code(),
            Error::Up(e) => e.exit_code(),
            Error::UnknownService(e) => e.exit_code(),
            Error::Migrate(e) => e.exit_code(),
            Error::Seed(e) => e.exit_code(),
            Error::Data(e) => e.exit_code(),
            Error::Secrets(e) => e.exit_code(),
            Error::Watch(e) => e.exit_code(),
            Error::Lock(e) => e.exit_code(),
            Error::Init(e) => e.exit_code(),
            Error::Snapshot(e) => e.exit_code(),
            Error::Command(e) => e.exit_code(),
            Error::Ports(e) => e.exit_code(),
            Error::Branch(e) => e.exit_code(),
            Error::Web(e) => e.exit_code(),
            Error::Interrupted { .. } => Exit::Interrupted,
            Error::Io { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => Diagnostic::hint(e),
            Error::Engine(e) => Diagnostic::hint(e),
            Error::Up(e) => Diagnostic::hint(e),
            Error::UnknownService(e) => Diagnostic::hint(e),
            Error::Migrate(e) => Diagnostic::hint(e),
            Error::Seed(e) => Diagnostic::hint(e),
            Error::Data(e) => Diagnostic::hint(e),
            Error::Secrets(e) => Diagnostic::hint(e),
            Error::Watch(e) => Diagnostic::hint(e),
            Error::Lock(e) => Diagnostic::hint(e),
            Error::Init(e) => Diagnostic::hint(e),
            Error::Snapshot(e) => Diagnostic::hint(e),
            Error::Command(e) => Diagnostic::hint(e),
            Error::Ports(e) => Diagnostic::hint(e),
            Error::Branch(e) => Diagnostic::hint(e),
            Error::Web(e) => Diagnostic::hint(e),
            Error::Interrupted { hint } => Some(hint.clone()),
            Error::Io { .. } => None,
        }
    }
}

impl Diagnostic for ConfigError {
    fn exit_code(&self) -> Exit {
        match self {
            ConfigError::Read { .. }
            | ConfigError::Syntax { .. }
            | ConfigError::Invalid { .. }
            | ConfigError::Cwd(_)
            | ConfigError::EnvFlag { .. } => Exit::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        ConfigError::hint(self)
    }
}

impl Diagnostic for PortsError {
    fn exit_code(&self) -> Exit {
        match self {
            PortsError::FixedAgainstConfig { .. } | PortsError::Corrupt { .. } => Exit::Usage,
            PortsError::NoStateDir | PortsError::Io { .. } | PortsError::Exhausted { .. } => {
                Exit::Failure
            }
        }
    }

    fn hint(&self) -> Option<String> {
        PortsError::hint(self)
    }
}

impl Diagnostic for BranchError {
    fn exit_code(&self) -> Exit {
        match self {
            BranchError::SlugCollision { .. }
            | BranchError::NoDefaultBranch
            | BranchError::NotFound { .. }
            | BranchError::AppDatabase { .. }
            | BranchError::DefaultBranch { .. } => Exit::Usage,
            BranchError::InUse { .. } | BranchError::BranchInUse { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        BranchError::hint(self)
    }
}

impl Diagnostic for EngineError {
    fn exit_code(&self) -> Exit {
        match self {
            EngineError::Unreachable { .. } | EngineError::Timeout { .. } => Exit::Docker,
            // A DOCKER_HOST vibedev cannot use is a setting to fix, not an engine to start.
            EngineError::BadEndpoint { .. } => Exit::Usage,
            EngineError::Ssh { source, .. }
                if matches!(source.as_ref(), crate::engine::ssh::SshError::BadUrl(_)) =>
            {
                Exit::Usage
            }
            EngineError::Ssh { .. } => Exit::Docker,
            EngineError::Api { .. } if self.is_connection_lost() => Exit::Docker,
            EngineError::Api { .. }
            | EngineError::Pull { .. }
            | EngineError::Foreign { .. }
            | EngineError::Build { .. }
            | EngineError::Relay { .. }
            | EngineError::Context(_) => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        EngineError::hint(self)
    }
}

impl Diagnostic for UpError {
    fn exit_code(&self) -> Exit {
        match self {
            UpError::UnknownService(e) => e.exit_code(),
            UpError::Engine(e) => e.exit_code(),
            UpError::Service { source, .. } if source.is_connection_lost() => Exit::Docker,
            UpError::Several(errs) if errs.iter().any(UpError::is_connection_lost) => Exit::Docker,
            UpError::Service { .. }
            | UpError::Several(_)
            | UpError::PortInUse { .. }
            | UpError::NotReady { .. }
            | UpError::Exited { .. }
            | UpError::JobFailed { .. }
            | UpError::DependencyFailed { .. }
            | UpError::Mount { .. }
            | UpError::Interrupted => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        UpError::hint(self)
    }
}

impl Diagnostic for UnknownService {
    fn exit_code(&self) -> Exit {
        Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(format!("services of this stack: {}", self.known.join(", ")))
    }
}

impl Diagnostic for MigrateError {
    fn exit_code(&self) -> Exit {
        match self {
            MigrateError::Journal(e) => e.exit_code(),
            MigrateError::Connect { .. }
            | MigrateError::Query { .. }
            | MigrateError::Statement(_)
            | MigrateError::Extension { .. }
            | MigrateError::OutOfOrder { .. }
            | MigrateError::LockTimeout { .. }
            | MigrateError::SeedRead { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        MigrateError::hint(self)
    }
}

impl Diagnostic for JournalError {
    fn exit_code(&self) -> Exit {
        match self {
            JournalError::Missing { .. }
            | JournalError::Read { .. }
            | JournalError::Syntax { .. }
            | JournalError::Dialect { .. }
            | JournalError::MissingFile { .. }
            | JournalError::NotUtf8 { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        JournalError::hint(self)
    }
}

impl Diagnostic for SeedError {
    fn exit_code(&self) -> Exit {
        match self {
            SeedError::Read { .. } | SeedError::Invalid { .. } | SeedError::Api { .. } => {
                Exit::Failure
            }
            SeedError::Sql(e) => e.exit_code(),
        }
    }

    fn hint(&self) -> Option<String> {
        SeedError::hint(self)
    }
}

impl Diagnostic for SnapshotError {
    fn exit_code(&self) -> Exit {
        match self {
            // What was asked for cannot be done as asked.
            SnapshotError::BadName { .. }
            | SnapshotError::UnknownOnly { .. }
            | SnapshotError::NotFound { .. }
            | SnapshotError::NoAutomatic { .. }
            | SnapshotError::FileExists { .. }
            | SnapshotError::Exists { .. } => Exit::Usage,
            SnapshotError::Engine(e) => e.exit_code(),
            SnapshotError::AutoSave { source, .. } => source.exit_code(),
            SnapshotError::Interrupted { .. } => Exit::Interrupted,
            SnapshotError::Nothing
            | SnapshotError::NotRunning { .. }
            | SnapshotError::NewerFormat { .. }
            | SnapshotError::Damaged { .. }
            | SnapshotError::Save { .. }
            | SnapshotError::Restore { .. }
            | SnapshotError::Pause { .. }
            | SnapshotError::Unpause { .. }
            | SnapshotError::BadArchive { .. }
            | SnapshotError::NewerArchive { .. }
            | SnapshotError::NoDataFolder
            | SnapshotError::Io { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        SnapshotError::hint(self)
    }
}

impl Diagnostic for DataError {
    fn exit_code(&self) -> Exit {
        match self {
            DataError::NotRunning { .. }
            | DataError::KindNotRunning { .. }
            | DataError::NoDatabase
            | DataError::BranchData { .. } => Exit::Failure,
            // Asking for a seed the project does not configure: a setting to add.
            DataError::SeedNotConfigured { .. } => Exit::Failure,
            DataError::Seed(e) => e.exit_code(),
            DataError::Migrate(e) => e.exit_code(),
            DataError::Engine(e) => e.exit_code(),
        }
    }

    fn hint(&self) -> Option<String> {
        DataError::hint(self)
    }
}

impl Diagnostic for SecretsError {
    fn exit_code(&self) -> Exit {
        match self {
            // Mistakes in what the user asked for, as opposed to failures on the way.
            SecretsError::NoProject
            | SecretsError::Template(_)
            | SecretsError::BadDerivedName { .. }
            | SecretsError::DerivedClash { .. } => Exit::Usage,
            SecretsError::TemplateRead { .. }
            | SecretsError::BadSetting { .. }
            | SecretsError::DeadlineTooLong { .. }
            | SecretsError::NoCredentials { .. }
            | SecretsError::UserCredentials { .. }
            | SecretsError::Metadata { .. }
            | SecretsError::KeyRejected { .. }
            | SecretsError::TokenEndpoint { .. }
            | SecretsError::CredentialsFile { .. }
            | SecretsError::Token { .. }
            | SecretsError::Client { .. }
            | SecretsError::BadEndpoint { .. }
            | SecretsError::List { .. }
            | SecretsError::Fetch { .. }
            | SecretsError::TooLarge { .. }
            | SecretsError::Deadline { .. }
            | SecretsError::NotUtf8 { .. }
            | SecretsError::Unportable { .. }
            | SecretsError::Tracked { .. }
            | SecretsError::Foreign { .. }
            | SecretsError::ForeignFiles { .. }
            | SecretsError::Read { .. }
            | SecretsError::NoStateDir
            | SecretsError::FingerprintKey { .. }
            | SecretsError::Write { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        SecretsError::hint(self)
    }
}

impl Diagnostic for WatchError {
    fn exit_code(&self) -> Exit {
        match self {
            WatchError::TooManyWatches { .. } | WatchError::Watch { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        WatchError::hint(self)
    }
}

impl Diagnostic for LockError {
    fn exit_code(&self) -> Exit {
        match self {
            LockError::Timeout { .. } | LockError::Io { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        LockError::hint(self)
    }
}

impl Diagnostic for InitError {
    fn exit_code(&self) -> Exit {
        Exit::Failure
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "check that {} is writable; files written before this one stay",
            self.root.display()
        ))
    }
}

impl Diagnostic for CommandError {
    fn exit_code(&self) -> Exit {
        match self {
            CommandError::NoContainers { .. }
            | CommandError::VariableTooLarge { .. }
            | CommandError::NoCommand
            | CommandError::StackNotRunning { .. }
            | CommandError::NotDotenv { .. }
            | CommandError::NeedsConfirmation { .. }
            | CommandError::Watch { .. }
            | CommandError::BadGrace { .. }
            | CommandError::PruneNeedsConfirmation { .. }
            | CommandError::BranchPruneNeedsConfirmation { .. }
            | CommandError::Spawn { .. } => Exit::Failure,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            CommandError::NoContainers { .. } => "run `vibedev up` first".into(),
            CommandError::VariableTooLarge { key, .. } => format!(
                "write it to a file instead: {key}={{{{ secret \"NAME\" file=\"NAME\" }}}} in the env template, then `vibedev secrets pull`"
            ),
            CommandError::NoCommand => "vibedev run -- CMD [ARGS...]".into(),
            CommandError::StackNotRunning { .. } => "run `vibedev up` first".into(),
            CommandError::NotDotenv { .. } => {
                "use `vibedev env --format json` or `--format shell`".into()
            }
            CommandError::NeedsConfirmation { .. } => "pass --yes to confirm (scripts, CI)".into(),
            CommandError::BadGrace { .. } => "unset it for the default of 10 seconds".into(),
            CommandError::Watch { .. } => "run without --watch".into(),
            CommandError::PruneNeedsConfirmation { .. }
            | CommandError::BranchPruneNeedsConfirmation { .. } => {
                "check the list above, then pass --yes to remove them (scripts, CI)".into()
            }
            CommandError::Spawn { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "check the command's name and PATH".into(),
                std::io::ErrorKind::PermissionDenied => "check that the file is executable".into(),
                _ => "check the command".into(),
            },
        })
    }
}

impl Diagnostic for WebError {
    fn exit_code(&self) -> Exit {
        match self {
            WebError::Bind { .. } | WebError::BadRequest { .. } | WebError::NotFound { .. } => {
                Exit::Usage
            }
            WebError::Serve(_) | WebError::Template { .. } | WebError::Stopped { .. } => {
                Exit::Failure
            }
            WebError::Engine(e) => e.exit_code(),
            WebError::Data(e) => e.exit_code(),
            WebError::Up(e) => e.exit_code(),
            WebError::Lock(e) => e.exit_code(),
            WebError::Snapshot(e) => e.exit_code(),
            WebError::Secrets(e) => e.exit_code(),
        }
    }

    fn hint(&self) -> Option<String> {
        WebError::hint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: impl Into<Error>) -> u8 {
        err.into().exit_code().code()
    }

    fn refused() -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "conflict".into(),
        }
    }

    fn endpoint() -> crate::engine::Endpoint {
        crate::engine::Endpoint {
            url: "unix:///nowhere.sock".into(),
            source: crate::engine::EndpointSource::DefaultSocket,
        }
    }

    #[test]
    fn usage_mistakes_exit_2() {
        let unknown = || UnknownService {
            name: "nope".into(),
            known: vec!["postgres".into()],
        };
        assert_eq!(code(unknown()), 2);
        assert_eq!(code(UpError::UnknownService(unknown())), 2);
        assert_eq!(code(ConfigError::Cwd(std::io::Error::other("gone"))), 2);
        assert_eq!(code(SecretsError::NoProject), 2);
        assert_eq!(
            code(EngineError::BadEndpoint {
                url: "ftp://x".into(),
                source: bollard::errors::Error::UnsupportedURISchemeError {
                    uri: "ftp://x".into()
                },
            }),
            2
        );
    }

    #[test]
    fn an_engine_that_went_away_exits_3() {
        let gone = || EngineError::Timeout {
            endpoint: endpoint(),
            secs: 5,
        };
        assert_eq!(code(gone()), 3);
        assert_eq!(code(UpError::Engine(gone())), 3);
        assert_eq!(
            code(UpError::Several(vec![
                UpError::Interrupted,
                UpError::Service {
                    service: "postgres".into(),
                    action: "start",
                    reason: "gone".into(),
                    source: Box::new(EngineError::Api {
                        action: "start".into(),
                        source: bollard::errors::Error::RequestTimeoutError,
                    }),
                },
            ])),
            3
        );
    }

    #[test]
    fn failures_on_the_way_exit_1() {
        assert_eq!(
            code(EngineError::Api {
                action: "create".into(),
                source: refused(),
            }),
            1
        );
        assert_eq!(
            code(UpError::Service {
                service: "postgres".into(),
                action: "start",
                reason: "conflict".into(),
                source: Box::new(EngineError::Api {
                    action: "start".into(),
                    source: refused(),
                }),
            }),
            1
        );
        assert_eq!(
            code(SecretsError::NoCredentials {
                checked: "x".into()
            }),
            1
        );
        assert_eq!(code(CommandError::NoCommand), 1);
        assert_eq!(code(CommandError::NoCommand), 1);
    }

    #[test]
    fn interrupted_exits_130_with_its_hint() {
        let err = Error::Interrupted {
            hint: "run it again".into(),
        };
        assert_eq!(err.exit_code(), Exit::Interrupted);
        assert_eq!(err.hint().as_deref(), Some("run it again"));
    }

    #[test]
    fn hints_come_through_the_top_level_error() {
        let err = Error::from(UnknownService {
            name: "nope".into(),
            known: vec!["postgres".into(), "redis".into()],
        });
        assert_eq!(
            err.hint().as_deref(),
            Some("services of this stack: postgres, redis")
        );
        let init = Error::from(InitError {
            root: "/p".into(),
            path: "/p/vibedev.toml".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        assert_eq!(
            init.hint().as_deref(),
            Some("check that /p is writable; files written before this one stay")
        );
    }
}
