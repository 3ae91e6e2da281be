//! What a SCIM service says it supports (`/ServiceProviderConfig`, RFC 7643 §5), and
//! what rosterd then uses, given the `patch`, `bulk` and `etag` settings.
//!
//! The document is read leniently: a missing or odd member means "not supported",
//! never a failed sync.

use serde_json::Value;

use super::quirks::{Quirk, Quirks};
use super::Mode;

/// A service's announced features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub patch: bool,
    /// `Some` when `/Bulk` is supported, with its limits.
    pub bulk: Option<BulkLimits>,
    pub filter: bool,
    pub etag: bool,
}

/// `/Bulk` limits: operations per request and request body size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    pub max_operations: usize,
    pub max_payload_size: usize,
}

/// Used when the service announces bulk but not its limits (or bulk is forced on):
/// RFC 7644's examples use 1000 operations and 1 MiB.
pub const DEFAULT_BULK_LIMITS: BulkLimits = BulkLimits {
    max_operations: 1000,
    max_payload_size: 1_048_576,
};

impl Features {
    /// What rosterd assumes of a service without a readable `/ServiceProviderConfig`:
    /// only what RFC 7644 makes mandatory (PUT, no bulk, no ETags), and filtering,
    /// without which existing users cannot be adopted.
    pub fn minimal() -> Self {
        Features {
            patch: false,
            bulk: None,
            filter: true,
            etag: false,
        }
    }

    /// Parses a `/ServiceProviderConfig` document.
    pub fn parse(doc: &Value) -> Self {
        let supported = |key: &str| {
            doc.get(key)
                .and_then(|f| f.get("supported"))
                .is_some_and(truthy)
        };
        let bulk = supported("bulk").then(|| {
            let limit = |key: &str, default: usize| {
                doc.get("bulk")
                    .and_then(|b| b.get(key))
                    .and_then(positive)
                    .unwrap_or(default)
            };
            BulkLimits {
                max_operations: limit("maxOperations", DEFAULT_BULK_LIMITS.max_operations),
                max_payload_size: limit("maxPayloadSize", DEFAULT_BULK_LIMITS.max_payload_size),
            }
        });
        Features {
            patch: supported("patch"),
            bulk,
            filter: supported("filter"),
            etag: supported("etag"),
        }
    }
}

/// `true`, or `"true"` from services that send booleans as strings.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A positive integer, also when sent as a string; 0 or junk is "not given".
fn positive(v: &Value) -> Option<usize> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    usize::try_from(n).ok().filter(|n| *n > 0)
}

/// What one pass uses: the service's features with the operator's settings applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub patch: bool,
    /// Limits of each `/Bulk` request, when bulk is used; `max_operations` is at most
    /// the configured `bulk_size`.
    pub bulk: Option<BulkLimits>,
    pub filter: bool,
    pub etag: bool,
    /// The service's `/Users` listed once for the pass, to find users to adopt
    /// without filtering, or when filtering turns out refused (`None`: not listed,
    /// as in the preview).
    pub listing: Option<Listing>,
    /// The provider's quirks: remembered, and learned in this pass (`None` in the
    /// preview).
    pub quirks: Option<Quirks>,
}

/// `/Users` read whole once per pass (adapters are built per pass), shared by the
/// pass's units.
#[derive(Debug, Clone, Default)]
pub struct Listing(pub std::sync::Arc<tokio::sync::OnceCell<Vec<serde_json::Value>>>);

impl PartialEq for Listing {
    /// Two listings are alike when they are the same one.
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Listing {}

impl Effective {
    /// Adoption looks users up in `listing` (read on first use) without filtering,
    /// or once filtering is refused.
    pub fn with_listing(self, listing: &Listing) -> Self {
        Effective {
            listing: Some(listing.clone()),
            ..self
        }
    }

    /// The fallbacks the known `quirks` call for, where the settings leave the
    /// feature to the service (`auto`); `on` and `off` are the operator's word.
    pub fn with_quirks(self, quirks: &Quirks, settings: &super::Settings) -> Self {
        let auto = |m: Mode| m == Mode::Auto;
        let patch = self.patch
            && !(auto(settings.patch)
                && (quirks.has(Quirk::PatchUnusable) || quirks.has(Quirk::MultiValuedMerge)));
        let bulk = self
            .bulk
            .filter(|_| !(auto(settings.bulk) && quirks.has(Quirk::BulkUnusable)));
        let filter =
            self.filter && !(auto(settings.filter) && quirks.has(Quirk::FilterUnusable));
        Effective {
            patch,
            bulk,
            filter,
            quirks: Some(quirks.clone()),
            ..self
        }
    }

    /// Whether the service was found to refuse or misapply PATCH (so far).
    pub fn patch_refused(&self) -> bool {
        self.quirks.as_ref().is_some_and(|q| {
            q.has(Quirk::PatchUnusable) || q.has(Quirk::MultiValuedMerge)
        })
    }

    /// Records a quirk learned now (nothing in the preview).
    pub fn learn(&self, quirk: Quirk, detail: String) {
        if let Some(q) = &self.quirks {
            q.learn(quirk, detail);
        }
    }

    /// Filtering as `mode` says over what the service announced.
    pub fn with_filter(self, mode: Mode, features: &Features) -> Self {
        let filter = match mode {
            Mode::Auto => features.filter,
            Mode::On => true,
            Mode::Off => false,
        };
        Effective { filter, ..self }
    }

    pub fn new(features: &Features, patch: Mode, bulk: Mode, etag: Mode, bulk_size: usize) -> Self {
        let pick = |mode: Mode, announced: bool| match mode {
            Mode::Auto => announced,
            Mode::On => true,
            Mode::Off => false,
        };
        let limits = match bulk {
            Mode::Off => None,
            Mode::Auto => features.bulk,
            Mode::On => Some(features.bulk.unwrap_or(DEFAULT_BULK_LIMITS)),
        }
        .map(|l| BulkLimits {
            max_operations: l.max_operations.min(bulk_size.max(1)),
            ..l
        });
        Effective {
            patch: pick(patch, features.patch),
            bulk: limits,
            filter: features.filter,
            etag: pick(etag, features.etag),
            listing: None,
            quirks: None,
        }
    }
}
