//! TCP and TLS to the server under test: loopback checks, the TLS client configuration (accepts
//! any certificate: test servers use self-signed ones), direct TLS and STARTTLS, and a small
//! buffered reader that waits for byte patterns.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::failure::Failure;
use crate::xml;

/// Resolve `server` (an `IP:port` or `host:port`) and refuse anything that is not loopback.
pub(crate) async fn loopback_addr(server: &str) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("--server {server}: not an address with a port"))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        bail!("--server {server}: resolves to no address");
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "--server {server}: {} is not a loopback address; this tool only drives servers on \
             127.0.0.0/8 or ::1",
            bad.ip()
        );
    }
    Ok(first)
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How TLS starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TlsMode {
    /// RFC 6120 STARTTLS on a plain port.
    Starttls,
    /// XEP-0368 direct TLS.
    Direct,
    /// XMPP over WebSocket (RFC 7395): `--server` is the HTTPS listener.
    Websocket,
}

impl TlsMode {
    /// The name in reports (as on the command line).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Direct => "direct",
            Self::Websocket => "websocket",
        }
    }
}

/// Everything needed to open a connection to the server under test.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) mode: TlsMode,
    /// The served domain: stream `to` and TLS server name.
    pub(crate) domain: String,
    /// Put the account's bare JID in the stream header's `from`.
    pub(crate) send_from: bool,
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("mode", &self.mode)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Target {
    pub(crate) fn new(
        addr: SocketAddr,
        mode: TlsMode,
        domain: &str,
        send_from: bool,
        resumption: bool,
    ) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth();
        match mode {
            TlsMode::Direct => config.alpn_protocols = vec![b"xmpp-client".to_vec()],
            TlsMode::Websocket => config.alpn_protocols = vec![b"http/1.1".to_vec()],
            TlsMode::Starttls => {}
        }
        config.resumption = if resumption {
            Resumption::in_memory_sessions(4096)
        } else {
            Resumption::disabled()
        };
        let server_name = ServerName::try_from(domain.to_owned())
            .with_context(|| format!("{domain} is not a valid TLS server name"))?;
        Ok(Self {
            addr,
            mode,
            domain: domain.to_owned(),
            send_from,
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// TCP connect (from `source` if given, to spread ports over 127.0.0.x) and TLS, including
    /// the STARTTLS exchange when the mode asks for it.
    pub(crate) async fn connect(&self, source: Option<IpAddr>) -> Result<Conn, Failure> {
        self.connect_with(source, None).await
    }

    /// [`Target::connect`] with the socket's receive buffer set to `rcvbuf` bytes before the
    /// TCP handshake (a client on a slow link: the window stays that small).
    pub(crate) async fn connect_with(
        &self,
        source: Option<IpAddr>,
        rcvbuf: Option<u32>,
    ) -> Result<Conn, Failure> {
        let tcp = tcp_connect(self.addr, source, rcvbuf).await?;
        let tcp = match self.mode {
            TlsMode::Direct | TlsMode::Websocket => tcp,
            TlsMode::Starttls => self.starttls(tcp).await?,
        };
        let io = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| Failure::Tls(e.to_string()))?;
        let io = match self.mode {
            TlsMode::Websocket => {
                ClientIo::WebSocket(Box::new(crate::ws::connect(io, &self.domain).await?))
            }
            _ => ClientIo::Tls(Box::new(io)),
        };
        Ok(Wire::new(io))
    }

    async fn starttls(&self, tcp: TcpStream) -> Result<TcpStream, Failure> {
        let mut wire = Wire::new(tcp);
        wire.send(&xml::stream_header(&self.domain, None)).await?;
        let features = wire.read_until(&["</stream:features>"]).await?.1;
        if !features.contains("urn:ietf:params:xml:ns:xmpp-tls") {
            return Err(Failure::Protocol("no <starttls/> offered".into()));
        }
        wire.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let (i, _) = wire.read_until(&["<proceed", "<failure"]).await?;
        if i != 0 {
            return Err(Failure::Tls("STARTTLS refused".into()));
        }
        wire.read_until(&[">"]).await?;
        Ok(wire.io)
    }
}

async fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> Result<TcpStream, Failure> {
    let connect = |e: std::io::Error| Failure::Connect(e.to_string());
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(connect)?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(connect)?;
    }
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes).map_err(connect)?;
    }
    let tcp = socket.connect(addr).await.map_err(connect)?;
    tcp.set_nodelay(true).map_err(connect)?;
    Ok(tcp)
}

