//! Carrying out a plan's group changes (SCIM `groups:`), after the plan's user
//! operations, so that a user created in the same pass is a member once its create
//! is confirmed (a member's value is the user's id at that server).
//!
//! Per group, in order: make sure the group exists (found by displayName and
//! adopted, with the members it already has, or created), add members in batches,
//! remove members in batches, and delete it when the plan says so (only a group
//! rosterd created, and only when the server shows it empty). Every request is
//! journaled before it is sent, and the snapshot changes with the journal entry that
//! confirms it. A failure stops that group for the pass (it is planned again next
//! pass); the other groups go on.

use serde::Serialize;
use tracing::{info, warn};

use super::apply::{ApplyContext, ApplyError, ProviderResult};
use crate::plan::{GroupChange, Member, ProviderPlan};
use crate::providers::call::CallError;
use crate::providers::groups::GroupApi;
use crate::store::GroupRecord;

/// A group change that failed, as the summary shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct GroupFailure {
    pub group: String,
    pub error: String,
}

/// What the journal keeps of a group request.
#[derive(Serialize)]
struct Payload<'a> {
    group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    members: &'a [(String, String)],
}

/// Applies `plan.groups`, adding what happened to `result`.
pub async fn apply_groups(
    ctx: &ApplyContext<'_>,
    plan: &ProviderPlan,
    result: &mut ProviderResult,
) -> Result<(), ApplyError> {
    if plan.groups.is_empty() {
        return Ok(());
    }
    let name = ctx.provider.name();
    let settled = ctx
        .store
        .settle_group_in_flight(name, (ctx.clock)())
        .await?;
    if settled > 0 {
        warn!(provider = %name, requests = settled, "Group requests an interrupted run left in flight are planned again from the snapshot.");
    }
    let Some(api) = ctx.provider.groups() else {
        for g in &plan.groups {
            result.group_failed(
                &g.name,
                &format!("{} has no groups", ctx.provider.provider_type()),
            );
        }
        return Ok(());
    };
    for g in &plan.groups {
        if ctx.stop.load(std::sync::atomic::Ordering::SeqCst) || result.provider_error.is_some() {
            // Planned again next pass, from the snapshot.
            result.not_started += 1;
            continue;
        }
        match apply_group(ctx, api, g, result).await? {
            Ok(()) => {}
            Err(e) => {
                warn!(provider = %name, group = %g.name, error = %e, "Group change failed.");
                result.group_failed(&g.name, &e.message);
            }
        }
    }
    info!(provider = %name, groups = plan.groups.len(), "Group changes applied.");
    Ok(())
}

/// One group's change. The outer `Result` is the state file's; the inner one the
/// server's (it stops this group only).
async fn apply_group(
    ctx: &ApplyContext<'_>,
    api: &dyn GroupApi,
    g: &GroupChange,
    result: &mut ProviderResult,
) -> Result<Result<(), CallError>, ApplyError> {
    let provider = ctx.provider.name();
    // The ids of the users to add, from the snapshot: known once their create was
    // confirmed (earlier, or in this pass). Those without one wait for next pass.
    let keys: Vec<&str> = g.add.iter().map(|m| m.external_id.as_str()).collect();
    let ids = ctx.store.vendor_ids(provider, &keys).await?;
    let mut add: Vec<(String, String)> = g
        .add
        .iter()
        .filter_map(|m| {
            ids.get(&m.external_id)
                .map(|id| (m.external_id.clone(), id.clone()))
        })
        .collect();
    let group_id = match &g.group_id {
        Some(id) => id.clone(),
        None if add.is_empty() => return Ok(Ok(())),
        None => match ensure(ctx, api, g, &mut add, result).await? {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        },
    };
    for batch in add.chunks(api.batch_size().max(1)) {
        let ids: Vec<String> = batch.iter().map(|(_, id)| id.clone()).collect();
        let id = begin(ctx, "add_members", &g.name, Some(&group_id), batch).await?;
        let sent = api.add_members(ctx.transport, &group_id, &ids).await;
        let change = GroupRecord::Members {
            name: &g.name,
            members: batch,
            added: true,
        };
        match settle(ctx, id, sent, &change, &group_id, g).await? {
            Ok(()) => *result.applied.entry("member_add".into()).or_default() += batch.len(),
            Err(e) => return Ok(Err(e)),
        }
    }
    let remove: Vec<(String, String)> = g.remove.iter().filter_map(member_pair).collect();
    for batch in remove.chunks(api.batch_size().max(1)) {
        let ids: Vec<String> = batch.iter().map(|(_, id)| id.clone()).collect();
        let keys: Vec<String> = batch.iter().map(|(k, _)| k.clone()).collect();
        let id = begin(ctx, "remove_members", &g.name, Some(&group_id), batch).await?;
        let sent = api.remove_members(ctx.transport, &group_id, &ids).await;
        let change = GroupRecord::Removed {
            name: &g.name,
            external_ids: &keys,
        };
        match settle(ctx, id, sent, &change, &group_id, g).await? {
            Ok(()) => *result.applied.entry("member_remove".into()).or_default() += batch.len(),
            Err(e) => return Ok(Err(e)),
        }
    }
    if g.delete {
        return delete(ctx, api, g, &group_id, result).await;
    }
    Ok(Ok(()))
}

