//! Configuration read once per Lambda instance, from the environment only.
//!
//! Every value is validated here so that a misconfigured function fails at
//! start-up with a message naming the variable, never in the middle of a
//! request. Secret values are kept in [`Secret`], whose `Debug` never prints them.

use std::fmt;

use url::Url;

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// A value that must never reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything a chat function needs to reach Supabase and API Gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgREST base URL (`SUPABASE_REST_URL`, else `SUPABASE_URL` + `/rest/v1`).
    pub rest_url: Url,
    /// Public anon key, sent as `apikey` (Supabase's gateway requires it).
    pub anon_key: Secret,
    /// service_role key, for the internal RPCs (connection registry, writes that
    /// return other users' connections). Only the functions that call them are
    /// given it; the others run without.
    pub service_role_key: Option<Secret>,
    /// Legacy HS256 secret; `None` when the project uses asymmetric keys only.
    pub jwt_secret: Option<Secret>,
    /// Where the asymmetric signing keys are published.
    pub jwks_url: Url,
    /// Expected `iss`, when configured.
    pub jwt_issuer: Option<String>,
    /// API Gateway Management API endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub management_endpoint: Option<Url>,
    /// Whether tokens of anonymous sign-ins (`is_anonymous: true`) are
    /// accepted (`ALLOW_ANONYMOUS_USERS`, `true` or `false`; false when unset).
    pub allow_anonymous_users: bool,
}

/// Source of variables: the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Below this many bytes an HS256 secret is too weak to accept (RFC 7518 §3.2).
const MIN_HS256_SECRET_BYTES: usize = 32;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&ProcessEnv)
    }

    pub fn from(env: &impl Env) -> Result<Self, ConfigError> {
        let supabase_url = required_url(env, "SUPABASE_URL")?;
        let rest_url = match env.var("SUPABASE_REST_URL") {
            Some(raw) => parse_url("SUPABASE_REST_URL", &raw)?,
            None => join(&supabase_url, "rest/v1"),
        };
        let jwks_url = match env.var("SUPABASE_JWKS_URL") {
            Some(raw) => parse_url("SUPABASE_JWKS_URL", &raw)?,
            None => join(&supabase_url, "auth/v1/.well-known/jwks.json"),
        };
        let jwt_secret = env.var("SUPABASE_JWT_SECRET").map(Secret::new);
        if let Some(secret) = &jwt_secret {
            if secret.expose().len() < MIN_HS256_SECRET_BYTES {
                return Err(ConfigError {
                    name: "SUPABASE_JWT_SECRET",
                    problem: format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                });
            }
        }
        let management_endpoint = env
            .var("WEBSOCKET_MANAGEMENT_ENDPOINT")
            .map(|raw| parse_url("WEBSOCKET_MANAGEMENT_ENDPOINT", &raw))
            .transpose()?;
        Ok(Self {
            rest_url,
            anon_key: required_secret(env, "SUPABASE_ANON_KEY")?,
            service_role_key: env.var("SUPABASE_SERVICE_ROLE_KEY").map(Secret::new),
            jwt_secret,
            jwks_url,
            jwt_issuer: env.var("SUPABASE_JWT_ISSUER"),
            management_endpoint,
            allow_anonymous_users: boolean(env, "ALLOW_ANONYMOUS_USERS")?.unwrap_or(false),
        })
    }
}

/// `true` or `false` (any letter case), or unset; anything else is an error
/// rather than a guess.
fn boolean(env: &impl Env, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match env.var(name) {
        None => Ok(None),
        Some(raw) if raw.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(raw) if raw.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(raw) => Err(ConfigError {
            name,
            problem: format!("must be true or false, not {raw:?}"),
        }),
    }
}

fn required_secret(env: &impl Env, name: &'static str) -> Result<Secret, ConfigError> {
    env.var(name).map(Secret::new).ok_or(ConfigError {
        name,
        problem: "is required".into(),
    })
}

fn required_url(env: &impl Env, name: &'static str) -> Result<Url, ConfigError> {
    let raw = env.var(name).ok_or(ConfigError {
        name,
        problem: "is required".into(),
    })?;
    parse_url(name, &raw)
}

fn parse_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| ConfigError {
        name,
        problem: format!("is not a URL ({e})"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(ConfigError {
            name,
            problem: format!("must be http or https, not {other}"),
        }),
    }
}

/// Appends path segments to a base URL whether or not it ends with a slash.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{trimmed}/{path}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn derives_rest_and_jwks_urls_from_the_project_url() {
        let env = [
            ("SUPABASE_URL", "https://abcd.supabase.co/"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service"),
        ];
        let config = Config::from(&env).unwrap();
        assert_eq!(config.rest_url.as_str(), "https://abcd.supabase.co/rest/v1");
        assert_eq!(
            config.jwks_url.as_str(),
            "https://abcd.supabase.co/auth/v1/.well-known/jwks.json"
        );
        assert!(config.jwt_secret.is_none());
        assert!(config.management_endpoint.is_none());
        // Functions that only read on the caller's behalf get no service key.
        let reader = Config::from(&[
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("SUPABASE_ANON_KEY", "anon"),
        ])
        .unwrap();
        assert!(reader.service_role_key.is_none());
    }

    #[test]
    fn explicit_rest_url_wins() {
        let env = [
            ("SUPABASE_URL", "http://127.0.0.1:3002"),
            ("SUPABASE_REST_URL", "http://127.0.0.1:3002"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service"),
            ("SUPABASE_JWT_SECRET", SECRET),
            ("WEBSOCKET_MANAGEMENT_ENDPOINT", "http://127.0.0.1:3001/dev"),
        ];
        let config = Config::from(&env).unwrap();
        assert_eq!(config.rest_url.as_str(), "http://127.0.0.1:3002/");
        assert_eq!(config.management_endpoint.unwrap().path(), "/dev");
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        let err = Config::from(&[("SUPABASE_ANON_KEY", "x")]).unwrap_err();
        assert_eq!(err.name, "SUPABASE_URL");
        let err = Config::from(&[("SUPABASE_URL", "ftp://x")]).unwrap_err();
        assert!(err.problem.contains("http"), "{err}");
        let err = Config::from(&[
            ("SUPABASE_URL", "https://x.supabase.co"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service"),
            ("SUPABASE_JWT_SECRET", "short"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "SUPABASE_JWT_SECRET");
    }

    #[test]
    fn anonymous_users_are_refused_unless_allowed() {
        let base = [
            ("SUPABASE_URL", "https://x.supabase.co"),
            ("SUPABASE_ANON_KEY", "anon"),
        ];
        assert!(!Config::from(&base).unwrap().allow_anonymous_users);
        let with = |value: &'static str| {
            Config::from(&[base[0], base[1], ("ALLOW_ANONYMOUS_USERS", value)])
        };
        assert!(with("true").unwrap().allow_anonymous_users);
        assert!(!with("False").unwrap().allow_anonymous_users);
        let err = with("yes").unwrap_err();
        assert_eq!(err.name, "ALLOW_ANONYMOUS_USERS");
    }

    #[test]
    fn secrets_never_print() {
        let config = Config::from(&[
            ("SUPABASE_URL", "https://x.supabase.co"),
            ("SUPABASE_ANON_KEY", "anon-value"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service-value"),
            ("SUPABASE_JWT_SECRET", SECRET),
        ])
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("service-value"));
        assert!(!printed.contains(SECRET));
    }
}
