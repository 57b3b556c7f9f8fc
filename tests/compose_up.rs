//! A project's own compose file with merge keys, an env_file and a profile-gated service, brought
//! up on the real engine: what compose would start is what starts.

mod support;

use support::{TestProject, images, status};

#[test]
fn merge_keys_env_file_and_profiles_shape_what_up_starts() {
    let img = images();
    let p = TestProject::empty("compose-up");
    p.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"compose.yml\"\n", p.name),
    );
    p.write("cache.env", "CACHE_NOTE=from-env-file\n");
    p.write(
        "compose.yml",
        &format!(
            "x-redis: &redis\n  image: \"{}\"\n  ports: [\"6379\"]\n  labels: {{team: core}}\n\
             services:\n  cache:\n    <<: *redis\n    env_file: [cache.env]\n    x-vibedev: {{kind: redis}}\n\
             \x20 spare:\n    <<: *redis\n    profiles: [tools]\n    x-vibedev: {{kind: redis}}\n",
            img.redis
        ),
    );
    p.ok(&["up"]);
    let s = status(&p);
    assert_eq!(s["cache"]["state"], "running", "{s:?}");
    // Its profile is off: not started, and not listed as part of the stack.
    assert!(!s.contains_key("spare"), "{s:?}");
    assert_eq!(support::container_id(&p, "spare"), "");
    let id = support::container_id(&p, "cache");
    let env = support::docker(&["inspect", "-f", "{{json .Config.Env}}", &id]);
    assert!(env.contains("CACHE_NOTE=from-env-file"), "{env}");
    let labels = support::docker(&["inspect", "-f", "{{json .Config.Labels}}", &id]);
    assert!(labels.contains("\"team\":\"core\""), "{labels}");

    p.ok(&["up", "--profile", "tools"]);
    assert_eq!(status(&p)["spare"]["state"], "running");
}
