//! Attribute mappings: per provider, `attributes: { <vendor field>: <template> }` and
//! `lookups: { <name>: { <key>: <value> } }`, compiled once at config load and
//! rendered per user when the provider maps that user.
//!
//! Templates are minijinja over the user's fields (`external_id`, `email`,
//! `first_name`, `last_name`, `phone`) and its source attributes (columns). Besides
//! minijinja's builtins (`lower`, `upper`, `trim`, `replace`, `default`, `split`,
//! `first`, …) there are `truncate(n)`, `ascii` (transliteration, for email local
//! parts) and `lookup("table")`. A lookup that misses gives an undefined value: with
//! `default` the template carries on, printed it rejects the user with the reason.
//!
//! A field with no template keeps the vendor's built-in rule, so a provider without
//! `attributes` produces exactly the records (and fingerprints) it always did.

#[cfg(test)]
mod defaults_tests;
mod explain;
mod filters;
mod groups;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Deserialize;

pub use explain::{explain, Explanation, FieldExplanation, GroupsExplanation, ProviderExplanation};
pub use groups::OnGroupEmpty;

use crate::config::Issue;
use crate::providers::Record;
use crate::user::User;

/// The user's own fields a template may read; every other name is a source attribute.
pub const USER_FIELDS: &[&str] = &["external_id", "email", "first_name", "last_name", "phone"];

/// The `attributes` and `lookups` keys of a provider entry, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    /// `groups:` (SCIM only): each user's group names.
    #[serde(default)]
    pub groups: Option<String>,
    #[serde(default)]
    pub on_group_empty: OnGroupEmpty,
}

/// One vendor field set by a template.
#[derive(Debug)]
struct Field {
    name: &'static str,
    source: String,
    /// Names the template reads from outside (user fields and attributes).
    reads: BTreeSet<String>,
}

struct Compiled {
    env: Environment<'static>,
    fields: Vec<Field>,
    groups: Option<groups::GroupRule>,
}

/// A provider's compiled attribute mapping; empty (the default) maps nothing.
#[derive(Clone, Default)]
pub struct AttributeMapping {
    inner: Option<Arc<Compiled>>,
}

impl std::fmt::Debug for AttributeMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<(&str, &str)> = self.templates().collect();
        f.debug_struct("AttributeMapping")
            .field("fields", &fields)
            .finish()
    }
}

/// What one field of one user came to, for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub field: &'static str,
    pub template: String,
    /// The value (`None`: empty), or why the user is rejected.
    pub value: Result<Option<String>, String>,
}

