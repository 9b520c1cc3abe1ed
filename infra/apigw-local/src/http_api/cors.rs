//! CORS as an HTTP API with a `CorsConfiguration` does it: the gateway itself
//! answers preflight requests (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) with 204, without invoking a function,
//! and adds `Access-Control-Allow-Origin` (with `-Expose-Headers` and
//! `-Allow-Credentials`) to every other response to an allowed origin,
//! replacing whatever CORS headers the integration returned. A preflight whose
//! origin, method or headers are not allowed still gets its 204, with no CORS
//! headers at all, which the browser reads as a refusal.

use axum::body::Body;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::template::CorsSpec;

const WILDCARD: &str = "*";

pub(crate) struct Cors {
    spec: CorsSpec,
}

impl Cors {
    pub fn new(spec: CorsSpec) -> Cors {
        Cors { spec }
    }

    /// A CORS preflight, in the documentation's terms: an `OPTIONS` request
    /// with an `Origin` and an `Access-Control-Request-Method` header.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(ORIGIN) && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The gateway's own answer to a preflight.
    pub fn preflight(&self, request: &HeaderMap) -> Response {
        let text = |name: HeaderName| request.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let headers = self.preflight_headers(
            text(ORIGIN),
            text(ACCESS_CONTROL_REQUEST_METHOD),
            text(ACCESS_CONTROL_REQUEST_HEADERS),
        );
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        insert_all(response.headers_mut(), headers);
        response
    }

    /// Drops the integration's CORS headers and, for an allowed origin, adds
    /// the configured ones.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let integration_set: Vec<HeaderName> = response
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in integration_set {
            response.remove(name);
        }
        let Some(origin) = request.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
            return;
        };
        insert_all(response, self.response_headers(origin));
    }

    /// `Access-Control-Allow-Origin` for this origin: `*` when every origin
    /// is allowed, else the origin itself when it is one of the allowed ones.
    fn allow_origin(&self, origin: &str) -> Option<String> {
        let origins = &self.spec.allow_origins;
        if origins.iter().any(|allowed| allowed == WILDCARD) {
            return Some(WILDCARD.to_string());
        }
        origins
            .iter()
            .any(|allowed| origin_matches(allowed, origin))
            .then(|| origin.to_string())
    }

    /// The headers of a preflight's answer: none unless the origin, the
    /// method and every requested header are allowed.
    fn preflight_headers(&self, origin: &str, method: &str, requested: &str) -> Vec<(HeaderName, String)> {
        let Some(allow_origin) = self.allow_origin(origin) else {
            return Vec::new();
        };
        let methods = &self.spec.allow_methods;
        let any_method = methods.iter().any(|m| m == WILDCARD);
        if !any_method && !methods.iter().any(|m| m.eq_ignore_ascii_case(method.trim())) {
            return Vec::new();
        }
        let requested: Vec<String> = requested
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let allowed_headers = &self.spec.allow_headers;
        let any_header = allowed_headers.iter().any(|h| h == WILDCARD);
        if !any_header && !requested.iter().all(|h| allowed_headers.contains(h)) {
            return Vec::new();
        }

        let mut headers = vary(&allow_origin);
        headers.push((ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin));
        // A `*` answers with what was asked: browsers do not read `*` as
        // covering `Authorization`, nor as a wildcard on credentialed requests.
        headers.push((
            ACCESS_CONTROL_ALLOW_METHODS,
            if any_method {
                method.trim().to_ascii_uppercase()
            } else {
                methods.join(",")
            },
        ));
        let allow_headers = if any_header {
            requested.join(",")
        } else {
            allowed_headers.join(",")
        };
        if !allow_headers.is_empty() {
            headers.push((ACCESS_CONTROL_ALLOW_HEADERS, allow_headers));
        }
        if let Some(max_age) = self.spec.max_age {
            headers.push((ACCESS_CONTROL_MAX_AGE, max_age.to_string()));
        }
        if self.spec.allow_credentials {
            headers.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string()));
        }
        headers
    }

    /// The CORS headers of an ordinary response to this origin.
    fn response_headers(&self, origin: &str) -> Vec<(HeaderName, String)> {
        let Some(allow_origin) = self.allow_origin(origin) else {
            return Vec::new();
        };
        let mut headers = vary(&allow_origin);
        headers.push((ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin));
        if !self.spec.expose_headers.is_empty() {
            headers.push((ACCESS_CONTROL_EXPOSE_HEADERS, self.spec.expose_headers.join(",")));
        }
        if self.spec.allow_credentials {
            headers.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_string()));
        }
        headers
    }
}

/// An answer that names the origin differs by origin, so caches must key on it.
fn vary(allow_origin: &str) -> Vec<(HeaderName, String)> {
    if allow_origin == WILDCARD {
        Vec::new()
    } else {
        vec![(VARY, "origin".to_string())]
    }
}

/// `https://*` allows every origin of that scheme; anything else is one
/// origin, compared case-insensitively (scheme and host are).
fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.strip_suffix(WILDCARD) {
        Some(scheme_prefix) => {
            origin.len() > scheme_prefix.len()
                && origin
                    .get(..scheme_prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(scheme_prefix))
        }
        None => allowed.eq_ignore_ascii_case(origin),
    }
}

