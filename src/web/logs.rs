//! The Logs page: every service's log, interleaved or one service's, followed live over SSE,
//! filtered by a search text, each service in the colour `vibedev logs` gives it. A burst of
//! lines never blocks the server: each client has a bounded queue; what a slow client cannot
//! take is dropped and counted, and lines go out in batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::sse::Event;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::StreamExt;
use minijinja::context;
use tokio::sync::mpsc;

use super::{AppState, Notice, Page, WebError, escape, live};
use crate::engine::containers::log_bytes;
use crate::runtime;

pub const PAGE: Page = Page {
    templates: &[("logs.html", include_str!("templates/logs.html"))],
    routes,
};

fn routes() -> Router<AppState> {
    Router::new()
        .route("/logs", get(page))
        .route("/live/logs", get(live_logs))
}

/// Lines of each service's past output sent first.
const TAIL: usize = 200;
/// Lines one client may have waiting; beyond that, new lines are dropped (and counted).
const QUEUE: usize = 2048;
/// Lines sent in one event at most.
const BATCH: usize = 500;
/// How many colours `vibedev logs` cycles through (cyan, magenta, yellow, blue, green, in the
/// stack's service order; app.css's `.svc.c0`..`.c4` are the same, in the same order).
const COLOURS: usize = 5;

/// The page's filter: one service (all when empty) and a search text (case-insensitive).
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Filter {
    #[serde(default)]
    service: String,
    #[serde(default)]
    q: String,
}

impl Filter {
    fn query(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!("service={}&q={}", enc(&self.service), enc(&self.q))
    }
}

async fn page(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, WebError> {
    if !filter.service.is_empty()
        && !state
            .stack
            .services
            .iter()
            .any(|s| s.name == filter.service)
    {
        return Err(WebError::NotFound {
            what: format!("service {}", filter.service),
        });
    }
    let services: Vec<String> = state
        .stack
        .services
        .iter()
        .map(|s| s.name.clone())
        .collect();
    state.page(
        "logs.html",
        "logs",
        "Logs",
        &notice,
        context! {
            services => services,
            service => filter.service.clone(),
            q => filter.q.clone(),
            live => format!("/live/logs?{}", filter.query()),
        },
    )
}

/// One line on its way to a client.
struct Line {
    colour: usize,
    service: Arc<str>,
    text: String,
}

async fn live_logs(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> Result<impl IntoResponse, WebError> {
    let runtimes = runtime::observe(&state.engine, &state.stack).await?;
    let width = state
        .stack
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Line>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let needle = filter.q.to_lowercase();
    let mut followed = 0;
    for (i, rt) in runtimes.iter().enumerate() {
        if !filter.service.is_empty() && rt.name != filter.service {
            continue;
        }
        let Some(container) = &rt.container else {
            continue;
        };
        followed += 1;
        let label: Arc<str> = Arc::from(format!("{:<width$} |", rt.name));
        let stream = state.engine.logs(&container.id, true, Some(TAIL));
        tokio::spawn(follow(
            stream,
            Arc::clone(&label),
            i % COLOURS,
            needle.clone(),
            tx.clone(),
            Arc::clone(&dropped),
        ));
    }
    drop(tx);
    let first = (followed == 0).then(|| {
        Event::default()
            .event(live::APPEND_EVENT)
            .data("<span class=\"line muted\" id=\"no-logs\">No service has a container yet: start the stack on the Stack page.</span>")
    });
    let lines = futures_util::stream::unfold((rx, dropped), |(mut rx, dropped)| async move {
        let first = rx.recv().await?;
        let mut html = String::new();
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(line) => batch.push(line),
                Err(_) => break,
            }
        }
        let skipped = dropped.swap(0, Ordering::Relaxed);
        if skipped > 0 {
            html.push_str(&format!(
                "<span class=\"line skipped\">… {skipped} lines skipped: the page could not keep up</span>"
            ));
        }
        for line in &batch {
            html.push_str(&line_html(line));
        }
        let event = Event::default().event(live::APPEND_EVENT).data(html);
        Some((event, (rx, dropped)))
    });
    let stream = futures_util::stream::iter(first).chain(lines);
    Ok(live::events(&state, stream))
}

/// Reads one container's log into the client's queue, line by line, until the log ends or the
/// client goes away. Never waits for the client: a full queue drops the line.
async fn follow<S, E>(
    stream: S,
    label: Arc<str>,
    colour: usize,
    needle: String,
    tx: mpsc::Sender<Line>,
    dropped: Arc<AtomicU64>,
) where
    S: futures_util::Stream<Item = Result<bollard::container::LogOutput, E>> + Send,
{
    let mut stream = Box::pin(stream);
    let mut partial = String::new();
    let send = |text: String| -> bool {
        if !needle.is_empty() && !text.to_lowercase().contains(&needle) {
            return true;
        }
        let line = Line {
            colour,
            service: Arc::clone(&label),
            text,
        };
        match tx.try_send(line) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    };
    loop {
        let chunk = tokio::select! {
            c = stream.next() => c,
            _ = tx.closed() => return,
        };
        let Some(chunk) = chunk else { break };
        let Ok(chunk) = chunk else { continue };
        partial.push_str(&String::from_utf8_lossy(log_bytes(&chunk)));
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            if !send(strip_ansi(line.trim_end_matches(['\n', '\r']))) {
                return;
            }
        }
    }
    if !partial.is_empty() && !send(strip_ansi(&partial)) {
        return;
    }
    // The container stopped: say so rather than fall silent.
    let end = Line {
        colour,
        service: Arc::clone(&label),
        text: "(the container stopped: its log ends here; reload the page to follow it again)"
            .into(),
    };
    let _ = tx.try_send(end);
}

fn line_html(line: &Line) -> String {
    format!(
        "<span class=\"line\"><span class=\"svc c{}\">{}</span> {}</span>",
        line.colour,
        escape(&line.service),
        escape(&line.text)
    )
}

/// The text without terminal escape sequences (colours, cursor moves) a program printed.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: parameters and intermediates up to a final byte in @..~.
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ST.
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_colours_are_stripped_and_text_kept() {
        assert_eq!(strip_ansi("\u{1b}[1;32mLOG\u{1b}[0m: ready"), "LOG: ready");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}x"), "x");
        assert_eq!(strip_ansi("plain <text>"), "plain <text>");
    }

    #[test]
    fn a_line_is_escaped_and_coloured_by_service() {
        let line = Line {
            colour: 3,
            service: Arc::from("db |"),
            text: "<script>alert(1)</script>".into(),
        };
        assert_eq!(
            line_html(&line),
            "<span class=\"line\"><span class=\"svc c3\">db |</span> &lt;script&gt;alert(1)&lt;/script&gt;</span>"
        );
    }
}
