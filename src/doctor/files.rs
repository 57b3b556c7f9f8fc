//! The project's own files: `.env.gcp` (present, private, git-ignored, untracked, newer than its
//! template).

use std::path::Path;

use crate::config::Project;
use crate::git::{self, Ignore};
use crate::scaffold::ENV_FILE;

use super::Check;

const PULL_HINT: &str = "run `vibedev secrets pull`";

/// `env-file`, `env-file-git` and `env-file-template`.
pub fn env_file_checks(root: &Path, project: Option<&Project>) -> Vec<Check> {
    let path = root.join(ENV_FILE);
    let meta = std::fs::metadata(&path).ok();
    vec![
        presence_and_mode(&path, meta.as_ref()),
        git_state(root),
        freshness(meta.as_ref(), project),
    ]
}

fn presence_and_mode(path: &Path, meta: Option<&std::fs::Metadata>) -> Check {
    const NAME: &str = "env-file";
    let Some(meta) = meta else {
        return Check::warn(
            NAME,
            format!(
                "{} does not exist yet: the app has no secrets",
                path.display()
            ),
            PULL_HINT,
        );
    };
    let mode = file_mode(meta);
    if mode & 0o077 != 0 {
        return Check::warn(
            NAME,
            format!(
                "{} has mode {mode:04o}: other users of this machine can read the secrets",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        );
    }
    Check::pass(NAME, format!("{} present, mode {mode:04o}", path.display()))
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn file_mode(_meta: &std::fs::Metadata) -> u32 {
    0o600
}

fn git_state(root: &Path) -> Check {
    const NAME: &str = "env-file-git";
    let Some(inside) = git::inside_work_tree(root) else {
        return Check::skip(
            NAME,
            "git is not installed: cannot tell whether .env.gcp is ignored",
        );
    };
    if !inside {
        return Check::skip(NAME, "not a git repository");
    }
    if git::is_tracked(root, ENV_FILE) {
        return Check::warn(
            NAME,
            format!("{ENV_FILE} is tracked by git: its secrets go into every commit and push"),
            format!(
                "git rm --cached {ENV_FILE}, add `{ENV_FILE}` to .gitignore (`vibedev init` does), commit, and rotate the secrets if they were ever pushed"
            ),
        );
    }
    match git::ignored(root, ENV_FILE) {
        Some(Ignore::Ignored { .. }) => {
            Check::pass(NAME, format!("{ENV_FILE} is git-ignored and not tracked"))
        }
        Some(Ignore::NotIgnored) => Check::warn(
            NAME,
            format!("{ENV_FILE} is not git-ignored: `git add .` would commit the secrets"),
            format!("add a line `{ENV_FILE}` to .gitignore (`vibedev init` does)"),
        ),
        None => Check::skip(NAME, "git could not say whether .env.gcp is ignored"),
    }
}

/// `.env.gcp` should be at least as new as the template it was pulled from.
fn freshness(meta: Option<&std::fs::Metadata>, project: Option<&Project>) -> Check {
    const NAME: &str = "env-file-template";
    let Some(project) = project else {
        return Check::skip(NAME, "vibedev.toml could not be read");
    };
    let Some(template) = project.file.secrets.template.as_ref() else {
        return Check::skip(
            NAME,
            "the project uses the built-in env template (no [secrets] template in vibedev.toml)",
        );
    };
    let template = project.resolve(template);
    let Ok(template_meta) = std::fs::metadata(&template) else {
        return Check::fail(
            NAME,
            format!(
                "the env template {} (vibedev.toml [secrets] template) does not exist",
                template.display()
            ),
            Some("fix the path under [secrets] in vibedev.toml, or `vibedev init` to write the built-in template there".into()),
        );
    };
    let Some(meta) = meta else {
        return Check::skip(
            NAME,
            format!("no {ENV_FILE} yet to compare with {}", template.display()),
        );
    };
    match (meta.modified(), template_meta.modified()) {
        (Ok(env), Ok(tmpl)) if env < tmpl => Check::warn(
            NAME,
            format!(
                "{ENV_FILE} is older than its template {}: the template changed since the last pull",
                template.display()
            ),
            PULL_HINT,
        ),
        (Ok(_), Ok(_)) => Check::pass(
            NAME,
            format!(
                "{ENV_FILE} is newer than its template {}",
                template.display()
            ),
        ),
        _ => Check::skip(NAME, "this file system does not record modification times"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;
    use std::path::PathBuf;

    use super::super::test_project as project;

    #[cfg(unix)]
    #[test]
    fn a_world_readable_env_file_warns_with_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let checks = env_file_checks(dir.path(), None);
        assert_eq!(checks[0].status, Status::Warn);
        let path = dir.path().join(ENV_FILE);
        std::fs::write(&path, "A=1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let check = &env_file_checks(dir.path(), None)[0];
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.contains("0644"), "{}", check.message);
        assert!(check.hint.as_deref().unwrap().starts_with("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(env_file_checks(dir.path(), None)[0].status, Status::Pass);
    }

    #[test]
    fn an_env_file_older_than_its_template_warns() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = crate::config::ConfigFile::default();
        file.secrets.template = Some(PathBuf::from("t/env.tmpl"));
        let p = project(dir.path(), file);
        let check = |p: &Project| env_file_checks(dir.path(), Some(p))[2].clone();
        assert_eq!(check(&p).status, Status::Fail, "template missing");
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join(ENV_FILE), "A=1\n").unwrap();
        std::fs::write(dir.path().join("t/env.tmpl"), "A=1\n").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(ENV_FILE))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let c = check(&p);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert_eq!(c.hint.as_deref(), Some(PULL_HINT));
        std::fs::write(dir.path().join(ENV_FILE), "A=2\n").unwrap();
        assert_eq!(check(&p).status, Status::Pass);
    }
}
