//! A TCP relay the test controls, standing in for the network between a client and the server
//! (there is no firewall to pull a cable with here): [`Relay::cut`] ends every connection
//! through it without a word on either side, as a lost mobile link does once TCP gives up;
//! [`Relay::freeze`] stops carrying bytes but keeps the sockets open, as a link that went
//! silent does before TCP notices.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A relay on a loopback port chosen by the OS to one upstream address.
#[derive(Debug)]
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    open: Arc<Mutex<Vec<TcpStream>>>,
    frozen: Arc<AtomicBool>,
}

fn carry(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if frozen.load(Ordering::Acquire) {
                    continue;
                }
                if to.write_all(buf.get(..n).unwrap_or_default()).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Relay {
    /// Start relaying to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let frozen = Arc::new(AtomicBool::new(false));
        let (list, freeze) = (open.clone(), frozen.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let clones = (client.try_clone(), server.try_clone());
                let (Ok(client2), Ok(server2)) = clones else {
                    continue;
                };
                if let Ok(mut l) = list.lock() {
                    l.extend(client.try_clone().ok());
                    l.extend(server.try_clone().ok());
                }
                let (f1, f2) = (freeze.clone(), freeze.clone());
                thread::spawn(move || carry(client, server2, f1));
                thread::spawn(move || carry(server, client2, f2));
            }
        });
        Self { addr, open, frozen }
    }

    /// End every connection through the relay, both ways, at once (the relay keeps accepting).
    pub fn cut(&self) {
        if let Ok(mut l) = self.open.lock() {
            for s in l.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Stop (or, with `false`, resume) carrying bytes, keeping the connections open.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::Release);
    }
}
