//! The SDK client's HTTP transport: HTTP/1.1 with keep-alive, on the tokio
//! and rustls the functions already build (rustls with the webpki roots
//! compiled in, as reqwest has them), in place of the SDK's default client.
//!
//! A fan-out makes hundreds of small signed calls to one endpoint, each
//! answered with a small body. A general client (reqwest over hyper) runs
//! each connection as a task of its own and hands every request and answer
//! across channels, with its own URL, header and body types to convert to and
//! from; that was about a fifth of a post's instructions. Here the calling
//! task writes the request in one write and reads the answer itself, on a
//! connection taken from a pool of idle ones. The SDK's default client also
//! loaded the system's CA certificates from disk when it was built (about 18M
//! instructions, most of a sending function's cold start).
//!
//! HTTP/1.1 only: in AWS a fan-out holds one connection per post in flight
//! (at most the fan-out's concurrency), each set up once per instance.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement::config::http::{HttpRequest, HttpResponse};
use aws_sdk_apigatewaymanagement::config::{HttpClient, RuntimeComponents};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

mod answer;

use self::answer::read_answer;
use super::sigv4::{host, split_uri};

/// A connection that cannot be opened within this long fails the call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An idle connection older than this is closed rather than reused: servers
/// close idle connections after their own timeout (often a minute), and a
/// request written just as the server closes is lost with the connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection is asked whether it is still open only after this long.
const TRUSTED_IDLE: Duration = Duration::from_millis(500);
/// Idle connections kept; a fan-out has at most 32 posts in flight.
const MAX_IDLE: usize = 64;

/// One connector for every call: the SDK asks for one per attempt, and the
/// pool of connections is the connector's. Public for the tests that build an
/// SDK client of their own: the SDK is built here without one.
#[derive(Debug, Clone)]
pub struct Http1Client {
    connector: SharedHttpConnector,
}

impl Http1Client {
    /// Trusts the web's public roots (Mozilla's, compiled in).
    pub fn new() -> Self {
        Self::trusting(public_roots)
    }

    fn trusting(roots: fn() -> rustls::RootCertStore) -> Self {
        Self {
            connector: SharedHttpConnector::new(Http1Connector {
                pool: Arc::new(Pool {
                    roots,
                    tls: OnceLock::new(),
                    origin: OnceLock::new(),
                    idle: Mutex::new(VecDeque::new()),
                }),
            }),
        }
    }
}

impl Default for Http1Client {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for Http1Client {
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

fn public_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().map(|anchor| {
        rustls::OwnedTrustAnchor::from_subject_spki_name_constraints(
            anchor.subject,
            anchor.spki,
            anchor.name_constraints,
        )
    }));
    roots
}

#[derive(Debug)]
struct Http1Connector {
    pool: Arc<Pool>,
}

struct Pool {
    roots: fn() -> rustls::RootCertStore,
    /// Built at the first `https` connection: a function that only ever
    /// talks to a local `http` endpoint never parses the roots.
    tls: OnceLock<tokio_rustls::TlsConnector>,
    /// The endpoint every call goes to, parsed once.
    origin: OnceLock<Arc<Origin>>,
    /// Most recently used last.
    idle: Mutex<VecDeque<Connection>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("origin", &self.origin.get())
            .finish_non_exhaustive()
    }
}

/// Where the requests of one `scheme://authority` go.
#[derive(Debug)]
struct Origin {
    /// `scheme://authority`, as the URIs have it.
    text: String,
    /// The `host` header, as the signer signed it.
    host_header: String,
    /// `host:port`, for the socket.
    address: String,
    /// `https` only: the name the server's certificate must carry.
    tls_name: Option<rustls::ServerName>,
}

