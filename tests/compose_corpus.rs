//! The reader against real public Compose files (tests/fixtures/compose-corpus, see SOURCES.md):
//! what docker-compose accepts and what the Compose Specification accepts, vibedev reads; what
//! they reject, vibedev rejects with the file, line and column. The verdicts in EXPECTED are
//! checked against docker-compose on this machine when it is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use vibedev::compose::ComposeSource;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose-corpus")
}

fn expected() -> Vec<(String, String)> {
    std::fs::read_to_string(corpus().join("EXPECTED"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn docker_compose_accepts(file: &Path) -> Option<bool> {
    let out = Command::new("docker-compose")
        .args(["-f", file.to_str()?, "config", "-q"])
        .current_dir(file.parent()?)
        .output()
        .ok()?;
    Some(out.status.success())
}

#[test]
fn every_corpus_file_is_read_as_compose_and_the_specification_say() {
    let entries = expected();
    assert!(entries.len() >= 90, "corpus has {} entries", entries.len());
    let mut failures = Vec::new();
    for (entry, verdict) in &entries {
        let file = corpus().join(entry).join("compose.yaml");
        assert!(file.is_file(), "{entry}: no compose.yaml");
        let read = ComposeSource::File(file.clone()).load();
        match (verdict.as_str(), &read) {
            ("ok" | "ok-newer", Ok(f)) => assert!(!f.document.is_null()),
            ("error", Err(e)) => {
                let msg = e.to_string();
                let prefix = format!("{}:", file.display());
                let rest = msg.strip_prefix(&prefix).unwrap_or_default();
                let mut parts = rest.splitn(3, ':');
                let positioned = parts.next().is_some_and(|l| l.parse::<usize>().is_ok())
                    && parts.next().is_some_and(|c| c.parse::<usize>().is_ok());
                if !positioned {
                    failures.push(format!("{entry}: rejected without a position: {msg}"));
                }
            }
            (v, r) => failures.push(format!(
                "{entry}: expected {v}, got {:?}",
                r.as_ref().err().map(|e| e.to_string())
            )),
        }
        if let Some(accepted) = docker_compose_accepts(&file) {
            let should = verdict == "ok";
            if accepted != should {
                failures.push(format!(
                    "{entry}: EXPECTED says {verdict}, docker-compose here says accepted={accepted}"
                ));
            }
        }
    }
    let passed = entries.len() - failures.len();
    eprintln!(
        "compose corpus: {passed}/{} files as expected",
        entries.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
