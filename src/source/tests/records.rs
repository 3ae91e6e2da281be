//! `build_users`: mapping, normalisation, status, dates and duplicates.

use super::*;
use crate::source::build_users;

#[test]
fn mapped_columns_become_canonical_fields_and_the_rest_attributes() {
    let load = build_users(
        [person(
            "record 0",
            "E1",
            "ada@example.com",
            &[
                ("mobile", " +44 20 7946 0001 "),
                ("department", "Engineering"),
                ("title", ""),
            ],
        )],
        &config(),
    );
    assert_eq!(load.records, 1);
    assert!(load.rejected.is_empty(), "{:?}", load.rejected);
    let user = &load.users[0];
    assert_eq!(user.external_id, "E1");
    assert_eq!(user.email, "ada@example.com");
    assert_eq!(user.phone.as_deref(), Some("+44 20 7946 0001"));
    assert!(user.status_active);
    assert_eq!(user.attributes.get("department"), Some("Engineering"));
    assert_eq!(
        user.attributes.get("title"),
        None,
        "empty values are dropped"
    );
    for canonical in [
        "employee_id",
        "work_email",
        "first_name",
        "last_name",
        "mobile",
    ] {
        assert_eq!(
            user.attributes.get(canonical),
            None,
            "{canonical} is not an attribute"
        );
    }
}

#[test]
fn values_are_trimmed_names_collapsed_and_email_lowercased() {
    let load = build_users(
        [raw(
            "record 0",
            &[
                ("employee_id", "  E1 "),
                ("work_email", " Ada.Lovelace@Example.COM "),
                ("first_name", "  Mary \t Ann "),
                ("last_name", " von   Neumann"),
                ("department", "  Research  "),
            ],
        )],
        &config(),
    );
    let user = &load.users[0];
    assert_eq!(user.external_id, "E1");
    assert_eq!(user.email, "ada.lovelace@example.com");
    assert_eq!(user.first_name, "Mary Ann");
    assert_eq!(user.last_name, "von Neumann");
    assert_eq!(user.attributes.get("department"), Some("Research"));
}

#[test]
fn blank_or_absent_phone_is_none() {
    let load = build_users(
        [
            person("record 0", "E1", "a@example.com", &[("mobile", "   ")]),
            person("record 1", "E2", "b@example.com", &[]),
        ],
        &config(),
    );
    assert!(load.users.iter().all(|u| u.phone.is_none()));
}

#[test]
fn missing_external_id_is_rejected_naming_the_column() {
    let load = build_users(
        [
            person("record 0", "  ", "a@example.com", &[]),
            person("record 1", "E2", "b@example.com", &[]),
        ],
        &config(),
    );
    assert_eq!(ids(&load), ["E2"]);
    let r = rejection(&load, "record 0");
    assert_eq!(r.reason, "missing external_id (column `employee_id`)");
    assert_eq!(r.external_id, None);
    assert_eq!(r.email.as_deref(), Some("a@example.com"));
}

#[test]
fn invalid_email_is_rejected_with_the_value_and_keeps_the_key() {
    let load = build_users(
        [person("record 0", "E1", "ada at example.com", &[])],
        &config(),
    );
    assert!(load.users.is_empty());
    let r = rejection(&load, "record 0");
    assert_eq!(r.external_id.as_deref(), Some("E1"));
    // Kept (normalised) to hold the account with that address; never a user.
    assert_eq!(r.email.as_deref(), Some("ada at example.com"));
    assert_eq!(
        r.reason,
        "invalid email `ada at example.com` (column `work_email`)"
    );
}

#[test]
fn every_problem_of_a_record_is_reported() {
    let load = build_users(
        [raw(
            "record 0",
            &[("employee_id", "E1"), ("first_name", " ")],
        )],
        &config(),
    );
    let r = rejection(&load, "record 0");
    assert_eq!(
        r.reason,
        "missing email (column `work_email`); missing first_name (column `first_name`); \
         missing last_name (column `last_name`)"
    );
    assert_eq!(r.external_id.as_deref(), Some("E1"));
}

