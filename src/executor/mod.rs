//! Applying plans: the transport each adapter sends through, and the apply loop with
//! its journal and snapshot updates.
//!
//! Underneath, the one request path every client shares (`crate::net`): the
//! classifier, the pacer and the retry loop.

pub mod apply;
pub mod groups;
pub mod http;
pub mod lookup;
pub mod references;
pub mod windows;
