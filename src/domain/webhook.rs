//! Webhooks: where ticket events are POSTed, which of them, and how each delivery is signed and retried
//! (Standard Webhooks, https://www.standardwebhooks.com).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{
    Error, Result,
    comment::Visibility,
    condition::Condition,
    event::{EventDetail, EventKind},
};

/// Longest URL accepted.
pub const URL_MAX_CHARS: usize = 2_000;
/// Longest description accepted.
pub const DESCRIPTION_MAX_CHARS: usize = 500;
/// The event type that subscribes to every other one.
pub const WILDCARD: &str = "*";
/// The prefix of every signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes behind a secret: 256 bits, the HMAC-SHA256 key size.
const SECRET_BYTES: usize = 32;
/// How long the previous secret keeps signing after a rotation, so receivers can switch without a gap.
pub const PREVIOUS_SECRET_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Continuous failure after which a webhook is disabled.
pub const FAILING_LIMIT: Duration = Duration::from_secs(5 * 24 * 3600);
/// Wait before each retry, after the first attempt: the Standard Webhooks schedule; the delivery fails after
/// the last.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// A subscription to ticket events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<String>,
    pub condition: String,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: String,
    /// The full secret. Kept in plain text in the database because signing needs it (an HMAC key cannot be
    /// hashed like a password); answers other than create and rotate show only [`secret_hint`].
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expire_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: String,
}

impl Webhook {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "webhook";

    /// The etag of version `version` of webhook `id`.
    pub fn etag_of(id: i64, version: i64) -> String {
        super::etag::etag(Self::RESOURCE, id, version)
    }

    /// The secrets that sign at `now`: the current one first, then the previous one until it expires.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(expiry)) =
            (&self.previous_secret, self.previous_secret_expire_time)
            && expiry > now
        {
            secrets.push(previous);
        }
        secrets
    }

    /// The same webhook with its secrets cut to hints, for every answer but create and rotate.
    pub fn redacted(mut self) -> Self {
        self.secret = secret_hint(&self.secret);
        self.previous_secret = None;
        self
    }
}

/// A webhook to create; it starts enabled with a new secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub condition: String,
    pub description: String,
}

impl NewWebhook {
    /// Checks every field; errors name them relative to the webhook (`url`, `event_types[1]`). Returns the
    /// parsed condition, whose property names the caller checks against the definitions.
    pub fn check(&self, allow_private_targets: bool) -> Result<Condition> {
        check_url(&self.url, allow_private_targets)?;
        check_event_types(&self.event_types)?;
        check_description(&self.description)?;
        Condition::parse("condition", &self.condition)
    }
}

/// Changes to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub condition: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl WebhookChanges {
    /// Checks the fields that change; returns the new condition when it changes.
    pub fn check(&self, allow_private_targets: bool) -> Result<Option<Condition>> {
        if let Some(url) = &self.url {
            check_url(url, allow_private_targets)?;
        }
        if let Some(event_types) = &self.event_types {
            check_event_types(event_types)?;
        }
        if let Some(description) = &self.description {
            check_description(description)?;
        }
        self.condition
            .as_deref()
            .map(|condition| Condition::parse("condition", condition))
            .transpose()
    }
}

/// The event types a webhook may name; the spelling is the `type` of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    TicketCreated,
    TicketUpdated,
    TicketStageChanged,
    TicketArchived,
    TicketRestored,
    CommentAdded,
}

impl EventType {
    /// Every type, in the order the docs list them.
    pub const ALL: [Self; 6] = [
        Self::TicketCreated,
        Self::TicketUpdated,
        Self::TicketStageChanged,
        Self::TicketArchived,
        Self::TicketRestored,
        Self::CommentAdded,
    ];

    /// The type an event is delivered as; `None` for events no webhook receives (associations).
    pub fn of(kind: EventKind) -> Option<Self> {
        match kind {
            EventKind::Created => Some(Self::TicketCreated),
            EventKind::Updated => Some(Self::TicketUpdated),
            EventKind::StageChanged => Some(Self::TicketStageChanged),
            EventKind::Archived => Some(Self::TicketArchived),
            EventKind::Restored => Some(Self::TicketRestored),
            EventKind::CommentAdded => Some(Self::CommentAdded),
            EventKind::AssociationAdded | EventKind::AssociationRemoved => None,
        }
    }

    /// The wire spelling, e.g. `ticket.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketCreated => "ticket.created",
            Self::TicketUpdated => "ticket.updated",
            Self::TicketStageChanged => "ticket.stage_changed",
            Self::TicketArchived => "ticket.archived",
            Self::TicketRestored => "ticket.restored",
            Self::CommentAdded => "comment.added",
        }
    }

    /// Reads the wire spelling back.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

/// Whether a webhook subscribed to `event_types` receives an event of `event_type` with `detail`: internal
/// comments go only to webhooks that name `comment.added` (a `*` subscriber did not ask for staff-only text).
pub fn subscribes(
    event_types: &[String],
    event_type: EventType,
    detail: Option<&EventDetail>,
) -> bool {
    let internal = matches!(
        detail,
        Some(EventDetail::Comment(comment)) if comment.visibility == Visibility::Internal
    );
    event_types
        .iter()
        .any(|named| named == event_type.as_str() || (named == WILDCARD && !internal))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        Some(match value {
            "PENDING" => Self::Pending,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            _ => return None,
        })
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub next_attempt_time: DateTime<Utc>,
    pub create_time: DateTime<Utc>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// One try at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt_time: DateTime<Utc>,
    /// 0 when no HTTP answer came.
    pub http_status: i32,
    pub duration: Duration,
    /// The first KiB of the answer's body, or what went wrong.
    pub response: String,
}

