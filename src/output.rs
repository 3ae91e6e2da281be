//! The machine-readable contract: every JSON document rosterd prints — the plan and
//! the run's result (`sync`), `status`, `check`, `history`, `orphans` — carries
//! `"format_version": 1`, is described by a JSON Schema in `schemas/` (generated from
//! these types by [`schemas`], and checked against real output by the tests), and is
//! compact (one line, for log pipelines) unless stdout is a terminal.
//!
//! `format_version` changes only when a field is removed, renamed or changes type;
//! new fields may appear in any version.

use schemars::JsonSchema;
use serde::Serialize;

use crate::providers::ProviderType;
use crate::source::SourceRejection;

pub const FORMAT_VERSION: u32 = 1;

/// A document with its format version first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Versioned<T> {
    /// The version of this document's shape (see the README).
    pub format_version: u32,
    #[serde(flatten)]
    pub doc: T,
}

/// `doc` as JSON with its `format_version`: indented on a terminal, one line
/// otherwise.
pub fn json<T: Serialize>(doc: &T) -> String {
    use std::io::IsTerminal;
    versioned_json(doc, std::io::stdout().is_terminal())
}

/// `doc` with its `format_version`, written to `out` as it is serialised (no
/// whole-document string): indented or compact.
pub fn write_json<T: Serialize>(
    doc: &T,
    pretty: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let v = Versioned {
        format_version: FORMAT_VERSION,
        doc,
    };
    if pretty {
        serde_json::to_writer_pretty(&mut *out, &v)?;
    } else {
        serde_json::to_writer(&mut *out, &v)?;
    }
    out.write_all(b"\n")
}

/// `doc` with its `format_version`, indented or compact.
pub fn versioned_json<T: Serialize>(doc: &T, pretty: bool) -> String {
    let v = Versioned {
        format_version: FORMAT_VERSION,
        doc,
    };
    // Plain data with string keys: serialisation cannot fail.
    if pretty {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        serde_json::to_string(&v).unwrap_or_default()
    }
}

/// `rosterd check --format json`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckReport {
    pub config: String,
    pub state: String,
    pub source: CheckSource,
    pub providers: Vec<CheckProvider>,
    /// Config keys the source does not carry (each with its key path).
    pub problems: Vec<String>,
    /// `check --connect` only.
    pub connect: Option<Vec<crate::cli::Connection>>,
    pub scim_quirks: Vec<crate::store::QuirkRow>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckSource {
    pub records: usize,
    pub users: usize,
    pub rejected: Vec<SourceRejection>,
    pub insecure_http: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckProvider {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    pub base_url: String,
    pub users_in_scope: usize,
    pub scope_rules: Vec<ScopeRuleMatch>,
    pub insecure_http: bool,
}

/// How many source users one `include` / `exclude` rule matched.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScopeRuleMatch {
    pub rule: &'static str,
    pub key: String,
    pub matched: usize,
}

/// The schema of `T` as rosterd writes it (a field it leaves out when empty is not
/// required).
fn schema<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// Every document's schema, by file name under `schemas/`.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (
            "plan.schema.json",
            schema::<Versioned<crate::report::PlanReport>>(),
        ),
        (
            "status.schema.json",
            schema::<Versioned<crate::status::Status>>(),
        ),
        ("check.schema.json", schema::<Versioned<CheckReport>>()),
        (
            "orphans.schema.json",
            schema::<Versioned<crate::orphans::OrphansReport>>(),
        ),
        (
            "explain.schema.json",
            schema::<Versioned<crate::mapping::Explanation>>(),
        ),
        ("history.schema.json", schema::<HistoryDoc>()),
        ("jsonl.schema.json", schema::<JsonlLine<'static>>()),
    ]
}

/// `rosterd history --format json` (written as it is read, so described here).
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
struct HistoryDoc {
    format_version: u32,
    /// The state file read.
    state: String,
    /// The source keys `--email` matched (absent without `--email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    email_keys: Option<Vec<String>>,
    entries: Vec<crate::history::Entry>,
}

