//! The Firestore emulator's documents as a person looks at them: collections and subcollections
//! page by page, a document's typed fields, and documents created, replaced and deleted.
//! Documents are edited as "typed JSON": plain JSON for strings, numbers, booleans, null, arrays
//! and maps, and one-key objects for the types JSON lacks (see [`TYPED_JSON_HELP`]), so a
//! document read, edited and written back keeps every field's type.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{OWNER, documents_root, encode_path};
use crate::ready::describe_reqwest;
use crate::services::Store;
use crate::services::browse::{BrowseError, PAGE_SIZE, VALUE_CHARS, clip};
use crate::services::seed::failure;

/// How typed values are written in a document's JSON (shown beside the editor).
pub const TYPED_JSON_HELP: &[(&str, &str)] = &[
    ("timestamp", r#"{"$timestamp": "2024-05-01T12:00:00Z"}"#),
    ("reference", r#"{"$reference": "users/ada"}"#),
    (
        "geo point",
        r#"{"$geo": {"latitude": 51.5, "longitude": -0.12}}"#,
    ),
    ("bytes", r#"{"$bytes": "aGVsbG8="} (base64)"#),
    (
        "double",
        r#"1.0, or {"$double": "NaN"} / "Infinity" / "-Infinity""#,
    ),
    (
        "map with a key above",
        r#"{"$map": {"$timestamp": "not a timestamp"}}"#,
    ),
];

/// The one-key objects that stand for a typed value.
const SPECIAL: &[&str] = &[
    "$timestamp",
    "$reference",
    "$geo",
    "$bytes",
    "$double",
    "$map",
];

/// The emulator as one project's documents are reached.
pub struct Target {
    service: String,
    base: String,
    project: String,
    client: reqwest::Client,
}

/// One page of a listing and the token of the next, if there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A document as a listing shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentSummary {
    pub id: String,
    /// `collection/id[/sub/id]`.
    pub path: String,
    pub field_count: usize,
    /// The first fields as `name: value`, cut.
    pub preview: String,
    pub update_time: Option<String>,
}

/// One field as the typed view shows it (maps and arrays are followed by their items, one
/// level deeper).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldRow {
    pub depth: usize,
    pub name: String,
    /// `string`, `integer`, `double`, `boolean`, `null`, `timestamp`, `reference`, `geo point`,
    /// `bytes`, `map`, `array`.
    pub kind: &'static str,
    pub value: String,
    pub clipped: bool,
    /// For a reference: the referenced document's path in this project.
    pub link: Option<String>,
}

/// A whole document.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub path: String,
    pub id: String,
    pub rows: Vec<FieldRow>,
    /// The fields as typed JSON, pretty-printed (what the editor starts with).
    pub typed_json: String,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

impl Target {
    pub fn of(store: &Store<'_>) -> Target {
        Target {
            service: store.service.to_string(),
            base: store.base_url(),
            project: store.gcp_project.to_string(),
            client: crate::services::http_client(),
        }
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    fn root(&self) -> String {
        documents_root(&self.base, &self.project)
    }

    fn prefix(&self) -> String {
        name_prefix(&self.project)
    }

    fn api(&self, message: impl Into<String>) -> BrowseError {
        BrowseError::api(&self.service, message)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, BrowseError> {
        req.header(reqwest::header::AUTHORIZATION, OWNER)
            .send()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))
    }

    /// The collections at the root (`parent` `None`) or under a document.
    pub async fn collections(
        &self,
        parent: Option<&str>,
        token: Option<&str>,
    ) -> Result<Page<String>, BrowseError> {
        let url = match parent {
            Some(doc) => {
                let doc = document_path(doc)?;
                format!("{}/{}:listCollectionIds", self.root(), encode_path(&doc))
            }
            None => format!("{}:listCollectionIds", self.root()),
        };
        let mut body = json!({ "pageSize": PAGE_SIZE });
        if let Some(t) = token {
            body["pageToken"] = json!(t);
        }
        let resp = self.send(self.client.post(url).json(&body)).await?;
        if !resp.status().is_success() {
            return Err(self.api(failure("listing collections", resp).await));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        let mut items: Vec<String> = body
            .get("collectionIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        items.sort();
        Ok(Page {
            items,
            next: next_token(&body),
        })
    }

    /// One page of a collection's documents, in id order.
    pub async fn documents(
        &self,
        collection: &str,
        token: Option<&str>,
    ) -> Result<Page<DocumentSummary>, BrowseError> {
        let collection = collection_path(collection)?;
        let mut req = self
            .client
            .get(format!("{}/{}", self.root(), encode_path(&collection)))
            .query(&[("pageSize", PAGE_SIZE.to_string())]);
        if let Some(t) = token {
            req = req.query(&[("pageToken", t)]);
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.api(failure(&format!("listing {collection}"), resp).await));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        let prefix = self.prefix();
        let items = body
            .get("documents")
            .and_then(Value::as_array)
            .map(|docs| {
                docs.iter()
                    .filter_map(|d| summary(d, &prefix))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(Page {
            items,
            next: next_token(&body),
        })
    }

    /// A document with its typed fields.
    pub async fn document(&self, path: &str) -> Result<Document, BrowseError> {
        let path = document_path(path)?;
        let resp = self
            .send(
                self.client
                    .get(format!("{}/{}", self.root(), encode_path(&path))),
            )
            .await?;
        if resp.status().as_u16() == 404 {
            return Err(BrowseError::NotFound {
                what: format!("document {path}"),
            });
        }
        if !resp.status().is_success() {
            return Err(self.api(failure(&format!("reading {path}"), resp).await));
        }
        let doc: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        let empty = Map::new();
        let fields = doc
            .get("fields")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let prefix = self.prefix();
        let typed = fields_to_typed(fields, &prefix);
        Ok(Document {
            id: last_segment(&path).to_string(),
            rows: field_rows(fields, &prefix),
            typed_json: serde_json::to_string_pretty(&typed).unwrap_or_default(),
            create_time: doc
                .get("createTime")
                .and_then(Value::as_str)
                .map(str::to_string),
            update_time: doc
                .get("updateTime")
                .and_then(Value::as_str)
                .map(str::to_string),
            path,
        })
    }

    /// Creates a document in `collection` from typed JSON (an id the emulator picks when `id`
    /// is empty); refused when one with that id exists. Returns its path.
    pub async fn create(
        &self,
        collection: &str,
        id: &str,
        typed_json: &str,
    ) -> Result<String, BrowseError> {
        let collection = collection_path(collection)?;
        let fields = parse_typed_document(typed_json, &self.prefix())?;
        let mut req = self
            .client
            .post(format!("{}/{}", self.root(), encode_path(&collection)))
            .json(&json!({ "fields": fields }));
        let id = id.trim();
        if !id.is_empty() {
            if id.contains('/') {
                return Err(BrowseError::invalid(format!(
                    "a document id cannot contain '/': {id:?}"
                )));
            }
            req = req.query(&[("documentId", id)]);
        }
        let resp = self.send(req).await?;
        if resp.status().as_u16() == 409 {
            return Err(BrowseError::Exists {
                what: format!("document {collection}/{id}"),
            });
        }
        if !resp.status().is_success() {
            return Err(
                self.api(failure(&format!("creating a document in {collection}"), resp).await)
            );
        }
        let doc: Value = resp
            .json()
            .await
            .map_err(|e| self.api(describe_reqwest(&e)))?;
        doc.get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.strip_prefix(&self.prefix()))
            .map(str::to_string)
            .ok_or_else(|| self.api("the emulator did not name the new document"))
    }

    /// Replaces an existing document's fields with those of typed JSON.
    pub async fn replace(&self, path: &str, typed_json: &str) -> Result<(), BrowseError> {
        let path = document_path(path)?;
        let fields = parse_typed_document(typed_json, &self.prefix())?;
        let resp = self
            .send(
                self.client
                    .patch(format!("{}/{}", self.root(), encode_path(&path)))
                    .query(&[("currentDocument.exists", "true")])
                    .json(&json!({ "fields": fields })),
            )
            .await?;
        if resp.status().as_u16() == 404 {
            return Err(BrowseError::NotFound {
                what: format!("document {path}"),
            });
        }
        if !resp.status().is_success() {
            return Err(self.api(failure(&format!("writing {path}"), resp).await));
        }
        Ok(())
    }

    /// Deletes a document (its subcollections stay, as in Firestore).
    pub async fn delete(&self, path: &str) -> Result<(), BrowseError> {
        let path = document_path(path)?;
        let resp = self
            .send(
                self.client
                    .delete(format!("{}/{}", self.root(), encode_path(&path))),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.api(failure(&format!("deleting {path}"), resp).await));
        }
        Ok(())
    }
}

/// What a document's full name starts with in `project`.
fn name_prefix(project: &str) -> String {
    format!("projects/{project}/databases/(default)/documents/")
}

fn next_token(body: &Value) -> Option<String> {
    body.get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A path's segments, checked: none empty, and an odd count for a collection (`want_even`
/// false) or an even one for a document.
fn checked_path(path: &str, want_even: bool) -> Result<String, BrowseError> {
    let path = path.trim_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    if path.is_empty() || segments.iter().any(|s| s.is_empty()) {
        return Err(BrowseError::invalid(format!(
            "{path:?} is not a Firestore path"
        )));
    }
    if segments.len().is_multiple_of(2) != want_even {
        let what = if want_even {
            "a document's path is collection/id[/subcollection/id]"
        } else {
            "a collection's path is collection[/id/subcollection]"
        };
        return Err(BrowseError::invalid(format!("{what}, not {path:?}")));
    }
    Ok(path.to_string())
}

pub fn collection_path(path: &str) -> Result<String, BrowseError> {
    checked_path(path, false)
}

pub fn document_path(path: &str) -> Result<String, BrowseError> {
    checked_path(path, true)
}

fn summary(doc: &Value, prefix: &str) -> Option<DocumentSummary> {
    let path = doc.get("name")?.as_str()?.strip_prefix(prefix)?.to_string();
    let empty = Map::new();
    let fields = doc
        .get("fields")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let parts: Vec<String> = fields
        .iter()
        .take(4)
        .map(|(k, v)| {
            let (_, text) = scalar_text(v, prefix);
            format!("{k}: {text}")
        })
        .collect();
    let (preview, _) = clip(&parts.join(", "), VALUE_CHARS);
    Some(DocumentSummary {
        id: last_segment(&path).to_string(),
        field_count: fields.len(),
        preview,
        update_time: doc
            .get("updateTime")
            .and_then(Value::as_str)
            .map(str::to_string),
        path,
    })
}

/// A Firestore value's type name and its text in one line.
fn scalar_text(v: &Value, prefix: &str) -> (&'static str, String) {
    let Some((key, inner)) = v.as_object().and_then(|m| m.iter().next()) else {
        return ("unknown", v.to_string());
    };
    let s = |x: &Value| x.as_str().map_or_else(|| x.to_string(), str::to_string);
    match key.as_str() {
        "stringValue" => ("string", s(inner)),
        "integerValue" => ("integer", s(inner)),
        "doubleValue" => ("double", s(inner)),
        "booleanValue" => ("boolean", s(inner)),
        "nullValue" => ("null", "null".into()),
        "timestampValue" => ("timestamp", s(inner)),
        "referenceValue" => {
            let full = s(inner);
            let rel = full.strip_prefix(prefix).map(str::to_string);
            ("reference", rel.unwrap_or(full))
        }
        "geoPointValue" => (
            "geo point",
            format!(
                "{}, {}",
                inner.get("latitude").unwrap_or(&json!(0)),
                inner.get("longitude").unwrap_or(&json!(0))
            ),
        ),
        "bytesValue" => {
            let b64 = s(inner);
            let n = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_or(0, |b| b.len());
            ("bytes", format!("{n} bytes: {b64}"))
        }
        "mapValue" => {
            let n = inner
                .get("fields")
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            ("map", format!("{{{n} fields}}"))
        }
        "arrayValue" => {
            let n = inner
                .get("values")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            ("array", format!("[{n} items]"))
        }
        _ => ("unknown", v.to_string()),
    }
}

/// The typed view's rows of a document's (or a map's) fields.
pub fn field_rows(fields: &Map<String, Value>, prefix: &str) -> Vec<FieldRow> {
    let mut rows = Vec::new();
    for (name, v) in fields {
        push_rows(&mut rows, 0, name.clone(), v, prefix);
    }
    rows
}

fn push_rows(rows: &mut Vec<FieldRow>, depth: usize, name: String, v: &Value, prefix: &str) {
    let (kind, text) = scalar_text(v, prefix);
    let (value, clipped) = clip(&text, VALUE_CHARS);
    let link = (kind == "reference" && !text.starts_with("projects/")).then(|| text.clone());
    rows.push(FieldRow {
        depth,
        name,
        kind,
        value,
        clipped,
        link,
    });
    if let Some(map) = v
        .get("mapValue")
        .and_then(|m| m.get("fields"))
        .and_then(Value::as_object)
    {
        for (k, inner) in map {
            push_rows(rows, depth + 1, k.clone(), inner, prefix);
        }
    }
    if let Some(items) = v
        .get("arrayValue")
        .and_then(|a| a.get("values"))
        .and_then(Value::as_array)
    {
        for (i, inner) in items.iter().enumerate() {
            push_rows(rows, depth + 1, format!("[{i}]"), inner, prefix);
        }
    }
}

/// A document's Firestore fields as typed JSON.
pub fn fields_to_typed(fields: &Map<String, Value>, prefix: &str) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.clone(), to_typed(v, prefix)))
            .collect(),
    )
}

