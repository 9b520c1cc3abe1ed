//! TLS for connections to a server elsewhere (`chat-local db-push`), with
//! libpq's `sslmode` and `sslrootcert` read from the connection string.
//! tokio-postgres knows only disable / prefer / require and refuses the other
//! libpq parameters, so these two are taken out of the string here and
//! decide how the server's certificate is checked.
//!
//! Built on the rustls 0.21 that reqwest already compiles into this binary;
//! the published tokio-postgres adapter for that rustls pulls ring 0.16 (a
//! second copy of ring), and later ones a second rustls.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use rustls::client::{ServerCertVerified, ServerCertVerifier, WebPkiVerifier};
use rustls::{Certificate, ClientConfig, RootCertStore, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Error, Result};

/// What `chat-local db-push --help` says about TLS; the rules are below.
pub const HELP: &str = "\
TLS follows libpq's sslmode in the connection string (`?sslmode=...` or `sslmode=...`):
  disable      no TLS: the password and the SQL travel in clear
  prefer       TLS when the server offers it, else in clear; the certificate is not checked
  require      TLS or no connection; the certificate is NOT checked, as libpq does
  verify-ca    TLS, and the certificate must chain to a trusted root
  verify-full  as verify-ca, and the certificate must name the host
Under prefer and require, encrypted or not, a man in the middle is not detected: it can ask
for the password in clear and is sent it, as with libpq (channel binding does not stop it:
Supabase does not offer it, and a man in the middle need not either). Use verify-full.
Default: require for a remote host; disable for localhost, 127.0.0.1, ::1 and Unix sockets
(Unix sockets never use TLS, as with libpq).
Trusted roots: sslrootcert=<file> (PEM), or the system's (sslrootcert=system, or verify-ca /
verify-full without sslrootcert; libpq would read ~/.postgresql/root.crt instead). As in libpq,
a root file makes prefer and require check the chain too, and sslrootcert=system requires
verify-full. Supabase signs its database and pooler certificates with its own CA, which the
system does not trust: download it from the project's dashboard (Database Settings, SSL
Configuration) and add sslrootcert=<that file>&sslmode=verify-full.";

/// libpq's sslmode values; `allow` (plain first, TLS if refused) is not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => return Err("sslmode=allow is not supported: use prefer, require or a verify mode".into()),
            other => {
                return Err(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            }
        })
    }
}

impl SslMode {
    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq)]
pub enum RootCerts {
    File(PathBuf),
    /// The operating system's trust store.
    System,
}

/// How the server's certificate is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Verify {
    /// Encrypt only.
    Nothing,
    /// The chain up to a trusted root, not the name (verify-ca).
    Chain(RootCerts),
    /// The chain and the host name (verify-full).
    ChainAndName(RootCerts),
}

/// The TLS a connection gets.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub verify: Verify,
}

impl TlsPolicy {
    /// libpq's rules for `sslmode` and `sslrootcert`, with db-push's default
    /// (require, unless every host is this machine).
    pub fn decide(sslmode: Option<&str>, sslrootcert: Option<&str>, config: &Config) -> Result<Self, String> {
        let roots = sslrootcert.map(|value| match value {
            "system" => RootCerts::System,
            file => RootCerts::File(file.into()),
        });
        let given = sslmode.map(SslMode::from_str).transpose()?;
        let mode = match (given, &roots) {
            (Some(mode), _) => mode,
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (None, _) if only_this_machine(config) => SslMode::Disable,
            (None, _) => SslMode::Require,
        };
        if roots == Some(RootCerts::System) && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full (as libpq), not {}",
                mode.name()
            ));
        }
        // libpq sends nothing encrypted over a Unix socket, whatever sslmode says.
        let unix_only =
            !config.get_hosts().is_empty() && config.get_hosts().iter().all(|host| !matches!(host, Host::Tcp(_)));
        if unix_only || mode == SslMode::Disable {
            return Ok(Self {
                mode: SslMode::Disable,
                verify: Verify::Nothing,
            });
        }
        let verify = match (mode, roots) {
            (SslMode::VerifyFull, roots) => Verify::ChainAndName(roots.unwrap_or(RootCerts::System)),
            (SslMode::VerifyCa, roots) => Verify::Chain(roots.unwrap_or(RootCerts::System)),
            // libpq: with a root file, prefer and require check the chain too.
            (_, Some(roots)) => Verify::Chain(roots),
            (_, None) => Verify::Nothing,
        };
        Ok(Self { mode, verify })
    }

    /// One line for the log: what protects this connection.
    pub fn describe(&self) -> String {
        let checked = match &self.verify {
            _ if self.mode == SslMode::Disable => "no TLS",
            Verify::Nothing => "certificate not checked: a man in the middle could take the password; use verify-full",
            Verify::Chain(_) => "certificate chain checked, not its name",
            Verify::ChainAndName(_) => "certificate chain and name checked",
        };
        format!("sslmode={} ({checked})", self.mode.name())
    }
}

