//! The notification function's configuration: what a notification shows, the
//! VAPID key Web Push is sent with, and the webhook. Every value is checked
//! at start-up; a channel whose variables are all unset is off.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use url::{Host, Url};

use crate::config::{url_from_env, ConfigError, Env, Secret};

/// How much of a message a notification shows (`NOTIFICATION_PREVIEW`):
/// decided in SQL (`notification_targets`), named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewMode {
    Full,
    Preview,
    None,
}

impl PreviewMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewMode::Full => "full",
            PreviewMode::Preview => "preview",
            PreviewMode::None => "none",
        }
    }
}

/// The application server's key pair (RFC 8292): the private scalar and the
/// public point browsers subscribe with, and the contact push services may use.
#[derive(Clone)]
pub struct VapidKey {
    pub private_key: p256::SecretKey,
    /// The uncompressed point, base64url: `applicationServerKey`, and `k=`.
    pub public_key: String,
    /// `mailto:` or `https:` (RFC 8292 §2.1).
    pub subject: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Where the webhook posts, and the secret that signs it.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: Url,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub preview: PreviewMode,
    pub vapid: Option<VapidKey>,
    pub webhook: Option<WebhookTarget>,
}

/// A webhook secret shorter than this is too weak for HMAC-SHA256 to mean much.
const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

impl NotifyConfig {
    pub fn from(env: &impl Env) -> Result<Self, ConfigError> {
        let preview = match env.var("NOTIFICATION_PREVIEW").as_deref().map(str::trim) {
            None | Some("preview") => PreviewMode::Preview,
            Some("full") => PreviewMode::Full,
            Some("none") => PreviewMode::None,
            Some(other) => {
                return Err(ConfigError {
                    name: "NOTIFICATION_PREVIEW",
                    problem: format!("must be full, preview or none, not {other:?}"),
                })
            }
        };
        Ok(Self {
            preview,
            vapid: vapid_key(env)?,
            webhook: webhook(env)?,
        })
    }
}

/// `VAPID_PUBLIC_KEY`, as the subscription endpoint's function serves it;
/// `None` when Web Push is not configured.
pub fn vapid_public_key(env: &impl Env) -> Result<Option<String>, ConfigError> {
    env.var("VAPID_PUBLIC_KEY")
        .map(|raw| {
            let key = raw.trim().to_string();
            public_point(&key).map(|_| key)
        })
        .transpose()
}

fn public_point(key: &str) -> Result<p256::PublicKey, ConfigError> {
    let problem = || ConfigError {
        name: "VAPID_PUBLIC_KEY",
        problem: "must be an uncompressed P-256 public key (65 bytes), base64url without padding".into(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(key).map_err(|_| problem())?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(problem());
    }
    p256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| problem())
}

/// All three of `VAPID_PRIVATE_KEY`, `VAPID_PUBLIC_KEY` and `VAPID_SUBJECT`,
/// or none; the public key must be the private key's.
fn vapid_key(env: &impl Env) -> Result<Option<VapidKey>, ConfigError> {
    let names = ["VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY", "VAPID_SUBJECT"];
    let [private, public, subject] = names.map(|name| env.var(name));
    if private.is_none() && public.is_none() && subject.is_none() {
        return Ok(None);
    }
    let required = |value: Option<String>, name: &'static str| {
        value.map(|v| v.trim().to_string()).ok_or(ConfigError {
            name,
            problem: "is required with the other VAPID_* variables".into(),
        })
    };
    let private = required(private, "VAPID_PRIVATE_KEY")?;
    let public = required(public, "VAPID_PUBLIC_KEY")?;
    let subject = required(subject, "VAPID_SUBJECT")?;
    let private_key = URL_SAFE_NO_PAD
        .decode(&private)
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .and_then(|bytes| p256::SecretKey::from_slice(&bytes).ok())
        .ok_or(ConfigError {
            name: "VAPID_PRIVATE_KEY",
            problem: "must be a P-256 private key (32 bytes), base64url without padding".into(),
        })?;
    if private_key.public_key() != public_point(&public)? {
        return Err(ConfigError {
            name: "VAPID_PUBLIC_KEY",
            problem: "is not the public key of VAPID_PRIVATE_KEY".into(),
        });
    }
    let contact = Url::parse(&subject).ok();
    if !matches!(contact.as_ref().map(Url::scheme), Some("mailto" | "https")) {
        return Err(ConfigError {
            name: "VAPID_SUBJECT",
            problem: "must be a mailto: or https: URL (RFC 8292)".into(),
        });
    }
    Ok(Some(VapidKey {
        private_key,
        public_key: public,
        subject,
    }))
}

