//! Running a program inside a service's container (the engine's exec API), its output captured:
//! how vibedev uses a tool that ships with an image (`pg_dump` in a Postgres image) without
//! asking the user to install it.

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::{Engine, EngineError};

/// What a program run in a container printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// The exit code (`None` when the engine did not say).
    pub code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Engine {
    /// Runs `cmd` in container `id` with `env` added to its environment, and waits for it to end.
    /// `env` reaches the program only (never its command line).
    pub async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        env: &[String],
    ) -> Result<ExecOutput, EngineError> {
        let program = cmd.first().cloned().unwrap_or_default();
        let action = || format!("run {program} in container {id}");
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.to_vec()),
                    env: Some(env.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| EngineError::api(action(), e))?;
        let mut out = ExecOutput::default();
        match self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| EngineError::api(action(), e))?
        {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(|e| EngineError::api(action(), e))? {
                        bollard::container::LogOutput::StdErr { message } => {
                            out.stderr.extend_from_slice(&message)
                        }
                        other => out
                            .stdout
                            .extend_from_slice(super::containers::log_bytes(&other)),
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        let inspect = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| EngineError::api(action(), e))?;
        out.code = inspect.exit_code;
        Ok(out)
    }
}
