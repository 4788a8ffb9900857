//! The host's HTTPS server (hyper over the same rustls certificate), on which modules register
//! route prefixes: mod_password_reset serves its page here. `/health` answers `ok`; `/metrics`
//! the Prometheus exposition ([`crate::metrics`]), to allowed addresses only;
//! `/xmpp-websocket` upgrades to XMPP over WebSocket ([`crate::websocket`], served by
//! [`crate::c2s::websocket`]) and `/.well-known/host-meta` (`.json`) lists it (XEP-0156).
//!
//! Requests are bounded (body size, header read time); a module's answer is passed through
//! with a few safe default headers; any failure is a plain 500 without detail.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tessera_plugin_api::protocol::{HttpRequest, HttpResponse};
use tessera_plugin_api::ModuleCalls;
use tokio::net::TcpListener;

use crate::runtime::modules::Module;
use crate::websocket;
use crate::Shared;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Accept HTTPS connections until the listener fails.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.http_config.clone());
    let mut backoff = crate::admission::AcceptBackoff::default();
    let port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        let (tcp, peer, ticket) = shared
            .admission
            .accept(&listener, crate::admission::Kind::Https, &mut backoff)
            .await;
        // Small writes (an XMPP answer over WebSocket, above all) must not wait for the
        // peer's delayed ACK (Nagle): ~40 ms per round trip otherwise.
        let _ = tcp.set_nodelay(true);
        shared.metrics.connection("https");
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ticket = ticket;
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let conn = Arc::new(Connection {
                peer,
                port,
                tls: crate::c2s::TlsFacts::of(&shared, tls.get_ref().1),
            });
            let service =
                hyper::service::service_fn(move |req| handle(shared.clone(), req, conn.clone()));
            // An upgraded connection leaves this future (and its HTTPS place) at the upgrade:
            // the 60 s bound the HTTP exchange only; the WebSocket holds a c2s place.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn route(shared: &Shared, path: &str) -> Option<Arc<Module>> {
    let routes = shared.registry.routes();
    routes
        .http
        .iter()
        .find(|(prefix, _)| {
            path == prefix || path.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
        })
        .map(|(_, m)| m.clone())
}

/// What the requests of one HTTPS connection share.
#[derive(Debug)]
struct Connection {
    peer: SocketAddr,
    /// The port of the listener it came through.
    port: u16,
    tls: crate::c2s::TlsFacts,
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    conn: Arc<Connection>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let peer = conn.peer;
    let path = req.uri().path().to_owned();
    if path == "/health" {
        return Ok(plain(StatusCode::OK, "ok"));
    }
    if shared.config.websocket.enabled {
        if path == websocket::PATH {
            return Ok(upgrade(shared, req, peer, &conn.tls));
        }
        if path == "/.well-known/host-meta" || path == "/.well-known/host-meta.json" {
            return Ok(host_meta(&shared, &path, conn.port));
        }
    }
    if path == "/metrics" {
        if !crate::metrics::allowed(&shared.config.http.metrics_allow, peer.ip()) {
            tracing::debug!(peer = %peer.ip(), "/metrics refused to an address not allowed");
            return Ok(plain(StatusCode::FORBIDDEN, "forbidden"));
        }
        let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render(&shared))));
        r.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return Ok(r);
    }
    let Some(module) = route(&shared, &path) else {
        return Ok(plain(StatusCode::NOT_FOUND, "not found"));
    };
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ))
        }
    };
    let request = HttpRequest {
        method,
        path,
        query,
        headers,
        body,
        peer_ip: peer.ip().to_string(),
    };
    let answer = tokio::task::spawn_blocking(move || module.http(request)).await;
    Ok(match answer {
        Ok(Ok(r)) => to_response(r),
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    })
}

/// The WebSocket handshake of `/xmpp-websocket`: checked, given a c2s place, answered with
/// 101, and the upgraded connection handed to the c2s layer.
fn upgrade(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    tls: &crate::c2s::TlsFacts,
) -> Response<Full<Bytes>> {
    let ws = &shared.config.websocket;
    let origins = websocket::OriginPolicy::new(
        &shared.config.domain,
        shared.config.http.public_url.as_deref(),
        &ws.allowed_origins,
    );
    let accept = match websocket::check_handshake(req.method(), req.headers(), &origins) {
        Ok(accept) => accept,
        Err(refusal) => {
            tracing::debug!(peer = %peer.ip(), ?refusal, origin = ?req.headers().get("origin"), "WebSocket handshake refused");
            let mut r = plain(
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
                refusal.text(),
            );
            if refusal == websocket::Refusal::Version {
                r.headers_mut()
                    .insert("sec-websocket-version", HeaderValue::from_static("13"));
            }
            return r;
        }
    };
    let ticket = match shared
        .admission
        .admit(crate::admission::Kind::C2s, peer.ip())
    {
        Ok(t) => t,
        Err(refusal) => {
            tracing::warn!(peer = %peer.ip(), %refusal, "WebSocket connection refused");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections; try again later",
            );
        }
    };
    let mut facts = tls.clone();
    if !ws.channel_binding {
        // TLS ends at a proxy: this connection's binding is not the client's. Decided by the
        // operator, never by a request header, which anyone in the middle could add to strip
        // the binding that would have caught them.
        facts.channel_bindings = Default::default();
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    shared.metrics.connection("websocket");
    tokio::spawn(async move {
        let _ticket = ticket;
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = tokio_websockets::ServerBuilder::new().serve(TokioIo::new(upgraded));
                crate::c2s::websocket(shared, ws, peer, facts).await;
            }
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert("sec-websocket-accept", accept);
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(websocket::SUBPROTOCOL),
    );
    r
}

/// XEP-0156 discovery: the WebSocket endpoint, readable by any page (CORS).
fn host_meta(shared: &Shared, path: &str, port: u16) -> Response<Full<Bytes>> {
    let url = websocket_url(&shared.config, port);
    let (body, content_type) = if path.ends_with(".json") {
        (websocket::host_meta_json(&url), "application/json")
    } else {
        (websocket::host_meta_xrd(&url), "application/xrd+xml")
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    r
}

/// The WebSocket endpoint's public URL: `[websocket] url`, else from `http.public_url`, else
/// the domain and `port` (the listener's that was asked).
pub fn websocket_url(config: &crate::config::Config, port: u16) -> String {
    if let Some(url) = &config.websocket.url {
        return url.clone();
    }
    let origin = config
        .http
        .public_url
        .as_deref()
        .and_then(websocket::origin_of)
        .unwrap_or_else(|| {
            if port == 443 {
                format!("https://{}", config.domain)
            } else {
                format!("https://{}:{port}", config.domain)
            }
        });
    let origin = origin
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            origin
                .strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or(origin);
    format!("{origin}{}", websocket::PATH)
}

fn to_response(r: HttpResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    for (k, v) in r.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            headers.insert(name, value);
        }
    }
    resp
}
