//! Looking leavers' accounts up before the pass plans (see `plan::leavers`): each
//! leaver check is one [`Provider::lookup`] through the provider's transport (paced,
//! retried, like every request). What is found becomes the plan's disables; what is
//! not found is recorded in the state so that it is never looked for again; a failed
//! lookup is tried again next pass.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use tracing::{info, warn};

use super::apply::Clock;
use crate::plan::{LeaverCheck, LeaverKnowledge};
use crate::providers::call::Transport;
use crate::providers::Provider;
use crate::store::{LeaverOutcome, Store, StoreError};

/// One provider's side of the lookups.
pub struct LookupTarget<'a> {
    pub provider: &'a dyn Provider,
    pub transport: &'a dyn Transport,
    /// Lookups in flight at once (`rate_limit.max_concurrency`).
    pub concurrency: usize,
}

/// Everything the lookups of a pass need: the state (to record what was not found)
/// and each provider's adapter and transport.
pub struct Lookups<'a> {
    /// Where what was not found is recorded; `None` in a dry run (nothing written).
    pub store: Option<&'a Store>,
    pub clock: &'a Clock,
    pub targets: Vec<LookupTarget<'a>>,
}

impl<'a> Lookups<'a> {
    /// The lookups through each selected provider's adapter and transport (in the
    /// order of `selected`), recording in `store` when there is one.
    pub fn new(
        store: Option<&'a Store>,
        clock: &'a Clock,
        selected: &[&crate::config::ProviderConfig],
        adapters: &'a [Box<dyn Provider>],
        transports: &'a [super::http::HttpTransport<'a>],
    ) -> Lookups<'a> {
        let targets = adapters
            .iter()
            .zip(transports)
            .zip(selected)
            .map(|((adapter, transport), pc)| LookupTarget {
                provider: adapter.as_ref(),
                transport,
                concurrency: pc.rate_limit.max_concurrency,
            })
            .collect();
        Lookups {
            store,
            clock,
            targets,
        }
    }
}

impl Lookups<'_> {
    /// The adapter and transport of the provider named `provider`.
    pub fn target(&self, provider: &str) -> Option<&LookupTarget<'_>> {
        self.targets.iter().find(|t| t.provider.name() == provider)
    }

    /// Looks up `checks` at the provider named `provider`. Accounts found active (or
    /// of unknown state) go into `knowledge.found`; absent or already inactive ones
    /// are recorded and go into `knowledge.checked`. Returns the checks whose lookup
    /// failed, each with its error. A failure of the provider as a whole
    /// (unreachable, credentials rejected) stops the rest of its lookups.
    pub async fn run(
        &self,
        provider: &str,
        checks: Vec<LeaverCheck>,
        knowledge: &mut LeaverKnowledge,
    ) -> Result<Vec<LeaverCheck>, StoreError> {
        let Some(target) = self.target(provider) else {
            return Ok(checks);
        };
        let stopped = AtomicBool::new(false);
        let stopped = &stopped;
        let results: Vec<_> = stream::iter(checks)
            .map(|check| async move {
                if stopped.load(Ordering::SeqCst) {
                    return (check, None);
                }
                let found = target
                    .provider
                    .lookup(target.transport, &check.operation)
                    .await;
                if matches!(&found, Err(e) if e.fault.is_some()) {
                    stopped.store(true, Ordering::SeqCst);
                }
                (check, Some(found))
            })
            .buffered(target.concurrency.max(1))
            .collect()
            .await;
        let (mut found, mut absent) = (0usize, 0usize);
        let mut failed = Vec::new();
        let mut fault: Option<String> = None;
        for (mut check, result) in results {
            let outcome = match result {
                Some(Ok(Some(f))) if f.active == Some(false) => LeaverOutcome::Inactive,
                Some(Ok(Some(f))) => {
                    knowledge.found.insert(check.external_id.clone(), f);
                    found += 1;
                    continue;
                }
                Some(Ok(None)) => LeaverOutcome::Absent,
                Some(Err(e)) => {
                    if e.fault.is_some() && fault.is_none() {
                        fault = Some(e.message.clone());
                    }
                    check.error = Some(e.message);
                    failed.push(check);
                    continue;
                }
                None => {
                    check.error = Some(format!(
                        "not looked up: {}",
                        fault.as_deref().unwrap_or("the provider failed")
                    ));
                    failed.push(check);
                    continue;
                }
            };
            if let Some(store) = self.store {
                store
                    .record_leaver_check(provider, &check.external_id, outcome, (self.clock)())
                    .await?;
            }
            knowledge.checked.insert(check.external_id);
            absent += 1;
        }
        info!(
            provider,
            found,
            not_found = absent,
            failed = failed.len(),
            "Leavers looked up."
        );
        if let Some(error) = &fault {
            warn!(provider, error = %error, "Leaver lookups stopped: the provider failed as a whole.");
        }
        Ok(failed)
    }
}
