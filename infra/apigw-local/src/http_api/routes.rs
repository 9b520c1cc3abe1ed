//! HTTP API route matching: the most specific route wins — static segments
//! over `{param}` over `{proxy+}`, then a named method over `ANY` — and
//! `$default` catches what no route matches.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::template::HttpRouteSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Static(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    fn specificity(&self) -> u8 {
        match self {
            Segment::Static(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Route {
    /// `None` for `ANY`.
    method: Option<String>,
    segments: Vec<Segment>,
    route_key: String,
    function: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    pub route_key: String,
    pub function: String,
    pub path_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
    default_function: Option<String>,
}

impl RouteTable {
    pub fn new(specs: &[HttpRouteSpec]) -> Self {
        let mut table = RouteTable::default();
        for spec in specs {
            let Some(method) = &spec.method else {
                table.default_function = Some(spec.function.clone());
                continue;
            };
            table.routes.push(Route {
                method: (method != "ANY").then(|| method.clone()),
                segments: parse_path(&spec.path),
                route_key: spec.route_key(),
                function: spec.function.clone(),
            });
        }
        table
    }

    pub fn find(&self, method: &str, raw_path: &str) -> Option<RouteMatch> {
        let request: Vec<&str> = split(raw_path);
        let best = self
            .routes
            .iter()
            .filter(|route| route.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)))
            .filter_map(|route| match_segments(&route.segments, &request).map(|params| (route, params)))
            .max_by(|(a, _), (b, _)| compare_specificity(a, b));
        match best {
            Some((route, path_parameters)) => Some(RouteMatch {
                route_key: route.route_key.clone(),
                function: route.function.clone(),
                path_parameters,
            }),
            None => self.default_function.as_ref().map(|function| RouteMatch {
                route_key: "$default".to_string(),
                function: function.clone(),
                path_parameters: BTreeMap::new(),
            }),
        }
    }

    /// Whether a CORS preflight to this path goes to an integration rather
    /// than being answered by the gateway: API Gateway routes it when an
    /// `OPTIONS` route or the catch-all `$default` route takes it.
    pub fn routes_preflight(&self, raw_path: &str) -> bool {
        self.find("OPTIONS", raw_path)
            .is_some_and(|m| m.route_key == "$default" || m.route_key.starts_with("OPTIONS "))
    }
}

fn split(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

fn parse_path(path: &str) -> Vec<Segment> {
    split(path)
        .into_iter()
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_string()),
                    None => Segment::Param(name.to_string()),
                },
                None => Segment::Static(segment.to_string()),
            },
        )
        .collect()
}

fn match_segments(route: &[Segment], request: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, segment) in route.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                let rest = request.get(i..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(&rest));
                return Some(params);
            }
            Segment::Static(text) => {
                if request.get(i)? != text {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = request.get(i)?;
                if value.is_empty() {
                    return None;
                }
                params.insert(name.clone(), percent_decode(value));
            }
        }
    }
    (route.len() == request.len()).then_some(params)
}

fn compare_specificity(a: &Route, b: &Route) -> Ordering {
    let ranks = |r: &Route| r.segments.iter().map(Segment::specificity).collect::<Vec<_>>();
    ranks(a)
        .cmp(&ranks(b))
        .then_with(|| a.method.is_some().cmp(&b.method.is_some()))
}

/// `%XX` decoding of a path; invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: Option<&str>, path: &str, function: &str) -> HttpRouteSpec {
        HttpRouteSpec {
            method: method.map(str::to_string),
            path: path.to_string(),
            function: function.to_string(),
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(&[
            spec(Some("GET"), "/v1/health", "Health"),
            spec(Some("GET"), "/v1/conversations/{id}/messages", "List"),
            spec(Some("POST"), "/v1/conversations/{id}/messages", "Send"),
            spec(Some("POST"), "/v1/conversations/direct", "Direct"),
            spec(Some("GET"), "/v1/conversations/{id}", "Get"),
            spec(Some("ANY"), "/v1/conversations/{id}", "AnyConv"),
            spec(Some("GET"), "/files/{proxy+}", "Files"),
            spec(Some("ANY"), "/{proxy+}", "CatchAll"),
        ])
    }

    #[test]
    fn matches_static_and_parameters() {
        let t = table();
        let m = t.find("GET", "/v1/health").unwrap();
        assert_eq!(
            (m.route_key.as_str(), m.function.as_str()),
            ("GET /v1/health", "Health")
        );
        let m = t.find("POST", "/v1/conversations/abc-1/messages").unwrap();
        assert_eq!(m.route_key, "POST /v1/conversations/{id}/messages");
        assert_eq!(m.path_parameters["id"], "abc-1");
        let m = t.find("GET", "/v1/conversations/a%20b/messages").unwrap();
        assert_eq!(m.path_parameters["id"], "a b");
    }

    #[test]
    fn most_specific_wins() {
        let t = table();
        assert_eq!(t.find("POST", "/v1/conversations/direct").unwrap().function, "Direct");
        assert_eq!(t.find("GET", "/v1/conversations/direct").unwrap().function, "Get");
        assert_eq!(t.find("DELETE", "/v1/conversations/x").unwrap().function, "AnyConv");
        let m = t.find("GET", "/files/a/b/c.txt").unwrap();
        assert_eq!(m.function, "Files");
        assert_eq!(m.path_parameters["proxy"], "a/b/c.txt");
        let m = t.find("PUT", "/anything/else").unwrap();
        assert_eq!(
            (m.route_key.as_str(), m.path_parameters["proxy"].as_str()),
            ("ANY /{proxy+}", "anything/else")
        );
    }

    #[test]
    fn no_match_and_default_route() {
        let t = RouteTable::new(&[spec(Some("GET"), "/v1/health", "Health")]);
        assert_eq!(t.find("POST", "/v1/health"), None);
        assert_eq!(t.find("GET", "/v1/health/"), None);
        assert_eq!(t.find("GET", "/v1"), None);
        let t = RouteTable::new(&[spec(Some("GET"), "/v1/health", "Health"), spec(None, "", "Fallback")]);
        let m = t.find("POST", "/x").unwrap();
        assert_eq!((m.route_key.as_str(), m.function.as_str()), ("$default", "Fallback"));
    }

    #[test]
    fn preflights_go_to_options_and_default_routes_only() {
        let t = table();
        assert!(!t.routes_preflight("/v1/conversations/x/messages"));
        // `ANY` routes match OPTIONS too, but the gateway answers the preflight.
        assert!(!t.routes_preflight("/anything/else"));
        let t = RouteTable::new(&[
            spec(Some("GET"), "/v1/health", "Health"),
            spec(Some("OPTIONS"), "/v1/{proxy+}", "Options"),
        ]);
        assert!(t.routes_preflight("/v1/health"));
        assert!(!t.routes_preflight("/v2/health"));
        let t = RouteTable::new(&[spec(Some("GET"), "/v1/health", "Health"), spec(None, "", "Fallback")]);
        assert!(t.routes_preflight("/v1/health"));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
