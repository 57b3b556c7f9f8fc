//! The few questions vibedev asks git about a project's files (is this a work tree, is a file
//! tracked, is it ignored and by which pattern), answered by running the `git` command.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Whether git ignores a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    /// Ignored, by the pattern named `source:line:pattern` (as `git check-ignore -v` shows it).
    Ignored {
        by: String,
    },
    NotIgnored,
}

/// Runs git in `dir`, its output captured and no input; `None` when git cannot be run at all.
fn git(dir: &Path, args: &[&str]) -> Option<Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// Whether `dir` is inside a git work tree; `None` when git is not installed.
pub fn inside_work_tree(dir: &Path) -> Option<bool> {
    let out = git(dir, &["rev-parse", "--is-inside-work-tree"])?;
    Some(out.status.success() && out.stdout.starts_with(b"true"))
}

/// The branch checked out in `dir` (`detached at <commit>` on a detached HEAD); `None` outside
/// a repository or without git.
pub fn branch(dir: &Path) -> Option<String> {
    let text = |o: Output| {
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]).and_then(text) {
        return Some(name);
    }
    git(dir, &["rev-parse", "--short", "HEAD"])
        .and_then(text)
        .map(|commit| format!("detached at {commit}"))
}

/// What a checkout has checked out, as `[branches] database` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// A branch (with at least one commit).
    Branch(String),
    /// A detached HEAD at this commit (full hash).
    Detached(String),
    /// A repository without commits yet (or no repository, or no git).
    Unborn,
}

/// What `dir` has checked out.
pub fn checkout(dir: &Path) -> Checkout {
    let Some((commit, branch)) = head(dir) else {
        return Checkout::Unborn;
    };
    match branch {
        Some(name) => Checkout::Branch(name),
        None => Checkout::Detached(commit),
    }
}

