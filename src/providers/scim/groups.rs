//! SCIM Groups (RFC 7643 §4.2, RFC 7644 §3.5.2): the group calls of the SCIM
//! provider. A group is found by `filter=displayName eq "…"` (or, where the service
//! cannot filter, by listing `/Groups`), created with `POST /Groups`, and its members
//! changed with `PATCH /Groups/{id}`: one `add` of `members` with a batch of values,
//! one `remove` per member with the path `members[value eq "…"]`.
//!
//! A service that refuses PATCH on Groups (400, 405, 501) cannot have memberships
//! managed: the error says so for that group, and the other groups go on. After an
//! add, the group is read back, and a service whose answer does not carry the
//! members it was given fails that batch: rosterd records only what it can confirm.

use serde_json::{json, Value};

use super::list::{check_paging, parse_page};
use super::requests::{eq, scim_request, PATCH_SCHEMA};
use super::quirks::Quirk;
use super::Scim;
use crate::plan::GroupChange;
use crate::providers::call::{BoxFuture, CallError, JsonAnswers, Transport};
use crate::providers::groups::{FoundGroup, GroupApi};
use crate::providers::request::{segment, Request};

pub const GROUPS: &str = "/Groups";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Members added or removed per PATCH: keeps bodies and the server's work bounded.
pub const MEMBER_BATCH: usize = 100;
/// Groups read per page when the service cannot filter.
const LIST_COUNT: usize = 100;
/// Most groups listed from a service that cannot filter.
const MAX_GROUPS_LISTED: usize = 100_000;

pub fn group_path(id: &str) -> String {
    format!("{GROUPS}/{}", segment(id))
}

/// `GET /Groups?filter=displayName eq "name"`.
pub fn find_request(name: &str) -> Request {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &eq("displayName", name))
        .append_pair("startIndex", "1")
        .append_pair("count", "10")
        .finish();
    scim_request("GET", format!("{GROUPS}?{query}"), None, "")
}

fn list_request(start: usize) -> Request {
    scim_request(
        "GET",
        format!("{GROUPS}?startIndex={start}&count={LIST_COUNT}"),
        None,
        "",
    )
}

pub fn create_request(name: &str) -> Request {
    let body = json!({ "schemas": [GROUP_SCHEMA], "displayName": name });
    scim_request("POST", GROUPS.to_string(), Some(body), "").send_once()
}

pub fn add_request(id: &str, member_ids: &[String]) -> Request {
    let values: Vec<Value> = member_ids.iter().map(|m| json!({ "value": m })).collect();
    let body = json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [{ "op": "add", "path": "members", "value": values }],
    });
    scim_request("PATCH", group_path(id), Some(body), "")
}

pub fn remove_request(id: &str, member_ids: &[String]) -> Request {
    let ops: Vec<Value> = member_ids
        .iter()
        .map(|m| json!({ "op": "remove", "path": format!("members[{}]", eq("value", m)) }))
        .collect();
    let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
    scim_request("PATCH", group_path(id), Some(body), "")
}

/// The remove some services take instead (django-scim2, as Entra ID sends it): the
/// members in `value`, the path plain `members`.
pub fn remove_by_value_request(id: &str, member_ids: &[String]) -> Request {
    let values: Vec<Value> = member_ids.iter().map(|m| json!({ "value": m })).collect();
    let body = json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [{ "op": "remove", "path": "members", "value": values }],
    });
    scim_request("PATCH", group_path(id), Some(body), "")
}

pub fn delete_request(id: &str) -> Request {
    scim_request("DELETE", group_path(id), None, "")
}

/// A Group resource as rosterd reads it.
pub fn parse_group(body: &Value) -> Option<FoundGroup> {
    let id = super::client::resource_id(body)?;
    let display_name = body
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let members = body.get("members").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|m| match m.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    });
    Some(FoundGroup {
        id,
        display_name,
        members,
    })
}

/// The group of `resources` named `name`: the same displayName, else the same but
/// for case (SCIM compares displayName without case).
fn named(resources: &[Value], name: &str) -> Option<FoundGroup> {
    let groups: Vec<FoundGroup> = resources.iter().filter_map(parse_group).collect();
    let exact = groups.iter().position(|g| g.display_name == name);
    let folded = || {
        groups
            .iter()
            .position(|g| g.display_name.to_lowercase() == name.to_lowercase())
    };
    exact.or_else(folded).and_then(|i| groups.into_iter().nth(i))
}

