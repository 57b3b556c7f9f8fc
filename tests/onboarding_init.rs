//! `vibedev init` in a throwaway folder: the built-in defaults are written once, nothing that
//! exists is ever overwritten (and the output says what was kept), and the written config makes
//! vibedev use the project's own copies. No Docker needed.

mod support;

use support::TestProject;

const WRITTEN: [&str; 4] = [
    "vibedev.toml",
    "compose/docker-compose.yml",
    "templates/env.gcp.tmpl",
    ".gitignore",
];

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn read(p: &TestProject, rel: &str) -> String {
    std::fs::read_to_string(p.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn init_in_an_empty_folder_writes_the_built_in_defaults() {
    let p = TestProject::empty("init-empty");
    let run = p.ok(&["init"]);
    for rel in WRITTEN {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("wrote") && l.contains(rel)),
            "{rel} not reported written:\n{run}"
        );
    }
    assert_eq!(
        read(&p, "vibedev.toml"),
        repo_file("templates/vibedev.toml")
    );
    assert_eq!(
        read(&p, "compose/docker-compose.yml"),
        repo_file("compose/docker-compose.yml")
    );
    assert_eq!(
        read(&p, "templates/env.gcp.tmpl"),
        repo_file("templates/env.gcp.tmpl")
    );
    assert_eq!(read(&p, ".gitignore"), ".env.gcp\n");
    assert!(read(&p, "vibedev.toml").contains("\ncompose = \"compose/docker-compose.yml\"\n"));
    // No temporary files left behind.
    for dir in ["", "compose", "templates"] {
        for entry in std::fs::read_dir(p.path().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".vibedev-init-"),
                "{name} left in {dir:?}"
            );
        }
    }
}

#[test]
fn init_again_overwrites_nothing_and_says_what_it_kept() {
    let p = TestProject::empty("init-again");
    p.ok(&["init"]);
    p.write(
        "compose/docker-compose.yml",
        "# the project's own stack\nservices: {}\n",
    );
    p.write("vibedev.toml", "compose = \"compose/docker-compose.yml\"\n[secrets]\ntemplate = \"templates/env.gcp.tmpl\"\n");
    let before: Vec<String> = WRITTEN.iter().map(|r| read(&p, r)).collect();

    let run = p.ok(&["init"]);
    let after: Vec<String> = WRITTEN.iter().map(|r| read(&p, r)).collect();
    assert_eq!(before, after, "init changed an existing file");
    for rel in WRITTEN {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("kept") && l.contains(rel)),
            "{rel} not reported kept:\n{run}"
        );
    }
    assert!(!run.stdout.contains("wrote"), "{run}");
    assert!(
        run.stdout
            .contains("kept    compose/docker-compose.yml (it exists; not overwritten)"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("kept    .gitignore (it already ignores .env.gcp)"),
        "{run}"
    );
}

#[test]
fn init_appends_the_ignore_line_to_an_existing_gitignore_once() {
    let p = TestProject::empty("init-gitignore");
    p.write(".gitignore", "node_modules\n/dist");
    let run = p.ok(&["init"]);
    assert!(
        run.stdout.contains("updated .gitignore (added .env.gcp)"),
        "{run}"
    );
    assert_eq!(read(&p, ".gitignore"), "node_modules\n/dist\n.env.gcp\n");
    p.ok(&["init"]);
    assert_eq!(read(&p, ".gitignore"), "node_modules\n/dist\n.env.gcp\n");
}

#[test]
fn init_keeps_an_existing_config_and_says_how_to_use_the_written_files() {
    let p = TestProject::empty("init-config");
    p.write("vibedev.toml", "project = \"mine\"\n");
    let run = p.ok(&["init"]);
    assert_eq!(read(&p, "vibedev.toml"), "project = \"mine\"\n");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("vibedev.toml"))
        .unwrap();
    assert!(line.starts_with("kept"), "{line}");
    assert!(
        line.contains("compose = \"compose/docker-compose.yml\""),
        "{line}"
    );
    assert!(
        line.contains("template = \"templates/env.gcp.tmpl\" under [secrets]"),
        "{line}"
    );
    // The other defaults are still written.
    assert_eq!(
        read(&p, "compose/docker-compose.yml"),
        repo_file("compose/docker-compose.yml")
    );
}

#[test]
fn init_from_a_subfolder_writes_beside_the_projects_config() {
    let p = TestProject::empty("init-sub");
    p.write("vibedev.toml", "compose = \"compose/docker-compose.yml\"\n");
    p.write("app/src/.keep", "");
    let mut cmd = p.cmd(&["init"]);
    cmd.current_dir(p.path().join("app/src"));
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    assert!(p.path().join("compose/docker-compose.yml").is_file());
    assert!(!p.path().join("app/src/vibedev.toml").exists());
}

#[test]
fn after_init_the_stack_comes_from_the_projects_own_compose_file() {
    let p = TestProject::empty("init-doctor");
    p.ok(&["init"]);
    // The doctor's config check needs no engine; point DOCKER_HOST at nothing so none is used.
    let mut cmd = p.cmd(&["doctor", "--json"]);
    cmd.env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let run = support::Run::from(cmd.output().unwrap());
    let json = run.json();
    let config = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "config")
        .unwrap();
    assert_eq!(config["status"], "pass", "{run}");
    let compose = p
        .path()
        .canonicalize()
        .unwrap()
        .join("compose/docker-compose.yml");
    assert!(
        config["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("4 services from {}", compose.display())),
        "{run}"
    );
}
