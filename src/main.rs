//! The `vibedev` binary: parse the command line, run it, turn the outcome into an exit code.
//! Everything else lives in the library crate.

fn main() -> std::process::ExitCode {
    vibedev::main_entry()
}
