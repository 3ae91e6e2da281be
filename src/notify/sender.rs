//! Posting one message to one webhook: [`crate::net::deliver`] (the one outbound
//! HTTP policy and retry decision) within the webhook's `timeout_seconds`.

use super::config::Webhook;
use crate::executor::apply::Clock;
use crate::net::deliver::{deliver, Delivery, DeliveryError};

/// Posts `body` to `hook` until it is taken (2xx), refused for good, or the hook's
/// timeout has passed — which bounds every attempt and every wait between them.
pub async fn send(hook: &Webhook, body: &str, clock: &Clock) -> Result<(), DeliveryError> {
    let delivery = Delivery {
        url: hook.url.endpoint(),
        method: reqwest::Method::POST,
        content_type: "application/json",
        body,
        total: hook.timeout,
        receiver: "the webhook",
    };
    deliver(&delivery, clock).await
}
