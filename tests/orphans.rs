//! `rosterd orphans`: accounts at a vendor that no source person matches and rosterd
//! does not hold. Listed read-only; `--disable --dry-run` shows the plan and sends
//! nothing; `--disable` adopts and disables them (guarded, journaled), after which
//! they are no longer orphans and a sync leaves them alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::Value;
use support::fake_saleschat::ScUser;
use support::fake_server::FakeVendor;
use support::fake_vyte::VyteUser;
use support::fake_zaia::ZaiaUser;
use support::four_fakes::FourFakes;
use support::workspace::provider;

/// The four fakes; saleschat, zaia and vyte hold accounts nobody in the source is.
async fn world(max_disable_percent: u32) -> FourFakes {
    let w = FourFakes::start(
        &format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: {max_disable_percent}, min_source_users: 1 }}\n"
        ),
        "",
    )
    .await;
    std::fs::write(
        w.path().join("users.csv"),
        "id,email,first,last,status\n\
         emp-0001,ann@corp.example,Ann,Able,active\n\
         emp-0002,bob@corp.example,Bob,Baker,active\n\
         emp-0003,cat@corp.example,Cat,Gone,terminated\n",
    )
    .unwrap();
    // Bob exists already (adopted by the first sync); Cat left (a leaver, not an
    // orphan: a source person matches her); the rest nobody knows.
    w.sc.seed([
        ScUser::new("BOB@corp.example", "Bob", "Baker"),
        ScUser::new("orphan.sc@corp.example", "Or", "Phan"),
    ]);
    w.zaia.seed([
        ZaiaUser::new(None, Some("orphan.z@corp.example"), "Or Phan"),
        ZaiaUser::new(Some("old-key"), Some("blocked@corp.example"), "Long Gone").blocked(true),
    ]);
    w.vyte
        .seed([VyteUser::new("orphan.v@corp.example", "Or", "Phan")]);
    w
}

fn orphan_emails(doc: &Value, vendor: &str) -> Vec<String> {
    provider(doc, vendor)["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["email"].as_str().unwrap().to_string())
        .collect()
}

fn disabled_keys(doc: &Value, vendor: &str) -> Vec<String> {
    provider(doc, vendor)["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["op"] == "disable")
        .map(|o| o["email"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_listed_then_disabled_on_request_and_then_left_alone() {
    let w = world(100).await;
    let (code, first) = w.run_json(&["sync"]);
    assert_eq!(code, 0, "{first}");

    let (code, doc) = w.run_json(&["orphans"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(orphan_emails(&doc, "saleschat"), ["orphan.sc@corp.example"]);
    assert_eq!(
        orphan_emails(&doc, "zaia"),
        ["orphan.z@corp.example"],
        "blocked ones are not orphans"
    );
    assert_eq!(orphan_emails(&doc, "vyte"), ["orphan.v@corp.example"]);
    assert!(orphan_emails(&doc, "hesh").is_empty());
    assert!(provider(&doc, "hesh")["note"]
        .as_str()
        .unwrap()
        .contains("no call to list"));
    assert_eq!(
        provider(&doc, "saleschat")["listed"],
        3,
        "Ann, Bob and the orphan"
    );

    // The plan first: nothing sent.
    w.sc.clear_requests();
    w.zaia.clear_requests();
    w.vyte.clear_requests();
    w.hesh.clear_requests();
    let (code, plan) = w.run_json(&["orphans", "--disable", "--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(w.writes(), 0, "a dry run wrote");
    assert_eq!(
        disabled_keys(&plan, "saleschat"),
        ["orphan.sc@corp.example"]
    );
    assert_eq!(disabled_keys(&plan, "zaia"), ["orphan.z@corp.example"]);
    assert!(disabled_keys(&plan, "hesh").is_empty());
    // vyte has no disable call: manual action.
    assert_eq!(
        provider(&plan, "vyte")["manual"].as_array().unwrap().len(),
        1
    );

    let (code, done) = w.run_json(&["orphans", "--disable"]);
    assert_eq!(code, 0, "{done}");
    assert!(
        w.sc.user_by_email("orphan.sc@corp.example")
            .unwrap()
            .disabled
    );
    assert!(!w.sc.user_by_email("BOB@corp.example").unwrap().disabled);
    let zaia_orphan = w
        .zaia
        .users()
        .into_iter()
        .find(|u| u.identifier.as_deref() == Some("orphan.z@corp.example"))
        .unwrap();
    assert!(zaia_orphan.blocked);
    assert_eq!(w.zaia.users().iter().filter(|u| u.blocked).count(), 2);
    // Only the orphans' disables were sent: nobody else was touched.
    assert_eq!(w.sc.writes().len(), 1, "{:?}", w.sc.writes());
    assert_eq!(w.zaia.writes().len(), 1, "{:?}", w.zaia.writes());
    assert!(w.hesh.writes().is_empty() && w.vyte.writes().is_empty());

    // Adopted: no longer orphans, and a sync leaves them disabled and sends nothing.
    let (code, after) = w.run_json(&["orphans"]);
    assert_eq!(code, 0, "{after}");
    assert!(orphan_emails(&after, "saleschat").is_empty(), "{after}");
    assert!(orphan_emails(&after, "zaia").is_empty(), "{after}");
    w.sc.clear_requests();
    w.zaia.clear_requests();
    w.vyte.clear_requests();
    w.hesh.clear_requests();
    let (code, again) = w.run_json(&["sync"]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(w.writes(), 0, "{again}");
    assert!(
        w.sc.user_by_email("orphan.sc@corp.example")
            .unwrap()
            .disabled
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_orphans_is_guarded_like_any_disable() {
    let w = world(10).await;
    let (code, first) = w.run_json(&["sync", "--provider", "saleschat"]);
    assert_eq!(code, 0, "{first}");
    // One orphan beside the two accounts rosterd holds there: 1 of 3 is over 10%.
    let (code, doc) = w.run_json(&["orphans", "--disable", "--provider", "saleschat"]);
    assert_eq!(code, 3, "{doc}");
    let blocked = provider(&doc, "saleschat")["blocked"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(blocked.contains("1 of the 3 account(s)"), "{blocked}");
    assert!(
        !w.sc
            .user_by_email("orphan.sc@corp.example")
            .unwrap()
            .disabled
    );
    // --force applies it, and says so.
    let (code, forced) =
        w.run_json(&["orphans", "--disable", "--provider", "saleschat", "--force"]);
    assert_eq!(code, 0, "{forced}");
    assert!(
        w.sc.user_by_email("orphan.sc@corp.example")
            .unwrap()
            .disabled
    );
}
