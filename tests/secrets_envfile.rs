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

/// Refused values of every kind, chosen by hand.
const REFUSED: &[&str] = &[
    "a\r\nb",
    "\r",
    "a\0b",
    "${HOME}",
    "x${A:-b}y",
    "pre ${X} post",
    "it's $5",
    "it's \"quoted\"",
    "it's a \\ backslash",
    "two \\\\ backslashes",
    "ends with \\",
    "'\"",
    "C:\\\\path\\\\",
];

/// Refused values: the hand-picked ones, then a bounded sample of the random ones.
fn refused_values() -> Vec<(String, vibedev::envfile::Unportable)> {
    const SAMPLE: usize = 400;
    let mut out: Vec<(String, vibedev::envfile::Unportable)> = Vec::new();
    let candidates = REFUSED.iter().map(|s| s.to_string()).chain(values());
    for value in candidates {
        if out.len() >= SAMPLE {
            break;
        }
        if let Err(why) = quote_dotenv(&value)
            && !out.iter().any(|(v, _)| *v == value)
        {
            out.push((value, why));
        }
    }
    out
}

type ReadBack = BTreeMap<String, BTreeMap<String, Option<String>>>;

/// Each file as python-dotenv (`dotenv_values`) and Node's `util.parseEnv` read it, by file name
/// (`None` for a variable without a value; a file a reader fails on is left out).
fn read_with_python_and_node(files: &[std::path::PathBuf]) -> (ReadBack, ReadBack) {
    let python = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, os, sys\n\
             from dotenv import dotenv_values\n\
             out = {}\n\
             for f in sys.argv[1:]:\n\
             \x20   try:\n\
             \x20       out[os.path.basename(f)] = dotenv_values(f)\n\
             \x20   except Exception:\n\
             \x20       pass\n\
             sys.stdout.write(json.dumps(out))",
        )
        .args(files)
        .env_remove("PYTHONPATH")
        .output()
        .expect("python3 runs (python-dotenv must be installed: pip install python-dotenv==1.2.2)");
    let node = Command::new("node")
        .arg("-e")
        .arg(
            "const fs = require('fs'), path = require('path'), util = require('util');\n\
             const out = {};\n\
             for (const f of process.argv.slice(1)) {\n\
               try { out[path.basename(f)] = util.parseEnv(fs.readFileSync(f, 'utf8')); } catch (e) {}\n\
             }\n\
             process.stdout.write(JSON.stringify(out));",
        )
        .args(files)
        .output()
        .expect("node runs (Node.js 20.12 or newer has util.parseEnv)");
    let parse = |tool: &str, out: std::process::Output| -> ReadBack {
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{tool} printed no JSON object: {e}"))
    };
    (parse("python-dotenv", python), parse("node", node))
}

#[test]
fn every_refused_value_would_read_back_wrong_in_some_reader() {
    use vibedev::envfile::Unportable;
    let refused = refused_values();
    // Every reason is exercised, so the check below covers each refusal rule.
    for reason in [
        Unportable::CarriageReturn,
        Unportable::Nul,
        Unportable::Interpolation,
        Unportable::QuoteMix("a double quote"),
        Unportable::QuoteMix("a dollar sign"),
        Unportable::QuoteMix("a backslash"),
        Unportable::Backslashes,
    ] {
        assert!(
            refused.iter().any(|(_, why)| *why == reason),
            "no sample refused for {reason:?}"
        );
    }
    assert!(
        refused.len() >= 100,
        "only {} refused values",
        refused.len()
    );

    // A NUL cannot be handed to a program in its environment at all.
    for (value, _) in refused.iter().filter(|(v, _)| v.contains('\0')) {
        let spawned = Command::new("true").env("A", value).status();
        assert!(spawned.is_err(), "{value:?} was accepted in an environment");
    }

    // Every other refused value, in each quoting the writer has (single and double quotes),
    // followed by a plain line, in a file of its own.
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (i, (value, why)) in refused.iter().enumerate() {
        if value.contains('\0') {
            continue;
        }
        for (form, quoted) in [
            ("single", format!("'{value}'")),
            ("double", format!("\"{value}\"")),
        ] {
            let name = format!("r{i}-{form}.env");
            let text = render(
                &[],
                &[("A".into(), quoted.clone()), ("B".into(), "after".into())],
                None,
            );
            std::fs::write(dir.path().join(&name), &text).unwrap();
            cases.push((name, value, why, quoted, text));
        }
    }
    let files: Vec<_> = cases.iter().map(|c| dir.path().join(&c.0)).collect();
    let (python, node) = read_with_python_and_node(&files);

    let mut unjustified = Vec::new();
    for (name, value, why, quoted, text) in &cases {
        let right: BTreeMap<String, Option<String>> = [
            ("A".to_string(), Some(value.to_string())),
            ("B".to_string(), Some("after".to_string())),
        ]
        .into_iter()
        .collect();
        let dotenvy_right = dotenvy::from_read_iter(text.as_bytes())
            .collect::<Result<Vec<(String, String)>, _>>()
            .is_ok_and(|vars| {
                vars.into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect::<BTreeMap<_, _>>()
                    == right
            });
        let python_right = python.get(name) == Some(&right);
        let node_right = node.get(name) == Some(&right);
        if dotenvy_right && python_right && node_right {
            unjustified.push(format!("{value:?} ({why:?}) written as {quoted}"));
        }
    }
    assert!(
        unjustified.is_empty(),
        "{} refused values read back right in dotenvy, python-dotenv and Node:\n{}",
        unjustified.len(),
        unjustified.join("\n")
    );
}
