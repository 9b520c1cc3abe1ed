//! AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the `Authorization` header):
//! the emulator verifies it on the Management API as AWS does, and signs with
//! it for callers that have no AWS SDK at hand (the echo example, tests).
//!
//! Canonical request, string to sign and signing key as in AWS's "Create a
//! signed AWS API request": the path is URI-encoded once more (every service
//! but S3), query parameters are decoded, re-encoded and sorted, header values
//! trimmed with inner whitespace collapsed, and the payload hashed.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-date`'s format (ISO 8601 basic).
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";
/// How far a request's date may be from the verifier's clock, either way.
const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// An access key: what Lambda gives a function for its execution role.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials (Lambda's are) come with a session token, which
    /// every request must carry in `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// Never prints the secret or the session token.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// What a request to sign consists of. `path` and `query` as they go on the
/// wire (already percent-encoded); `headers` must include `host`.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that sign `request` (`x-amz-date`, `x-amz-security-token`
/// when the key has a session token, `authorization`), every header of the
/// request signed.
pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    at: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let amz_date = at.format(AMZ_DATE).to_string();
    let mut added = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .chain(added.iter().map(|(name, value)| (name.to_string(), value.clone())))
        .collect();
    headers.sort();
    let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical = canonical_request(
        request.method,
        request.path,
        request.query,
        &joined(&headers),
        &signed_headers,
        &hex_sha256(request.body),
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let signature = signature(
        &credentials.secret_access_key,
        date,
        region,
        service,
        &string_to_sign(&amz_date, &scope, &canonical),
    );
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    added
}

/// Why a request is refused: API Gateway answers each with 403, the type in
/// `x-amzn-ErrorType` and the message in `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub error_type: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            error_type,
            message: message.into(),
        }
    }

    fn missing_token() -> Self {
        Refusal::new("MissingAuthenticationTokenException", "Missing Authentication Token")
    }

    fn incomplete(message: impl Into<String>) -> Self {
        Refusal::new("IncompleteSignatureException", message)
    }

    fn invalid(message: impl Into<String>) -> Self {
        Refusal::new("InvalidSignatureException", message)
    }

    fn unrecognized() -> Self {
        Refusal::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }
}

/// An incoming request, as the verifier needs it.
pub(crate) struct Incoming<'a> {
    pub method: &'a str,
    /// As received, still percent-encoded.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// SHA-256 of the body as received, lowercase hex.
    pub payload_hash: &'a str,
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Checks the request's SigV4 signature against the one key the emulator
/// knows, for `region` and `service`, at `now`, with the key's own session
/// token only.
#[cfg(test)]
pub(crate) fn verify(
    request: &Incoming<'_>,
    key: &Credentials,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    verify_with_sessions(request, key, region, service, now, |_| false)
}