/// Which deliveries a listing returns; `None` does not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub ticket_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
}

/// A new signing secret: `whsec_` and the standard base64 of 32 bytes from the operating system's CSPRNG.
pub fn new_secret() -> Result<String> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key).map_err(|error| Error::internal(error.to_string()))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// What answers show of a secret: enough to tell two apart, far too little to sign with.
pub fn secret_hint(secret: &str) -> String {
    let shown: String = secret.chars().take(SECRET_PREFIX.len() + 4).collect();
    format!("{shown}…")
}

/// The `webhook-signature` entry of one secret: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// keyed with the base64-decoded part of the secret after `whsec_`. `None` for a secret that is not that form.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The wait before the retry that follows attempt number `attempts` (1: the first), ±20 % so that a receiver
/// coming back is not hit by every queued delivery at once; `None` when the schedule is used up.
pub fn retry_delay(attempts: u32) -> Option<Duration> {
    let base = RETRY_SCHEDULE.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let mut random = [0u8; 4];
    // Without randomness the retry still comes, only unjittered.
    let jitter = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX) * 0.4 - 0.2,
        Err(_) => 0.0,
    };
    Some(base.mul_f64(1.0 + jitter))
}

/// Checks a webhook's URL: absolute http or https, bounded, with a host; with `allow_private_targets` off,
/// not `localhost` nor a literal loopback, private, link-local or otherwise internal address. Names that
/// resolve to such addresses are refused at delivery time, where the resolution is.
pub fn check_url(url: &str, allow_private_targets: bool) -> Result<()> {
    let invalid = |why: String| Err(Error::invalid("url", why));
    if url.is_empty() {
        return invalid("is required".to_owned());
    }
    if url.chars().count() > URL_MAX_CHARS {
        return invalid(format!("must be at most {URL_MAX_CHARS} characters"));
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(error) => return invalid(format!("{url:?} is not an absolute URL: {error}")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return invalid(format!("scheme {:?} is not http or https", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return invalid("must not carry credentials; receivers verify the signature".to_owned());
    }
    let refused = |what: &str| {
        invalid(format!(
            "{what} is not a public address; the server refuses such targets unless it runs with \
             --webhook-allow-private-targets"
        ))
    };
    match parsed.host() {
        None => invalid("needs a host".to_owned()),
        Some(_) if allow_private_targets => Ok(()),
        Some(url::Host::Ipv4(ip)) if is_forbidden_ip(IpAddr::V4(ip)) => refused(&ip.to_string()),
        Some(url::Host::Ipv6(ip)) if is_forbidden_ip(IpAddr::V6(ip)) => refused(&ip.to_string()),
        Some(url::Host::Domain(domain)) if is_local_name(domain) => refused(domain),
        Some(_) => Ok(()),
    }
}

/// Names that mean this machine whatever DNS says (RFC 6761).
fn is_local_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Whether a delivery to `ip` could reach something inside the operator's network rather than the internet:
/// loopback, private (RFC 1918, fc00::/7), link-local (cloud metadata at 169.254.169.254), unspecified,
/// carrier-grade NAT, multicast, broadcast and reserved ranges, and IPv6 forms that embed such an IPv4.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10), IETF protocol assignments (192.0.0.0/24), benchmarking
        // (198.18.0.0/15) and the reserved 240.0.0.0/4.
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Site-local fec0::/10 (deprecated, still routed internally by some networks).
        || (first & 0xffc0) == 0xfec0
        // NAT64 (64:ff9b::/96) reaches the IPv4 it embeds.
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            && is_forbidden_v4(Ipv4Addr::from_bits(ip.to_bits() as u32)))
}

fn check_event_types(event_types: &[String]) -> Result<()> {
    if event_types.is_empty() {
        return Err(Error::invalid(
            "event_types",
            format!(
                "name at least one of {}, or \"*\"",
                EventType::ALL.map(EventType::as_str).join(", ")
            ),
        ));
    }
    for (index, named) in event_types.iter().enumerate() {
        let field = format!("event_types[{index}]");
        if named != WILDCARD && EventType::parse(named).is_none() {
            return Err(Error::invalid(
                field,
                format!(
                    "{named:?} is not an event type; use one of {}, or \"*\"",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            ));
        }
        if event_types[..index].contains(named) {
            return Err(Error::invalid(field, format!("{named:?} is listed twice")));
        }
    }
    Ok(())
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(Error::invalid(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_example() {
        // The test vector of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn secrets_are_32_random_bytes() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        let key = STANDARD
            .decode(a.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert!(!secret_hint(&a).contains(&a[12..]));
    }

    #[test]
    fn internal_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(!is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://example.com/hook", false).is_ok());
        for url in [
            "",
            "example.com",
            "ftp://example.com",
            "http://localhost:8080/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://user:pw@example.com/",
        ] {
            assert_eq!(field_of(check_url(url, false)), "url", "{url:?}");
        }
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
    }

    #[test]
    fn event_types_name_the_bad_entry() {
        let types = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(check_event_types(&types(&["*"])).is_ok());
        assert_eq!(
            field_of(check_event_types(&types(&[
                "ticket.created",
                "ticket.nope"
            ]))),
            "event_types[1]"
        );
        assert_eq!(field_of(check_event_types(&[])), "event_types");
    }

    #[test]
    fn retries_follow_the_schedule_within_the_jitter() {
        let first = retry_delay(1).unwrap();
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
        assert!(retry_delay(7).is_some());
        assert_eq!(retry_delay(8), None);
        assert_eq!(retry_delay(0), None);
    }
}
