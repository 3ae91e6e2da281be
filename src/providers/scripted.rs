//! A [`Transport`] for adapter unit tests: each request is answered by a closure and
//! kept in a log, so a test scripts the vendor and then checks what was sent.

use std::sync::{Mutex, MutexGuard};

use super::call::{BoxFuture, CallError, Response, Transport};
use super::{Record, Request};
use crate::plan::{OpKind, Operation};
use crate::user::{Attributes, User};

/// Answers each request with a closure — given the request and its number, from 0 in
/// the order sent — and keeps the log.
pub struct Scripted<F: Fn(&Request, usize) -> Result<Response, CallError> + Send + Sync> {
    answer: F,
    pub log: Mutex<Vec<Request>>,
}

impl<F: Fn(&Request, usize) -> Result<Response, CallError> + Send + Sync> Transport
    for Scripted<F>
{
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>> {
        let n = {
            let mut log = self.log.lock().unwrap();
            log.push(request.clone());
            log.len() - 1
        };
        let answer = (self.answer)(request, n);
        Box::pin(async move { answer })
    }
}

impl<F: Fn(&Request, usize) -> Result<Response, CallError> + Send + Sync> Scripted<F> {
    /// The requests sent so far.
    pub fn sent(&self) -> MutexGuard<'_, Vec<Request>> {
        self.log.lock().unwrap()
    }

    /// `(method, path)` of each request sent so far.
    pub fn calls(&self) -> Vec<(&'static str, String)> {
        self.sent()
            .iter()
            .map(|r| (r.method, r.path.clone()))
            .collect()
    }

    /// The header `name` of request number `n`.
    pub fn header(&self, n: usize, name: &str) -> Option<String> {
        self.sent()[n]
            .headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A vendor answering each request by what it is.
pub fn scripted(
    f: impl Fn(&Request) -> Result<Response, CallError> + Send + Sync,
) -> Scripted<impl Fn(&Request, usize) -> Result<Response, CallError> + Send + Sync> {
    numbered(move |r, _| f(r))
}

/// A vendor answering each request by what it is and when it comes (its number).
pub fn numbered<F: Fn(&Request, usize) -> Result<Response, CallError> + Send + Sync>(
    f: F,
) -> Scripted<F> {
    Scripted {
        answer: f,
        log: Mutex::new(Vec::new()),
    }
}

/// An operation of `kind` on `user`, carrying `record` (its mapping) and its
/// fingerprint, with the vendor's id when known.
pub fn operation(kind: OpKind, user: &User, record: Record, vendor_id: Option<&str>) -> Operation {
    Operation {
        op: kind,
        external_id: user.external_id.clone(),
        email: user.email.clone(),
        vendor_id: vendor_id.map(str::to_string),
        reason: String::new(),
        changes: Vec::new(),
        fingerprint: Some(record.fingerprint()),
        adopt: false,
        record: Some(record),
    }
}

/// An active user `id` with the email `<id>@example.com` (lower case), named Ada
/// Lovelace, no phone, no dates, no attributes.
pub fn user(id: &str) -> User {
    User {
        external_id: id.into(),
        email: format!("{}@example.com", id.to_lowercase()),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        phone: None,
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::default(),
    }
}
