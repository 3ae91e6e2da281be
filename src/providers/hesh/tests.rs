use super::*;
use crate::user::Attributes;

fn user(first: &str, phone: Option<&str>) -> User {
    User {
        external_id: "E1".into(),
        email: "ada@example.com".into(),
        first_name: first.into(),
        last_name: "Lovelace".into(),
        phone: phone.map(str::to_string),
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::default(),
    }
}

fn hesh() -> Hesh {
    Hesh {
        info: ProviderInfo {
            name: "hesh".into(),
            provider_type: ProviderType::Hesh,
            capabilities: capabilities(100),
        },
        batch_size: 100,
        tenant_id: uuid::Uuid::nil(),
    }
}

#[test]
fn first_name_over_ten_characters_is_rejected_with_the_limit() {
    let err = map_user(&user("Maximilian-Alexander", None))
        .err()
        .unwrap_or_default();
    assert!(err.contains("first_name is 20 characters"), "{err}");
    assert!(err.contains("1 to 10"), "{err}");
    assert!(map_user(&user("Maximilian", None)).is_ok());
}

#[test]
fn email_change_needs_an_unchanged_phone() {
    let h = hesh();
    let old = map_user(&user("Ada", Some("+331"))).unwrap().to_stored();
    let mut u = user("Ada", Some("+331"));
    u.email = "ada.l@example.com".into();
    assert!(h.check_update(&old, &map_user(&u).unwrap()).is_ok());
    u.phone = Some("+332".into());
    assert!(h.check_update(&old, &map_user(&u).unwrap()).is_err());
    let old_no_phone = map_user(&user("Ada", None)).unwrap().to_stored();
    let mut u = user("Ada", None);
    u.email = "ada.l@example.com".into();
    assert!(h
        .check_update(&old_no_phone, &map_user(&u).unwrap())
        .is_err());
}

#[test]
fn name_change_is_updatable() {
    let h = hesh();
    let old = map_user(&user("Ada", None)).unwrap().to_stored();
    assert!(h
        .check_update(&old, &map_user(&user("Augusta", None)).unwrap())
        .is_ok());
}
