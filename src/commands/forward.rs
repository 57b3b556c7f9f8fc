//! `vibedev __forward SOCKET`: the background relay of a `tcp://` engine's published ports to
//! 127.0.0.1, started by `up` and ended by `down` (see [`crate::engine::relay`]). Its stderr is
//! the relay's log file.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::relay;
use crate::exit::Exit;

/// Runs the relay on the control socket `control` until it is told to exit.
pub fn main(control: Option<OsString>) -> ExitCode {
    let Some(control) = control.map(PathBuf::from) else {
        eprintln!(
            "error: {} needs the path of its control socket",
            relay::SUBCOMMAND
        );
        return Exit::Usage.into();
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return Exit::Failure.into();
        }
    };
    match runtime.block_on(relay::serve(&control)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            Exit::Failure.into()
        }
    }
}
