//! CloudFormation intrinsic functions, resolved the way the emulator needs them:
//! parameters to their values, pseudo parameters to local stand-ins, resources
//! to their logical ids (function ARNs for `Fn.Arn`, so integration URIs name
//! the function they invoke).

use std::collections::BTreeMap;

use serde_yaml::Value;

pub(crate) const ACCOUNT_ID: &str = "000000000000";
pub(crate) const STACK_NAME: &str = "local";

pub(crate) fn function_arn(region: &str, function_name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}")
}

pub(crate) struct Resolver {
    pub region: String,
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> function name, for `Fn::GetAtt X.Arn`.
    pub function_names: BTreeMap<String, String>,
}

impl Resolver {
    /// A scalar or an intrinsic function, as a string.
    pub fn resolve(&self, value: &Value) -> Result<String, String> {
        match value {
            Value::Null => Ok(String::new()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            Value::String(s) => Ok(s.clone()),
            Value::Tagged(tagged) => {
                let name = tagged.tag.to_string();
                self.intrinsic(name.trim_start_matches('!'), &tagged.value)
            }
            Value::Mapping(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    Some("Ref") => self.intrinsic("Ref", arg),
                    Some(k) if k.starts_with("Fn::") => self.intrinsic(&k[4..], arg),
                    _ => Err(format!("cannot resolve mapping {value:?}")),
                }
            }
            other => Err(format!("cannot resolve {other:?}")),
        }
    }

    fn intrinsic(&self, name: &str, arg: &Value) -> Result<String, String> {
        match name {
            "Ref" => {
                let target = arg.as_str().ok_or("!Ref needs a name")?;
                Ok(self.reference(target))
            }
            "GetAtt" => {
                let (resource, attribute) = match arg {
                    Value::String(s) => s.split_once('.').ok_or("!GetAtt needs Resource.Attribute")?,
                    Value::Sequence(parts) if parts.len() == 2 => (
                        parts[0].as_str().ok_or("!GetAtt resource must be a string")?,
                        parts[1].as_str().ok_or("!GetAtt attribute must be a string")?,
                    ),
                    _ => return Err("!GetAtt needs Resource.Attribute".into()),
                };
                Ok(self.attribute(resource, attribute))
            }
            "Sub" => match arg {
                Value::String(s) => self.substitute(s, &BTreeMap::new()),
                Value::Sequence(parts) if parts.len() == 2 => {
                    let text = parts[0].as_str().ok_or("!Sub text must be a string")?;
                    let mut vars = BTreeMap::new();
                    if let Value::Mapping(map) = &parts[1] {
                        for (k, v) in map {
                            let k = k.as_str().ok_or("!Sub variable names must be strings")?;
                            vars.insert(k.to_string(), self.resolve(v)?);
                        }
                    }
                    self.substitute(text, &vars)
                }
                _ => Err("!Sub needs a string or [string, variables]".into()),
            },
            "Join" => match arg {
                Value::Sequence(parts) if parts.len() == 2 => {
                    let separator = parts[0].as_str().ok_or("!Join separator must be a string")?;
                    let items = parts[1].as_sequence().ok_or("!Join needs a list")?;
                    let items = items.iter().map(|v| self.resolve(v)).collect::<Result<Vec<_>, _>>()?;
                    Ok(items.join(separator))
                }
                _ => Err("!Join needs [separator, list]".into()),
            },
            other => Err(format!("unsupported intrinsic function {other}")),
        }
    }

    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => ACCOUNT_ID.to_string(),
            "AWS::Partition" => "aws".to_string(),
            "AWS::StackName" => STACK_NAME.to_string(),
            "AWS::URLSuffix" => "amazonaws.com".to_string(),
            "AWS::NoValue" => String::new(),
            _ => match self.parameters.get(name) {
                Some(value) => value.clone(),
                None => name.to_string(),
            },
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> String {
        match (self.function_names.get(resource), attribute) {
            (Some(function_name), "Arn") => function_arn(&self.region, function_name),
            _ => resource.to_string(),
        }
    }

    /// `${Name}` and `${Resource.Attribute}` substitution; `${!Literal}` stays `${Literal}`.
    fn substitute(&self, text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(value);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute));
            } else {
                out.push_str(&self.reference(name));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver {
            region: "eu-west-1".into(),
            parameters: BTreeMap::from([("StageName".to_string(), "dev".to_string())]),
            function_names: BTreeMap::from([("Fn".to_string(), "Fn".to_string())]),
        }
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn resolves_short_and_long_forms() {
        let r = resolver();
        assert_eq!(r.resolve(&yaml("!Ref StageName")).unwrap(), "dev");
        assert_eq!(r.resolve(&yaml("{Ref: StageName}")).unwrap(), "dev");
        assert_eq!(r.resolve(&yaml("!Ref SomeResource")).unwrap(), "SomeResource");
        assert_eq!(
            r.resolve(&yaml("!GetAtt Fn.Arn")).unwrap(),
            "arn:aws:lambda:eu-west-1:000000000000:function:Fn"
        );
        assert_eq!(r.resolve(&yaml("{'Fn::GetAtt': [Other, Arn]}")).unwrap(), "Other");
        assert_eq!(r.resolve(&yaml("42")).unwrap(), "42");
        assert_eq!(r.resolve(&yaml("!Join ['/', [a, !Ref StageName]]")).unwrap(), "a/dev");
    }

    #[test]
    fn substitutes_parameters_pseudo_parameters_and_resources() {
        let r = resolver();
        let text = "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Api}/${StageName}/${AWS::StackName}/${Fn.Arn}/${!Literal}";
        assert_eq!(
            r.resolve(&yaml(&format!("!Sub \"{text}\""))).unwrap(),
            "arn:aws:x:eu-west-1:000000000000:Api/dev/local/arn:aws:lambda:eu-west-1:000000000000:function:Fn/${Literal}"
        );
        assert_eq!(
            r.resolve(&yaml("!Sub ['${A}-${StageName}', {A: !Ref StageName}]"))
                .unwrap(),
            "dev-dev"
        );
    }
}
