use super::*;
use crate::user::Attributes;

fn user(dept: &str) -> User {
    User {
        external_id: "E100".into(),
        email: "zoë.b@example.com".into(),
        first_name: "Zoë".into(),
        last_name: "Brontë".into(),
        phone: None,
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::from_pairs([("department".to_string(), dept.to_string())]),
    }
}

const FIELDS: &[&str] = &["name", "tierId", "externalUserGroupId"];

fn compile(
    attrs: &[(&str, &str)],
    lookups: &[(&str, &[(&str, &str)])],
) -> (AttributeMapping, Vec<Issue>) {
    let raw = RawMapping {
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        lookups: lookups
            .iter()
            .map(|(n, e)| {
                (
                    n.to_string(),
                    e.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect(),
        ..RawMapping::default()
    };
    let mut issues = Vec::new();
    let m = AttributeMapping::compile(raw, FIELDS, "providers[2]", &mut issues);
    (m, issues)
}

#[test]
fn syntax_error_names_key_path_line_and_column() {
    let (_, issues) = compile(&[("tierId", "{{ department | lookup(")], &[]);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "providers[2].attributes.tierId");
    assert_eq!(
        issues[0].message,
        "line 1, column 23: unexpected end of input, expected expression"
    );
    let (_, issues) = compile(&[("name", "ok\n{% if %}")], &[]);
    assert_eq!(
        issues[0].message,
        "line 2, column 7: unexpected end of block"
    );
}

#[test]
fn unknown_vendor_field_suggests_the_close_one() {
    let (_, issues) = compile(&[("tierID", "x")], &[]);
    assert_eq!(issues[0].path, "providers[2].attributes.tierID");
    assert!(
        issues[0].message.contains("did you mean \"tierId\"?"),
        "{}",
        issues[0].message
    );
}

#[test]
fn lookup_hits_misses_and_defaults() {
    let table: &[(&str, &str)] = &[("Sales", "t-sales")];
    let (m, issues) = compile(
        &[("tierId", "{{ department | lookup('tiers') }}")],
        &[("tiers", table)],
    );
    assert!(issues.is_empty(), "{issues:?}");
    let r = m.apply(&user("Sales"), Record::new()).unwrap();
    assert_eq!(r.get("tierId"), Some("t-sales"));
    let err = m.apply(&user("Legal"), Record::new()).unwrap_err();
    assert_eq!(
        err,
        "attributes.tierId: lookup tiers has no entry for \"Legal\""
    );
    let (m, _) = compile(
        &[(
            "tierId",
            "{{ department | lookup('tiers') | default('t-none') }}",
        )],
        &[("tiers", table)],
    );
    let r = m.apply(&user("Legal"), Record::new()).unwrap();
    assert_eq!(r.get("tierId"), Some("t-none"));
}

#[test]
fn filters_render_and_empty_is_none() {
    let (m, issues) = compile(
        &[
            (
                "name",
                "{{ (first_name ~ '.' ~ last_name) | ascii | lower | truncate(7) }}",
            ),
            ("externalUserGroupId", "{{ phone }}"),
            (
                "tierId",
                "{{ email | split('@') | first | upper | replace('.', '_') }}",
            ),
        ],
        &[],
    );
    assert!(issues.is_empty(), "{issues:?}");
    let r = m
        .apply(&user("x"), Record::new().with("name", Some("old".into())))
        .unwrap();
    assert_eq!(r.get("name"), Some("zoe.bro"));
    assert_eq!(r.get("externalUserGroupId"), None);
    assert_eq!(r.get("tierId"), Some("ZOË_B"));
    // The mapped field replaced the built-in one in place.
    assert_eq!(r.fields().next().map(|(n, _)| n), Some("name"));
}

#[test]
fn attribute_reads_leave_out_user_fields() {
    let (m, _) = compile(
        &[(
            "name",
            "{{ first_name }} {{ title | default('') }} {{ depts }}",
        )],
        &[],
    );
    let reads = m.attribute_reads();
    assert_eq!(reads, vec![("name", "depts"), ("name", "title")]);
    // Globals are not attributes: `range` still works.
    let (m, _) = compile(
        &[("name", "{% for i in range(2) %}{{ i }}{% endfor %}")],
        &[],
    );
    assert!(m.attribute_reads().is_empty());
    let r = m.apply(&user("x"), Record::new()).unwrap();
    assert_eq!(r.get("name"), Some("01"));
}

#[test]
fn explain_lists_each_field_with_its_value_or_reason() {
    let table: &[(&str, &str)] = &[("Sales", "t-sales")];
    let (m, _) = compile(
        &[
            ("tierId", "{{ department | lookup('tiers') }}"),
            ("name", "{{ first_name }}"),
        ],
        &[("tiers", table)],
    );
    let d = m.explain(&user("Legal"));
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].field, "name");
    assert_eq!(d[0].value, Ok(Some("Zoë".into())));
    assert!(d[1]
        .value
        .as_ref()
        .is_err_and(|e| e.contains("no entry for \"Legal\"")));
}

#[test]
fn no_mapping_leaves_the_record_as_it_was() {
    let (m, issues) = compile(&[], &[]);
    assert!(issues.is_empty() && m.is_empty());
    let r = Record::new().with("name", Some("A B".into()));
    assert_eq!(m.apply(&user("x"), r.clone()).unwrap(), r);
}

#[test]
fn unknown_attributes_name_the_key_path_and_the_close_column() {
    let (m, _) = compile(
        &[("tierId", "{{ departmnt | lookup('t') | default('') }}")],
        &[],
    );
    let columns: BTreeSet<String> = ["department".to_string(), "title".to_string()].into();
    assert_eq!(
        m.unknown_attributes("providers[2]", &columns),
        vec![
            "providers[2].attributes.tierId: no source record has attribute \"departmnt\"; \
             did you mean \"department\"?"
                .to_string()
        ]
    );
    let columns: BTreeSet<String> = ["departmnt".to_string()].into();
    assert!(m.unknown_attributes("providers[2]", &columns).is_empty());
}

#[test]
fn a_lookup_of_a_missing_table_is_a_config_error() {
    let table: &[(&str, &str)] = &[("Sales", "t")];
    let (_, issues) = compile(
        &[("tierId", "{{ department | lookup(\"tier_by_dept\") }}")],
        &[("tier_by_department", table)],
    );
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "providers[2].attributes.tierId");
    assert_eq!(
        issues[0].message,
        "lookup(\"tier_by_dept\"): no such table under lookups; did you mean \"tier_by_department\"?"
    );
}

#[test]
fn the_builtins_the_readme_names_work() {
    let (m, issues) = compile(
        &[
            ("name", "{{ (first_name ~ ' ' ~ last_name) | title }}"),
            (
                "tierId",
                "{{ 'a;b;c' | split(';') | last }}-{{ ['x', 'y'] | join('+') }}",
            ),
            (
                "externalUserGroupId",
                "{% if department == 'Sales' %}S{% else %}O{% endif %}{{ email | length }}",
            ),
        ],
        &[],
    );
    assert!(issues.is_empty(), "{issues:?}");
    let r = m.apply(&user("Sales"), Record::new()).unwrap();
    assert_eq!(r.get("name"), Some("Zoë Brontë"));
    assert_eq!(r.get("tierId"), Some("c-x+y"));
    assert_eq!(r.get("externalUserGroupId"), Some("S17"));
}
