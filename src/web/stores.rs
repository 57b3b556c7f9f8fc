//! What the data pages share: reaching the running store of a kind (or the page that says the
//! stack has none, or that it is stopped), how a failed look into a store is shown, and the
//! stylesheet of the data pages.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use minijinja::context;

use super::{AppState, Notice, Page, WebError};
use crate::data::Stores;
use crate::services::browse::BrowseError;
use crate::services::{Kind, Store};

pub const PAGE: Page = Page {
    templates: &[(
        "data_stopped.html",
        include_str!("templates/data_stopped.html"),
    )],
    routes,
};

const CSS: &str = include_str!("assets/data.css");

fn routes() -> Router<AppState> {
    Router::new().route("/assets/data.css", get(css))
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

/// In a data page's handler: the store its module's `target` reaches, or an early return with
/// the page saying why there is none (the kind is missing or its service stopped).
macro_rules! reached {
    ($state:expr) => {
        match target($state).await? {
            Reached::Store(t) => t,
            Reached::Page(p) => return Ok(p.into_response()),
        }
    };
}
pub(super) use reached;

/// A store's client, or the page to show instead.
pub enum Reached<T> {
    Store(T),
    Page(Html<String>),
}

/// The running store of `kind` made into a client by `make`; when there is none, the page
/// saying the stack has no such service, or which service to start.
pub async fn reach<T>(
    state: &AppState,
    kind: Kind,
    nav: &str,
    title: &str,
    make: impl FnOnce(&Store<'_>) -> Option<T>,
) -> Result<Reached<T>, WebError> {
    let stores = Stores::observe(&state.engine, &state.stack).await?;
    if let Some(made) = stores.store(kind).as_ref().and_then(make) {
        return Ok(Reached::Store(made));
    }
    let spec = state.stack.services.iter().find(|s| s.kind == Some(kind));
    let page = match spec {
        None => state.missing(nav, title, kind.as_str())?,
        Some(spec) => state.page(
            "data_stopped.html",
            nav,
            title,
            &Notice::default(),
            context! { service => spec.name.clone() },
        )?,
    };
    Ok(Reached::Page(page))
}

/// How a failed look is shown on the page (`failure`): the error and its hint. A missing
/// document, object or key is the page's 404 instead.
pub fn shown(e: BrowseError) -> Result<String, WebError> {
    match e {
        BrowseError::NotFound { what } => Err(WebError::NotFound { what }),
        e => Ok(failure_text(&e)),
    }
}

/// A store's error as a handler's: not found stays 404, anything else is the request's fault
/// (400) with the error and its hint.
pub fn refused(e: BrowseError) -> WebError {
    shown(e).map_or_else(|e| e, |what| WebError::BadRequest { what })
}

/// The error and its hint in one line.
pub fn failure_text(e: &BrowseError) -> String {
    match e.hint() {
        Some(hint) => format!("{e} (hint: {hint})"),
        None => e.to_string(),
    }
}

/// The notice of a page that shows what a look failed with (beside any it came with).
pub fn with_failure(notice: &Notice, failure: Option<String>) -> Notice {
    Notice {
        note: notice.note.clone(),
        failure: failure.or_else(|| notice.failure.clone()),
    }
}

/// `path?k=v&...` with each value percent-encoded.
pub fn link(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::services::encode(v)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_their_values() {
        assert_eq!(
            link("/firestore/d", &[("path", "users/a b"), ("done", "saved")]),
            "/firestore/d?path=users%2Fa%20b&done=saved"
        );
        assert_eq!(link("/redis", &[]), "/redis");
    }
}
