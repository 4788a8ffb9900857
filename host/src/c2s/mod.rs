//! Client-to-server connections (RFC 6120): the accept loops for STARTTLS and direct TLS
//! (XEP-0368) listeners, the plaintext phase that only allows STARTTLS, and the per-connection
//! task in [`conn`].

mod conn;
mod detached;
pub mod features;
mod throttle;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use tessera_plugin_api::StreamCondition;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

use crate::stream::framer::{Frame, Framer};
use crate::stream::parse::parse_stream_header;
use crate::stream::StreamError;
use crate::Shared;

pub use conn::TlsFacts;
pub use features::stream_header;
pub use transport::WebSocket;

const TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2_NS: &str = "urn:xmpp:sasl:2";

/// Accept connections until the listener fails; each admitted one gets its own task. A
/// connection over a cap is closed at once (its descriptor freed); accept errors (descriptor
/// exhaustion above all) back off instead of spinning.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, direct_tls: bool) {
    let mut backoff = crate::admission::AcceptBackoff::default();
    loop {
        let (tcp, peer, ticket) = shared
            .admission
            .accept(&listener, crate::admission::Kind::C2s, &mut backoff)
            .await;
        let _ = tcp.set_nodelay(true);
        shared
            .metrics
            .connection(if direct_tls { "direct_tls" } else { "starttls" });
        let shared = shared.clone();
        tokio::spawn(async move {
            connection(shared, tcp, peer, direct_tls).await;
            drop(ticket);
        });
    }
}

async fn connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let id = shared.next_id();
    let span = tracing::info_span!("c2s", conn = id, %peer);
    async move {
        tracing::info!(direct_tls, "connected");
        let deadline = Instant::now() + shared.config.c2s.negotiation_timeout;
        // Boxed: the handshake's state is large and needed once, not for the connection's life
        // (the task's future is as large as its largest state).
        let tls = if direct_tls {
            Box::pin(accept_tls(&shared, tcp, deadline)).await
        } else {
            Box::pin(starttls(&shared, tcp, deadline)).await
        };
        let reason = match tls {
            Ok(stream) => {
                let info = conn::stream_info(
                    &shared,
                    id,
                    peer,
                    direct_tls,
                    TlsFacts::of(&shared, stream.get_ref().1),
                );
                let io = transport::Transport::Tls(stream);
                conn::run(shared.clone(), io, info, deadline).await
            }
            Err(reason) => reason,
        };
        tracing::info!(%reason, "disconnected");
    }
    .instrument(span)
    .await;
}

/// Serve XMPP over an upgraded WebSocket (RFC 7395) like a TCP stream: same limits, deadline,
/// modules and sessions. `tls` is what the HTTPS connection's TLS tells (its channel bindings
/// left empty where they would not be the client's).
pub async fn websocket(shared: Arc<Shared>, ws: WebSocket, peer: SocketAddr, tls: TlsFacts) {
    let id = shared.next_id();
    let span = tracing::info_span!("c2s", conn = id, %peer);
    async move {
        tracing::info!(transport = "websocket", "connected");
        let deadline = Instant::now() + shared.config.c2s.negotiation_timeout;
        let io = transport::Transport::websocket(ws, conn::pre_auth_limits(&shared.config));
        let info = conn::stream_info(&shared, id, peer, false, tls);
        let reason = conn::run(shared.clone(), io, info, deadline).await;
        tracing::info!(%reason, "disconnected");
    }
    .instrument(span)
    .await;
}

