//! `Schedule` (EventBridge rule) and `ScheduleV2` (EventBridge Scheduler)
//! events of `AWS::Serverless::Function` resources.

use serde_yaml::{Mapping, Value};

use super::resolve::{Resolver, STACK_NAME};
use super::resources_of_type;
use crate::schedule::{Expression, ScheduleSpec, Service};

const FUNCTION_TYPE: &str = "AWS::Serverless::Function";

pub(super) fn parse_schedules(resources: &Mapping, resolver: &Resolver) -> Result<Vec<ScheduleSpec>, String> {
    let mut schedules = Vec::new();
    for (function, resource) in resources_of_type(resources, FUNCTION_TYPE) {
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for (event_name, event) in events.into_iter().flatten() {
            let kind = event.get("Type").and_then(Value::as_str);
            if !matches!(kind, Some("Schedule" | "ScheduleV2")) {
                continue;
            }
            let event_name = event_name.as_str().unwrap_or_default();
            let what = format!("{function}.Events.{event_name}");
            let schedule = parse_one(function, event_name, kind == Some("ScheduleV2"), event, resolver)
                .map_err(|e| format!("{what}: {e}"))?;
            schedules.push(schedule);
        }
    }
    Ok(schedules)
}

fn parse_one(
    function: &str,
    event_name: &str,
    scheduler: bool,
    event: &Value,
    resolver: &Resolver,
) -> Result<ScheduleSpec, String> {
    let field = |key: &str| -> Result<Option<String>, String> {
        event
            .get("Properties")
            .and_then(|p| p.get(key))
            .map(|v| resolver.resolve(v).map_err(|e| format!("{key}: {e}")))
            .transpose()
    };
    let expression_key = if scheduler { "ScheduleExpression" } else { "Schedule" };
    let expression = field(expression_key)?.ok_or_else(|| format!("no {expression_key}"))?;
    let expression = Expression::parse(&expression, scheduler).map_err(|e| format!("{expression_key}: {e}"))?;

    let mut enabled = true;
    if !scheduler {
        if let Some(flag) = field("Enabled")? {
            enabled &= match flag.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("Enabled must be true or false, not {flag:?}")),
            };
        }
    }
    if let Some(state) = field("State")? {
        enabled &= match state.trim() {
            "ENABLED" => true,
            "DISABLED" => false,
            // A rule's third state; it runs like ENABLED.
            "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" if !scheduler => true,
            _ => return Err(format!("State must be ENABLED or DISABLED, not {state:?}")),
        };
    }

    let input = field("Input")?;
    if let Some(input) = &input {
        serde_json::from_str::<serde_json::Value>(input).map_err(|e| format!("Input must be JSON text: {e}"))?;
    }
    let name = field("Name")?.unwrap_or_else(|| format!("{STACK_NAME}-{function}{event_name}"));
    let service = if scheduler {
        Service::Scheduler {
            group: field("GroupName")?.unwrap_or_else(|| "default".to_string()),
        }
    } else {
        Service::Rule
    };
    Ok(ScheduleSpec {
        function: function.to_string(),
        event: event_name.to_string(),
        service,
        name,
        expression,
        enabled,
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn parse(events: &str) -> Result<Vec<ScheduleSpec>, String> {
        let text = format!(
            "Parameters:\n  SweepEnabled: {{Type: String, Default: 'false'}}\n\
             Resources:\n  SweepFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n{events}"
        );
        let root: Value = serde_yaml::from_str(&text).unwrap();
        let resolver = Resolver {
            region: "us-east-1".into(),
            parameters: BTreeMap::from([("SweepEnabled".to_string(), "false".to_string())]),
            function_names: BTreeMap::new(),
        };
        parse_schedules(root["Resources"].as_mapping().unwrap(), &resolver)
    }

    #[test]
    fn schedule_and_schedule_v2_events() {
        let schedules = parse(
            "        Sweep:\n          Type: Schedule\n          Properties: {Schedule: rate(1 minute)}\n\
             \x20       Nightly:\n          Type: ScheduleV2\n          Properties:\n            \
             ScheduleExpression: rate(1 day)\n            Name: nightly\n            GroupName: jobs\n            \
             Input: '{\"job\": \"nightly\"}'\n\
             \x20       Api:\n          Type: HttpApi\n          Properties: {Path: /x, Method: GET}\n",
        )
        .unwrap();
        assert_eq!(schedules.len(), 2);
        let nightly = schedules.iter().find(|s| s.event == "Nightly").unwrap();
        assert_eq!(nightly.function, "SweepFunction");
        assert_eq!(nightly.expression, Expression::Rate(Duration::from_secs(86_400)));
        assert_eq!(nightly.service, Service::Scheduler { group: "jobs".into() });
        assert_eq!(nightly.name, "nightly");
        assert_eq!(nightly.input.as_deref(), Some("{\"job\": \"nightly\"}"));
        assert!(nightly.enabled);
        let sweep = schedules.iter().find(|s| s.event == "Sweep").unwrap();
        assert_eq!(sweep.service, Service::Rule);
        assert_eq!(sweep.name, "local-SweepFunctionSweep");
        assert_eq!(sweep.expression.rate(), Some(Duration::from_secs(60)));
        assert_eq!(sweep.input, None);
    }

    #[test]
    fn disabled_schedules() {
        for properties in [
            "{Schedule: rate(5 minutes), Enabled: false}",
            "{Schedule: rate(5 minutes), Enabled: !Ref SweepEnabled}",
            "{Schedule: rate(5 minutes), State: DISABLED}",
        ] {
            let schedules = parse(&format!(
                "        Sweep:\n          Type: Schedule\n          Properties: {properties}\n"
            ))
            .unwrap();
            assert!(!schedules[0].enabled, "{properties}");
        }
        let schedules = parse(
            "        Sweep:\n          Type: ScheduleV2\n          Properties: {ScheduleExpression: rate(5 minutes), State: DISABLED}\n",
        )
        .unwrap();
        assert!(!schedules[0].enabled);
        let schedules =
            parse("        Sweep:\n          Type: Schedule\n          Properties: {Schedule: rate(5 minutes), Enabled: true}\n")
                .unwrap();
        assert!(schedules[0].enabled);
    }

    #[test]
    fn mistakes_name_the_event() {
        for (properties, complaint) in [
            ("{Schedule: rate(5 minute)}", "plural"),
            ("{Schedule: every minute}", "not a schedule expression"),
            ("{Enabled: true}", "no Schedule"),
            ("{Schedule: rate(1 hour), Enabled: maybe}", "true or false"),
            ("{Schedule: rate(1 hour), State: OFF}", "ENABLED or DISABLED"),
            ("{Schedule: rate(1 hour), Input: 'not json'}", "Input must be JSON"),
            ("{Schedule: 'at(2030-01-01T00:00:00)'}", "ScheduleV2"),
        ] {
            let error = parse(&format!(
                "        Sweep:\n          Type: Schedule\n          Properties: {properties}\n"
            ))
            .unwrap_err();
            assert!(
                error.starts_with("SweepFunction.Events.Sweep: ") && error.contains(complaint),
                "{properties}: {error}"
            );
        }
        let error =
            parse("        Sweep:\n          Type: ScheduleV2\n          Properties: {Schedule: rate(1 hour)}\n")
                .unwrap_err();
        assert!(error.contains("no ScheduleExpression"), "{error}");
    }
}
