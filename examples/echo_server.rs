//! Echo server: every byte a client sends comes back.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7777 [--seconds N]
//! # in another terminal:
//! nc 127.0.0.1 7777
//! ```
//!
//! One thread and one reactor serve every client. The loop sleeps in
//! `Reactor::poll` until something happens and then visits only the peers that
//! changed (the ready set). `RUST_LOG=debug` shows connections coming and going.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lunanet::{HandleId, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};

struct Args {
    addr: std::net::SocketAddr,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7777".parse().expect("default address"),
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "-h" | "--help" => {
                return Err("usage: echo_server [--addr IP:PORT] [--seconds N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = parse_args().map_err(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })?;

    let reactor = Reactor::new()?;
    let mut server = TcpServer::new(&reactor);
    server.listen(args.addr.port(), args.addr.ip())?;
    log::info!("echoing on {}:{}", args.addr.ip(), server.local_port());

    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    let mut ready = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed: u64 = 0;
    let mut last_report = Instant::now();

    while stop_at.is_none_or(|t| Instant::now() < t) {
        reactor.poll(Some(Duration::from_millis(250)))?;
        while let Some(peer) = server.take_connection() {
            log::debug!("connection from {:?}", peer.remote_addr());
            peers.insert(peer.id().expect("connected peers have an id"), peer);
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some(peer) = peers.get_mut(&id) else {
                continue; // the server itself, or a peer already gone
            };
            echoed += echo(peer, &mut buf);
            if matches!(peer.status(), Status::None | Status::Error) {
                log::debug!("{:?} closed ({:?})", peer.remote_addr(), peer.error());
                peers.remove(&id);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            log::info!("{} clients, {} bytes echoed", peers.len(), echoed);
            last_report = Instant::now();
        }
    }
    log::info!("done: {} bytes echoed", echoed);
    Ok(())
}

/// Moves what fits from the peer's input to its output; returns bytes echoed.
/// Input that does not fit in the write queue stays buffered (and TCP
/// backpressure slows the client) until the queue drains.
fn echo(peer: &mut StreamPeerTcp, buf: &mut [u8]) -> u64 {
    let mut total = 0;
    loop {
        let room = buf.len().min(1024 * 1024 - peer.pending_write_bytes());
        let n = peer.peek_data(&mut buf[..room]);
        if n == 0 {
            return total;
        }
        match peer.put_partial_data(&buf[..n]) {
            Ok(0) => return total,
            Ok(sent) => {
                let _ = peer.get_data(&mut buf[..sent]); // consume what was queued
                total += sent as u64;
            }
            Err(SocketError::ConnectionClosed) | Err(_) => return total,
        }
    }
}
