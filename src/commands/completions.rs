//! `vibedev completions <shell>`: the shell's completion script for every subcommand and flag,
//! generated from the same clap definitions the binary parses with.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Result;

use super::Context;

pub fn run(ctx: &Context, args: CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "vibedev", &mut script);
    ctx.ui.out(String::from_utf8_lossy(&script).trim_end());
    Ok(0)
}