impl AttributeMapping {
    /// Compiles the mapping of the provider at `path` (`providers[2]`). `settable` is
    /// the vendor's list of fields a user may set. Every problem is pushed with its
    /// key path; the mapping returned holds the fields that compiled.
    pub fn compile(
        raw: RawMapping,
        settable: &'static [&'static str],
        path: &str,
        issues: &mut Vec<Issue>,
    ) -> AttributeMapping {
        if raw.attributes.is_empty() && raw.lookups.is_empty() && raw.groups.is_none() {
            return AttributeMapping::default();
        }
        let lookups: Arc<BTreeMap<String, BTreeMap<String, String>>> = Arc::new(raw.lookups);
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_debug(true);
        // Templates are operator-written, but a runaway loop must not stall a pass.
        env.set_recursion_limit(32);
        filters::register(&mut env, lookups.clone());
        groups::register(&mut env);
        // `range`, `dict`, `namespace`…: read by a template, but not from the user.
        let globals: BTreeSet<String> = env.globals().map(|(n, _)| n.to_string()).collect();
        let mut fields = Vec::new();
        for (name, source) in raw.attributes {
            let at = format!("{path}.attributes.{name}");
            let Some(field) = settable.iter().copied().find(|f| *f == name) else {
                let hint = did_you_mean(&name, settable.iter().copied())
                    .map(|m| format!("; did you mean {m:?}?"))
                    .unwrap_or_default();
                issues.push(Issue::new(
                    at,
                    format!(
                        "{name:?} is not a field this vendor lets a mapping set (settable: {}){hint}",
                        settable.join(", ")
                    ),
                ));
                continue;
            };
            if let Err(e) = env.add_template_owned(field, source.clone()) {
                issues.push(Issue::new(at, syntax_message(&e, &source)));
                continue;
            }
            let reads = match env.get_template(field) {
                Ok(t) => t
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !globals.contains(v))
                    .collect(),
                Err(e) => {
                    issues.push(Issue::new(at, syntax_message(&e, &source)));
                    continue;
                }
            };
            check_tables(&source, &lookups, &at, issues);
            fields.push(Field {
                name: field,
                source,
                reads,
            });
        }
        let groups = raw.groups.and_then(|source| {
            let at = format!("{path}.groups");
            let reads = match groups::add(&mut env, &source, &globals) {
                Ok(reads) => reads,
                Err(message) => {
                    issues.push(Issue::new(at, message));
                    return None;
                }
            };
            check_tables(&source, &lookups, &at, issues);
            Some(groups::GroupRule {
                source,
                reads,
                on_empty: raw.on_group_empty,
            })
        });
        for (table, entries) in lookups.iter() {
            if entries.is_empty() {
                issues.push(Issue::new(
                    format!("{path}.lookups.{table}"),
                    "empty: a lookup table needs at least one entry".into(),
                ));
            }
        }
        AttributeMapping {
            inner: Some(Arc::new(Compiled {
                env,
                fields,
                groups,
            })),
        }
    }

    /// Whether no field is set by a template.
    pub fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|c| c.fields.is_empty())
    }

    /// Whether a template sets vendor field `field`.
    pub fn sets(&self, field: &str) -> bool {
        self.templates().any(|(f, _)| f == field)
    }

    /// `(vendor field, template)` for every mapped field, in name order.
    pub fn templates(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.inner
            .iter()
            .flat_map(|c| c.fields.iter().map(|f| (f.name, f.source.as_str())))
    }

    /// `(vendor field, source attribute)` for every attribute a template reads (the
    /// user's own fields left out): checked against the source's columns at plan time.
    pub fn attribute_reads(&self) -> Vec<(&str, &str)> {
        self.inner
            .iter()
            .flat_map(|c| c.fields.iter())
            .flat_map(|f| {
                f.reads
                    .iter()
                    .filter(|r| !USER_FIELDS.contains(&r.as_str()))
                    .map(move |r| (f.name, r.as_str()))
            })
            .collect()
    }

    /// `(key below the provider, source attribute)` for every attribute a template
    /// reads, `groups:` included: `attributes.tierId`, `groups`.
    fn keyed_reads(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = self
            .attribute_reads()
            .into_iter()
            .map(|(f, r)| (format!("attributes.{f}"), r))
            .collect();
        if let Some(g) = self.inner.as_ref().and_then(|c| c.groups.as_ref()) {
            out.extend(
                g.reads
                    .iter()
                    .filter(|r| !USER_FIELDS.contains(&r.as_str()))
                    .map(|r| ("groups".to_string(), r.as_str())),
            );
        }
        out
    }

    /// Whether `groups:` is set.
    pub fn has_groups(&self) -> bool {
        self.inner.as_ref().is_some_and(|c| c.groups.is_some())
    }

    /// `on_group_empty` (keep when `groups:` is not set).
    pub fn on_group_empty(&self) -> OnGroupEmpty {
        self.inner
            .as_ref()
            .and_then(|c| c.groups.as_ref())
            .map_or(OnGroupEmpty::Keep, |g| g.on_empty)
    }

    /// The `groups:` template as written, when set.
    pub fn groups_template(&self) -> Option<&str> {
        self.inner
            .as_ref()
            .and_then(|c| c.groups.as_ref())
            .map(|g| g.source.as_str())
    }

    /// The group names of `user` (`None`: no `groups:`), or why they cannot be
    /// known (a lookup miss, a template error): that user's memberships are left
    /// as they are.
    pub fn groups(&self, user: &User) -> Option<Result<BTreeSet<String>, String>> {
        let c = self.inner.as_ref()?;
        c.groups.as_ref()?;
        let ctx = context(user, c);
        filters::clear_miss();
        let out = c
            .env
            .get_template(groups::TEMPLATE)
            .and_then(|t| t.render(ctx));
        Some(match out {
            Ok(text) => Ok(groups::names(&text)),
            Err(e) => Err(match filters::take_miss() {
                Some(miss) => format!("groups: {miss}"),
                None => format!("groups: {}", render_message(&e)),
            }),
        })
    }

    /// The attributes templates read that no source record carries, each as
    /// `providers[2].attributes.tierId: no source record has attribute "departmnt";
    /// did you mean "department"?` (`path` is the provider's key path).
    pub fn unknown_attributes(&self, path: &str, columns: &BTreeSet<String>) -> Vec<String> {
        self.keyed_reads()
            .into_iter()
            .filter(|(_, name)| !columns.contains(*name))
            .map(|(key, name)| {
                let hint = did_you_mean(name, columns.iter().map(String::as_str))
                    .map(|c| format!("; did you mean {c:?}?"))
                    .unwrap_or_default();
                format!("{path}.{key}: no source record has attribute {name:?}{hint}")
            })
            .collect()
    }

    /// Renders every mapped field for `user` and sets it in `record` (an empty result
    /// is an empty field). `Err` says which field and why, for the plan's rejections.
    pub fn apply(&self, user: &User, mut record: Record) -> Result<Record, String> {
        let Some(c) = &self.inner else {
            return Ok(record);
        };
        if c.fields.is_empty() {
            return Ok(record);
        }
        let ctx = context(user, c);
        for f in &c.fields {
            let value = render(c, f, &ctx)?;
            record = record.set(f.name, value);
        }
        Ok(record)
    }

    /// Every mapped field of `user` with its template and what it produced.
    pub fn explain(&self, user: &User) -> Vec<Derived> {
        let Some(c) = &self.inner else {
            return Vec::new();
        };
        let ctx = context(user, c);
        c.fields
            .iter()
            .map(|f| Derived {
                field: f.name,
                template: f.source.clone(),
                value: render(c, f, &ctx),
            })
            .collect()
    }
}

