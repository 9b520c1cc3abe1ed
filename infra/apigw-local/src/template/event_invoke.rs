//! A function's `EventInvokeConfig` (SAM): how Lambda treats its asynchronous
//! invocations — how often a failed one is retried, how old an event may get,
//! and where it goes when it fails for good.

use std::time::Duration;

use serde_yaml::Mapping;

use super::resolve::Resolver;

/// AWS's defaults: two retries, events kept up to six hours.
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventInvokeSpec {
    /// `MaximumRetryAttempts`: 0 to 2.
    pub maximum_retry_attempts: u32,
    /// `MaximumEventAgeInSeconds`: 60 to 21600.
    pub maximum_event_age: Duration,
    /// `DestinationConfig.OnFailure.Destination`, resolved (locally, the
    /// resource's logical id or the ARN given).
    pub on_failure: Option<String>,
}

impl Default for EventInvokeSpec {
    fn default() -> Self {
        Self {
            maximum_retry_attempts: DEFAULT_RETRIES,
            maximum_event_age: DEFAULT_MAX_EVENT_AGE,
            on_failure: None,
        }
    }
}

pub(super) fn parse(properties: &Mapping, resolver: &Resolver) -> Result<EventInvokeSpec, String> {
    let Some(config) = properties.get("EventInvokeConfig") else {
        return Ok(EventInvokeSpec::default());
    };
    let number = |key: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, String> {
        config
            .get(key)
            .map(|value| {
                let text = resolver
                    .resolve(value)
                    .map_err(|e| format!("EventInvokeConfig.{key}: {e}"))?;
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| format!("EventInvokeConfig.{key} must be {range:?}, not {text:?}"))
            })
            .transpose()
    };
    let on_failure = config
        .get("DestinationConfig")
        .and_then(|d| d.get("OnFailure"))
        .and_then(|f| f.get("Destination"))
        .map(|d| resolver.resolve(d))
        .transpose()
        .map_err(|e| format!("EventInvokeConfig.DestinationConfig.OnFailure.Destination: {e}"))?
        .filter(|d| !d.is_empty());
    Ok(EventInvokeSpec {
        maximum_retry_attempts: number("MaximumRetryAttempts", 0..=2)?.map_or(DEFAULT_RETRIES, |n| n as u32),
        maximum_event_age: number("MaximumEventAgeInSeconds", 60..=21600)?
            .map_or(DEFAULT_MAX_EVENT_AGE, Duration::from_secs),
        on_failure,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parsed(yaml: &str) -> Result<EventInvokeSpec, String> {
        let resolver = Resolver {
            region: "us-east-1".into(),
            parameters: BTreeMap::new(),
            function_names: BTreeMap::new(),
        };
        let properties: Mapping = serde_yaml::from_str(yaml).unwrap();
        parse(&properties, &resolver)
    }

    #[test]
    fn reads_retries_age_and_the_failure_destination_with_aws_defaults() {
        assert_eq!(parsed("Timeout: 3").unwrap(), EventInvokeSpec::default());
        let spec = parsed(
            "EventInvokeConfig:\n  MaximumRetryAttempts: 1\n  MaximumEventAgeInSeconds: 600\n  DestinationConfig:\n    OnFailure:\n      Type: SQS\n      Destination: !GetAtt Failures.Arn\n",
        )
        .unwrap();
        assert_eq!(spec.maximum_retry_attempts, 1);
        assert_eq!(spec.maximum_event_age, Duration::from_secs(600));
        assert_eq!(spec.on_failure.as_deref(), Some("Failures"));
        assert!(parsed("EventInvokeConfig:\n  MaximumRetryAttempts: 3\n").is_err());
        assert!(parsed("EventInvokeConfig:\n  MaximumEventAgeInSeconds: 5\n").is_err());
    }
}
