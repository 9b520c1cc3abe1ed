//! The project's asymmetric signing keys, fetched from its JWKS URL and cached by
//! `kid`. An unknown `kid` triggers a refresh (keys rotate), but at most once per
//! [`MIN_REFRESH_INTERVAL`], so a flood of tokens with made-up key ids cannot turn
//! every request into a request to the auth server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use super::AuthError;

const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Cached keys are refetched after this long even when every `kid` is known, so
/// a revoked key stops being accepted.
const MAX_KEY_AGE: Duration = Duration::from_secs(600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

pub struct JwksCache {
    url: Url,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// Serializes refreshes: concurrent misses wait for one fetch.
    refreshing: Mutex<()>,
}

impl JwksCache {
    pub fn new(url: Url, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            keys: RwLock::new(Keys::default()),
            refreshing: Mutex::new(()),
        }
    }

    /// The key for `kid`, pinned to `alg`: a token may not choose another algorithm
    /// than the one its key was published for.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(found) = self.lookup(kid, alg, MAX_KEY_AGE).await {
            return found;
        }
        let _one_fetch = self.refreshing.lock().await;
        // Another task may have refreshed while this one waited.
        if let Some(found) = self.lookup(kid, alg, MAX_KEY_AGE).await {
            return found;
        }
        let mut fetch_failed = false;
        let may_fetch = self
            .keys
            .read()
            .await
            .fetched_at
            .is_none_or(|at| at.elapsed() >= MIN_REFRESH_INTERVAL);
        if may_fetch {
            match self.fetch().await {
                Ok(by_kid) => {
                    *self.keys.write().await = Keys {
                        by_kid,
                        fetched_at: Some(Instant::now()),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fetching the JWKS failed");
                    fetch_failed = true;
                    // Keep serving the keys we have; stale beats none.
                    self.keys.write().await.fetched_at = Some(Instant::now());
                }
            }
        }
        // When the keys could not be fetched, an unknown kid says nothing about
        // the token: answer "try again" rather than signing the user out.
        let unknown = if fetch_failed {
            AuthError::KeysUnavailable
        } else {
            AuthError::Invalid("unknown signing key")
        };
        self.lookup(kid, alg, Duration::MAX).await.unwrap_or(Err(unknown))
    }

    async fn lookup(&self, kid: &str, alg: Algorithm, max_age: Duration) -> Option<Result<DecodingKey, AuthError>> {
        let keys = self.keys.read().await;
        let fresh = keys.fetched_at.is_some_and(|at| at.elapsed() < max_age);
        let (pinned, key) = keys.by_kid.get(kid).filter(|_| fresh)?;
        Some(if *pinned == alg {
            Ok(key.clone())
        } else {
            Err(AuthError::Invalid("algorithm does not match the key"))
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, DecodingKey)>, reqwest::Error> {
        let set: JwkSet = self
            .http
            .get(self.url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set.keys.iter().filter_map(usable_key).collect())
    }
}

/// A signing key we accept: ES256 (P-256) or RS256, with a `kid`.
fn usable_key(jwk: &Jwk) -> Option<(String, (Algorithm, DecodingKey))> {
    let kid = jwk.common.key_id.clone()?;
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        (Some(KeyAlgorithm::RS256) | None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, (alg, key)))
}

#[cfg(test)]
mod tests {
    use super::super::{AuthError, TokenVerifier};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use serde_json::json;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fresh P-256 key pair: (PKCS#8 private PEM, JWK x, JWK y).
    fn p256_key() -> (Vec<u8>, String, String) {
        let pem = Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
            .output()
            .expect("openssl is needed to generate a test key")
            .stdout;
        let mut child = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &pem).unwrap();
        let der = child.wait_with_output().unwrap().stdout;
        // SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
        let point = &der[der.len() - 64..];
        (
            pem,
            URL_SAFE_NO_PAD.encode(&point[..32]),
            URL_SAFE_NO_PAD.encode(&point[32..]),
        )
    }

    /// Serves `body` as JSON to every request on a loopback port; counts requests.
    async fn serve_jwks(body: String) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/auth/v1/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (url, hits)
    }

    fn claims() -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": "00000000-0000-4000-8000-000000000b0b", "role": "authenticated",
               "aud": "authenticated", "exp": now + 600})
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_unavailable_not_a_bad_token() {
        let (pem, _, _) = p256_key();
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = super::super::tests::config(None);
        config.jwks_url = format!("http://127.0.0.1:{port}/jwks.json").parse().unwrap();
        let verifier = TokenVerifier::new(&config, reqwest::Client::new());
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("key-1".into());
        let token = encode(&header, &claims(), &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap();
        assert_eq!(verifier.verify(&token).await, Err(AuthError::KeysUnavailable));
    }

    #[tokio::test]
    async fn verifies_es256_tokens_with_keys_from_the_jwks_url() {
        let (pem, x, y) = p256_key();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "key-1", "alg": "ES256", "use": "sig"}]});
        let (url, hits) = serve_jwks(jwks.to_string()).await;
        let mut config = super::super::tests::config(None);
        config.jwks_url = url.parse().unwrap();
        let verifier = TokenVerifier::new(&config, reqwest::Client::new());
        let signing = EncodingKey::from_ec_pem(&pem).unwrap();

        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("key-1".into());
        let token = encode(&header, &claims(), &signing).unwrap();
        let caller = verifier.verify(&token).await.unwrap();
        assert_eq!(caller.user_id.to_string(), "00000000-0000-4000-8000-000000000b0b");
        // Cached: a second token costs no fetch.
        verifier.verify(&token).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // Unknown kid: one refresh, then throttled.
        header.kid = Some("made-up".into());
        let unknown = encode(&header, &claims(), &signing).unwrap();
        assert_eq!(
            verifier.verify(&unknown).await,
            Err(AuthError::Invalid("unknown signing key"))
        );
        assert_eq!(
            verifier.verify(&unknown).await,
            Err(AuthError::Invalid("unknown signing key"))
        );
        assert!(hits.load(Ordering::SeqCst) <= 2, "refreshes must be throttled");

        // A token may not switch the algorithm its key is pinned to.
        let mut forged = Header::new(Algorithm::RS256);
        forged.kid = Some("key-1".into());
        let parts: Vec<&str> = token.split('.').collect();
        let forged_token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap()),
            parts[1],
            parts[2]
        );
        assert!(verifier.verify(&forged_token).await.is_err());
    }
}