/// The repository's default branch: origin's HEAD (`origin/main` -> `main`), else a local
/// `main`, else a local `master`; `None` when none of them is there.
pub fn default_branch(dir: &Path) -> Option<String> {
    let text = |o: Output| {
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(origin) = git(
        dir,
        &[
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ],
    )
    .and_then(text)
    {
        return Some(
            origin
                .strip_prefix("origin/")
                .unwrap_or(&origin)
                .to_string(),
        );
    }
    let branches = local_branches(dir)?;
    ["main", "master"]
        .into_iter()
        .find(|b| branches.iter().any(|x| x == b))
        .map(str::to_string)
}

/// The repository's local branches (shared by all its worktrees); `None` outside a repository.
pub fn local_branches(dir: &Path) -> Option<Vec<String>> {
    let out = git(
        dir,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
    )?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// The commits checked out detached in the repository's worktrees (full hashes).
pub fn detached_heads(dir: &Path) -> Vec<String> {
    let Some(out) = git(dir, &["worktree", "list", "--porcelain"]) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut found = Vec::new();
    for block in text.split("\n\n") {
        let head = block.lines().find_map(|l| l.strip_prefix("HEAD "));
        if block.lines().any(|l| l == "detached")
            && let Some(head) = head
        {
            found.push(head.trim().to_string());
        }
    }
    found
}

/// The file git rewrites when this checkout switches branches: `HEAD` in its own git folder
/// (`.git/worktrees/<name>/HEAD` for a worktree); `None` outside a repository.
pub fn head_file(dir: &Path) -> Option<std::path::PathBuf> {
    let out = git(dir, &["rev-parse", "--absolute-git-dir"])?;
    if !out.status.success() {
        return None;
    }
    let git_dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!git_dir.is_empty()).then(|| Path::new(&git_dir).join("HEAD"))
}

/// Whether git tracks `path` (relative to `dir`); false when git cannot tell.
pub fn is_tracked(dir: &Path, path: &str) -> bool {
    git(dir, &["ls-files", "--error-unmatch", "--", path]).is_some_and(|o| o.status.success())
}

/// Whether git's ignore rules exclude `path` (relative to `dir`); `None` when git cannot be run or
/// cannot tell (outside a repository, say). A tracked file is never ignored.
pub fn ignored(dir: &Path, path: &str) -> Option<Ignore> {
    let out = git(dir, &["check-ignore", "-v", "--", path])?;
    match out.status.code()? {
        0 => Some(
            match ignoring_pattern(&String::from_utf8_lossy(&out.stdout)) {
                Some(by) => Ignore::Ignored { by },
                // With -v, a path matched last by a negated pattern (`!.env.gcp`) is reported too,
                // though it is not ignored.
                None => Ignore::NotIgnored,
            },
        ),
        1 => Some(Ignore::NotIgnored),
        _ => None,
    }
}

/// The checked-out commit (full hash) and branch (`None` on a detached head); `None` outside a
/// repository or without git.
pub fn head(dir: &Path) -> Option<(String, Option<String>)> {
    let out = git(dir, &["rev-parse", "HEAD"])?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let branch = git(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|b| !b.is_empty());
    Some((commit, branch))
}

/// `source:line:pattern` from a `check-ignore -v` line (`source:line:pattern<TAB>path`), unless
/// the pattern is a negation.
fn ignoring_pattern(line: &str) -> Option<String> {
    let (by, _path) = line.split_once('\t')?;
    // The line number is the first field of digits only: a source path may hold a colon, and
    // so may a pattern.
    let mut at = 0;
    let pattern = loop {
        let colon = at + by[at..].find(':')?;
        let rest = &by[colon + 1..];
        let (number, pattern) = rest.split_once(':')?;
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            break pattern;
        }
        at = colon + 1;
    };
    (!pattern.starts_with('!')).then(|| by.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let out = git(dir, args).expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    #[test]
    fn a_folder_outside_any_repository_is_no_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(inside_work_tree(dir.path()), Some(false));
        assert!(!is_tracked(dir.path(), ".env.gcp"));
        assert_eq!(ignored(dir.path(), ".env.gcp"), None);
    }

    #[test]
    fn tracked_and_ignored_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        run(root, &["init", "-q"]);
        assert_eq!(inside_work_tree(root), Some(true));
        std::fs::write(root.join(".gitignore"), "*.log\n.env.gcp\n").unwrap();
        assert_eq!(
            ignored(root, ".env.gcp"),
            Some(Ignore::Ignored {
                by: ".gitignore:2:.env.gcp".into()
            })
        );
        assert_eq!(ignored(root, "notes.txt"), Some(Ignore::NotIgnored));

        std::fs::write(root.join("notes.txt"), "x").unwrap();
        assert!(!is_tracked(root, "notes.txt"));
        run(root, &["add", "notes.txt"]);
        assert!(is_tracked(root, "notes.txt"));
    }

    #[test]
    fn the_ignoring_pattern_is_read_around_colons() {
        assert_eq!(
            ignoring_pattern(".gitignore:2:.env.gcp\t.env.gcp\n").as_deref(),
            Some(".gitignore:2:.env.gcp")
        );
        assert_eq!(
            ignoring_pattern("/home/a:b/ignore:10:x:y\t.env.gcp\n").as_deref(),
            Some("/home/a:b/ignore:10:x:y")
        );
        assert_eq!(ignoring_pattern(".gitignore:3:!.env.gcp\t.env.gcp\n"), None);
        assert_eq!(ignoring_pattern(""), None);
    }

    #[test]
    fn a_negated_pattern_does_not_ignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        run(root, &["init", "-q"]);
        std::fs::write(root.join(".gitignore"), ".env*\n!.env.gcp\n").unwrap();
        assert_eq!(ignored(root, ".env.gcp"), Some(Ignore::NotIgnored));
        assert_eq!(
            ignored(root, ".env.local"),
            Some(Ignore::Ignored {
                by: ".gitignore:1:.env*".into()
            })
        );
    }

    #[test]
    fn the_branch_is_named_even_before_the_first_commit_and_when_detached() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(branch(root), None);
        run(root, &["init", "-q", "-b", "feature/ünï"]);
        assert_eq!(branch(root).as_deref(), Some("feature/ünï"));
        std::fs::write(root.join("a"), "x").unwrap();
        run(root, &["add", "a"]);
        run(
            root,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "a",
            ],
        );
        run(root, &["checkout", "-q", "--detach"]);
        let detached = branch(root).unwrap();
        assert!(detached.starts_with("detached at "), "{detached}");
    }

    #[test]
    fn checkouts_default_branches_and_head_files_are_read_from_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(checkout(root), Checkout::Unborn);
        run(root, &["init", "-q", "-b", "trunk"]);
        assert_eq!(checkout(root), Checkout::Unborn);
        assert_eq!(default_branch(root), None);
        let commit = |m: &str| {
            run(
                root,
                &[
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-m",
                    m,
                ],
            )
        };
        commit("a");
        assert_eq!(checkout(root), Checkout::Branch("trunk".into()));
        run(root, &["branch", "master"]);
        assert_eq!(default_branch(root).as_deref(), Some("master"));
        run(root, &["branch", "main"]);
        assert_eq!(default_branch(root).as_deref(), Some("main"));
        run(root, &["update-ref", "refs/remotes/origin/trunk", "HEAD"]);
        run(
            root,
            &[
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                "refs/remotes/origin/trunk",
            ],
        );
        assert_eq!(default_branch(root).as_deref(), Some("trunk"));
        let mut branches = local_branches(root).unwrap();
        branches.sort();
        assert_eq!(branches, ["main", "master", "trunk"]);
        run(root, &["worktree", "add", "-q", "--detach", "wt"]);
        let (head, _) = head(root).unwrap();
        assert_eq!(checkout(&root.join("wt")), Checkout::Detached(head.clone()));
        assert_eq!(detached_heads(root), [head]);
        let file = head_file(&root.join("wt")).unwrap();
        assert!(file.ends_with("worktrees/wt/HEAD"), "{}", file.display());
        assert!(file.is_file());
    }
}
