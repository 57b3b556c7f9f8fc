//! Redis: emptying it for `vibedev reset-db --all` (`FLUSHALL` over the wire protocol, no client
//! library needed for one command).

use std::time::Duration;

use crate::ready::redis_command;

/// Sends `FLUSHALL` and expects `+OK`.
pub async fn flush_all(host: &str, port: u16) -> Result<(), String> {
    let reply = redis_command(host, port, &["FLUSHALL"], Duration::from_secs(10)).await?;
    if reply.starts_with("+OK") {
        Ok(())
    } else {
        Err(format!("FLUSHALL answered {reply:?}"))
    }
}
