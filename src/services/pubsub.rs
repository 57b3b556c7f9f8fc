//! Google's Pub/Sub emulator: ready when `GET /` answers `Ok`, the topics `x-vibedev: topics`
//! names created once it answers, `PUBSUB_EMULATOR_HOST` for the app's client libraries.

use futures_util::future::BoxFuture;

use super::{ServiceKind, Settings, SettingsInput, Stage, Store, WaitFor};
use crate::branches::OnBranch;
use crate::config::BranchesConfig;
use crate::ready::describe_reqwest;

/// The Pub/Sub emulator. Declared with `x-vibedev: kind: pubsub` (no service name implies it).
pub struct PubSub;

impl ServiceKind for PubSub {
    fn name(&self) -> &'static str {
        "pubsub"
    }

    fn implied_by_service_name(&self) -> bool {
        false
    }

    fn settings(&self, input: &SettingsInput<'_>) -> Result<Settings, String> {
        let topics = input.x.topics.clone().unwrap_or_default();
        if let Some(bad) = topics.iter().find(|t| !valid_topic(t)) {
            return Err(format!(
                "x-vibedev topics: {bad:?} is not a topic name (3-255 letters, digits, - _ . ~ + %, starting with a letter)"
            ));
        }
        Ok(Settings {
            topics,
            ..Settings::default()
        })
    }

    /// A JVM, like the Firestore emulator.
    fn start_rank(&self, _fresh_data: bool) -> u8 {
        1
    }

    fn wait(&self) -> WaitFor {
        WaitFor::Http {
            paths: vec!["/".into()],
            body: Some("Ok".into()),
        }
    }

    /// Creates the missing topics once the emulator answers.
    fn prepare<'a>(
        &'a self,
        store: &'a Store<'a>,
        stage: Stage,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            if stage != Stage::Ready {
                return Ok(Vec::new());
            }
            let client = super::http_client();
            let mut created = Vec::new();
            for topic in &store.settings.topics {
                let url = format!(
                    "{}/v1/projects/{}/topics/{}",
                    store.base_url(),
                    super::encode(store.gcp_project),
                    super::encode(topic)
                );
                let resp = client
                    .put(&url)
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .map_err(|e| describe_reqwest(&e))?;
                match resp.status().as_u16() {
                    200..=299 => created.push(format!("topic {topic}")),
                    // Already there (a restart with the emulator's data kept, or a second run).
                    409 => {}
                    status => {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(format!(
                            "creating topic {topic} answered {status}: {}",
                            body.trim()
                        ));
                    }
                }
            }
            Ok(created)
        })
    }

    /// With `[branches] firestore` the app's `GOOGLE_CLOUD_PROJECT` is the branch's project id,
    /// which its Pub/Sub client uses too: the topics follow into it.
    fn follow_branch(
        &self,
        config: &BranchesConfig,
        settings: &mut Settings,
        gcp_project: &str,
        on: &OnBranch,
    ) -> Option<String> {
        if !config.firestore {
            return None;
        }
        Some(super::firestore::follow_project(
            settings,
            gcp_project,
            on,
            Vec::new(),
        ))
    }

    /// The topics, in the branch's project id.
    fn ensure_branch<'a>(
        &'a self,
        store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            if store.settings.branch.is_none() {
                return Ok(Vec::new());
            }
            self.prepare(store, Stage::Ready).await
        })
    }

    fn url(&self, store: &Store<'_>, _with_password: bool) -> String {
        store.base_url()
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        vec![(
            "PUBSUB_EMULATOR_HOST".to_string(),
            format!("{}:{}", store.url_host(), store.port),
        )]
    }
}

/// Pub/Sub's topic name rules: 3 to 255 characters, starting with a letter, of letters, digits
/// and `- _ . ~ + %`, not starting with `goog`.
fn valid_topic(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.starts_with("goog")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
}

#[cfg(test)]
mod tests {
    use super::valid_topic;

    #[test]
    fn topic_names_follow_pubsubs_rules() {
        assert!(valid_topic("app-events"));
        assert!(valid_topic("a.b~c+d%e_f"));
        assert!(!valid_topic("ab"));
        assert!(!valid_topic("1topic"));
        assert!(!valid_topic("google-topic"));
        assert!(!valid_topic("has space"));
    }
}
