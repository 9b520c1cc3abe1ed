//! Route selection: `$request.body.<field>` picks the route whose key equals
//! that string field of a JSON message, else `$default`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::template::WsRouteSpec;

#[derive(Debug, Clone)]
pub(crate) struct RouteSelector {
    /// `["action"]` for `$request.body.action`; `None` when the expression is
    /// not a body field (everything then goes to `$default`).
    field_path: Option<Vec<String>>,
    message_routes: BTreeSet<String>,
    has_default: bool,
}

impl RouteSelector {
    pub fn new(expression: &str, routes: &BTreeMap<String, WsRouteSpec>) -> Self {
        let expression = expression.trim();
        let expression = expression
            .strip_prefix("${")
            .and_then(|e| e.strip_suffix('}'))
            .map(|e| format!("${e}"))
            .unwrap_or_else(|| expression.to_string());
        let field_path = expression
            .strip_prefix("$request.body.")
            .filter(|path| !path.is_empty())
            .map(|path| path.split('.').map(str::to_string).collect());
        RouteSelector {
            field_path,
            message_routes: routes
                .keys()
                .filter(|k| !matches!(k.as_str(), "$connect" | "$disconnect" | "$default"))
                .cloned()
                .collect(),
            has_default: routes.contains_key("$default"),
        }
    }

    /// The route key for a message (`None` for binary), or `None` when no
    /// route takes it.
    pub fn select(&self, text: Option<&str>) -> Option<String> {
        let selected = text
            .zip(self.field_path.as_ref())
            .and_then(|(text, path)| {
                let value: Value = serde_json::from_str(text).ok()?;
                let field = path.iter().try_fold(&value, |v, key| v.as_object()?.get(key))?;
                field.as_str().map(str::to_string)
            })
            .filter(|key| self.message_routes.contains(key));
        selected.or_else(|| self.has_default.then(|| "$default".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(keys: &[&str]) -> BTreeMap<String, WsRouteSpec> {
        keys.iter()
            .map(|k| {
                (
                    k.to_string(),
                    WsRouteSpec {
                        function: "F".into(),
                        authorizer: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn selects_by_action() {
        let s = RouteSelector::new(
            "$request.body.action",
            &routes(&["$connect", "sendMessage", "$default"]),
        );
        assert_eq!(
            s.select(Some(r#"{"action":"sendMessage"}"#)).as_deref(),
            Some("sendMessage")
        );
        assert_eq!(s.select(Some(r#"{"action":"nope"}"#)).as_deref(), Some("$default"));
        assert_eq!(s.select(Some(r#"{"action":"$connect"}"#)).as_deref(), Some("$default"));
        assert_eq!(s.select(Some(r#"{"action":1}"#)).as_deref(), Some("$default"));
        assert_eq!(s.select(Some("not json")).as_deref(), Some("$default"));
        assert_eq!(s.select(Some(r#"["sendMessage"]"#)).as_deref(), Some("$default"));
        assert_eq!(s.select(None).as_deref(), Some("$default"));
    }

    #[test]
    fn without_default_nothing_matches() {
        let s = RouteSelector::new("$request.body.action", &routes(&["sendMessage"]));
        assert_eq!(s.select(Some(r#"{"action":"other"}"#)), None);
        assert_eq!(
            s.select(Some(r#"{"action":"sendMessage"}"#)).as_deref(),
            Some("sendMessage")
        );
    }

    #[test]
    fn nested_and_braced_expressions() {
        let s = RouteSelector::new("${request.body.meta.kind}", &routes(&["a"]));
        assert_eq!(s.select(Some(r#"{"meta":{"kind":"a"}}"#)).as_deref(), Some("a"));
        let s = RouteSelector::new("$request.header.x", &routes(&["a", "$default"]));
        assert_eq!(s.select(Some(r#"{"action":"a"}"#)).as_deref(), Some("$default"));
    }
}