#[test]
fn users_are_sorted_by_external_id_in_byte_order() {
    let load = build_users(
        [
            person("record 0", "E2", "a@example.com", &[]),
            person("record 1", "E10", "b@example.com", &[]),
            person("record 2", "e1", "c@example.com", &[]),
            person("record 3", "E1", "d@example.com", &[]),
        ],
        &config(),
    );
    assert_eq!(ids(&load), ["E1", "E10", "E2", "e1"]);
}

#[test]
fn duplicate_external_id_rejects_every_record_that_has_it() {
    let load = build_users(
        [
            person("line 2", "E7", "a@example.com", &[]),
            person("line 3", "E8", "b@example.com", &[]),
            person("line 4", "E7", "c@example.com", &[]),
            person("line 5", "E7", "not-an-email", &[]),
        ],
        &config(),
    );
    assert_eq!(ids(&load), ["E8"]);
    assert_eq!(load.records, 4);
    let locations: Vec<&str> = load.rejected.iter().map(|r| r.location.as_str()).collect();
    assert_eq!(locations, ["line 2", "line 4", "line 5"], "in input order");
    assert_eq!(
        rejection(&load, "line 2").reason,
        "duplicate external_id E7 (also line 4, line 5)"
    );
    assert_eq!(
        rejection(&load, "line 4").reason,
        "duplicate external_id E7 (also line 2, line 5)"
    );
    let third = rejection(&load, "line 5");
    assert!(
        third.reason.starts_with("invalid email"),
        "{}",
        third.reason
    );
    assert!(third
        .reason
        .ends_with("duplicate external_id E7 (also line 2, line 4)"));
    assert!(load
        .rejected
        .iter()
        .all(|r| r.external_id.as_deref() == Some("E7")));
}

#[test]
fn an_email_shared_by_different_keys_rejects_all_of_them_whatever_the_case() {
    let load = build_users(
        [
            person("line 2", "E1", "Ada@Example.com", &[]),
            person("line 3", "E2", "b@example.com", &[]),
            person("line 4", "E3", "ada@example.COM ", &[]),
        ],
        &config(),
    );
    assert_eq!(ids(&load), ["E2"]);
    let first = rejection(&load, "line 2");
    assert_eq!(
        first.reason,
        "duplicate email ada@example.com (also line 4)"
    );
    assert_eq!(first.email.as_deref(), Some("ada@example.com"));
    assert_eq!(first.external_id.as_deref(), Some("E1"));
    assert_eq!(
        rejection(&load, "line 4").reason,
        "duplicate email ada@example.com (also line 2)"
    );
}

#[test]
fn a_repeated_record_is_reported_as_a_duplicate_key_only() {
    let load = build_users(
        [
            person("line 2", "E1", "a@example.com", &[]),
            person("line 3", "E1", "a@example.com", &[]),
        ],
        &config(),
    );
    assert!(load.users.is_empty());
    assert_eq!(
        rejection(&load, "line 2").reason,
        "duplicate external_id E1 (also line 3)"
    );
}

#[test]
fn a_large_duplicate_group_lists_only_a_few_locations() {
    let records: Vec<RawRecord> = (0..8)
        .map(|i| {
            person(
                &format!("record {i}"),
                "E1",
                &format!("u{i}@example.com"),
                &[],
            )
        })
        .collect();
    let load = build_users(records, &config());
    assert_eq!(load.rejected.len(), 8);
    assert_eq!(
        rejection(&load, "record 0").reason,
        "duplicate external_id E1 (also record 1, record 2, record 3, record 4, record 5 and 2 more)"
    );
}

#[test]
fn without_a_status_field_every_user_is_active() {
    let load = build_users(
        [person(
            "record 0",
            "E1",
            "a@example.com",
            &[("status", "Terminated")],
        )],
        &config(),
    );
    assert!(load.users[0].status_active);
    assert_eq!(load.users[0].attributes.get("status"), Some("Terminated"));
}

