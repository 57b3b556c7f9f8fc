//! Firestore data and buckets per git branch on a real stack (`[branches] firestore` and
//! `bucket`, with the Firestore emulator and fake-gcs): a document and an object written on one
//! branch are not seen on another, switching back finds them, a new branch's bucket starts as a
//! copy of the default branch's, and `branch rm` removes only that branch's data.

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
    let p = TestProject::empty("branch-stores");
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"stack.yml\"\n\n[branches]\ndatabase = true\nfirestore = true\nbucket = true\n",
            p.name
        ),
    );
    let img = images();
    p.write(
        "stack.yml",
        &format!(
            "services:
  postgres:
    image: {}
    environment: {{POSTGRES_PASSWORD: pw}}
    ports: [\"5432\"]
  firestore:
    image: {}
    command: [\"gcloud\", \"emulators\", \"firestore\", \"start\", \"--host-port=0.0.0.0:8080\"]
    ports: [\"8080\"]
  gcs:
    image: {}
    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]
    ports: [\"4443\"]
",
            img.postgres, img.firestore, img.gcs
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
    block(async {
        let r = http()
            .patch(format!(
                "{}/{path}",
                documents(vars, &vars["GOOGLE_CLOUD_PROJECT"])
            ))
            .header("Authorization", "Bearer owner")
            .json(&json!({ "fields": { "v": { "stringValue": value } } }))
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
    // The new branch's bucket is a copy of the default branch's; its Firestore starts empty.
    assert_eq!(
        objects(&a, &a["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );
    assert!(docs(&a, &a["GOOGLE_CLOUD_PROJECT"]).is_empty());
    put_doc(&a, "items/a", "a");
    put_object(&a, "a.txt", "from A");

    git(p.path(), &["switch", "-q", "main"]);
    git(p.path(), &["switch", "-q", "-c", "feature/B"]);
    let b = env(&p);
    assert_ne!(b["GOOGLE_CLOUD_PROJECT"], a["GOOGLE_CLOUD_PROJECT"]);
    assert_ne!(b["TEMPLATES_BUCKET"], a["TEMPLATES_BUCKET"]);
    assert!(docs(&b, &b["GOOGLE_CLOUD_PROJECT"]).is_empty());
    assert_eq!(
        objects(&b, &b["TEMPLATES_BUCKET"]),
        Some(map(&[("main.txt", "from main")]))
    );
    put_doc(&b, "items/b", "b");
    put_object(&b, "b.txt", "from B");

    git(p.path(), &["switch", "-q", "feature/A"]);
    let again = env(&p);
    assert_eq!(again, a);
    assert_eq!(docs(&a, &a["GOOGLE_CLOUD_PROJECT"]), ["items/a"]);
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
                1
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
    assert_eq!(docs(&b, &b["GOOGLE_CLOUD_PROJECT"]), ["items/b"]);
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
