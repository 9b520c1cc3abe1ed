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
    /// The per-user rate limits and connection cap; `None` when none of
    /// their variables is set (a function that calls no guarded RPC).
    pub limits: Option<Limits>,
    /// Whether tokens of anonymous sign-ins (`is_anonymous: true`) are
    /// accepted (`ALLOW_ANONYMOUS_USERS`, `true` or `false`; false when unset).
    pub allow_anonymous_users: bool,
    /// How long a live connection may go unseen before the sweep asks API
    /// Gateway about it (`STALE_CONNECTION_SECONDS`, 1 to 86400; the
    /// template's `StaleConnectionSeconds`). Only the sweep is given it.
    pub stale_connection_seconds: Option<u32>,
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
            limits: Limits::from(env)?,
            allow_anonymous_users: boolean(env, "ALLOW_ANONYMOUS_USERS")?.unwrap_or(false),
            stale_connection_seconds: whole_number(env, "STALE_CONNECTION_SECONDS", 1..=MAX_STALE_SECONDS)?,
        })
    }
}

/// A day: a connection unseen that long has outlived API Gateway's 2-hour
/// limit many times over.
const MAX_STALE_SECONDS: u32 = 86_400;

/// A whole number in `range`, or unset.
fn whole_number(
    env: &impl Env,
    name: &'static str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, ConfigError> {
    let Some(raw) = env.var(name) else {
        return Ok(None);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or(ConfigError {
            name,
            problem: format!(
                "must be a whole number from {} to {}, not {raw:?}",
                range.start(),
                range.end()
            ),
        })
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

/// One action's token bucket: up to `burst` at once, refilled at `per_minute`
/// a minute (the database keeps the bucket; see sql/schemas/12_rate_limits.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

/// The deployment's per-user limits: template.yaml's `RateLimit*` and
/// `MaxConnectionsPerUser` parameters, passed to the database with each
/// guarded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `sendMessage`, `POST …/messages` (a repeated `client_msg_id` is free)
    /// and `PATCH /v1/messages/{id}`.
    pub messages: RateLimit,
    pub typing: RateLimit,
    /// Creating groups and rooms, opening direct conversations, renaming and
    /// adding members.
    pub conversations: RateLimit,
    pub joins: RateLimit,
    /// Live WebSocket connections one user may hold; `$connect` refuses more.
    pub max_connections_per_user: u32,
}

/// Each limit's variables: (per minute, burst).
const RATE_LIMIT_VARIABLES: [(&str, &str); 4] = [
    ("RATE_LIMIT_MESSAGES_PER_MINUTE", "RATE_LIMIT_MESSAGES_BURST"),
    ("RATE_LIMIT_TYPING_PER_MINUTE", "RATE_LIMIT_TYPING_BURST"),
    ("RATE_LIMIT_CONVERSATIONS_PER_MINUTE", "RATE_LIMIT_CONVERSATIONS_BURST"),
    ("RATE_LIMIT_JOINS_PER_MINUTE", "RATE_LIMIT_JOINS_BURST"),
];
const MAX_CONNECTIONS_VARIABLE: &str = "MAX_CONNECTIONS_PER_USER";
/// Far above any sensible limit, far below what the SQL `int` parameters hold.
const MAX_LIMIT: u32 = 1_000_000;

impl Limits {
    /// All of the variables, or none of them: a partial set is a mistake.
    fn from(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let names = RATE_LIMIT_VARIABLES
            .iter()
            .flat_map(|(rate, burst)| [*rate, *burst])
            .chain([MAX_CONNECTIONS_VARIABLE]);
        if names.clone().all(|name| env.var(name).is_none()) {
            return Ok(None);
        }
        let count = |name: &'static str| -> Result<u32, ConfigError> {
            let raw = env.var(name).ok_or(ConfigError {
                name,
                problem: "is required with the other rate limits (RATE_LIMIT_*, MAX_CONNECTIONS_PER_USER)".into(),
            })?;
            raw.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(ConfigError {
                    name,
                    problem: format!("must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"),
                })
        };
        let limit = |(per_minute, burst): (&'static str, &'static str)| -> Result<RateLimit, ConfigError> {
            Ok(RateLimit {
                per_minute: count(per_minute)?,
                burst: count(burst)?,
            })
        };
        let [messages, typing, conversations, joins] = RATE_LIMIT_VARIABLES;
        Ok(Some(Self {
            messages: limit(messages)?,
            typing: limit(typing)?,
            conversations: limit(conversations)?,
            joins: limit(joins)?,
            max_connections_per_user: count(MAX_CONNECTIONS_VARIABLE)?,
        }))
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
    let url = url_from_env(name, raw)?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(ConfigError {
            name,
            problem: format!("must be http or https, not {other}"),
        }),
    }
}

