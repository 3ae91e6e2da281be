//! `sync --dry-run --explain KEY`: how one user's vendor fields were derived, per
//! provider — each field with its template (or "built in") and the value it produced,
//! or why the user is rejected. Reads the source, sends nothing, writes nothing.

use std::fmt::Write as _;

use crate::config::{Config, ProviderConfig};
use crate::providers;
use crate::user::User;

/// `--explain KEY`: one user's fields at each selected provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Explanation {
    pub external_id: String,
    pub email: String,
    pub providers: Vec<ProviderExplanation>,
}

/// One provider's part of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ProviderExplanation {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: providers::ProviderType,
    /// Out of scope: nothing is planned for this user at this provider.
    pub in_scope: bool,
    /// Every field of the record (or, for a rejected user, every mapped field).
    pub fields: Vec<FieldExplanation>,
    /// Why the vendor would refuse this user, when it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// The SCIM groups the user gets (`groups:`), when the provider has that template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsExplanation>,
}

/// The groups of one user at one provider, and the template they come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct GroupsExplanation {
    pub template: String,
    pub names: Vec<String>,
    /// Why the template failed for this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One field: its value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct FieldExplanation {
    pub field: String,
    /// `null`: empty.
    pub value: Option<String>,
    /// The template it came from; `null`: the vendor's built-in rule.
    pub template: Option<String>,
    /// Why its template failed for this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The explanation for the user whose key (or email, case-insensitively) is `key`;
/// `Err` when the source cannot be read or holds no such user.
pub async fn explain(
    config: &Config,
    selected: &[&ProviderConfig],
    key: &str,
) -> Result<Explanation, String> {
    let loaded = crate::source::from_config(&config.source)
        .load()
        .await
        .map_err(|e| e.to_string())?;
    let user = loaded
        .users
        .iter()
        .find(|u| u.external_id == key || crate::providers::same_email(&u.email, key))
        .ok_or_else(|| {
            format!(
                "no valid source user has the key or email {key:?} ({} users read)",
                loaded.users.len()
            )
        })?;
    let unknown = crate::sync::unknown_scope_keys(config, selected, &loaded);
    if !unknown.is_empty() {
        return Err(format!(
            "the config names attributes the source does not have:\n  - {}",
            unknown.join("\n  - ")
        ));
    }
    Ok(Explanation {
        external_id: user.external_id.clone(),
        email: user.email.clone(),
        providers: selected.iter().map(|p| describe(p, user)).collect(),
    })
}

/// One provider's part: scope, then every field of the record.
fn describe(p: &ProviderConfig, user: &User) -> ProviderExplanation {
    let mut part = ProviderExplanation {
        name: p.name.clone(),
        provider_type: p.kind(),
        in_scope: p.scope.matches(user),
        fields: Vec::new(),
        rejected: None,
        groups: None,
    };
    if !part.in_scope {
        return part;
    }
    let adapter = providers::build(p);
    let derived = p.mapping.explain(user);
    let template = |field: &str| {
        derived
            .iter()
            .find(|d| d.field == field)
            .map(|d| d.template.clone())
    };
    match adapter.map_user(user) {
        Ok(record) => {
            part.fields = record
                .fields()
                .map(|(name, value)| FieldExplanation {
                    field: name.to_string(),
                    value: value.map(str::to_string),
                    template: template(name),
                    error: None,
                })
                .collect();
        }
        Err(reason) => {
            part.fields = derived
                .iter()
                .map(|d| FieldExplanation {
                    field: d.field.to_string(),
                    value: d.value.clone().ok().flatten(),
                    template: Some(d.template.clone()),
                    error: d.value.clone().err(),
                })
                .collect();
            part.rejected = Some(reason);
        }
    }
    if let (Some(groups), Some(template)) = (p.mapping.groups(user), p.mapping.groups_template()) {
        let (names, error) = match groups {
            Ok(names) => (names.into_iter().collect(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        part.groups = Some(GroupsExplanation {
            template: template.to_string(),
            names,
            error,
        });
    }
    part
}

impl Explanation {
    /// The text form: per provider, each field with its value and its template (or
    /// "built in").
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} <{}>", self.external_id, self.email);
        for p in &self.providers {
            let _ = writeln!(out, "\n{} ({}):", p.name, p.provider_type);
            if !p.in_scope {
                let _ = writeln!(out, "  out of scope: not planned for this provider");
                continue;
            }
            let width = p.fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
            for f in &p.fields {
                let shown = match (&f.error, &f.value) {
                    (Some(e), _) => format!("error: {e}"),
                    (None, Some(v)) => format!("{v:?}"),
                    (None, None) => "(empty)".to_string(),
                };
                let how = f
                    .template
                    .as_ref()
                    .map_or("built in".to_string(), |t| format!("from {t}"));
                let _ = writeln!(out, "  {:<width$}  {shown}  ({how})", f.field);
            }
            if let Some(g) = &p.groups {
                let shown = match (&g.error, g.names.is_empty()) {
                    (Some(e), _) => format!("error: {e}"),
                    (None, true) => "(none)".to_string(),
                    (None, false) => g
                        .names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let _ = writeln!(out, "  groups  {shown}  (from {})", g.template);
            }
            if let Some(reason) = &p.rejected {
                let _ = writeln!(out, "  rejected: {reason}");
            }
        }
        out
    }
}
