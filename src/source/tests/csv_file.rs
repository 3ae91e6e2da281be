//! CSV parsing: header, delimiters, quoting, encodings and broken rows.

use super::*;

const HEADER: &str = "employee_id,work_email,first_name,last_name,mobile,department,title";

#[test]
fn reads_mapped_columns_and_keeps_the_rest_as_attributes() {
    let load = csv(&format!(
        "{HEADER}\n\
         E1002,grace.hopper@example.com,Grace,Hopper,+1 202 555 0102,Engineering,Manager\n\
         E1001,Ada.Lovelace@Example.com,Ada,Lovelace,,Engineering,\n"
    ));
    assert_eq!(load.records, 2);
    assert!(load.rejected.is_empty(), "{:?}", load.rejected);
    assert_eq!(ids(&load), ["E1001", "E1002"]);
    let ada = &load.users[0];
    assert_eq!(ada.email, "ada.lovelace@example.com");
    assert_eq!(ada.phone, None);
    assert_eq!(ada.attributes.get("department"), Some("Engineering"));
    assert_eq!(ada.attributes.get("title"), None);
    let grace = &load.users[1];
    assert_eq!(grace.phone.as_deref(), Some("+1 202 555 0102"));
    assert_eq!(grace.attributes.get("title"), Some("Manager"));
    assert_eq!(grace.attributes.len(), 2);
}

#[test]
fn a_utf8_bom_is_not_part_of_the_first_column_name() {
    let text = format!("\u{feff}{HEADER}\nE1,a@example.com,Ada,Lovelace,,,\n");
    let load = csv(&text);
    assert_eq!(ids(&load), ["E1"]);
}

#[test]
fn crlf_line_endings_are_read_and_lines_counted() {
    let text =
        format!("{HEADER}\r\nE1,a@example.com,Ada,Lovelace,,Sales,\r\nE2,bad,Bob,Smith,,,\r\n");
    let load = csv(&text);
    assert_eq!(ids(&load), ["E1"]);
    assert_eq!(load.users[0].attributes.get("department"), Some("Sales"));
    assert_eq!(
        rejection(&load, "line 3").external_id.as_deref(),
        Some("E2")
    );
}

#[test]
fn quoted_values_may_hold_delimiters_quotes_and_line_breaks() {
    let text = format!(
        "{HEADER}\n\
         E1,a@example.com,Ada,\"Lovelace, Countess\",,\"R&D, \"\"Labs\"\"\",\"Line one\nLine two\"\n\
         E2,not-an-email,Bob,Smith,,,\n"
    );
    let load = csv(&text);
    let ada = &load.users[0];
    assert_eq!(ada.last_name, "Lovelace, Countess");
    assert_eq!(ada.attributes.get("department"), Some("R&D, \"Labs\""));
    assert_eq!(ada.attributes.get("title"), Some("Line one\nLine two"));
    // The record after the two-line record starts on physical line 4.
    assert_eq!(
        rejection(&load, "line 4").external_id.as_deref(),
        Some("E2")
    );
}

#[test]
fn the_configured_delimiter_is_used() {
    let text = "employee_id;work_email;first_name;last_name\nE1;a@example.com;Ada;Lovelace, Jr\n";
    let load = csv_with(text.as_bytes(), b';', &config()).unwrap();
    assert_eq!(load.users[0].last_name, "Lovelace, Jr");
}

#[test]
fn a_header_only_file_has_zero_users_and_is_not_an_error() {
    let load = csv(&format!("{HEADER}\n"));
    assert_eq!(load, SourceLoad::default());
}

