//! Cancelling a statement on the server when the future running it is dropped (Ctrl-C): closing
//! the connection alone leaves the statement running, holding its locks, until it ends.

use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{CancelToken, NoTls};

/// Cancel requests sent by dropped guards, not yet known to have reached the server.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// How long the process waits, on its way out, for cancel requests to be delivered.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(3);

/// Sends a cancel request for the session's statement in flight when dropped while armed.
pub struct CancelOnDrop {
    token: Option<CancelToken>,
}

impl CancelOnDrop {
    pub fn new(token: CancelToken) -> CancelOnDrop {
        CancelOnDrop { token: Some(token) }
    }

    /// The statement finished: nothing to cancel.
    pub fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        // Drop cannot wait: the request goes out on a task the entry point waits for.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let task = handle.spawn(async move {
                let _ = token.cancel_query(NoTls).await;
            });
            if let Ok(mut pending) = PENDING.lock() {
                pending.push(task);
            }
        }
    }
}

/// Waits (up to [`DELIVERY_DEADLINE`]) for the cancel requests of dropped guards to be delivered;
/// the entry point calls it before shutting the runtime down.
pub async fn deliver_pending() {
    let tasks: Vec<JoinHandle<()>> = PENDING
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    if tasks.is_empty() {
        return;
    }
    let _ = tokio::time::timeout(DELIVERY_DEADLINE, futures_util::future::join_all(tasks)).await;
}
