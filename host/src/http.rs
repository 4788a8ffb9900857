//! The host's HTTPS server (hyper over the same rustls certificate), on which modules register
//! route prefixes: mod_password_reset serves its page here. `/health` answers `ok`; `/metrics`
//! the Prometheus exposition ([`crate::metrics`]), to allowed addresses only.
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
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tessera_plugin_api::protocol::{HttpRequest, HttpResponse};
use tessera_plugin_api::ModuleCalls;
use tokio::net::TcpListener;

use crate::runtime::modules::Module;
use crate::Shared;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Accept HTTPS connections until the listener fails.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.http_config.clone());
    let mut backoff = crate::admission::AcceptBackoff::default();
    loop {
        let (tcp, peer, ticket) = shared
            .admission
            .accept(&listener, crate::admission::Kind::Https, &mut backoff)
            .await;
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
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req, peer));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tls), service);
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

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/health" {
        return Ok(plain(StatusCode::OK, "ok"));
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
