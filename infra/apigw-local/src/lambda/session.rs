//! Session tokens of one instance each. Lambda gives every execution
//! environment its own temporary credentials; here each instance gets the
//! execution role's key with a session token of its own, so a signed
//! `@connections` call says which instance made it (`x-amz-security-token`).
//!
//! A token is `<tag>.<mac>`: the tag names this emulator (a random nonce),
//! the function and the instance; the MAC is an HMAC-SHA256 keyed by the
//! role's secret over the access key id, the role's own session token and the
//! tag. Only the key's holder can make one, so the Management API accepts
//! these tokens beside the role's own, and no others. Another emulator given
//! the same key (a test harness may run two) accepts them too, without
//! attributing them to any instance of its own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sigv4::Credentials;

/// Domain separation: these MACs can never be mistaken for anything else signed with the key.
const CONTEXT: &[u8] = b"apigw-local instance session token\n";

pub(crate) struct InstanceTokens {
    key: Credentials,
    /// Tells this emulator's tokens from another's with the same key.
    nonce: String,
}

impl InstanceTokens {
    pub fn new(key: Credentials) -> Self {
        InstanceTokens {
            key,
            nonce: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        }
    }

    /// The session token of instance `instance` of function `logical_id`.
    pub fn issue(&self, logical_id: &str, instance: u64) -> String {
        let tag = URL_SAFE_NO_PAD.encode(format!("{}/{logical_id}/{instance}", self.nonce));
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&tag));
        format!("{tag}.{mac}")
    }

    /// Whether `token` is one that the key's holder issued to an instance.
    pub fn is_genuine(&self, token: &str) -> bool {
        self.tag(token).is_some()
    }

    /// The function (logical id) and instance of this emulator that `token`
    /// was issued to; `None` for anything else.
    pub fn identify(&self, token: &str) -> Option<(String, u64)> {
        let tag = self.tag(token)?;
        let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(tag).ok()?).ok()?;
        let mut parts = decoded.splitn(3, '/');
        let (nonce, logical_id, instance) = (parts.next()?, parts.next()?, parts.next()?);
        if nonce != self.nonce {
            return None;
        }
        Some((logical_id.to_string(), instance.parse().ok()?))
    }

    /// The tag of a token whose MAC checks out.
    fn tag<'a>(&self, token: &'a str) -> Option<&'a str> {
        let (tag, mac) = token.split_once('.')?;
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let check = self.hmac(tag);
        // Constant-time comparison, inside the hmac crate.
        check.verify_slice(&given).ok()?;
        Some(tag)
    }

    fn mac(&self, tag: &str) -> Vec<u8> {
        self.hmac(tag).finalize().into_bytes().to_vec()
    }

    fn hmac(&self, tag: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.secret_access_key.as_bytes()).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(self.key.access_key_id.as_bytes());
        mac.update(b"\n");
        mac.update(self.key.session_token.as_deref().unwrap_or_default().as_bytes());
        mac.update(b"\n");
        mac.update(tag.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Credentials {
        Credentials {
            access_key_id: "ASIAROLE".into(),
            secret_access_key: "role-secret".into(),
            session_token: Some("role-session".into()),
        }
    }

    #[test]
    fn a_token_names_its_instance() {
        let tokens = InstanceTokens::new(key());
        let first = tokens.issue("WsSendMessageFunction", 0);
        let second = tokens.issue("WsSendMessageFunction", 1);
        assert_ne!(first, second);
        assert!(!first.contains("role-secret") && !first.contains("role-session"));
        assert_eq!(tokens.identify(&first), Some(("WsSendMessageFunction".to_string(), 0)));
        assert_eq!(tokens.identify(&second), Some(("WsSendMessageFunction".to_string(), 1)));
        assert!(tokens.is_genuine(&first));
    }

    #[test]
    fn only_the_keys_holder_makes_tokens() {
        let tokens = InstanceTokens::new(key());
        let genuine = tokens.issue("F", 3);
        let (tag, mac) = genuine.split_once('.').unwrap();

        // Another instance's tag under this MAC, a truncated MAC, garbage.
        let other_tag = URL_SAFE_NO_PAD.encode(format!("{}/F/4", tokens.nonce));
        for forged in [
            format!("{other_tag}.{mac}"),
            format!("{tag}.{}", &mac[..mac.len() - 2]),
            tag.to_string(),
            "role-session".to_string(),
            String::new(),
            format!("{tag}.!!!"),
        ] {
            assert!(!tokens.is_genuine(&forged), "{forged}");
            assert_eq!(tokens.identify(&forged), None, "{forged}");
        }

        // Issued under another secret, or another role session: not genuine here.
        for other_key in [
            Credentials {
                secret_access_key: "guessed".into(),
                ..key()
            },
            Credentials {
                session_token: Some("another-session".into()),
                ..key()
            },
        ] {
            let mut other = InstanceTokens::new(other_key);
            other.nonce = tokens.nonce.clone();
            assert!(!tokens.is_genuine(&other.issue("F", 3)));
        }
    }

    #[test]
    fn another_emulator_with_the_same_key_accepts_but_does_not_attribute() {
        let ours = InstanceTokens::new(key());
        let theirs = InstanceTokens::new(key());
        let token = theirs.issue("F", 0);
        assert!(ours.is_genuine(&token));
        assert_eq!(ours.identify(&token), None);
    }
}
