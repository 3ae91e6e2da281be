//! SCIM group memberships (`groups: "{{ department }}"`) against both real SCIM
//! servers, scim2-server and django-scim2: groups are created, a group that exists
//! already under the same displayName is adopted and keeps the member rosterd did not
//! add, a department change moves the member (`- member` from the old group,
//! `+ member` to the new one), a pass after each step sends nothing, and an export
//! whose department column came out empty is stopped by the guard with nothing sent.
//! What is asserted is each server's own `/Groups`, read back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{json, Value};
use support::django_scim::{DjangoScim, RealScim};
use support::scim_server::{ScimServer, USER_SCHEMA};
use support::workspace::provider;

const TOKEN_ENV: &str = "ROSTERD_TEST_SCIM_TOKEN";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

struct Ws {
    dir: tempfile::TempDir,
    token: String,
}

impl Ws {
    fn new(target: &dyn RealScim, extra: &str) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 50, min_source_users: 1 }}\n\
             providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{{TOKEN_ENV}}}\n    groups: \"{{{{ department }}}}\"\n{extra}",
            target.base_url()
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Ws {
            dir,
            token: target.token().to_string(),
        }
    }

    /// `(id, department)` per person; emails and names follow from the id.
    fn write_people(&self, people: &[(&str, &str)]) {
        let mut csv = String::from("id,email,first,last,status,department\n");
        for (id, dept) in people {
            let lower = id.to_lowercase();
            csv.push_str(&format!(
                "{id},{lower}@corp.example,P{lower},Tester,active,{dept}\n"
            ));
        }
        std::fs::write(self.dir.path().join("users.csv"), csv).unwrap();
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(self.dir.path().join("rosterd.yaml"))
            .args(args)
            .env(TOKEN_ENV, &self.token)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            !stdout.contains(&self.token) && !stderr.contains(&self.token),
            "the bearer token leaked"
        );
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    fn sync(&self) -> (i32, Value, String) {
        let (code, stdout, stderr) = self.run(&["sync", "--format", "json"]);
        let doc: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, provider(&doc, "scim").clone(), stderr)
    }
}

/// Every group on the server: displayName → (id, the userNames of its members).
fn groups(server: &dyn RealScim) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let names: BTreeMap<String, String> = server
        .all_users()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["userName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (status, list) = server.call("GET", "/Groups?startIndex=1&count=100", None);
    assert_eq!(status, 200, "{} listing /Groups: {list}", server.label());
    let mut out = BTreeMap::new();
    for g in list["Resources"].as_array().cloned().unwrap_or_default() {
        let id = g["id"].as_str().unwrap().to_string();
        let (status, g) = server.call("GET", &format!("/Groups/{id}"), None);
        assert_eq!(status, 200, "{g}");
        let members: BTreeSet<String> = g["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let value = m["value"].as_str().unwrap();
                names
                    .get(value)
                    .cloned()
                    .unwrap_or_else(|| value.to_string())
            })
            .collect();
        let name = g["displayName"].as_str().unwrap().to_string();
        assert!(
            out.insert(name.clone(), (id, members)).is_none(),
            "{}: two groups named {name}",
            server.label()
        );
    }
    out
}

fn members(of: &[&str]) -> BTreeSet<String> {
    of.iter().map(|s| s.to_string()).collect()
}

/// A pass with nothing to do: no group change planned, no request sent, no write.
fn quiet_pass(server: &dyn RealScim, ws: &Ws, writes: &dyn Fn() -> usize, step: &str) {
    let before = writes();
    let (code, again, stderr) = ws.sync();
    let label = server.label();
    assert_eq!(code, 0, "{label}, {step} again: {again:#}\n{stderr}");
    assert_eq!(
        again["operations"],
        json!([]),
        "{label}, {step} again: {again:#}"
    );
    assert!(
        again.get("groups").is_none(),
        "{label}, {step} again: {again:#}"
    );
    assert_eq!(
        again["result"]["requests"].as_u64().unwrap_or(0),
        0,
        "{label}, {step} again: nothing sent: {again:#}"
    );
    assert_eq!(
        writes(),
        before,
        "{label}, {step} again: the server got no write"
    );
}