/// One Firestore value as typed JSON (references inside the project as relative paths).
pub fn to_typed(v: &Value, prefix: &str) -> Value {
    let Some((key, inner)) = v.as_object().and_then(|m| m.iter().next()) else {
        return v.clone();
    };
    match key.as_str() {
        "stringValue" | "booleanValue" => inner.clone(),
        "nullValue" => Value::Null,
        "integerValue" => match inner {
            Value::String(s) => s.parse::<i64>().map_or_else(|_| inner.clone(), Value::from),
            other => other.clone(),
        },
        "doubleValue" => match inner {
            Value::Number(n) => match n.as_f64() {
                // An integral double keeps its type through a `.0`.
                Some(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
                None => inner.clone(),
            },
            // NaN and the infinities come as strings.
            other => json!({ "$double": other }),
        },
        "timestampValue" => json!({ "$timestamp": inner }),
        "referenceValue" => {
            let full = inner.as_str().unwrap_or_default();
            json!({ "$reference": full.strip_prefix(prefix).unwrap_or(full) })
        }
        "geoPointValue" => json!({ "$geo": {
            "latitude": inner.get("latitude").cloned().unwrap_or(json!(0.0)),
            "longitude": inner.get("longitude").cloned().unwrap_or(json!(0.0)),
        }}),
        "bytesValue" => json!({ "$bytes": inner }),
        "mapValue" => {
            let empty = Map::new();
            let fields = inner
                .get("fields")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let typed = fields_to_typed(fields, prefix);
            let needs_escape =
                fields.len() == 1 && fields.keys().all(|k| SPECIAL.contains(&k.as_str()));
            if needs_escape {
                json!({ "$map": typed })
            } else {
                typed
            }
        }
        "arrayValue" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(|x| to_typed(x, prefix)).collect())
                .unwrap_or_default(),
        ),
        _ => v.clone(),
    }
}

