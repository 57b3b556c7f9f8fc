//! The Redis page: keys by pattern (`SCAN`), each with its type and time to live, a key's
//! value (bounded), and a key deleted after a confirmation. The key list is live.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::stores::{Reached, link, reach, reached, shown, with_failure};
use super::{AppState, Notice, Page, WebError, done, live};
use crate::services::Kind;
use crate::services::redis::browse::{KeyParam, Target};

pub const PAGE: Page = Page {
    templates: &[
        ("redis.html", include_str!("templates/redis.html")),
        ("redis_keys.html", include_str!("templates/redis_keys.html")),
        ("redis_key.html", include_str!("templates/redis_key.html")),
    ],
    routes,
};

const NAV: &str = "redis";
const TITLE: &str = "Redis";

fn routes() -> Router<AppState> {
    Router::new()
        .route("/redis", get(index))
        .route("/redis/key", get(key))
        .route("/redis/delete", post(delete))
        .route("/live/redis", get(live_keys))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    pattern: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KeyQuery {
    key: Option<String>,
    hex: Option<String>,
}

impl KeyQuery {
    /// The key's bytes, from `key` (text) or `hex` (any bytes).
    fn name(&self) -> Result<Vec<u8>, WebError> {
        KeyParam::parse(self.key.as_deref(), self.hex.as_deref()).map_err(|e| {
            WebError::BadRequest {
                what: e.to_string(),
            }
        })
    }
}

async fn target(state: &AppState) -> Result<Reached<Target>, WebError> {
    reach(state, Kind::REDIS, NAV, TITLE, |s| Some(Target::of(s))).await
}

/// The key list for a pattern and cursor.
async fn keys_html(
    state: &AppState,
    target: &Target,
    pattern: &str,
    cursor: Option<&str>,
) -> Result<String, WebError> {
    let (page, failure) = match target.scan(pattern, cursor).await {
        Ok(page) => (Some(page), None),
        Err(e) => (None, Some(shown(e)?)),
    };
    let next = page
        .as_ref()
        .and_then(|p| p.next.as_deref())
        .map(|c| link("/redis", &[("pattern", pattern), ("cursor", c)]));
    let keys: Vec<minijinja::Value> = page
        .iter()
        .flat_map(|p| &p.keys)
        .map(|k| {
            context! {
                key => k.key.clone(),
                kind => k.kind.clone(),
                ttl => k.ttl.clone(),
                expires => k.ttl_ms.is_some(),
                href => link("/redis/key", &[(k.param.name, &k.param.value)]),
                param => k.param.name,
                value => k.param.value.clone(),
            }
        })
        .collect();
    state.render(
        "redis_keys.html",
        context! { keys, next, failure, first => cursor.is_some_and(|c| c != "0") },
    )
}

async fn index(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let pattern = q.pattern.unwrap_or_default();
    let pattern = if pattern.is_empty() {
        "*".to_string()
    } else {
        pattern
    };
    let keys = keys_html(&state, &target, &pattern, q.cursor.as_deref()).await?;
    let mut live_params = vec![("pattern", pattern.as_str())];
    if let Some(c) = q.cursor.as_deref() {
        live_params.push(("cursor", c));
    }
    let live = link("/live/redis", &live_params);
    Ok(state
        .page(
            "redis.html",
            NAV,
            TITLE,
            &notice,
            context! {
                pattern,
                keys => minijinja::Value::from_safe_string(keys),
                live,
            },
        )?
        .into_response())
}

async fn live_keys(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let target = Arc::new(reached!(&state));
    let pattern = q.pattern.unwrap_or_else(|| "*".into());
    let cursor = q.cursor;
    let st = state.clone();
    Ok(live::fragment(&state, move || {
        let (st, target, pattern, cursor) =
            (st.clone(), target.clone(), pattern.clone(), cursor.clone());
        async move { keys_html(&st, &target, &pattern, cursor.as_deref()).await }
    })
    .into_response())
}

async fn key(
    State(state): State<AppState>,
    Query(q): Query<KeyQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let name = q.name()?;
    let (value, failure) = match target.value(&name).await {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(shown(e)?)),
    };
    let param = KeyParam::of(&name);
    Ok(state
        .page(
            "redis_key.html",
            NAV,
            TITLE,
            &with_failure(&notice, failure),
            context! {
                key => String::from_utf8_lossy(&name).into_owned(),
                param => param.name,
                param_value => param.value,
                value => Serde(value),
            },
        )?
        .into_response())
}

async fn delete(
    State(state): State<AppState>,
    Form(q): Form<KeyQuery>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let name = q.name()?;
    let shown_key = String::from_utf8_lossy(&name).into_owned();
    let outcome = match target.delete(&name).await {
        Ok(true) => Ok(format!("Deleted key {shown_key}.")),
        Ok(false) => Ok(format!("Key {shown_key} was already gone.")),
        Err(e) => Err(WebError::BadRequest {
            what: super::stores::failure_text(&e),
        }),
    };
    Ok(done("/redis", outcome).into_response())
}