#[test]
fn a_zero_byte_file_is_an_error_never_an_empty_user_list() {
    let err = csv_with(b"", b',', &config()).unwrap_err();
    assert!(matches!(err, SourceError::Empty { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("users.csv") && message.contains("empty"),
        "{message}"
    );
}

#[test]
fn a_file_with_only_blank_lines_has_no_header() {
    let err = csv_with(b"\n\n", b',', &config()).unwrap_err();
    assert!(matches!(err, SourceError::NoHeader { .. }), "{err:?}");
}

#[test]
fn a_row_with_too_many_fields_is_rejected_with_its_line_and_the_rest_load() {
    let text = format!(
        "{HEADER}\n\
         E1,a@example.com,Ada,Lovelace,,Sales,\n\
         E2,b@example.com,Bob,Smith, Jr,,Sales,\n\
         E3,c@example.com,Cy,Young,,,\n"
    );
    let load = csv(&text);
    assert_eq!(load.records, 3);
    assert_eq!(ids(&load), ["E1", "E3"]);
    let r = rejection(&load, "line 3");
    assert_eq!(r.reason, "has 8 fields but the header has 7");
    // The key is still reported so that the planner holds E2 rather than disabling it.
    assert_eq!(r.external_id.as_deref(), Some("E2"));
    assert_eq!(r.email.as_deref(), Some("b@example.com"));
}

#[test]
fn a_row_with_too_few_fields_is_rejected() {
    let load = csv(&format!("{HEADER}\nE1,a@example.com\n"));
    assert!(load.users.is_empty());
    assert_eq!(
        rejection(&load, "line 2").reason,
        "has 2 fields but the header has 7"
    );
}

#[test]
fn an_unclosed_quote_fails_the_whole_file_naming_its_line() {
    let text = format!(
        "{HEADER}\n\
         E1,a@example.com,Ada,\"Lovelace,,,\n\
         E2,b@example.com,Bob,Smith,,,\n\
         E3,c@example.com,Cy,Young,,,\n"
    );
    let err = csv_with(text.as_bytes(), b',', &config()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("quote"), "{message}");
}

#[test]
fn a_quote_opened_in_the_last_column_swallowing_rows_fails_the_file() {
    // The record keeps its width: the swallowed rows are inside its last field.
    let text = format!(
        "{HEADER}\n\
         E1,a@example.com,Ada,Lovelace,,,\"note\n\
         E2,b@example.com,Bob,Smith,,,\n\
         E3,c@example.com,Cy,Young,,,\n"
    );
    let err = csv_with(text.as_bytes(), b',', &config()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn a_quoted_line_break_in_a_record_of_the_right_width_still_loads() {
    let text = format!(
        "{HEADER}\n\
         E1,a@example.com,Ada,Lovelace,,\"Research,\nDevelopment\",Eng\n\
         E2,b@example.com,Bob,Smith,,,\n"
    );
    let load = csv(&text);
    assert_eq!(ids(&load), ["E1", "E2"]);
}

#[test]
fn a_field_or_record_over_its_limit_fails_the_file_naming_the_key() {
    let limits = crate::config::FileLimits {
        max_field_bytes: 1024,
        max_record_bytes: 4096,
    };
    let mut cfg = config();
    cfg.limits = limits;
    let big = "x".repeat(2000);
    let text = format!("{HEADER}\nE1,a@example.com,{big},Lovelace,,,\n");
    let err = csv_with(text.as_bytes(), b',', &cfg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("source.max_field_bytes") && err.contains("line 2"),
        "{err}"
    );
    let row = format!("E1,a@example.com,{big},{big},{big},,\n");
    let text = format!("{HEADER}\n{row}");
    let err = csv_with(text.as_bytes(), b',', &cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("source.max_record_bytes"), "{err}");
}

#[test]
fn a_row_that_is_not_utf8_is_rejected_with_its_line_and_the_rest_load() {
    let mut text =
        format!("{HEADER}\nE1,a@example.com,Ada,Lovelace,,,\nE2,b@example.com,Ren").into_bytes();
    text.extend_from_slice(b"\xe9e,M\xfcller,,,\n");
    text.extend_from_slice(b"E3,c@example.com,Cy,Young,,,\n");
    let load = csv_with(&text, b',', &config()).unwrap();
    assert_eq!(ids(&load), ["E1", "E3"]);
    let r = rejection(&load, "line 3");
    assert!(
        r.reason
            .starts_with("not valid UTF-8 in column `first_name`, `last_name`"),
        "{}",
        r.reason
    );
    assert_eq!(r.external_id.as_deref(), Some("E2"));
}

#[test]
fn a_header_that_is_not_utf8_fails_the_file() {
    let err = csv_with(b"employee_id,w\xfcrk\nE1,x\n", b',', &config()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SourceError::Csv { .. }), "{err:?}");
    assert!(
        message.contains("line 1") && message.contains("column 2"),
        "{message}"
    );
}

#[test]
fn a_mapped_column_missing_from_the_header_names_the_column_and_the_key() {
    let err = csv_with(
        b"employee_id,email,first_name,last_name\nE1,a@example.com,Ada,Lovelace\n",
        b',',
        &config(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(
        err,
        SourceError::MissingColumn {
            key: "source.fields.email",
            ..
        }
    ));
    assert!(message.contains("`work_email`"), "{message}");
    assert!(message.contains("source.fields.email"), "{message}");
    assert!(
        message.contains("employee_id, email, first_name"),
        "{message}"
    );
}

#[test]
fn a_configured_status_column_missing_from_the_header_fails_the_file() {
    let err = csv_with(
        format!("{HEADER}\n").as_bytes(),
        b',',
        &config_with_status(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::MissingColumn {
                key: "source.status.field",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn an_unmapped_phone_column_may_be_absent() {
    let load = csv("employee_id,work_email,first_name,last_name\nE1,a@example.com,Ada,Lovelace\n");
    assert_eq!(load.users[0].phone, None);
}

#[test]
fn a_column_named_twice_in_the_header_fails_the_file() {
    let err = csv_with(
        b"employee_id,work_email,first_name,last_name,dept,dept\n",
        b',',
        &config(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("`dept` twice"), "{err}");
}

#[test]
fn duplicate_external_ids_are_all_rejected_with_their_lines() {
    let text = format!(
        "{HEADER}\n\
         E7,a@example.com,Ada,Lovelace,,,\n\
         E8,b@example.com,Bob,Smith,,,\n\
         E7,c@example.com,Cy,Young,,,\n"
    );
    let load = csv(&text);
    assert_eq!(ids(&load), ["E8"]);
    assert_eq!(
        rejection(&load, "line 2").reason,
        "duplicate external_id E7 (also line 4)"
    );
    assert_eq!(
        rejection(&load, "line 4").reason,
        "duplicate external_id E7 (also line 2)"
    );
}

#[test]
fn duplicate_emails_differing_in_case_are_all_rejected() {
    let text = format!(
        "{HEADER}\n\
         E1,Ada@Example.com,Ada,Lovelace,,,\n\
         E2,ada@example.com,Ada,King,,,\n"
    );
    let load = csv(&text);
    assert!(load.users.is_empty());
    assert_eq!(
        rejection(&load, "line 3").reason,
        "duplicate email ada@example.com (also line 2)"
    );
}

#[test]
fn status_and_dates_are_read_from_their_columns() {
    let text = "employee_id,work_email,first_name,last_name,status,start_date,termination_date\n\
                E1,a@example.com,Ada,Lovelace,Active,2019-03-04,\n\
                E2,b@example.com,Bob,Smith,Terminated,2016-02-01,2024-06-30\n\
                E3,c@example.com,Cy,Young,Active,2016-02-01,2024-13-01\n";
    let load = csv_with(text.as_bytes(), b',', &config_with_status()).unwrap();
    assert_eq!(ids(&load), ["E1", "E2"]);
    assert!(load.users[0].status_active);
    assert!(!load.users[1].status_active);
    assert_eq!(load.users[1].termination_date, Some(day("2024-06-30")));
    assert!(rejection(&load, "line 4").reason.contains("`2024-13-01`"));
}

/// Hands out one byte per read, so that every line break straddles a chunk boundary.
struct OneByteAtATime<'a>(&'a [u8]);

impl std::io::Read for OneByteAtATime<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Rejection locations, in file order.
fn bad_lines(load: &SourceLoad) -> Vec<&str> {
    load.rejected.iter().map(|r| r.location.as_str()).collect()
}

#[test]
fn lines_are_physical_whatever_the_line_endings_and_blank_lines() {
    let rows = ["E1,bad1,A,B,,,", "E2,bad2,A,B,,,", "", "E3,bad3,A,B,,,"];
    for ending in ["\n", "\r\n", "\r"] {
        let text = format!("{ending}{HEADER}{ending}{}{ending}", rows.join(ending));
        for chunked in [false, true] {
            let load = if chunked {
                super::super::csv::parse_csv(
                    OneByteAtATime(text.as_bytes()),
                    Path::new("users.csv"),
                    b',',
                    &config(),
                )
                .unwrap()
            } else {
                csv(&text)
            };
            assert_eq!(
                bad_lines(&load),
                ["line 3", "line 4", "line 6"],
                "ending {ending:?}, one byte at a time: {chunked}"
            );
        }
    }
}

#[test]
fn a_header_after_blank_lines_is_reported_at_its_own_line() {
    let err = csv_with(b"\r\n\r\nemployee_id,w\xfcrk\n", b',', &config()).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn a_record_that_never_ends_is_refused_after_its_limit_not_buffered_whole() {
    // A 200 MB quoted field on line 2: reading stops a few times the record limit in.
    let (input, read) = Endless::new(
        &format!("{HEADER}\nE1,a@example.com,\"Ada"),
        b'x',
        200 * 1024 * 1024,
    );
    let err = super::super::csv::parse_csv(input, Path::new("users.csv"), b',', &small_limits())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("source.max_record_bytes (4096 bytes)"),
        "{err}"
    );
    assert!(read.get() < 1024 * 1024, "read {} bytes", read.get());
}

#[test]
fn a_header_that_never_ends_is_refused_too() {
    let (input, read) = Endless::new("employee_id,", b'x', 200 * 1024 * 1024);
    let err = super::super::csv::parse_csv(input, Path::new("users.csv"), b',', &small_limits())
        .unwrap_err()
        .to_string();
    assert!(err.contains("source.max_record_bytes"), "{err}");
    assert!(read.get() < 1024 * 1024, "read {} bytes", read.get());
}

#[test]
fn records_under_the_limit_are_read_however_many_there_are() {
    // 3 MB of ordinary rows: the cap is per record, not per file.
    let mut text = format!("{HEADER}\n");
    for i in 0..40_000 {
        text.push_str(&format!(
            "E{i},u{i}@example.com,First,Last,,Engineering,Engineer\n"
        ));
    }
    let load = csv_with(text.as_bytes(), b',', &small_limits()).unwrap();
    assert_eq!(load.users.len(), 40_000);
}
