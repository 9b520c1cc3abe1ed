//! The SDK client's HTTP transport: a client of its own (its own pool) on the
//! reqwest the functions already build for PostgREST (hyper 0.14, rustls with
//! the webpki roots compiled in), in place of the SDK's default client. That
//! one is more code over the same hyper, loads the system's CA certificates
//! from disk when it is built (about 18M instructions, most of a sending
//! function's cold start) and wraps every call in timers of its own.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::http::{HttpRequest, HttpResponse};
use aws_sdk_apigatewaymanagement::config::{HttpClient, RuntimeComponents};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;

/// A connection that cannot be opened within this long fails the call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One connector for every call: the SDK asks for one per attempt, and a
/// reqwest client is already a shared connection pool. Public for the tests
/// that build an SDK client of their own: the SDK is built here without one.
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    connector: SharedHttpConnector,
}

impl ReqwestHttpClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The Management API never redirects; a redirect would be a fault.
            .redirect(reqwest::redirect::Policy::none())
            // Signed calls go straight to API Gateway, as with the SDK's own
            // client: no `HTTPS_PROXY` or `ALL_PROXY` from the environment.
            .no_proxy()
            .build()?;
        Ok(Self {
            connector: SharedHttpConnector::new(ReqwestConnector {
                http,
                origin: OnceLock::new(),
            }),
        })
    }
}

impl HttpClient for ReqwestHttpClient {
    /// The operation timeout (the SDK's own) bounds every call; the
    /// connector's settings add nothing to it.
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector.clone()
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    http: reqwest::Client,
    /// The endpoint every call goes to, parsed once.
    origin: OnceLock<Origin>,
}

/// `scheme://authority` of a URL, as text and parsed (`None` if it does not parse).
#[derive(Debug)]
struct Origin {
    text: String,
    url: Option<reqwest::Url>,
}

impl ReqwestConnector {
    /// `uri` as reqwest's URL. Parsing the whole URL (scheme, host, port) was
    /// about 4% of a post's instructions; every call of a client goes to one
    /// endpoint, so that part is parsed once and each call sets only its path
    /// and query. Any other origin is parsed whole.
    fn url(&self, uri: &str) -> Result<reqwest::Url, ConnectorError> {
        if let Some((origin, path_and_query)) = split_origin(uri) {
            let known = self.origin.get_or_init(|| Origin {
                text: origin.to_string(),
                url: reqwest::Url::parse(origin).ok().filter(reqwest::Url::has_host),
            });
            if let (true, Some(base)) = (known.text == origin, &known.url) {
                let mut url = base.clone();
                let (path, query) = match path_and_query.split_once('?') {
                    Some((path, query)) => (path, Some(query)),
                    None => (path_and_query, None),
                };
                url.set_path(path);
                url.set_query(query);
                return Ok(url);
            }
        }
        reqwest::Url::parse(uri).map_err(|e| ConnectorError::user(e.into()))
    }
}

/// `scheme://authority` and the rest (from the path's `/` on), where the URI
/// has both and no fragment.
fn split_origin(uri: &str) -> Option<(&str, &str)> {
    let authority_at = uri.find("://")? + 3;
    let path_at = authority_at + uri[authority_at..].find('/')?;
    let split = uri.split_at(path_at);
    (!split.1.contains('#') && !split.0[authority_at..].contains(['?', '@', '\\'])).then_some(split)
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = self
            .url(request.uri())
            .and_then(|url| to_reqwest(&self.http, url, &request))
            .map(|request| self.http.execute(request));
        HttpConnectorFuture::new(async move {
            let response = sent?.await.map_err(connector_error)?;
            from_reqwest(response).await
        })
    }
}

/// The SDK's request as reqwest's: method, URI and headers as they are, the
/// body (in memory: the SDK's request bodies here are JSON or a payload) copied once.
fn to_reqwest(
    http: &reqwest::Client,
    url: reqwest::Url,
    request: &HttpRequest,
) -> Result<reqwest::Request, ConnectorError> {
    let method =
        reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|e| ConnectorError::user(e.into()))?;
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streamed request body is not supported".into()))?;
    let mut builder = http.request(method, url);
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    builder
        .body(body.to_vec())
        .build()
        .map_err(|e| ConnectorError::user(e.into()))
}