/// A connection to the server: TLS, or a WebSocket in TLS read and written in the TCP form.
pub(crate) type Conn = Wire<ClientIo>;

/// What a [`Conn`] runs over.
#[derive(Debug)]
pub(crate) enum ClientIo {
    Tls(Box<TlsStream<TcpStream>>),
    WebSocket(Box<crate::ws::WsIo>),
}

impl ClientIo {
    fn tls(&self) -> &rustls::ClientConnection {
        match self {
            Self::Tls(t) => t.get_ref().1,
            Self::WebSocket(w) => w.tls().get_ref().1,
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_read(cx, buf),
            Self::WebSocket(w) => std::pin::Pin::new(w.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_write(cx, buf),
            Self::WebSocket(w) => std::pin::Pin::new(w.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_flush(cx),
            Self::WebSocket(w) => std::pin::Pin::new(w.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_shutdown(cx),
            Self::WebSocket(w) => std::pin::Pin::new(w.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A byte stream with a receive buffer.
#[derive(Debug)]
pub(crate) struct Wire<S> {
    pub(crate) io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(io: S) -> Self {
        Self {
            io,
            buf: Vec::new(),
        }
    }

    /// Write and flush `text`.
    pub(crate) async fn send(&mut self, text: &str) -> Result<(), Failure> {
        self.io.write_all(text.as_bytes()).await.map_err(io_err)?;
        self.io.flush().await.map_err(io_err)
    }

    /// Read until one of `needles` arrives; returns its index and everything received up to
    /// and including it (consumed from the buffer). A stream error or the end of the stream
    /// arriving first is a [`Failure`] (unless it is itself a needle).
    pub(crate) async fn read_until(
        &mut self,
        needles: &[&str],
    ) -> Result<(usize, String), Failure> {
        loop {
            let found = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| find(&self.buf, n.as_bytes()).map(|p| (p + n.len(), i)))
                .min();
            if let Some((end, i)) = found {
                let head: Vec<u8> = self.buf.drain(..end).collect();
                return Ok((i, String::from_utf8_lossy(&head).into_owned()));
            }
            let text = String::from_utf8_lossy(&self.buf);
            if let Some(condition) = xml::stream_error(&text) {
                return Err(Failure::StreamError(condition));
            }
            if text.contains("</stream:stream>") {
                return Err(Failure::Io("server closed the stream".into()));
            }
            if self.fill().await? == 0 {
                return Err(Failure::Io("connection closed".into()));
            }
        }
    }

    /// One read into the buffer; the number of bytes read (0 at end of stream).
    pub(crate) async fn fill(&mut self) -> Result<usize, Failure> {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await.map_err(io_err)?;
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Drop whatever is buffered (idle sessions keep nothing).
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
    }

    /// Take what is buffered up to the end of the last complete tag (a partial one stays).
    pub(crate) fn take_complete(&mut self) -> String {
        let end = self
            .buf
            .iter()
            .rposition(|b| *b == b'>')
            .map_or(0, |i| i + 1);
        let head: Vec<u8> = self.buf.drain(..end).collect();
        String::from_utf8_lossy(&head).into_owned()
    }

    /// Whatever is buffered, as text.
    pub(crate) fn buffered(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

impl Conn {
    /// RFC 9266 tls-exporter channel-binding data.
    pub(crate) fn tls_exporter(&self) -> Result<Vec<u8>, Failure> {
        let mut out = [0u8; 32];
        self.io
            .tls()
            .export_keying_material(&mut out, b"EXPORTER-Channel-Binding", Some(b""))
            .map_err(|e| Failure::Tls(format!("tls-exporter: {e}")))?;
        Ok(out.to_vec())
    }

    /// Whether the TLS handshake resumed a session.
    pub(crate) fn resumed(&self) -> bool {
        self.io.tls().handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// The negotiated TLS version, e.g. `TLSv1_3`.
    pub(crate) fn tls_version(&self) -> String {
        self.io
            .tls()
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default()
    }

    /// Close the XMPP stream politely: `</stream:stream>`, wait (bounded) for the server's, then
    /// TLS close_notify. Errors are ignored: the login already counted.
    pub(crate) async fn close(mut self) {
        let wait = std::time::Duration::from_secs(2);
        if self.send("</stream:stream>").await.is_ok() {
            let _ = tokio::time::timeout(wait, self.read_until(&["</stream:stream>"])).await;
        }
        let _ = tokio::time::timeout(wait, self.io.shutdown()).await;
    }
}

fn io_err(e: std::io::Error) -> Failure {
    Failure::Io(e.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
