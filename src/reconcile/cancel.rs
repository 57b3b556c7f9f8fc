//! Interrupting `up` (Ctrl-C): what the engine is doing is waited out, nothing new is sent.

use tokio::sync::watch;

use super::UpError;

/// A cancellation signal for `up` (Ctrl-C): requests already sent to the engine finish, nothing
/// new starts, and waits end.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Option<watch::Receiver<bool>>);

impl Cancel {
    /// A signal and the sender that raises it.
    pub fn new() -> (watch::Sender<bool>, Cancel) {
        let (tx, rx) = watch::channel(false);
        (tx, Cancel(Some(rx)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once cancelled (never, for the default signal).
    pub async fn cancelled(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(|c| *c).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Fails with `Interrupted` when cancelled: called before each new request to the engine.
    pub(super) fn check(&self) -> Result<(), UpError> {
        if self.is_cancelled() {
            Err(UpError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Runs `fut` unless cancelled first.
    pub(super) async fn or_interrupted<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, UpError>>,
    ) -> Result<T, UpError> {
        tokio::select! {
            r = fut => r,
            _ = self.cancelled() => Err(UpError::Interrupted),
        }
    }
}
