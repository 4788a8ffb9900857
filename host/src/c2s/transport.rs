//! What a client connection reads from and writes to: a TLS stream (TCP, RFC 6120) or a
//! WebSocket (RFC 7395) inside the HTTPS server's TLS. The connection task speaks the TCP form
//! to both; [`crate::websocket`] converts at this edge.
//!
//! Every method is cancel-safe the way the connection's `select!` needs: each has a single
//! await, and what it does after that await is synchronous, so a dropped call has consumed
//! nothing.

use std::io;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tessera_plugin_api::StreamCondition;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use crate::stream::framer::Limits;
use crate::stream::StreamError;
use crate::websocket::{self, Encoder, Inbound};

/// The WebSocket of an upgraded HTTPS request.
pub type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// What one read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Received {
    /// Bytes of the TCP form put in the buffer; 0 with nothing `charged` is the end.
    pub(super) bytes: usize,
    /// What the client sent for them, charged to its receive rate: WebSocket pings, pongs and
    /// keepalives cost the sender something though they yield no bytes.
    pub(super) charged: usize,
}

impl Received {
    fn data(n: usize) -> Self {
        Self {
            bytes: n,
            charged: n,
        }
    }

    fn control(charged: usize) -> Self {
        Self { bytes: 0, charged }
    }
}

/// The least a client's frame takes on the wire: 2 header bytes and a 4-byte mask.
const FRAME_OVERHEAD: usize = 6;

/// Why a read failed.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The connection broke.
    Io(io::Error),
    /// The client sent something the XMPP layer refuses (answered with a stream error).
    Stream(StreamError),
    /// A WebSocket protocol violation (a bad frame, invalid UTF-8, a message over the limit):
    /// the WebSocket layer has queued its close with the precise code; no stream error follows.
    WebSocket(String),
}

pub(super) enum Transport {
    Tls(Box<TlsStream<TcpStream>>),
    WebSocket(Box<WsTransport>),
}

pub(super) struct WsTransport {
    ws: WebSocket,
    /// Limits of one message (the stream's current ones).
    limits: Limits,
    /// The TCP form of the last message, not yet all read.
    pending: Vec<u8>,
    pending_at: usize,
    encoder: Encoder,
    /// The close code to end with (1000 unless the client broke a rule of the framing).
    close_code: CloseCode,
    close_reason: String,
}

impl Transport {
    pub(super) fn websocket(mut ws: WebSocket, limits: Limits) -> Self {
        ws.limits_mut()
            .set_max_payload_len(Some(limits.max_stanza_bytes));
        Self::WebSocket(Box::new(WsTransport {
            ws,
            limits,
            pending: Vec::new(),
            pending_at: 0,
            encoder: Encoder::new(),
            close_code: CloseCode::NORMAL_CLOSURE,
            close_reason: String::new(),
        }))
    }

    /// The stream's limits changed (after authentication): a WebSocket message may be as large
    /// as a stanza now may.
    pub(super) fn set_limits(&mut self, limits: Limits) {
        if let Self::WebSocket(w) = self {
            w.ws.limits_mut()
                .set_max_payload_len(Some(limits.max_stanza_bytes));
            w.limits = limits;
        }
    }

    /// The transport's name in `/metrics` (`direct_tls`: the TLS began the connection).
    pub(super) fn name(&self, direct_tls: bool) -> &'static str {
        match (self, direct_tls) {
            (Self::WebSocket(_), _) => "websocket",
            (Self::Tls(_), true) => "direct_tls",
            (Self::Tls(_), false) => "starttls",
        }
    }

    pub(super) fn is_websocket(&self) -> bool {
        matches!(self, Self::WebSocket(_))
    }

    /// Reads up to `max` bytes in the TCP form into a new buffer. Over TLS no buffer is held
    /// while the read waits: each poll reads into the stack and copies out what came, so an
    /// idle connection keeps no read buffer (4 KiB each otherwise: tokio may report a socket
    /// readable when the read would then block, and a buffer reserved for that read would stay
    /// with the idle connection; `shared/docs/performance-notes.md`).
    pub(super) async fn read_chunk<const MAX: usize>(
        &mut self,
    ) -> Result<(Received, Vec<u8>), ReadError> {
        match self {
            Self::Tls(io) => std::future::poll_fn(|cx| {
                let mut chunk = [0u8; MAX];
                let mut read = tokio::io::ReadBuf::new(&mut chunk);
                match std::pin::Pin::new(&mut **io).poll_read(cx, &mut read) {
                    std::task::Poll::Ready(Ok(())) => {
                        std::task::Poll::Ready(Ok(read.filled().to_vec()))
                    }
                    std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            })
            .await
            .map(|bytes| (Received::data(bytes.len()), bytes))
            .map_err(ReadError::Io),
            Self::WebSocket(w) => {
                let mut buf = vec![0; MAX];
                let received = w.read(&mut buf).await?;
                buf.truncate(received.bytes);
                Ok((received, buf))
            }
        }
    }

    /// A new stream begins (after authentication): the server's next output is a stream
    /// header again. Called while nothing of the old stream waits to be written.
    pub(super) fn restart(&mut self) {
        if let Self::WebSocket(w) = self {
            w.encoder.restart();
        }
    }

    /// Writes some of `bytes`; answers how many were taken.
    pub(super) async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tls(io) => io.write(bytes).await,
            Self::WebSocket(w) => w.write(bytes).await,
        }
    }

    pub(super) async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = self.write(bytes).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = bytes.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Everything written reaches the kernel.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tls(io) => io.flush().await,
            Self::WebSocket(w) => w.ws.flush().await.map_err(ws_io),
        }
    }

    /// Ends the connection: TLS close_notify; on a WebSocket `<close/>` if the stream has not
    /// sent it, then the WebSocket close (RFC 7395 §3.6), waiting for the client's.
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Tls(io) => io.shutdown().await,
            Self::WebSocket(w) => {
                // Either may fail when the WebSocket layer already closed (a protocol
                // violation): its own close, with its code, is then what goes out.
                if !w.encoder.closed() {
                    let _ = w.ws.feed(Message::text(websocket::close_element())).await;
                }
                let _ =
                    w.ws.feed(Message::close(Some(w.close_code), &w.close_reason))
                        .await;
                w.ws.close().await.map_err(ws_io)
            }
        }
    }
}

