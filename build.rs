//! Records the git revision the binary is built from, for `vibedev --version`.
//! Works in a plain clone and in a linked worktree (where `.git` is a file, not a folder).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rev = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let rev = match rev {
        Some(r) if dirty => format!("{r}-dirty"),
        Some(r) => r,
        None => "unknown revision".to_string(),
    };
    println!("cargo:rustc-env=VIBEDEV_GIT_REV={rev}");
    println!("cargo:rerun-if-env-changed=VIBEDEV_GIT_REV");
    println!("cargo:rerun-if-changed=build.rs");
    // Sources changing can make the tree dirty; the crate recompiles then anyway.
    println!("cargo:rerun-if-changed=src");
    // Ask git where its files are: a path that does not exist would make cargo rebuild every time.
    let mut watched = vec![
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["rev-parse", "--git-path", "index"]),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ];
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &head_ref]));
    }
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
