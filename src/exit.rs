//! vibedev's exit codes: one number per kind of outcome, stable for scripts and documented in the
//! README's "Exit codes" table. `vibedev run` is the exception: it exits with its command's code.

/// How vibedev ends. The numbers are part of the interface: never renumber a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// Something failed on the way: a service did not become ready, a pull or a migration failed.
    Failure = 1,
    /// What the user asked for cannot be done as asked: a bad flag, config, compose file or
    /// setting, an unknown service.
    Usage = 2,
    /// No Docker engine answers, or it stopped answering during the command.
    Docker = 3,
    /// `vibedev doctor`: at least one check warned, none failed.
    DoctorWarn = 4,
    /// `vibedev doctor`: at least one check failed.
    DoctorFail = 5,
    /// `vibedev migrate status --exit-code`: some journal entry is pending, drifted or out of order.
    MigrationsNotInStep = 6,
    /// `vibedev status --exit-code`: some service is not running or not ready.
    NotReady = 7,
    /// `vibedev secrets diff --exit-code`: some variable of `.env.gcp` is not in sync with Secret Manager.
    SecretsOutOfSync = 8,
    /// Ctrl-C.
    Interrupted = 130,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for u8 {
    fn from(exit: Exit) -> u8 {
        exit.code()
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    /// The README's table, number for number: scripts rely on these.
    #[test]
    fn exit_codes_keep_their_documented_numbers() {
        let table = [
            (Exit::Success, 0),
            (Exit::Failure, 1),
            (Exit::Usage, 2),
            (Exit::Docker, 3),
            (Exit::DoctorWarn, 4),
            (Exit::DoctorFail, 5),
            (Exit::MigrationsNotInStep, 6),
            (Exit::NotReady, 7),
            (Exit::SecretsOutOfSync, 8),
            (Exit::Interrupted, 130),
        ];
        for (exit, code) in table {
            assert_eq!(u8::from(exit), code, "{exit:?}");
        }
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .expect("the README has an exit code table");
        for (_, code) in table {
            assert!(
                section.contains(&format!("\n| {code} | ")),
                "the README's exit code table lacks {code}"
            );
        }
    }
}
