//! `vibedev completions <shell>`: the shell's completion script for every subcommand and flag,
//! generated from the same clap definitions the binary parses with.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Result};

use super::Context;

pub fn run(ctx: &Context, args: CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "vibedev", &mut script);
    let text = String::from_utf8(script)
        .map_err(|e| Error::failed(format!("completion script is not UTF-8: {e}"), None))?;
    ctx.ui.out(text.trim_end());
    Ok(0)
}
