//! JSON parsing: document shapes, flattening and broken elements.

use super::*;

#[test]
fn reads_a_top_level_array_of_objects() {
    let load = json(
        r#"[
            {"employee_id": "E2", "work_email": "b@example.com", "first_name": "Bob", "last_name": "Smith"},
            {"employee_id": "E1", "work_email": "A@Example.com", "first_name": "Ada", "last_name": "Lovelace",
             "mobile": "+44 1", "department": "Engineering"}
        ]"#,
    );
    assert_eq!(load.records, 2);
    assert_eq!(ids(&load), ["E1", "E2"]);
    assert_eq!(load.users[0].email, "a@example.com");
    assert_eq!(load.users[0].phone.as_deref(), Some("+44 1"));
    assert_eq!(
        load.users[0].attributes.get("department"),
        Some("Engineering")
    );
}

#[test]
fn reads_the_array_at_a_nested_array_field_and_skips_the_rest() {
    let text = r#"{
        "meta": {"count": 1, "users": "not these"},
        "data": {"next": null, "users": [
            {"employee_id": "E1", "work_email": "a@example.com", "first_name": "Ada", "last_name": "Lovelace"}
        ]}
    }"#;
    let load = json_with(text, Some("data.users")).unwrap();
    assert_eq!(ids(&load), ["E1"]);
}

#[test]
fn a_missing_array_field_names_the_path_that_is_missing() {
    let text = r#"{"data": {"people": []}}"#;
    let err = json_with(text, Some("data.users")).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, SourceError::ArrayFieldNotFound { missing, .. } if missing == "data.users"),
        "{err:?}"
    );
    assert!(
        message.contains("users.json") && message.contains("`data.users`"),
        "{message}"
    );

    let err = json_with(r#"{"users": []}"#, Some("data.users")).unwrap_err();
    assert!(
        matches!(&err, SourceError::ArrayFieldNotFound { missing, .. } if missing == "data"),
        "{err:?}"
    );
}

