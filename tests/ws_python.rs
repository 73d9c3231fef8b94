//! lunanet's WebSocket against an independent implementation: Python
//! `websockets` (client and server) plus raw-socket frames for what a correct
//! library refuses to send. Skipped, with a SKIPPED line, when python3 or
//! `websockets` is missing (CI installs both).
#![cfg(feature = "websocket")]

mod ws_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lunanet::websocket::{WebSocketOptions, WebSocketPeer, WsState};
use lunanet::{Reactor, WriteMode};
use ws_common::{Event, LONG, parse_kv, python_with_websockets, script, spawn_echo};

/// Runs one client case against `port`; returns its key=value output.
#[track_caller]
fn run_case(python: &str, case: &str, port: u16) -> std::collections::HashMap<String, String> {
    let out = Command::new(python)
        .arg(script("client_cases.py"))
        .arg(case)
        .arg(port.to_string())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python case {case} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    parse_kv(&stdout)
}

macro_rules! python_or_skip {
    () => {
        match python_with_websockets() {
            Some(p) => p,
            None => {
                eprintln!("SKIPPED: python3 with the `websockets` package not found");
                return;
            }
        }
    };
}

#[test]
fn python_client_echo_text_binary_large_and_empty() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "echo", server.port);
    assert_eq!(kv["ok"], "1");
    assert_eq!(
        server.next_event(),
        Event::Opened {
            protocol: String::new(),
            url: "/echo?x=1".into()
        }
    );
    // The client closed normally (1000).
    assert_eq!(server.next_close().0, 1000);
}

#[test]
fn python_client_fragmented_messages_are_reassembled() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    assert_eq!(run_case(&python, "fragmented", server.port)["ok"], "1");
    assert_eq!(server.next_close().0, 1000);
}

#[test]
fn python_client_ping_gets_a_pong() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "ping", server.port);
    assert_eq!(kv["ok"], "1");
    eprintln!("pong round trip: {} ms", kv["pong_ms"]);
}

#[test]
fn python_client_close_codes_both_ways() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    // Client-initiated: the server reports the client's code and reason and
    // answers with the same code (RFC 6455 §5.5.1).
    let kv = run_case(&python, "client_close", server.port);
    assert_eq!(kv["reply_code"], "4001");
    assert_eq!(server.next_close(), (4001, "bye".to_owned()));
    // Server-initiated.
    let kv = run_case(&python, "server_close", server.port);
    assert_eq!(kv["code"], "4002");
    assert_eq!(kv["reason"], "server bye");
    // The server's close_code is the client's reply (websockets echoes it).
    assert_eq!(server.next_close().0, 4002);
}

#[test]
fn oversized_message_is_refused_with_1009() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "oversize", server.port);
    assert_eq!(kv["code"], "1009", "{kv:?}");
    let (code, reason) = server.next_close();
    assert_eq!(code, 1009);
    assert!(reason.contains("70000"), "{reason}");
    // A header announcing 2^62 bytes: refused from the header, no allocation
    // (the test would abort on an allocation failure otherwise).
    let kv = run_case(&python, "oversized_frame_header", server.port);
    assert_eq!(kv["code"], "1009");
    assert_eq!(server.next_close().0, 1009);
}

#[test]
fn invalid_utf8_text_is_refused_with_1007() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "bad_utf8", server.port);
    assert_eq!(kv["code"], "1007", "{kv:?}");
    assert_eq!(server.next_close().0, 1007);
    let kv = run_case(&python, "bad_utf8_fragmented", server.port);
    assert_eq!(kv["code"], "1007", "{kv:?}");
    assert_eq!(server.next_close().0, 1007);
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "unmasked", server.port);
    assert_eq!(kv["code"], "1002", "{kv:?}");
    let (code, reason) = server.next_close();
    assert_eq!(code, 1002);
    assert!(reason.contains("protocol"), "{reason}");
}

#[test]
fn stalled_handshake_times_out() {
    let python = python_or_skip!();
    let mut options = WebSocketOptions::default();
    options.handshake_timeout = Duration::from_millis(300);
    let server = spawn_echo(options, None);
    let kv = run_case(&python, "stall", server.port);
    let after: f64 = kv["closed_after_s"].parse().expect("seconds");
    // The helper hands the connection to accept_stream after one timeout of
    // waiting for a complete head, so the close comes after 1-2 timeouts.
    assert!((0.25..10.0).contains(&after), "closed after {after} s");
    let (code, reason) = server.next_close();
    assert_eq!(code, -1);
    assert!(reason.contains("timeout"), "{reason}");
}

#[test]
fn plain_http_request_gets_400() {
    let python = python_or_skip!();
    let server = spawn_echo(WebSocketOptions::default(), None);
    let kv = run_case(&python, "not_websocket", server.port);
    assert_eq!(kv["status"], "400");
    assert_eq!(server.next_close().0, -1);
}