/// `WEBHOOK_URL` and `WEBHOOK_SECRET`, both or neither. https, or plain http
/// to this machine (a local receiver; nothing else would be protected).
fn webhook(env: &impl Env) -> Result<Option<WebhookTarget>, ConfigError> {
    let (url, secret) = (env.var("WEBHOOK_URL"), env.var("WEBHOOK_SECRET"));
    let (url, secret) = match (url, secret) {
        (None, None) => return Ok(None),
        (Some(url), Some(secret)) => (url, secret),
        (None, Some(_)) => {
            return Err(ConfigError {
                name: "WEBHOOK_URL",
                problem: "is required with WEBHOOK_SECRET".into(),
            })
        }
        (Some(_), None) => {
            return Err(ConfigError {
                name: "WEBHOOK_SECRET",
                problem: "is required with WEBHOOK_URL".into(),
            })
        }
    };
    let url = url_from_env("WEBHOOK_URL", &url)?;
    if !(url.scheme() == "https" || url.scheme() == "http" && is_loopback(&url)) || url.host().is_none() {
        return Err(ConfigError {
            name: "WEBHOOK_URL",
            problem: "must be an https URL (plain http only to localhost)".into(),
        });
    }
    if secret.len() < MIN_WEBHOOK_SECRET_BYTES {
        return Err(ConfigError {
            name: "WEBHOOK_SECRET",
            problem: format!("must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes"),
        });
    }
    Ok(Some(WebhookTarget {
        url,
        secret: Secret::new(secret),
    }))
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key pair for tests (never a deployment's).
    pub const PRIVATE: &str = "RS0WdYWWo1HajXg3NZR1olzCf31i-ZBGDkFyCs7j1jw";

    pub fn public_of(private: &str) -> String {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = p256::SecretKey::from_slice(&URL_SAFE_NO_PAD.decode(private).unwrap()).unwrap();
        URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes())
    }

    #[test]
    fn every_channel_is_off_unless_configured() {
        let config = NotifyConfig::from(&[("SUPABASE_URL", "https://x.supabase.co")]).unwrap();
        assert_eq!(config.preview, PreviewMode::Preview);
        assert!(config.vapid.is_none() && config.webhook.is_none());
        assert_eq!(vapid_public_key(&[("X", "y")]).unwrap(), None);
    }

    #[test]
    fn reads_a_matching_vapid_key_pair() {
        let public = public_of(PRIVATE);
        let vapid = NotifyConfig::from(&[
            ("VAPID_PRIVATE_KEY", PRIVATE),
            ("VAPID_PUBLIC_KEY", public.as_str()),
            ("VAPID_SUBJECT", "mailto:ops@example.com"),
            ("NOTIFICATION_PREVIEW", "none"),
        ])
        .unwrap();
        assert_eq!(vapid.preview, PreviewMode::None);
        assert_eq!(vapid.vapid.as_ref().unwrap().public_key, public);
        assert!(!format!("{vapid:?}").contains(PRIVATE));
        assert_eq!(
            vapid_public_key(&[("VAPID_PUBLIC_KEY", public.as_str())]).unwrap(),
            Some(public.clone())
        );

        let other = public_of("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE");
        let mismatch = NotifyConfig::from(&[
            ("VAPID_PRIVATE_KEY", PRIVATE),
            ("VAPID_PUBLIC_KEY", other.as_str()),
            ("VAPID_SUBJECT", "mailto:ops@example.com"),
        ])
        .unwrap_err();
        assert_eq!(mismatch.name, "VAPID_PUBLIC_KEY");
        let partial = NotifyConfig::from(&[("VAPID_PRIVATE_KEY", PRIVATE)]).unwrap_err();
        assert_eq!(partial.name, "VAPID_PUBLIC_KEY");
        let subject = NotifyConfig::from(&[
            ("VAPID_PRIVATE_KEY", PRIVATE),
            ("VAPID_PUBLIC_KEY", public.as_str()),
            ("VAPID_SUBJECT", "ops@example.com"),
        ])
        .unwrap_err();
        assert_eq!(subject.name, "VAPID_SUBJECT");
        let bad = vapid_public_key(&[("VAPID_PUBLIC_KEY", "BAAA")]).unwrap_err();
        assert_eq!(bad.name, "VAPID_PUBLIC_KEY");
        assert_eq!(
            NotifyConfig::from(&[("NOTIFICATION_PREVIEW", "all")]).unwrap_err().name,
            "NOTIFICATION_PREVIEW"
        );
    }

    #[test]
    fn a_webhook_is_https_or_local_with_a_long_secret() {
        let secret = "s".repeat(32);
        let with = |url: &'static str| NotifyConfig::from(&[("WEBHOOK_URL", url), ("WEBHOOK_SECRET", secret.as_str())]);
        assert!(with("https://hooks.example.com/chat").unwrap().webhook.is_some());
        assert!(with("http://127.0.0.1:9000/hook").unwrap().webhook.is_some());
        assert!(with("http://localhost/hook").unwrap().webhook.is_some());
        for bad in ["http://hooks.example.com/chat", "ftp://127.0.0.1/x", "not a url"] {
            assert_eq!(with(bad).unwrap_err().name, "WEBHOOK_URL", "{bad}");
        }
        let short = NotifyConfig::from(&[("WEBHOOK_URL", "https://h.example.com"), ("WEBHOOK_SECRET", "short")]);
        assert_eq!(short.unwrap_err().name, "WEBHOOK_SECRET");
        let alone = NotifyConfig::from(&[("WEBHOOK_SECRET", secret.as_str())]);
        assert_eq!(alone.unwrap_err().name, "WEBHOOK_URL");
        let printed = format!("{:?}", with("https://hooks.example.com/chat").unwrap());
        assert!(!printed.contains(&secret));
    }
}