impl Origin {
    fn parse(scheme: &str, authority: &str) -> Result<Self, ConnectorError> {
        let text = format!("{scheme}://{authority}");
        let url = url::Url::parse(&text).map_err(|e| ConnectorError::user(e.into()))?;
        let (Some(name), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(ConnectorError::user(format!("{text} names no host").into()));
        };
        let tls_name = match url.scheme() {
            "http" => None,
            "https" => Some(match url.host() {
                Some(url::Host::Ipv4(ip)) => rustls::ServerName::IpAddress(ip.into()),
                Some(url::Host::Ipv6(ip)) => rustls::ServerName::IpAddress(ip.into()),
                _ => rustls::ServerName::try_from(name).map_err(|e| ConnectorError::user(e.into()))?,
            }),
            other => return Err(ConnectorError::user(format!("{other}: not http or https").into())),
        };
        Ok(Self {
            host_header: host(scheme, authority).to_string(),
            address: format!("{name}:{port}"),
            tls_name,
            text,
        })
    }
}

impl Pool {
    /// The origin of `scheme://authority`: the one every call so far went to
    /// (the first one seen is remembered), or another, parsed for this call.
    fn origin(&self, scheme: &str, authority: &str) -> Result<Arc<Origin>, ConnectorError> {
        let is = |origin: &Origin| {
            origin
                .text
                .strip_prefix(scheme)
                .and_then(|rest| rest.strip_prefix("://"))
                == Some(authority)
        };
        if let Some(known) = self.origin.get().filter(|known| is(known)) {
            return Ok(Arc::clone(known));
        }
        let origin = Arc::new(Origin::parse(scheme, authority)?);
        let _ = self.origin.set(Arc::clone(&origin));
        Ok(origin)
    }

    /// The most recently used idle connection to `origin` that is still
    /// open. Connections idle too long are closed; of the others, only the
    /// one taken is asked whether it is open (a read attempt: a system
    /// call), and only if it has been idle long enough for a server's idle
    /// timeout to matter: in a fan-out a connection is taken again within
    /// microseconds of its last answer, and a server that means to close it
    /// then says so in that answer (`connection: close`).
    fn checkout(&self, origin: &Origin) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Oldest first: `checkin` appends.
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.idle_since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        while let Some(at) = idle.iter().rposition(|c| c.origin.text == origin.text) {
            if let Some(mut connection) = idle.remove(at) {
                if now.duration_since(connection.idle_since) < TRUSTED_IDLE || connection.is_open() {
                    return Some(connection);
                }
            }
        }
        None
    }

    fn checkin(&self, mut connection: Connection) {
        connection.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() == MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(connection);
    }

    async fn connect(&self, origin: &Arc<Origin>) -> Result<Connection, ConnectorError> {
        let connecting = async {
            let tcp = TcpStream::connect(origin.address.as_str()).await?;
            // Each request goes out in one write, and its answer is awaited.
            tcp.set_nodelay(true)?;
            Ok::<_, io::Error>(match &origin.tls_name {
                None => Stream::Tcp(tcp),
                Some(name) => {
                    let tls = self.tls.get_or_init(|| {
                        let mut config = rustls::ClientConfig::builder()
                            .with_safe_defaults()
                            .with_root_certificates((self.roots)())
                            .with_no_client_auth();
                        config.alpn_protocols = vec![b"http/1.1".to_vec()];
                        tokio_rustls::TlsConnector::from(Arc::new(config))
                    });
                    Stream::Tls(Box::new(tls.connect(name.clone(), tcp).await?))
                }
            })
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?
            .map_err(|e| ConnectorError::io(e.into()))?;
        Ok(Connection {
            origin: Arc::clone(origin),
            stream,
            idle_since: Instant::now(),
        })
    }
}

struct Connection {
    origin: Arc<Origin>,
    stream: Stream,
    idle_since: Instant,
}

impl Connection {
    /// Whether the server has neither closed the connection nor sent
    /// anything unasked: a read that would wait.
    fn is_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf).is_pending()
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let pool = Arc::clone(&self.pool);
        let prepared = prepare(&pool, &request);
        HttpConnectorFuture::new(async move {
            let (origin, outgoing, expects_body) = prepared?;
            exchange(&pool, &origin, &outgoing, expects_body).await
        })
    }
}