/// A Python `websockets` server, stopped when dropped.
struct PyServer {
    child: std::process::Child,
    port: u16,
}

impl PyServer {
    fn start(python: &str) -> PyServer {
        let mut child = Command::new(python)
            .arg(script("echo_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the python server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .strip_prefix("port=")
            .and_then(|p| p.parse().ok())
            .expect("port=N");
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // EOF: the script shuts down
        let deadline = Instant::now() + LONG;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `reactor` and processes `peer` until `pred` holds.
#[track_caller]
fn drive(
    reactor: &Reactor,
    peer: &mut WebSocketPeer,
    what: &str,
    mut pred: impl FnMut(&mut WebSocketPeer) -> bool,
) {
    let deadline = Instant::now() + LONG;
    loop {
        peer.process();
        if pred(peer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {peer:?}"
        );
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
    }
}

#[track_caller]
fn next_packet(reactor: &Reactor, peer: &mut WebSocketPeer) -> (Vec<u8>, bool) {
    let mut got = None;
    drive(reactor, peer, "a packet", |p| {
        got = p.get_packet().ok();
        got.is_some()
    });
    (got.unwrap_or_default(), peer.was_string_packet())
}

#[test]
fn lunanet_client_against_python_server() {
    let python = python_or_skip!();
    let py = PyServer::start(&python);
    let reactor = Reactor::new().expect("reactor");
    let mut options = WebSocketOptions::default();
    options.supported_protocols = vec!["other".into(), "chat".into()];
    let url = format!("ws://localhost:{}/game?room=1", py.port);
    let mut ws =
        WebSocketPeer::connect_to_url_with(&reactor, &url, &options, None).expect("connect");
    drive(&reactor, &mut ws, "open", |p| {
        p.ready_state() != WsState::Connecting
    });
    assert_eq!(ws.ready_state(), WsState::Open, "{}", ws.close_reason());
    // websockets picks the first of its own list the client offered.
    assert_eq!(ws.selected_protocol(), "chat");

    ws.send(b"\x00bin\xff", WriteMode::Binary).expect("send");
    assert_eq!(
        next_packet(&reactor, &mut ws),
        (b"\x00bin\xff".to_vec(), false)
    );
    ws.send_text("texte é").expect("send");
    assert_eq!(
        next_packet(&reactor, &mut ws),
        ("texte é".as_bytes().to_vec(), true)
    );
    // A 40 000-byte message: masked by the client through tungstenite.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(&big, WriteMode::Binary).expect("send big");
    assert_eq!(next_packet(&reactor, &mut ws).0, big);
    // Fragments from the server arrive as one message.
    ws.send_text("fragment-me").expect("send");
    assert_eq!(next_packet(&reactor, &mut ws), (b"abc".to_vec(), true));
    // A server ping is answered (the server replies "pinged" after its ping).
    ws.send_text("ping-me").expect("send");
    assert_eq!(next_packet(&reactor, &mut ws), (b"pinged".to_vec(), true));
    // Server-initiated close with a code and reason.
    ws.send_text("close-me").expect("send");
    drive(&reactor, &mut ws, "closed", |p| {
        p.ready_state() == WsState::Closed
    });
    assert_eq!(ws.close_code(), 4003);
    assert_eq!(ws.close_reason(), "py bye");
    assert_eq!(ws.get_packet(), Err(lunanet::SocketError::FileEof));

    // Client-initiated close: the server answers with our code.
    let mut ws =
        WebSocketPeer::connect_to_url_with(&reactor, &url, &options, None).expect("connect");
    drive(&reactor, &mut ws, "open", |p| {
        p.ready_state() == WsState::Open
    });
    ws.close(4004, "client done");
    assert_eq!(ws.ready_state(), WsState::Closing);
    assert_eq!(
        ws.send_text("late"),
        Err(lunanet::SocketError::ConnectionClosed)
    );
    drive(&reactor, &mut ws, "closed", |p| {
        p.ready_state() == WsState::Closed
    });
    assert_eq!(ws.close_code(), 4004);
}

#[test]
fn lunanet_client_refuses_a_server_without_the_protocol() {
    let python = python_or_skip!();
    let py = PyServer::start(&python);
    let reactor = Reactor::new().expect("reactor");
    let mut options = WebSocketOptions::default();
    options.supported_protocols = vec!["nope".into()];
    let url = format!("ws://127.0.0.1:{}/", py.port);
    let mut ws =
        WebSocketPeer::connect_to_url_with(&reactor, &url, &options, None).expect("connect");
    drive(&reactor, &mut ws, "closed", |p| {
        p.ready_state() == WsState::Closed
    });
    assert_eq!(ws.close_code(), -1);
    let why = ws.close_reason();
    assert!(why.contains("subprotocol") || why.contains("400"), "{why}");
}