#[test]
fn status_is_active_for_configured_values_compared_case_insensitively() {
    let statuses = ["Active", " ACTIVE ", "leave", "Terminated", "Activated"];
    let records: Vec<RawRecord> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            person(
                &format!("record {i}"),
                &format!("E{i}"),
                &format!("u{i}@example.com"),
                &[("status", s)],
            )
        })
        .collect();
    let load = build_users(records, &config_with_status());
    let active: Vec<bool> = load.users.iter().map(|u| u.status_active).collect();
    assert_eq!(active, [true, true, true, false, false]);
    assert!(load
        .users
        .iter()
        .all(|u| u.attributes.get("status").is_none()));
}

#[test]
fn missing_status_is_a_rejection_never_a_silent_inactive() {
    let load = build_users(
        [
            person("record 0", "E1", "a@example.com", &[("status", "  ")]),
            person("record 1", "E2", "b@example.com", &[]),
        ],
        &config_with_status(),
    );
    assert!(load.users.is_empty());
    for location in ["record 0", "record 1"] {
        let r = rejection(&load, location);
        assert_eq!(r.reason, "missing status (column `status`)");
        assert!(r.external_id.is_some());
    }
}

#[test]
fn start_and_termination_dates_are_parsed_and_blank_is_none() {
    let load = build_users(
        [
            person(
                "record 0",
                "E1",
                "a@example.com",
                &[
                    ("status", "Active"),
                    ("start_date", "2019-03-04"),
                    ("termination_date", "2099-12-31"),
                ],
            ),
            person(
                "record 1",
                "E2",
                "b@example.com",
                &[
                    ("status", "Terminated"),
                    ("start_date", "2030-01-02"),
                    ("termination_date", " 2024-06-30 "),
                ],
            ),
            person(
                "record 2",
                "E3",
                "c@example.com",
                &[("status", "Active"), ("termination_date", " ")],
            ),
        ],
        &config_with_status(),
    );
    assert!(load.rejected.is_empty(), "{:?}", load.rejected);
    let [past_start, future_start, no_dates] = &load.users[..] else {
        panic!("three users expected");
    };
    assert_eq!(past_start.start_date, Some(day("2019-03-04")));
    assert_eq!(past_start.termination_date, Some(day("2099-12-31")));
    assert_eq!(future_start.start_date, Some(day("2030-01-02")));
    assert_eq!(future_start.termination_date, Some(day("2024-06-30")));
    assert!(!future_start.status_active);
    assert_eq!(
        (no_dates.start_date, no_dates.termination_date),
        (None, None)
    );
    assert!(past_start.attributes.get("start_date").is_none());
    assert!(past_start.attributes.get("termination_date").is_none());
}

#[test]
fn dates_follow_the_configured_format() {
    let mut config = config_with_status();
    config.status.date_format = "%d/%m/%Y".into();
    let load = build_users(
        [person(
            "record 0",
            "E1",
            "a@example.com",
            &[("status", "Active"), ("termination_date", "31/12/2026")],
        )],
        &config,
    );
    assert_eq!(load.users[0].termination_date, Some(day("2026-12-31")));
}

#[test]
fn an_unparsable_date_is_rejected_with_the_value_and_the_expected_format() {
    let load = build_users(
        [person(
            "record 0",
            "E1",
            "a@example.com",
            &[("status", "Active"), ("termination_date", "31/12/2026")],
        )],
        &config_with_status(),
    );
    assert!(load.users.is_empty());
    let r = rejection(&load, "record 0");
    assert!(
        r.reason
            .starts_with("unparsable termination date `31/12/2026` (column `termination_date`)"),
        "{}",
        r.reason
    );
    assert!(
        r.reason.ends_with("expected the format `%Y-%m-%d`"),
        "{}",
        r.reason
    );
    assert_eq!(r.external_id.as_deref(), Some("E1"));
}