/// The request's origin, its bytes on the wire (head and body, for one
/// write), and whether its answer can have a body (not for `HEAD`).
fn prepare(pool: &Pool, request: &HttpRequest) -> Result<(Arc<Origin>, Vec<u8>, bool), ConnectorError> {
    let user = |message: String| ConnectorError::user(message.into());
    let (scheme, authority, path, query) = split_uri(request.uri()).map_err(|e| user(e.to_string()))?;
    let origin = pool.origin(scheme, authority)?;
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| user("a streamed request body is not supported".into()))?;
    let method = request.method();
    let mut wire = Vec::with_capacity(512 + body.len());
    wire.extend_from_slice(method.as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(if path.is_empty() { "/" } else { path }.as_bytes());
    if !query.is_empty() {
        wire.push(b'?');
        wire.extend_from_slice(query.as_bytes());
    }
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    let (mut has_host, mut has_length) = (false, false);
    for (name, value) in request.headers() {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(user("a request with a transfer-encoding is not supported".into()));
        }
        has_host |= name.eq_ignore_ascii_case("host");
        has_length |= name.eq_ignore_ascii_case("content-length");
        // The SDK's headers are `http` header names and values: no CR or LF.
        for part in [name, ": ", value, "\r\n"] {
            wire.extend_from_slice(part.as_bytes());
        }
    }
    if !has_host {
        for part in ["host: ", &origin.host_header, "\r\n"] {
            wire.extend_from_slice(part.as_bytes());
        }
    }
    if !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        wire.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(body);
    Ok((origin, wire, method != "HEAD"))
}

