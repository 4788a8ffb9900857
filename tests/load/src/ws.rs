//! XMPP over WebSocket (RFC 7395) for the load tool: the handshake at `/xmpp-websocket` through
//! tokio-websockets' client, and an adapter that lets the modes keep speaking the TCP form. Each
//! write is one element (the modes send one element per write), a stream header becomes
//! `<open/>` and `</stream:stream>` `<close/>`; on the way in, `<open …/>` reads as a stream
//! header and `<close/>` as its end tag.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_websockets::{ClientBuilder, Message, WebSocketStream};

use crate::failure::Failure;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// The WebSocket handshake over an established TLS connection.
pub(crate) async fn connect(tls: TlsStream<TcpStream>, domain: &str) -> Result<WsIo, Failure> {
    let uri = format!("wss://{domain}/xmpp-websocket");
    let builder = ClientBuilder::new()
        .uri(&uri)
        .map_err(|e| Failure::Protocol(format!("{uri}: {e}")))?
        .add_header(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("xmpp"),
        )
        .map_err(|e| Failure::Protocol(e.to_string()))?;
    let (ws, response) = builder
        .connect_on(tls)
        .await
        .map_err(|e| Failure::Protocol(format!("WebSocket handshake: {e}")))?;
    if response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.as_bytes())
        != Some(b"xmpp")
    {
        return Err(Failure::Protocol(
            "the server did not agree to `xmpp`".into(),
        ));
    }
    Ok(WsIo {
        ws,
        domain: domain.to_owned(),
        inbound: Vec::new(),
        at: 0,
    })
}

/// A WebSocket that reads and writes in the TCP form.
#[derive(Debug)]
pub(crate) struct WsIo {
    ws: WebSocketStream<TlsStream<TcpStream>>,
    domain: String,
    inbound: Vec<u8>,
    at: usize,
}

impl WsIo {
    /// The TLS connection under the WebSocket.
    pub(crate) fn tls(&self) -> &TlsStream<TcpStream> {
        self.ws.get_ref()
    }

    /// One write of the TCP form as one message.
    fn message(&self, text: &str) -> String {
        let t = text.trim();
        if t.starts_with("<?xml") || t.starts_with("<stream:stream") {
            format!(
                "<open xmlns='{FRAMING}' to='{}' version='1.0'/>",
                self.domain
            )
        } else if t == "</stream:stream>" {
            format!("<close xmlns='{FRAMING}'/>")
        } else {
            t.to_owned()
        }
    }
}

/// A message in the TCP form.
fn tcp_form(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("<open ") {
        let attrs = rest.trim_end_matches("/>").trim_end();
        format!("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' {attrs}>")
    } else if text.starts_with("<close ") || text == "<close/>" {
        "</stream:stream>".to_owned()
    } else {
        text.to_owned()
    }
}

fn ws_err(e: tokio_websockets::Error) -> io::Error {
    match e {
        tokio_websockets::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let this = &mut *self;
            if let Some(rest) = this.inbound.get(this.at..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.remaining());
                buf.put_slice(rest.get(..n).unwrap_or_default());
                this.at += n;
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(ws_err(e))),
                Some(Ok(m)) => {
                    if let Some(text) = m.as_text() {
                        this.inbound = tcp_form(text).into_bytes();
                        this.at = 0;
                    }
                }
            }
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_err)?;
        let text = String::from_utf8_lossy(buf).into_owned();
        let message = self.message(&text);
        Pin::new(&mut self.ws)
            .start_send(Message::text(message))
            .map_err(ws_err)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(ws_err)
    }
}
