//! `vibedev ui [--port N] [--no-open]`: serve the web page over the stack until Ctrl-C.

use crate::cli::UiArgs;
use crate::error::Result;

use super::Context;

pub async fn run(ctx: &Context, args: UiArgs) -> Result<u8> {
    ctx.serve_ui(args.port, !args.no_open).await?;
    Ok(0)
}