#[test]
fn an_array_field_that_is_not_an_array_is_an_error() {
    let err = json_with(r#"{"data": {"users": {"E1": {}}}}"#, Some("data.users")).unwrap_err();
    assert!(
        matches!(&err, SourceError::NotAnArray { at: Some(at), found: "an object", .. } if at == "data.users"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`data.users`"), "{err}");
}

#[test]
fn a_top_level_object_without_array_field_says_to_set_it() {
    let err = json_with(r#"{"users": []}"#, None).unwrap_err();
    assert!(
        matches!(err, SourceError::NotAnArray { at: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("source.array_field"), "{err}");
}

#[test]
fn a_non_object_element_is_rejected_with_its_index_and_the_rest_load() {
    let load = json(
        r#"[
            {"employee_id": "E1", "work_email": "a@example.com", "first_name": "Ada", "last_name": "Lovelace"},
            "E2",
            null,
            {"employee_id": "E3", "work_email": "c@example.com", "first_name": "Cy", "last_name": "Young"}
        ]"#,
    );
    assert_eq!(load.records, 4);
    assert_eq!(ids(&load), ["E1", "E3"]);
    assert_eq!(
        rejection(&load, "record 1").reason,
        "is a string, not an object"
    );
    assert_eq!(
        rejection(&load, "record 2").reason,
        "is null, not an object"
    );
}

#[test]
fn numbers_and_booleans_are_stringified_and_null_is_absent() {
    let load = json(
        r#"[{"employee_id": 10042, "work_email": "a@example.com", "first_name": "Ada",
             "last_name": "Lovelace", "mobile": null, "contractor": false, "fte": 0.5, "title": null}]"#,
    );
    let user = &load.users[0];
    assert_eq!(user.external_id, "10042");
    assert_eq!(user.phone, None);
    assert_eq!(user.attributes.get("contractor"), Some("false"));
    assert_eq!(user.attributes.get("fte"), Some("0.5"));
    assert_eq!(user.attributes.get("title"), None);
}

#[test]
fn nested_objects_are_flattened_with_dotted_names_and_arrays_kept_as_json() {
    let mut config = config();
    config.fields.email = "contact.email".into();
    let text = r#"[{"employee_id": "E1", "first_name": "Ada", "last_name": "Lovelace",
                    "contact": {"email": "a@example.com"},
                    "manager": {"email": "boss@example.com", "name": {"first": "Grace"}},
                    "groups": ["eng", "ops"]}]"#;
    let load =
        super::super::json::parse_json(text.as_bytes(), Path::new("users.json"), None, &config)
            .unwrap();
    let user = &load.users[0];
    assert_eq!(user.email, "a@example.com");
    assert_eq!(
        user.attributes.get("manager.email"),
        Some("boss@example.com")
    );
    assert_eq!(user.attributes.get("manager.name.first"), Some("Grace"));
    assert_eq!(user.attributes.get("groups"), Some(r#"["eng","ops"]"#));
    assert_eq!(user.attributes.get("contact.email"), None);
}

#[test]
fn text_that_is_not_json_is_an_error_with_its_line_and_column() {
    let err = json_with("[\n  {\"employee_id\": \"E1\"},\n  {oops}\n]", None).unwrap_err();
    assert!(matches!(err, SourceError::Json { line: 3, .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("users.json") && message.contains("line 3"),
        "{message}"
    );

    let err = json_with("employee_id,email\nE1,a@example.com\n", None).unwrap_err();
    assert!(matches!(err, SourceError::Json { line: 1, .. }), "{err:?}");
}

#[test]
fn trailing_text_after_the_document_is_an_error() {
    let err = json_with("[]\n[]", None).unwrap_err();
    assert!(matches!(err, SourceError::Json { line: 2, .. }), "{err:?}");
}

#[test]
fn an_empty_file_is_an_error_and_an_empty_array_is_zero_users() {
    assert!(matches!(
        json_with("", None),
        Err(SourceError::Empty { .. })
    ));
    assert_eq!(json("[]"), SourceLoad::default());
}

#[test]
fn a_utf8_bom_is_skipped() {
    let load = json("\u{feff}[]");
    assert_eq!(load.records, 0);
}

#[test]
fn json_records_go_through_the_same_validation_and_duplicate_checks() {
    let load = json(
        r#"[
            {"employee_id": "E1", "work_email": "a@example.com", "first_name": "Ada", "last_name": "Lovelace"},
            {"employee_id": "E1", "work_email": "b@example.com", "first_name": "Bob", "last_name": "Smith"},
            {"employee_id": "E3", "work_email": "nope", "first_name": "Cy", "last_name": "Young"}
        ]"#,
    );
    assert!(load.users.is_empty());
    assert_eq!(
        rejection(&load, "record 0").reason,
        "duplicate external_id E1 (also record 1)"
    );
    assert_eq!(
        rejection(&load, "record 2").reason,
        "invalid email `nope` (column `work_email`)"
    );
}

#[test]
fn a_repeated_key_rejects_the_record_and_keeps_its_identity_to_hold() {
    let load = json(
        r#"[
            {"employee_id": "E1", "work_email": "a@example.com", "work_email": "attacker@evil.example",
             "first_name": "Ada", "last_name": "Lovelace"},
            {"employee_id": "E2", "work_email": "b@example.com", "first_name": "Bob", "last_name": "Smith"}
        ]"#,
    );
    assert_eq!(ids(&load), ["E2"]);
    let r = rejection(&load, "record 0");
    assert!(
        r.reason.contains("`work_email` is given more than once"),
        "{}",
        r.reason
    );
    assert_eq!(r.external_id.as_deref(), Some("E1"));
}

#[test]
fn a_numeric_id_is_taken_only_as_an_exact_integer() {
    let load = json(
        r#"[
            {"employee_id": 1001, "work_email": "a@example.com", "first_name": "Ada", "last_name": "Lovelace"},
            {"employee_id": 1e20, "work_email": "b@example.com", "first_name": "Bob", "last_name": "Smith"},
            {"employee_id": 12345678901234567890123, "work_email": "c@example.com", "first_name": "Cy", "last_name": "Young"}
        ]"#,
    );
    assert_eq!(ids(&load), ["1001"]);
    for at in ["record 1", "record 2"] {
        let r = rejection(&load, at);
        assert!(
            r.reason.contains("not an exact integer"),
            "{at}: {}",
            r.reason
        );
        // Its email still ties it to an account, which is held.
        assert!(r.email.is_some(), "{at}");
    }
}

#[test]
fn a_nul_in_a_json_id_rejects_the_record() {
    let load = json(
        r#"[{"employee_id": "E1\u0000", "work_email": "a@example.com", "first_name": "Ada", "last_name": "Lovelace"}]"#,
    );
    assert!(load.users.is_empty());
    assert!(rejection(&load, "record 0")
        .reason
        .contains("control character"));
}

fn json_limited(
    input: impl std::io::Read,
    array_field: Option<&str>,
) -> Result<SourceLoad, SourceError> {
    super::super::json::parse_json(input, Path::new("users.json"), array_field, &small_limits())
}

#[test]
fn an_element_that_never_ends_is_refused_after_its_limit_not_buffered_whole() {
    let (input, read) = Endless::new(
        r#"[{"employee_id": "E1", "work_email": "a@example.com", "first_name": "Ada", "last_name": "L"},
            {"employee_id": "E2", "notes": ""#,
        b'x',
        200 * 1024 * 1024,
    );
    let err = json_limited(input, None).unwrap_err().to_string();
    assert!(
        err.contains("record 1") && err.contains("source.max_record_bytes (4096 bytes)"),
        "{err}"
    );
    assert!(read.get() < 1024 * 1024, "read {} bytes", read.get());
}

#[test]
fn the_limit_counts_only_the_users_array_not_what_surrounds_it() {
    let big = "m".repeat(200_000);
    let text = format!(
        r#"{{"meta": "{big}", "data": {{"users": [{{"employee_id": "E1", "work_email": "a@example.com", "first_name": "Ada", "last_name": "L"}}]}}, "after": "{big}"}}"#
    );
    let load = json_limited(text.as_bytes(), Some("data.users")).unwrap();
    assert_eq!(ids(&load), ["E1"]);
}

#[test]
fn a_value_over_the_field_limit_fails_the_file_naming_the_key() {
    let big = "x".repeat(2000);
    for (record, key) in [
        (
            format!(r#"{{"employee_id": "E1", "notes": "{big}"}}"#),
            "`notes`",
        ),
        (
            format!(r#"{{"employee_id": "E1", "address": {{"street": "{big}"}}}}"#),
            "`address.street`",
        ),
        (
            format!(r#"{{"employee_id": "E1", "roles": ["{big}"]}}"#),
            "`roles`",
        ),
    ] {
        let text = format!(
            r#"[{{"employee_id": "E0", "work_email": "z@example.com", "first_name": "Z", "last_name": "Z"}}, {record}]"#
        );
        let err = json_limited(text.as_bytes(), None).unwrap_err().to_string();
        assert!(
            err.contains("record 1") && err.contains(key) && err.contains("source.max_field_bytes"),
            "{err}"
        );
    }
}