fn insert_all(map: &mut HeaderMap, headers: Vec<(HeaderName, String)>) {
    for (name, value) in headers {
        // Values come from the template and from the request's own headers,
        // which were valid header values already.
        let Ok(value) = HeaderValue::from_str(&value) else {
            continue;
        };
        if name == VARY {
            map.append(name, value);
        } else {
            map.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], headers: &[&str], methods: &[&str]) -> Cors {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Cors::new(CorsSpec {
            allow_origins: list(origins),
            allow_headers: list(headers),
            allow_methods: list(methods),
            expose_headers: list(&["apigw-requestid", "www-authenticate"]),
            max_age: Some(600),
            allow_credentials: false,
        })
    }

    fn the_api() -> Cors {
        cors(
            &["https://app.example", "http://*"],
            &["authorization", "content-type", "idempotency-key"],
            &["GET", "POST", "PATCH", "DELETE"],
        )
    }

    fn get(headers: &[(HeaderName, String)], name: HeaderName) -> Option<&str> {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn an_allowed_preflight_gets_every_allow_header() {
        let headers = the_api().preflight_headers(
            "https://app.example",
            "POST",
            "Authorization, content-type,IDEMPOTENCY-KEY",
        );
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_ORIGIN), Some("https://app.example"));
        assert_eq!(
            get(&headers, ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET,POST,PATCH,DELETE")
        );
        assert_eq!(
            get(&headers, ACCESS_CONTROL_ALLOW_HEADERS),
            Some("authorization,content-type,idempotency-key")
        );
        assert_eq!(get(&headers, ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert_eq!(get(&headers, VARY), Some("origin"));
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        // No requested headers at all is fine too.
        assert!(!the_api()
            .preflight_headers("https://app.example", "delete", "")
            .is_empty());
    }

    #[test]
    fn a_refused_preflight_gets_no_cors_header() {
        let api = the_api();
        assert!(api
            .preflight_headers("https://evil.example", "POST", "authorization")
            .is_empty());
        assert!(api.preflight_headers("https://app.example.evil", "POST", "").is_empty());
        assert!(api
            .preflight_headers("https://app.example", "PUT", "authorization")
            .is_empty());
        assert!(api
            .preflight_headers("https://app.example", "POST", "authorization,x-secret")
            .is_empty());
    }

    #[test]
    fn origin_patterns() {
        let api = the_api();
        assert_eq!(
            api.allow_origin("https://APP.example").as_deref(),
            Some("https://APP.example")
        );
        assert_eq!(
            api.allow_origin("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(api.allow_origin("http://"), None);
        assert_eq!(api.allow_origin("https://other.example"), None);
        assert_eq!(api.allow_origin("null"), None);
        let any = cors(&["*"], &["authorization"], &["GET"]);
        assert_eq!(any.allow_origin("https://anything.example").as_deref(), Some("*"));
        assert_eq!(any.allow_origin("null").as_deref(), Some("*"));
        assert!(get(&any.response_headers("https://x.example"), VARY).is_none());
        assert!(origin_matches("https://*", "HTTPS://x.example"));
        assert!(!origin_matches("https://*", "http://x.example"));
    }

    #[test]
    fn wildcard_methods_and_headers_answer_what_was_asked() {
        let any = cors(&["*"], &["*"], &["*"]);
        let headers = any.preflight_headers("https://a.example", "patch", "Authorization,X-Custom");
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_METHODS), Some("PATCH"));
        assert_eq!(
            get(&headers, ACCESS_CONTROL_ALLOW_HEADERS),
            Some("authorization,x-custom")
        );
    }

    #[test]
    fn ordinary_responses_get_origin_expose_and_credentials() {
        let mut api = the_api();
        api.spec.allow_credentials = true;
        let headers = api.response_headers("https://app.example");
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_ORIGIN), Some("https://app.example"));
        assert_eq!(
            get(&headers, ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("apigw-requestid,www-authenticate")
        );
        assert_eq!(get(&headers, ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(get(&headers, ACCESS_CONTROL_MAX_AGE), None);
        assert!(api.response_headers("https://evil.example").is_empty());
    }

    #[test]
    fn decorate_replaces_the_integrations_cors_headers() {
        let api = the_api();
        let integration = || {
            let mut response = HeaderMap::new();
            response.insert(
                ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("https://evil.example"),
            );
            response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            response.insert(VARY, HeaderValue::from_static("accept-encoding"));
            response.insert("x-kept", HeaderValue::from_static("1"));
            response
        };
        let mut request = HeaderMap::new();
        request.insert(ORIGIN, HeaderValue::from_static("https://app.example"));
        let mut response = integration();
        api.decorate(&request, &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        let vary: Vec<_> = response.get_all(VARY).iter().collect();
        assert_eq!(vary, ["accept-encoding", "origin"]);
        assert_eq!(response["x-kept"], "1");

        // No Origin, or one not allowed: no CORS headers, the integration's gone too.
        for origin in [None, Some("https://evil.example")] {
            let mut request = HeaderMap::new();
            if let Some(origin) = origin {
                request.insert(ORIGIN, HeaderValue::from_static(origin));
            }
            let mut response = integration();
            api.decorate(&request, &mut response);
            assert!(response
                .keys()
                .all(|name| !name.as_str().starts_with("access-control-")));
        }
    }

    #[test]
    fn what_is_a_preflight() {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://app.example"));
        assert!(!Cors::is_preflight(&Method::OPTIONS, &headers));
        headers.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        assert!(Cors::is_preflight(&Method::OPTIONS, &headers));
        assert!(!Cors::is_preflight(&Method::POST, &headers));
        headers.remove(ORIGIN);
        assert!(!Cors::is_preflight(&Method::OPTIONS, &headers));
    }
}