/// One request and its answer, on an idle connection or a new one; the
/// connection goes back to the pool if the answer leaves it reusable.
async fn exchange(
    pool: &Pool,
    origin: &Arc<Origin>,
    outgoing: &[u8],
    expects_body: bool,
) -> Result<HttpResponse, ConnectorError> {
    let mut connection = match pool.checkout(origin) {
        Some(idle) => idle,
        None => pool.connect(origin).await?,
    };
    let io = |e: io::Error| ConnectorError::io(e.into());
    connection.stream.write_all(outgoing).await.map_err(io)?;
    connection.stream.flush().await.map_err(io)?;
    let (answer, reusable) = read_answer(&mut connection.stream, expects_body).await?;
    if reusable {
        pool.checkin(connection);
    }
    Ok(answer)
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A local server that reads requests and answers each with the next of
    /// its answers, on as many connections as it is asked to open. It closes
    /// a connection after an answer marked so, or when it runs out.
    pub(in crate::push::management_api) struct TestServer {
        pub url: String,
        pub requests: mpsc::UnboundedReceiver<String>,
        connections: Arc<AtomicUsize>,
    }

    impl TestServer {
        pub async fn start(answers: &[(&'static str, Close)], tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let scheme = if tls.is_some() { "https" } else { "http" };
            let url = format!("{scheme}://{}", listener.local_addr().unwrap());
            let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
            let (sent, requests) = mpsc::unbounded_channel();
            let connections = Arc::new(AtomicUsize::new(0));
            let opened = Arc::clone(&connections);
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    opened.fetch_add(1, Ordering::SeqCst);
                    let (answers, sent, tls) = (Arc::clone(&answers), sent.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => answer_requests(socket, &answers, &sent).await,
                            Some(tls) => answer_requests(tls.accept(socket).await.unwrap(), &answers, &sent).await,
                        }
                    });
                }
            });
            Self {
                url,
                requests,
                connections,
            }
        }

        /// Connections the server has accepted.
        pub fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(in crate::push::management_api) enum Close {
        No,
        AfterAnswer,
    }

    async fn answer_requests<S: AsyncRead + AsyncWrite + Unpin>(
        mut socket: S,
        answers: &Mutex<VecDeque<(&'static str, Close)>>,
        sent: &mpsc::UnboundedSender<String>,
    ) {
        while let Some(request) = read_request(&mut socket).await {
            let _ = sent.send(request);
            let Some((answer, close)) = answers.lock().unwrap().pop_front() else {
                return;
            };
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            if close == Close::AfterAnswer {
                let _ = socket.shutdown().await;
                return;
            }
        }
    }

    /// One request: its head, then the body its content-length announces;
    /// `None` if the connection ends first.
    async fn read_request<S: AsyncRead + Unpin>(socket: &mut S) -> Option<String> {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .map_or(0, |l| l.trim().parse::<usize>().unwrap());
                if received.len() >= end + 4 + length {
                    return Some(text);
                }
            }
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    }

    /// Serves one HTTP/1.1 exchange with `answer`, and gives back what it was sent.
    pub(in crate::push::management_api) async fn one_exchange(
        answer: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let mut server = TestServer::start(&[(answer, Close::No)], None).await;
        let url = server.url.clone();
        (url, tokio::spawn(async move { server.requests.recv().await.unwrap() }))
    }

    fn request(uri: &str, body: &[u8]) -> HttpRequest {
        let mut request = HttpRequest::new(body.to_vec().into());
        request.set_method("POST").unwrap();
        request.set_uri(uri).unwrap();
        request.headers_mut().insert("content-type", "application/json");
        request.headers_mut().insert("x-amz-date", "20261201T000000Z");
        request
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

    #[tokio::test]
    async fn a_call_sends_the_method_headers_and_body_and_returns_status_headers_and_body() {
        let (url, served) = one_exchange(
            "HTTP/1.1 410 Gone\r\nx-amzn-errortype: GoneException\r\nvia: a\r\nvia: b\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await;
        let connector = Http1Client::new().connector;

        let answer = connector
            .call(request(&format!("{url}/%40connections/abc%3D"), b"{\"hi\":1}"))
            .await
            .unwrap();

        let sent = served.await.unwrap();
        assert!(sent.starts_with("POST /%40connections/abc%3D HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("x-amz-date: 20261201T000000Z\r\n"), "{sent}");
        assert!(
            sent.contains(&format!("\r\nhost: {}\r\n", &url["http://".len()..])),
            "{sent}"
        );
        assert!(sent.contains("\r\ncontent-length: 8\r\n"), "{sent}");
        assert!(sent.ends_with("\r\n\r\n{\"hi\":1}"), "{sent}");
        assert_eq!(answer.status().as_u16(), 410);
        assert_eq!(answer.headers().get("x-amzn-errortype"), Some("GoneException"));
        // A repeated header keeps every value.
        assert_eq!(answer.headers().get_all("via").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(answer.body().bytes(), Some(&b"{}"[..]));
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_connection() {
        let server = TestServer::start(&[(OK, Close::No); 3], None).await;
        let connector = Http1Client::new().connector;

        for _ in 0..3 {
            let answer = connector.call(request(&server.url, b"x")).await.unwrap();
            assert_eq!(answer.status().as_u16(), 200);
        }

        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn calls_at_once_each_have_a_connection_then_reuse_them() {
        let server = TestServer::start(&[(OK, Close::No); 6], None).await;
        let connector = Http1Client::new().connector;

        let at_once = || {
            futures_util::future::join3(
                connector.call(request(&server.url, b"1")),
                connector.call(request(&server.url, b"2")),
                connector.call(request(&server.url, b"3")),
            )
        };
        let (a, b, c) = at_once().await;
        let (d, e, f) = at_once().await;

        for answer in [a, b, c, d, e, f] {
            assert_eq!(answer.unwrap().status().as_u16(), 200);
        }
        assert_eq!(server.connections(), 3);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let mut server = TestServer::start(&[(OK, Close::AfterAnswer), (OK, Close::No)], None).await;
        let connector = Http1Client::new().connector;
        connector.call(request(&server.url, b"first")).await.unwrap();
        server.requests.recv().await.unwrap();
        // The server's close reaches the client's socket, and the connection
        // has been idle long enough to be asked.
        tokio::time::sleep(TRUSTED_IDLE + Duration::from_millis(100)).await;

        let answer = connector.call(request(&server.url, b"second")).await.unwrap();

        assert_eq!(answer.status().as_u16(), 200);
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn an_answer_that_closes_the_connection_is_not_followed_on_it() {
        let close = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let server = TestServer::start(&[(close, Close::No), (OK, Close::No)], None).await;
        let connector = Http1Client::new().connector;

        connector.call(request(&server.url, b"first")).await.unwrap();
        connector.call(request(&server.url, b"second")).await.unwrap();

        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_whole_and_the_connection_reused() {
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n";
        let server = TestServer::start(&[(chunked, Close::No), (OK, Close::No)], None).await;
        let connector = Http1Client::new().connector;

        let answer = connector.call(request(&server.url, b"")).await.unwrap();
        connector.call(request(&server.url, b"")).await.unwrap();

        assert_eq!(answer.body().bytes(), Some(&b"hello, world"[..]));
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn an_answer_without_a_length_ends_with_its_connection() {
        let until_close = "HTTP/1.1 500 Internal Server Error\r\n\r\n{\"message\":\"boom\"}";
        let server = TestServer::start(&[(until_close, Close::AfterAnswer)], None).await;
        let connector = Http1Client::new().connector;

        let answer = connector.call(request(&server.url, b"")).await.unwrap();

        assert_eq!(answer.status().as_u16(), 500);
        assert_eq!(answer.body().bytes(), Some(&br#"{"message":"boom"}"#[..]));
    }

    #[tokio::test]
    async fn an_oversized_or_malformed_answer_fails_the_call() {
        let answers = [
            ("HTTP/1.1 200 OK\r\ncontent-length: 2000000\r\n\r\n", Close::No),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
                Close::No,
            ),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", Close::No),
            ("NOT HTTP\r\n\r\n", Close::No),
            ("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", Close::AfterAnswer),
        ];
        let server = TestServer::start(&answers, None).await;
        let connector = Http1Client::new().connector;

        for (answer, _) in answers {
            let error = connector.call(request(&server.url, b"")).await.unwrap_err();
            assert!(error.is_other() || error.is_io(), "{answer}: {error:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error() {
        // A port that was free a moment ago: nothing listens on it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let connector = Http1Client::new().connector;

        let error = connector.call(request(&url, b"")).await.unwrap_err();

        assert!(error.is_io(), "{error:?}");
    }

    const CERT: &[u8] = include_bytes!("testdata/localhost.cert.der");
    const KEY: &[u8] = include_bytes!("testdata/localhost.key.der");

    fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
        let config = rustls::ServerConfig::builder()
            .with_safe_defaults()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::Certificate(CERT.to_vec())],
                rustls::PrivateKey(KEY.to_vec()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    fn test_roots() -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(&rustls::Certificate(CERT.to_vec())).unwrap();
        roots
    }

    #[tokio::test]
    async fn https_calls_go_over_tls_to_a_trusted_server_on_one_connection() {
        let mut server = TestServer::start(&[(OK, Close::No); 2], Some(tls_acceptor())).await;
        let connector = Http1Client::trusting(test_roots).connector;
        // The certificate names localhost and 127.0.0.1; both are checked.
        let by_name = server.url.replace("127.0.0.1", "localhost");

        connector.call(request(&by_name, b"{}")).await.unwrap();
        let answer = connector.call(request(&by_name, b"{}")).await.unwrap();

        assert_eq!(answer.status().as_u16(), 200);
        let sent = server.requests.recv().await.unwrap();
        assert!(sent.starts_with("POST / HTTP/1.1\r\n"), "{sent}");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn a_server_the_public_roots_do_not_vouch_for_is_refused() {
        let server = TestServer::start(&[(OK, Close::No)], Some(tls_acceptor())).await;
        let connector = Http1Client::new().connector;

        let error = connector.call(request(&server.url, b"{}")).await.unwrap_err();

        assert!(error.is_io(), "{error:?}");
        assert!(format!("{error:?}").contains("UnknownIssuer"), "{error:?}");
    }

    #[tokio::test]
    async fn a_url_that_is_not_http_is_refused() {
        let connector = Http1Client::new().connector;

        for uri in ["ftp://example.com/x", "/@connections/no-origin"] {
            let error = connector.call(request(uri, b"")).await.unwrap_err();
            assert!(error.is_user(), "{uri}: {error:?}");
        }
    }
}
