//! Per-state-dir secrets: the JWT secret (unless the environment gives one),
//! the password of the role PostgREST logs in as, and the AWS key the
//! functions get (the only key the emulator's `@connections` accepts).
//! Generated once and kept in `<state>/secrets.json` (mode 0600), so tokens
//! and keys stay valid across restarts of the dev stack.

use std::path::Path;

use apigw_local::Credentials;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::{files, random};

const FILE_NAME: &str = "secrets.json";

/// Supabase's HS256 secrets are at least this long; shorter ones are weak and
/// some verifiers refuse them.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Serialize, Deserialize)]
struct StoredSecrets {
    jwt_secret: String,
    authenticator_password: String,
    /// When the state was created; the API keys are dated from it so they do
    /// not change on every restart.
    created_at: i64,
    /// Added later than the rest: absent from older files, then generated.
    #[serde(default)]
    aws: Option<StoredAwsKey>,
    /// Likewise: the Web Push application server key pair.
    #[serde(default)]
    vapid: Option<VapidKeyPair>,
}

/// A P-256 key pair for VAPID (RFC 8292), base64url without padding: the
/// private scalar (32 bytes) and the uncompressed public point (65 bytes).
#[derive(Clone, Serialize, Deserialize)]
pub struct VapidKeyPair {
    pub private_key: String,
    pub public_key: String,
}

impl VapidKeyPair {
    fn generate() -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = loop {
            // Not a valid scalar only if zero or past the group order: about never.
            if let Ok(key) = p256::SecretKey::from_slice(&random::bytes(32)) {
                break key;
            }
        };
        VapidKeyPair {
            private_key: URL_SAFE_NO_PAD.encode(key.to_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredAwsKey {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

impl StoredAwsKey {
    /// Shaped like Lambda's temporary credentials: `ASIA` and 16 base32
    /// characters, a 40-character secret, a session token.
    fn generate() -> Self {
        const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id: String = random::bytes(16)
            .iter()
            .map(|b| BASE32[usize::from(b % 32)] as char)
            .collect();
        StoredAwsKey {
            access_key_id: format!("ASIA{id}"),
            secret_access_key: random::base64url(30),
            session_token: random::base64url(96),
        }
    }
}

/// The secrets in effect. No `Debug`: they must not end up in logs.
pub struct Secrets {
    pub jwt_secret: String,
    pub authenticator_password: String,
    pub keys_issued_at: i64,
    /// The functions' execution-role key.
    pub aws: Credentials,
    /// The local Web Push key pair.
    pub vapid: VapidKeyPair,
}

/// Reads the state dir's secrets, creating them on first use, and applies
/// `SUPABASE_JWT_SECRET` from the environment over the stored JWT secret.
pub fn load_or_create(state_dir: &Path) -> Result<Secrets> {
    let stored = load_or_create_stored(state_dir)?;
    let jwt_secret = match std::env::var("SUPABASE_JWT_SECRET") {
        Ok(secret) if !secret.is_empty() => check_jwt_secret(secret)?,
        _ => stored.jwt_secret,
    };
    let aws = stored.aws.expect("load_or_create_stored fills the AWS key");
    let vapid = stored.vapid.expect("load_or_create_stored fills the VAPID key");
    Ok(Secrets {
        jwt_secret,
        authenticator_password: stored.authenticator_password,
        keys_issued_at: stored.created_at,
        aws: Credentials {
            access_key_id: aws.access_key_id,
            secret_access_key: aws.secret_access_key,
            session_token: Some(aws.session_token),
        },
        vapid,
    })
}

fn check_jwt_secret(secret: String) -> Result<String> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(Error::Setup(format!(
            "SUPABASE_JWT_SECRET is {} bytes; it must be at least {MIN_JWT_SECRET_BYTES} \
             (unset it to use a generated one)",
            secret.len()
        )));
    }
    Ok(secret)
}

fn load_or_create_stored(state_dir: &Path) -> Result<StoredSecrets> {
    let path = state_dir.join(FILE_NAME);
    let stored = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<StoredSecrets>(&bytes).map_err(|error| {
            Error::Setup(format!(
                "{} is not valid ({error}); delete it to generate new secrets",
                path.display()
            ))
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => StoredSecrets {
            jwt_secret: random::base64url(48),
            authenticator_password: random::hex(24),
            created_at: chrono::Utc::now().timestamp(),
            aws: None,
            vapid: None,
        },
        Err(error) => return Err(error).context(|| format!("reading {}", path.display())),
    };
    if stored.aws.is_some() && stored.vapid.is_some() {
        return Ok(stored);
    }
    let stored = StoredSecrets {
        aws: stored.aws.or_else(|| Some(StoredAwsKey::generate())),
        vapid: stored.vapid.or_else(|| Some(VapidKeyPair::generate())),
        ..stored
    };
    let json = serde_json::to_vec_pretty(&stored).expect("secrets serialize");
    files::write_private_atomically(&path, &json)?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_created_once_and_then_reused() {
        let dir = crate::files::TestDir::new("secrets");
        let first = load_or_create_stored(dir.path()).unwrap();
        let again = load_or_create_stored(dir.path()).unwrap();
        assert_eq!(first.jwt_secret, again.jwt_secret);
        assert_eq!(first.authenticator_password, again.authenticator_password);
        let (key, same) = (first.aws.as_ref().unwrap(), again.aws.as_ref().unwrap());
        assert_eq!(key.access_key_id, same.access_key_id);
        assert_eq!(key.secret_access_key, same.secret_access_key);
        assert!(key.access_key_id.starts_with("ASIA") && key.access_key_id.len() == 20);
        assert!(key.secret_access_key.len() == 40 && !key.session_token.is_empty());
        assert!(first.jwt_secret.len() >= MIN_JWT_SECRET_BYTES);
        let (vapid, same) = (first.vapid.as_ref().unwrap(), again.vapid.as_ref().unwrap());
        assert_eq!(
            (&vapid.private_key, &vapid.public_key),
            (&same.private_key, &same.public_key)
        );
        // The public key is the private key's point, uncompressed.
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let private = p256::SecretKey::from_slice(&URL_SAFE_NO_PAD.decode(&vapid.private_key).unwrap()).unwrap();
        let point = private.public_key().to_encoded_point(false);
        assert_eq!(URL_SAFE_NO_PAD.decode(&vapid.public_key).unwrap(), point.as_bytes());
        assert_eq!(vapid.public_key.len(), 87);

        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A state made before the AWS key existed gets one, and keeps the rest.
    #[test]
    fn an_older_file_gains_an_aws_key() {
        let dir = crate::files::TestDir::new("secrets-old");
        let old = r#"{"jwt_secret":"j","authenticator_password":"p","created_at":5}"#;
        crate::files::write_private_atomically(&dir.path().join(FILE_NAME), old.as_bytes()).unwrap();
        let upgraded = load_or_create_stored(dir.path()).unwrap();
        assert_eq!((upgraded.jwt_secret.as_str(), upgraded.created_at), ("j", 5));
        let key = upgraded.aws.unwrap().access_key_id;
        assert_eq!(
            load_or_create_stored(dir.path()).unwrap().aws.unwrap().access_key_id,
            key
        );
        // Another state, another key.
        let other = crate::files::TestDir::new("secrets-other");
        assert_ne!(
            load_or_create_stored(other.path()).unwrap().aws.unwrap().access_key_id,
            key
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(check_jwt_secret("short".into()).is_err());
        assert!(check_jwt_secret("x".repeat(MIN_JWT_SECRET_BYTES)).is_ok());
    }
}
