//! `providers[].leavers`: what to do with people who left before rosterd knew their
//! account — a leaver the snapshot has no row for, whose account the vendor may still
//! hold active (made by hand, or by the tool rosterd replaces).
//!
//! ```yaml
//! leavers: disable                       # the default
//! leavers: { action: report, within_days: 90 }
//! ```

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What the plan does with a leaver's existing account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaverAction {
    /// Look the account up; an active one found is adopted and disabled.
    #[default]
    Disable,
    /// Look the account up; an active one found is listed as manual action only.
    Report,
    /// Leave leavers without a snapshot row alone (rosterd's behaviour before 0.4).
    Ignore,
}

impl LeaverAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaverAction::Disable => "disable",
            LeaverAction::Report => "report",
            LeaverAction::Ignore => "ignore",
        }
    }
}

/// How far back a leaver is looked for, by default: a year, so that a 20-year HR
/// history is not swept on the first run.
pub const DEFAULT_WITHIN_DAYS: u32 = 365;
const MAX_WITHIN_DAYS: u32 = 36_500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leavers {
    pub action: LeaverAction,
    /// Only people whose termination date is at most this many days before today.
    /// A person marked inactive without a termination date is always looked for: the
    /// source does not say when they left.
    pub within_days: u32,
}

impl Default for Leavers {
    fn default() -> Self {
        Leavers {
            action: LeaverAction::default(),
            within_days: DEFAULT_WITHIN_DAYS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Full {
    #[serde(default)]
    action: LeaverAction,
    #[serde(default = "default_within")]
    within_days: u32,
}

fn default_within() -> u32 {
    DEFAULT_WITHIN_DAYS
}

/// `leavers: disable` or `leavers: { action: …, within_days: … }`, with messages that
/// say which form was meant (serde's untagged enums say only "did not match").
impl<'de> Deserialize<'de> for Leavers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let leavers = match value {
            Value::String(s) => Leavers {
                action: parse_action(&s).map_err(D::Error::custom)?,
                within_days: DEFAULT_WITHIN_DAYS,
            },
            v @ Value::Object(_) => {
                let full: Full = serde_json::from_value(v).map_err(D::Error::custom)?;
                Leavers {
                    action: full.action,
                    within_days: full.within_days,
                }
            }
            other => {
                return Err(D::Error::custom(format!(
                    "expected disable, report, ignore or {{ action, within_days }}, found {other}"
                )))
            }
        };
        if leavers.within_days == 0 || leavers.within_days > MAX_WITHIN_DAYS {
            return Err(D::Error::custom(format!(
                "within_days: {} is out of range (1 to {MAX_WITHIN_DAYS})",
                leavers.within_days
            )));
        }
        Ok(leavers)
    }
}

fn parse_action(s: &str) -> Result<LeaverAction, String> {
    match s.trim() {
        "disable" => Ok(LeaverAction::Disable),
        "report" => Ok(LeaverAction::Report),
        "ignore" => Ok(LeaverAction::Ignore),
        other => Err(format!(
            "unknown leavers action {other:?}: expected disable, report or ignore"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(v: Value) -> Result<Leavers, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn both_forms_parse_and_the_default_is_disable_within_a_year() {
        assert_eq!(Leavers::default().action, LeaverAction::Disable);
        assert_eq!(Leavers::default().within_days, 365);
        assert_eq!(
            parse(Value::String("report".into())).unwrap(),
            Leavers {
                action: LeaverAction::Report,
                within_days: 365
            }
        );
        let full = parse(serde_json::json!({"action": "ignore", "within_days": 30})).unwrap();
        assert_eq!(full.action, LeaverAction::Ignore);
        assert_eq!(full.within_days, 30);
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let e = parse(Value::String("disabel".into())).unwrap_err();
        assert!(e.contains("unknown leavers action \"disabel\""), "{e}");
        let e = parse(serde_json::json!({"within_day": 3})).unwrap_err();
        assert!(e.contains("within_day"), "{e}");
        let e = parse(serde_json::json!({"within_days": 0})).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = parse(serde_json::json!(3)).unwrap_err();
        assert!(e.contains("expected disable, report, ignore"), "{e}");
    }
}
