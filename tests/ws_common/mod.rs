//! Shared by the WebSocket tests: a lunanet WebSocket echo server on its own
//! thread (port 0, bounded by a deadline), which also serves one HTML page
//! for plain HTTP GETs, and helpers to find external clients.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lunanet::websocket::{
    HttpRequestKind, WebSocketOptions, WebSocketPeer, WsState, classify_request,
};
use lunanet::{Reactor, StreamPeerTcp, TcpServer, WriteMode};

/// Generous bound for anything that should take well under a second.
pub const LONG: Duration = Duration::from_secs(30);

/// What the server saw happen to one WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The upgrade completed.
    Opened { protocol: String, url: String },
    /// The peer reached `Closed`.
    Closed { code: i32, reason: String },
    /// A client sent the text `report:...` (a browser page's verdict).
    Report(String),
}

/// A running echo server.
pub struct EchoServer {
    pub port: u16,
    pub events: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Waits for the next event, at most `LONG`.
    #[track_caller]
    pub fn next_event(&self) -> Event {
        self.events.recv_timeout(LONG).expect("server event")
    }

    /// Waits for the next `Closed` event, skipping `Opened` ones.
    #[track_caller]
    pub fn next_close(&self) -> (i32, String) {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left).expect("a Closed event") {
                Event::Closed { code, reason } => return (code, reason),
                Event::Opened { .. } | Event::Report(_) => {}
            }
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts an echo server: each message comes back with the same type. Text
/// commands: `close:CODE:REASON` makes the server close with that code;
/// `big:N` makes it send an N-byte binary message of `0xAB`. A plain GET is
/// answered with `page` (when given) and the connection closed.
pub fn spawn_echo(options: WebSocketOptions, page: Option<String>) -> EchoServer {
    let (port_tx, port_rx) = mpsc::channel();
    let (ev_tx, events) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let reactor = Reactor::new().expect("reactor");
        let mut server = TcpServer::new(&reactor);
        server.listen(0, "127.0.0.1").expect("listen");
        port_tx.send(server.local_port()).expect("port");
        run_echo(
            &reactor,
            &mut server,
            &options,
            page.as_deref(),
            &ev_tx,
            &stop2,
        );
    });
    let port = port_rx.recv_timeout(LONG).expect("server port");
    EchoServer {
        port,
        events,
        stop,
        thread: Some(thread),
    }
}

fn run_echo(
    reactor: &Reactor,
    server: &mut TcpServer,
    options: &WebSocketOptions,
    page: Option<&str>,
    events: &mpsc::Sender<Event>,
    stop: &AtomicBool,
) {
    // Connections whose first request has not arrived yet.
    let mut fresh: Vec<(StreamPeerTcp, Instant)> = Vec::new();
    let mut peers: Vec<(WebSocketPeer<StreamPeerTcp>, bool)> = Vec::new();
    // Safety net: a test that forgets to stop the server does not hang CI.
    let end = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        reactor
            .poll(Some(Duration::from_millis(5)))
            .expect("reactor poll");
        while let Some(tcp) = server.take_connection() {
            fresh.push((tcp, Instant::now()));
        }
        let mut i = 0;
        while i < fresh.len() {
            let mut head = [0u8; 2048];
            let n = fresh[i].0.peek_data(&mut head);
            match classify_request(&head[..n]) {
                HttpRequestKind::Incomplete if fresh[i].1.elapsed() < options.handshake_timeout => {
                    i += 1;
                }
                HttpRequestKind::Plain { head_len, .. } if page.is_some() => {
                    let (mut tcp, _) = fresh.swap_remove(i);
                    let mut sink = vec![0u8; head_len];
                    let _ = tcp.get_data(&mut sink);
                    let body = page.unwrap_or_default();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tcp.put_data(reply.as_bytes());
                    tcp.disconnect_from_host();
                }
                // Upgrades, and everything else (which the WebSocket layer
                // refuses or times out, as the tests expect).
                _ => {
                    let (tcp, _) = fresh.swap_remove(i);
                    peers.push((WebSocketPeer::accept_stream(tcp, options), false));
                }
            }
        }
        for (peer, opened) in &mut peers {
            peer.process();
            if !*opened && peer.ready_state() != WsState::Connecting {
                *opened = true;
                if peer.ready_state() == WsState::Open {
                    let _ = events.send(Event::Opened {
                        protocol: peer.selected_protocol().to_owned(),
                        url: peer.requested_url().to_owned(),
                    });
                }
            }
            while let Ok(packet) = peer.get_packet() {
                let text = peer.was_string_packet();
                let command = if text {
                    std::str::from_utf8(&packet).ok()
                } else {
                    None
                };
                if let Some(rest) = command.and_then(|c| c.strip_prefix("report:")) {
                    let _ = events.send(Event::Report(rest.to_owned()));
                } else if let Some(rest) = command.and_then(|c| c.strip_prefix("close:")) {
                    let (code, reason) = rest.split_once(':').unwrap_or((rest, ""));
                    peer.close(code.parse().unwrap_or(1000), reason);
                } else if let Some(n) = command.and_then(|c| c.strip_prefix("big:")) {
                    let n: usize = n.parse().unwrap_or(0);
                    let _ = peer.send(&vec![0xAB; n], WriteMode::Binary);
                } else {
                    let mode = if text {
                        WriteMode::Text
                    } else {
                        WriteMode::Binary
                    };
                    // Backpressure would drop an echo: the tests keep far
                    // below the outbound buffer, so a failure is a bug.
                    if let Err(e) = peer.send(&packet, mode)
                        && peer.ready_state() == WsState::Open
                    {
                        panic!("echo failed: {e}");
                    }
                }
            }
            peer.process();
        }
        peers.retain(|(peer, _)| {
            if peer.ready_state() == WsState::Closed {
                let _ = events.send(Event::Closed {
                    code: peer.close_code(),
                    reason: peer.close_reason().to_owned(),
                });
                false
            } else {
                true
            }
        });
    }
}

/// `python3` with the `websockets` package, or `None` (the test then prints
/// a SKIPPED line).
pub fn python_with_websockets() -> Option<String> {
    let ok = Command::new("python3")
        .args(["-c", "import websockets, sys; sys.exit(0)"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| "python3".to_owned())
}

/// Path of a helper script in `tests/ws_scripts/`.
pub fn script(name: &str) -> String {
    format!("{}/tests/ws_scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Reads a `key=value` line protocol from a helper's stdout.
pub fn parse_kv(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Shared lock so tests that start heavy external processes (Chromium) do
/// not run them all at once on a 2-core machine.
pub static HEAVY: Mutex<()> = Mutex::new(());
