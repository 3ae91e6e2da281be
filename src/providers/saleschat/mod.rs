//! saleschat: settings, mapping and limits.
//!
//! saleschat can create (with a password rosterd generates), find by email (partial
//! match, paged), disable, enable and delete by its own user id — and cannot change a
//! name or an email on an existing account: such changes are reported as manual action.

pub mod client;
pub mod requests;

use secrecy::SecretString;
use serde::Deserialize;

use crate::mapping::AttributeMapping;
use crate::config::{parse_vendor, secret, Issue, ParseContext, ProviderConfig};
use crate::plan::Operation;
use crate::providers::Mapping;
use crate::providers::call::{BoxFuture, CallError, JsonAnswers, OpResult, Transport};
use crate::providers::request::{Request, REDACTED};
use crate::providers::{check_len, Capabilities, Provider, ProviderInfo, ProviderType, Record};
use crate::user::User;

#[derive(Debug, Clone)]
pub struct Settings {
    pub token: SecretString,
    pub org_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    org_id: String,
}

impl Settings {
    pub(crate) fn parse(
        mut raw: serde_json::Map<String, serde_json::Value>,
        ctx: &ParseContext<'_>,
        path: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Settings> {
        let token = secret::take_secret(&mut raw, "token", ctx.base_dir, path, true, issues);
        let r: Raw = parse_vendor(raw, path, issues)?;
        let org_id = r.org_id.trim().to_string();
        if org_id.is_empty() || org_id.contains('/') {
            issues.push(Issue::new(
                secret::join(path, "org_id"),
                format!("{:?} is not an organisation id", r.org_id),
            ));
            return None;
        }
        Some(Settings {
            token: token?,
            org_id,
        })
    }
}

/// The fields a mapping may set (`attributes:`); the email is the account's identity.
pub const SETTABLE: &[&str] = &["first_name", "last_name"];

pub struct Saleschat {
    info: ProviderInfo,
    mapping: AttributeMapping,
    org_id: String,
    token: SecretString,
}

impl Saleschat {
    pub fn new(config: &ProviderConfig, settings: Settings) -> Self {
        Saleschat {
            info: ProviderInfo {
                name: config.name.clone(),
                provider_type: ProviderType::Saleschat,
                capabilities: capabilities(),
            },
            mapping: config.mapping.clone(),
            org_id: settings.org_id,
            token: settings.token,
        }
    }
}

fn capabilities() -> Capabilities {
    Capabilities {
        create: true,
        batch_create: None,
        // No update call: names and email cannot be changed by the API.
        updatable: &[],
        disable: true,
        enable: true,
        delete: true,
        email_field: "email",
        lookup: true,
        list: true,
    }
}

/// Maps a user to saleschat's `CreateUserReqDto` fields (the password is generated at
/// send time and is not part of the record).
pub fn map_user(user: &User) -> Result<Record, String> {
    map_with(user, &AttributeMapping::default())
}

/// [`map_user`] with the provider's attribute mapping over the built-in rules; the
/// limits apply to the mapped values.
pub fn map_with(user: &User, mapping: &AttributeMapping) -> Result<Record, String> {
    let v = ProviderType::Saleschat;
    check_len(v, "email", &user.email, 1, 319)?;
    let record = Record::new()
        .with("email", Some(user.email.clone()))
        .with("first_name", Some(user.first_name.clone()))
        .with("last_name", Some(user.last_name.clone()));
    let record = mapping.apply(user, record)?;
    check_len(v, "first_name", record.get("first_name").unwrap_or_default(), 1, 40)?;
    check_len(v, "last_name", record.get("last_name").unwrap_or_default(), 1, 40)?;
    Ok(record)
}

impl Mapping for Saleschat {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn map_user(&self, user: &User) -> Result<Record, String> {
        map_with(user, &self.mapping)
    }
}

impl Provider for Saleschat {
    fn requests(&self, ops: &[Operation]) -> Vec<Request> {
        requests::build(ops, &self.org_id)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("Authorization", format!("Bearer {REDACTED}"))]
    }

    fn auth_headers(&self) -> Vec<(&'static str, SecretString)> {
        use secrecy::ExposeSecret;
        let bearer = format!("Bearer {}", self.token.expose_secret());
        vec![("Authorization", SecretString::from(bearer))]
    }

    /// `ErrorRespDto {error_code, error_message, error_description, payload}`.
    fn error_message(&self, body: &serde_json::Value) -> Option<String> {
        let text = |k: &str| {
            body.get(k)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        match (text("error_message"), text("error_description")) {
            (Some(m), Some(d)) if m != d => Some(format!("{m}: {d}")),
            (Some(m), _) => Some(m.to_string()),
            (None, d) => d.map(str::to_string),
        }
    }

    fn healthcheck(&self) -> Result<Vec<Request>, &'static str> {
        Ok(vec![requests::healthcheck(&self.org_id)])
    }

    fn apply<'a>(
        &'a self,
        transport: &'a dyn Transport,
        ops: &'a [&'a Operation],
    ) -> BoxFuture<'a, Vec<OpResult>> {
        Box::pin(async move { client::apply(&JsonAnswers(transport), ops, &self.org_id).await })
    }

    fn list_accounts<'a>(
        &'a self,
        transport: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<crate::providers::VendorAccount>, CallError>> {
        Box::pin(async move { client::list_all(&JsonAnswers(transport), &self.org_id).await })
    }

    /// By email, as a create's adoption finds it; the answer does not say whether
    /// the member is disabled.
    fn lookup<'a>(
        &'a self,
        transport: &'a dyn Transport,
        op: &'a Operation,
    ) -> BoxFuture<'a, Result<Option<crate::providers::Found>, CallError>> {
        Box::pin(async move {
            let id =
                client::find_by_email(&JsonAnswers(transport), op, &op.email, &self.org_id).await?;
            Ok(id.map(|id| crate::providers::Found {
                vendor_id: Some(id),
                active: None,
            }))
        })
    }
}

#[cfg(test)]
mod client_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Attributes;

    #[test]
    fn names_are_limited_to_forty_and_no_change_is_updatable() {
        let mut u = User {
            external_id: "E1".into(),
            email: "a@b.co".into(),
            first_name: "A".repeat(41),
            last_name: "B".into(),
            phone: None,
            status_active: true,
            start_date: None,
            termination_date: None,
            attributes: Attributes::default(),
        };
        assert!(map_user(&u)
            .err()
            .unwrap_or_default()
            .contains("first_name is 41 characters"));
        u.first_name = "A".into();
        let old = map_user(&u).unwrap().to_stored();
        u.last_name = "C".into();
        let p = Saleschat {
            info: ProviderInfo {
                name: "sc".into(),
                provider_type: ProviderType::Saleschat,
                capabilities: capabilities(),
            },
            mapping: Default::default(),
            org_id: "org".into(),
            token: SecretString::from("t".to_string()),
        };
        let err = p
            .check_update(&old, &map_user(&u).unwrap())
            .err()
            .unwrap_or_default();
        assert!(err.contains("cannot change last_name"), "{err}");
        // Found by the response fuzzer: a blank message was shown as saleschat's.
        let body = serde_json::json!({"error_message": " ", "error_description": "Invalid org"});
        assert_eq!(p.error_message(&body).as_deref(), Some("Invalid org"));
        let blank = serde_json::json!({"error_message": "  "});
        assert_eq!(p.error_message(&blank), None);
    }
}