/// Checks the request's SigV4 signature against the one key the emulator
/// knows, for `region` and `service`, at `now`. The session token must be the
/// key's own or one that `other_session` accepts (each function instance has
/// its own).
pub(crate) fn verify_with_sessions(
    request: &Incoming<'_>,
    key: &Credentials,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
    other_session: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    let Some(authorization) = request.header("authorization") else {
        return Err(Refusal::missing_token());
    };
    let parsed = Authorization::parse(authorization)?;
    let (amz_date, at) = request_date(request)?;

    let [key_id, scope_date, scope_region, scope_service, terminator] = parsed.credential.as_slice() else {
        return Err(Refusal::incomplete(format!(
            "Authorization header requires 'Credential' parameter in the form \
             <access key>/<date>/<region>/<service>/aws4_request, not '{}'.",
            parsed.credential.join("/")
        )));
    };
    if *key_id != key.access_key_id {
        return Err(Refusal::unrecognized());
    }
    if *terminator != "aws4_request" {
        return Err(Refusal::invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if *scope_service != service {
        return Err(Refusal::invalid(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if *scope_region != region {
        return Err(Refusal::invalid(format!(
            "Credential should be scoped to a valid region, not '{scope_region}'. "
        )));
    }
    if *scope_date != &amz_date[..8] {
        return Err(Refusal::invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{}', from '{amz_date}'.",
            &amz_date[..8]
        )));
    }
    if at < now - MAX_SKEW {
        return Err(Refusal::invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            (now - MAX_SKEW).format(AMZ_DATE),
            now.format(AMZ_DATE)
        )));
    }
    if at > now + MAX_SKEW {
        return Err(Refusal::invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            (now + MAX_SKEW).format(AMZ_DATE),
            now.format(AMZ_DATE)
        )));
    }
    match (&key.session_token, request.header("x-amz-security-token")) {
        (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), given.as_bytes()) => {}
        (_, Some(given)) if other_session(given) => {}
        (None, None) => {}
        _ => return Err(Refusal::unrecognized()),
    }
    if !parsed.signed_headers.contains(&"host") {
        return Err(Refusal::invalid(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    // The body must be the one whose hash was signed, whichever the client declared.
    if let Some(declared) = request.header("x-amz-content-sha256") {
        if !declared.eq_ignore_ascii_case(request.payload_hash) {
            return Err(Refusal::invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }

    let headers: Vec<(String, String)> = parsed
        .signed_headers
        .iter()
        .map(|name| {
            let values: Vec<String> = request
                .headers
                .get_all(*name)
                .iter()
                .map(|v| canonical_value(&String::from_utf8_lossy(v.as_bytes())))
                .collect();
            (name.to_string(), values.join(","))
        })
        .collect();
    let canonical = canonical_request(
        request.method,
        request.path,
        request.query,
        &joined(&headers),
        &parsed.signed_headers.join(";"),
        request.payload_hash,
    );
    let scope = parsed.credential[1..].join("/");
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let expected = signature(&key.secret_access_key, scope_date, region, service, &to_sign);
    if !constant_time_eq(expected.as_bytes(), parsed.signature.to_ascii_lowercase().as_bytes()) {
        return Err(Refusal::invalid(format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
             The Canonical String for this request should have been\n'{canonical}'\n\n\
             The String-to-Sign should have been\n'{to_sign}'\n"
        )));
    }
    Ok(())
}

/// `x-amz-date`, else `Date` (RFC 1123): the text the signature covers and the instant.
fn request_date(request: &Incoming<'_>) -> Result<(String, DateTime<Utc>), Refusal> {
    if let Some(text) = request.header("x-amz-date") {
        let at = NaiveDateTime::parse_from_str(text, AMZ_DATE)
            .map_err(|_| Refusal::incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{text}'.")))?
            .and_utc();
        return Ok((text.to_string(), at));
    }
    if let Some(text) = request.header("date") {
        let at = DateTime::parse_from_rfc2822(text)
            .map_err(|_| Refusal::incomplete(format!("Date must be in RFC 1123 format. Got '{text}'.")))?
            .with_timezone(&Utc);
        return Ok((at.format(AMZ_DATE).to_string(), at));
    }
    Err(Refusal::incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    ))
}

/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    credential: Vec<&'a str>,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, Refusal> {
        let Some(rest) = header.strip_prefix(ALGORITHM) else {
            // Another scheme (`Bearer …`, SigV2): no SigV4 token at all.
            return Err(Refusal::missing_token());
        };
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("Credential", value)) => credential = Some(value),
                Some(("SignedHeaders", value)) => signed_headers = Some(value),
                Some(("Signature", value)) => signature = Some(value),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none_or(str::is_empty) {
                missing.push(format!("Authorization header requires '{name}' parameter."));
            }
        }
        if !missing.is_empty() {
            return Err(Refusal::incomplete(format!(
                "{} Authorization={header}",
                missing.join(" ")
            )));
        }
        Ok(Authorization {
            credential: credential.unwrap_or_default().split('/').collect(),
            signed_headers: signed_headers.unwrap_or_default().split(';').collect(),
            signature: signature.unwrap_or_default(),
        })
    }
}

