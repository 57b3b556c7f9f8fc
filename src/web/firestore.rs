//! The Firestore page: collections, a collection's documents (live, page by page), a document's
//! typed fields and subcollections, and documents created, edited (typed JSON) and deleted.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::stores::{Reached, failure_text, link, reach, reached, refused, shown, with_failure};
use super::{AppState, Notice, Page, WebError, done, live};
use crate::services::Kind;
use crate::services::browse::BrowseError;
use crate::services::firestore::browse::{TYPED_JSON_HELP, Target};

pub const PAGE: Page = Page {
    templates: &[
        ("firestore.html", include_str!("templates/firestore.html")),
        (
            "firestore_documents.html",
            include_str!("templates/firestore_documents.html"),
        ),
        (
            "firestore_document.html",
            include_str!("templates/firestore_document.html"),
        ),
        (
            "firestore_help.html",
            include_str!("templates/firestore_help.html"),
        ),
    ],
    routes,
};

const NAV: &str = "firestore";
const TITLE: &str = "Firestore";

fn routes() -> Router<AppState> {
    Router::new()
        .route("/firestore", get(index))
        .route("/firestore/c", get(collection))
        .route("/firestore/d", get(document))
        .route("/firestore/create", post(create))
        .route("/firestore/save", post(save))
        .route("/firestore/delete", post(delete))
        .route("/live/firestore/c", get(live_documents))
}

#[derive(Debug, Default, Deserialize)]
struct PathQuery {
    path: Option<String>,
    /// The store's page token (not `token`: that names the UI's own).
    page: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    collection: String,
    #[serde(default)]
    id: String,
    json: String,
}

#[derive(Debug, Deserialize)]
struct SaveForm {
    path: String,
    json: String,
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    path: String,
}

async fn target(state: &AppState) -> Result<Reached<Target>, WebError> {
    reach(state, Kind::FIRESTORE, NAV, TITLE, |s| Some(Target::of(s))).await
}

/// `users/ada/posts` as links to each level: (label, href).
fn crumbs(path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut so_far = String::new();
    for (i, seg) in path.split('/').enumerate() {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(seg);
        let page = if i % 2 == 0 {
            "/firestore/c"
        } else {
            "/firestore/d"
        };
        out.push((seg.to_string(), link(page, &[("path", &so_far)])));
    }
    out
}

fn bad(e: BrowseError) -> WebError {
    WebError::BadRequest {
        what: failure_text(&e),
    }
}

async fn index(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let (collections, next, failure) = match target.collections(None, q.page.as_deref()).await {
        Ok(page) => (page.items, page.next, None),
        Err(e) => (Vec::new(), None, Some(shown(e)?)),
    };
    let collections: Vec<(String, String)> = collections
        .into_iter()
        .map(|c| {
            let href = link("/firestore/c", &[("path", &c)]);
            (c, href)
        })
        .collect();
    Ok(state
        .page(
            "firestore.html",
            NAV,
            TITLE,
            &with_failure(&notice, failure),
            context! {
                project_id => target.project(),
                collections,
                next => next.map(|t| link("/firestore", &[("page", &t)])),
                help => Serde(TYPED_JSON_HELP),
            },
        )?
        .into_response())
}

/// A collection's documents (one page) as the live fragment shows them.
async fn documents_html(
    state: &AppState,
    target: &Target,
    path: &str,
    token: Option<&str>,
) -> Result<String, WebError> {
    let (docs, next, failure) = match target.documents(path, token).await {
        Ok(page) => (page.items, page.next, None),
        Err(e) => (Vec::new(), None, Some(shown(e)?)),
    };
    let docs: Vec<minijinja::Value> = docs
        .into_iter()
        .map(|d| {
            context! {
                href => link("/firestore/d", &[("path", &d.path)]),
                ..minijinja::Value::from(Serde(&d))
            }
        })
        .collect();
    state.render(
        "firestore_documents.html",
        context! {
            docs,
            failure,
            next => next.map(|t| link("/firestore/c", &[("path", path), ("page", &t)])),
            first => token.is_some().then(|| link("/firestore/c", &[("path", path)])),
        },
    )
}

async fn collection(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let path = crate::services::firestore::browse::collection_path(q.path.as_deref().unwrap_or(""))
        .map_err(bad)?;
    let docs = documents_html(&state, &target, &path, q.page.as_deref()).await?;
    let mut live_params = vec![("path", path.as_str())];
    if let Some(t) = q.page.as_deref() {
        live_params.push(("page", t));
    }
    let live = link("/live/firestore/c", &live_params);
    let crumbs = crumbs(&path);
    Ok(state
        .page(
            "firestore.html",
            NAV,
            TITLE,
            &notice,
            context! {
                project_id => target.project(),
                collection => path,
                crumbs,
                docs => minijinja::Value::from_safe_string(docs),
                live,
                help => Serde(TYPED_JSON_HELP),
                draft => "{\n  \n}",
            },
        )?
        .into_response())
}

