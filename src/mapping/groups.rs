//! `groups:` (SCIM providers): each user's group names, from a template on the same
//! compiled environment as `attributes:` (same filters, same `lookups`, same checks).
//!
//! A template that is one `{{ expr }}` is evaluated as an expression: a sequence gives
//! one group per item (`{{ teams | split(";") }}`), a string one group, none or empty
//! no group. Any other template renders to text, which is one group name. Names are
//! trimmed, empty ones dropped, duplicates merged.

use std::collections::{BTreeSet, HashSet};

use minijinja::{Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};

/// The template name the group rule is registered under (no vendor field has it).
pub(super) const TEMPLATE: &str = "__rosterd_groups";
/// The filter that turns the expression's value into names, joined by [`SEP`].
const FILTER: &str = "__rosterd_group_names";
/// Separates the names a sequence gave (a control character no name keeps).
const SEP: char = '\u{1f}';

/// `on_group_empty`: what happens to a group rosterd created once its last member
/// is removed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnGroupEmpty {
    /// The group stays (the default).
    #[default]
    Keep,
    /// A group rosterd created is deleted; an adopted group is never deleted.
    Delete,
}

/// The group rule as compiled.
#[derive(Debug)]
pub(super) struct GroupRule {
    pub source: String,
    pub reads: BTreeSet<String>,
    pub on_empty: OnGroupEmpty,
}

/// The inside of a template that is exactly one `{{ … }}` (whitespace control
/// allowed), when it is.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|t| inner.contains(t));
    (!nested && !inner.trim().is_empty()).then_some(inner)
}

/// Registers the filter the expression form goes through.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter(FILTER, |value: &Value| -> Result<String, Error> {
        names_text(value)
    });
}

fn item_text(value: &Value) -> Result<Option<String>, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the groups template gave an undefined value",
        ));
    }
    if value.is_none() {
        return Ok(None);
    }
    Ok(Some(value.to_string()))
}

fn names_text(value: &Value) -> Result<String, Error> {
    if value.is_undefined() || value.is_none() || value.as_str().is_some() {
        return Ok(item_text(value)?.unwrap_or_default());
    }
    match value.kind() {
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in value.try_iter()? {
                if let Some(text) = item_text(&item)? {
                    out.push(text.replace(SEP, " "));
                }
            }
            Ok(out.join(&SEP.to_string()))
        }
        minijinja::value::ValueKind::Map => Err(Error::new(
            ErrorKind::InvalidOperation,
            "the groups template gave a map; give a name or a list of names",
        )),
        _ => Ok(value.to_string()),
    }
}

/// Compiles `source` into `env` (as [`TEMPLATE`]): `Err` is the syntax error, with
/// line and column in the template as written.
pub(super) fn add(
    env: &mut Environment<'static>,
    source: &str,
    globals: &BTreeSet<String>,
) -> Result<BTreeSet<String>, String> {
    // The text as written is checked first, so that an error's line and column are
    // the operator's, not those of the wrapper below.
    let probe = Environment::new();
    if let Err(e) = probe.template_from_str(source) {
        return Err(super::syntax_message(&e, source));
    }
    let compiled = match single_expression(source) {
        Some(expr) => format!("{{{{ ({expr}) | {FILTER} }}}}"),
        None => source.to_string(),
    };
    env.add_template_owned(TEMPLATE, compiled.clone())
        .map_err(|e| super::syntax_message(&e, &compiled))?;
    let template = env
        .get_template(TEMPLATE)
        .map_err(|e| super::syntax_message(&e, &compiled))?;
    let reads: HashSet<String> = template.undeclared_variables(false);
    Ok(reads.into_iter().filter(|v| !globals.contains(v)).collect())
}

/// The group names a render produced.
pub(super) fn names(rendered: &str) -> BTreeSet<String> {
    rendered
        .split(SEP)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_whole_expression_is_an_expression() {
        assert_eq!(single_expression("{{ department }}"), Some(" department "));
        assert_eq!(
            single_expression(" {{- a | split(';') -}} "),
            Some(" a | split(';') ")
        );
        assert_eq!(single_expression("{{ a }}-{{ b }}"), None);
        assert_eq!(single_expression("team {{ a }}"), None);
        assert_eq!(single_expression("{% if a %}{{ a }}{% endif %}"), None);
    }

    #[test]
    fn names_are_trimmed_deduplicated_and_empty_ones_dropped() {
        let got = names(" Sales \u{1f}\u{1f}Ops\u{1f}Sales\u{1f} ");
        assert_eq!(got, ["Ops".to_string(), "Sales".to_string()].into());
        assert!(names("").is_empty());
    }
}