/// A URL from the variable `name`, any scheme. Its host must be ASCII: url's
/// IDNA back end here has no Unicode tables (idna_adapter in Cargo.toml), so an
/// internationalised name is given in its xn-- form.
pub(crate) fn url_from_env(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    Url::parse(raw.trim()).map_err(|e| ConfigError {
        name,
        problem: match e {
            url::ParseError::IdnaError if !raw.is_ascii() => {
                "has a host name that is not ASCII (give it in its xn-- form)".into()
            }
            e => format!("is not a URL ({e})"),
        },
    })
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
    fn a_host_name_is_ascii_or_in_its_xn_form() {
        let project = |url: &'static str| Config::from(&[("SUPABASE_URL", url), ("SUPABASE_ANON_KEY", "anon")]);
        let punycode = project("https://xn--caf-dma.example").unwrap();
        assert_eq!(punycode.rest_url.as_str(), "https://xn--caf-dma.example/rest/v1");
        // Upper case is still folded: the ASCII rules need no Unicode tables.
        let upper = project("https://ABCD.Supabase.co").unwrap();
        assert_eq!(upper.rest_url.host_str(), Some("abcd.supabase.co"));

        let error = project("https://café.example").unwrap_err();
        assert_eq!(error.name, "SUPABASE_URL");
        assert!(
            error.problem.contains("not ASCII") && error.problem.contains("xn--"),
            "{error}"
        );
        let error = project("https://exa mple.com").unwrap_err();
        assert!(error.problem.starts_with("is not a URL"), "{error}");
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
        let base = [("SUPABASE_URL", "https://x.supabase.co"), ("SUPABASE_ANON_KEY", "anon")];
        assert!(!Config::from(&base).unwrap().allow_anonymous_users);
        let with = |value: &'static str| Config::from(&[base[0], base[1], ("ALLOW_ANONYMOUS_USERS", value)]);
        assert!(with("true").unwrap().allow_anonymous_users);
        assert!(!with("False").unwrap().allow_anonymous_users);
        let err = with("yes").unwrap_err();
        assert_eq!(err.name, "ALLOW_ANONYMOUS_USERS");
    }

    const LIMITS: [(&str, &str); 11] = [
        ("SUPABASE_URL", "https://x.supabase.co"),
        ("SUPABASE_ANON_KEY", "anon"),
        ("RATE_LIMIT_MESSAGES_PER_MINUTE", "60"),
        ("RATE_LIMIT_MESSAGES_BURST", "30"),
        ("RATE_LIMIT_TYPING_PER_MINUTE", "120"),
        ("RATE_LIMIT_TYPING_BURST", "20"),
        ("RATE_LIMIT_CONVERSATIONS_PER_MINUTE", "5"),
        ("RATE_LIMIT_CONVERSATIONS_BURST", "20"),
        ("RATE_LIMIT_JOINS_PER_MINUTE", "10"),
        ("RATE_LIMIT_JOINS_BURST", " 30 "),
        ("MAX_CONNECTIONS_PER_USER", "10"),
    ];

    #[test]
    fn reads_every_limit_or_none() {
        let limits = Config::from(&LIMITS).unwrap().limits.unwrap();
        let limit = |per_minute, burst| RateLimit { per_minute, burst };
        assert_eq!(limits.messages, limit(60, 30));
        assert_eq!(limits.typing, limit(120, 20));
        assert_eq!(limits.conversations, limit(5, 20));
        assert_eq!(limits.joins, limit(10, 30));
        assert_eq!(limits.max_connections_per_user, 10);
        let none = Config::from(&[LIMITS[0], LIMITS[1]]).unwrap();
        assert!(none.limits.is_none());
    }

    #[test]
    fn names_a_missing_or_bad_limit() {
        // LIMITS with `name` left out, or set to `value`.
        struct Vars(Vec<(&'static str, &'static str)>);
        impl Env for Vars {
            fn var(&self, name: &str) -> Option<String> {
                self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
            }
        }
        let without = |name: &'static str, value: Option<&'static str>| {
            let mut vars: Vec<_> = LIMITS.iter().copied().filter(|(k, _)| *k != name).collect();
            vars.extend(value.map(|v| (name, v)));
            Config::from(&Vars(vars)).unwrap_err()
        };
        let err = without("RATE_LIMIT_TYPING_BURST", None);
        assert_eq!(err.name, "RATE_LIMIT_TYPING_BURST");
        assert!(err.problem.contains("required"), "{err}");
        for bad in ["0", "-1", "ten", "1.5", "1000001"] {
            let err = without("MAX_CONNECTIONS_PER_USER", Some(bad));
            assert_eq!(err.name, "MAX_CONNECTIONS_PER_USER");
            assert!(err.problem.contains("1 to 1000000"), "{err}");
        }
    }

    #[test]
    fn the_stale_connection_threshold_is_a_whole_number_of_seconds_up_to_a_day() {
        let base = [("SUPABASE_URL", "https://x.supabase.co"), ("SUPABASE_ANON_KEY", "anon")];
        assert_eq!(Config::from(&base).unwrap().stale_connection_seconds, None);
        let with = |value: &'static str| Config::from(&[base[0], base[1], ("STALE_CONNECTION_SECONDS", value)]);
        assert_eq!(with(" 360 ").unwrap().stale_connection_seconds, Some(360));
        assert_eq!(with("86400").unwrap().stale_connection_seconds, Some(86_400));
        for bad in ["0", "-5", "86401", "6m", "1.5"] {
            let err = with(bad).unwrap_err();
            assert_eq!(err.name, "STALE_CONNECTION_SECONDS");
            assert!(err.problem.contains("1 to 86400"), "{err}");
        }
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
