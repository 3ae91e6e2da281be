//! Leavers who already have accounts (made before rosterd): the four fake vendors
//! each hold an active account for a person the HR export says left ten days ago,
//! whom rosterd has never seen. A dry run lists the lookups and sends nothing; the
//! real pass looks her up where the vendor can (saleschat, zaia, vyte) and disables
//! her, sends hesh (which cannot look up) its disable by key once, and leaves alone a
//! person who left long before `leavers.within_days`. The next pass sends nothing
//! and looks nobody up again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::fake_hesh::{HeshStatus, HeshUser};
use support::fake_saleschat::ScUser;
use support::fake_server::FakeVendor;
use support::fake_vyte::VyteUser;
use support::fake_zaia::ZaiaUser;
use support::four_fakes::FourFakes;
use support::workspace::provider;

const TODAY: &str = "2026-11-24";
const DANA: &str = "dana.novak@corp.example";
const OLD: &str = "olga.old@corp.example";

/// The four fakes, each holding an active account for Dana (who left 10 days ago)
/// and Olga (400 days ago); `extra` goes under every provider.
async fn world(extra: &str) -> FourFakes {
    let w = FourFakes::start(
        "state: state.db\n\
         source:\n  type: csv\n  path: users.csv\n  fields: { external_id: id, email: email, first_name: first, last_name: last }\n  status: { field: status, active_values: [active], termination_date_field: left_on }\n\
         safety: { max_disable_percent: 100, min_source_users: 1 }\n",
        extra,
    )
    .await;
    // emp-0001 stays; emp-0004 (Dana) left 10 days ago and has accounts everywhere;
    // emp-0005 left 20 days ago and has none; emp-0006 (Olga) left 400 days ago and
    // still has accounts.
    std::fs::write(
        w.path().join("users.csv"),
        "id,email,first,last,status,left_on\n\
         emp-0001,ann.active@corp.example,Ann,Active,active,\n\
         emp-0004,dana.novak@corp.example,Dana,Novak,terminated,2026-11-14\n\
         emp-0005,erin.gone@corp.example,Erin,Gone,terminated,2026-11-04\n\
         emp-0006,olga.old@corp.example,Olga,Old,terminated,2025-10-20\n",
    )
    .unwrap();
    w.hesh.seed([
        HeshUser::new(DANA, "Dana", "Novak").with_external_id("emp-0004"),
        HeshUser::new(OLD, "Olga", "Old").with_external_id("emp-0006"),
    ]);
    w.sc.seed([
        ScUser::new(DANA, "Dana", "Novak"),
        ScUser::new(OLD, "Olga", "Old"),
    ]);
    w.vyte.seed([VyteUser::new(DANA, "Dana", "Novak")]);
    w.zaia.seed([
        ZaiaUser::new(Some("emp-0004"), Some(DANA), "Dana Novak"),
        ZaiaUser::new(Some("emp-0006"), Some(OLD), "Olga Old"),
    ]);
    w
}

/// The command on `TODAY`, as JSON.
fn run(w: &FourFakes, args: &[&str]) -> (i32, Value) {
    let mut args = args.to_vec();
    args.extend(["--today", TODAY]);
    w.run_json(&args)
}

