//! Applying plans: the transport each adapter sends through, and the apply loop with
//! its journal and snapshot updates.

pub mod apply;
pub mod http;
