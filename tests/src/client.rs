//! Raw XMPP and HTTPS clients over real sockets, for tests. TLS certificates are not verified
//! (the server's is self-signed); everything else is real rustls.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::TIMEOUT;

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

/// A TLS client configuration that accepts the server's self-signed certificate.
pub(crate) fn client_config(alpn: &[u8], tls12_only: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    WebSocket(Box<crate::ws::WsIo>),
}

impl Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
            Io::WebSocket(w) => w.read(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(buf).and_then(|()| s.flush()),
            Io::Tls(s) => s.write_all(buf).and_then(|()| s.flush()),
            // One text message per write: a test sends one element at a time.
            Io::WebSocket(w) => w.send_frame(crate::ws::TEXT, buf, true),
        }
    }
}

/// A raw XMPP client: send strings, wait for substrings.
pub struct XmppClient {
    io: Option<Io>,
    received: String,
    closed: bool,
}

impl std::fmt::Debug for XmppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppClient")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

pub(crate) fn tls_over(
    tcp: TcpStream,
    alpn: &[u8],
    tls12: bool,
) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(client_config(alpn, tls12), name).expect("client connection");
    let mut s = StreamOwned::new(conn, tcp);
    let deadline = Instant::now() + TIMEOUT;
    while s.conn.is_handshaking() {
        match s.conn.complete_io(&mut s.sock) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("TLS handshake failed: {e}"),
        }
        assert!(Instant::now() < deadline, "TLS handshake timed out");
    }
    s
}

/// The stream header tests send.
pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

