//! A man in the middle, for downgrade tests: it accepts direct-TLS connections with the
//! server's own certificate (clients in these tests do not verify it), opens direct TLS to the
//! server, and passes bytes both ways, rewriting the first `<stream:features/>` the server
//! sends (the one that offers the mechanisms) on its way to the client. What an attacker who
//! can make a client accept its certificate can do; what XEP-0474 is there to detect.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, ServerConfig, ServerConnection, StreamOwned};

/// How the features are rewritten.
pub type Rewrite = fn(&str) -> String;

/// A running man in the middle; stops when dropped.
#[derive(Debug)]
pub struct Mitm {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mitm {
    /// Listen on loopback and relay each connection to `upstream` (a direct-TLS address),
    /// presenting the certificate and key of `data_dir/tls/localhost.{crt,key}`.
    pub fn start(upstream: SocketAddr, data_dir: &Path, rewrite: Rewrite) -> Self {
        let tls = data_dir.join("tls");
        let certs = CertificateDer::pem_file_iter(tls.join("localhost.crt"))
            .expect("certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate");
        let key = PrivateKeyDer::from_pem_file(tls.join("localhost.key")).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (config, stopping) = (config.clone(), stopping.clone());
                        std::thread::spawn(move || {
                            relay(client, upstream, config, rewrite, &stopping);
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // Anything else (a connection reset before accept) ends only that one.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Relay one connection until either side closes (or two minutes pass).
fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    config: Arc<ServerConfig>,
    rewrite: Rewrite,
    stopping: &AtomicBool,
) {
    let tick = Some(Duration::from_millis(5));
    let Ok(()) = client
        .set_nonblocking(false)
        .and_then(|()| client.set_read_timeout(tick))
    else {
        return;
    };
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut down = StreamOwned::new(conn, client);
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let name = ServerName::try_from("localhost").expect("name");
    let Ok(mut conn) =
        ClientConnection::new(crate::client::client_config(b"xmpp-client", false), name)
    else {
        return;
    };
    // The upstream handshake first, with a patient socket: a write on a half-done handshake
    // would fail with the short tick below and end the relay.
    let _ = server.set_read_timeout(Some(Duration::from_secs(10)));
    while conn.is_handshaking() {
        if conn.complete_io(&mut server).is_err() {
            return;
        }
    }
    let _ = server.set_read_timeout(tick);
    let mut up = StreamOwned::new(conn, server);
    // Held back until the first features are complete, then rewritten once (as bytes until
    // then, so that a character split across reads is not mangled).
    let mut held: Vec<u8> = Vec::new();
    let mut rewritten = false;
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
        match down.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if timed_out(&e) => {}
            Err(_) => return,
        }
        match up.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if rewritten => {
                if down.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Ok(n) => {
                held.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&held).into_owned();
                if let Some(end) = text.find("</stream:features>") {
                    let end = end + "</stream:features>".len();
                    let out = format!("{}{}", rewrite(&text[..end]), &text[end..]);
                    if down.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                    rewritten = true;
                }
            }
            Err(e) if timed_out(&e) => {}
            Err(_) => return,
        }
    }
}
