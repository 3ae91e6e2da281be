//! SCIM enterprise `manager` references against scim2-server: the mapping names a
//! manager by HR key, rosterd sends the manager's id at the server, creating managers
//! before the people who report to them (whatever their key order), so the org chart
//! arrives intact in one pass. A manager change is one update, a manager who leaves
//! is removed from their reports, a manager rosterd does not manage is never sent, a
//! cycle converges on the next pass, and a converged pass sends nothing. By PATCH
//! and by PUT.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::Value;
use support::scim_server::{service_provider_config, ScimServer, ENTERPRISE};
use support::workspace::{provider, Person};

fn workspace(server: &ScimServer, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "state: state.db\n\
         source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
         providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{ROSTERD_TEST_SCIM_TOKEN}}\n{extra}\
         \x20   attributes:\n\
         \x20     manager: \"{{{{ manager_id }}}}\"\n",
        server.base_url()
    );
    std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
    dir
}

/// `users.csv`: (person, status, manager's key).
fn people(dir: &std::path::Path, rows: &[(&Person, &str, &str)]) {
    let mut csv = String::from("id,email,first,last,status,manager_id\n");
    for (p, status, manager) in rows {
        csv.push_str(&format!(
            "{},{},{},{},{status},{manager}\n",
            p.id, p.email, p.first, p.last
        ));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
}

fn sync(dir: &std::path::Path, server: &ScimServer) -> Value {
    let (code, doc) = server.sync_json(dir);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "scim")["result"]["failed"], 0, "{doc}");
    doc
}

/// The id at the server of `p`'s manager, if it has one.
fn manager_of(server: &ScimServer, p: &Person) -> Option<String> {
    let u = server
        .user(&p.email)
        .unwrap_or_else(|| panic!("{} not at the server", p.id));
    u.get(ENTERPRISE)
        .and_then(|e| e.get("manager"))
        .and_then(|m| m.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn id_of(server: &ScimServer, p: &Person) -> String {
    server.user(&p.email).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn updates(doc: &Value) -> Vec<String> {
    provider(doc, "scim")["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["op"] == "update")
        .map(|o| o["external_id"].as_str().unwrap().to_string())
        .collect()
}

fn org_chart_arrives_intact(server: &ScimServer, extra: &str) {
    let p: Vec<Person> = (1..=7).map(Person::new).collect();
    let dir = workspace(server, extra);
    // Managers sort after their reports: E1, E2 report to E3, who reports to E4. E5
    // names someone not in the source; E6 and E7 name each other.
    let org = |e2_manager: &'static str, e3_status: &'static str| {
        vec![
            (&p[0], "active", "E00003"),
            (&p[1], "active", e2_manager),
            (&p[2], e3_status, "E00004"),
            (&p[3], "active", ""),
            (&p[4], "active", "E00099"),
            (&p[5], "active", "E00007"),
            (&p[6], "active", "E00006"),
        ]
    };
    people(dir.path(), &org("E00003", "active"));
    let doc = sync(dir.path(), server);
    assert_eq!(
        provider(&doc, "scim")["result"]["applied"]["create"],
        7,
        "{doc}"
    );
    let e3 = id_of(server, &p[2]);
    assert_eq!(manager_of(server, &p[0]).as_deref(), Some(e3.as_str()));
    assert_eq!(manager_of(server, &p[1]).as_deref(), Some(e3.as_str()));
    assert_eq!(manager_of(server, &p[2]), Some(id_of(server, &p[3])));
    assert_eq!(manager_of(server, &p[3]), None);
    assert_eq!(
        manager_of(server, &p[4]),
        None,
        "a manager not in the source"
    );
    // A cycle: at least one of the two could not name the other at its create.
    let cycle = [manager_of(server, &p[5]), manager_of(server, &p[6])];
    let unset = cycle.iter().filter(|m| m.is_none()).count();
    assert!(unset >= 1, "{cycle:?}");

    // The next pass completes the cycle, and only that.
    let doc = sync(dir.path(), server);
    assert_eq!(updates(&doc).len(), unset, "{doc}");
    assert_eq!(manager_of(server, &p[5]), Some(id_of(server, &p[6])));
    assert_eq!(manager_of(server, &p[6]), Some(id_of(server, &p[5])));
    let doc = sync(dir.path(), server);
    assert_eq!(
        provider(&doc, "scim")["operations"],
        serde_json::json!([]),
        "{doc}"
    );

    // E2 moves to E4: exactly that update, shown by key in the plan.
    people(dir.path(), &org("E00004", "active"));
    let doc = sync(dir.path(), server);
    assert_eq!(updates(&doc), vec!["E00002".to_string()], "{doc}");
    let change = &provider(&doc, "scim")["operations"][0]["changes"][0];
    assert_eq!(change["field"], "manager", "{doc}");
    assert_eq!(change["old"], "E00003", "{doc}");
    assert_eq!(change["new"], "E00004", "{doc}");
    assert_eq!(manager_of(server, &p[1]), Some(id_of(server, &p[3])));

    // E3 leaves: disabled, and E1 no longer names a manager who left.
    people(dir.path(), &org("E00004", "inactive"));
    let doc = sync(dir.path(), server);
    assert_eq!(updates(&doc), vec!["E00001".to_string()], "{doc}");
    assert_eq!(
        provider(&doc, "scim")["result"]["applied"]["disable"],
        1,
        "{doc}"
    );
    assert_eq!(manager_of(server, &p[0]), None);
    let doc = sync(dir.path(), server);
    assert_eq!(
        provider(&doc, "scim")["operations"],
        serde_json::json!([]),
        "{doc}"
    );
}

#[test]
fn managers_resolve_to_server_ids_by_patch() {
    let server = ScimServer::start();
    org_chart_arrives_intact(&server, "");
}

#[test]
fn managers_resolve_to_server_ids_by_put_one_create_at_a_time() {
    let server = ScimServer::start_with(Some(service_provider_config(false, None, false)));
    org_chart_arrives_intact(&server, "    patch: off\n    bulk: off\n");
}