/// Typed JSON text (an object) as a document's Firestore fields.
pub fn parse_typed_document(text: &str, prefix: &str) -> Result<Value, BrowseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        BrowseError::invalid(format!(
            "the document is not JSON (line {} column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(BrowseError::invalid("a document must be a JSON object"));
    };
    typed_fields(&map, prefix).map_err(BrowseError::invalid)
}

fn typed_fields(map: &Map<String, Value>, prefix: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in map {
        let value = from_typed(v, prefix).map_err(|e| format!("field {k:?}: {e}"))?;
        out.insert(k.clone(), value);
    }
    Ok(Value::Object(out))
}

/// One typed JSON value as a Firestore value.
pub fn from_typed(v: &Value, prefix: &str) -> Result<Value, String> {
    Ok(match v {
        Value::Null => json!({ "nullValue": null }),
        Value::Bool(b) => json!({ "booleanValue": b }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!({ "integerValue": i.to_string() })
            } else if n.is_u64() {
                return Err(format!("{n} is larger than a 64-bit integer"));
            } else {
                json!({ "doubleValue": n.as_f64() })
            }
        }
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => {
            let values = items
                .iter()
                .enumerate()
                .map(|(i, x)| from_typed(x, prefix).map_err(|e| format!("item {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "arrayValue": { "values": values } })
        }
        Value::Object(map) => {
            let special = (map.len() == 1)
                .then(|| map.iter().next())
                .flatten()
                .filter(|(k, _)| SPECIAL.contains(&k.as_str()));
            match special {
                Some((k, inner)) => special_value(k, inner, prefix)?,
                None => json!({ "mapValue": { "fields": typed_fields(map, prefix)? } }),
            }
        }
    })
}

fn special_value(key: &str, inner: &Value, prefix: &str) -> Result<Value, String> {
    let text = || {
        inner
            .as_str()
            .ok_or_else(|| format!("{key} takes a string, not {inner}"))
    };
    Ok(match key {
        "$timestamp" => {
            let t = text()?;
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("{t:?} is not an RFC 3339 timestamp: {e}"))?;
            json!({ "timestampValue": t })
        }
        "$reference" => {
            let path = text()?.trim_matches('/');
            let full = if path.starts_with("projects/") {
                path.to_string()
            } else {
                format!(
                    "{prefix}{}",
                    document_path(path).map_err(|e| e.to_string())?
                )
            };
            json!({ "referenceValue": full })
        }
        "$bytes" => {
            let b64 = text()?;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("$bytes is not base64: {e}"))?;
            json!({ "bytesValue": b64 })
        }
        "$double" => match inner {
            Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
            Value::String(s) if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()) => {
                json!({ "doubleValue": s })
            }
            other => return Err(format!("$double takes a number or \"NaN\", not {other}")),
        },
        "$geo" => {
            let coord = |name: &str| {
                inner
                    .get(name)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("$geo needs a numeric {name}"))
            };
            json!({ "geoPointValue": { "latitude": coord("latitude")?, "longitude": coord("longitude")? } })
        }
        // "$map": a map taken as it is, whatever its keys.
        _ => {
            let Value::Object(map) = inner else {
                return Err(format!("$map takes an object, not {inner}"));
            };
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), from_typed(v, prefix)?);
            }
            json!({ "mapValue": { "fields": out } })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "projects/demo/databases/(default)/documents/";

    fn every_type() -> Value {
        json!({
            "s": {"stringValue": "Ada"},
            "empty": {"stringValue": ""},
            "i": {"integerValue": "9007199254740993"},
            "d": {"doubleValue": 2.0},
            "nan": {"doubleValue": "NaN"},
            "b": {"booleanValue": false},
            "n": {"nullValue": null},
            "t": {"timestampValue": "2024-05-01T12:00:00.123456Z"},
            "r": {"referenceValue": format!("{P}users/ada")},
            "other": {"referenceValue": "projects/x/databases/(default)/documents/a/b"},
            "g": {"geoPointValue": {"latitude": 51.5, "longitude": -0.12}},
            "bytes": {"bytesValue": "AAEC/w=="},
            "m": {"mapValue": {"fields": {"k": {"integerValue": "1"}, "deep": {"mapValue": {"fields": {}}}}}},
            "odd": {"mapValue": {"fields": {"$timestamp": {"stringValue": "x"}}}},
            "a": {"arrayValue": {"values": [{"stringValue": "x"}, {"timestampValue": "2024-01-01T00:00:00Z"}]}},
            "noitems": {"arrayValue": {"values": []}},
        })
    }

    #[test]
    fn typed_json_round_trips_every_firestore_type() {
        let fields = every_type();
        let typed = fields_to_typed(fields.as_object().unwrap(), P);
        assert_eq!(typed["i"], json!(9007199254740993i64));
        assert_eq!(
            typed["t"],
            json!({"$timestamp": "2024-05-01T12:00:00.123456Z"})
        );
        assert_eq!(typed["r"], json!({"$reference": "users/ada"}));
        assert_eq!(typed["odd"], json!({"$map": {"$timestamp": "x"}}));
        let text = serde_json::to_string_pretty(&typed).unwrap();
        // an integral double stays a double through its text
        assert!(text.contains("\"d\": 2.0"), "{text}");
        let back = parse_typed_document(&text, P).unwrap();
        assert_eq!(back, fields);
    }

    #[test]
    fn plain_json_becomes_the_obvious_types() {
        let v = parse_typed_document(
            r#"{"a": 1, "b": 1.5, "c": [true, null], "d": {"e": "f"}}"#,
            P,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "a": {"integerValue": "1"},
                "b": {"doubleValue": 1.5},
                "c": {"arrayValue": {"values": [{"booleanValue": true}, {"nullValue": null}]}},
                "d": {"mapValue": {"fields": {"e": {"stringValue": "f"}}}},
            })
        );
    }

    #[test]
    fn bad_typed_values_are_refused_with_the_field_named() {
        for (text, says) in [
            (r#"{"t": {"$timestamp": "yesterday"}}"#, "field \"t\""),
            (r#"{"b": {"$bytes": "***"}}"#, "base64"),
            (r#"{"g": {"$geo": {"latitude": 1}}}"#, "longitude"),
            (r#"{"r": {"$reference": "users"}}"#, "document"),
            (r#"{"i": 18446744073709551615}"#, "64-bit"),
            ("[1]", "JSON object"),
            ("{", "not JSON"),
        ] {
            let err = parse_typed_document(text, P).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_typed_view_names_each_type_and_nests_maps_and_arrays() {
        let fields = every_type();
        let rows = field_rows(fields.as_object().unwrap(), P);
        let find = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
        assert_eq!(find("t").kind, "timestamp");
        assert_eq!(find("r").kind, "reference");
        assert_eq!(find("r").link.as_deref(), Some("users/ada"));
        assert_eq!(find("other").link, None);
        assert_eq!(find("g").value, "51.5, -0.12");
        assert_eq!(find("bytes").value, "4 bytes: AAEC/w==");
        assert_eq!(find("n").kind, "null");
        assert_eq!(find("empty").value, "");
        assert_eq!(find("m").value, "{2 fields}");
        let k = find("k");
        assert_eq!((k.depth, k.kind), (1, "integer"));
        assert_eq!(find("[1]").kind, "timestamp");
    }

    #[test]
    fn paths_are_checked_for_collections_and_documents() {
        assert_eq!(collection_path("/users/").unwrap(), "users");
        assert_eq!(document_path("users/ada").unwrap(), "users/ada");
        assert!(collection_path("users/ada").is_err());
        assert!(document_path("users").is_err());
        assert!(document_path("users//x/y").is_err());
        assert!(collection_path("").is_err());
    }
}
