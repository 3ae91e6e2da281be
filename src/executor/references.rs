//! Reference fields: record values that name another source person by key (SCIM's
//! `manager`), sent as that person's id at the vendor.
//!
//! The plan holds keys, so that a plan reads as the HR system does and a fingerprint
//! does not depend on ids. At apply time each reference is resolved against what the
//! provider holds: the snapshot's vendor ids, then the ids this pass's creates are
//! given. Creates run in waves so that a manager is created before the people who
//! name them (a cycle is cut where it closes). A reference that cannot be resolved
//! when its operation is sent (the named person's create failed) is sent empty and
//! recorded empty, so the record differs from the plan's next pass, which sends the
//! reference again.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::plan::Operation;
use crate::providers::call::{Applied, OpResult};
use crate::providers::{Provider, Record};
use crate::store::{Store, StoreError};

/// One provider's reference fields and the ids they resolve to.
pub struct References {
    fields: &'static [&'static str],
    /// Key → id at this vendor.
    ids: Mutex<HashMap<String, String>>,
}

/// One operation as journaled and recorded (references kept where they resolve) and
/// as sent (references as ids).
pub struct Resolved<'o> {
    pub recorded: Cow<'o, Operation>,
    pub sent: Cow<'o, Operation>,
}

impl References {
    /// The references `ops` carry, with the ids the snapshot knows for them; `None`
    /// when none carries any (nothing to resolve, nothing to order).
    pub async fn load<'o>(
        store: &Store,
        provider: &dyn Provider,
        ops: impl IntoIterator<Item = &'o Operation>,
    ) -> Result<Option<References>, StoreError> {
        let fields = provider.references();
        if fields.is_empty() {
            return Ok(None);
        }
        let mut keys = BTreeSet::new();
        for op in ops {
            for &field in fields {
                keys.extend(named(op, field).map(str::to_string));
            }
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let ids = store.reference_ids(provider.name(), &keys).await?;
        Ok(Some(References {
            fields,
            ids: Mutex::new(ids),
        }))
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The order to send `ops` in: waves of indices, each wave after the creates of
    /// the people its operations name. Operations in a cycle of references come last.
    pub fn waves(&self, ops: &[Operation]) -> Vec<Vec<usize>> {
        let creates: HashMap<&str, usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.op.creates())
            .map(|(i, o)| (o.external_id.as_str(), i))
            .collect();
        // Edges from a create to the operations naming its person (Kahn's layering).
        let mut waiting = vec![0usize; ops.len()];
        let mut after: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
        for (i, op) in ops.iter().enumerate() {
            let record = op.record.as_ref();
            for &field in self.fields {
                let target = record.and_then(|r| r.get(field));
                if let Some(&j) = target.and_then(|k| creates.get(k)) {
                    if j != i {
                        waiting[i] += 1;
                        after[j].push(i);
                    }
                }
            }
        }
        let mut wave_of = vec![usize::MAX; ops.len()];
        let mut current: Vec<usize> = (0..ops.len()).filter(|&i| waiting[i] == 0).collect();
        let mut waves = Vec::new();
        while !current.is_empty() {
            let mut next = Vec::new();
            for &j in &current {
                wave_of[j] = waves.len();
                for &i in &after[j] {
                    waiting[i] -= 1;
                    if waiting[i] == 0 {
                        next.push(i);
                    }
                }
            }
            next.sort_unstable();
            waves.push(std::mem::replace(&mut current, next));
        }
        let cyclic: Vec<usize> = (0..ops.len())
            .filter(|&i| wave_of[i] == usize::MAX)
            .collect();
        if !cyclic.is_empty() {
            waves.push(cyclic);
        }
        waves
    }

    /// Notes the id a create was given, for the operations that name its person.
    pub fn learn(&self, op: &Operation, outcome: &OpResult) {
        if let Ok(Applied::Done {
            vendor_id: Some(id),
            ..
        }) = outcome
        {
            self.ids().insert(op.external_id.clone(), id.clone());
        }
    }

    /// `op` as recorded and as sent, resolved with the ids known now.
    pub fn resolve<'o>(&self, op: &'o Operation) -> Resolved<'o> {
        let carries = self.fields.iter().any(|f| named(op, f).next().is_some());
        if !carries {
            return Resolved {
                recorded: Cow::Borrowed(op),
                sent: Cow::Borrowed(op),
            };
        }
        let ids = self.ids();
        let id = |key: Option<&str>| key.and_then(|k| ids.get(k)).cloned();
        let (mut recorded, mut sent) = (op.clone(), op.clone());
        for &field in self.fields {
            if let Some(record) = &op.record {
                let key = record.get(field);
                let resolved = id(key);
                if resolved.is_none() && key.is_some() {
                    recorded.record = recorded.record.map(|r| r.set(field, None));
                }
                if key.is_some() {
                    sent.record = sent.record.map(|r| r.set(field, resolved));
                }
            }
            for (rec, snt) in recorded.changes.iter_mut().zip(sent.changes.iter_mut()) {
                if rec.field != field {
                    continue;
                }
                let (old, new) = (id(rec.old.as_deref()), id(rec.new.as_deref()));
                if new.is_none() {
                    rec.new = None;
                }
                snt.old = old;
                snt.new = new;
            }
        }
        recorded.fingerprint = recorded
            .record
            .as_ref()
            .map(Record::fingerprint)
            .or(op.fingerprint);
        Resolved {
            recorded: Cow::Owned(recorded),
            sent: Cow::Owned(sent),
        }
    }

    /// The vendor's answer with the reference fields as recorded: what it read back
    /// holds ids (or `$ref`s), the snapshot keeps keys.
    pub fn restore(&self, outcome: OpResult, recorded: &Operation) -> OpResult {
        match outcome {
            Ok(Applied::Done {
                vendor_id,
                record: Some(mut record),
                adopted,
            }) => {
                let planned = recorded.record.as_ref();
                for &field in self.fields {
                    if let Some(planned) = planned.filter(|r| r.fields().any(|(n, _)| n == field)) {
                        record = record.set(field, planned.get(field).map(str::to_string));
                    }
                }
                Ok(Applied::Done {
                    vendor_id,
                    record: Some(record),
                    adopted,
                })
            }
            other => other,
        }
    }
}