/// Whether every address the connection may use is this machine.
fn only_this_machine(config: &Config) -> bool {
    let local_host = |host: &Host| match host {
        Host::Tcp(name) => name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        Host::Unix(_) => true,
    };
    // hostaddr, when given, is what is dialled; host then only names the server.
    if !config.get_hostaddrs().is_empty() {
        return config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    }
    config.get_hosts().iter().all(local_host)
}

/// A connection string split into what tokio-postgres understands and
/// libpq's TLS parameters.
#[derive(Debug, PartialEq)]
pub struct SplitConnectionString {
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query or a key=value
/// string, leaving the rest as written. A string that does not parse is
/// returned whole for tokio-postgres to report.
pub fn split_tls_parameters(text: &str) -> SplitConnectionString {
    let mut split = SplitConnectionString {
        rest: text.to_owned(),
        sslmode: None,
        sslrootcert: None,
    };
    let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
    let removed = if is_url {
        url_parameters(text)
    } else {
        key_value_parameters(text)
    };
    let Some(parameters) = removed else { return split };
    let mut rest = String::new();
    let mut from = 0;
    for (range, key, value) in parameters {
        let slot = match key.as_str() {
            "sslmode" => &mut split.sslmode,
            "sslrootcert" => &mut split.sslrootcert,
            _ => continue,
        };
        // The last one wins, as in libpq and tokio-postgres.
        *slot = Some(value);
        rest.push_str(&text[from..range.start]);
        from = range.end;
    }
    rest.push_str(&text[from..]);
    if is_url {
        // A query left empty or with a leading/doubled separator.
        rest = tidy_query(&rest);
    }
    split.rest = rest;
    split
}

type Parameter = (std::ops::Range<usize>, String, String);

/// The query parameters of a URL, each with its byte range (including one
/// separator so removing it leaves a well-formed query).
fn url_parameters(text: &str) -> Option<Vec<Parameter>> {
    let query_start = text.find('?')? + 1;
    let mut parameters = Vec::new();
    let mut at = query_start;
    for part in text[query_start..].split('&') {
        let end = at + part.len();
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        parameters.push((at..end, percent_decode(key)?, percent_decode(value)?));
        at = end + 1;
    }
    Some(parameters)
}

fn tidy_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query.split('&').filter(|part| !part.is_empty()).collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// `key = value` pairs as tokio-postgres reads them: values bare or in
/// single quotes, with backslash escapes.
fn key_value_parameters(text: &str) -> Option<Vec<Parameter>> {
    let bytes = text.as_bytes();
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut parameters = Vec::new();
    let mut i = skip_space(0);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = text[start..i].to_owned();
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_space(i + 1);
        let mut value = Vec::new();
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        loop {
            match bytes.get(i) {
                None if quoted => return None,
                None => break,
                Some(b'\'') if quoted => {
                    i += 1;
                    break;
                }
                Some(b) if !quoted && b.is_ascii_whitespace() => break,
                Some(b'\\') => {
                    value.push(*bytes.get(i + 1)?);
                    i += 2;
                }
                Some(&b) => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        parameters.push((start..i, key, String::from_utf8(value).ok()?));
        i = skip_space(i);
    }
    Some(parameters)
}

/// Connects as libpq would with the string's sslmode and sslrootcert, and
/// with `require` when a remote string names no sslmode.
pub async fn connect(connection_string: &str) -> Result<Client> {
    let split = split_tls_parameters(connection_string);
    let mut config = Config::from_str(&split.rest)
        .map_err(|error| Error::Setup(format!("not a valid connection string: {error}")))?;
    let policy = TlsPolicy::decide(split.sslmode.as_deref(), split.sslrootcert.as_deref(), &config)
        .map_err(|error| Error::Setup(format!("connection string: {error}")))?;
    tracing::info!("connecting with {}", policy.describe());
    let connected = match policy.mode {
        SslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            spawn(config.connect(NoTls).await)
        }
        mode => {
            config.ssl_mode(match mode {
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            let connector = RustlsConnector::new(&policy.verify)?;
            spawn(config.connect(connector).await)
        }
    };
    connected.map_err(|error| connect_error(&policy, error))
}

fn spawn<S, T>(
    connected: Result<(Client, tokio_postgres::Connection<S, T>), tokio_postgres::Error>,
) -> Result<Client, tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = connected?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; either
        // way the next query reports it.
        let _ = connection.await;
    });
    Ok(client)
}

