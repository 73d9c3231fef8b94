//! Helpers shared by the TLS tests: certificates from rcgen, written to a
//! private temporary directory for the external tools, and bounded waits.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus};
use lunanet::{Reactor, StreamPeerTcp, TcpServer};

/// Generous bound for anything that should take milliseconds on loopback.
pub const LONG: Duration = Duration::from_secs(20);

/// A certificate and its key, as PEM text and as files.
pub struct Certs {
    pub cert_pem: String,
    pub key_pem: String,
    pub dir: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh self-signed certificate for `names`, written to a new directory.
pub fn certs(names: &[&str]) -> Certs {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
    write_certs(ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// Writes PEM text to a private temporary directory.
pub fn write_certs(cert_pem: String, key_pem: String) -> Certs {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lunanet-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, &key_pem).expect("write key");
    Certs {
        cert_pem,
        key_pem,
        dir,
        cert_path,
        key_path,
    }
}

impl Certs {
    pub fn server_options(&self) -> TlsOptions {
        TlsOptions::server(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).expect("server opts")
    }
    pub fn client_options(&self) -> TlsOptions {
        TlsOptions::client_with_roots(self.cert_pem.as_bytes()).expect("client opts")
    }
}

/// Whether an external program can be run; prints a SKIPPED line if not.
pub fn have(program: &str, test: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        println!("SKIPPED {test}: `{program}` is not installed");
    }
    found
}

/// Polls the reactor until `pred` holds; panics with `what` after `LONG`.
#[track_caller]
pub fn poll_until(reactor: &Reactor, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        reactor
            .poll(Some(Duration::from_millis(10)))
            .expect("reactor poll");
    }
}

/// A listening TCP server on 127.0.0.1, port chosen by the OS.
pub fn listen(reactor: &Reactor) -> TcpServer {
    let mut server = TcpServer::new(reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    server
}

/// A handshaken (client, server) TLS pair in one reactor.
#[track_caller]
pub fn tls_pair(
    reactor: &Reactor,
    server_options: &TlsOptions,
    client_options: TlsOptions,
    name: &str,
) -> (StreamPeerTls, StreamPeerTls) {
    let mut server = listen(reactor);
    let mut tcp = StreamPeerTcp::new(reactor);
    tcp.connect_to_host("127.0.0.1", server.local_port())
        .expect("connect");
    let mut client = StreamPeerTls::connect_to_stream(tcp, name, client_options).expect("client");
    let mut accepted: Option<StreamPeerTls> = None;
    poll_until(reactor, "TLS handshake", || {
        if accepted.is_none()
            && let Some(tcp) = server.take_connection()
        {
            accepted = Some(StreamPeerTls::accept_stream(tcp, server_options).expect("accept"));
        }
        let _ = client.process();
        if let Some(a) = accepted.as_mut() {
            let _ = a.process();
        }
        client.status() != TlsStatus::Handshaking
            && accepted
                .as_ref()
                .is_some_and(|a| a.status() != TlsStatus::Handshaking)
    });
    (client, accepted.expect("accepted"))
}
