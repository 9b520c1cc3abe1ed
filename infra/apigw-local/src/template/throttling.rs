//! Stage throttling: `DefaultRouteSettings` and `RouteSettings` (keyed by
//! route key) with `ThrottlingBurstLimit` and `ThrottlingRateLimit`, on the
//! WebSocket API's `AWS::ApiGatewayV2::Stage` and on the
//! `AWS::Serverless::HttpApi` (merged over `Globals.HttpApi`).

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::resolve::Resolver;
use super::{RouteThrottle, StageThrottling};

/// The throttling settings found in a stage's (or HTTP API's) properties.
pub(super) fn parse(
    properties: Option<&Value>,
    globals: Option<&Value>,
    resolver: &Resolver,
    what: &str,
) -> Result<StageThrottling, String> {
    let pick = |key: &str| {
        properties
            .and_then(|p| p.get(key))
            .or_else(|| globals.and_then(|g| g.get(key)))
    };
    let default = match pick("DefaultRouteSettings") {
        Some(settings) => settings_of(settings, resolver).map_err(|e| format!("{what}.DefaultRouteSettings: {e}"))?,
        None => RouteThrottle::default(),
    };
    let mut routes = BTreeMap::new();
    if let Some(map) = pick("RouteSettings") {
        let map = map
            .as_mapping()
            .ok_or_else(|| format!("{what}.RouteSettings must be a map of route keys"))?;
        for (key, settings) in map {
            let key = key
                .as_str()
                .ok_or_else(|| format!("{what}.RouteSettings: route keys are strings"))?;
            let own = settings_of(settings, resolver).map_err(|e| format!("{what}.RouteSettings.{key}: {e}"))?;
            routes.insert(key.to_string(), own);
        }
    }
    Ok(StageThrottling { default, routes })
}

fn settings_of(settings: &Value, resolver: &Resolver) -> Result<RouteThrottle, String> {
    let number = |key: &str| -> Result<Option<f64>, String> {
        let Some(value) = settings.get(key) else {
            return Ok(None);
        };
        let text = resolver.resolve(value).map_err(|e| format!("{key}: {e}"))?;
        let number: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{key} must be a number, not {text:?}"))?;
        if !number.is_finite() || number < 0.0 {
            return Err(format!("{key} must be a number of 0 or more, not {text:?}"));
        }
        Ok(Some(number))
    };
    let burst = number("ThrottlingBurstLimit")?;
    if burst.is_some_and(|b| b.fract() != 0.0) {
        return Err("ThrottlingBurstLimit must be a whole number".into());
    }
    Ok(RouteThrottle {
        burst: burst.map(|b| b as u64),
        rate: number("ThrottlingRateLimit")?,
    })
}