fn ops(doc: &Value, vendor: &str) -> Vec<(String, String, String)> {
    provider(doc, vendor)["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["op"].as_str().unwrap().to_string(),
                o["external_id"].as_str().unwrap().to_string(),
                o["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn checks(doc: &Value, vendor: &str) -> Vec<String> {
    provider(doc, vendor)["leaver_checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["external_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn hesh_status(w: &FourFakes, email: &str) -> HeshStatus {
    w.hesh.user_by_email(email).unwrap().status
}

fn zaia_blocked(w: &FourFakes, key: &str) -> bool {
    w.zaia.user_by_external_id(key).unwrap().blocked
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaver_with_an_existing_account_is_disabled_at_every_vendor_and_only_once() {
    let w = world("").await;

    // The dry run: nothing sent; what a real pass would look up is listed.
    let (code, dry) = run(&w, &["sync", "--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(w.requests(), 0, "a dry run contacted a vendor");
    for vendor in ["saleschat", "vyte", "zaia"] {
        assert_eq!(
            checks(&dry, vendor),
            ["emp-0004", "emp-0005"],
            "{vendor}: {dry}"
        );
    }
    // hesh cannot look up: its disables by key are in the plan as they will be sent.
    let hesh_ops = ops(&dry, "hesh");
    assert_eq!(hesh_ops.len(), 3, "{hesh_ops:?}");
    assert_eq!(
        (hesh_ops[1].0.as_str(), hesh_ops[1].1.as_str()),
        ("disable", "emp-0004")
    );
    assert!(
        hesh_ops[1].2.contains("cannot look accounts up"),
        "{}",
        hesh_ops[1].2
    );

    // The real pass.
    let (code, doc) = run(&w, &["sync"]);
    assert_eq!(code, 0, "{doc}");
    // Dana is cut off where a call exists; Olga (left 400 days ago) is left alone.
    assert_eq!(hesh_status(&w, DANA), HeshStatus::Inactive);
    assert_eq!(hesh_status(&w, OLD), HeshStatus::Active);
    assert!(w.sc.user_by_email(DANA).unwrap().disabled);
    assert!(!w.sc.user_by_email(OLD).unwrap().disabled);
    assert!(zaia_blocked(&w, "emp-0004"));
    assert!(!zaia_blocked(&w, "emp-0006"));
    // Ann is created everywhere, as before.
    assert!(w.hesh.user_by_email("ann.active@corp.example").is_some());
    assert!(w.sc.user_by_email("ann.active@corp.example").is_some());
    for vendor in ["saleschat", "zaia"] {
        let planned = ops(&doc, vendor);
        assert!(
            planned.contains(&(
                "disable".into(),
                "emp-0004".into(),
                "leaver with an existing account".into()
            )),
            "{vendor}: {planned:?}"
        );
        assert!(checks(&doc, vendor).is_empty(), "{vendor}: {doc}");
        assert_eq!(provider(&doc, vendor)["result"]["failed"], 0, "{doc}");
    }
    // vyte has no disable call: a person must act, and the plan says so.
    let manual = provider(&doc, "vyte")["manual"].as_array().unwrap().clone();
    assert_eq!(manual.len(), 1, "{manual:?}");
    assert_eq!(manual[0]["external_id"], "emp-0004");
    assert!(manual[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("leaver with an existing account"));
    // hesh: emp-0005 has no account there; the answer is recorded, not a failure.
    let hesh = &provider(&doc, "hesh")["result"];
    assert_eq!(hesh["failed"], 0, "{hesh}");
    assert_eq!(hesh["absent"], 1, "{hesh}");

    // The next pass sends nothing and looks nobody up again (vyte's manual action
    // is looked at again, with the one listing a pass allows).
    w.clear_requests();
    let (code, again) = run(&w, &["sync"]);
    assert_eq!(code, 0, "{again}");
    for vendor in ["hesh", "saleschat", "zaia"] {
        assert!(ops(&again, vendor).is_empty(), "{vendor}: {again}");
    }
    assert_eq!(w.hesh.requests().len(), 0);
    assert_eq!(w.sc.requests().len(), 0, "{:?}", w.sc.requests());
    assert_eq!(w.zaia.requests().len(), 0, "{:?}", w.zaia.requests());
    assert!(w.vyte.writes().is_empty());
    assert!(w.vyte.list_count() <= 1);
    assert_eq!(hesh_status(&w, DANA), HeshStatus::Inactive);

    // Rehired: the adopted, disabled account is re-enabled, not created again.
    let csv = std::fs::read_to_string(w.dir.path().join("users.csv"))
        .unwrap()
        .replace(
            "emp-0004,dana.novak@corp.example,Dana,Novak,terminated,2026-11-14",
            "emp-0004,dana.novak@corp.example,Dana,Novak,active,",
        );
    std::fs::write(w.dir.path().join("users.csv"), csv).unwrap();
    let (code, back) = run(&w, &["sync"]);
    assert_eq!(code, 0, "{back}");
    assert_eq!(hesh_status(&w, DANA), HeshStatus::Active);
    assert!(!w.sc.user_by_email(DANA).unwrap().disabled);
    assert!(!zaia_blocked(&w, "emp-0004"), "{}", provider(&back, "zaia"));
    assert!(w.hesh.duplicates().is_empty() && w.sc.duplicates().is_empty());
    w.zaia.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread")]
async fn leavers_ignore_leaves_existing_accounts_alone_and_report_lists_them() {
    let w = world("    leavers: ignore\n").await;
    let (code, doc) = run(&w, &["sync"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(hesh_status(&w, DANA), HeshStatus::Active);
    assert!(!w.sc.user_by_email(DANA).unwrap().disabled);
    assert!(!zaia_blocked(&w, "emp-0004"));
    assert_eq!(w.hesh.count("PATCH", support::fake_hesh::DISABLE_PATH), 0);

    // report: looked up and listed as manual action, nothing disabled. hesh cannot
    // look up, so report is refused there by the config check.
    let w = world("").await;
    let path = w.dir.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "    channel_id:",
        "    leavers: { action: report, within_days: 30 }\n    channel_id:",
    );
    std::fs::write(&path, yaml).unwrap();
    let (code, doc) = run(&w, &["sync", "--provider", "zaia"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!zaia_blocked(&w, "emp-0004"));
    let manual = provider(&doc, "zaia")["manual"].as_array().unwrap().clone();
    assert_eq!(manual.len(), 1, "{manual:?}");
    assert!(manual[0]["reason"]
        .as_str()
        .unwrap()
        .contains("leavers: report"));

    let yaml = std::fs::read_to_string(&path).unwrap().replacen(
        "    tenant_id:",
        "    leavers: report\n    tenant_id:",
        1,
    );
    std::fs::write(&path, yaml).unwrap();
    let out = w.command(&["check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("providers[0].leavers") && stderr.contains("cannot look accounts up"),
        "{stderr}"
    );
}

/// Against the real SCIM server (scim2-server), with filtering and without (then the
/// one `/Users` listing of the pass is searched): the leaver's account, made before
/// rosterd under another email case, is found and set inactive; one already
/// inactive is recorded and left alone.
#[test]
fn a_leaver_with_an_existing_account_at_a_scim_service_is_set_inactive() {
    use support::scim_server::{service_provider_config_with_filter, user_body, ScimServer};
    for filter in [true, false] {
        let server = ScimServer::start_with(Some(service_provider_config_with_filter(
            true, None, false, filter,
        )));
        server.create_user(user_body(&DANA.to_uppercase(), None, "Dana", "Novak", true));
        server.create_user(user_body(OLD, Some("emp-0006"), "Olga", "Old", true));
        server.create_user(user_body(
            "erin.gone@corp.example",
            None,
            "Erin",
            "Gone",
            false,
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rosterd.yaml"),
            format!(
                "state: state.db\n\
                 source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active], termination_date_field: left_on }}\n\
                 safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
                 providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{T_SCIM}}\n",
                server.base_url()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("users.csv"),
            "id,email,first,last,status,left_on\n\
             emp-0001,ann.active@corp.example,Ann,Active,active,\n\
             emp-0004,dana.novak@corp.example,Dana,Novak,terminated,2026-11-14\n\
             emp-0005,erin.gone@corp.example,Erin,Gone,terminated,2026-11-04\n\
             emp-0006,olga.old@corp.example,Olga,Old,terminated,2025-10-20\n",
        )
        .unwrap();
        let run = || {
            let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
                .arg("-c")
                .arg(dir.path().join("rosterd.yaml"))
                .args(["sync", "--today", TODAY, "--format", "json"])
                .env("T_SCIM", server.token())
                .output()
                .unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
            });
            (out.status.code(), doc)
        };
        let (code, doc) = run();
        assert_eq!(code, Some(0), "filter {filter}: {doc}");
        let dana = server.user(&DANA.to_uppercase()).unwrap();
        assert_eq!(dana["active"], false, "filter {filter}: {doc}");
        assert_eq!(
            server.user(OLD).unwrap()["active"],
            true,
            "left too long ago"
        );
        assert_eq!(server.users().len(), 4, "Ann created, nobody else");
        let planned = ops(&doc, "scim");
        assert!(
            planned.contains(&(
                "disable".into(),
                "emp-0004".into(),
                "leaver with an existing account".into()
            )),
            "{planned:?}"
        );
        // Nothing more to do or to look up.
        let versions: Vec<Value> = server
            .users()
            .iter()
            .map(|u| u["meta"]["version"].clone())
            .collect();
        let (code, again) = run();
        assert_eq!(code, Some(0), "{again}");
        assert!(ops(&again, "scim").is_empty(), "{again}");
        assert!(checks(&again, "scim").is_empty(), "{again}");
        let after: Vec<Value> = server
            .users()
            .iter()
            .map(|u| u["meta"]["version"].clone())
            .collect();
        assert_eq!(versions, after, "the second pass changed something");
    }
}
