//! The group calls a vendor with groups offers the executor (only SCIM has them):
//! find a group by name, create one, add and remove members, delete one. The
//! executor decides what to send from the plan's group changes; the vendor knows
//! how (see `scim/groups.rs`).

use super::call::{BoxFuture, CallError, Transport};

/// A group as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundGroup {
    pub id: String,
    pub display_name: String,
    /// Its members' ids, as the server answered (`None`: the answer had no
    /// `members`, which is also how a server shows an empty group).
    pub members: Option<Vec<String>>,
}

/// The group calls of one vendor.
pub trait GroupApi: Send + Sync {
    /// Members added or removed per request at most.
    fn batch_size(&self) -> usize;
    /// The requests `change` would send when every answer is the expected one
    /// (`sync --dry-run --show-requests`); members to add are shown by key, their id
    /// being read from the snapshot as they are sent.
    fn preview(&self, change: &crate::plan::GroupChange) -> Vec<super::Request>;
    /// The group named `name` (its displayName), when the server has one.
    fn find<'a>(
        &'a self,
        transport: &'a dyn Transport,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<FoundGroup>, CallError>>;
    /// The group with id `id` as the server holds it now (`None`: no such group).
    fn read<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FoundGroup>, CallError>>;
    /// Creates a group named `name` without members; its id.
    fn create<'a>(
        &'a self,
        transport: &'a dyn Transport,
        name: &'a str,
    ) -> BoxFuture<'a, Result<FoundGroup, CallError>>;
    /// Adds `member_ids` (at most [`GroupApi::batch_size`]) to group `id`.
    fn add_members<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
        member_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), CallError>>;
    /// Removes `member_ids` (at most [`GroupApi::batch_size`]) from group `id`; a
    /// member already gone is no error.
    fn remove_members<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
        member_ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), CallError>>;
    /// Deletes group `id`; one already gone is no error.
    fn delete<'a>(
        &'a self,
        transport: &'a dyn Transport,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), CallError>>;
}
