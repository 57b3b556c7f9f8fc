//! `vibedev init`: write the built-in defaults into the project (the folder of its `vibedev.toml`,
//! or the working directory), keeping every file that already exists and saying so.

use std::path::PathBuf;

use crate::config::{CONFIG_FILE, find_config};
use crate::error::{Error, Result};
use crate::scaffold::{self, Outcome};

use super::Context;

pub fn run(ctx: &Context) -> Result<u8> {
    let (root, config) = project_root(ctx)?;
    let items = scaffold::init(&root, &config)?;
    ctx.ui.info(&format!("project folder: {}", root.display()));
    for item in &items {
        let verb = match item.outcome {
            Outcome::Written => console::style("wrote   ").green(),
            Outcome::Appended => console::style("updated ").green(),
            Outcome::Kept => console::style("kept    ").yellow(),
        };
        let note = item
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let reason = if item.outcome == Outcome::Kept && item.note.is_none() {
            " (it exists; not overwritten)"
        } else {
            ""
        };
        ctx.ui
            .out(&format!("{verb}{}{reason}{note}", item.path.display()));
    }
    ctx.ui
        .info("next: `vibedev doctor`, then `vibedev secrets pull` and `vibedev up`");
    Ok(0)
}

/// The project folder and its config file's name: from `--config`, else the nearest
/// `vibedev.toml` upwards, else `vibedev.toml` in the working directory.
fn project_root(ctx: &Context) -> Result<(PathBuf, PathBuf)> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::io("cannot determine the working directory", e))?;
    let config = match &ctx.global.config {
        Some(p) => cwd.join(p),
        None => find_config(&cwd).unwrap_or_else(|| cwd.join(CONFIG_FILE)),
    };
    let root = config.parent().map(PathBuf::from).unwrap_or(cwd);
    let name = config
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CONFIG_FILE));
    Ok((root, name))
}
