//! Attribute mappings end to end against the fake zaia: the tier derived from the
//! department through a lookup table lands in zaia's state, a lookup miss rejects only
//! that user, a second pass sends nothing, and a mapping change plans exactly the
//! updates it implies — blocked by `safety.max_update_percent` when it rewrites most
//! of the directory. Config mistakes name their key path. Against scim2-server (PATCH
//! and PUT), title and the enterprise department reach the server and converge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use support::fake_server::FakeVendor;
use support::fake_vyte::{FakeVyte, FakeVyteOptions};
use support::fake_zaia::{FakeZaia, FakeZaiaOptions, ZaiaUser};
use support::scim_server::{service_provider_config, ScimServer, ENTERPRISE};
use support::workspace::{provider, Person, Workspace};

const SALES: &str = "5a1e5a1e-0000-4000-8000-000000000001";
const ENG: &str = "e9e9e9e9-0000-4000-8000-000000000002";
const GOLD: &str = "601d601d-0000-4000-8000-000000000003";

/// The zaia entry's mapping: tier by department, everyone in one group by default.
fn mapping(tier_template: &str) -> String {
    format!(
        "    external_user_group_id: {GOLD}\n\
         \x20   attributes:\n\
         \x20     tierId: \"{tier_template}\"\n\
         \x20   lookups:\n\
         \x20     tier_by_department: {{ Sales: {SALES}, Engineering: {ENG} }}\n"
    )
}

/// `users.csv` with a department column: `depts[i]` for person i+1.
fn write_people(ws: &Workspace, depts: &[&str]) -> Vec<Person> {
    let people: Vec<Person> = (1..=depts.len()).map(Person::new).collect();
    let mut csv = String::from("id,email,first,last,phone,status,department\n");
    for (p, d) in people.iter().zip(depts) {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{d}\n",
            p.id, p.email, p.first, p.last, p.phone, p.status
        ));
    }
    std::fs::write(ws.path().join("users.csv"), csv).unwrap();
    people
}

fn held(fake: &FakeZaia, p: &Person) -> ZaiaUser {
    fake.users()
        .into_iter()
        .find(|u| u.external_id.as_deref() == Some(p.id.as_str()))
        .unwrap_or_else(|| panic!("{} not at zaia", p.id))
}

fn set_config(ws: &Workspace, from: &str, to: &str) {
    let path = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert!(yaml.contains(from), "{yaml}");
    std::fs::write(&path, yaml.replace(from, to)).unwrap();
}

#[tokio::test]
async fn zaia_tier_follows_department_and_a_lookup_miss_rejects_only_that_user() {
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let ws = Workspace::zaia(
        &fake.base_url(),
        fake.channel_id(),
        fake.api_key(),
        &mapping("{{ department | lookup('tier_by_department') }}"),
    );
    let people = write_people(&ws, &["Sales", "Engineering", "Legal", "Sales"]);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let zaia = provider(&doc, "zaia");
    assert_eq!(zaia["result"]["applied"]["create"], 3, "{zaia}");
    let rejected = zaia["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{zaia}");
    assert_eq!(rejected[0]["external_id"], people[2].id);
    assert_eq!(
        rejected[0]["reason"],
        "attributes.tierId: lookup tier_by_department has no entry for \"Legal\""
    );
    for (p, tier) in [(&people[0], SALES), (&people[1], ENG), (&people[3], SALES)] {
        let u = held(&fake, p);
        assert_eq!(u.tier_id.as_deref(), Some(tier), "{}", p.id);
        assert_eq!(u.external_user_group_id.as_deref(), Some(GOLD));
        assert_eq!(u.name, Some(format!("{} {}", p.first, p.last)));
    }
    assert_eq!(fake.users().len(), 3, "Legal is not at zaia");

    // With a default, the miss is a value: Legal gets the fallback tier.
    set_config(
        &ws,
        "lookup('tier_by_department') }}",
        &format!("lookup('tier_by_department') | default('{GOLD}') }}}}"),
    );
    let before = fake.requests().len();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "zaia")["result"]["applied"]["create"], 1);
    assert_eq!(held(&fake, &people[2]).tier_id.as_deref(), Some(GOLD));
    let writes = fake.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(
        writes, 1,
        "only Legal's create: the others' records did not change"
    );

    // Converged: a third pass sends nothing.
    let before = fake.requests().len();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert!(
        fake.requests()[before..].iter().all(|r| r.method == "GET"),
        "{doc}"
    );
}