fn memberships_follow_departments(server: &dyn RealScim, writes: &dyn Fn() -> usize) -> Ws {
    let label = server.label();
    // A group made outside rosterd, with a member rosterd knows nothing of.
    let outsider = server.seed(json!({
        "schemas": [USER_SCHEMA],
        "userName": "outsider@corp.example",
        "name": {"givenName": "Out", "familyName": "Sider"},
        "emails": [{"value": "outsider@corp.example", "type": "work", "primary": true}],
        "active": true
    }));
    let (status, ops) = server.call(
        "POST",
        "/Groups",
        Some(&json!({ "schemas": [GROUP_SCHEMA], "displayName": "Ops" })),
    );
    assert_eq!(status, 201, "{label} seeding a group: {ops}");
    let ops_id = ops["id"].as_str().unwrap().to_string();
    let (status, added) = server.call(
        "PATCH",
        &format!("/Groups/{ops_id}"),
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": outsider["id"]}]}]
        })),
    );
    assert!(status < 300, "{label} seeding a member: {added}");

    let ws = Ws::new(server, "");
    let mut people = vec![
        ("E1", "Sales"),
        ("E2", "Sales"),
        ("E3", "Ops"),
        ("E4", "Ops"),
        ("E5", "Eng"),
    ];
    ws.write_people(&people);
    let (code, first, stderr) = ws.sync();
    assert_eq!(code, 0, "{label}: {first:#}\n{stderr}");
    assert_eq!(first["result"]["failed"], 0, "{label}: {first:#}");
    assert_eq!(first["summary"]["groups"]["Sales"]["add"], 2, "{first:#}");
    assert_eq!(first["result"]["applied"]["group_adopt"], 1, "{first:#}");
    assert_eq!(first["result"]["applied"]["group_create"], 2, "{first:#}");
    let held = groups(server);
    assert_eq!(held.len(), 3, "{label}: {held:#?}");
    assert_eq!(
        held["Ops"].0, ops_id,
        "{label}: the existing Ops group is adopted"
    );
    assert_eq!(
        held["Ops"].1,
        members(&[
            "outsider@corp.example",
            "e3@corp.example",
            "e4@corp.example"
        ]),
        "{label}"
    );
    assert_eq!(
        held["Sales"].1,
        members(&["e1@corp.example", "e2@corp.example"])
    );
    assert_eq!(held["Eng"].1, members(&["e5@corp.example"]));
    quiet_pass(server, &ws, writes, "first pass");

    // E3 moves from Ops to Sales: the dry run says so, the pass does it.
    people[2].1 = "Sales";
    ws.write_people(&people);
    let (code, text, stderr) = ws.run(&["sync", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("* group    Ops: +0 member(s), -1 member(s)"),
        "{text}"
    );
    assert!(text.contains("- member E3 <e3@corp.example>"), "{text}");
    assert!(text.contains("+ member E3 <e3@corp.example>"), "{text}");
    let (code, moved, stderr) = ws.sync();
    assert_eq!(code, 0, "{label}: {moved:#}\n{stderr}");
    assert_eq!(moved["result"]["applied"]["member_add"], 1, "{moved:#}");
    assert_eq!(moved["result"]["applied"]["member_remove"], 1, "{moved:#}");
    let held = groups(server);
    assert_eq!(
        held["Sales"].1,
        members(&["e1@corp.example", "e2@corp.example", "e3@corp.example"]),
        "{label}"
    );
    assert_eq!(
        held["Ops"].1,
        members(&["outsider@corp.example", "e4@corp.example"]),
        "{label}: the member rosterd did not add stays"
    );
    quiet_pass(server, &ws, writes, "a move");

    // A broken export: the department column is empty for everyone.
    let broken: Vec<(&str, &str)> = people.iter().map(|(id, _)| (*id, "")).collect();
    ws.write_people(&broken);
    let before = writes();
    let (code, blocked, stderr) = ws.sync();
    assert_eq!(
        code, 3,
        "{label}: stopped by the guard: {blocked:#}\n{stderr}"
    );
    let reason = blocked["blocked"].as_str().unwrap();
    assert!(reason.contains("group membership"), "{reason}");
    assert_eq!(writes(), before, "{label}: nothing sent");
    assert_eq!(groups(server), held, "{label}: the groups are as they were");

    // The export fixed, E4 leaves: its membership goes, the outsider's stays.
    people.remove(3);
    ws.write_people(&people);
    let (code, left, stderr) = ws.sync();
    assert_eq!(code, 0, "{label}: {left:#}\n{stderr}");
    assert_eq!(left["summary"]["disable"], 1, "{left:#}");
    let held = groups(server);
    assert_eq!(
        held["Ops"].1,
        members(&["outsider@corp.example"]),
        "{label}"
    );
    quiet_pass(server, &ws, writes, "a leaver");
    ws
}

