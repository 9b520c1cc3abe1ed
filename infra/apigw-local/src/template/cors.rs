//! The HTTP API's `CorsConfiguration`, as SAM and API Gateway accept it: on
//! the `AWS::Serverless::HttpApi` (merged over `Globals.HttpApi`) or on an
//! `AWS::ApiGatewayV2::Api`; `true` allows every origin. What API Gateway
//! refuses at deploy time is refused here too, so a template that runs
//! locally deploys.

use serde_yaml::{Mapping, Value};

use super::resolve::Resolver;
use super::CorsSpec;

const KEYS: [&str; 6] = [
    "AllowCredentials",
    "AllowHeaders",
    "AllowMethods",
    "AllowOrigins",
    "ExposeHeaders",
    "MaxAge",
];
/// API Gateway's bounds of `MaxAge` (seconds; -1 turns caching off).
const MAX_AGE_RANGE: std::ops::RangeInclusive<i64> = -1..=86_400;

/// The CORS configuration of the HTTP API `api_id`, or `None` when it has none.
pub(super) fn parse_cors(
    resources: &Mapping,
    globals: Option<&Value>,
    api_id: &str,
    resolver: &Resolver,
) -> Result<Option<CorsSpec>, String> {
    let own = resources
        .get(api_id)
        .and_then(|api| api.get("Properties"))
        .and_then(|p| p.get("CorsConfiguration"));
    let global = globals.and_then(|g| g.get("CorsConfiguration"));
    let configuration = match (global, own) {
        // SAM merges a resource's map over the global one, key by key.
        (Some(Value::Mapping(global)), Some(Value::Mapping(own))) => {
            let mut merged = global.clone();
            for (key, value) in own {
                merged.insert(key.clone(), value.clone());
            }
            Value::Mapping(merged)
        }
        (_, Some(own)) => own.clone(),
        (Some(global), None) => global.clone(),
        (None, None) => return Ok(None),
    };
    let in_api = |e: String| format!("{api_id}.CorsConfiguration: {e}");
    let map = match &configuration {
        Value::Bool(false) => return Ok(None),
        Value::Bool(true) => {
            return Ok(Some(CorsSpec {
                allow_origins: vec!["*".to_string()],
                ..CorsSpec::default()
            }))
        }
        Value::Mapping(map) => map,
        _ => return Err(in_api("must be true, false or a map".into())),
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or_default();
        if !KEYS.contains(&key) {
            return Err(in_api(format!("unknown key {key:?} (known: {})", KEYS.join(", "))));
        }
    }

    let list = |key: &str| -> Result<Vec<String>, String> {
        let Some(value) = map.get(key) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_sequence()
            .ok_or_else(|| in_api(format!("{key} must be a list")))?;
        items
            .iter()
            .map(|item| {
                let item = resolver.resolve(item).map_err(|e| in_api(format!("{key}: {e}")))?;
                let item = item.trim().to_string();
                if item.is_empty() {
                    return Err(in_api(format!("{key} has an empty entry")));
                }
                Ok(item)
            })
            .collect()
    };
    let scalar = |key: &str| -> Result<Option<String>, String> {
        map.get(key)
            .map(|v| resolver.resolve(v).map_err(|e| in_api(format!("{key}: {e}"))))
            .transpose()
    };

    let allow_origins = list("AllowOrigins")?;
    for origin in &allow_origins {
        check_origin(origin).map_err(in_api)?;
    }
    let allow_credentials = match scalar("AllowCredentials")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(in_api(format!("AllowCredentials must be true or false, not {other:?}"))),
    };
    if allow_credentials && allow_origins.iter().any(|o| o == "*") {
        return Err(in_api(
            "AllowCredentials cannot be true when AllowOrigins has \"*\" (API Gateway refuses it; list the origins)"
                .into(),
        ));
    }
    let max_age = scalar("MaxAge")?
        .map(|text| {
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|age| MAX_AGE_RANGE.contains(age))
                .ok_or_else(|| in_api(format!("MaxAge must be a whole number from -1 to 86400, not {text:?}")))
        })
        .transpose()?;

    Ok(Some(CorsSpec {
        allow_origins,
        // Header names and methods compare case-insensitively; kept in one case.
        allow_headers: list("AllowHeaders")?
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        allow_methods: list("AllowMethods")?
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        expose_headers: list("ExposeHeaders")?
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        max_age,
        allow_credentials,
    }))
}

