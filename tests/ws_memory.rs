//! Heap cost of WebSocket server peers, lunanet next to tokio-tungstenite
//! (`current_thread`), measured with a counting global allocator:
//!
//! 1. heap bytes per idle open peer: every byte the process heap gained
//!    between "server listening" and "N clients upgraded, each echoed one
//!    64 B message, then idle for 2.5 s" (lunanet's reactor releases empty
//!    buffers about 1 s after a peer goes quiet), divided by N. It includes
//!    the reactor's slab and the application's `Vec` of peers (lunanet) or
//!    the spawned tasks (tokio);
//! 2. heap allocations per echoed 64 B binary message in steady state (one
//!    client, 20 000 round trips).
//!
//! The clients are raw blocking `std::net::TcpStream`s framing on the stack,
//! so they allocate nothing themselves; each server runs on its own thread.
//!
//! Run alone to read the figures:
//! `cargo test --release --features websocket --test ws_memory -- --nocapture`
#![cfg(feature = "websocket")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use lunanet::websocket::{WebSocketOptions, WebSocketPeer};
use lunanet::{Reactor, StreamPeerTcp, TcpServer, WriteMode};

#[path = "util/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, Totals};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Both servers measured in one test, one after the other: the counters are
/// process-wide, so nothing else may run meanwhile.
static SERIAL: Mutex<()> = Mutex::new(());

const IDLE_PEERS: usize = 200;
const ECHOES: u64 = 20_000;
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A blocking client that upgrades and frames on the stack.
fn client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = [0u8; 256];
    let mut w = &mut req[..];
    write!(
        w,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("request fits");
    let len = 256 - w.len();
    s.write_all(&req[..len]).expect("send request");
    // Read the response byte by byte up to the blank line (as Godot does), so
    // nothing after it is consumed.
    let mut head = [0u8; 1024];
    let mut n = 0;
    while n < 4 || &head[n - 4..n] != b"\r\n\r\n" {
        assert!(n < head.len(), "response too long");
        s.read_exact(&mut head[n..n + 1]).expect("response");
        n += 1;
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "not upgraded");
    s
}

/// One masked 64 B binary frame out, its echo back.
fn echo(s: &mut TcpStream, seq: u64) {
    let mut frame = [0u8; 2 + 4 + 64];
    frame[0] = 0x82;
    frame[1] = 0x80 | 64;
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame[2..6].copy_from_slice(&mask);
    let mut payload = [0u8; 64];
    payload[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in payload.iter().enumerate() {
        frame[6 + i] = b ^ mask[i % 4];
    }
    s.write_all(&frame).expect("send frame");
    let mut back = [0u8; 2 + 64];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back[..2], [0x82, 64], "echo header");
    assert_eq!(back[2..], payload, "echo payload");
}

struct Figures {
    idle_bytes_per_peer: f64,
    allocs_per_echo: f64,
}

/// Measures a server started by `start` (which sends its port, then serves
/// until the flag is set).
fn measure(
    name: &str,
    start: impl FnOnce(mpsc::Sender<u16>, Arc<AtomicBool>) + Send + 'static,
) -> Figures {
    let (port_tx, port_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::spawn(move || start(port_tx, stop2));
    let port = port_rx.recv_timeout(Duration::from_secs(20)).expect("port");
    let mut clients: Vec<TcpStream> = Vec::with_capacity(IDLE_PEERS);

    let before = Totals::now().live;
    for i in 0..IDLE_PEERS {
        let mut c = client(port);
        echo(&mut c, i as u64);
        clients.push(c);
    }
    // Idle: let the servers settle (lunanet's idle sweep runs about 1 s after
    // a peer's last activity).
    std::thread::sleep(Duration::from_millis(2500));
    let after = Totals::now().live;
    let idle = (after - before) as f64 / IDLE_PEERS as f64;

    // Steady-state echoes through the first connection.
    let c = &mut clients[0];
    for i in 0..1000 {
        echo(c, i);
    }
    let a0 = Totals::now();
    let t0 = Instant::now();
    for i in 0..ECHOES {
        echo(c, i);
    }
    let elapsed = t0.elapsed();
    let d = Totals::now().since(a0);
    let allocs = (d.allocs + d.reallocs) as f64 / ECHOES as f64;
    println!(
        "{name}: heap per idle open peer {idle:.0} B ({IDLE_PEERS} peers); \
         allocations per echoed 64 B message {allocs:.2} ({ECHOES} round trips in {elapsed:.2?})"
    );
    drop(clients);
    stop.store(true, Relaxed);
    thread.join().expect("server thread");
    Figures {
        idle_bytes_per_peer: idle,
        allocs_per_echo: allocs,
    }
}

fn lunanet_server(port_tx: mpsc::Sender<u16>, stop: Arc<AtomicBool>) {
    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let options = WebSocketOptions::default();
    let mut peers: Vec<WebSocketPeer<StreamPeerTcp>> = Vec::with_capacity(IDLE_PEERS);
    port_tx.send(server.local_port()).expect("port");
    let end = Instant::now() + Duration::from_secs(120);
    while !stop.load(Relaxed) && Instant::now() < end {
        reactor.poll(Some(Duration::from_millis(50))).expect("poll");
        while let Some(tcp) = server.take_connection() {
            peers.push(WebSocketPeer::accept_stream(tcp, &options));
        }
        for peer in &mut peers {
            peer.process();
            while let Ok(packet) = peer.get_packet() {
                peer.send(&packet, WriteMode::Binary).expect("echo");
            }
        }
    }
}

fn tokio_server(
    port_tx: mpsc::Sender<u16>,
    stop: Arc<AtomicBool>,
    config: Option<tokio_tungstenite::tungstenite::protocol::WebSocketConfig>,
) {
    use futures_util::{SinkExt, StreamExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        port_tx
            .send(listener.local_addr().expect("addr").port())
            .expect("port");
        let end = Instant::now() + Duration::from_secs(120);
        while !stop.load(Relaxed) && Instant::now() < end {
            let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
            let Ok(Ok((stream, _))) = accepted else {
                continue;
            };
            stream.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, config).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn heap_per_idle_peer_and_allocations_per_echo() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lunanet = measure("lunanet WebSocketPeer", lunanet_server);
    let tokio_default = measure("tokio-tungstenite (default config)", |p, s| {
        tokio_server(p, s, None)
    });
    let small = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let tokio_small = measure("tokio-tungstenite (read buffer 4 KiB)", move |p, s| {
        tokio_server(p, s, Some(small))
    });
    assert!(
        lunanet.idle_bytes_per_peer <= 4096.0,
        "an idle open WebSocket peer costs {:.0} B (target <= 4 KiB)",
        lunanet.idle_bytes_per_peer
    );
    assert!(
        lunanet.idle_bytes_per_peer < tokio_small.idle_bytes_per_peer,
        "lunanet {:.0} B vs tokio-tungstenite (4 KiB buffer) {:.0} B",
        lunanet.idle_bytes_per_peer,
        tokio_small.idle_bytes_per_peer
    );
    // One allocation is the packet `get_packet` hands to the application.
    assert!(
        lunanet.allocs_per_echo <= 2.0,
        "{:.2} allocations per echo",
        lunanet.allocs_per_echo
    );
    let _ = tokio_default.allocs_per_echo;
}
