//! Several checkouts of one repository on one engine: `ports = "auto"` gives each its own
//! stable host ports, `vibedev ls` shows every stack with its checkout and branch, and `vibedev
//! prune` removes the stack of a deleted checkout only once confirmed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Run, docker, images};

/// A git repository with worktrees, each a checkout with `ports = "auto"`, sharing one state
/// folder (where the ports are recorded). Every stack is removed when dropped.
struct Repo {
    root: tempfile::TempDir,
    state: PathBuf,
    /// Project names of the checkouts, for cleanup by label.
    projects: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

impl Repo {
    /// `app` (branch main) and the worktree `app-review` (branch review).
    fn new() -> Repo {
        let root = tempfile::Builder::new()
            .prefix("vibedev-checkouts-")
            .tempdir()
            .unwrap();
        let state = root.path().join("state");
        let main = root.path().join("app");
        std::fs::create_dir_all(&main).unwrap();
        let img = images();
        std::fs::write(
            main.join("vibedev.toml"),
            format!(
                "ports = \"auto\"\n\n[services.redis]\nimage = {:?}\n\n[services.gcs]\nimage = {:?}\n",
                img.redis, img.gcs
            ),
        )
        .unwrap();
        git(&main, &["init", "-q", "-b", "main"]);
        git(&main, &["add", "vibedev.toml"]);
        git(&main, &["commit", "-qm", "stack"]);
        git(
            &main,
            &["worktree", "add", "-q", "-b", "review", "../app-review"],
        );
        let mut repo = Repo {
            root,
            state,
            projects: Vec::new(),
        };
        repo.projects = ["app", "app-review"]
            .iter()
            .map(|c| vibedev::config::derived_project_name(&repo.checkout(c)))
            .collect();
        repo
    }

    fn checkout(&self, name: &str) -> PathBuf {
        let path = self.root.path().join(name);
        path.canonicalize().unwrap_or(path)
    }

    fn cmd(&self, checkout: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(support::bin());
        support::hermetic(&mut cmd);
        cmd.args(args)
            .current_dir(self.checkout(checkout))
            .env("XDG_STATE_HOME", &self.state)
            .env("XDG_DATA_HOME", self.state.join("data"))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, checkout: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(checkout, args).output().unwrap())
    }

    fn ok(&self, checkout: &str, args: &[&str]) -> Run {
        let run = self.run(checkout, args);
        assert!(
            run.success(),
            "vibedev {args:?} in {checkout} failed:\n{run}"
        );
        run
    }

    fn env(&self, checkout: &str) -> serde_json::Value {
        self.ok(checkout, &["env", "--format", "json"]).json()
    }

