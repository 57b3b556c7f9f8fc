//! fake-gcs-server's buckets as a person looks at them: objects page by page with `/` folders,
//! an object's metadata and a bounded preview (text, or a raster image), downloads, uploads
//! and deletes.

use serde::Serialize;
use serde_json::Value;

use super::{json_u64, list_buckets, objects_url};
use crate::ready::describe_reqwest;
use crate::services::Store;
use crate::services::browse::{BrowseError, PAGE_SIZE, clip};
use crate::services::seed::failure;

/// Bytes of an object read for its preview.
pub const PREVIEW_BYTES: usize = 64 * 1024;

/// Characters of a text preview shown.
const PREVIEW_CHARS: usize = 20_000;

/// fake-gcs as its buckets are reached.
pub struct Target {
    service: String,
    base: String,
    client: reqwest::Client,
}

/// One object as a listing and its own page show it.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectRow {
    pub name: String,
    /// The name after the listing's prefix.
    pub short: String,
    pub size: u64,
    pub size_text: String,
    pub content_type: String,
    pub updated: Option<String>,
}

/// One page of a bucket under a prefix: the "folders" (prefixes ending in `/`) and objects.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub folders: Vec<String>,
    pub objects: Vec<ObjectRow>,
    pub next: Option<String>,
}

/// How an object can be previewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewKind {
    Text,
    Image,
    None,
}

/// What an object's page shows of its content.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub kind: PreviewKind,
    /// The text, for a text preview (cut to a bound).
    pub text: Option<String>,
    pub clipped: bool,
}

impl Target {
    pub fn of(store: &Store<'_>) -> Target {
        Target {
            service: store.service.to_string(),
            base: store.base_url(),
            client: crate::services::http_client(),
        }
    }

    fn api(&self, message: impl Into<String>) -> BrowseError {
        BrowseError::api(&self.service, message)
    }

    fn url(&self, bucket: &str, object: Option<&str>) -> Result<reqwest::Url, BrowseError> {
        objects_url(&self.base, bucket, object).map_err(|e| self.api(e.to_string()))
    }

    pub async fn buckets(&self) -> Result<Vec<String>, BrowseError> {
        let mut names = list_buckets(&self.client, &self.base)
            .await
            .map_err(|m| self.api(m))?;
        // vibedev's own records of branch buckets are not the app's data.
        names.retain(|n| n != super::RECORDS_BUCKET);
        names.sort();
        Ok(names)
    }

    /// One page of `bucket` under `prefix`, split at `/`.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<Listing, BrowseError> {
        let mut req = self.client.get(self.url(bucket, None)?).query(&[
            ("prefix", prefix),
            ("delimiter", "/"),
            ("maxResults", &PAGE_SIZE.to_string()),
        ]);
        if let Some(t) = token {
            req = req.query(&[("pageToken", t)]);
        }
        let resp = self
            .answer(
                req,
                || format!("bucket {bucket}"),
                || format!("listing bucket {bucket}"),
            )
            .await?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        Ok(listing(&body, prefix))
    }

    /// Sends `req` and gives its successful answer: a 404 is [`BrowseError::NotFound`] for
    /// `missing`, any other failure the server's words about `doing`.
    async fn answer(
        &self,
        req: reqwest::RequestBuilder,
        missing: impl FnOnce() -> String,
        doing: impl FnOnce() -> String,
    ) -> Result<reqwest::Response, BrowseError> {
        let resp = req
            .send()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        if resp.status().as_u16() == 404 {
            return Err(BrowseError::NotFound { what: missing() });
        }
        if !resp.status().is_success() {
            return Err(self.api(failure(&doing(), resp).await));
        }
        Ok(resp)
    }

    /// An object's metadata.
    pub async fn object(&self, bucket: &str, name: &str) -> Result<ObjectRow, BrowseError> {
        let req = self.client.get(self.url(bucket, Some(name))?);
        let resp = self
            .answer(
                req,
                || format!("object {bucket}/{name}"),
                || format!("reading {bucket}/{name}"),
            )
            .await?;
        let item: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        object_row(&item, "").ok_or_else(|| self.api(format!("{bucket}/{name} has no name")))
    }

    /// The object's bytes, at most `limit` of them when given (the rest is not read).
    pub async fn read(
        &self,
        bucket: &str,
        name: &str,
        limit: Option<usize>,
    ) -> Result<Vec<u8>, BrowseError> {
        let mut req = self
            .client
            .get(self.url(bucket, Some(name))?)
            .query(&[("alt", "media")]);
        if let Some(n) = limit {
            req = req.header(reqwest::header::RANGE, format!("bytes=0-{}", n.max(1) - 1));
        }
        let mut resp = self
            .answer(
                req,
                || format!("object {bucket}/{name}"),
                || format!("downloading {bucket}/{name}"),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?
        {
            out.extend_from_slice(&chunk);
            if let Some(n) = limit
                && out.len() >= n
            {
                out.truncate(n);
                break;
            }
        }
        Ok(out)
    }

    /// What the object's page shows of its content.
    pub async fn preview(&self, bucket: &str, object: &ObjectRow) -> Result<Preview, BrowseError> {
        let kind = preview_kind(&object.content_type, &object.name);
        if kind != PreviewKind::Text {
            return Ok(Preview {
                kind,
                text: None,
                clipped: false,
            });
        }
        let bytes = self.read(bucket, &object.name, Some(PREVIEW_BYTES)).await?;
        let (text, clipped) = text_preview(&bytes, object.size);
        Ok(Preview {
            kind,
            text: Some(text),
            clipped,
        })
    }

    /// Uploads (or replaces) an object with the given content type.
    pub async fn upload(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), BrowseError> {
        if name.is_empty() {
            return Err(BrowseError::invalid("an object needs a name"));
        }
        let resp = self
            .client
            .post(format!(
                "{}/upload/storage/v1/b/{}/o",
                self.base.trim_end_matches('/'),
                crate::services::encode(bucket)
            ))
            .query(&[("uploadType", "media"), ("name", name)])
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            return Err(self.api(failure(&format!("uploading {bucket}/{name}"), resp).await));
        }
        Ok(())
    }

    /// Deletes an object (one already gone is fine).
    pub async fn delete(&self, bucket: &str, name: &str) -> Result<(), BrowseError> {
        super::delete_object(&self.client, &self.base, bucket, name)
            .await
            .map_err(|e| self.api(e.to_string()))
    }
}

