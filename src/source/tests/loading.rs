//! Loading fixture files through `from_config` and the `Source` trait.

use super::*;
use crate::source::from_config;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/source")
        .join(name)
}

#[tokio::test]
async fn a_csv_file_loads_through_the_source_trait() {
    let mut config = config_with_status();
    config.path = fixture("users.csv");
    let source = from_config(&config);
    assert!(
        source.describe().starts_with("CSV file "),
        "{}",
        source.describe()
    );
    assert!(source.describe().ends_with("users.csv"));

    let load = source.load().await.unwrap();
    assert_eq!(load.records, 5);
    assert_eq!(ids(&load), ["E1001", "E1003", "E1006", "E1010"]);
    let ada = &load.users[0];
    assert_eq!(ada.email, "ada.lovelace@example.com");
    assert_eq!(
        ada.attributes.get("title"),
        Some("Principal Engineer, Compilers")
    );
    assert_eq!(ada.start_date, Some(day("2019-03-04")));
    let john = &load.users[2];
    assert!(!john.status_active);
    assert_eq!(john.termination_date, Some(day("2024-06-30")));
    assert_eq!(load.users[3].start_date, Some(day("2099-01-04")));
    assert_eq!(
        load.rejected,
        [SourceRejection {
            location: "line 6".into(),
            external_id: Some("E1011".into()),
            email: Some("not-an-email".into()),
            reason: "invalid email `not-an-email` (column `work_email`)".into(),
        }]
    );
}

#[tokio::test]
async fn a_json_file_loads_through_the_source_trait() {
    let mut config = config();
    config.format = SourceFormat::Json {
        array_field: Some("data.users".into()),
    };
    config.path = fixture("users.json");
    let source = from_config(&config);
    assert!(
        source.describe().contains("(users at `data.users`)"),
        "{}",
        source.describe()
    );

    let load = source.load().await.unwrap();
    assert_eq!(load.records, 3);
    assert_eq!(ids(&load), ["1001", "1003"]);
    let alan = &load.users[1];
    assert_eq!(
        alan.attributes.get("manager.email"),
        Some("grace.hopper@example.com")
    );
    assert_eq!(alan.attributes.get("groups"), Some(r#"["eng"]"#));
    assert_eq!(
        rejection(&load, "record 2").reason,
        "is a string, not an object"
    );
}

#[tokio::test]
async fn a_missing_file_is_a_read_error_naming_the_path() {
    let mut config = config();
    config.path = fixture("no-such-export.csv");
    let err = from_config(&config).load().await.unwrap_err();
    assert!(matches!(err, SourceError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-export.csv"), "{err}");
}

#[tokio::test]
async fn an_empty_file_on_disk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, b"").unwrap();
    let mut config = config();
    config.path = path;
    let err = from_config(&config).load().await.unwrap_err();
    assert!(matches!(err, SourceError::Empty { .. }), "{err:?}");
}
