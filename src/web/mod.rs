//! `vibedev ui`: a local web page over the stack, served on 127.0.0.1 only. One router made of
//! the page modules, a per-run token guarding every route, templates and assets in the binary.
//! Nothing here prints: the command shows the URL.

pub mod guard;
pub mod live;

mod actions;
mod assets;
mod bucket;
mod firestore;
mod logs;
mod postgres;
mod redis;
mod secrets;
mod snapshots;
mod stack;
mod stores;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Value;
use tokio::sync::watch;

use crate::config::Project;
use crate::data::DataError;
use crate::engine::{Engine, EngineError};
use crate::lock::LockError;
use crate::reconcile::UpError;
use crate::secrets::SecretsError;
use crate::snapshot::SnapshotError;
use crate::stack::Stack;

pub use guard::Token;

/// A page module: its templates (name, source) and its routes. Every page module exports one
/// `PAGE`; [`PAGES`] lists them all.
pub struct Page {
    pub templates: &'static [(&'static str, &'static str)],
    pub routes: fn() -> Router<AppState>,
}

/// Every page of the UI; the router and the template set are made from this list.
const PAGES: &[Page] = &[
    assets::PAGE,
    stack::PAGE,
    logs::PAGE,
    secrets::PAGE,
    snapshots::PAGE,
    stores::PAGE,
    postgres::PAGE,
    firestore::PAGE,
    bucket::PAGE,
    redis::PAGE,
];

/// The navigation: (key, label, path). A page passes its key to [`Shared::page`].
pub const NAV: &[(&str, &str, &str)] = &[
    ("stack", "Stack", "/"),
    ("logs", "Logs", "/logs"),
    ("postgres", "Postgres", "/postgres"),
    ("firestore", "Firestore", "/firestore"),
    ("bucket", "Bucket", "/bucket"),
    ("redis", "Redis", "/redis"),
    ("secrets", "Secrets", "/secrets"),
    ("snapshots", "Snapshots", "/snapshots"),
];

/// The templates every page shares.
const LAYOUT: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("missing.html", include_str!("templates/missing.html")),
];

/// What every handler gets: the project, its resolved stack, the engine, the run's token.
pub struct Shared {
    pub project: Project,
    pub stack: Stack,
    pub engine: Engine,
    pub token: Token,
    /// The port the server listens on (the guard checks `Host` and `Origin` against it).
    pub port: u16,
    /// The client readiness probes use (made once: pages probe every second).
    pub http: reqwest::Client,
    templates: minijinja::Environment<'static>,
    shutdown: watch::Receiver<bool>,
}

pub type AppState = Arc<Shared>;

