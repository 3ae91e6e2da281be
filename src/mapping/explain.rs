//! `sync --dry-run --explain KEY`: how one user's vendor fields were derived, per
//! provider — each field with its template (or "built in") and the value it produced,
//! or why the user is rejected. Reads the source, sends nothing, writes nothing.

use std::fmt::Write as _;

use crate::config::{Config, ProviderConfig};
use crate::providers;
use crate::user::User;

/// The explanation for the user whose key (or email, case-insensitively) is `key`;
/// `Err` when the source cannot be read or holds no such user.
pub async fn explain(
    config: &Config,
    selected: &[&ProviderConfig],
    key: &str,
) -> Result<String, String> {
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
    let mut out = String::new();
    if !unknown.is_empty() {
        return Err(format!(
            "the config names attributes the source does not have:\n  - {}",
            unknown.join("\n  - ")
        ));
    }
    let _ = writeln!(out, "{} <{}>", user.external_id, user.email);
    for p in selected {
        describe(&mut out, p, user);
    }
    Ok(out)
}

/// One provider's part: scope, then every field of the record.
fn describe(out: &mut String, p: &ProviderConfig, user: &User) {
    let _ = writeln!(out, "\n{} ({}):", p.name, p.kind());
    if !p.scope.matches(user) {
        let _ = writeln!(out, "  out of scope: not planned for this provider");
        return;
    }
    let adapter = providers::build(p);
    let derived = p.mapping.explain(user);
    let template = |field: &str| derived.iter().find(|d| d.field == field);
    match adapter.map_user(user) {
        Ok(record) => {
            let width = record.fields().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, value) in record.fields() {
                let shown = value.map_or("(empty)".to_string(), |v| format!("{v:?}"));
                let how = template(name)
                    .map_or("built in".to_string(), |d| format!("from {}", d.template));
                let _ = writeln!(out, "  {name:<width$}  {shown}  ({how})");
            }
        }
        Err(reason) => {
            for d in &derived {
                let shown = match &d.value {
                    Ok(Some(v)) => format!("{v:?}"),
                    Ok(None) => "(empty)".into(),
                    Err(e) => format!("error: {e}"),
                };
                let _ = writeln!(out, "  {}  {shown}  (from {})", d.field, d.template);
            }
            let _ = writeln!(out, "  rejected: {reason}");
        }
    }
    if let (Some(groups), Some(template)) = (p.mapping.groups(user), p.mapping.groups_template()) {
        let shown = match groups {
            Ok(names) if names.is_empty() => "(none)".to_string(),
            Ok(names) => names
                .into_iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "  groups  {shown}  (from {template})");
    }
}