/// The quirks `status --format json` shows as remembered.
fn quirks(ws: &Ws) -> Vec<String> {
    let (code, stdout, stderr) = ws.run(&["status", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    doc["scim_quirks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["quirk"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scim2_server_memberships_follow_departments() {
    let server = ScimServer::start();
    let ws = memberships_follow_departments(&server, &|| 0);
    assert_eq!(
        quirks(&ws),
        Vec::<String>::new(),
        "it removes by members[value eq …]"
    );
}

#[test]
fn django_scim2_memberships_follow_departments() {
    let server = DjangoScim::start();
    let ws = memberships_follow_departments(&server, &|| server.writes().len());
    // It refuses a remove by `members[value eq …]`; by value it works.
    assert!(
        quirks(&ws).contains(&"member_remove_by_value".to_string()),
        "{:?}",
        quirks(&ws)
    );
}

#[test]
fn a_server_refusing_patch_on_groups_fails_that_group_only_and_it_is_retried_next_pass() {
    // scim2-server announcing no PATCH answers every PATCH 501.
    let server = ScimServer::start_with(Some(support::scim_server::service_provider_config(
        false, None, false,
    )));
    let ws = Ws::new(&server, "");
    ws.write_people(&[("E1", "Sales"), ("E2", "Ops")]);
    let (code, report, stderr) = ws.sync();
    assert_eq!(code, 2, "some operations failed: {report:#}\n{stderr}");
    // The users were created all the same, and the groups too.
    assert_eq!(report["result"]["applied"]["create"], 2, "{report:#}");
    assert_eq!(report["result"]["applied"]["group_create"], 2, "{report:#}");
    let failures = report["result"]["group_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "one per group: {report:#}");
    for f in failures {
        let error = f["error"].as_str().unwrap();
        assert!(error.contains("refused PATCH /Groups/"), "{error}");
    }
    let held = groups(&server);
    assert!(held.values().all(|(_, m)| m.is_empty()), "{held:#?}");
    // Nothing was recorded as done: the next pass plans the members again.
    let (code, again, _) = ws.sync();
    assert_eq!(code, 2, "{again:#}");
    let planned: Vec<&str> = again["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["Ops", "Sales"], "{again:#}");
    assert!(
        again["groups"][0].get("ensure").is_none(),
        "the groups are known now: {again:#}"
    );
}

#[test]
fn a_saved_plan_carries_its_group_changes_and_is_applied_as_saved() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "");
    ws.write_people(&[("E1", "Sales"), ("E2", "Sales")]);
    let (code, _, stderr) = ws.sync();
    assert_eq!(code, 0, "{stderr}");
    ws.write_people(&[("E1", "Sales"), ("E2", "Ops")]);
    let plan = ws.dir.path().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let (code, _, stderr) = ws.run(&["sync", "--dry-run", "--out", plan_arg]);
    assert_eq!(code, 0, "{stderr}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let groups_saved = &saved["providers"][0]["groups"];
    assert_eq!(groups_saved.as_array().unwrap().len(), 2, "{saved:#}");
    assert!(
        saved["providers"][0]["group_basis"].is_string(),
        "{saved:#}"
    );
    let (code, stdout, stderr) = ws.run(&["sync", "--plan", plan_arg, "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let held = groups(&server);
    assert_eq!(held["Sales"].1, members(&["e1@corp.example"]));
    assert_eq!(held["Ops"].1, members(&["e2@corp.example"]));
    // Applied once, the plan no longer matches the snapshot: refused.
    let (code, _, stderr) = ws.run(&["sync", "--plan", plan_arg]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("groups or memberships"), "{stderr}");
}

#[test]
fn groups_are_checked_at_load_with_their_key_path() {
    let server = ScimServer::start();
    let check = |extra: &str, groups: &str| {
        let ws = Ws::new(&server, extra);
        let yaml = std::fs::read_to_string(ws.dir.path().join("rosterd.yaml")).unwrap();
        std::fs::write(
            ws.dir.path().join("rosterd.yaml"),
            yaml.replace("{{ department }}", groups),
        )
        .unwrap();
        ws.write_people(&[("E1", "Sales")]);
        let (code, _, stderr) = ws.run(&["sync", "--dry-run"]);
        (code, stderr)
    };
    let (code, stderr) = check("", "{{ department | upper }");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("providers[0].groups"), "{stderr}");
    assert!(stderr.contains("line 1, column"), "{stderr}");
    let (code, stderr) = check("", "{{ departmnt }}");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("providers[0].groups: no source record has attribute \"departmnt\"; did you mean \"department\"?"),
        "{stderr}"
    );
    let (code, stderr) = check("    on_group_empty: sometimes\n", "{{ department }}");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("on_group_empty"), "{stderr}");
}

#[test]
fn explain_shows_the_groups_a_user_gets_and_the_template() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "");
    let yaml = std::fs::read_to_string(ws.dir.path().join("rosterd.yaml")).unwrap();
    std::fs::write(
        ws.dir.path().join("rosterd.yaml"),
        yaml.replace("{{ department }}", "{{ department | split(';') }}"),
    )
    .unwrap();
    ws.write_people(&[("E1", "Sales;Ops; Sales")]);
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run", "--explain", "E1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("groups  \"Ops\", \"Sales\"  (from {{ department | split(';') }})"),
        "{stdout}"
    );
    // The dry run plans both groups for the new user, and sends nothing.
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("* group    Ops (found by displayName and adopted, or created): +1 member(s), -0 member(s)"), "{stdout}");
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run", "--show-requests"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("GET ") && stdout.contains("/Groups?filter=displayName+eq+%22Ops%22"),
        "{stdout}"
    );
    assert!(
        stdout.contains("then POST ") && stdout.contains("/Groups (when no group"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PATCH ") && stdout.contains("/Groups/{id}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"value\":[{\"value\":\"<id of E1>\"}]"),
        "{stdout}"
    );
    assert!(groups(&server).is_empty());
}

#[test]
fn a_crash_after_the_server_added_members_converges_without_duplicates() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "");
    ws.write_people(&[("E1", "Sales"), ("E2", "Sales")]);
    // Killed once the server answered the add, before it is recorded.
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(ws.dir.path().join("rosterd.yaml"))
        .args(["sync", "--format", "json"])
        .env(TOKEN_ENV, &ws.token)
        .env("ROSTERD_CRASH_AT", "group_answered:1")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "the crash point was reached");
    let (code, report, stderr) = ws.sync();
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    let (_, list) = server.call("GET", "/Groups?startIndex=1&count=100", None);
    let all = list["Resources"].as_array().unwrap();
    assert_eq!(all.len(), 1, "one Sales group: {list:#}");
    let (_, sales) = server.call(
        "GET",
        &format!("/Groups/{}", all[0]["id"].as_str().unwrap()),
        None,
    );
    let values: Vec<&str> = sales["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = values.iter().copied().collect();
    assert_eq!(values.len(), 2, "each member once: {sales:#}");
    assert_eq!(distinct.len(), 2, "{sales:#}");
    quiet_pass(&server, &ws, &|| 0, "after the crash");
}