/// One line of `sync --format jsonl`: what the line is, then its fields.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JsonlLine<'a> {
    /// First: the pass as a whole.
    Pass {
        format_version: u32,
        today: chrono::NaiveDate,
        dry_run: bool,
        source: &'a crate::report::SourceSummary,
    },
    /// One per provider, before its items.
    Provider {
        provider: &'a str,
        #[serde(rename = "type")]
        provider_type: ProviderType,
        summary: &'a crate::plan::Summary,
        blocked: Option<&'a str>,
    },
    Operation {
        provider: &'a str,
        #[serde(flatten)]
        operation: &'a crate::plan::Operation,
    },
    Manual {
        provider: &'a str,
        #[serde(flatten)]
        manual: &'a crate::plan::ManualAction,
    },
    Rejected {
        provider: &'a str,
        #[serde(flatten)]
        rejected: &'a crate::plan::Rejected,
    },
    Held {
        provider: &'a str,
        #[serde(flatten)]
        held: &'a crate::plan::Held,
    },
    Quarantined {
        provider: &'a str,
        #[serde(flatten)]
        quarantined: &'a crate::plan::Quarantined,
    },
    LeaverCheck {
        provider: &'a str,
        #[serde(flatten)]
        check: &'a crate::plan::LeaverCheck,
    },
    /// A real pass: what applying the provider's plan did.
    Result {
        provider: &'a str,
        #[serde(flatten)]
        result: &'a crate::executor::apply::ProviderResult,
    },
}

/// `report` as JSON lines: the pass, then per provider its line, its items and its
/// result. Each line compact, written to `out` as it is made (borrowing the plan:
/// nothing is copied).
pub fn write_jsonl(
    report: &crate::report::PlanReport,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let line = |l: &JsonlLine, out: &mut dyn std::io::Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, l)?;
        out.write_all(b"\n")
    };
    line(
        &JsonlLine::Pass {
            format_version: FORMAT_VERSION,
            today: report.today,
            dry_run: report.dry_run,
            source: &report.source,
        },
        out,
    )?;
    for p in &report.providers {
        let plan = &p.plan;
        let provider = || plan.name.as_str();
        line(
            &JsonlLine::Provider {
                provider: provider(),
                provider_type: plan.provider_type,
                summary: &plan.summary,
                blocked: plan.blocked.as_deref(),
            },
            out,
        )?;
        for o in &plan.operations {
            line(
                &JsonlLine::Operation {
                    provider: provider(),
                    operation: o,
                },
                out,
            )?;
        }
        for m in &plan.manual {
            line(
                &JsonlLine::Manual {
                    provider: provider(),
                    manual: m,
                },
                out,
            )?;
        }
        for r in &plan.rejected {
            line(
                &JsonlLine::Rejected {
                    provider: provider(),
                    rejected: r,
                },
                out,
            )?;
        }
        for h in &plan.held {
            line(
                &JsonlLine::Held {
                    provider: provider(),
                    held: h,
                },
                out,
            )?;
        }
        for q in &plan.quarantined {
            line(
                &JsonlLine::Quarantined {
                    provider: provider(),
                    quarantined: q,
                },
                out,
            )?;
        }
        for c in &plan.leaver_checks {
            line(
                &JsonlLine::LeaverCheck {
                    provider: provider(),
                    check: c,
                },
                out,
            )?;
        }
        if let Some(r) = &p.result {
            line(
                &JsonlLine::Result {
                    provider: provider(),
                    result: r,
                },
                out,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The committed schemas are what these types generate: a change to an output
    /// type must come with its schema (`ROSTERD_UPDATE_SCHEMAS=1 cargo test --lib
    /// output` rewrites them).
    #[test]
    fn the_schemas_in_the_repository_are_the_generated_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let update = std::env::var_os("ROSTERD_UPDATE_SCHEMAS").is_some();
        for (name, schema) in schemas() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "schemas/{name} is not what the types generate: ROSTERD_UPDATE_SCHEMAS=1 cargo test --lib output"
            );
        }
    }

    #[test]
    fn every_document_starts_with_its_format_version() {
        let text = versioned_json(&serde_json::json!({"a": 1}), false);
        assert_eq!(text, r#"{"format_version":1,"a":1}"#);
    }
}
