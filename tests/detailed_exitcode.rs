//! `sync --dry-run --detailed-exitcode` against fake vendors: 4 while the plan would
//! send something, 0 once nothing would change (manual actions alone included: nothing
//! is sent for them), 3 when a safety guard blocks; without the flag a dry run keeps
//! exiting 0 for pending changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::fake_vyte::FakeVyte;
use support::workspace::{Person, Workspace};

const DETAILED: [&str; 3] = ["sync", "--dry-run", "--detailed-exitcode"];

#[tokio::test]
async fn detailed_exitcode_is_4_with_changes_pending_0_without_and_3_when_blocked() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let people: Vec<Person> = (1..=3).map(Person::new).collect();
    ws.write_people(&people);

    let (code, stdout, stderr) = ws.run(&DETAILED);
    assert_eq!(code, 4, "three creates pending: {stdout}\n{stderr}");
    assert!(
        stdout.contains("create"),
        "the plan is still printed: {stdout}"
    );
    assert_eq!(ws.run(&["sync", "--dry-run"]).0, 0, "without the flag: 0");
    assert!(fake.users().is_empty(), "a dry run sends nothing");

    assert_eq!(ws.sync().0, 0);
    let (code, stdout, _) = ws.run(&DETAILED);
    assert_eq!(code, 0, "nothing would change: {stdout}");

    // The source guard: fewer users than the minimum blocks every provider.
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replace("min_source_users: 1", "min_source_users: 50"),
    )
    .unwrap();
    let (code, stdout, _) = ws.run(&DETAILED);
    assert_eq!(code, 3, "{stdout}");

    // The flag means nothing to a real run: refused as a usage error.
    let (code, _, stderr) = ws.run(&["sync", "--detailed-exitcode"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--dry-run"), "{stderr}");
}

#[tokio::test]
async fn manual_actions_alone_are_not_changes_pending() {
    let fake = FakeVyte::start().await;
    let ws = Workspace::vyte(&fake.base_url(), fake.api_key(), "");
    let mut people: Vec<Person> = (1..=3).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    // vyte cannot disable: a leaver is a manual action, and nothing is sent for it.
    people[0].status = "inactive".into();
    ws.write_people(&people);
    let (code, stdout, stderr) = ws.run(&[
        "sync",
        "--dry-run",
        "--detailed-exitcode",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let vyte = support::workspace::provider(&doc, "vyte");
    assert_eq!(vyte["manual"].as_array().unwrap().len(), 1, "{vyte}");
    assert!(
        vyte["operations"].as_array().is_none_or(Vec::is_empty),
        "{vyte}"
    );
}
