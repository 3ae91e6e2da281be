//! The defaults reproduce the records of the fixed rules rosterd had before mappings:
//! a config without `attributes` maps every user of every vendor to the same record
//! (and fingerprint) as before, and templates that spell the built-in rules out do too.

use proptest::prelude::*;

use crate::config::Config;
use crate::providers::{self, ProviderType, Record};
use crate::user::{Attributes, User};

const PROVIDERS: &str = r#"
source:
  type: csv
  path: users.csv
providers:
  - name: hesh
    type: hesh
    base_url: https://api.hesh.example
    api_key: ${KEY}
    tenant_id: 3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70
  - name: chat
    type: saleschat
    base_url: https://api.saleschat.example
    token: ${KEY}
    org_id: org-42
  - name: vyte
    type: vyte
    base_url: https://api.vyte.example
    api_key: ${KEY}
  - name: zaia
    type: zaia
    base_url: https://api.zaia.example
    api_key: ${KEY}
    channel_id: 8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d
    tier_id: 0b7c6d5e-4f3a-4b2c-8d1e-0f9a8b7c6d5e
  - name: scim
    type: scim
    base_url: https://app.example/scim/v2
    bearer_token: ${KEY}
"#;

/// The same providers with templates that say what the built-in rules do.
const SPELLED_OUT: &[(&str, &str)] = &[
    ("hesh", "attributes: { first_name: '{{ first_name }}', last_name: '{{ last_name }}', phone: '{{ phone }}' }"),
    ("chat", "attributes: { first_name: '{{ first_name }}', last_name: '{{ last_name }}' }"),
    ("vyte", "attributes: { language: '{{ language }}', timezone: '{{ timezone }}', picture_url: '{{ picture_url }}' }"),
    ("zaia", "attributes: { name: '{{ first_name }} {{ last_name }}', tierId: '0b7c6d5e-4f3a-4b2c-8d1e-0f9a8b7c6d5e' }"),
    ("scim", "attributes: { givenName: '{{ first_name }}', familyName: '{{ last_name }}', phone: '{{ phone }}' }"),
];

fn load(yaml: &str) -> Config {
    let env = |_: &str| Some("k-value".to_string());
    match Config::from_yaml(yaml, std::path::Path::new("/tmp/rosterd.yaml"), &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn spelled_out() -> String {
    let mut out = String::new();
    for line in PROVIDERS.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some((_, attrs)) = SPELLED_OUT
            .iter()
            .find(|(n, _)| line.trim() == format!("- name: {n}"))
        {
            out.push_str(&format!("    {attrs}\n"));
        }
    }
    out
}

/// The fixed rules as they were written before mappings (copied, not called).
fn before(kind: ProviderType, u: &User) -> Result<Record, String> {
    use crate::providers::check_len;
    let some = |s: &str| Some(s.to_string());
    match kind {
        ProviderType::Hesh => {
            check_len(kind, "first_name", &u.first_name, 1, 10)?;
            check_len(kind, "last_name", &u.last_name, 1, 100)?;
            if let Some(p) = &u.phone {
                check_len(kind, "phone", p, 0, 50)?;
            }
            Ok(Record::new()
                .with("external_user_id", some(&u.external_id))
                .with("email", some(&u.email))
                .with("first_name", some(&u.first_name))
                .with("last_name", some(&u.last_name))
                .with("phone", u.phone.clone()))
        }
        ProviderType::Saleschat => {
            check_len(kind, "email", &u.email, 1, 319)?;
            check_len(kind, "first_name", &u.first_name, 1, 40)?;
            check_len(kind, "last_name", &u.last_name, 1, 40)?;
            Ok(Record::new()
                .with("email", some(&u.email))
                .with("first_name", some(&u.first_name))
                .with("last_name", some(&u.last_name)))
        }
        ProviderType::Vyte => {
            let attr = |k: &str| {
                u.attributes
                    .get(k)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            Ok(Record::new()
                .with("extid", some(&u.external_id))
                .with("email", some(&u.email))
                .with("first_name", some(&u.first_name))
                .with("last_name", some(&u.last_name))
                .with("language", attr("language"))
                .with("timezone", attr("timezone"))
                .with("picture_url", attr("picture_url")))
        }
        ProviderType::Zaia => {
            check_len(kind, "externalId", &u.external_id, 3, 250)?;
            let name = format!("{} {}", u.first_name, u.last_name);
            check_len(kind, "name (first and last name)", &name, 3, 50)?;
            Ok(Record::new()
                .with("externalId", some(&u.external_id))
                .with("identifier", some(&u.email))
                .with("name", Some(name))
                .with("externalUserGroupId", None)
                .with("tierId", some("0b7c6d5e-4f3a-4b2c-8d1e-0f9a8b7c6d5e")))
        }
        ProviderType::Scim => {
            if u.email.trim().is_empty() {
                return Err("userName (the email) is empty; SCIM requires it".into());
            }
            Ok(Record::new()
                .with("userName", some(&u.email))
                .with("externalId", some(&u.external_id))
                .with("givenName", some(&u.first_name))
                .with("familyName", some(&u.last_name))
                .with("email", some(&u.email))
                .with("phone", u.phone.clone()))
        }
    }
}

fn arb_user() -> impl Strategy<Value = User> {
    (
        "[A-Z][0-9]{0,5}",
        "[a-z]{1,8}@example\\.com",
        "[A-Za-zé]{1,14}",
        "[A-Za-zë]{1,45}",
        proptest::option::of("\\+[0-9]{3,12}"),
        proptest::option::of(prop_oneof![Just("en"), Just("fr"), Just("")]),
        proptest::option::of(Just("Europe/Paris")),
    )
        .prop_map(|(id, email, first, last, phone, lang, tz)| {
            let mut attrs = Vec::new();
            if let Some(l) = lang {
                attrs.push(("language".to_string(), l.to_string()));
            }
            if let Some(t) = tz {
                attrs.push(("timezone".to_string(), t.to_string()));
            }
            User {
                external_id: id,
                email,
                first_name: first,
                last_name: last,
                phone,
                status_active: true,
                start_date: None,
                termination_date: None,
                attributes: Attributes::from_pairs(attrs),
            }
        })
}

proptest! {
    #[test]
    fn no_mapping_maps_every_vendor_as_before(users in proptest::collection::vec(arb_user(), 1..8)) {
        let plain = load(PROVIDERS);
        let spelled = load(&spelled_out());
        for (p, s) in plain.providers.iter().zip(&spelled.providers) {
            prop_assert!(p.mapping.is_empty());
            prop_assert!(!s.mapping.is_empty());
            let (a, b) = (providers::build(p), providers::build(s));
            for u in &users {
                let want = before(p.kind(), u);
                let got = a.map_user(u);
                prop_assert_eq!(&got, &want, "{} without attributes", p.name);
                prop_assert_eq!(
                    got.as_ref().map(Record::fingerprint).ok(),
                    want.as_ref().map(Record::fingerprint).ok()
                );
                let spelled_out = b.map_user(u);
                match (&spelled_out, &want) {
                    (Ok(x), Ok(y)) => prop_assert_eq!(x.fingerprint(), y.fingerprint(), "{}", s.name),
                    // A spelled-out field says `name`, the built-in one how it is made.
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false, "{}: {:?} vs {:?}", s.name, spelled_out, want),
                }
            }
        }
    }
}
