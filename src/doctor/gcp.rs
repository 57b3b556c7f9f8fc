//! Google credentials and the GCP project, found where `gcp_auth` and `vibedev secrets pull` look
//! for them, by reading variables and files only: no token is ever requested or shown.

use std::time::Duration;

use crate::config::Project;
use crate::secrets::auth::{Residency, this_machine};
use crate::secrets::credentials::{FileFinding, GcpEnv, Source, file_source, gcloud_source};

use super::Check;

const METADATA_URL: &str = "http://metadata.google.internal/computeMetadata/v1/project/project-id";
/// The metadata server answers within milliseconds on Google Cloud; anywhere else nothing answers.
const METADATA_TIMEOUT: Duration = Duration::from_millis(300);
const LOGIN_HINT: &str = "run `gcloud auth application-default login` (needed by `vibedev secrets pull`), or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file";

/// True when the Google Cloud metadata server answers (asked for the project id, not a token).
pub async fn metadata_server_answers() -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(METADATA_TIMEOUT)
        .no_proxy()
        .build()
    else {
        return false;
    };
    match client
        .get(METADATA_URL)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
    {
        Ok(resp) => {
            resp.status().is_success()
                && resp
                    .headers()
                    .get("Metadata-Flavor")
                    .is_some_and(|v| v == "Google")
        }
        Err(_) => false,
    }
}

/// The `gcp-credentials` check: the source gcp_auth would pick, in its own order.
pub async fn credentials_check(env: &GcpEnv) -> Check {
    const NAME: &str = "gcp-credentials";
    let mut notes = match file_source(env) {
        FileFinding::Found(source) => return Check::pass(NAME, describe(&source)),
        FileFinding::Broken { message, hint } => return Check::fail(NAME, message, Some(hint)),
        FileFinding::NotFound(notes) => notes,
    };
    // Off Google Cloud no metadata server can answer: not asked (as `secrets pull` does not ask).
    let on_google_cloud = matches!(this_machine(), Residency::Google(_));
    if on_google_cloud && metadata_server_answers().await {
        return Check::pass(NAME, describe(&Source::MetadataServer));
    }
    match gcloud_source(env) {
        Ok(source) => return Check::pass(NAME, describe(&source)),
        Err(note) => notes.push(note.to_string()),
    }
    let mut message = "no Google credentials: GOOGLE_APPLICATION_CREDENTIALS is not set, no application-default credentials, no metadata server".to_string();
    for note in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    Check::warn(NAME, message, LOGIN_HINT)
}

fn describe(source: &Source) -> String {
    match source {
        Source::ServiceAccountKey { path, email } => format!(
            "service-account key {email} from GOOGLE_APPLICATION_CREDENTIALS ({})",
            path.display()
        ),
        Source::ApplicationDefault { path } => {
            format!(
                "gcloud application-default credentials ({})",
                path.display()
            )
        }
        Source::MetadataServer => {
            "the Google Cloud metadata server (this machine's service account)".into()
        }
        Source::GcloudCli { account } => {
            format!("the gcloud CLI, signed in as {account} (`gcloud auth print-access-token`)")
        }
    }
}

/// Where the GCP project for `vibedev secrets pull` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectSource {
    Flag,
    Config,
    Environment,
    GcloudEnvironment,
    GcloudConfig(String),
}

/// The GCP project: `--project`, then `[secrets] project`, then `GOOGLE_CLOUD_PROJECT`, then
/// gcloud's configured project.
pub fn gcp_project(
    flag: Option<&str>,
    project: Option<&Project>,
    env: &GcpEnv,
) -> Option<(String, ProjectSource)> {
    if let Some(p) = flag.filter(|p| !p.is_empty()) {
        return Some((p.to_string(), ProjectSource::Flag));
    }
    if let Some(p) = project.and_then(|p| p.file.secrets.project.clone()) {
        return Some((p, ProjectSource::Config));
    }
    if let Some(p) = &env.google_cloud_project {
        return Some((p.clone(), ProjectSource::Environment));
    }
    if let Some(p) = &env.core_project {
        return Some((p.clone(), ProjectSource::GcloudEnvironment));
    }
    env.gcloud_core("project")
        .map(|p| (p, ProjectSource::GcloudConfig(env.gcloud_config_name())))
}

/// The `gcp-project` check.
pub fn project_check(flag: Option<&str>, project: Option<&Project>, env: &GcpEnv) -> Check {
    const NAME: &str = "gcp-project";
    match gcp_project(flag, project, env) {
        Some((id, source)) => {
            let from = match source {
                ProjectSource::Flag => "--project".to_string(),
                ProjectSource::Config => "vibedev.toml [secrets] project".to_string(),
                ProjectSource::Environment => "GOOGLE_CLOUD_PROJECT".to_string(),
                ProjectSource::GcloudEnvironment => "CLOUDSDK_CORE_PROJECT".to_string(),
                ProjectSource::GcloudConfig(name) => format!("gcloud configuration {name:?}"),
            };
            Check::pass(NAME, format!("{id} (from {from})"))
        }
        None if project.is_none() => Check::skip(
            NAME,
            "vibedev.toml could not be read, and no --project, GOOGLE_CLOUD_PROJECT or gcloud project is set",
        ),
        None => Check::warn(
            NAME,
            "no GCP project for `vibedev secrets pull`: none in --project, vibedev.toml [secrets] project, GOOGLE_CLOUD_PROJECT or gcloud's configuration",
            "add `project = \"<gcp project id>\"` under [secrets] in vibedev.toml (or set GOOGLE_CLOUD_PROJECT, or `gcloud config set project <id>`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_active_gcloud_configuration_names_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let env = GcpEnv {
            cloudsdk_config: Some(dir.path().join("gcloud")),
            ..GcpEnv::default()
        };
        write(&dir.path().join("gcloud/active_config"), "work\n");
        write(
            &dir.path().join("gcloud/configurations/config_work"),
            "[core]\naccount = dev@example.com\nproject = work-proj\n",
        );
        assert_eq!(
            gcp_project(None, None, &env),
            Some((
                "work-proj".into(),
                ProjectSource::GcloudConfig("work".into())
            ))
        );
    }

    #[test]
    fn project_precedence_is_flag_config_environment_gcloud() {
        let env = GcpEnv {
            google_cloud_project: Some("from-env".into()),
            core_project: Some("from-gcloud".into()),
            ..GcpEnv::default()
        };
        let mut project = Project {
            root: PathBuf::from("/p"),
            config_path: None,
            file: Default::default(),
            name: "p".into(),
        };
        assert_eq!(
            gcp_project(Some("flag"), Some(&project), &env).unwrap().1,
            ProjectSource::Flag
        );
        assert_eq!(
            gcp_project(None, Some(&project), &env).unwrap().0,
            "from-env"
        );
        project.file.secrets.project = Some("from-config".into());
        assert_eq!(
            gcp_project(None, Some(&project), &env).unwrap(),
            ("from-config".into(), ProjectSource::Config)
        );
        let only_gcloud = GcpEnv {
            core_project: Some("from-gcloud".into()),
            ..GcpEnv::default()
        };
        assert_eq!(
            gcp_project(None, None, &only_gcloud).unwrap().1,
            ProjectSource::GcloudEnvironment
        );
        let nothing = GcpEnv::default();
        assert_eq!(
            project_check(None, None, &nothing).status,
            super::super::Status::Skip
        );
        project.file.secrets.project = None;
        assert_eq!(
            project_check(None, Some(&project), &nothing).status,
            super::super::Status::Warn
        );
    }
}
