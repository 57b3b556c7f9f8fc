//! The Bucket page: buckets, a bucket's objects under a prefix (live, `/` folders, page by
//! page), an object's metadata and preview, downloads, uploads and deletes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::stores::{Reached, failure_text, link, reach, reached, refused, shown, with_failure};
use super::{AppState, Notice, Page, WebError, done, live};
use crate::services::Kind;
use crate::services::gcs::browse::{PreviewKind, Target, is_raster_image};

pub const PAGE: Page = Page {
    templates: &[
        ("bucket.html", include_str!("templates/bucket.html")),
        (
            "bucket_objects.html",
            include_str!("templates/bucket_objects.html"),
        ),
        (
            "bucket_object.html",
            include_str!("templates/bucket_object.html"),
        ),
    ],
    routes,
};

const NAV: &str = "bucket";
const TITLE: &str = "Bucket";

/// The largest upload taken.
const UPLOAD_LIMIT: usize = 512 * 1024 * 1024;

fn routes() -> Router<AppState> {
    Router::new()
        .route("/bucket", get(index))
        .route("/bucket/o", get(object))
        .route("/bucket/raw", get(raw))
        .route(
            "/bucket/upload",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/bucket/delete", post(delete))
        .route("/live/bucket", get(live_objects))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    bucket: Option<String>,
    prefix: Option<String>,
    /// The store's page token (not `token`: that names the UI's own).
    page: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ObjectQuery {
    bucket: String,
    name: String,
    #[serde(default)]
    download: Option<String>,
}

async fn target(state: &AppState) -> Result<Reached<Target>, WebError> {
    reach(state, Kind::GCS, NAV, TITLE, |s| Some(Target::of(s))).await
}

/// `a/b/` as links to each folder level: (label, href).
fn crumbs(bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = vec![(bucket.to_string(), link("/bucket", &[("bucket", bucket)]))];
    let mut so_far = String::new();
    for seg in prefix.split_terminator('/') {
        so_far.push_str(seg);
        so_far.push('/');
        out.push((
            seg.to_string(),
            link("/bucket", &[("bucket", bucket), ("prefix", &so_far)]),
        ));
    }
    out
}

async fn objects_html(
    state: &AppState,
    target: &Target,
    bucket: &str,
    prefix: &str,
    token: Option<&str>,
) -> Result<String, WebError> {
    let listing = match target.list(bucket, prefix, token).await {
        Ok(l) => l,
        Err(e) => {
            let failure = shown(e)?;
            return state.render("bucket_objects.html", context! { failure });
        }
    };
    let folders: Vec<(String, String)> = listing
        .folders
        .iter()
        .map(|f| {
            let label = f.strip_prefix(prefix).unwrap_or(f).to_string();
            (label, link("/bucket", &[("bucket", bucket), ("prefix", f)]))
        })
        .collect();
    let objects: Vec<minijinja::Value> = listing
        .objects
        .iter()
        .map(|o| {
            context! {
                href => link("/bucket/o", &[("bucket", bucket), ("name", &o.name)]),
                ..minijinja::Value::from(Serde(o))
            }
        })
        .collect();
    state.render(
        "bucket_objects.html",
        context! {
            bucket,
            folders,
            objects,
            next => listing.next.map(|t| link("/bucket", &[("bucket", bucket), ("prefix", prefix), ("page", &t)])),
            first => token.is_some().then(|| link("/bucket", &[("bucket", bucket), ("prefix", prefix)])),
        },
    )
}

async fn index(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let buckets = match target.buckets().await {
        Ok(b) => b,
        Err(e) => {
            let failure = shown(e)?;
            return Ok(state
                .page(
                    "bucket.html",
                    NAV,
                    TITLE,
                    &with_failure(&notice, Some(failure)),
                    context! {},
                )?
                .into_response());
        }
    };
    // One bucket (the usual stack) opens at once.
    let bucket = q
        .bucket
        .clone()
        .or_else(|| (buckets.len() == 1).then(|| buckets[0].clone()));
    let Some(bucket) = bucket else {
        let buckets: Vec<(String, String)> = buckets
            .into_iter()
            .map(|b| {
                let href = link("/bucket", &[("bucket", &b)]);
                (b, href)
            })
            .collect();
        return Ok(state
            .page("bucket.html", NAV, TITLE, &notice, context! { buckets })?
            .into_response());
    };
    let prefix = q.prefix.unwrap_or_default();
    let objects = objects_html(&state, &target, &bucket, &prefix, q.page.as_deref()).await?;
    let mut live_params = vec![("bucket", bucket.as_str()), ("prefix", prefix.as_str())];
    if let Some(t) = q.page.as_deref() {
        live_params.push(("page", t));
    }
    let live = link("/live/bucket", &live_params);
    let others: Vec<(String, String)> = buckets
        .iter()
        .filter(|b| **b != bucket)
        .map(|b| (b.clone(), link("/bucket", &[("bucket", b)])))
        .collect();
    Ok(state
        .page(
            "bucket.html",
            NAV,
            TITLE,
            &notice,
            context! {
                crumbs => crumbs(&bucket, &prefix),
                others,
                prefix,
                objects => minijinja::Value::from_safe_string(objects),
                live,
                bucket,
            },
        )?
        .into_response())
}

async fn live_objects(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let target = Arc::new(reached!(&state));
    let bucket = q.bucket.unwrap_or_default();
    let prefix = q.prefix.unwrap_or_default();
    let token = q.page;
    let st = state.clone();
    Ok(live::fragment(&state, move || {
        let (st, target, bucket, prefix, token) = (
            st.clone(),
            target.clone(),
            bucket.clone(),
            prefix.clone(),
            token.clone(),
        );
        async move { objects_html(&st, &target, &bucket, &prefix, token.as_deref()).await }
    })
    .into_response())
}

async fn object(
    State(state): State<AppState>,
    Query(q): Query<ObjectQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let meta = target.object(&q.bucket, &q.name).await.map_err(refused)?;
    let (preview, failure) = match target.preview(&q.bucket, &meta).await {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(failure_text(&e))),
    };
    let folder = q
        .name
        .rsplit_once('/')
        .map(|(p, _)| format!("{p}/"))
        .unwrap_or_default();
    Ok(state
        .page(
            "bucket_object.html",
            NAV,
            TITLE,
            &with_failure(&notice, failure),
            context! {
                crumbs => crumbs(&q.bucket, &folder),
                image => preview.as_ref().is_some_and(|p| p.kind == PreviewKind::Image),
                raw => link("/bucket/raw", &[("bucket", &q.bucket), ("name", &q.name)]),
                download => link("/bucket/raw", &[("bucket", &q.bucket), ("name", &q.name), ("download", "1")]),
                back => link("/bucket", &[("bucket", &q.bucket), ("prefix", &folder)]),
                bucket => q.bucket,
                object => Serde(meta),
                preview => Serde(preview),
            },
        )?
        .into_response())
}

/// An object's bytes: a raster image inline (for its preview), anything else as a download,
/// so nothing from a bucket runs as a page of this origin.
async fn raw(
    State(state): State<AppState>,
    Query(q): Query<ObjectQuery>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let meta = target.object(&q.bucket, &q.name).await.map_err(refused)?;
    let bytes = target
        .read(&q.bucket, &q.name, None)
        .await
        .map_err(refused)?;
    let ct = meta
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let inline = q.download.is_none() && is_raster_image(&ct);
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    let content_type = if inline {
        ct.as_str()
    } else {
        "application/octet-stream"
    };
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if !inline {
        let file = q.name.rsplit('/').next().unwrap_or(&q.name);
        let disposition = format!(
            "attachment; filename=\"{}\"; filename*=UTF-8''{}",
            file.replace(
                |c: char| !c.is_ascii_graphic() || c == '"' || c == '\\',
                "_"
            ),
            crate::services::encode(file)
        );
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

async fn upload(State(state): State<AppState>, mut form: Multipart) -> Result<Response, WebError> {
    let target = reached!(&state);
    let bad = |what: String| WebError::BadRequest { what };
    let (mut bucket, mut prefix, mut name) = (String::new(), String::new(), String::new());
    let mut file: Option<(String, String, Vec<u8>)> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("the upload could not be read: {e}")))?
    {
        let field_name = field.name().unwrap_or_default().to_string();
        match field_name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_string();
                let ct = field
                    .content_type()
                    .map(str::to_string)
                    .filter(|c| !c.is_empty() && c != "application/octet-stream")
                    .unwrap_or_else(|| crate::services::gcs::content_type(&file_name).to_string());
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| bad(format!("the upload could not be read: {e}")))?;
                file = Some((file_name, ct, data.to_vec()));
            }
            other => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad(format!("the upload could not be read: {e}")))?;
                match other {
                    "bucket" => bucket = text,
                    "prefix" => prefix = text,
                    "name" => name = text,
                    _ => {}
                }
            }
        }
    }
    let Some((file_name, content_type, bytes)) = file else {
        return Err(bad("choose a file to upload".into()));
    };
    let object = if name.trim().is_empty() {
        format!("{prefix}{file_name}")
    } else {
        format!("{prefix}{}", name.trim())
    };
    let outcome = target
        .upload(&bucket, &object, &content_type, bytes)
        .await
        .map(|()| format!("Uploaded {object}."))
        .map_err(|e| WebError::BadRequest {
            what: failure_text(&e),
        });
    let back = link("/bucket", &[("bucket", &bucket), ("prefix", &prefix)]);
    Ok(done(&back, outcome).into_response())
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    bucket: String,
    name: String,
}

async fn delete(
    State(state): State<AppState>,
    Form(f): Form<DeleteForm>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let folder = f
        .name
        .rsplit_once('/')
        .map(|(p, _)| format!("{p}/"))
        .unwrap_or_default();
    let outcome = target
        .delete(&f.bucket, &f.name)
        .await
        .map(|()| format!("Deleted {}.", f.name))
        .map_err(|e| WebError::BadRequest {
            what: failure_text(&e),
        });
    let back = link("/bucket", &[("bucket", &f.bucket), ("prefix", &folder)]);
    Ok(done(&back, outcome).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crumbs_follow_the_folders() {
        let c = crumbs("b", "a/c/");
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].1, "/bucket?bucket=b&prefix=a%2Fc%2F");
    }
}