async fn live_documents(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Response, WebError> {
    let target = Arc::new(reached!(&state));
    let path = q.path.unwrap_or_default();
    let token = q.page;
    let st = state.clone();
    Ok(live::fragment(&state, move || {
        let (st, target, path, token) = (st.clone(), target.clone(), path.clone(), token.clone());
        async move { documents_html(&st, &target, &path, token.as_deref()).await }
    })
    .into_response())
}

/// The document page, with `draft` in the editor (what was sent, when it was refused).
async fn document_page(
    state: &AppState,
    target: &Target,
    path: &str,
    draft: Option<String>,
    notice: &Notice,
) -> Result<Response, WebError> {
    let doc = match target.document(path).await {
        Ok(doc) => doc,
        Err(e) => {
            shown(e).map(|_| ())?;
            return Err(WebError::NotFound {
                what: format!("document {path}"),
            });
        }
    };
    let subcollections: Vec<(String, String)> =
        match target.collections(Some(&doc.path), None).await {
            Ok(page) => page
                .items
                .into_iter()
                .map(|c| {
                    let href = link("/firestore/c", &[("path", &format!("{}/{c}", doc.path))]);
                    (c, href)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
    let parent = doc
        .path
        .rsplit_once('/')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    let status = if draft.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let html = state.page(
        "firestore_document.html",
        NAV,
        TITLE,
        notice,
        context! {
            crumbs => crumbs(&doc.path),
            parent_href => link("/firestore/c", &[("path", &parent)]),
            draft => draft.unwrap_or_else(|| doc.typed_json.clone()),
            doc => Serde(doc),
            subcollections,
            help => Serde(TYPED_JSON_HELP),
        },
    )?;
    Ok((status, html).into_response())
}

async fn document(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let path = crate::services::firestore::browse::document_path(q.path.as_deref().unwrap_or(""))
        .map_err(bad)?;
    document_page(&state, &target, &path, None, &notice).await
}

async fn create(
    State(state): State<AppState>,
    Form(f): Form<CreateForm>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    match target.create(&f.collection, &f.id, &f.json).await {
        Ok(path) => Ok(done(
            &link("/firestore/d", &[("path", &path)]),
            Ok(format!("Created {path}.")),
        )
        .into_response()),
        Err(e @ (BrowseError::Invalid { .. } | BrowseError::Exists { .. })) => {
            let html = state.page(
                "firestore.html",
                NAV,
                TITLE,
                &with_failure(&Notice::default(), Some(failure_text(&e))),
                context! {
                    project_id => target.project(),
                    collection => f.collection.clone(),
                    crumbs => crumbs(&f.collection),
                    live => link("/live/firestore/c", &[("path", &f.collection)]),
                    help => Serde(TYPED_JSON_HELP),
                    draft => f.json,
                    draft_id => f.id,
                },
            )?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
        Err(e) => Err(bad(e)),
    }
}

async fn save(
    State(state): State<AppState>,
    Form(f): Form<SaveForm>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    match target.replace(&f.path, &f.json).await {
        Ok(()) => Ok(done(
            &link("/firestore/d", &[("path", &f.path)]),
            Ok(format!("Saved {}.", f.path)),
        )
        .into_response()),
        Err(e @ BrowseError::Invalid { .. }) => {
            let notice = with_failure(&Notice::default(), Some(failure_text(&e)));
            document_page(&state, &target, &f.path, Some(f.json), &notice).await
        }
        Err(e) => Err(refused(e)),
    }
}

async fn delete(
    State(state): State<AppState>,
    Form(f): Form<DeleteForm>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let parent = f.path.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    let outcome = target
        .delete(&f.path)
        .await
        .map(|()| format!("Deleted {}.", f.path))
        .map_err(bad);
    Ok(done(&link("/firestore/c", &[("path", parent)]), outcome).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crumbs_alternate_collections_and_documents() {
        let c = crumbs("users/ada/posts");
        assert_eq!(c[0], ("users".into(), "/firestore/c?path=users".into()));
        assert_eq!(c[1].1, "/firestore/d?path=users%2Fada");
        assert_eq!(c[2].1, "/firestore/c?path=users%2Fada%2Fposts");
    }
}