/// reqwest's answer as the SDK's: status, headers (every value of those that
/// are text; the SDK reads the error type and request id from them) and the
/// whole body.
async fn from_reqwest(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let status = StatusCode::try_from(response.status().as_u16()).map_err(|e| ConnectorError::other(e.into(), None))?;
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let body = response.bytes().await.map_err(connector_error)?;
    let mut answer = HttpResponse::new(status, body.into());
    for (name, value) in headers {
        answer
            .headers_mut()
            .try_append(name, value)
            .map_err(|e| ConnectorError::other(e.into(), None))?;
    }
    Ok(answer)
}

/// Timeouts and broken connections as the SDK classifies them. The fan-out
/// retries throttling only: a post that fails so is reported failed, and its
/// recipient catches up from the message log when it resyncs.
fn connector_error(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves one HTTP/1.1 exchange with `answer`, and gives back what it was sent.
    pub(in crate::push::management_api) async fn one_exchange(
        answer: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .map_or(0, |l| l.trim().parse::<usize>().unwrap());
                    if received.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(received).unwrap()
        });
        (url, served)
    }

    fn request(uri: &str, body: &[u8]) -> HttpRequest {
        let mut request = HttpRequest::new(body.to_vec().into());
        request.set_method("POST").unwrap();
        request.set_uri(uri).unwrap();
        request.headers_mut().insert("content-type", "application/json");
        request.headers_mut().insert("x-amz-date", "20261201T000000Z");
        request
    }

    #[tokio::test]
    async fn a_call_sends_the_method_headers_and_body_and_returns_status_headers_and_body() {
        let (url, served) = one_exchange(
            "HTTP/1.1 410 Gone\r\nx-amzn-errortype: GoneException\r\nvia: a\r\nvia: b\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await;
        let client = ReqwestHttpClient::new().unwrap();
        let connector = client.connector.clone();

        let answer = connector
            .call(request(&format!("{url}/%40connections/abc%3D"), b"{\"hi\":1}"))
            .await
            .unwrap();

        let sent = served.await.unwrap();
        assert!(sent.starts_with("POST /%40connections/abc%3D HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("x-amz-date: 20261201T000000Z\r\n"), "{sent}");
        assert!(sent.ends_with("\r\n\r\n{\"hi\":1}"), "{sent}");
        assert_eq!(answer.status().as_u16(), 410);
        assert_eq!(answer.headers().get("x-amzn-errortype"), Some("GoneException"));
        // A repeated header keeps every value.
        assert_eq!(answer.headers().get_all("via").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(answer.body().bytes(), Some(&b"{}"[..]));
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error() {
        // A port that was free a moment ago: nothing listens on it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let connector = ReqwestHttpClient::new().unwrap().connector;

        let error = connector.call(request(&url, b"")).await.unwrap_err();

        assert!(error.is_io(), "{error:?}");
    }

    #[test]
    fn a_url_built_on_the_known_origin_is_the_url_parsed_whole() {
        let connector = ReqwestConnector {
            http: reqwest::Client::new(),
            origin: OnceLock::new(),
        };
        let uris = [
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/@connections/Xy1%3D",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/@connections/a b?x=1&y=%20",
            "https://abc.execute-api.eu-west-1.amazonaws.com/",
            "http://127.0.0.1:4001/@connections/Zm9v",
            "https://abc.execute-api.eu-west-1.amazonaws.com/p#fragment",
            "https://user@abc.execute-api.eu-west-1.amazonaws.com/p",
            "https://abc.execute-api.eu-west-1.amazonaws.com",
        ];
        for uri in uris.iter().chain(uris.iter()) {
            assert_eq!(connector.url(uri).unwrap(), reqwest::Url::parse(uri).unwrap(), "{uri}");
        }
        assert!(connector.url("no scheme/@connections/a").is_err());
    }
}
