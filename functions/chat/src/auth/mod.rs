//! Supabase access-token verification.
//!
//! Two kinds of keys sign Supabase tokens: the legacy HS256 shared secret and the
//! project's asymmetric signing keys (ES256/RS256) published as a JWKS. Each key
//! is pinned to one algorithm, so a token can never pick how it is checked (no
//! `alg: none`, no RS256 public key used as an HMAC secret).

mod jwks;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;
pub use jwks::JwksCache;

/// Clock skew tolerated on `exp` (and `nbf`), in seconds: a few, because every
/// second of it is a second a withdrawn session keeps working. The database
/// applies the same to requests that reach PostgREST directly
/// (`public.caller_id()`), whose own allowance is larger (30 s in PostgREST).
pub const LEEWAY_SECONDS: u64 = 5;
/// The only audience and role a chat user's token may carry.
const AUTHENTICATED: &str = "authenticated";
/// Tokens longer than this are refused before any parsing (Supabase's are ~1 KB).
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. Messages are safe to show: they never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("an access token is required")]
    Missing,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid: {0}")]
    Invalid(&'static str),
    #[error("the signing keys could not be fetched")]
    KeysUnavailable,
}

impl AuthError {
    /// Stable machine-readable code for error bodies and events.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Expired => "token_expired",
            AuthError::Invalid(_) => "invalid_token",
            AuthError::KeysUnavailable => "auth_unavailable",
        }
    }
}

/// Who is calling, as proven by a verified token: on REST, the bearer token of
/// the request; on WebSocket, the token offered at `$connect`, which the
/// authorizer hands on as this struct (its context) to every later event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub user_id: Uuid,
    /// `exp` of the token, seconds since the epoch.
    pub token_exp: i64,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    role: Option<String>,
    /// Set by Supabase Auth on the tokens of anonymous sign-ins.
    #[serde(default)]
    is_anonymous: Option<bool>,
}

/// Verifies Supabase access tokens; built once per Lambda instance.
pub struct TokenVerifier {
    shared_secret: Option<DecodingKey>,
    jwks: JwksCache,
    issuer: Option<String>,
    allow_anonymous_users: bool,
}

impl TokenVerifier {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            shared_secret: config
                .jwt_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            jwks: JwksCache::new(config.jwks_url.clone(), http),
            issuer: config.jwt_issuer.clone(),
            allow_anonymous_users: config.allow_anonymous_users,
        }
    }

    /// Checks signature, `exp`, `aud`, `role`, `sub`, (when configured) `iss`,
    /// and refuses anonymous sign-ins unless they are allowed.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("too long"));
        }
        let header = decode_header(token).map_err(|_| AuthError::Invalid("malformed"))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .shared_secret
                .clone()
                .ok_or(AuthError::Invalid("HS256 tokens are not accepted"))?,
            Algorithm::ES256 | Algorithm::RS256 => {
                let kid = header.kid.as_deref().ok_or(AuthError::Invalid("no key id"))?;
                self.jwks.key(kid, header.alg).await?
            }
            _ => return Err(AuthError::Invalid("unsupported algorithm")),
        };
        self.check(token, header.alg, &key)
    }

    fn check(&self, token: &str, alg: Algorithm, key: &DecodingKey) -> Result<Caller, AuthError> {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[AUTHENTICATED]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature"),
                ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience"),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer"),
                ErrorKind::MissingRequiredClaim(_) => AuthError::Invalid("missing claim"),
                ErrorKind::ImmatureSignature => AuthError::Invalid("not valid yet"),
                _ => AuthError::Invalid("malformed"),
            }
        })?;
        let claims = data.claims;
        if claims.role.as_deref() != Some(AUTHENTICATED) {
            return Err(AuthError::Invalid("role is not authenticated"));
        }
        // Supabase gives anonymous sign-ins the role authenticated too: only
        // this claim tells them apart. SQL: `public.caller_id()`.
        if claims.is_anonymous == Some(true) && !self.allow_anonymous_users {
            return Err(AuthError::Invalid("anonymous sign-ins are not allowed"));
        }
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::Invalid("sub is not a UUID"))?;
        Ok(Caller {
            user_id,
            token_exp: claims.exp,
        })
    }
}

/// The token from an `Authorization: Bearer …` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::Invalid("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Invalid("expected `Bearer <token>`"));
    }
    Ok(token.trim())
}

/// A token offered as a WebSocket subprotocol: browsers cannot set headers on a
/// WebSocket, so clients send `Sec-WebSocket-Protocol: chat, <token>`.
/// Returns the token and the protocol to echo back (the first non-token entry).
pub fn token_from_subprotocols(header: &str) -> (Option<&str>, Option<&str>) {
    let mut token = None;
    let mut protocol = None;
    for entry in header.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if looks_like_jwt(entry) {
            token.get_or_insert(entry);
        } else {
            protocol.get_or_insert(entry);
        }
    }
    (token, protocol)
}

fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3 && value.len() > 20
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";

    pub fn config(issuer: Option<&str>) -> Config {
        let mut config = Config::from(&[
            ("SUPABASE_URL", "http://127.0.0.1:9"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service"),
            ("SUPABASE_JWT_SECRET", SECRET),
        ])
        .unwrap();
        config.jwt_issuer = issuer.map(str::to_string);
        config
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    pub fn hs256(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn good_claims() -> serde_json::Value {
        json!({"sub": "00000000-0000-4000-8000-00000000a11c", "role": "authenticated",
               "aud": "authenticated", "exp": now() + 600, "iat": now()})
    }

    fn verifier(issuer: Option<&str>) -> TokenVerifier {
        TokenVerifier::new(&config(issuer), reqwest::Client::new())
    }

    #[tokio::test]
    async fn accepts_a_valid_hs256_token() {
        let caller = verifier(None).verify(&hs256(good_claims(), SECRET)).await.unwrap();
        assert_eq!(caller.user_id.to_string(), "00000000-0000-4000-8000-00000000a11c");
    }

    #[tokio::test]
    async fn accepts_audience_as_array() {
        let mut claims = good_claims();
        claims["aud"] = json!(["other", "authenticated"]);
        assert!(verifier(None).verify(&hs256(claims, SECRET)).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_what_supabase_would_refuse() {
        let v = verifier(None);
        let wrong_secret = hs256(good_claims(), "another-secret-of-thirty-two-bytes-or-more");
        assert_eq!(v.verify(&wrong_secret).await, Err(AuthError::Invalid("bad signature")));

        let mut expired = good_claims();
        expired["exp"] = json!(now() - 120);
        assert_eq!(v.verify(&hs256(expired, SECRET)).await, Err(AuthError::Expired));

        let mut within_skew = good_claims();
        within_skew["exp"] = json!(now() - 3);
        assert!(v.verify(&hs256(within_skew, SECRET)).await.is_ok());

        let mut past_skew = good_claims();
        past_skew["exp"] = json!(now() - 10);
        assert_eq!(v.verify(&hs256(past_skew, SECRET)).await, Err(AuthError::Expired));

        let mut audience = good_claims();
        audience["aud"] = json!("someone-else");
        assert_eq!(
            v.verify(&hs256(audience, SECRET)).await,
            Err(AuthError::Invalid("wrong audience"))
        );

        let mut anon = good_claims();
        anon["role"] = json!("anon");
        assert_eq!(
            v.verify(&hs256(anon, SECRET)).await,
            Err(AuthError::Invalid("role is not authenticated"))
        );

        let mut not_uuid = good_claims();
        not_uuid["sub"] = json!("alice");
        assert_eq!(
            v.verify(&hs256(not_uuid, SECRET)).await,
            Err(AuthError::Invalid("sub is not a UUID"))
        );

        let mut no_exp = good_claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(v.verify(&hs256(no_exp, SECRET)).await.is_err());

        assert_eq!(v.verify("").await, Err(AuthError::Missing));
        assert_eq!(v.verify("not-a-token").await, Err(AuthError::Invalid("malformed")));
    }

    #[tokio::test]
    async fn refuses_alg_none_and_unpinned_algorithms() {
        let v = verifier(None);
        // {"alg":"none"} header with a valid payload and no signature.
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&good_claims()).unwrap(),
        );
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(v.verify(&none).await.is_err());
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &good_claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512).await, Err(AuthError::Invalid("unsupported algorithm")));
    }

    #[tokio::test]
    async fn refuses_anonymous_sign_ins_unless_allowed() {
        let mut anonymous = good_claims();
        anonymous["is_anonymous"] = json!(true);
        let token = hs256(anonymous, SECRET);
        assert_eq!(
            verifier(None).verify(&token).await,
            Err(AuthError::Invalid("anonymous sign-ins are not allowed"))
        );
        let mut named = good_claims();
        named["is_anonymous"] = json!(false);
        assert!(verifier(None).verify(&hs256(named, SECRET)).await.is_ok());

        let mut allowing = config(None);
        allowing.allow_anonymous_users = true;
        let v = TokenVerifier::new(&allowing, reqwest::Client::new());
        assert!(v.verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn checks_issuer_when_configured() {
        let v = verifier(Some("https://x.supabase.co/auth/v1"));
        let mut claims = good_claims();
        assert_eq!(
            v.verify(&hs256(claims.clone(), SECRET)).await,
            Err(AuthError::Invalid("missing claim"))
        );
        claims["iss"] = json!("https://evil.example/auth/v1");
        assert_eq!(
            v.verify(&hs256(claims.clone(), SECRET)).await,
            Err(AuthError::Invalid("wrong issuer"))
        );
        claims["iss"] = json!("https://x.supabase.co/auth/v1");
        assert!(v.verify(&hs256(claims, SECRET)).await.is_ok());
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(Some("bearer  abc")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::Missing));
        assert!(bearer_token(Some("Basic abc")).is_err());
        assert!(bearer_token(Some("Bearer ")).is_err());
    }

    #[test]
    fn finds_token_among_subprotocols() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(
            token_from_subprotocols(&format!("chat, {jwt}")),
            (Some(jwt), Some("chat"))
        );
        assert_eq!(token_from_subprotocols(jwt), (Some(jwt), None));
        assert_eq!(token_from_subprotocols("chat"), (None, Some("chat")));
    }
}
