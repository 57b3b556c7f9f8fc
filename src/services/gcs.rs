//! fake-gcs-server (Cloud Storage's JSON API): health, buckets.

use std::time::Instant;

use crate::ready::{self, describe_reqwest};

/// Waits until fake-gcs answers its health check, then creates the missing buckets.
/// Returns the buckets created now.
pub async fn ready_and_prepared(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    buckets: &[String],
    deadline: Instant,
) -> Result<Vec<String>, String> {
    ready::retry_until(deadline, || async {
        match ready::http_ok(client, &format!("{base}/_internal/healthcheck"), None).await {
            Ok(()) => Ok(()),
            // Older fake-gcs has no health endpoint: listing buckets proves it serves the API.
            Err(_) => ready::http_ok(client, &format!("{base}/storage/v1/b"), None).await,
        }
    })
    .await?;
    let existing = list_buckets(client, base).await?;
    let mut created = Vec::new();
    for bucket in buckets {
        if existing.contains(bucket) {
            continue;
        }
        create_bucket(client, base, project, bucket).await?;
        created.push(bucket.clone());
    }
    Ok(created)
}

/// Bucket names.
pub async fn list_buckets(client: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let resp = client
        .get(format!("{base}/storage/v1/b"))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if !resp.status().is_success() {
        return Err(format!("listing buckets answered {}", resp.status()));
    }
    let json: serde_json::Value = resp.json().await.map_err(|e| describe_reqwest(&e))?;
    Ok(json
        .get("items")
        .and_then(|i| i.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Creates a bucket; one that already exists is fine.
pub async fn create_bucket(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    bucket: &str,
) -> Result<(), String> {
    let resp = client
        .post(format!("{base}/storage/v1/b"))
        .query(&[("project", project)])
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    let status = resp.status();
    if status.is_success() || status.as_u16() == 409 {
        Ok(())
    } else {
        let body = resp.text().await.unwrap_or_default();
        Err(format!(
            "creating bucket {bucket} answered {status}: {}",
            body.trim()
        ))
    }
}
