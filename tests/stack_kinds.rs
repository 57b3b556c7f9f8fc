//! Kinds beyond the default four, on the real engine: Google's Pub/Sub emulator declared with
//! `x-vibedev: kind: pubsub` (waited for, its topics created, `PUBSUB_EMULATOR_HOST` handed to the
//! app), and a service of no kind that declares its own HTTP readiness check.

mod support;

use support::{TestProject, env, images, status};

fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// A project on its own compose file.
fn project(tag: &str, compose: &str) -> TestProject {
    let p = TestProject::empty(tag);
    p.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"stack.yml\"\n", p.name),
    );
    p.write("stack.yml", compose);
    p
}

#[test]
fn pubsub_emulator_is_waited_for_gets_its_topics_and_is_handed_to_the_app() {
    let compose = format!(
        "services:\n  events:\n    image: {}\n    command: [\"gcloud\", \"beta\", \"emulators\", \"pubsub\", \"start\", \"--host-port=0.0.0.0:8085\"]\n    ports: [\"8085\"]\n    x-vibedev: {{kind: pubsub, topics: [app-events, audit-log]}}\n",
        images().pubsub
    );
    let p = project("pubsub", &compose);
    let up = p.ok(&["up"]);
    assert!(up.stderr.contains("created topic app-events"), "{up}");
    assert!(up.stderr.contains("created topic audit-log"), "{up}");

    let st = status(&p);
    assert_eq!(st["events"]["kind"], "pubsub", "{st:?}");
    assert_eq!(st["events"]["ready"], true, "{st:?}");

    // The app's client libraries find the emulator through PUBSUB_EMULATOR_HOST.
    let vars = env(&p);
    let host = &vars["PUBSUB_EMULATOR_HOST"];
    let gcp = &vars["GOOGLE_CLOUD_PROJECT"];
    let base = format!("http://{host}/v1/projects/{gcp}");
    let (code, body) = http("GET", &format!("{base}/topics"), None);
    assert_eq!(code, 200, "{body}");
    let topics: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            format!("projects/{gcp}/topics/app-events"),
            format!("projects/{gcp}/topics/audit-log")
        ]
    );

    // The topic is usable: a subscription receives what is published.
    let (code, body) = http(
        "PUT",
        &format!("{base}/subscriptions/app-events-sub"),
        Some(&format!(
            "{{\"topic\": \"projects/{gcp}/topics/app-events\"}}"
        )),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{base}/topics/app-events:publish"),
        Some("{\"messages\": [{\"data\": \"aGVsbG8=\"}]}"),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{base}/subscriptions/app-events-sub:pull"),
        Some("{\"maxMessages\": 1}"),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("aGVsbG8="), "{body}");

    // A second `up` finds the topics there and changes nothing.
    let again = p.ok(&["up"]);
    assert!(again.stdout.contains("nothing to change"), "{again}");
    assert!(!again.stderr.contains("created topic"), "{again}");
}

#[test]
fn bad_topic_name_is_a_configuration_error_naming_the_service() {
    let compose = format!(
        "services:\n  events:\n    image: {}\n    ports: [\"8085\"]\n    x-vibedev: {{kind: pubsub, topics: [\"1-starts-with-a-digit\"]}}\n",
        images().pubsub
    );
    let p = project("pubsub-bad", &compose);
    let up = p.run(&["up"]);
    assert_eq!(up.code, Some(2), "{up}");
    assert!(up.stderr.contains("service \"events\""), "{up}");
    assert!(up.stderr.contains("1-starts-with-a-digit"), "{up}");
}

#[test]
fn a_service_of_no_kind_waits_for_its_declared_http_check() {
    // fake-gcs as any HTTP server: `GET /storage/v1/b` answers 200, other paths 404, and its
    // port accepts connections either way, so only an HTTP check can tell them apart.
    let service = |wait: &str| {
        format!(
            "services:\n  api:\n    image: {}\n    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]\n    ports: [\"4443\"]\n    x-vibedev: {{ready_timeout: 3, {wait}}}\n",
            images().gcs
        )
    };
    let p = project("http-wait", &service("http: /storage/v1/b"));
    p.ok(&["up"]);
    assert_eq!(status(&p)["api"]["ready"], true);

    // A path the server does not have: never ready, and `up` says what it asked and was told.
    p.write("stack.yml", &service("http: /no-such-path"));
    let up = p.run(&["up"]);
    assert_eq!(up.code, Some(1), "{up}");
    assert!(
        up.stderr.contains("api did not become ready within 3 s"),
        "{up}"
    );
    assert!(up.stderr.contains("/no-such-path answered 404"), "{up}");
    assert_eq!(status(&p)["api"]["ready"], false);

    // A body that must start with given text.
    p.write(
        "stack.yml",
        &service("http: {path: /storage/v1/b, body: \"not what it says\"}"),
    );
    let up = p.run(&["up"]);
    assert_eq!(up.code, Some(1), "{up}");
    assert!(up.stderr.contains("expected \"not what it says\""), "{up}");
}
