//! Fuzzing stand-in for the CSV and JSON sources (proptest, run in CI with the other
//! tests). Whatever the bytes, a parse never panics; it either fails the file with a
//! message that names the file, or accounts for every record: each is a user or a
//! rejection with its location, users are sorted and unique by key and email.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// The invariants of a successful load.
fn check_load(load: &SourceLoad, location_prefix: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(load.records, load.users.len() + load.rejected.len());
    for pair in load.users.windows(2) {
        prop_assert!(
            pair[0].external_id < pair[1].external_id,
            "users not sorted by unique key"
        );
    }
    let mut emails: Vec<&str> = load.users.iter().map(|u| u.email.as_str()).collect();
    emails.sort_unstable();
    let before = emails.len();
    emails.dedup();
    prop_assert_eq!(before, emails.len(), "two users share an email");
    for r in &load.rejected {
        prop_assert!(
            r.location.starts_with(location_prefix),
            "location {:?}",
            r.location
        );
        prop_assert!(!r.reason.trim().is_empty());
    }
    for u in &load.users {
        prop_assert!(!u.external_id.is_empty());
        prop_assert_eq!(u.email.trim(), u.email.as_str());
    }
    Ok(())
}

/// Bytes that look like CSV often enough to get past the header: pieces of a real
/// export mixed with quotes, delimiters, line breaks of every kind and stray bytes.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"employee_id,work_email,first_name,last_name,mobile\n".to_vec()),
        Just(b"E1,a@example.com,Ada,Lovelace,+1\n".to_vec()),
        Just(b"E2,A@EXAMPLE.COM,Bob,Smith,\r\n".to_vec()),
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xFF\xFE".to_vec()),
        Just(b"\xC3".to_vec()),
        Just(vec![0u8]),
        "[ -~]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    // Half the cases start with the real header, so most of them reach the records.
    (any::<bool>(), proptest::collection::vec(piece, 0..40)).prop_map(|(header, pieces)| {
        let mut out = if header {
            b"employee_id,work_email,first_name,last_name,mobile\n".to_vec()
        } else {
            Vec::new()
        };
        out.extend(pieces.concat());
        out
    })
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::String),
        Just(Value::String("a@example.com".into())),
        Just(Value::String("E1".into())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let key = prop_oneof![
            Just("employee_id".to_string()),
            Just("work_email".to_string()),
            Just("first_name".to_string()),
            Just("last_name".to_string()),
            Just("mobile".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn csv_bytes_never_panic_and_every_record_is_accounted_for(bytes in csv_bytes(), semicolon in any::<bool>()) {
        let delimiter = if semicolon { b';' } else { b',' };
        match csv_with(&bytes, delimiter, &config()) {
            Ok(load) => check_load(&load, "line ")?,
            Err(e) => prop_assert!(e.to_string().contains("users.csv"), "{e}"),
        }
    }

    #[test]
    fn json_documents_never_panic_and_every_record_is_accounted_for(doc in json_value(), nested in any::<bool>()) {
        let (text, field) = if nested {
            (serde_json::json!({ "data": { "users": doc } }).to_string(), Some("data.users"))
        } else {
            (doc.to_string(), None)
        };
        match json_with(&text, field) {
            Ok(load) => check_load(&load, "record ")?,
            Err(e) => prop_assert!(e.to_string().contains("users.json"), "{e}"),
        }
    }

    #[test]
    fn json_text_cut_anywhere_is_an_error_naming_the_file_or_a_load(doc in json_value(), cut in any::<usize>()) {
        let text = doc.to_string();
        let mut at = cut % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match json_with(&text[..at], None) {
            Ok(load) => check_load(&load, "record ")?,
            Err(e) => prop_assert!(e.to_string().contains("users.json"), "{e}"),
        }
    }
}
