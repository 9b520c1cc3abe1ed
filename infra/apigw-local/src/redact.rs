//! Keeps credentials out of logs: clients pass access tokens in query strings.

/// The query string with the value of every parameter whose name contains
/// `token` (also `access_token`, `id_token`, …) replaced by `[redacted]`.
pub(crate) fn query(raw: &str) -> String {
    raw.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().contains("token") => {
                format!("{name}=[redacted]")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A path with its query string redacted, for logging.
pub(crate) fn path_and_query(path: &str, raw_query: Option<&str>) -> String {
    match raw_query {
        Some(q) if !q.is_empty() => format!("{path}?{}", query(q)),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_token_values() {
        assert_eq!(super::query("a=1&token=eyJ.x.y&b=2"), "a=1&token=[redacted]&b=2");
        assert_eq!(super::query("access_token=abc"), "access_token=[redacted]");
        assert_eq!(
            super::path_and_query("/dev", Some("token=abc")),
            "/dev?token=[redacted]"
        );
        assert_eq!(super::path_and_query("/dev", None), "/dev");
    }
}
