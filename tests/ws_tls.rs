//! `wss://`: WebSocket over lunanet's TLS (features `websocket` and `tls`),
//! lunanet client against lunanet server, and Python `websockets` (with
//! Python's `ssl`) against the lunanet server. Certificates come from rcgen.
#![cfg(all(feature = "websocket", feature = "tls"))]

mod ws_common;

use std::process::Command;
use std::time::{Duration, Instant};

use lunanet::tls::{StreamPeerTls, TlsOptions};
use lunanet::websocket::{WebSocketOptions, WebSocketPeer, WsState};
use lunanet::{Reactor, StreamPeerTcp, TcpServer, WriteMode};
use ws_common::{LONG, parse_kv, python_with_websockets, script};

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn cert() -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    Cert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

fn server_tls(c: &Cert) -> TlsOptions {
    TlsOptions::server(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).expect("server options")
}

#[test]
fn wss_lunanet_client_and_server() {
    let c = cert();
    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let url = format!("wss://localhost:{}/secure?x=1", server.local_port());
    let client_tls = TlsOptions::client_with_roots(c.cert_pem.as_bytes()).expect("client options");
    let mut client =
        WebSocketPeer::connect_to_url(&reactor, &url, Some(client_tls)).expect("connect");
    let server_opts = server_tls(&c);
    let mut accepted: Option<WebSocketPeer<StreamPeerTls<StreamPeerTcp>>> = None;
    let ws_options = WebSocketOptions::default();

    let deadline = Instant::now() + LONG;
    let mut step = 0;
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    while client.ready_state() != WsState::Closed {
        assert!(Instant::now() < deadline, "step {step}: {client:?}");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        if let Some(tcp) = server.take_connection() {
            let tls = StreamPeerTls::accept_stream(tcp, &server_opts).expect("tls accept");
            accepted = Some(WebSocketPeer::accept_stream(tls, &ws_options));
        }
        if let Some(s) = accepted.as_mut() {
            s.process();
            while let Ok(p) = s.get_packet() {
                let mode = if s.was_string_packet() {
                    WriteMode::Text
                } else {
                    WriteMode::Binary
                };
                if p == b"bye" {
                    s.close(4011, "secure bye");
                } else {
                    s.send(&p, mode).expect("echo");
                }
            }
        }
        client.process();
        match step {
            0 if client.ready_state() == WsState::Open => {
                client.send_text("over tls").expect("send");
                step = 1;
            }
            1 => {
                if let Ok(p) = client.get_packet() {
                    assert_eq!(p, b"over tls");
                    assert!(client.was_string_packet());
                    client.send(&big, WriteMode::Binary).expect("send big");
                    step = 2;
                }
            }
            2 => {
                if let Ok(p) = client.get_packet() {
                    assert_eq!(p, big);
                    client.send(b"bye", WriteMode::Binary).expect("send");
                    step = 3;
                }
            }
            _ => {}
        }
    }
    assert_eq!(step, 3);
    assert_eq!(client.close_code(), 4011, "{}", client.close_reason());
    assert_eq!(client.close_reason(), "secure bye");
    let s = accepted.expect("accepted");
    assert_eq!(s.requested_url(), "/secure?x=1");
}

#[test]
fn wss_client_refuses_an_untrusted_certificate() {
    let c = cert();
    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let url = format!("wss://localhost:{}/", server.local_port());
    // Default roots: the self-signed certificate is not trusted.
    let mut client = WebSocketPeer::connect_to_url(&reactor, &url, None).expect("connect");
    let server_opts = server_tls(&c);
    let mut accepted = None;
    let deadline = Instant::now() + LONG;
    while client.ready_state() != WsState::Closed {
        assert!(Instant::now() < deadline, "{client:?}");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        if let Some(tcp) = server.take_connection() {
            let tls = StreamPeerTls::accept_stream(tcp, &server_opts).expect("tls accept");
            accepted = Some(WebSocketPeer::accept_stream(
                tls,
                &WebSocketOptions::default(),
            ));
        }
        if let Some(s) = accepted.as_mut() {
            s.process();
        }
        client.process();
    }
    assert_eq!(client.close_code(), -1);
}

#[test]
fn wss_python_client_against_lunanet_server() {
    let Some(python) = python_with_websockets() else {
        eprintln!("SKIPPED: python3 with the `websockets` package not found");
        return;
    };
    let c = cert();
    let dir = std::env::temp_dir().join(format!("lunanet-wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &c.cert_pem).expect("write ca");
    let server_opts = server_tls(&c);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (code_tx, code_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let reactor = Reactor::new().expect("reactor");
        let mut server = TcpServer::new(&reactor);
        server.listen(0, "127.0.0.1").expect("listen");
        port_tx.send(server.local_port()).expect("port");
        let mut peers: Vec<WebSocketPeer<StreamPeerTls<StreamPeerTcp>>> = Vec::new();
        let end = Instant::now() + LONG;
        while done_rx.try_recv().is_err() && Instant::now() < end {
            reactor.poll(Some(Duration::from_millis(10))).expect("poll");
            while let Some(tcp) = server.take_connection() {
                let tls = StreamPeerTls::accept_stream(tcp, &server_opts).expect("accept");
                peers.push(WebSocketPeer::accept_stream(
                    tls,
                    &WebSocketOptions::default(),
                ));
            }
            for p in &mut peers {
                p.process();
                while let Ok(m) = p.get_packet() {
                    if m == b"close:4010:tls bye" {
                        p.close(4010, "tls bye");
                    } else {
                        let mode = if p.was_string_packet() {
                            WriteMode::Text
                        } else {
                            WriteMode::Binary
                        };
                        p.send(&m, mode).expect("echo");
                    }
                }
            }
            peers.retain(|p| {
                if p.ready_state() == WsState::Closed {
                    let _ = code_tx.send(p.close_code());
                    false
                } else {
                    true
                }
            });
        }
    });
    let port: u16 = port_rx.recv_timeout(LONG).expect("port");
    let out = Command::new(&python)
        .arg(script("client_cases.py"))
        .args(["wss_echo", &port.to_string()])
        .env("LUNANET_CA", &ca)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kv = parse_kv(&stdout);
    assert_eq!(kv["code"], "4010");
    assert_eq!(kv["reason"], "tls bye");
    assert_eq!(code_rx.recv_timeout(LONG).expect("server close"), 4010);
    let _ = done_tx.send(());
    thread.join().expect("server thread");
    let _ = std::fs::remove_dir_all(&dir);
}