/// `name:value\n` for each (lowercase name, canonical value), in the given order.
fn joined(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect()
}

fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_uri(path),
        canonical_query(query)
    )
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

fn signature(secret: &str, date: &str, region: &str, service: &str, string_to_sign: &str) -> String {
    hex(&hmac(
        &signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    ))
}

/// The key of a day's signatures: four HMACs, the same for every request
/// signed that day, so the last one derived is kept (most of the emulator's
/// hashing per @connections call went into deriving it again).
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    struct Derived {
        from: [String; 4],
        key: Vec<u8>,
    }
    static LAST: Mutex<Option<Derived>> = Mutex::new(None);
    let from = [secret, date, region, service];
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(derived) = last.as_ref().filter(|d| d.from == from) {
        return derived.key.clone();
    }
    let key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    let key = hmac(&key, b"aws4_request");
    *last = Some(Derived {
        from: from.map(str::to_string),
        key: key.clone(),
    });
    key
}

/// The wire path with dot segments removed, each segment URI-encoded again.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut uri: String = segments.iter().map(|s| format!("/{}", uri_encode(s))).collect();
    if uri.is_empty() || (trailing_slash && !uri.ends_with('/')) {
        uri.push('/');
    }
    uri
}

/// Parameters decoded, re-encoded strictly and sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (uri_encode(&name), uri_encode(&value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every byte but the unreserved characters as `%XX` (upper-case hex).
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Trimmed, runs of spaces and tabs collapsed to one space.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn hex_sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex. Every call to the Management API hashes and signs, so
/// this runs several times per post: no formatting machinery per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

