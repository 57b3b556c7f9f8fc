//! Images: is it here, and pulling it with progress events.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use futures_util::future::join_all;

use super::{Engine, EngineError, is_not_found};

/// A pull's progress, one event per engine message that matters.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The image is missing: its pull begins.
    Started,
    /// Bytes done and total over all layers seen so far.
    Progress { current: u64, total: u64 },
    /// A status line from the engine (`Pulling fs layer`, `Pull complete`, `Digest: ...`).
    Status(String),
    /// Pulled, in this long.
    Done { elapsed: Duration },
}

/// What the engine says about an image, as a kind needs it to choose how to start a container of
/// it (a service kind's `launch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image's id (`sha256:...`).
    pub id: String,
    /// Its `ENTRYPOINT` (empty when it has none).
    pub entrypoint: Vec<String>,
    /// Its `CMD`.
    pub cmd: Vec<String>,
}

impl Engine {
    /// True when the image is present locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(EngineError::api(format!("inspect image {image}"), e)),
        }
    }

    /// The image's id, when the engine has it.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(info.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspect image {image}"), e)),
        }
    }

    /// What a kind of service reads about an image to choose how to start it; `None` when the
    /// engine does not have it or cannot say.
    pub async fn image_facts(&self, image: &str) -> Option<ImageFacts> {
        let info = self.docker.inspect_image(image).await.ok()?;
        let config = info.config.unwrap_or_default();
        Some(ImageFacts {
            id: info.id?,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
        })
    }

    /// The folders an image declares as volumes (`VOLUME` in its Dockerfile); empty when the
    /// image is not here or declares none.
    pub async fn image_volumes(&self, image: &str) -> Vec<String> {
        match self.docker.inspect_image(image).await {
            Ok(info) => info
                .config
                .and_then(|c| c.volumes)
                .map(|v| v.into_iter().collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Pulls those of `images` the engine lacks, in parallel, reporting each one's progress
    /// (with its name); the first failure once all have ended.
    pub async fn pull_missing(
        &self,
        images: &BTreeSet<String>,
        progress: &(dyn Fn(&str, PullEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let pulls = images.iter().map(|image| async move {
            if self.has_image(image).await? {
                return Ok::<(), EngineError>(());
            }
            let start = Instant::now();
            progress(image, PullEvent::Started);
            self.pull(image, &|ev| progress(image, ev)).await?;
            progress(
                image,
                PullEvent::Done {
                    elapsed: start.elapsed(),
                },
            );
            Ok(())
        });
        for r in join_all(pulls).await {
            r?;
        }
        Ok(())
    }

    /// Pulls `image`, reporting progress; the registry's own message on failure.
    pub async fn pull(
        &self,
        image: &str,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let (name, tag) = split_reference(image);
        let mut builder = CreateImageOptionsBuilder::default().from_image(name);
        if let Some(tag) = tag {
            builder = builder.tag(tag);
        }
        let mut stream = self.docker.create_image(Some(builder.build()), None, None);
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::Pull {
                image: image.to_string(),
                message: registry_message(&e),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(EngineError::Pull {
                    image: image.to_string(),
                    message: detail.message.unwrap_or_else(|| "unknown error".into()),
                });
            }
            let status = info.status.unwrap_or_default();
            match (&info.id, &info.progress_detail) {
                (Some(id), Some(detail)) if detail.total.is_some() => {
                    let total = detail.total.unwrap_or(0).max(0) as u64;
                    let current = detail.current.unwrap_or(0).max(0) as u64;
                    let entry = layers.entry(id.clone()).or_default();
                    // Extraction reports progress too; count only downloads.
                    if status.starts_with("Downloading") {
                        *entry = (current.min(total), total);
                    }
                    let (c, t) = layers
                        .values()
                        .fold((0, 0), |(c, t), (lc, lt)| (c + lc, t + lt));
                    progress(PullEvent::Progress {
                        current: c,
                        total: t,
                    });
                }
                (Some(id), _) => {
                    let finished = ["Download complete", "Pull complete", "Already exists"]
                        .contains(&status.as_str());
                    if finished && let Some(entry) = layers.get_mut(id) {
                        entry.0 = entry.1;
                    }
                    progress(PullEvent::Status(format!("{id}: {status}")));
                }
                (None, _) => progress(PullEvent::Status(status)),
            }
        }
        Ok(())
    }
}

fn registry_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Splits `registry:5000/name:tag@digest` into the name and the tag (or digest).
pub fn split_reference(image: &str) -> (&str, Option<&str>) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name, Some(digest));
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], Some(&image[last_slash + i + 1..])),
        None => (image, Some("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(
            split_reference("postgres:15-alpine"),
            ("postgres", Some("15-alpine"))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/vibedev-test/postgres:15"),
            ("127.0.0.1:5000/vibedev-test/postgres", Some("15"))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x", Some("latest"))
        );
        assert_eq!(split_reference("x@sha256:ab"), ("x", Some("sha256:ab")));
    }
}