/// Why a membership change failed, for the operator: a refusal of PATCH itself says
/// that this service does not take membership changes that way.
fn patch_error(what: &str, id: &str, e: CallError) -> CallError {
    let message = match e.status {
        Some(400 | 405 | 501) => format!(
            "{what}: the SCIM service refused PATCH {GROUPS}/{id} ({e}); group memberships \
             need PATCH on Groups (RFC 7644 §3.5.2), which this service does not take as sent"
        ),
        _ => format!("{what}: {e}"),
    };
    CallError { message, ..e }
}

/// Whether a remove failed only because the member is not there (RFC 7644: a
/// `noTarget` remove changes nothing).
fn no_target(e: &CallError) -> bool {
    e.status == Some(400) && e.message.contains("noTarget")
}

impl Scim {
    async fn list_groups(&self, transport: &dyn Transport) -> Result<Vec<Value>, CallError> {
        let mut out: Vec<Value> = Vec::new();
        let mut previous: Option<(usize, Vec<Value>)> = None;
        loop {
            let start = out.len() + 1;
            let resp = transport.send(&list_request(start)).await?;
            let (status, read) = (resp.status, out.len());
            let failed = |why: String| {
                CallError::new(
                    Some(status),
                    format!("listing the SCIM service's {GROUPS} stopped after {read}: {why}"),
                )
            };
            let page = parse_page(&resp.body).map_err(failed)?;
            check_paging(&page, start, LIST_COUNT, previous.as_ref(), out.len()).map_err(failed)?;
            let got = page.resources.len();
            out.extend(page.resources.iter().cloned());
            if out.len() >= page.total {
                return Ok(out);
            }
            if got == 0 || out.len() > MAX_GROUPS_LISTED {
                return Err(failed(format!(
                    "totalResults is {} and the pages end",
                    page.total
                )));
            }
            previous = Some((page.total, page.resources));
        }
    }

    async fn find_group(
        &self,
        transport: &dyn Transport,
        name: &str,
    ) -> Result<Option<FoundGroup>, CallError> {
        let eff = self.effective(transport).await?;
        if eff.filter {
            match transport.send(&find_request(name)).await {
                Ok(resp) => {
                    let page = parse_page(&resp.body).map_err(|why| {
                        CallError::new(Some(resp.status), format!("finding group {name:?}: {why}"))
                    })?;
                    return Ok(named(&page.resources, name));
                }
                // A service that announces filtering but refuses it on Groups.
                Err(e) if matches!(e.status, Some(400 | 501)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(named(&self.list_groups(transport).await?, name))
    }
}

impl GroupApi for Scim {
    fn batch_size(&self) -> usize {
        MEMBER_BATCH
    }

    fn preview(&self, change: &GroupChange) -> Vec<Request> {
        let mut out = Vec::new();
        let id = match &change.group_id {
            Some(id) => id.clone(),
            None => {
                let create = create_request(&change.name)
                    .with_note("when no group of that displayName is found: created");
                let mut find = find_request(&change.name)
                    .with_note("found: adopted, with the members it has");
                find.conditional.push(create);
                out.push(find);
                String::new()
            }
        };
        // A group not known yet: its id is the one found or created.
        let shown = |mut r: Request| {
            if id.is_empty() {
                r.path = format!("{GROUPS}/{{id}}");
                let note = match r.note.take() {
                    Some(n) => format!("{n}; {{id}}: the group found or created"),
                    None => "{id}: the group found or created".to_string(),
                };
                r.with_note(note)
            } else {
                r
            }
        };
        for batch in change.add.chunks(MEMBER_BATCH) {
            let ids: Vec<String> = batch
                .iter()
                .map(|m| format!("<id of {}>", m.external_id))
                .collect();
            let add = add_request(&id, &ids)
                .with_note("then read back: each member added must be listed");
            out.push(shown(add));
        }
        for batch in change.remove.chunks(MEMBER_BATCH) {
            let ids: Vec<String> = batch.iter().filter_map(|m| m.member_id.clone()).collect();
            out.push(shown(if self.quirks.has(Quirk::MemberRemoveByValue) {
                remove_by_value_request(&id, &ids)
            } else {
                remove_request(&id, &ids)
            }));
        }
        if change.delete {
            out.push(shown(
                delete_request(&id).with_note("only when the group, read first, is empty"),
            ));
        }
        out
    }

    fn find<'a>(
        &'a self,
        transport: &'a dyn Transport,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<FoundGroup>, CallError>> {
        Box::pin(async move { self.find_group(&JsonAnswers(transport), name).await })
    }

    fn read<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FoundGroup>, CallError>> {
        Box::pin(async move {
            let request = scim_request("GET", group_path(id), None, "");
            match JsonAnswers(transport).send(&request).await {
                Ok(resp) => Ok(parse_group(&resp.body)),
                Err(e) if e.status == Some(404) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn create<'a>(
        &'a self,
        transport: &'a dyn Transport,
        name: &'a str,
    ) -> BoxFuture<'a, Result<FoundGroup, CallError>> {
        Box::pin(async move {
            let transport = &JsonAnswers(transport);
            match transport.send(&create_request(name)).await {
                Ok(resp) => parse_group(&resp.body).ok_or_else(|| {
                    CallError::new(
                        Some(resp.status),
                        format!("the SCIM service created group {name:?} but its answer has no id"),
                    )
                    .maybe_applied()
                }),
                // Made in between: adopt it.
                Err(e) if e.status == Some(409) => {
                    self.find_group(transport, name).await?.ok_or_else(|| {
                        CallError::new(
                            Some(409),
                            format!(
                                "the SCIM service refused to create group {name:?} as a duplicate \
                                 ({e}) and lists no group of that displayName to adopt"
                            ),
                        )
                    })
                }
                Err(e) => Err(e),
            }
        })
    }

    fn add_members<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
        member_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let transport = &JsonAnswers(transport);
            transport
                .send(&add_request(id, member_ids))
                .await
                .map_err(|e| patch_error("adding members", id, e))?;
            // Read back: only members the service shows are recorded.
            let request = scim_request("GET", group_path(id), None, "");
            let resp = transport.send(&request).await?;
            let group = parse_group(&resp.body);
            let Some(members) = group.and_then(|g| g.members) else {
                return Err(CallError::new(
                    Some(resp.status),
                    format!(
                        "the SCIM service accepted the members added to group {id} but does not \
                         return the group's members, so the change cannot be confirmed"
                    ),
                ));
            };
            let missing: Vec<&str> = member_ids
                .iter()
                .filter(|m| !members.contains(m))
                .map(String::as_str)
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(CallError::new(
                    Some(resp.status),
                    format!(
                        "the SCIM service accepted the PATCH but group {id} does not list {} of \
                         the {} member(s) added (e.g. {:?}): not applied",
                        missing.len(),
                        member_ids.len(),
                        missing[0]
                    ),
                ))
            }
        })
    }