/// The template context: every name the templates read — the user's field, else its
/// attribute, else an empty string (a source whose rows do not all carry every
/// column), so that only a lookup miss leaves a value undefined. Only the names read
/// are built: a user may carry dozens of columns no template looks at.
fn context(user: &User, c: &Compiled) -> Value {
    let mut m: BTreeMap<&str, Value> = BTreeMap::new();
    let group_reads = c.groups.iter().flat_map(|g| g.reads.iter());
    for r in c
        .fields
        .iter()
        .flat_map(|f| f.reads.iter())
        .chain(group_reads)
    {
        let value = match r.as_str() {
            "external_id" => user.external_id.as_str(),
            "email" => user.email.as_str(),
            "first_name" => user.first_name.as_str(),
            "last_name" => user.last_name.as_str(),
            "phone" => user.phone.as_deref().unwrap_or_default(),
            other => user.attributes.get(other).unwrap_or_default(),
        };
        m.insert(r.as_str(), Value::from(value));
    }
    Value::from_pairs(m)
}

fn render(c: &Compiled, f: &Field, ctx: &Value) -> Result<Option<String>, String> {
    filters::clear_miss();
    let out = c
        .env
        .get_template(f.name)
        .and_then(|t| t.render(ctx.clone()));
    match out {
        Ok(s) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Err(e) => Err(match filters::take_miss() {
            Some(miss) => format!("attributes.{}: {miss}", f.name),
            None => format!("attributes.{}: {}", f.name, render_message(&e)),
        }),
    }
}

/// A syntax error as `line L, column C: what` (column counted in characters).
fn syntax_message(e: &minijinja::Error, source: &str) -> String {
    let what = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    match (e.line(), e.range()) {
        (Some(line), Some(range)) => {
            let start = range.start.min(source.len());
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let column = source[line_start..start].chars().count() + 1;
            format!("line {line}, column {column}: {what}")
        }
        (Some(line), None) => format!("line {line}: {what}"),
        _ => what,
    }
}

fn render_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Pushes an issue at `at` for each `lookup("table")` in `source` naming no table.
fn check_tables(
    source: &str,
    lookups: &BTreeMap<String, BTreeMap<String, String>>,
    at: &str,
    issues: &mut Vec<Issue>,
) {
    for table in lookup_tables(source) {
        if !lookups.contains_key(table) {
            let hint = did_you_mean(table, lookups.keys().map(String::as_str))
                .map(|m| format!("; did you mean {m:?}?"))
                .unwrap_or_default();
            issues.push(Issue::new(
                at.to_string(),
                format!("lookup({table:?}): no such table under lookups{hint}"),
            ));
        }
    }
}

/// The table names a template passes to `lookup` as a quoted literal
/// (`lookup('tiers')`, `lookup("tiers")`): checked against `lookups` at load, so a
/// misspelt table is a config error rather than every user rejected.
fn lookup_tables(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find("lookup(") {
        rest = &rest[i + "lookup(".len()..];
        let trimmed = rest.trim_start();
        let Some(quote) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let body = &trimmed[1..];
        if let Some(end) = body.find(quote) {
            out.push(&body[..end]);
        }
    }
    out
}

/// The closest of `known` to `name`, when close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