#[tokio::test]
async fn a_mapping_change_plans_its_updates_and_a_mass_rewrite_is_blocked() {
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let ws = Workspace::zaia(
        &fake.base_url(),
        fake.channel_id(),
        fake.api_key(),
        &mapping("{{ department | lookup('tier_by_department') }}"),
    );
    let mut depts = vec!["Sales"; 8];
    depts.extend(vec!["Engineering"; 12]);
    let people = write_people(&ws, &depts);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "zaia")["result"]["applied"]["create"], 20);

    // Engineering's tier moves: exactly its 12 accounts are updated (12 of 20, 60%).
    set_config(
        &ws,
        &format!("Engineering: {ENG}"),
        &format!("Engineering: {GOLD}"),
    );
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run", "--format", "json"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let zaia = provider(&doc, "zaia");
    assert_eq!(zaia["summary"]["update"], 12, "{zaia}");
    let blocked = zaia["blocked"].as_str().unwrap();
    assert!(
        blocked.contains("update 12 of the 20") && blocked.contains("safety.max_update_percent"),
        "{blocked}"
    );
    // A real pass is blocked too: nothing written.
    let before = fake.requests().len();
    let (code, doc) = ws.sync();
    assert_eq!(code, 3, "{doc}");
    assert!(fake.requests()[before..].iter().all(|r| r.method == "GET"));
    assert_eq!(held(&fake, &people[19]).tier_id.as_deref(), Some(ENG));

    // Allowed once the limit says so: the 12 updates land, the Sales 8 are untouched.
    set_config(
        &ws,
        "min_source_users: 1 }",
        "min_source_users: 1, max_update_percent: 75 }",
    );
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "zaia")["result"]["applied"]["update"], 12);
    for (i, p) in people.iter().enumerate() {
        let want = if i < 8 { SALES } else { GOLD };
        assert_eq!(held(&fake, p).tier_id.as_deref(), Some(want), "{}", p.id);
    }
}

#[test]
fn mapping_mistakes_name_their_key_path() {
    let ws = Workspace::zaia(
        "http://127.0.0.1:9",
        "8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "k-secret",
        "    attributes:\n      tierId: \"{{ department | lookup(\"\n      tier: x\n",
    );
    write_people(&ws, &["Sales"]);
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run"]);
    assert_ne!(code, 0);
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains("providers[0].attributes.tierId: line 1, column 23: unexpected end of input"),
        "{out}"
    );
    assert!(
        out.contains("providers[0].attributes.tier: \"tier\" is not a field")
            && out.contains("did you mean \"tierId\"?"),
        "{out}"
    );

    // A template reading a column the source lacks is caught before planning.
    let ws = Workspace::zaia(
        "http://127.0.0.1:9",
        "8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "k-secret",
        &mapping("{{ departmnt | lookup('tier_by_department') }}"),
    );
    write_people(&ws, &["Sales"]);
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run"]);
    assert_ne!(code, 0);
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains(
            "providers[0].attributes.tierId: no source record has attribute \"departmnt\"; did you mean \"department\"?"
        ),
        "{out}"
    );
}

/// A SCIM provider at `server` with a mapping of title and enterprise fields; the CSV
/// has `title`, `department` and `language` columns. Returns its folder.
fn scim_workspace(server: &ScimServer, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "state: state.db\n\
         source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
         providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{ROSTERD_TEST_SCIM_TOKEN}}\n{extra}\
         \x20   attributes:\n\
         \x20     title: \"{{{{ title }}}}\"\n\
         \x20     department: \"{{{{ department | upper }}}}\"\n\
         \x20     employeeNumber: \"{{{{ external_id | replace('E', '') }}}}\"\n\
         \x20     preferredLanguage: \"{{{{ language | default('en', true) }}}}\"\n",
        server.base_url()
    );
    std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
    dir
}

fn scim_people(dir: &std::path::Path, rows: &[(&Person, &str, &str)]) {
    let mut csv = String::from("id,email,first,last,phone,status,title,department,language\n");
    for (p, title, dept) in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},active,{title},{dept},\n",
            p.id, p.email, p.first, p.last, p.phone
        ));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
}

fn scim_title_and_department_converge(server: &ScimServer, extra: &str) {
    let people: Vec<Person> = (1..=3).map(Person::new).collect();
    let dir = scim_workspace(server, extra);
    scim_people(
        dir.path(),
        &[
            (&people[0], "Engineer", "r&d"),
            (&people[1], "Buyer", "Sales"),
            (&people[2], "", "Sales"),
        ],
    );
    let (code, doc) = server.sync_json(dir.path());
    assert_eq!(code, 0, "{doc}");
    let u = server.user(&people[0].email).unwrap();
    assert_eq!(u["title"], "Engineer", "{u}");
    assert_eq!(u[ENTERPRISE]["department"], "R&D", "{u}");
    assert_eq!(u[ENTERPRISE]["employeeNumber"], "00001", "{u}");
    assert_eq!(u["preferredLanguage"], "en", "{u}");
    let none = server.user(&people[2].email).unwrap();
    assert!(
        none.get("title").is_none_or(serde_json::Value::is_null),
        "{none}"
    );

    // One title changes, one is cleared: exactly those two are updated.
    scim_people(
        dir.path(),
        &[
            (&people[0], "Staff Engineer", "r&d"),
            (&people[1], "", "Sales"),
            (&people[2], "", "Sales"),
        ],
    );
    let (code, doc) = server.sync_json(dir.path());
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "scim")["result"]["applied"]["update"],
        2,
        "{doc}"
    );
    let u = server.user(&people[0].email).unwrap();
    assert_eq!(u["title"], "Staff Engineer");
    assert_eq!(u[ENTERPRISE]["department"], "R&D", "kept: {u}");
    let cleared = server.user(&people[1].email).unwrap();
    assert!(
        cleared.get("title").is_none_or(serde_json::Value::is_null),
        "{cleared}"
    );
    assert_eq!(cleared[ENTERPRISE]["department"], "SALES");

    // Converged: nothing planned.
    let (code, doc) = server.sync_json(dir.path());
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "scim")["operations"],
        serde_json::json!([]),
        "{doc}"
    );
}

