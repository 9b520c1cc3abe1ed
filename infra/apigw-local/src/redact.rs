//! Keeps credentials out of logs. Clients pass access tokens in query strings
//! (`?token=`), in `Sec-WebSocket-Protocol` and in `Authorization`; the query
//! is judged on its decoded form (the one the functions get), so no spelling
//! of a name (`%74oken`, `TOKEN`) or value escapes.

use crate::query::Pairs;

const REDACTED: &str = "[redacted]";

/// Parameter names whose value is a credential, compared in lower case
/// (API Gateway's names are case-sensitive; redaction errs on the safe side).
const SECRET_NAME_PARTS: [&str; 6] = ["token", "secret", "password", "signature", "credential", "key"];

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// Three dot-separated parts: a JWT (or JWS), whatever it is called.
fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3 && value.len() > 20
}

/// The parsed query, re-encoded for the log, every credential's value
/// replaced by `[redacted]`.
pub(crate) fn query(pairs: &Pairs) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if is_secret_name(name) || looks_like_jwt(value) {
            out.append_pair(name, REDACTED);
        } else {
            out.append_pair(name, value);
        }
    }
    // Brackets stay readable in the log.
    out.finish().replace("%5Bredacted%5D", REDACTED)
}

/// A path with its (already parsed) query redacted, for logging.
pub(crate) fn path_and_query(path: &str, pairs: &Pairs) -> String {
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query(pairs))
    }
}

/// Offered subprotocols with the tokens among them replaced.
pub(crate) fn subprotocols(header: &str) -> String {
    header
        .split(',')
        .map(str::trim)
        .map(|entry| if looks_like_jwt(entry) { REDACTED } else { entry })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An `Authorization` value: its scheme only.
pub(crate) fn authorization(header: &str) -> String {
    match header.split_whitespace().next() {
        Some(scheme) if header.trim() != scheme => format!("{scheme} {REDACTED}"),
        _ => REDACTED.to_string(),
    }
}

/// For tests and callers with a raw query string.
#[cfg(test)]
fn raw(path: &str, raw_query: &str) -> String {
    path_and_query(path, &crate::query::parse(raw_query))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl";

    #[test]
    fn token_values_are_redacted_however_spelled() {
        assert_eq!(raw("/dev", "a=1&token=eyJ.x.y&b=2"), "/dev?a=1&token=[redacted]&b=2");
        assert_eq!(raw("/dev", "access_token=abc"), "/dev?access_token=[redacted]");
        // Percent-encoded name: API Gateway (and the authorizer) see `token`.
        assert_eq!(raw("/dev", &format!("%74oken={JWT}")), "/dev?token=[redacted]");
        assert_eq!(raw("/dev", &format!("%74%6F%6B%65%6E={JWT}")), "/dev?token=[redacted]");
        // Repeated: every occurrence.
        assert_eq!(
            raw("/dev", "token=one&token=two"),
            "/dev?token=[redacted]&token=[redacted]"
        );
        // A different parameter to API Gateway, still a credential to a reader.
        assert_eq!(
            raw("/dev", "TOKEN=abc&Api-Key=k"),
            "/dev?TOKEN=[redacted]&Api-Key=[redacted]"
        );
        // A JWT under any name, its dots percent-encoded or not.
        assert_eq!(
            raw("/dev", &format!("t={}", JWT.replace('.', "%2E"))),
            "/dev?t=[redacted]"
        );
        assert_eq!(raw("/dev", "page=2&q=hello+world"), "/dev?page=2&q=hello+world");
        assert_eq!(raw("/dev", ""), "/dev");
        for text in [
            raw("/dev", &format!("%74oken={JWT}")),
            raw("/x", &format!("a={JWT}&token={JWT}")),
        ] {
            assert!(!text.contains("eyJ"), "{text}");
        }
    }

    #[test]
    fn log_injection_is_re_encoded() {
        assert_eq!(raw("/dev", "note=a%0Ab"), "/dev?note=a%0Ab");
    }

    #[test]
    fn headers_are_redacted() {
        assert_eq!(subprotocols(&format!("chat, {JWT}")), "chat, [redacted]");
        assert_eq!(subprotocols("chat"), "chat");
        assert_eq!(authorization(&format!("Bearer {JWT}")), "Bearer [redacted]");
        assert_eq!(
            authorization("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api/aws4_request, Signature=ab"),
            "AWS4-HMAC-SHA256 [redacted]"
        );
        assert_eq!(authorization(JWT), "[redacted]");
    }
}