/// The group's id: the group of that displayName, adopted with the members it has
/// (those of `add` already in it are recorded as not rosterd's and left out of
/// `add`), or a new one.
async fn ensure(
    ctx: &ApplyContext<'_>,
    api: &dyn GroupApi,
    g: &GroupChange,
    add: &mut Vec<(String, String)>,
    result: &mut ProviderResult,
) -> Result<Result<String, CallError>, ApplyError> {
    let now = (ctx.clock)();
    let id = begin(ctx, "ensure_group", &g.name, None, &[]).await?;
    let found = match api.find(ctx.transport, &g.name).await {
        Ok(found) => found,
        Err(e) => {
            ctx.store.group_journal_fail(id, &e.message, now).await?;
            return Ok(Err(e));
        }
    };
    let (group, created) = match found {
        Some(group) => (group, false),
        None => match api.create(ctx.transport, &g.name).await {
            Ok(group) => (group, true),
            Err(e) => {
                ctx.store
                    .group_journal_fail(id, &e.message, (ctx.clock)())
                    .await?;
                return Ok(Err(e));
            }
        },
    };
    let record = GroupRecord::Group {
        name: &g.name,
        group_id: &group.id,
        display_name: &group.display_name,
        created,
    };
    ctx.store
        .group_journal_finish(id, ctx.provider.name(), Some(&record), (ctx.clock)())
        .await?;
    let kind = if created {
        "group_create"
    } else {
        "group_adopt"
    };
    *result.applied.entry(kind.into()).or_default() += 1;
    // Members the adopted group had already: not rosterd's, never removed by it.
    let there = group.members.unwrap_or_default();
    let (already, rest): (Vec<_>, Vec<_>) = add.drain(..).partition(|(_, id)| there.contains(id));
    *add = rest;
    if !already.is_empty() {
        let id = begin(ctx, "adopt_members", &g.name, Some(&group.id), &already).await?;
        let change = GroupRecord::Members {
            name: &g.name,
            members: &already,
            added: false,
        };
        ctx.store
            .group_journal_finish(id, ctx.provider.name(), Some(&change), (ctx.clock)())
            .await?;
    }
    Ok(Ok(group.id))
}

/// Deletes a group rosterd created, once the server shows it empty: members someone
/// else added keep it.
async fn delete(
    ctx: &ApplyContext<'_>,
    api: &dyn GroupApi,
    g: &GroupChange,
    group_id: &str,
    result: &mut ProviderResult,
) -> Result<Result<(), CallError>, ApplyError> {
    let gone = GroupRecord::Gone { name: &g.name };
    match api.read(ctx.transport, group_id).await {
        Ok(Some(found)) if found.members.as_ref().is_some_and(|m| !m.is_empty()) => {
            info!(provider = %ctx.provider.name(), group = %g.name, "Group kept: it has members rosterd did not add.");
            return Ok(Ok(()));
        }
        Ok(_) => {}
        Err(e) => return Ok(Err(e)),
    }
    let id = begin(ctx, "delete_group", &g.name, Some(group_id), &[]).await?;
    let sent = api.delete(ctx.transport, group_id).await;
    let out = settle(ctx, id, sent, &gone, group_id, g).await?;
    if out.is_ok() {
        *result.applied.entry("group_delete".into()).or_default() += 1;
    }
    Ok(out)
}

fn member_pair(m: &Member) -> Option<(String, String)> {
    m.member_id
        .as_ref()
        .map(|id| (m.external_id.clone(), id.clone()))
}

async fn begin(
    ctx: &ApplyContext<'_>,
    op: &str,
    group: &str,
    group_id: Option<&str>,
    members: &[(String, String)],
) -> Result<i64, ApplyError> {
    let payload = Payload {
        group,
        group_id,
        members,
    };
    let json = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".into());
    Ok(ctx
        .store
        .group_journal_begin(
            ctx.run_id,
            ctx.provider.name(),
            op,
            group,
            &json,
            (ctx.clock)(),
        )
        .await?)
}

/// Finishes journal entry `id` with the server's answer: confirmed, its change is
/// recorded; a 404 for the group means it is gone (made again next pass).
async fn settle(
    ctx: &ApplyContext<'_>,
    id: i64,
    sent: Result<(), CallError>,
    change: &GroupRecord<'_>,
    group_id: &str,
    g: &GroupChange,
) -> Result<Result<(), CallError>, ApplyError> {
    crate::failpoint::reach("group_answered");
    let now = (ctx.clock)();
    let provider = ctx.provider.name();
    match sent {
        Ok(()) => {
            ctx.store
                .group_journal_finish(id, provider, Some(change), now)
                .await?;
            Ok(Ok(()))
        }
        Err(e) if e.status == Some(404) => {
            let gone = GroupRecord::Gone { name: &g.name };
            ctx.store
                .group_journal_finish(id, provider, Some(&gone), now)
                .await?;
            Ok(Err(CallError::new(
                Some(404),
                format!(
                    "group {} ({group_id}) is no longer at the server: it is found or made again next pass",
                    g.name
                ),
            )))
        }
        Err(e) => {
            ctx.store.group_journal_fail(id, &e.message, now).await?;
            Ok(Err(e))
        }
    }
}