/// An allowed origin is `*`, `http://*`, `https://*` (any origin of that
/// scheme) or one origin (`scheme://host[:port]`, no path): the forms the API
/// Gateway documentation gives.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Err(format!(
            "AllowOrigins entry {origin:?} is not *, scheme://* or scheme://host[:port]"
        ));
    };
    let wellformed = !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !authority.is_empty()
        && !authority.contains('/');
    if !wellformed {
        return Err(format!(
            "AllowOrigins entry {origin:?} is not *, scheme://* or scheme://host[:port]"
        ));
    }
    if authority.contains('*') && authority != "*" {
        return Err(format!(
            "AllowOrigins entry {origin:?}: a wildcard stands only for a whole origin (*) or a whole host (https://*)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn resolver() -> Resolver {
        Resolver {
            region: "us-east-1".into(),
            parameters: BTreeMap::from([("Origin".to_string(), "https://app.example".to_string())]),
            function_names: BTreeMap::new(),
        }
    }

    fn parse(resources: &str, globals: Option<&str>) -> Result<Option<CorsSpec>, String> {
        let resources: Mapping = serde_yaml::from_str(resources).unwrap();
        let globals: Option<Value> = globals.map(|g| serde_yaml::from_str(g).unwrap());
        parse_cors(&resources, globals.as_ref(), "Api", &resolver())
    }

    fn api(cors: &str) -> String {
        format!("Api: {{Type: AWS::Serverless::HttpApi, Properties: {{CorsConfiguration: {cors}}}}}")
    }

    #[test]
    fn reads_every_field_resolving_parameters() {
        let spec = parse(
            &api(
                "{AllowOrigins: [!Ref Origin, 'http://*'], AllowHeaders: [Authorization, Idempotency-Key], \
                  AllowMethods: [get, POST], ExposeHeaders: [X-Request-Id], MaxAge: 600, AllowCredentials: true}",
            ),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            spec,
            CorsSpec {
                allow_origins: vec!["https://app.example".into(), "http://*".into()],
                allow_headers: vec!["authorization".into(), "idempotency-key".into()],
                allow_methods: vec!["GET".into(), "POST".into()],
                expose_headers: vec!["x-request-id".into()],
                max_age: Some(600),
                allow_credentials: true,
            }
        );
    }

    #[test]
    fn none_true_false_and_globals() {
        assert_eq!(parse("Api: {Type: AWS::Serverless::HttpApi}", None).unwrap(), None);
        assert_eq!(parse(&api("false"), None).unwrap(), None);
        assert_eq!(parse(&api("true"), None).unwrap().unwrap().allow_origins, ["*"]);
        let spec = parse(
            &api("{MaxAge: 5}"),
            Some("{CorsConfiguration: {AllowOrigins: ['*'], MaxAge: 300}}"),
        )
        .unwrap()
        .unwrap();
        assert_eq!((spec.allow_origins, spec.max_age), (vec!["*".to_string()], Some(5)));
        // The implicit API (no resource) takes the global configuration.
        let spec = parse("{}", Some("{CorsConfiguration: {AllowOrigins: ['*']}}")).unwrap();
        assert!(spec.is_some());
    }

    #[test]
    fn refuses_what_api_gateway_refuses() {
        let error = |cors: &str| parse(&api(cors), None).unwrap_err();
        assert!(error("{AllowOrigins: ['*'], AllowCredentials: true}").contains("AllowCredentials"));
        assert!(error("{AllowOrigins: ['https://*.example.com']}").contains("wildcard"));
        assert!(error("{AllowOrigins: [example.com]}").contains("scheme://host"));
        assert!(error("{AllowOrigins: ['https://a.example/path']}").contains("scheme://host"));
        assert!(error("{AllowOrigins: ['']}").contains("empty entry"));
        assert!(error("{AllowOrigins: '*'}").contains("must be a list"));
        assert!(error("{MaxAge: 86401}").contains("MaxAge"));
        assert!(error("{MaxAge: soon}").contains("MaxAge"));
        assert!(error("{AllowCredentials: yes please}").contains("AllowCredentials"));
        assert!(error("{AllowOrigin: ['*']}").contains("unknown key \"AllowOrigin\""));
        assert!(error("'*'").contains("true, false or a map"));
        assert!(parse(&api("{MaxAge: -1}"), None).is_ok());
    }
}