fn object_row(item: &Value, prefix: &str) -> Option<ObjectRow> {
    let name = item.get("name")?.as_str()?.to_string();
    let size = json_u64(item.get("size"));
    Some(ObjectRow {
        short: name.strip_prefix(prefix).unwrap_or(&name).to_string(),
        size,
        size_text: crate::text::size(size),
        content_type: item
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_string(),
        updated: item
            .get("updated")
            .and_then(Value::as_str)
            .map(str::to_string),
        name,
    })
}

/// A JSON API listing as folders and objects (the prefix's own placeholder object is left out).
fn listing(body: &Value, prefix: &str) -> Listing {
    let folders = body
        .get("prefixes")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let objects = body
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| object_row(i, prefix))
                .filter(|o| !o.short.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Listing {
        folders,
        objects,
        next: body
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    }
}

/// Text types are shown as text; raster images as an image (SVG, which can carry scripts, as
/// text); anything else not at all.
pub fn preview_kind(content_type: &str, name: &str) -> PreviewKind {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if is_raster_image(&ct) {
        return PreviewKind::Image;
    }
    let texty = ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || [
            "application/json",
            "application/javascript",
            "application/xml",
            "application/toml",
            "application/yaml",
            "application/x-yaml",
            "application/sql",
            "image/svg+xml",
        ]
        .contains(&ct.as_str());
    let text_name = [
        ".txt", ".md", ".json", ".yaml", ".yml", ".toml", ".csv", ".sql", ".js", ".ts", ".css",
        ".html", ".xml", ".svg",
    ]
    .iter()
    .any(|ext| name.to_ascii_lowercase().ends_with(ext));
    if texty || (ct == "application/octet-stream" && text_name) {
        PreviewKind::Text
    } else {
        PreviewKind::None
    }
}

/// Image types a browser shows without running anything in them.
pub fn is_raster_image(content_type: &str) -> bool {
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
    ]
    .contains(&content_type)
}

/// The first bytes of an object of `size` bytes as text; cut when the object is longer.
pub fn text_preview(bytes: &[u8], size: u64) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    // A multi-byte character cut at the read's end is not the object's fault.
    let text = text.trim_end_matches('\u{FFFD}');
    let (shown, clipped) = clip(text, PREVIEW_CHARS);
    (shown, clipped || size > bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previews_follow_content_types() {
        assert_eq!(
            preview_kind("text/plain; charset=utf-8", "a"),
            PreviewKind::Text
        );
        assert_eq!(preview_kind("application/json", "a"), PreviewKind::Text);
        assert_eq!(preview_kind("image/png", "a.png"), PreviewKind::Image);
        assert_eq!(preview_kind("image/svg+xml", "a.svg"), PreviewKind::Text);
        assert_eq!(
            preview_kind("application/octet-stream", "x.md"),
            PreviewKind::Text
        );
        assert_eq!(
            preview_kind("application/octet-stream", "x.bin"),
            PreviewKind::None
        );
        assert_eq!(preview_kind("application/zip", "x.zip"), PreviewKind::None);
    }

    #[test]
    fn text_previews_say_when_they_are_cut() {
        assert_eq!(text_preview(b"hello", 5), ("hello".to_string(), false));
        assert_eq!(text_preview(b"hello", 50), ("hello".to_string(), true));
        // a character cut by the read's bound is dropped, not shown as garbage
        let e = "é".as_bytes();
        assert_eq!(text_preview(&[b'a', e[0]], 3).0, "a");
    }

    #[test]
    fn listings_split_folders_from_objects() {
        let body = json!({
            "prefixes": ["dir/sub/"],
            "items": [
                {"name": "dir/", "size": "0"},
                {"name": "dir/a.txt", "size": "5", "contentType": "text/plain", "updated": "2024-01-01T00:00:00Z"},
            ],
            "nextPageToken": "t1",
        });
        let l = listing(&body, "dir/");
        assert_eq!(l.folders, ["dir/sub/"]);
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.objects[0].short, "a.txt");
        assert_eq!(l.objects[0].size, 5);
        assert_eq!(l.next.as_deref(), Some("t1"));
        assert_eq!(listing(&json!({}), "").next, None);
    }
}
