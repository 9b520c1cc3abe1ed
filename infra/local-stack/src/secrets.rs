//! Per-state-dir secrets: the JWT secret (unless the environment gives one)
//! and the password of the role PostgREST logs in as. Generated once and kept
//! in `<state>/secrets.json` (mode 0600), so tokens and keys stay valid across
//! restarts of the dev stack.

use std::path::Path;

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
}

/// The secrets in effect. No `Debug`: they must not end up in logs.
pub struct Secrets {
    pub jwt_secret: String,
    pub authenticator_password: String,
    pub keys_issued_at: i64,
}

/// Reads the state dir's secrets, creating them on first use, and applies
/// `SUPABASE_JWT_SECRET` from the environment over the stored JWT secret.
pub fn load_or_create(state_dir: &Path) -> Result<Secrets> {
    let stored = load_or_create_stored(state_dir)?;
    let jwt_secret = match std::env::var("SUPABASE_JWT_SECRET") {
        Ok(secret) if !secret.is_empty() => check_jwt_secret(secret)?,
        _ => stored.jwt_secret,
    };
    Ok(Secrets {
        jwt_secret,
        authenticator_password: stored.authenticator_password,
        keys_issued_at: stored.created_at,
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
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            Error::Setup(format!(
                "{} is not valid ({error}); delete it to generate new secrets",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let stored = StoredSecrets {
                jwt_secret: random::base64url(48),
                authenticator_password: random::hex(24),
                created_at: chrono::Utc::now().timestamp(),
            };
            let json = serde_json::to_vec_pretty(&stored).expect("secrets serialize");
            files::write_private_atomically(&path, &json)?;
            Ok(stored)
        }
        Err(error) => Err(error).context(|| format!("reading {}", path.display())),
    }
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
        assert!(first.jwt_secret.len() >= MIN_JWT_SECRET_BYTES);

        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(check_jwt_secret("short".into()).is_err());
        assert!(check_jwt_secret("x".repeat(MIN_JWT_SECRET_BYTES)).is_ok());
    }
}
