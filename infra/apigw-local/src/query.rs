//! Query strings, parsed once per request as API Gateway parses them: names
//! and values percent-decoded (`%74oken` is `token`), `+` as a space, pairs
//! in order, repeats kept. The events and the logs both read this parse, so
//! what a function sees as `token` is what redaction sees.

pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn parse(raw: &str) -> Pairs {
    url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_values_are_decoded() {
        assert_eq!(
            super::parse("%74oken=a%2Eb&x=1+2&x=3&flag"),
            [
                ("token".to_string(), "a.b".to_string()),
                ("x".to_string(), "1 2".to_string()),
                ("x".to_string(), "3".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
    }
}