async fn accept_tls(
    shared: &Shared,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<Box<TlsStream<TcpStream>>, String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.config.clone());
    match timeout_at(deadline, acceptor.accept(tcp)).await {
        // Boxed where it is made: the connection keeps a pointer, not a second copy.
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

/// The plaintext phase on a STARTTLS port: stream header, `<starttls><required/>`, `<proceed/>`.
async fn starttls(
    shared: &Shared,
    mut tcp: TcpStream,
    deadline: Instant,
) -> Result<Box<TlsStream<TcpStream>>, String> {
    let mut framer = Framer::new(conn::pre_auth_limits(&shared.config));
    let mut buf = vec![0u8; 4096];
    let mut header_sent = false;
    loop {
        let n = match timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("peer closed".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => {
                let err = StreamError::new(StreamCondition::ConnectionTimeout);
                send_error(&mut tcp, shared, header_sent, &err).await;
                return Err("negotiation timed out".into());
            }
        };
        let step = framer
            .push(buf.get(..n).unwrap_or_default())
            .map_err(StreamError::from);
        let step = match step {
            Ok(()) => plaintext_frames(shared, &mut framer, &mut header_sent).await,
            Err(e) => Err(e),
        };
        match step {
            Ok(PlainOutcome::Continue(out)) => write(&mut tcp, &out).await?,
            Ok(PlainOutcome::Upgrade(out)) => {
                write(&mut tcp, &out).await?;
                return accept_tls(shared, tcp, deadline).await;
            }
            Ok(PlainOutcome::End(out)) => {
                let _ = write(&mut tcp, &out).await;
                return Err("stream closed by peer".into());
            }
            Err(err) => {
                tracing::debug!(condition = %err.condition, "stream error before TLS");
                send_error(&mut tcp, shared, header_sent, &err).await;
                return Err(format!("stream error: {}", err.condition));
            }
        }
    }
}

enum PlainOutcome {
    Continue(String),
    Upgrade(String),
    End(String),
}

async fn plaintext_frames(
    shared: &Shared,
    framer: &mut Framer,
    header_sent: &mut bool,
) -> Result<PlainOutcome, StreamError> {
    let mut out = String::new();
    let mut header = None;
    while let Some(frame) = framer.next_frame()? {
        match frame {
            Frame::StreamHeader(bytes) => {
                let h = parse_stream_header(&bytes)?;
                out.push_str(&stream_header(shared, &h)?);
                *header_sent = true;
                out.push_str(&format!(
                    "<stream:features><starttls xmlns='{TLS_NS}'><required/></starttls></stream:features>"
                ));
                header = Some(h);
            }
            Frame::Element(bytes) => {
                let h = header.clone().unwrap_or_default();
                let el = crate::stream::parse::parse_element(&bytes, &h)?;
                if el.is("starttls", TLS_NS) {
                    let pipelined =
                        !matches!(framer.next_frame(), Ok(None)) || framer.buffered_len() > 0;
                    if pipelined {
                        // Data pipelined after <starttls/> would be processed as if it had
                        // arrived over TLS (STARTTLS command injection): refuse.
                        return Err(StreamError::with_text(
                            StreamCondition::PolicyViolation,
                            "data after <starttls/>",
                        ));
                    }
                    out.push_str(&format!("<proceed xmlns='{TLS_NS}'/>"));
                    return Ok(PlainOutcome::Upgrade(out));
                }
                if el.is("auth", SASL_NS) || el.is("authenticate", SASL2_NS) {
                    // No credential before TLS: the mechanism lists are not even offered.
                    let ns = el.ns.clone();
                    out.push_str(&format!(
                        "<failure xmlns='{ns}'><encryption-required xmlns='{SASL_NS}'/></failure>"
                    ));
                    continue;
                }
                return Err(StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "TLS is required; send <starttls/>",
                ));
            }
            Frame::StreamEnd => {
                out.push_str("</stream:stream>");
                return Ok(PlainOutcome::End(out));
            }
        }
    }
    Ok(PlainOutcome::Continue(out))
}

async fn write(tcp: &mut TcpStream, out: &str) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    tcp.write_all(out.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))
}

async fn send_error(tcp: &mut TcpStream, shared: &Shared, header_sent: bool, err: &StreamError) {
    let mut out = String::new();
    if !header_sent {
        out.push_str(&features::error_header(shared));
    }
    out.push_str(&err.to_xml());
    let _ = write(tcp, &out).await;
    let _ = tcp.shutdown().await;
}