/// The keys `op` names in `field`: its record's value and its change's old value.
fn named<'o>(op: &'o Operation, field: &'o str) -> impl Iterator<Item = &'o str> + 'o {
    let now = op.record.as_ref().and_then(|r| r.get(field));
    let before = op
        .changes
        .iter()
        .filter(move |c| c.field == field)
        .filter_map(|c| c.old.as_deref());
    now.into_iter().chain(before)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::plan::{FieldChange, OpKind};

    fn op(kind: OpKind, key: &str, manager: Option<&str>) -> Operation {
        let record = Record::new()
            .with("userName", Some(format!("{key}@corp.example")))
            .with("manager", manager.map(str::to_string));
        Operation {
            op: kind,
            external_id: key.into(),
            email: format!("{key}@corp.example"),
            vendor_id: None,
            reason: String::new(),
            changes: Vec::new(),
            fingerprint: Some(record.fingerprint()),
            record: Some(record),
            adopt: false,
        }
    }

    fn refs(known: &[(&str, &str)]) -> References {
        References {
            fields: &["manager"],
            ids: Mutex::new(
                known
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn managers_come_in_earlier_waves_and_a_cycle_comes_last() {
        let ops = vec![
            op(OpKind::Create, "a", Some("c")),
            op(OpKind::Create, "b", Some("a")),
            op(OpKind::Create, "c", None),
            op(OpKind::Update, "d", Some("b")),
            op(OpKind::Create, "e", Some("f")),
            op(OpKind::Create, "f", Some("e")),
            op(OpKind::Create, "g", Some("held-already")),
            op(OpKind::Create, "h", Some("h")),
        ];
        let waves = refs(&[]).waves(&ops);
        assert_eq!(
            waves,
            vec![vec![2, 6, 7], vec![0], vec![1], vec![3], vec![4, 5]]
        );
    }

    #[test]
    fn a_reference_is_sent_as_the_id_and_recorded_as_the_key_or_empty() {
        let r = refs(&[("boss", "id-9")]);
        let known = op(OpKind::Create, "a", Some("boss"));
        let resolved = r.resolve(&known);
        assert_eq!(
            resolved.sent.record.as_ref().unwrap().get("manager"),
            Some("id-9")
        );
        assert_eq!(
            resolved.recorded.record.as_ref().unwrap().get("manager"),
            Some("boss")
        );
        assert_eq!(resolved.recorded.fingerprint, known.fingerprint);

        // Unknown (its create failed): sent and recorded empty, so next pass sends it.
        let unknown = op(OpKind::Create, "b", Some("nobody"));
        let resolved = r.resolve(&unknown);
        assert_eq!(resolved.sent.record.as_ref().unwrap().get("manager"), None);
        assert_eq!(
            resolved.recorded.record.as_ref().unwrap().get("manager"),
            None
        );
        assert_ne!(resolved.recorded.fingerprint, unknown.fingerprint);

        // An update's change carries ids both ways when sent, keys when recorded.
        let mut update = op(OpKind::Update, "c", Some("boss"));
        update.changes = vec![FieldChange {
            field: "manager".into(),
            old: Some("old-boss".into()),
            new: Some("boss".into()),
        }];
        let r = refs(&[("boss", "id-9"), ("old-boss", "id-1")]);
        let resolved = r.resolve(&update);
        assert_eq!(resolved.sent.changes[0].old.as_deref(), Some("id-1"));
        assert_eq!(resolved.sent.changes[0].new.as_deref(), Some("id-9"));
        assert_eq!(resolved.recorded.changes, update.changes);

        // Learnt from a create's answer, then restored to the key in what is recorded.
        let outcome: OpResult = Ok(Applied::Done {
            vendor_id: Some("id-5".into()),
            record: Some(Record::new().with("manager", Some("id-9".into()))),
            adopted: false,
        });
        r.learn(&known, &outcome);
        assert_eq!(r.ids().get("a").map(String::as_str), Some("id-5"));
        let Ok(Applied::Done {
            record: Some(rec), ..
        }) = r.restore(outcome, &known)
        else {
            panic!("restored outcome changed kind");
        };
        assert_eq!(rec.get("manager"), Some("boss"));
    }
}
