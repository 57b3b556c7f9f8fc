//! Live fragments, one mechanism for every page: an element `<section data-live="/live/...">`
//! is replaced by the HTML the server pushes over server-sent events. The server renders the
//! fragment again every [`INTERVAL`] and sends it only when it changed; comments keep idle
//! streams open. Streams end when the server shuts down.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use super::{AppState, WebError, error_html};

/// How often a fragment is rendered again.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How often an idle stream gets a comment (so proxies and browsers keep it open).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The SSE event name a replaced fragment comes as (`app.js` listens for it).
pub const FRAGMENT_EVENT: &str = "fragment";

/// The SSE event name lines to append come as (`<pre data-append=...>`, see `app.js`).
pub const APPEND_EVENT: &str = "append";

/// A live fragment: `render` runs now and every [`INTERVAL`]; a changed result is sent as a
/// `fragment` event; a failure is shown in its place (and the stream goes on).
pub fn fragment<F, Fut>(
    state: &AppState,
    render: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<F, Fut>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<String, WebError>> + Send + 'static,
{
    let stop = Box::pin(state.shutting_down());
    let mut ticks = tokio::time::interval(INTERVAL);
    // A slow render (a busy engine) delays the next one rather than bunching them up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (render, ticks, None::<u64>, stop),
        |(mut render, mut ticks, mut last, mut stop)| async move {
            loop {
                tokio::select! {
                    _ = &mut stop => return None,
                    _ = ticks.tick() => {}
                }
                let html = match render().await {
                    Ok(html) => html,
                    Err(err) => error_html(&err),
                };
                let hash = digest(&html);
                if last != Some(hash) {
                    last = Some(hash);
                    let event = Event::default().event(FRAGMENT_EVENT).data(html);
                    return Some((Ok(event), (render, ticks, last, stop)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

/// Wraps a stream of events so it ends when the server shuts down, with the heartbeat.
pub fn events<S>(
    state: &AppState,
    stream: S,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<S>>
where
    S: Stream<Item = Event> + Send + 'static,
{
    use futures_util::StreamExt;
    let stop = state.shutting_down();
    let stream = stream.map(Ok).take_until(stop);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

fn digest(html: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    html.hash(&mut h);
    h.finish()
}