/// Says what went wrong and what to do: TLS failures are configuration
/// problems the message alone must be enough to fix.
fn connect_error(policy: &TlsPolicy, error: tokio_postgres::Error) -> Error {
    let context = format!("connecting to the database with {}", policy.describe());
    if error.as_db_error().is_some() {
        return Error::Database { context, source: error };
    }
    // tokio-postgres's own text names only the step ("error performing TLS
    // handshake"); the reason is in its sources.
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    let mut certificate = false;
    while let Some(reason) = cause {
        text.push_str(&format!(": {reason}"));
        let tls = reason.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
        certificate |= tls
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)));
        cause = reason.source();
    }
    if text.contains("server does not support TLS") {
        text.push_str(
            "\n  the server does not accept TLS, and the password and schema are not sent in clear; add \
             sslmode=disable to the connection string only for a server on a network you trust",
        );
    } else if certificate {
        text.push_str(
            "\n  for Supabase, download the CA certificate from the project's dashboard (Database Settings, \
             SSL Configuration) and add sslrootcert=<that file> to the connection string",
        );
    }
    Error::Setup(format!("{context}: {text}"))
}

/// tokio-postgres's `MakeTlsConnect` over rustls.
#[derive(Clone)]
struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl RustlsConnector {
    fn new(verify: &Verify) -> Result<Self> {
        let builder = ClientConfig::builder().with_safe_defaults();
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Verify::Nothing => Arc::new(EncryptOnly),
            Verify::Chain(roots) => Arc::new(ChainOnly {
                roots: root_store(roots)?,
            }),
            Verify::ChainAndName(roots) => Arc::new(WebPkiVerifier::new(root_store(roots)?, None)),
        };
        let config = builder.with_custom_certificate_verifier(verifier).with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

fn root_store(roots: &RootCerts) -> Result<RootCertStore> {
    let (certificates, source) = match roots {
        RootCerts::File(path) => (pem_certificates(path)?, path.display().to_string()),
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let certificates = found.certs.iter().map(|der| der.to_vec()).collect();
            (certificates, "the system's trust store".to_owned())
        }
    };
    let mut store = RootCertStore::empty();
    let (added, _unusable) = store.add_parsable_certificates(&certificates);
    if added == 0 {
        return Err(Error::Setup(format!(
            "sslrootcert: no usable CA certificate in {source}"
        )));
    }
    Ok(store)
}

fn pem_certificates(path: &Path) -> Result<Vec<Vec<u8>>> {
    let read = |error: io::Error| Error::Io {
        context: format!("reading sslrootcert {}", path.display()),
        source: error,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    rustls_pemfile::certs(&mut io::BufReader::new(file)).map_err(read)
}

/// require and prefer without roots: libpq encrypts and checks nothing. The
/// handshake signature is still checked (rustls's default methods), so the
/// server holds the key of the certificate it shows.
struct EncryptOnly;

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &Certificate,
        _intermediates: &[Certificate],
        _server_name: &ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        _now: SystemTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
}

/// verify-ca: the chain, whatever name the certificate carries.
struct ChainOnly {
    roots: RootCertStore,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &Certificate,
        intermediates: &[Certificate],
        _server_name: &ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        now: SystemTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(&certificate, &self.roots, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(host).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a host name for TLS"),
            )
        })?;
        Ok(RustlsConnect {
            name,
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.config)),
        })
    }
}