    /// `vibedev ls --json`, this repository's stacks only, by project.
    fn ls(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let root = self.root.path().canonicalize().unwrap();
        self.ok("", &["ls", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["checkout"]
                    .as_str()
                    .is_some_and(|c| Path::new(c).starts_with(&root))
            })
            .map(|s| (s["project"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        for project in &self.projects {
            let label = format!("label=dev.vibedev.project={project}");
            for (list, remove) in [
                (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
                (&["network", "ls", "-q", "--filter"], &["network", "rm"]),
                (&["volume", "ls", "-q", "--filter"], &["volume", "rm", "-f"]),
            ] {
                let mut args = list.to_vec();
                args.push(&label);
                if let Ok(out) = Command::new("docker").args(&args).output() {
                    let ids = String::from_utf8_lossy(&out.stdout).to_string();
                    if !ids.trim().is_empty() {
                        let mut rm = remove.to_vec();
                        rm.extend(ids.lines());
                        let _ = Command::new("docker").args(&rm).output();
                    }
                }
            }
        }
    }
}

/// The port of a `redis://host:port` or `http://host:port` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn by_label(kind: &str, project: &str) -> Vec<String> {
    let label = format!("label=dev.vibedev.project={project}");
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-aq", "--filter", &label],
        _ => vec!["volume", "ls", "-q", "--filter", &label],
    };
    docker(&args).lines().map(str::to_string).collect()
}

#[test]
fn two_worktrees_with_auto_ports_run_side_by_side_and_keep_their_ports() {
    let repo = Repo::new();
    // Both come up at once: the port folder's lock keeps them from picking the same ports.
    let children: Vec<_> = ["app", "app-review"]
        .iter()
        .map(|c| {
            repo.cmd(c, &["up", "redis", "gcs"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap());
        assert!(run.success(), "{run}");
        assert!(run.stderr.contains("ports = \"auto\": "), "{run}");
    }
    let (a, b) = (repo.env("app"), repo.env("app-review"));
    let ports = |env: &serde_json::Value| {
        [
            port_of(env["REDIS_URL"].as_str().unwrap()),
            port_of(env["STORAGE_EMULATOR_HOST"].as_str().unwrap()),
        ]
    };
    let (pa, pb) = (ports(&a), ports(&b));
    for p in pa.iter().chain(&pb) {
        assert!((20000..=29999).contains(p), "{a}\n{b}");
    }
    assert!(pa.iter().all(|p| !pb.contains(p)), "{a}\n{b}");

    // Each checkout's variables reach its own Redis.
    for (env, value) in [(&a, "main"), (&b, "review")] {
        let mut conn = redis::Client::open(env["REDIS_URL"].as_str().unwrap())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("SET")
            .arg("checkout")
            .arg(value)
            .query::<()>(&mut conn)
            .unwrap();
    }
    for (env, value) in [(&a, "main"), (&b, "review")] {
        let mut conn = redis::Client::open(env["REDIS_URL"].as_str().unwrap())
            .unwrap()
            .get_connection()
            .unwrap();
        let got: String = redis::cmd("GET").arg("checkout").query(&mut conn).unwrap();
        assert_eq!(got, value);
    }

    // `status` shows the same ports; `down` then `up` keeps them.
    let st = repo.ok("app", &["status", "--json"]).json();
    let redis = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "redis")
        .unwrap()
        .clone();
    assert_eq!(redis["ports"][0]["host_port"], pa[0], "{st}");
    assert_eq!(redis["up_to_date"], true, "{st}");
    repo.ok("app", &["down"]);
    repo.ok("app", &["up", "redis", "gcs"]);
    assert_eq!(ports(&repo.env("app")), pa);
    assert_eq!(ports(&repo.env("app-review")), pb);

    // `ls` shows both checkouts with their branch, services and ports.
    let ls = repo.ls();
    assert_eq!(ls.len(), 2, "{ls:?}");
    for (i, (checkout, branch, p)) in [("app", "main", pa), ("app-review", "review", pb)]
        .into_iter()
        .enumerate()
    {
        let s = &ls[&repo.projects[i]];
        assert_eq!(
            s["checkout"].as_str().unwrap(),
            repo.checkout(checkout).to_str().unwrap()
        );
        assert_eq!(s["checkout_exists"], true);
        assert_eq!(s["branch"], branch);
        assert_eq!(
            (s["running"].clone(), s["services"].clone()),
            (2.into(), 2.into())
        );
        let host_ports: Vec<u64> = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["host_port"].as_u64().unwrap())
            .collect();
        for port in p {
            assert!(host_ports.contains(&u64::from(port)), "{s}");
        }
        assert!(s["volumes"].as_array().unwrap().len() >= 2, "{s}");
        assert!(s["last_used"].is_string(), "{s}");
    }
    let table = repo.ok("app", &["ls"]);
    for project in &repo.projects {
        assert!(table.stdout.contains(project.as_str()), "{table}");
    }
}

#[test]
fn the_default_ports_held_by_another_checkout_name_it_and_suggest_auto_ports() {
    let repo = Repo::new();
    let port = support::free_port();
    // The review checkout publishes redis on a fixed port; the main one wants the same port.
    for checkout in ["app", "app-review"] {
        let toml = repo.checkout(checkout).join("vibedev.toml");
        std::fs::write(
            &toml,
            format!(
                "[services.redis]\nimage = {:?}\nports = [\"{port}:6379\"]\n",
                images().redis
            ),
        )
        .unwrap();
    }
    repo.ok("app-review", &["up", "redis"]);
    let run = repo.run("app", &["up", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "port {port} for service redis is already in use on 127.0.0.1 by container {}-redis (vibedev project {})",
            repo.projects[1], repo.projects[1]
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "checkout {}) holds it: set ports = \"auto\"",
            repo.checkout("app-review").display()
        )),
        "{run}"
    );
    // With auto ports it comes up beside the other.
    repo.ok("app", &["up", "redis", "--ports", "auto"]);
    let url = repo.env("app")["REDIS_URL"].as_str().unwrap().to_string();
    assert_ne!(port_of(&url), port);
    // Recorded: a later `up` without the flag keeps them; `--ports fixed` goes back.
    repo.ok("app", &["down"]);
    repo.ok("app", &["up", "redis"]);
    assert_eq!(repo.env("app")["REDIS_URL"], url.as_str());
    let run = repo.run("app", &["up", "redis", "--ports", "fixed"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains(&format!("port {port} for service redis")),
        "{run}"
    );
}

#[test]
fn prune_removes_a_deleted_checkouts_stack_only_once_confirmed() {
    let repo = Repo::new();
    repo.ok("app", &["up", "redis"]);
    repo.ok("app-review", &["up", "redis"]);
    let (kept, gone) = (&repo.projects[0], &repo.projects[1]);
    let port_file = repo
        .state
        .join("vibedev/ports")
        .join(format!("{gone}.json"));
    assert!(port_file.exists());
    repo.ok("app-review", &["snapshot", "save", "review-data"]);
    git(
        &repo.checkout("app"),
        &["worktree", "remove", "--force", "../app-review"],
    );
    assert!(!repo.root.path().join("app-review").exists());

    let ls = repo.ls();
    assert_eq!(ls[gone]["checkout_exists"], false, "{ls:?}");
    assert_eq!(ls[kept]["checkout_exists"], true, "{ls:?}");
    assert_eq!(ls[gone]["snapshots"]["count"], 1, "{ls:?}");
    assert!(
        ls[gone]["snapshots"]["bytes"].as_u64().unwrap() > 0,
        "{ls:?}"
    );
    assert_eq!(ls[kept]["snapshots"]["count"], 0, "{ls:?}");
    let snapshots = repo.state.join("data/vibedev/snapshots").join(gone);
    assert!(snapshots.join("review-data").is_dir());

    // No terminal and no --yes: it says what it would remove, and removes nothing.
    let run = repo.run("app", &["prune", gone, kept]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "{gone}  {}",
            repo.root
                .path()
                .canonicalize()
                .unwrap()
                .join("app-review")
                .display()
        )),
        "{run}"
    );
    assert!(run.stderr.contains("needs confirmation"), "{run}");
    assert!(run.stderr.contains(", 1 snapshot "), "{run}");
    assert!(run.stderr.contains(" (kept)"), "{run}");
    assert!(
        run.stderr
            .contains(&format!("project {kept} is kept: its checkout")),
        "{run}"
    );
    assert_eq!(by_label("container", gone).len(), 1);
    assert!(!by_label("volume", gone).is_empty());