impl XmppClient {
    /// Plain TCP (before STARTTLS).
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            io: Some(Io::Plain(tcp(addr))),
            received: String::new(),
            closed: false,
        }
    }

    /// Direct TLS (XEP-0368).
    pub fn direct_tls(addr: SocketAddr) -> Self {
        Self::direct_tls_with(addr, false)
    }

    /// Direct TLS, optionally forcing TLS 1.2.
    pub fn direct_tls_with(addr: SocketAddr, tls12: bool) -> Self {
        Self {
            io: Some(Io::Tls(Box::new(tls_over(
                tcp(addr),
                b"xmpp-client",
                tls12,
            )))),
            received: String::new(),
            closed: false,
        }
    }

    /// Direct TLS over a socket whose receive buffer is `bytes` (set before connecting, so the
    /// TCP window stays that small): a client on a slow link, or one that stops reading,
    /// without megabytes of kernel buffer absorbing what the server sends it.
    pub fn direct_tls_with_receive_buffer(addr: SocketAddr, bytes: usize) -> Self {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        socket
            .connect_timeout(&addr.into(), TIMEOUT)
            .expect("connect");
        let tcp: TcpStream = socket.into();
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        tcp.set_nodelay(true).expect("nodelay");
        Self {
            io: Some(Io::Tls(Box::new(tls_over(tcp, b"xmpp-client", false)))),
            received: String::new(),
            closed: false,
        }
    }

    /// Connect to a STARTTLS port and negotiate TLS; returns the client ready for a new header.
    pub fn starttls(addr: SocketAddr) -> Self {
        let mut c = Self::plain(addr);
        c.send(HEADER);
        c.read_until("</stream:features>");
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        c.read_until("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        let Some(Io::Plain(tcp)) = c.io.take() else {
            panic!("not plain")
        };
        c.io = Some(Io::Tls(Box::new(tls_over(tcp, b"xmpp-client", false))));
        c.received.clear();
        c
    }

    /// XMPP over WebSocket (RFC 7395) at `/xmpp-websocket` of the HTTPS listener `addr`, with
    /// `Sec-WebSocket-Protocol: xmpp` and these extra request headers; the HTTP answer when
    /// the server does not switch protocols.
    ///
    /// # Errors
    /// The server's answer if it is not `101 Switching Protocols`.
    pub fn websocket(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Self, HttpReply> {
        let mut all = vec![("Sec-WebSocket-Protocol", "xmpp")];
        all.extend_from_slice(headers);
        Self::websocket_raw(addr, &all)
    }

    /// Like [`XmppClient::websocket`] with exactly these extra headers (no subprotocol).
    ///
    /// # Errors
    /// The server's answer if it is not `101 Switching Protocols`.
    pub fn websocket_raw(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Self, HttpReply> {
        let tls = tls_over(tcp(addr), b"http/1.1", false);
        let ws = crate::ws::WsIo::connect(tls, headers)?;
        Ok(Self {
            io: Some(Io::WebSocket(Box::new(ws))),
            received: String::new(),
            closed: false,
        })
    }

    /// Send the standard header (`<open/>` over WebSocket) and return everything up to the
    /// end of the features.
    pub fn open(&mut self) -> String {
        self.send(self.header());
        self.read_until("</stream:features>")
    }

    /// Send the standard header with `from` (the account a client is about to log in as, as
    /// RFC 6120 §4.7.1 and XEP-0480 ask) and return everything up to the end of the features.
    pub fn open_from(&mut self, from: &str) -> String {
        self.send(
            &self
                .header()
                .replacen(" to=", &format!(" from='{from}' to="), 1),
        );
        self.read_until("</stream:features>")
    }

    /// The stream header of this transport: `<open/>` over WebSocket (RFC 7395).
    fn header(&self) -> &'static str {
        match self.io {
            Some(Io::WebSocket(_)) => crate::ws::OPEN,
            _ => HEADER,
        }
    }

    /// Send one raw WebSocket frame (`opcode`, FIN when `fin`), masked as a client must.
    pub fn send_ws_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) {
        if let Some(Io::WebSocket(w)) = self.io.as_mut() {
            let _ = w.send_frame(opcode, payload, fin);
        }
    }

    /// The WebSocket close the server sent (code, reason), once the connection is closed.
    pub fn ws_close(&self) -> Option<(u16, String)> {
        match self.io.as_ref() {
            Some(Io::WebSocket(w)) => w.close.clone(),
            _ => None,
        }
    }

    /// WebSocket pongs received so far.
    pub fn ws_pongs(&self) -> usize {
        match self.io.as_ref() {
            Some(Io::WebSocket(w)) => w.pongs,
            _ => 0,
        }
    }

    /// Every WebSocket text message received so far, in order.
    pub fn ws_messages(&self) -> Vec<String> {
        match self.io.as_ref() {
            Some(Io::WebSocket(w)) => w.messages.clone(),
            _ => Vec::new(),
        }
    }

    /// Send text.
    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    /// Send bytes (a write to a closed connection is ignored: the test reads the reason).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Some(io) = self.io.as_mut() {
            let _ = io.write_all(bytes);
        }
    }

    fn fill(&mut self) -> bool {
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 16384];
        match io.read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.received
                    .push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()));
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    /// Wait until `needle` was received; return (and consume) everything up to and including it.
    pub fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pos) = self.received.find(needle) {
                let end = pos + needle.len();
                let head: String = self.received.drain(..end).collect();
                return head;
            }
            assert!(
                !self.closed,
                "connection closed before {needle:?}; received: {}",
                self.received
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; received: {}",
                self.received
            );
            self.fill();
        }
    }

    /// Wait until any of `needles` was received; consume up to and including the earliest.
    pub fn read_until_any(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let found = needles
                .iter()
                .filter_map(|n| self.received.find(n).map(|p| p + n.len()))
                .min();
            if let Some(end) = found {
                return self.received.drain(..end).collect();
            }
            assert!(
                !self.closed,
                "connection closed before any of {needles:?}; received: {}",
                self.received
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needles:?}; received: {}",
                self.received
            );
            self.fill();
        }
    }

    /// Read up to the end of the IQ with this `id` (self-closing or not); return everything
    /// received before it and the IQ itself.
    pub fn read_iq(&mut self, id: &str) -> String {
        let mut answer = self.read_until(&format!("id='{id}'"));
        answer.push_str(&self.read_until(">"));
        if !answer.ends_with("/>") {
            answer.push_str(&self.read_until("</iq>"));
        }
        answer
    }

    /// Read until the server closes the connection; return everything received.
    pub fn read_to_close(&mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while !self.closed {
            assert!(
                Instant::now() < deadline,
                "server did not close; received: {}",
                self.received
            );
            self.fill();
        }
        std::mem::take(&mut self.received)
    }

    /// Whatever arrived within `wait` (for asserting that nothing arrives).
    pub fn read_for(&mut self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !self.closed {
            self.fill();
        }
        std::mem::take(&mut self.received)
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// RFC 9266 tls-exporter channel-binding data of this connection.
    pub fn tls_exporter(&self) -> Vec<u8> {
        let conn = match self.io.as_ref() {
            Some(Io::Tls(s)) => &s.conn,
            Some(Io::WebSocket(w)) => &w.tls.conn,
            _ => panic!("not TLS"),
        };
        let mut out = [0u8; 32];
        conn.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", Some(b""))
            .expect("exporter");
        out.to_vec()
    }

    /// The negotiated TLS version.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match self.io.as_ref() {
            Some(Io::Tls(s)) => s.conn.protocol_version(),
            _ => None,
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl HttpReply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over TLS (`Connection: close`).
pub fn https(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut s = tls_over(tcp(addr), b"http/1.1", false);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    s.write_all(body).expect("write body");
    s.flush().expect("flush");
    let mut raw = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("https read: {e}"),
        }
        assert!(Instant::now() < deadline, "https response timed out");
    }
    parse_http(&String::from_utf8_lossy(&raw))
}

pub(crate) fn parse_http(text: &str) -> HttpReply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_owned(),
    }
}