struct RustlsConnect {
    name: ServerName,
    connector: tokio_rustls::TlsConnector,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move { self.connector.connect(self.name, stream).await.map(RustlsStream) })
    }
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Offered for SCRAM-SHA-256-PLUS, which binds the login to this
    /// certificate when the server supports it. It does not protect a
    /// connection whose certificate is not checked: tokio-postgres, like
    /// libpq, only prefers channel binding, so a man in the middle offers
    /// plain SCRAM or a cleartext password and gets the password; requiring
    /// it would refuse Supabase, which does not offer it. Only a checked
    /// certificate (verify-full) keeps the password safe.
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|chain| chain.first()) {
            Some(certificate) => match tls_server_end_point(&certificate.0) {
                Some(hash) => ChannelBinding::tls_server_end_point(hash),
                None => ChannelBinding::none(),
            },
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's tls-server-end-point: the certificate hashed with its
/// signature's hash, SHA-256 for MD5 and SHA-1 (what the server computes;
/// a different hash would fail the login). None for algorithms without one.
fn tls_server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest as _;
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA: [u8; 6] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]; // 1.2.840.10045.4
    let oid = signature_algorithm(der)?;
    let bits = if let Some(arc) = oid.strip_prefix(&RSA) {
        match arc {
            [4 | 5 | 11] => 256, // md5, sha1, sha256 WithRSAEncryption
            [12] => 384,
            [13] => 512,
            _ => return None,
        }
    } else if let Some(arc) = oid.strip_prefix(&ECDSA) {
        match arc {
            [1] | [3, 2] => 256, // ecdsa-with-SHA1, -SHA256
            [3, 3] => 384,
            [3, 4] => 512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match bits {
        256 => sha2::Sha256::digest(der).to_vec(),
        384 => sha2::Sha384::digest(der).to_vec(),
        _ => sha2::Sha512::digest(der).to_vec(),
    })
}

/// The signatureAlgorithm OID of a DER certificate.
fn signature_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der_element(der, 0x30)?;
    let (_tbs, rest) = der_element(certificate, 0x30)?;
    let (algorithm, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    Some(oid)
}

