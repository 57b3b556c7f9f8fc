//! Firestore data and buckets per git branch on a real stack (`[branches] firestore` and
//! `bucket`, with the Firestore emulator and fake-gcs): a document and an object written on one
//! branch are not seen on another, switching back finds them, a new branch's Firestore project
//! and bucket start as copies of the default branch's (made once: what the branch deletes stays
//! deleted; an interrupted copy is made anew), and `branch ls`, `rm` and `prune` act on only
//! that branch's data, with or without branch databases.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{TestProject, env, images};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository on `main` with Postgres, the Firestore emulator and fake-gcs, and everything
/// under `[branches]` following the branch.
fn project() -> TestProject {
    project_with(true)
}

/// A repository on `main` with the Firestore emulator and fake-gcs (and Postgres with
/// `database`), Firestore and the buckets following the branch.
fn project_with(database: bool) -> TestProject {
    let p = TestProject::empty("branch-stores");
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"stack.yml\"\n\n[branches]\ndatabase = {database}\nfirestore = true\nbucket = true\n",
            p.name
        ),
    );
    let img = images();
    let postgres = if database {
        format!(
            "  postgres:
    image: {}
    environment: {{POSTGRES_PASSWORD: pw}}
    ports: [\"5432\"]
",
            img.postgres
        )
    } else {
        String::new()
    };
    p.write(
        "stack.yml",
        &format!(
            "services:
{postgres}  firestore:
    image: {}
    command: [\"gcloud\", \"emulators\", \"firestore\", \"start\", \"--host-port=0.0.0.0:8080\"]
    ports: [\"8080\"]
  gcs:
    image: {}
    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]
    ports: [\"4443\"]
",
            img.firestore, img.gcs
        ),
    );
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-qm", "stack"]);
    p
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn documents(vars: &BTreeMap<String, String>, project: &str) -> String {
    format!(
        "http://{}/v1/projects/{project}/databases/(default)/documents",
        vars["FIRESTORE_EMULATOR_HOST"]
    )
}

fn put_doc(vars: &BTreeMap<String, String>, path: &str, value: &str) {
    let project = vars["GOOGLE_CLOUD_PROJECT"].clone();
    put_fields(
        vars,
        &project,
        path,
        json!({ "v": { "stringValue": value } }),
    );
}

/// Writes a document of `project` with Firestore `fields`.
fn put_fields(vars: &BTreeMap<String, String>, project: &str, path: &str, fields: Value) {
    block(async {
        let r = http()
            .patch(format!("{}/{path}", documents(vars, project)))
            .header("Authorization", "Bearer owner")
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    })
}

/// The Firestore `fields` of a document of `project`.
fn fields(vars: &BTreeMap<String, String>, project: &str, path: &str) -> Value {
    block(async {
        let r = http()
            .get(format!("{}/{path}", documents(vars, project)))
            .header("Authorization", "Bearer owner")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json::<Value>().await.unwrap()["fields"].clone()
    })
}

fn delete_doc(vars: &BTreeMap<String, String>, project: &str, path: &str) {
    block(async {
        let r = http()
            .delete(format!("{}/{path}", documents(vars, project)))
            .header("Authorization", "Bearer owner")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    })
}

/// The paths of every document of `project`.
fn docs(vars: &BTreeMap<String, String>, project: &str) -> Vec<String> {
    let r: Vec<Value> = block(async {
        http()
            .post(format!("{}:runQuery", documents(vars, project)))
            .header("Authorization", "Bearer owner")
            .json(&json!({ "structuredQuery": { "from": [{ "allDescendants": true }] } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let mut out: Vec<String> = r
        .iter()
        .filter_map(|d| d.get("document"))
        .map(|d| {
            let name = d["name"].as_str().unwrap();
            name.split("/documents/").nth(1).unwrap().to_string()
        })
        .collect();
    out.sort();
    out
}

fn put_object(vars: &BTreeMap<String, String>, name: &str, bytes: &str) {
    block(async {
        let r = http()
            .post(format!(
                "{}/upload/storage/v1/b/{}/o",
                vars["STORAGE_EMULATOR_HOST"], vars["TEMPLATES_BUCKET"]
            ))
            .query(&[("uploadType", "media"), ("name", name)])
            .body(bytes.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    })
}

/// Every object of `bucket` as name -> contents; `None` when the bucket does not exist.
fn objects(vars: &BTreeMap<String, String>, bucket: &str) -> Option<BTreeMap<String, String>> {
    let base = &vars["STORAGE_EMULATOR_HOST"];
    block(async {
        let list = http()
            .get(format!("{base}/storage/v1/b/{bucket}/o"))
            .send()
            .await
            .unwrap();
        if list.status().as_u16() == 404 {
            return None;
        }
        assert!(list.status().is_success(), "{}", list.status());
        let list: Value = list.json().await.unwrap();
        let mut out = BTreeMap::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = item["name"].as_str().unwrap().to_string();
            let body = http()
                .get(format!("{base}/storage/v1/b/{bucket}/o/{name}?alt=media"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            out.insert(name, body);
        }
        Some(out)
    })
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn firestore_and_bucket_follow_the_branch_and_branch_rm_removes_only_its_own() {
    let p = project();
    p.ok(&["up"]);
    let main = env(&p);
    put_doc(&main, "items/main", "main");
    put_object(&main, "main.txt", "from main");

    git(p.path(), &["switch", "-q", "-c", "feature/A"]);
    let made = p.ok(&["env", "--format", "json"]);
    let a = env(&p);
    assert_eq!(
        a["GOOGLE_CLOUD_PROJECT"],
        format!("{}-feature-a", main["GOOGLE_CLOUD_PROJECT"])
    );
    assert_eq!(
        a["TEMPLATES_BUCKET"],
        format!("{}-feature-a", main["TEMPLATES_BUCKET"])
    );
    assert!(
        made.stderr.contains(&format!(
            "made bucket {} (a copy of {}: 1 object)",
            a["TEMPLATES_BUCKET"], main["TEMPLATES_BUCKET"]
        )),
        "{made}"
    );
    assert!(
        made.stderr.contains(&format!(
            "made Firestore project {} (a copy of {}: 1 document)",
            a["GOOGLE_CLOUD_PROJECT"], main["GOOGLE_CLOUD_PROJECT"]
        )),
        "{made}"
    );
    // The new branch's bucket and Firestore project are copies of the default branch's.
    assert_eq!(
        objects(&a, &a["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );
    assert_eq!(docs(&a, &a["GOOGLE_CLOUD_PROJECT"]), ["items/main"]);
    put_doc(&a, "items/a", "a");
    put_object(&a, "a.txt", "from A");

    git(p.path(), &["switch", "-q", "main"]);
    git(p.path(), &["switch", "-q", "-c", "feature/B"]);
    let b = env(&p);
    assert_ne!(b["GOOGLE_CLOUD_PROJECT"], a["GOOGLE_CLOUD_PROJECT"]);
    assert_ne!(b["TEMPLATES_BUCKET"], a["TEMPLATES_BUCKET"]);
    assert_eq!(docs(&b, &b["GOOGLE_CLOUD_PROJECT"]), ["items/main"]);
    assert_eq!(
        objects(&b, &b["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );
    put_doc(&b, "items/b", "b");
    put_object(&b, "b.txt", "from B");

    git(p.path(), &["switch", "-q", "feature/A"]);
    let again = env(&p);
    assert_eq!(again, a);
    assert_eq!(
        docs(&a, &a["GOOGLE_CLOUD_PROJECT"]),
        ["items/a", "items/main"]
    );
    assert_eq!(
        objects(&a, &a["TEMPLATES_BUCKET"]),
        Some(map(&[("a.txt", "from A"), ("main.txt", "from main")]))
    );
    // The default branch's data never changed.
    assert_eq!(docs(&main, &main["GOOGLE_CLOUD_PROJECT"]), ["items/main"]);
    assert_eq!(
        objects(&main, &main["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );

    let ls = p.ok(&["branch", "ls", "--json"]).json();
    let row = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["branch"] == "feature/A")
        .unwrap_or_else(|| panic!("{ls}"))
        .clone();
    let held: Vec<(String, u64)> = row["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            (
                format!("Firestore project {}", a["GOOGLE_CLOUD_PROJECT"]),
                2
            ),
            (format!("bucket {}", a["TEMPLATES_BUCKET"]), 2),
        ]
    );

    git(p.path(), &["switch", "-q", "main"]);
    let rm = p.ok(&["branch", "rm", "feature/A"]);
    assert!(
        rm.stdout
            .contains(&format!("removed bucket {}", a["TEMPLATES_BUCKET"])),
        "{rm}"
    );
    assert!(docs(&a, &a["GOOGLE_CLOUD_PROJECT"]).is_empty());
    assert_eq!(objects(&a, &a["TEMPLATES_BUCKET"]), None);
    assert_eq!(
        docs(&b, &b["GOOGLE_CLOUD_PROJECT"]),
        ["items/b", "items/main"]
    );
    assert_eq!(
        objects(&b, &b["TEMPLATES_BUCKET"]),
        Some(map(&[("b.txt", "from B"), ("main.txt", "from main")]))
    );
    assert_eq!(docs(&main, &main["GOOGLE_CLOUD_PROJECT"]), ["items/main"]);
    assert_eq!(
        objects(&main, &main["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );
}

/// A document with every Firestore value type, one of them a reference to `items/main` of
/// `project`.
fn typed_fields(project: &str) -> Value {
    json!({
        "s": {"stringValue": "text"},
        "i": {"integerValue": "9007199254740993"},
        "d": {"doubleValue": 1.5},
        "b": {"booleanValue": true},
        "n": {"nullValue": null},
        "t": {"timestampValue": "2024-01-02T03:04:05.123456Z"},
        "g": {"geoPointValue": {"latitude": 51.5, "longitude": -0.125}},
        "y": {"bytesValue": "AAEC/w=="},
        "r": {"referenceValue": format!("projects/{project}/databases/(default)/documents/items/main")},
        "a": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "two"}]}},
        "m": {"mapValue": {"fields": {"k": {"booleanValue": false}}}},
    })
}

#[test]
fn a_new_branchs_firestore_is_a_typed_copy_made_once() {
    let p = project_with(false);
    p.ok(&["up"]);
    let main = env(&p);
    let main_id = main["GOOGLE_CLOUD_PROJECT"].clone();
    put_doc(&main, "items/main", "main");
    put_fields(&main, &main_id, "typed/t1", typed_fields(&main_id));
    put_doc(&main, "typed/t1/sub/s1", "nested");
    put_object(&main, "main.txt", "from main");
    let main_typed = fields(&main, &main_id, "typed/t1");
    let all = ["items/main", "typed/t1", "typed/t1/sub/s1"];

    git(p.path(), &["switch", "-q", "-c", "feature/A"]);
    let made = p.ok(&["env", "--format", "json"]);
    let a = env(&p);
    let a_id = a["GOOGLE_CLOUD_PROJECT"].clone();
    assert!(
        made.stderr.contains(&format!(
            "made Firestore project {a_id} (a copy of {main_id}: 3 documents)"
        )),
        "{made}"
    );
    // Every document and subcollection, every type kept; the reference points into the copy.
    assert_eq!(docs(&a, &a_id), all);
    let mut expected = main_typed.clone();
    expected["r"]["referenceValue"] = json!(format!(
        "projects/{a_id}/databases/(default)/documents/items/main"
    ));
    assert_eq!(fields(&a, &a_id, "typed/t1"), expected);
    assert_eq!(
        fields(&a, &a_id, "typed/t1/sub/s1"),
        fields(&main, &main_id, "typed/t1/sub/s1")
    );

    // What the branch deletes stays deleted, all of it: the copy is not made again.
    for doc in all {
        delete_doc(&a, &a_id, doc);
    }
    let up = p.ok(&["up"]);
    let env_again = p.ok(&["env", "--format", "json"]);
    for run in [&up, &env_again] {
        assert!(!run.stderr.contains("made Firestore"), "{run}");
    }
    assert!(docs(&a, &a_id).is_empty());
    put_doc(&a, "items/a", "a");
    put_fields(
        &a,
        &a_id,
        "typed/t1",
        json!({"changed": {"booleanValue": true}}),
    );
    assert_eq!(docs(&a, &a_id), ["items/a", "typed/t1"]);
    // The default branch's documents are unchanged by the branch's writes.
    assert_eq!(docs(&main, &main_id), all);
    assert_eq!(fields(&main, &main_id, "typed/t1"), main_typed);

    // A copy begun and never finished (a first use interrupted) is made anew on the next use.
    let c_id = format!("{main_id}-feature-c");
    put_fields(
        &main,
        "vibedevbranches",
        &format!("branches/{c_id}"),
        json!({
            "branch": {"stringValue": "feature/C"},
            "slug": {"stringValue": "feature_c"},
            "source": {"stringValue": main_id},
            "state": {"stringValue": "copying"},
        }),
    );
    put_fields(
        &main,
        &c_id,
        "items/main",
        json!({"half": {"booleanValue": true}}),
    );
    put_fields(&main, &c_id, "stray/x", json!({}));
    // The same for its bucket: recorded as being copied, and holding a stray object.
    let main_bucket = main["TEMPLATES_BUCKET"].clone();
    let c_bucket = format!("{main_bucket}-feature-c");
    let gcs = &main["STORAGE_EMULATOR_HOST"];
    block(async {
        let record = json!({"branch": "feature/C", "slug": "feature_c", "source": main_bucket, "copying": true});
        let r = http()
            .post(format!("{gcs}/upload/storage/v1/b/vibedev_branches/o"))
            .query(&[("uploadType", "media"), ("name", c_bucket.as_str())])
            .body(record.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let r = http()
            .post(format!("{gcs}/storage/v1/b"))
            .json(&json!({"name": c_bucket}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
    let mut in_c = main.clone();
    in_c.insert("TEMPLATES_BUCKET".into(), c_bucket.clone());
    put_object(&in_c, "stray.txt", "half made");
    git(p.path(), &["switch", "-q", "-c", "feature/C"]);
    let redone = p.ok(&["env", "--format", "json"]);
    assert!(
        redone.stderr.contains(&format!(
            "made Firestore project {c_id} anew (a copy of {main_id}: 3 documents"
        )),
        "{redone}"
    );
    assert!(
        redone.stderr.contains(&format!(
            "made bucket {c_bucket} anew (the copy begun before was interrupted) (a copy of {main_bucket}: 1 object"
        )),
        "{redone}"
    );
    assert_eq!(
        objects(&main, &c_bucket),
        Some(map(&[("main.txt", "from main")]))
    );
    assert_eq!(docs(&main, &c_id), all);
    assert_eq!(
        fields(&main, &c_id, "items/main"),
        fields(&main, &main_id, "items/main")
    );
    let again = p.ok(&["env", "--format", "json"]);
    assert!(!again.stderr.contains("made Firestore"), "{again}");
    assert!(!again.stderr.contains("made bucket"), "{again}");
}

/// `branch ls --json` rows by git branch.
fn branch_rows(p: &TestProject) -> BTreeMap<String, Value> {
    p.ok(&["branch", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["branch"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// `(what, count)` of a `branch ls --json` row's stores.
fn held(row: &Value) -> Vec<(String, u64)> {
    row["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn branch_ls_rm_and_prune_work_without_branch_databases() {
    let p = project_with(false);
    p.ok(&["up"]);
    let main = env(&p);
    put_doc(&main, "items/main", "main");
    put_object(&main, "main.txt", "from main");
    let mut used = BTreeMap::new();
    for branch in ["feature/A", "feature/B", "feature/C"] {
        git(p.path(), &["switch", "-q", "-c", branch]);
        let vars = env(&p);
        put_doc(&vars, "items/own", branch);
        put_object(&vars, "own.txt", branch);
        used.insert(branch, vars);
        git(p.path(), &["switch", "-q", "main"]);
    }
    let a = &used["feature/A"];

    let rows = branch_rows(&p);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["feature/A", "feature/B", "feature/C", "main"]
    );
    assert_eq!(rows["main"]["default"], true);
    assert_eq!(rows["main"]["current"], true);
    assert_eq!(rows["feature/A"]["database"], Value::Null);
    assert_eq!(rows["feature/A"]["branch_exists"], true);
    assert_eq!(
        held(&rows["feature/A"]),
        [
            (
                format!("Firestore project {}", a["GOOGLE_CLOUD_PROJECT"]),
                2
            ),
            (format!("bucket {}", a["TEMPLATES_BUCKET"]), 2),
        ]
    );

    // The table: no database column value for a branch without one.
    let table = p.ok(&["branch", "ls"]);
    let line = table
        .stdout
        .lines()
        .find(|l| l.contains("feature/A"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[..3], ["feature/A", "-", "-"], "{table}");
    assert!(
        line.contains(&format!("bucket {} (2 objects", a["TEMPLATES_BUCKET"])),
        "{table}"
    );

    // rm: only A's documents and buckets go.
    let rm = p.ok(&["branch", "rm", "feature/A"]);
    for what in [
        format!("removed Firestore project {}", a["GOOGLE_CLOUD_PROJECT"]),
        format!("removed bucket {}", a["TEMPLATES_BUCKET"]),
    ] {
        assert!(rm.stdout.contains(&what), "{rm}");
    }
    assert!(docs(a, &a["GOOGLE_CLOUD_PROJECT"]).is_empty());
    assert_eq!(objects(a, &a["TEMPLATES_BUCKET"]), None);
    assert!(!branch_rows(&p).contains_key("feature/A"));
    let untouched = |branches: &[&str]| {
        assert_eq!(docs(&main, &main["GOOGLE_CLOUD_PROJECT"]), ["items/main"]);
        assert_eq!(
            objects(&main, &main["TEMPLATES_BUCKET"]),
            Some(map(&[("main.txt", "from main")]))
        );
        for branch in branches {
            let vars = &used[branch];
            assert_eq!(
                docs(vars, &vars["GOOGLE_CLOUD_PROJECT"]),
                ["items/main", "items/own"]
            );
            assert_eq!(
                objects(vars, &vars["TEMPLATES_BUCKET"]),
                Some(map(&[("main.txt", "from main"), ("own.txt", branch)]))
            );
        }
    };
    untouched(&["feature/B", "feature/C"]);
    // The default branch is refused.
    let default = p.run(&["branch", "rm", "main"]);
    assert_eq!(default.code, Some(2), "{default}");

    // prune after `git branch -D`: only B's data goes.
    git(p.path(), &["branch", "-q", "-D", "feature/B"]);
    let rows = branch_rows(&p);
    assert_eq!(rows["feature/B"]["branch_exists"], false);
    assert_eq!(rows["feature/C"]["branch_exists"], true);
    let b = &used["feature/B"];
    let pruned = p.ok(&["branch", "prune", "--yes"]);
    assert!(
        pruned
            .stdout
            .contains(&format!("removed bucket {}", b["TEMPLATES_BUCKET"])),
        "{pruned}"
    );
    assert!(docs(b, &b["GOOGLE_CLOUD_PROJECT"]).is_empty());
    assert_eq!(objects(b, &b["TEMPLATES_BUCKET"]), None);
    assert_eq!(
        branch_rows(&p).keys().collect::<Vec<_>>(),
        ["feature/C", "main"]
    );
    untouched(&["feature/C"]);

    // The branch in use is refused.
    git(p.path(), &["switch", "-q", "feature/C"]);
    let in_use = p.run(&["branch", "rm", "feature/C"]);
    assert_eq!(in_use.code, Some(1), "{in_use}");
    untouched(&["feature/C"]);
}

/// A snapshot holds this branch's buckets under the default branch's names: saved on main and
/// restored on a branch, it goes into the branch's own bucket; restored on main, it leaves the
/// branches' buckets (and vibedev's records of them) alone.
#[test]
fn a_snapshot_restores_into_the_branchs_own_bucket_and_leaves_other_branches_alone() {
    let data = tempfile::tempdir().unwrap();
    let mut p = project_with(false);
    p.env
        .push(("XDG_DATA_HOME".into(), data.path().display().to_string()));
    p.ok(&["up"]);
    let main = env(&p);
    let main_bucket = main["TEMPLATES_BUCKET"].clone();
    put_object(&main, "main.txt", "from main");
    p.ok(&["snapshot", "save", "on-main", "--only", "gcs"]);

    git(p.path(), &["switch", "-q", "-c", "feature/A"]);
    let a = env(&p);
    let a_bucket = a["TEMPLATES_BUCKET"].clone();
    assert_ne!(a_bucket, main_bucket);
    put_object(&a, "a.txt", "from A");
    put_object(&a, "main.txt", "changed on A");
    let save = p.ok(&["snapshot", "save", "on-a", "--only", "gcs"]);
    assert!(save.stderr.contains("saved 2 objects"), "{save}");

    // main's snapshot restored on A: A's bucket holds main's objects; main's bucket is as it was.
    p.ok(&["snapshot", "restore", "on-main", "--only", "gcs"]);
    assert_eq!(
        objects(&a, &a_bucket),
        Some(map(&[("main.txt", "from main")]))
    );
    assert_eq!(
        objects(&a, &main_bucket),
        Some(map(&[("main.txt", "from main")]))
    );
    p.ok(&["snapshot", "restore", "on-a", "--only", "gcs"]);
    assert_eq!(
        objects(&a, &a_bucket),
        Some(map(&[("a.txt", "from A"), ("main.txt", "changed on A")]))
    );

    // On main, restoring main's snapshot leaves A's bucket and the branch records alone.
    git(p.path(), &["switch", "-q", "main"]);
    put_object(&main, "later.txt", "later");
    p.ok(&["snapshot", "restore", "on-main", "--only", "gcs"]);
    assert_eq!(
        objects(&main, &main_bucket),
        Some(map(&[("main.txt", "from main")]))
    );
    assert_eq!(
        objects(&main, &a_bucket),
        Some(map(&[("a.txt", "from A"), ("main.txt", "changed on A")]))
    );
    let rows = branch_rows(&p);
    assert!(rows.contains_key("feature/A"), "{rows:?}");
    // ... and restored on A, A's snapshot brings back A's objects into A's bucket only.
    git(p.path(), &["switch", "-q", "feature/A"]);
    put_object(&a, "a.txt", "edited");
    p.ok(&["snapshot", "restore", "on-a", "--only", "gcs"]);
    assert_eq!(
        objects(&a, &a_bucket),
        Some(map(&[("a.txt", "from A"), ("main.txt", "changed on A")]))
    );
    assert_eq!(
        objects(&a, &main_bucket),
        Some(map(&[("main.txt", "from main")]))
    );
}
