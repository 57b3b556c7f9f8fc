//! `.env.gcp` quoting against the other readers the app may use: python-dotenv (`dotenv_values`,
//! default settings) and Node's own dotenv parser (`util.parseEnv`, the one behind `--env-file`).

use std::collections::BTreeMap;
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vibedev::envfile::{quote_dotenv, read_vars, render};

/// Values every reader must agree on, chosen by hand.
const TRICKY: &[&str] = &[
    "plain",
    "",
    " ",
    "  lead and trail  ",
    "it's",
    "say \"hi\"",
    "$HOME $1 $",
    "${unclosed",
    "a=b=c",
    "#not a comment",
    "a #b",
    "back\\slash \\n \\t",
    "tab\there",
    "line1\nline2\n",
    "\n\nleading newlines",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7+/=\n-----END PRIVATE KEY-----\n",
    "{\"type\":\"service_account\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n\"}",
    "ünïcødé ✓ 🔑 \u{2028} \u{85} \u{feff}",
    "`backticks`",
    "'",
    "\"",
    "K2=oops\nK3='x'",
    "export X=1",
];

/// Characters the readers treat specially, for random values.
const NASTY: &[char] = &[
    '\'', '"', '`', '\\', '$', '{', '}', '#', '=', ' ', '\t', '\n', ':', '-', 'n', 'r', 'x', 'é',
    '✓', '🔑', '\u{2028}', '\u{85}', '\u{feff}', '\u{a0}', '\u{b}', '\u{c}',
];

/// Tricky values plus random ones (seeded, so a failure reproduces); only the ones
/// `quote_dotenv` accepts are written.
fn values() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(0x5eed_2026);
    let mut out: Vec<String> = TRICKY.iter().map(|s| s.to_string()).collect();
    for i in 0..3000 {
        let len = rng.random_range(0..40);
        let value: String = if i % 3 == 0 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..len)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        NASTY[rng.random_range(0..NASTY.len())]
                    } else {
                        rng.random_range(' '..='~')
                    }
                })
                .collect()
        };
        out.push(value);
    }
    out
}

/// Writes every portable value under keys `V0..`, returns the file and the expected map.
fn written_file(dir: &std::path::Path) -> (std::path::PathBuf, BTreeMap<String, String>) {
    let mut lines = Vec::new();
    let mut expected = BTreeMap::new();
    for (i, value) in values().into_iter().enumerate() {
        if let Ok(quoted) = quote_dotenv(&value) {
            let key = format!("V{i}");
            lines.push((key.clone(), quoted));
            expected.insert(key, value);
        }
    }
    assert!(
        expected.len() > 1500,
        "too few portable values to prove anything: {}",
        expected.len()
    );
    let header = vec![
        "Secrets from Google Secret Manager, written by `vibedev secrets pull`.".to_string(),
        "project: \"p\" 'q' = # $x".to_string(),
    ];
    let text = render(&header, &lines, None);
    let path = dir.join(".env.gcp");
    std::fs::write(&path, text).unwrap();
    (path, expected)
}

fn json_map(tool: &str, out: std::process::Output) -> BTreeMap<String, String> {
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{tool} printed no JSON object: {e}"))
}

fn assert_same(reader: &str, got: &BTreeMap<String, String>, expected: &BTreeMap<String, String>) {
    let mut wrong = Vec::new();
    for (key, value) in expected {
        if got.get(key) != Some(value) {
            wrong.push(format!(
                "{key}: wrote {value:?}, {reader} read {:?}",
                got.get(key)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} values differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(got.len(), expected.len(), "{reader} read extra keys");
}

#[test]
fn dotenvy_reads_every_written_value_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = written_file(dir.path());
    let got: BTreeMap<String, String> = read_vars(&std::fs::read(&path).unwrap())
        .into_iter()
        .collect();
    assert_same("dotenvy", &got, &expected);
}

#[test]
fn python_dotenv_reads_every_written_value_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = written_file(dir.path());
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys\n\
             from dotenv import dotenv_values\n\
             sys.stdout.write(json.dumps(dotenv_values(sys.argv[1])))",
        )
        .arg(&path)
        .env_remove("PYTHONPATH")
        .output()
        .expect("python3 runs (python-dotenv must be installed: pip install python-dotenv==1.2.2)");
    let got = json_map(
        "python3 with python-dotenv (pip install python-dotenv==1.2.2)",
        out,
    );
    assert_same("python-dotenv", &got, &expected);
}

#[test]
fn node_reads_every_written_value_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = written_file(dir.path());
    let out = Command::new("node")
        .arg("-e")
        .arg(
            "const fs = require('fs'), util = require('util');\n\
             process.stdout.write(JSON.stringify(util.parseEnv(fs.readFileSync(process.argv[1], 'utf8'))));",
        )
        .arg(&path)
        .output()
        .expect("node runs (Node.js 20.12 or newer has util.parseEnv)");
    let got = json_map("node util.parseEnv", out);
    assert_same("Node's util.parseEnv", &got, &expected);
}

#[test]
fn node_env_file_flag_loads_written_values_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = written_file(dir.path());
    let mut cmd = Command::new("node");
    cmd.arg(format!("--env-file={}", path.display()))
        .arg("-e")
        .arg(
            "const out = {};\n\
             for (const [k, v] of Object.entries(process.env)) if (/^V[0-9]+$/.test(k)) out[k] = v;\n\
             process.stdout.write(JSON.stringify(out));",
        );
    for (key, _) in std::env::vars() {
        if key.starts_with('V') && key[1..].chars().all(|c| c.is_ascii_digit()) {
            cmd.env_remove(key);
        }
    }
    let got = json_map("node --env-file", cmd.output().expect("node runs"));
    assert_same("node --env-file", &got, &expected);
}