/// Compares without stopping at the first difference, so timing says nothing
/// about how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    /// The key, region, service and time of AWS's SigV4 test suite.
    fn suite_key() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn suite_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    const SUITE_SESSION_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn authorization(added: &[(&'static str, String)]) -> String {
        added.iter().find(|(n, _)| *n == "authorization").unwrap().1.clone()
    }

    fn header_map(headers: &[(&str, &str)], added: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers
            .iter()
            .map(|(n, v)| (*n, v.to_string()))
            .chain(added.iter().cloned())
        {
            map.append(
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        map
    }

    fn incoming<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a HeaderMap,
        hash: &'a str,
    ) -> Incoming<'a> {
        Incoming {
            method,
            path,
            query,
            headers,
            payload_hash: hash,
        }
    }

    /// get-vanilla: the canonical request, string to sign and signature.
    #[test]
    fn suite_get_vanilla() {
        let canonical = canonical_request(
            "GET",
            "/",
            "",
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            "host;x-amz-date",
            EMPTY_HASH,
        );
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n".to_string()
                + EMPTY_HASH
        );
        let to_sign = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        assert_eq!(
            to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let headers = [("Host", "example.amazonaws.com")];
        let request = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let added = sign(&request, &suite_key(), "us-east-1", "service", suite_time());
        assert_eq!(
            authorization(&added),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let map = header_map(&headers, &added);
        verify(
            &incoming("GET", "/", "", &map, EMPTY_HASH),
            &suite_key(),
            "us-east-1",
            "service",
            suite_time(),
        )
        .expect("the suite's own signature verifies");
    }

    /// get-vanilla-query-order-key-case: parameters sorted by name.
    #[test]
    fn suite_query_order() {
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        let headers = [("Host", "example.amazonaws.com")];
        let request = Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let added = sign(&request, &suite_key(), "us-east-1", "service", suite_time());
        assert!(authorization(&added)
            .ends_with("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
    }

    /// post-x-www-form-urlencoded: a signed content type and a body.
    #[test]
    fn suite_post_form() {
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
        ];
        let body = b"Param1=value1";
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let added = sign(&request, &suite_key(), "us-east-1", "service", suite_time());
        assert_eq!(
            authorization(&added),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
        let map = header_map(&headers, &added);
        let hash = hex_sha256(body);
        verify(
            &incoming("POST", "/", "", &map, &hash),
            &suite_key(),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        // Another body under the same signature.
        let other = hex_sha256(b"Param1=value2");
        let refused = verify(
            &incoming("POST", "/", "", &map, &other),
            &suite_key(),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap_err();
        assert_eq!(refused.error_type, "InvalidSignatureException");
        assert!(refused
            .message
            .starts_with("The request signature we calculated does not match"));
    }

    /// post-sts-header-after: the session token signed as a header.
    #[test]
    fn suite_session_token() {
        let key = Credentials {
            session_token: Some(SUITE_SESSION_TOKEN.into()),
            ..suite_key()
        };
        let headers = [("Host", "example.amazonaws.com")];
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let added = sign(&request, &key, "us-east-1", "service", suite_time());
        assert_eq!(
            authorization(&added),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
        let map = header_map(&headers, &added);
        verify(
            &incoming("POST", "/", "", &map, EMPTY_HASH),
            &key,
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        // The same access key id without the session token it was issued with.
        let without: Vec<_> = added
            .iter()
            .filter(|(n, _)| *n != "x-amz-security-token")
            .cloned()
            .collect();
        let map = header_map(&headers, &without);
        let refused = verify(
            &incoming("POST", "/", "", &map, EMPTY_HASH),
            &key,
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap_err();
        assert_eq!(refused.error_type, "UnrecognizedClientException");
    }

    /// Signed with the key but another session token: served only when that
    /// token is one the verifier is told to accept too.
    #[test]
    fn other_session_tokens_only_when_accepted() {
        let key = Credentials {
            session_token: Some(SUITE_SESSION_TOKEN.into()),
            ..suite_key()
        };
        let instance_key = Credentials {
            session_token: Some("instance-7".into()),
            ..suite_key()
        };
        let headers = [("Host", "example.amazonaws.com")];
        let request = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let added = sign(&request, &instance_key, "us-east-1", "service", suite_time());
        let map = header_map(&headers, &added);
        let check = |accepted: &'static str| {
            verify_with_sessions(
                &incoming("POST", "/", "", &map, EMPTY_HASH),
                &key,
                "us-east-1",
                "service",
                suite_time(),
                |token| token == accepted,
            )
        };
        check("instance-7").unwrap();
        assert_eq!(
            check("instance-8").unwrap_err().error_type,
            "UnrecognizedClientException"
        );
        let plain = verify(
            &incoming("POST", "/", "", &map, EMPTY_HASH),
            &key,
            "us-east-1",
            "service",
            suite_time(),
        );
        assert_eq!(plain.unwrap_err().error_type, "UnrecognizedClientException");
    }

    /// get-utf8 and the Management API's paths: the wire path encoded once more.
    #[test]
    fn paths_are_encoded_again() {
        assert_eq!(canonical_uri("/\u{1234}"), "/%E1%88%B4");
        assert_eq!(
            canonical_uri("/dev/@connections/abc%3D"),
            "/dev/%40connections/abc%253D"
        );
        assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=%20x+y&a=~"), "a=~&b=%20x%20y");
        assert_eq!(canonical_value("  one   two \t three "), "one two three");
    }

    fn signed_management_post(key: &Credentials, at: DateTime<Utc>, body: &[u8]) -> HeaderMap {
        let headers = [("host", "127.0.0.1:3001")];
        let request = Request {
            method: "POST",
            path: "/dev/@connections/abc%3D",
            query: "",
            headers: &headers,
            body,
        };
        header_map(&headers, &sign(&request, key, "us-east-1", "execute-api", at))
    }

    /// The kept signing key is the one of the scope asked for: a day, a
    /// secret or a service of its own gets its own key, in any order.
    #[test]
    fn signatures_of_other_days_and_secrets_do_not_share_a_key() {
        let key = suite_key();
        let other_secret = Credentials {
            secret_access_key: "another secret".into(),
            ..key.clone()
        };
        let hash = hex_sha256(b"hi");
        let verifies = |map: &HeaderMap, key: &Credentials, at: DateTime<Utc>| {
            verify(
                &incoming("POST", "/dev/@connections/abc%3D", "", map, &hash),
                key,
                "us-east-1",
                "execute-api",
                at,
            )
            .is_ok()
        };
        let day = suite_time();
        let next_day = day + TimeDelta::days(1);
        for _ in 0..2 {
            for at in [day, next_day] {
                assert!(verifies(&signed_management_post(&key, at, b"hi"), &key, at));
                assert!(verifies(
                    &signed_management_post(&other_secret, at, b"hi"),
                    &other_secret,
                    at
                ));
                assert!(!verifies(&signed_management_post(&other_secret, at, b"hi"), &key, at));
                assert!(!verifies(&signed_management_post(&key, at, b"hi"), &other_secret, at));
            }
        }
        // The day after a signature's own: its scope names the day it was signed.
        let map = signed_management_post(&key, day, b"hi");
        assert!(verifies(&map, &key, day));
        assert!(!verifies(&map, &key, next_day));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let key = suite_key();
        let now = suite_time();
        let hash = hex_sha256(b"hi");
        let check = |map: &HeaderMap, key: &Credentials, region: &str, now: DateTime<Utc>| {
            verify(
                &incoming("POST", "/dev/@connections/abc%3D", "", map, &hash),
                key,
                region,
                "execute-api",
                now,
            )
        };
        let map = signed_management_post(&key, now, b"hi");
        check(&map, &key, "us-east-1", now).expect("signed");
        check(&map, &key, "us-east-1", now + TimeDelta::minutes(14)).expect("within 15 minutes");

        assert_eq!(
            check(&HeaderMap::new(), &key, "us-east-1", now).unwrap_err(),
            Refusal::missing_token()
        );
        let stranger = Credentials {
            access_key_id: "AKIDOTHER".into(),
            ..key.clone()
        };
        assert_eq!(
            check(&map, &stranger, "us-east-1", now).unwrap_err().error_type,
            "UnrecognizedClientException"
        );
        let wrong_secret = Credentials {
            secret_access_key: "guess".into(),
            ..key.clone()
        };
        let refused = check(
            &signed_management_post(&wrong_secret, now, b"hi"),
            &key,
            "us-east-1",
            now,
        )
        .unwrap_err();
        assert_eq!(refused.error_type, "InvalidSignatureException");
        assert!(
            refused.message.contains("/dev/%40connections/abc%253D"),
            "{}",
            refused.message
        );

        let late = check(&map, &key, "us-east-1", now + TimeDelta::minutes(16)).unwrap_err();
        assert!(
            late.message
                .starts_with("Signature expired: 20150830T123600Z is now earlier than"),
            "{late:?}"
        );
        let early = check(&map, &key, "us-east-1", now - TimeDelta::minutes(16)).unwrap_err();
        assert!(early.message.starts_with("Signature not yet current"), "{early:?}");
        let region = check(&map, &key, "eu-west-1", now).unwrap_err();
        assert_eq!(
            region.message,
            "Credential should be scoped to a valid region, not 'us-east-1'. "
        );

        let mut declared = map.clone();
        declared.insert(
            "x-amz-content-sha256",
            HeaderValue::from_str(&hex_sha256(b"other")).unwrap(),
        );
        assert_eq!(
            check(&declared, &key, "us-east-1", now).unwrap_err().error_type,
            "InvalidSignatureException"
        );

        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", HeaderValue::from_static("Bearer eyJ.x.y"));
        assert_eq!(
            check(&bearer, &key, "us-east-1", now).unwrap_err(),
            Refusal::missing_token()
        );
        let mut partial = map.clone();
        partial.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request",
            ),
        );
        let incomplete = check(&partial, &key, "us-east-1", now).unwrap_err();
        assert_eq!(incomplete.error_type, "IncompleteSignatureException");
        assert!(incomplete.message.contains("requires 'Signature' parameter"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = Credentials {
            session_token: Some("tok".into()),
            ..suite_key()
        };
        let text = format!("{key:?}");
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("EXAMPLEKEY") && !text.contains("tok\""), "{text}");
    }
}
