//! Which GCP project holds the secrets: the `--project` flag, then `[secrets] project`, then
//! `GOOGLE_CLOUD_PROJECT`, then gcloud's configured project (read from its files, not by running it).

use std::path::{Path, PathBuf};

/// Where the project id came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectSource {
    Flag,
    Config,
    GoogleCloudProject,
    /// `CLOUDSDK_CORE_PROJECT`, which gcloud itself honours first.
    GcloudEnv,
    /// `[core] project` of the named gcloud configuration.
    Gcloud(String),
}

impl std::fmt::Display for ProjectSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectSource::Flag => write!(f, "--project"),
            ProjectSource::Config => write!(f, "[secrets] project in vibedev.toml"),
            ProjectSource::GoogleCloudProject => write!(f, "GOOGLE_CLOUD_PROJECT"),
            ProjectSource::GcloudEnv => write!(f, "CLOUDSDK_CORE_PROJECT"),
            ProjectSource::Gcloud(name) => write!(f, "gcloud configuration {name:?}"),
        }
    }
}

/// Resolves the project; `env` reads an environment variable (injected for tests).
pub fn resolve(
    flag: Option<&str>,
    config: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, ProjectSource)> {
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(p) = nonempty(flag.map(str::to_string)) {
        return Some((p, ProjectSource::Flag));
    }
    if let Some(p) = nonempty(config.map(str::to_string)) {
        return Some((p, ProjectSource::Config));
    }
    if let Some(p) = nonempty(env("GOOGLE_CLOUD_PROJECT")) {
        return Some((p, ProjectSource::GoogleCloudProject));
    }
    if let Some(p) = nonempty(env("CLOUDSDK_CORE_PROJECT")) {
        return Some((p, ProjectSource::GcloudEnv));
    }
    let dir = gcloud_config_dir(env)?;
    let name = nonempty(env("CLOUDSDK_ACTIVE_CONFIG_NAME"))
        .or_else(|| nonempty(std::fs::read_to_string(dir.join("active_config")).ok()))
        .unwrap_or_else(|| "default".to_string());
    let project = gcloud_project(&dir, &name)?;
    Some((project, ProjectSource::Gcloud(name)))
}

/// gcloud's config folder: `CLOUDSDK_CONFIG`, else `~/.config/gcloud`.
pub fn gcloud_config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("CLOUDSDK_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config").join("gcloud"))
}

/// `[core] project` of configuration `name` in gcloud's config folder.
pub fn gcloud_project(dir: &Path, name: &str) -> Option<String> {
    if name.contains(['/', '\\']) {
        return None;
    }
    let text =
        std::fs::read_to_string(dir.join("configurations").join(format!("config_{name}"))).ok()?;
    ini_value(&text, "core", "project")
}

/// A value from INI text as gcloud writes it (`[section]`, `key = value`, `#`/`;` comments).
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if current == section
            && let Some((k, v)) = line.split_once(['=', ':'])
            && k.trim() == key
        {
            let v = v.trim();
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn gcloud_dir(active: Option<&str>, configs: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(a) = active {
            std::fs::write(dir.path().join("active_config"), a).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("configurations")).unwrap();
        for (name, text) in configs {
            std::fs::write(
                dir.path()
                    .join("configurations")
                    .join(format!("config_{name}")),
                text,
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn flag_beats_config_beats_env_beats_gcloud() {
        let dir = gcloud_dir(None, &[("default", "[core]\nproject = from-gcloud\n")]);
        let d = dir.path().to_str().unwrap();
        let env = env_of(&[("GOOGLE_CLOUD_PROJECT", "from-env"), ("CLOUDSDK_CONFIG", d)]);
        assert_eq!(
            resolve(Some("f"), Some("c"), &env),
            Some(("f".into(), ProjectSource::Flag))
        );
        assert_eq!(
            resolve(None, Some("c"), &env),
            Some(("c".into(), ProjectSource::Config))
        );
        assert_eq!(
            resolve(None, None, &env),
            Some(("from-env".into(), ProjectSource::GoogleCloudProject))
        );
        let env = env_of(&[("CLOUDSDK_CONFIG", d)]);
        assert_eq!(
            resolve(None, None, &env),
            Some((
                "from-gcloud".into(),
                ProjectSource::Gcloud("default".into())
            ))
        );
    }

    #[test]
    fn gcloud_active_configuration_is_followed() {
        let dir = gcloud_dir(
            Some("work\n"),
            &[
                ("default", "[core]\nproject = home\n"),
                (
                    "work",
                    "[compute]\nproject = not-this\n\n[core]\naccount = a@b.c\nproject = acme-dev\n",
                ),
            ],
        );
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            resolve(None, None, &env_of(&[("CLOUDSDK_CONFIG", d)])),
            Some(("acme-dev".into(), ProjectSource::Gcloud("work".into())))
        );
        assert_eq!(
            resolve(
                None,
                None,
                &env_of(&[
                    ("CLOUDSDK_CONFIG", d),
                    ("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")
                ])
            ),
            Some(("home".into(), ProjectSource::Gcloud("default".into())))
        );
    }

    #[test]
    fn home_config_folder_is_used_without_cloudsdk_config() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".config/gcloud/configurations");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config_default"), "[core]\nproject=p1\n").unwrap();
        let h = home.path().to_str().unwrap();
        assert_eq!(
            resolve(None, None, &env_of(&[("HOME", h)])).map(|p| p.0),
            Some("p1".into())
        );
    }

    #[test]
    fn nothing_configured_means_no_project() {
        let dir = gcloud_dir(None, &[("default", "[core]\naccount = a@b.c\n")]);
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            resolve(None, None, &env_of(&[("CLOUDSDK_CONFIG", d)])),
            None
        );
        assert_eq!(resolve(Some(" "), None, &env_of(&[])), None);
    }
}
