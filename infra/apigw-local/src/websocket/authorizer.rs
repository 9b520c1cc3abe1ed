//! A REQUEST authorizer's answer: an IAM policy for the `$connect` method ARN,
//! a principal, and a context handed to every later event of the connection.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::lambda::InvokeError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// `requestContext.authorizer` for the connection's events.
    Allow(Value),
    /// 403 Forbidden.
    Deny,
    /// 401: the authorizer failed with the message `Unauthorized`.
    Unauthorized,
    /// 500: anything else wrong with the authorizer.
    Failed(String),
}

pub(crate) fn decide(answer: Result<Bytes, InvokeError>, method_arn: &str, latency_ms: u64) -> Decision {
    let payload = match answer {
        Ok(payload) => payload,
        Err(InvokeError::Function { error_message, .. }) if error_message == "Unauthorized" => {
            return Decision::Unauthorized
        }
        Err(error) => return Decision::Failed(error.to_string()),
    };
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(&payload) else {
        return Decision::Failed("the authorizer's answer is not a JSON object".into());
    };
    let Some(statements) = answer.get("policyDocument").and_then(|d| d.get("Statement")) else {
        return Decision::Failed("the authorizer's answer has no policyDocument.Statement".into());
    };
    let statements: Vec<&Value> = match statements {
        Value::Array(list) => list.iter().collect(),
        single => vec![single],
    };
    let applies = |statement: &Value| {
        any_matches(statement.get("Action"), "execute-api:Invoke", true)
            && any_matches(statement.get("Resource"), method_arn, false)
    };
    let effect = |statement: &Value, wanted: &str| {
        statement
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(wanted))
    };
    // An explicit Deny wins; without a matching Allow the request is denied.
    if statements.iter().any(|s| effect(s, "Deny") && applies(s)) {
        return Decision::Deny;
    }
    if !statements.iter().any(|s| effect(s, "Allow") && applies(s)) {
        return Decision::Deny;
    }

    let mut authorizer = Map::new();
    if let Some(Value::Object(context)) = answer.get("context") {
        for (key, value) in context {
            // API Gateway passes context values on as strings.
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                Value::Array(_) | Value::Object(_) => {
                    return Decision::Failed(format!("context value {key:?} must be a string, number or boolean"))
                }
            };
            authorizer.insert(key.clone(), Value::String(text));
        }
    }
    let principal = answer.get("principalId").and_then(Value::as_str).unwrap_or_default();
    authorizer.insert("principalId".into(), Value::String(principal.to_string()));
    authorizer.insert("integrationLatency".into(), Value::from(latency_ms));
    Decision::Allow(Value::Object(authorizer))
}

fn any_matches(patterns: Option<&Value>, target: &str, case_insensitive: bool) -> bool {
    let matches = |pattern: &Value| {
        pattern.as_str().is_some_and(|p| {
            if case_insensitive {
                glob(&p.to_ascii_lowercase(), &target.to_ascii_lowercase())
            } else {
                glob(p, target)
            }
        })
    };
    match patterns {
        Some(Value::Array(list)) => list.iter().any(matches),
        Some(single) => matches(single),
        None => false,
    }
}

/// IAM wildcards: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::apigw::ApiGatewayV2CustomAuthorizerIamPolicyResponse;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc/dev/$connect";

    fn policy(effect: &str, resource: Value) -> Value {
        json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            ]},
            "context": {"exp": 1790000000, "role": "authenticated", "admin": false}
        })
    }

    fn answer(value: &Value) -> Result<Bytes, InvokeError> {
        Ok(Bytes::from(serde_json::to_vec(value).unwrap()))
    }

    #[test]
    fn allow_carries_principal_and_stringified_context() {
        let allow = policy("Allow", json!(ARN));
        // The shape the Rust authorizer function would produce.
        let _: ApiGatewayV2CustomAuthorizerIamPolicyResponse = serde_json::from_value(allow.clone()).unwrap();
        assert_eq!(
            decide(answer(&allow), ARN, 7),
            Decision::Allow(json!({
                "principalId": "user-1", "integrationLatency": 7,
                "exp": "1790000000", "role": "authenticated", "admin": "false"
            }))
        );
    }

    #[test]
    fn wildcards_and_lists() {
        let wildcard = policy("Allow", json!(["arn:other", "arn:aws:execute-api:*:*:abc/*"]));
        assert!(matches!(decide(answer(&wildcard), ARN, 0), Decision::Allow(_)));
        let elsewhere = policy("Allow", json!("arn:aws:execute-api:*:*:other/*"));
        assert_eq!(decide(answer(&elsewhere), ARN, 0), Decision::Deny);
        assert!(glob("a*c?e", "abbbcde"));
        assert!(!glob("a*c?e", "abbbce"));
    }

    #[test]
    fn deny_unauthorized_and_failures() {
        assert_eq!(decide(answer(&policy("Deny", json!(ARN))), ARN, 0), Decision::Deny);
        let unauthorized = Err(InvokeError::Function {
            error_type: "&str".into(),
            error_message: "Unauthorized".into(),
        });
        assert_eq!(decide(unauthorized, ARN, 0), Decision::Unauthorized);
        let crashed = Err(InvokeError::RuntimeExited(
            "Runtime exited with error: exit status 1".into(),
        ));
        assert!(matches!(decide(crashed, ARN, 0), Decision::Failed(_)));
        assert!(matches!(
            decide(answer(&json!({"principalId": "x"})), ARN, 0),
            Decision::Failed(_)
        ));
        let nested = json!({"principalId": "x", "policyDocument": {"Statement": [{"Action": "*", "Effect": "Allow", "Resource": "*"}]},
            "context": {"bad": {"nested": true}}});
        assert!(matches!(decide(answer(&nested), ARN, 0), Decision::Failed(_)));
    }
}