    fn remove_members<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
        member_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let transport = &JsonAnswers(transport);
            let refused = if self.quirks.has(Quirk::MemberRemoveByValue) {
                None
            } else {
                match transport.send(&remove_request(id, member_ids)).await {
                    Ok(_) => return Ok(()),
                    Err(e) if no_target(&e) => return Ok(()),
                    Err(e) if matches!(e.status, Some(400 | 405 | 501)) => Some(e),
                    Err(e) => return Err(patch_error("removing members", id, e)),
                }
            };
            match transport.send(&remove_by_value_request(id, member_ids)).await {
                Ok(_) => {
                    if let Some(e) = refused {
                        self.quirks.learn(
                            Quirk::MemberRemoveByValue,
                            format!("PATCH {GROUPS}/{id} removing members[value eq …]: {e}"),
                        );
                    }
                    Ok(())
                }
                Err(e) if no_target(&e) => Ok(()),
                // The first refusal says more than the fallback's.
                Err(e) => Err(patch_error("removing members", id, refused.unwrap_or(e))),
            }
        })
    }

    fn delete<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            match JsonAnswers(transport).send(&delete_request(id)).await {
                Ok(_) => Ok(()),
                Err(e) if e.status == Some(404) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_name_each_member_by_a_quoted_value_filter() {
        let r = remove_request("g 1", &["u\"1".to_string(), "u2".to_string()]);
        assert_eq!(r.method, "PATCH");
        assert_eq!(r.path, "/Groups/g%201");
        let ops = &r.body.as_ref().unwrap()["Operations"];
        assert_eq!(ops[0]["path"], "members[value eq \"u\\\"1\"]");
        assert_eq!(ops[1]["op"], "remove");
    }

    #[test]
    fn an_add_carries_every_member_of_its_batch_in_one_operation() {
        let r = add_request("g1", &["a".to_string(), "b".to_string()]);
        let body = r.body.unwrap();
        assert_eq!(body["Operations"][0]["path"], "members");
        assert_eq!(body["Operations"][0]["value"], json!([{"value": "a"}, {"value": "b"}]));
    }

    #[test]
    fn a_group_is_found_by_exact_name_before_a_case_folded_one() {
        let list = vec![
            json!({"id": "1", "displayName": "sales"}),
            json!({"id": "2", "displayName": "Sales", "members": [{"value": "u1"}]}),
        ];
        let g = named(&list, "Sales").unwrap();
        assert_eq!(g.id, "2");
        assert_eq!(g.members, Some(vec!["u1".to_string()]));
        assert_eq!(named(&list, "SALES").unwrap().id, "1");
        assert!(named(&list, "Ops").is_none());
    }
}