#[test]
fn scim_title_and_enterprise_department_reach_scim2_server_by_patch() {
    let server = ScimServer::start();
    scim_title_and_department_converge(&server, "");
}

#[test]
fn scim_title_and_enterprise_department_reach_scim2_server_by_put() {
    let server = ScimServer::start_with(Some(service_provider_config(false, None, false)));
    scim_title_and_department_converge(&server, "    patch: off\n    bulk: off\n");
}

#[test]
fn explain_shows_each_field_its_template_and_value_or_the_rejection() {
    let ws = Workspace::zaia(
        "http://127.0.0.1:9",
        "8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "k-secret",
        &mapping("{{ department | lookup('tier_by_department') }}"),
    );
    let people = write_people(&ws, &["Sales", "Legal"]);
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run", "--explain", &people[0].id]);
    assert_eq!(code, 0, "{stderr}");
    let want = format!(
        "E00001 <user1@corp.example>\n\n\
         zaia (zaia):\n\
         \x20 externalId           \"E00001\"  (built in)\n\
         \x20 identifier           \"user1@corp.example\"  (built in)\n\
         \x20 name                 \"Fn1 Last1\"  (built in)\n\
         \x20 externalUserGroupId  \"{GOLD}\"  (built in)\n\
         \x20 tierId               \"{SALES}\"  (from {{{{ department | lookup('tier_by_department') }}}})\n"
    );
    assert_eq!(stdout, want);
    // The same as JSON: each field with its value and template (null: built in).
    let (code, stdout, stderr) = ws.run(&[
        "sync",
        "--dry-run",
        "--explain",
        &people[0].id,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let fields = &doc["providers"][0]["fields"];
    assert_eq!(doc["external_id"], "E00001");
    assert_eq!(
        fields[0],
        serde_json::json!({"field": "externalId", "value": "E00001", "template": null})
    );
    assert_eq!(
        fields[4],
        serde_json::json!({"field": "tierId", "value": SALES, "template": "{{ department | lookup('tier_by_department') }}"})
    );
    let (_, stdout, _) = ws.run(&[
        "sync",
        "--dry-run",
        "--explain",
        "E00002",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        doc["providers"][0]["rejected"]
            .as_str()
            .unwrap()
            .contains("\"Legal\""),
        "{doc}"
    );
    assert!(
        doc["providers"][0]["fields"][0]["error"].as_str().is_some(),
        "{doc}"
    );

    // By email, a rejected user: the template and the reason.
    let (code, stdout, stderr) = ws.run(&["sync", "--dry-run", "--explain", "USER2@corp.example"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "  tierId  error: attributes.tierId: lookup tier_by_department has no entry for \"Legal\"  (from {{ department | lookup('tier_by_department') }})\n  rejected: attributes.tierId: lookup tier_by_department has no entry for \"Legal\"\n"
        ),
        "{stdout}"
    );

    let (code, _, stderr) = ws.run(&["sync", "--dry-run", "--explain", "E99999"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("no valid source user has the key or email \"E99999\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn vyte_language_timezone_and_picture_come_from_templates() {
    let fake = FakeVyte::start_with(FakeVyteOptions::default());
    let ws = Workspace::vyte(
        &fake.base_url(),
        fake.api_key(),
        "    attributes:\n\
         \x20     language: \"{{ department | lookup('language_by_department') | default('en') }}\"\n\
         \x20     timezone: \"Europe/Paris\"\n\
         \x20     picture_url: \"https://pics.example/{{ external_id | lower }}.png\"\n\
         \x20   lookups:\n\
         \x20     language_by_department: { Ventes: fr }\n",
    );
    let people = write_people(&ws, &["Ventes", "Engineering"]);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let users = fake.users();
    let find = |p: &Person| {
        users
            .iter()
            .find(|u| u.extid.as_deref() == Some(p.id.as_str()))
            .cloned()
            .unwrap_or_else(|| panic!("{} not at vyte: {users:?}", p.id))
    };
    let (a, b) = (find(&people[0]), find(&people[1]));
    assert_eq!(a.language.as_deref(), Some("fr"));
    assert_eq!(b.language.as_deref(), Some("en"));
    assert_eq!(a.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        b.picture_url.as_deref(),
        Some("https://pics.example/e00002.png")
    );
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "vyte")["operations"],
        serde_json::json!([]),
        "{doc}"
    );
}