/// Why the UI could not be served, or a page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the web server stopped")]
    Serve(#[source] std::io::Error),
    #[error("template {name} cannot be rendered")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("{what}")]
    BadRequest { what: String },
    #[error("{what} stopped before it finished")]
    Stopped { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Up(#[from] UpError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl WebError {
    pub fn hint(&self) -> Option<String> {
        match self {
            WebError::Bind { port, .. } if *port != 0 => Some(format!(
                "port {port} is taken: pick another with --port, or leave it out for a free one"
            )),
            WebError::Bind { .. } => None,
            WebError::Serve(_) => Some("run `vibedev ui` again".into()),
            WebError::Template { .. } | WebError::BadRequest { .. } => None,
            WebError::Stopped { .. } => {
                Some("try again; `vibedev status` shows where the stack is".into())
            }
            WebError::NotFound { .. } => Some("the navigation lists what there is".into()),
            WebError::Engine(e) => e.hint(),
            WebError::Data(e) => e.hint(),
            WebError::Up(e) => e.hint(),
            WebError::Lock(e) => e.hint(),
            WebError::Snapshot(e) => e.hint(),
            WebError::Secrets(e) => e.hint(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            WebError::NotFound { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error and its causes, one line each.
    pub fn chain(&self) -> Vec<String> {
        let mut lines = vec![self.to_string()];
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let line = s.to_string();
            if !lines.contains(&line) {
                lines.push(line);
            }
            source = s.source();
        }
        lines
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>vibedev ui: error</title><link rel=stylesheet href=\"/assets/app.css\"><main class=\"error-page\"><h1>Something failed</h1>{}</main>",
            error_html(&self)
        );
        (self.status(), Html(body)).into_response()
    }
}

/// The error, its causes and its hint as an HTML fragment (`<div class="error">`).
pub fn error_html(err: &WebError) -> String {
    let mut out = String::from("<div class=\"error\" role=\"alert\">");
    for (i, line) in err.chain().iter().enumerate() {
        let class = if i == 0 { "message" } else { "cause" };
        out.push_str(&format!("<p class=\"{class}\">{}</p>", escape(line)));
    }
    if let Some(hint) = err.hint() {
        out.push_str(&format!("<p class=\"hint\">hint: {}</p>", escape(&hint)));
    }
    out.push_str("</div>");
    out
}

/// HTML-escapes text for an element or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Shared {
    /// Renders a template (auto-escaped: `.html` names escape every value not marked `|safe`).
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, WebError> {
        let template = self
            .templates
            .get_template(name)
            .map_err(|source| WebError::Template {
                name: name.to_string(),
                source,
            })?;
        template.render(ctx).map_err(|source| WebError::Template {
            name: name.to_string(),
            source,
        })
    }

    /// A whole page: `template` extends `layout.html`; `nav` is its key in [`NAV`]. The layout
    /// gets `project`, `title`, `nav`, `pages`, `note`, `failure` besides `ctx`.
    pub fn page(
        &self,
        template: &str,
        nav: &str,
        title: &str,
        notice: &Notice,
        ctx: Value,
    ) -> Result<Html<String>, WebError> {
        let pages: Vec<Value> = NAV
            .iter()
            .map(|(key, label, path)| {
                minijinja::context! { key => *key, label => *label, path => *path }
            })
            .collect();
        let full = minijinja::context! {
            project => self.stack.project.clone(),
            title => title,
            nav => nav,
            pages => pages,
            note => notice.note.clone(),
            failure => notice.failure.clone(),
            ..ctx
        };
        Ok(Html(self.render(template, full)?))
    }

    /// The page saying the stack has no service of this kind (`kind` as people write it).
    pub fn missing(&self, nav: &str, title: &str, kind: &str) -> Result<Html<String>, WebError> {
        self.page(
            "missing.html",
            nav,
            title,
            &Notice::default(),
            minijinja::context! { kind => kind },
        )
    }

    /// Resolves when the server is shutting down: long-lived streams end on it.
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}

/// What the last action did, carried to the page it sends the browser back to.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Notice {
    pub note: Option<String>,
    pub failure: Option<String>,
}

/// After an action (POST): back to `back` (a path) with its outcome as `?note=` or `?failure=`
/// (the failure with its hint).
pub fn done(back: &str, outcome: Result<String, WebError>) -> axum::response::Redirect {
    let (key, text) = match outcome {
        Ok(note) => ("note", note),
        Err(err) => {
            let mut text = err.chain().join(": ");
            if let Some(hint) = err.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            ("failure", text)
        }
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    let text = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC);
    axum::response::Redirect::to(&format!("{back}{sep}{key}={text}"))
}

/// Runs domain work on a blocking thread of the runtime with its own `block_on`: the domain's
/// futures are made for the CLI's `block_on` and need not be `Send`, which a handler's must be.
/// Only what `work` captures crosses threads.
pub async fn detached<T, F, Fut>(what: &str, work: F) -> Result<T, WebError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, WebError>>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work()))
        .await
        .map_err(|_| WebError::Stopped {
            what: what.to_string(),
        })?
}

/// A bound, not yet serving UI.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: watch::Sender<bool>,
}