    // On a terminal, answering no removes nothing either.
    let answered = |answer: &str| {
        let line = format!(
            "cd {:?} && XDG_STATE_HOME={:?} {:?} prune {gone}",
            repo.checkout("app"),
            repo.state,
            support::bin()
        );
        let mut cmd = Command::new("script");
        support::hermetic(&mut cmd);
        let mut child = cmd
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    };
    let run = answered("n");
    assert!(run.stdout.contains("[y/N]"), "{run}");
    assert!(run.stdout.contains("nothing was removed"), "{run}");
    assert_eq!(by_label("container", gone).len(), 1);

    // --yes removes its containers, volumes and recorded ports (--snapshots: and its
    // snapshots); the other stack stays.
    let run = repo.ok("app", &["prune", gone, "--yes", "--snapshots"]);
    assert!(
        run.stdout
            .contains(&format!("{gone}: removed 1 container, 1 network, ")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("{gone}: removed 1 snapshot (")),
        "{run}"
    );
    assert!(!snapshots.exists());
    assert!(by_label("container", gone).is_empty());
    assert!(by_label("volume", gone).is_empty());
    assert!(!port_file.exists());
    assert_eq!(by_label("container", kept).len(), 1);
    let ls = repo.ls();
    assert!(!ls.contains_key(gone) && ls.contains_key(kept), "{ls:?}");
    let again = repo.ok("app", &["prune", gone]);
    assert!(again.stdout.contains("nothing to prune"), "{again}");
}