fn ws_io(e: tokio_websockets::Error) -> io::Error {
    match e {
        tokio_websockets::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl WsTransport {
    async fn read(&mut self, buf: &mut [u8]) -> Result<Received, ReadError> {
        loop {
            if let Some(rest) = self
                .pending
                .get(self.pending_at..)
                .filter(|r| !r.is_empty())
            {
                let n = rest.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.pending_at += n;
                if self.pending_at == self.pending.len() {
                    self.pending = Vec::new();
                    self.pending_at = 0;
                }
                return Ok(Received::data(n));
            }
            let message = match self.ws.next().await {
                None => return Ok(Received::data(0)),
                Some(Ok(m)) => m,
                Some(Err(tokio_websockets::Error::Io(e))) => return Err(ReadError::Io(e)),
                Some(Err(e @ tokio_websockets::Error::PayloadTooLong { max_len, .. })) => {
                    // Over the limit across continuation frames: the WebSocket layer refuses
                    // without closing (it closes by itself only for a single frame over it).
                    self.close_code = CloseCode::MESSAGE_TOO_BIG;
                    self.close_reason = format!("max length: {max_len}");
                    return Err(ReadError::WebSocket(e.to_string()));
                }
                Some(Err(e)) => return Err(ReadError::WebSocket(e.to_string())),
            };
            let wire = message.as_payload().len() + FRAME_OVERHEAD;
            if message.is_binary() {
                self.close_code = CloseCode::UNSUPPORTED_DATA;
                return Err(ReadError::Stream(StreamError::with_text(
                    StreamCondition::UnsupportedEncoding,
                    "XMPP over WebSocket is sent in text messages (RFC 7395 §3.3.3)",
                )));
            }
            if message.is_ping() {
                // The WebSocket layer queued the pong: it goes out before anything more is
                // read, so a client that pings and never reads cannot pile pongs up here.
                self.ws.flush().await.map_err(|e| ReadError::Io(ws_io(e)))?;
                return Ok(Received::control(wire));
            }
            if message.is_pong() {
                return Ok(Received::control(wire));
            }
            // A close frame: the stream ends with the next read.
            let Some(text) = message.as_text() else {
                continue;
            };
            self.pending = match websocket::inbound(text.to_owned(), self.limits) {
                Ok(Inbound::Open(header)) => header.into_bytes(),
                Ok(Inbound::Close) => b"</stream:stream>".to_vec(),
                Ok(Inbound::Element(element)) => element.into_bytes(),
                Ok(Inbound::Keepalive) => return Ok(Received::control(wire)),
                Err(e) => return Err(ReadError::Stream(e)),
            };
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Room first (the WebSocket layer flushes past its threshold), then all of `bytes`
        // at once: the encoder keeps an element cut in two until its end arrives.
        std::future::poll_fn(|cx| self.ws.poll_ready_unpin(cx))
            .await
            .map_err(ws_io)?;
        let mut messages = Vec::new();
        self.encoder
            .encode(bytes, &mut messages)
            .map_err(|e| io::Error::other(format!("output is not a stream: {}", e.condition)))?;
        for message in messages {
            self.ws
                .start_send_unpin(Message::text(message))
                .map_err(ws_io)?;
        }
        Ok(bytes.len())
    }
}