/// One DER element of the given tag: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut rest) = rest.split_first()?;
    let length = if length < 0x80 {
        usize::from(length)
    } else {
        let count = usize::from(length & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

impl<S> AsyncRead for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_str(text).unwrap()
    }

    fn decide(sslmode: Option<&str>, sslrootcert: Option<&str>, text: &str) -> Result<TlsPolicy, String> {
        TlsPolicy::decide(sslmode, sslrootcert, &config(text))
    }

    fn policy(mode: SslMode, verify: Verify) -> TlsPolicy {
        TlsPolicy { mode, verify }
    }

    #[test]
    fn every_libpq_sslmode_but_allow_is_understood() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(text.parse::<SslMode>(), Ok(mode));
            assert_eq!(mode.name(), text);
        }
        assert!("allow".parse::<SslMode>().unwrap_err().contains("not supported"));
        assert!("Require".parse::<SslMode>().unwrap_err().contains("verify-full"));
        assert!(decide(Some("on"), None, "host=db.example.com").is_err());
    }

    #[test]
    fn a_remote_host_gets_require_and_this_machine_no_tls_by_default() {
        let require = policy(SslMode::Require, Verify::Nothing);
        let disable = policy(SslMode::Disable, Verify::Nothing);
        for remote in [
            "host=db.abcdefgh.supabase.co",
            "host=aws-0-eu-west-1.pooler.supabase.com port=6543",
            "host=10.0.0.5",
            "host=localhost,db.example.com",
            // hostaddr is what is dialled; host only names the server.
            "host=localhost hostaddr=192.0.2.7",
        ] {
            assert_eq!(decide(None, None, remote), Ok(require.clone()), "{remote}");
        }
        for local in [
            "host=localhost",
            "host=127.0.0.1",
            "host=::1",
            "host=/var/run/postgresql",
            "host=db.example.com hostaddr=127.0.0.1",
        ] {
            assert_eq!(decide(None, None, local), Ok(disable.clone()), "{local}");
        }
    }

    #[test]
    fn a_given_sslmode_wins_over_the_default() {
        assert_eq!(
            decide(Some("disable"), None, "host=db.example.com"),
            Ok(policy(SslMode::Disable, Verify::Nothing))
        );
        assert_eq!(
            decide(Some("require"), None, "host=127.0.0.1"),
            Ok(policy(SslMode::Require, Verify::Nothing))
        );
        assert_eq!(
            decide(Some("prefer"), None, "host=db.example.com"),
            Ok(policy(SslMode::Prefer, Verify::Nothing))
        );
        // As libpq: never TLS over a Unix socket.
        assert_eq!(
            decide(Some("verify-full"), None, "host=/tmp"),
            Ok(policy(SslMode::Disable, Verify::Nothing))
        );
    }

    #[test]
    fn verification_follows_libpq_with_the_system_roots_as_the_default_store() {
        let file = || RootCerts::File("ca.pem".into());
        let remote = "host=db.example.com";
        assert_eq!(
            decide(Some("verify-full"), None, remote),
            Ok(policy(SslMode::VerifyFull, Verify::ChainAndName(RootCerts::System)))
        );
        assert_eq!(
            decide(Some("verify-ca"), Some("ca.pem"), remote),
            Ok(policy(SslMode::VerifyCa, Verify::Chain(file())))
        );
        assert_eq!(
            decide(Some("verify-full"), Some("ca.pem"), remote),
            Ok(policy(SslMode::VerifyFull, Verify::ChainAndName(file())))
        );
        // A root file makes require (given or by default) check the chain, as in libpq.
        for mode in [Some("require"), None] {
            assert_eq!(
                decide(mode, Some("ca.pem"), remote),
                Ok(policy(SslMode::Require, Verify::Chain(file())))
            );
        }
        // sslrootcert=system: verify-full by default and nothing weaker.
        assert_eq!(
            decide(None, Some("system"), remote),
            Ok(policy(SslMode::VerifyFull, Verify::ChainAndName(RootCerts::System)))
        );
        assert!(decide(Some("require"), Some("system"), remote)
            .unwrap_err()
            .contains("verify-full"));
    }

    #[test]
    fn descriptions_say_what_is_checked() {
        // Unchecked, the password is exposed to a man in the middle, as libpq's is: the log says so.
        for mode in [SslMode::Prefer, SslMode::Require] {
            assert_eq!(
                policy(mode, Verify::Nothing).describe(),
                format!(
                    "sslmode={} (certificate not checked: a man in the middle could take the password; use verify-full)",
                    mode.name()
                )
            );
        }
        assert!(HELP.contains("password in clear"));
        assert!(HELP.contains("Use verify-full."));
        assert_eq!(
            policy(SslMode::VerifyFull, Verify::ChainAndName(RootCerts::System)).describe(),
            "sslmode=verify-full (certificate chain and name checked)"
        );
        assert_eq!(
            policy(SslMode::Disable, Verify::Nothing).describe(),
            "sslmode=disable (no TLS)"
        );
    }

    fn split(text: &str) -> (String, Option<String>, Option<String>) {
        let split = split_tls_parameters(text);
        (split.rest, split.sslmode, split.sslrootcert)
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        assert_eq!(
            split("postgresql://postgres.ref:pw@aws-0-eu.pooler.supabase.com:6543/postgres?sslmode=verify-full&application_name=x&sslrootcert=%2Fhome%2Fme%2Fprod%20ca.crt"),
            (
                "postgresql://postgres.ref:pw@aws-0-eu.pooler.supabase.com:6543/postgres?application_name=x".into(),
                Some("verify-full".into()),
                Some("/home/me/prod ca.crt".into())
            )
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=require"),
            ("postgres://u@h/db".into(), Some("require".into()), None)
        );
        // The last value wins; other parameters stay as written.
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable&connect_timeout=5&sslmode=verify-ca"),
            (
                "postgres://u@h/db?connect_timeout=5".into(),
                Some("verify-ca".into()),
                None
            )
        );
        assert_eq!(split("postgres://u@h/db"), ("postgres://u@h/db".into(), None, None));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_key_value_strings() {
        assert_eq!(
            split("host=db.example.com sslmode = verify-full user=postgres sslrootcert='/my certs/it\\'s.pem'"),
            (
                "host=db.example.com  user=postgres ".into(),
                Some("verify-full".into()),
                Some("/my certs/it's.pem".into())
            )
        );
        assert_eq!(
            split("host=h password=a\\ b"),
            ("host=h password=a\\ b".into(), None, None)
        );
        // Not a connection string: left whole for tokio-postgres to refuse.
        assert_eq!(split("sslmode='open"), ("sslmode='open".into(), None, None));
    }

    #[tokio::test]
    async fn bad_tls_parameters_are_refused_before_connecting() {
        for (url, expected) in [
            (
                "postgres://u@db.example.com/x?sslmode=allow",
                "sslmode=allow is not supported",
            ),
            (
                "postgres://u@db.example.com/x?sslmode=require&sslrootcert=system",
                "needs sslmode=verify-full",
            ),
            (
                "postgres://u@db.example.com/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                "reading sslrootcert /nonexistent/ca.pem",
            ),
        ] {
            let error = connect(url).await.err().expect(url).to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    /// Test certificates (valid until 2126), made with the openssl CLI: a CA
    /// (`ca.pem`), a server certificate it signed with ecdsa-with-SHA384 for
    /// DNS name `localhost` only (`server.pem`, key `server.key`), and an
    /// unrelated CA (`other-ca.pem`).
    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/postgres/testdata")
            .join(name)
    }

    fn pem_der(name: &str) -> Vec<u8> {
        pem_certificates(&testdata(name)).unwrap().remove(0)
    }

    #[test]
    fn channel_binding_hashes_the_certificate_with_its_signature_hash() {
        use sha2::Digest as _;
        let server = pem_der("server.pem"); // ecdsa-with-SHA384
        assert_eq!(
            tls_server_end_point(&server),
            Some(sha2::Sha384::digest(&server).to_vec())
        );
        let ca = pem_der("ca.pem"); // ecdsa-with-SHA256
        assert_eq!(tls_server_end_point(&ca), Some(sha2::Sha256::digest(&ca).to_vec()));
        assert_eq!(tls_server_end_point(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(tls_server_end_point(&server[..40]), None);
    }

    /// A server that speaks just enough of the protocol: it accepts TLS with
    /// the test certificate, then refuses the login with a message naming
    /// what happened, so reaching it proves the handshake passed.
    async fn tls_server() -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let key = rustls_pemfile::pkcs8_private_keys(&mut io::BufReader::new(
            std::fs::File::open(testdata("server.key")).unwrap(),
        ))
        .unwrap()
        .remove(0);
        let config = rustls::ServerConfig::builder()
            .with_safe_defaults()
            .with_no_client_auth()
            .with_single_cert(vec![Certificate(pem_der("server.pem"))], rustls::PrivateKey(key))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut ssl_request = [0u8; 8];
            socket.read_exact(&mut ssl_request).await.unwrap();
            socket.write_all(b"S").await.unwrap();
            let Ok(mut tls) = acceptor.accept(socket).await else {
                return;
            };
            let mut length = [0u8; 4];
            tls.read_exact(&mut length).await.unwrap();
            let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
            tls.read_exact(&mut startup).await.unwrap();
            let fields = b"SFATAL\0C28000\0Mlogin reached over TLS\0\0";
            let mut response = vec![b'E'];
            response.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
            response.extend_from_slice(fields);
            tls.write_all(&response).await.unwrap();
            let _ = tls.shutdown().await;
        });
        port
    }

    async fn connect_to_test_server(host: &str, parameters: &str) -> String {
        let port = tls_server().await;
        let url = format!("postgres://u@{host}:{port}/db?connect_timeout=5&{parameters}")
            .replace("CA", testdata("ca.pem").to_str().unwrap())
            .replace("OTHER", testdata("other-ca.pem").to_str().unwrap());
        connect(&url)
            .await
            .err()
            .expect("the test server refuses every login")
            .to_string()
    }

    #[tokio::test]
    async fn each_sslmode_accepts_the_certificates_libpq_would() {
        for (host, parameters) in [
            ("127.0.0.1", "sslmode=require"),
            ("127.0.0.1", "sslmode=prefer"),
            ("localhost", "sslmode=verify-full&sslrootcert=CA"),
            // verify-ca checks the chain only: the name does not matter.
            ("127.0.0.1", "sslmode=verify-ca&sslrootcert=CA"),
            ("127.0.0.1", "sslmode=require&sslrootcert=CA"),
        ] {
            let error = connect_to_test_server(host, parameters).await;
            assert!(error.contains("login reached over TLS"), "{host} {parameters}: {error}");
        }
    }

    #[tokio::test]
    async fn each_sslmode_refuses_the_certificates_libpq_would() {
        let unknown = "invalid peer certificate: UnknownIssuer";
        for (host, parameters, reason) in [
            // The certificate names localhost, not 127.0.0.1.
            ("127.0.0.1", "sslmode=verify-full&sslrootcert=CA", "NotValidForName"),
            ("localhost", "sslmode=verify-full&sslrootcert=OTHER", unknown),
            ("localhost", "sslmode=verify-ca&sslrootcert=OTHER", unknown),
            ("localhost", "sslmode=require&sslrootcert=OTHER", unknown),
            // The system does not trust the test CA.
            ("localhost", "sslmode=verify-full", unknown),
        ] {
            let error = connect_to_test_server(host, parameters).await;
            // A machine without a trust store refuses before the handshake.
            if parameters == "sslmode=verify-full" && error.contains("no usable CA certificate in the system's") {
                continue;
            }
            assert!(error.contains(reason), "{host} {parameters}: {error}");
            assert!(
                error.contains("add sslrootcert=<that file>"),
                "{host} {parameters}: {error}"
            );
        }
    }
}