/// How long open connections (live pages) get to close once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl Server {
    /// Binds 127.0.0.1:`port` (0: a free port) and prepares the pages with a new token.
    pub async fn bind(
        port: u16,
        project: Project,
        stack: Stack,
        engine: Engine,
    ) -> Result<Server, WebError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { port, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| WebError::Bind { port, source })?
            .port();
        let (shutdown, rx) = watch::channel(false);
        let state = Arc::new(Shared {
            project,
            stack,
            engine,
            token: Token::new(),
            port,
            http: crate::ready::http_client(),
            templates: templates()?,
            shutdown: rx,
        });
        Ok(Server {
            listener,
            state,
            shutdown,
        })
    }

    /// The URL to open: it carries the token (the first request trades it for a cookie).
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?token={}",
            self.state.port,
            self.state.token.as_str()
        )
    }

    pub fn port(&self) -> u16 {
        self.state.port
    }

    /// Serves until `stop` resolves (the command passes Ctrl-C), then lets open connections
    /// close for a moment: live streams end on the same signal.
    pub async fn serve(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        let app = router(self.state.clone());
        let tx = self.shutdown;
        let mut down = tx.subscribe();
        let signal = async move {
            stop.await;
            let _ = tx.send(true);
        };
        let port = self.state.port;
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(signal);
        let served = tokio::select! {
            r = serve.into_future() => r.map_err(WebError::Serve),
            _ = async {
                let _ = down.wait_for(|d| *d).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => Ok(()),
        };
        // The file that opened the browser names a token that is dead now: not kept.
        if let Some(file) = redirect_path(port) {
            let _ = std::fs::remove_file(file);
        }
        served
    }
}

/// Every page's routes behind the guard.
pub fn router(state: AppState) -> Router {
    let mut app: Router<AppState> = Router::new();
    for page in PAGES {
        app = app.merge((page.routes)());
    }
    app.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> WebError {
    WebError::NotFound {
        what: format!("page {}", uri.path()),
    }
}

/// The template set: the layout's and every page's.
fn templates() -> Result<minijinja::Environment<'static>, WebError> {
    let mut env = minijinja::Environment::new();
    let all = LAYOUT.iter().chain(PAGES.iter().flat_map(|p| p.templates));
    for (name, source) in all {
        env.add_template(name, source)
            .map_err(|source| WebError::Template {
                name: (*name).to_string(),
                source,
            })?;
    }
    Ok(env)
}

/// Opens the UI in the desktop's browser (`xdg-open`, `open`) when there is one and this is not
/// CI; says whether one was started. The token stays out of the opener's arguments: it opens a
/// private (0600) file that redirects to the URL. Never fails: the URL is printed anyway.
pub fn open_browser(url: &str, port: u16) -> bool {
    if std::env::var_os("CI").is_some() {
        return false;
    }
    let Some(file) = redirect_file(url, port) else {
        return false;
    };
    for opener in ["xdg-open", "open"] {
        let started = std::process::Command::new(opener)
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = started {
            // Reaped in the background so no zombie is left.
            std::thread::spawn(move || child.wait());
            return true;
        }
    }
    false
}

/// `<state>/ui/open-PORT.html`.
fn redirect_path(port: u16) -> Option<std::path::PathBuf> {
    Some(
        crate::dirs::state_dir()?
            .join("ui")
            .join(format!("open-{port}.html")),
    )
}

/// Writes `<state>/ui/open-PORT.html`, readable by this user only, redirecting to `url`.
fn redirect_file(url: &str, port: u16) -> Option<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = redirect_path(port)?;
    crate::dirs::create_private(path.parent()?).ok()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .ok()?;
    let url = escape(url);
    write!(
        file,
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url={url}\"><title>vibedev ui</title><a href=\"{url}\">open vibedev ui</a>"
    )
    .ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = templates().unwrap();
        for (name, _) in LAYOUT.iter().chain(PAGES.iter().flat_map(|p| p.templates)) {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
