//! Echo server: every byte a client sends comes back.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:7777 [--seconds N] [--threads N]
//! # in another terminal:
//! nc 127.0.0.1 7777
//! ```
//!
//! One thread and one reactor serve every client. The loop sleeps in
//! `Reactor::poll` until something happens and then visits only the peers that
//! changed (the ready set). `RUST_LOG=debug` shows connections coming and going.
//!
//! `--threads N` runs N such loops, each with its own reactor, all listening
//! on the same port (SO_REUSEPORT: the kernel spreads new connections over
//! them by a hash of the addresses). That needs `Config::reuse_port`, which
//! lands with the core redesign; until then `--threads` above 1 is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{Config, HandleId, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};

/// Echo every byte back to its sender.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:7777")]
    addr: SocketAddr,
    /// Stop after this many seconds [default: run until killed]
    #[arg(long)]
    seconds: Option<u64>,
    /// Server threads, each with its own reactor, sharing the port
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let config = reactor_config(args.threads)?;
    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));

    // The first reactor binds (port 0 picks one); the others join its port.
    let first = Listener::bind(config.clone(), args.addr)?;
    let addr = SocketAddr::new(args.addr.ip(), first.server.local_port());
    log::info!("echoing on {addr} ({} thread(s))", args.threads);
    let mut threads = Vec::new();
    for i in 1..args.threads {
        let config = config.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("echo-{i}"))
                .spawn(move || -> Result<u64, String> {
                    let listener = Listener::bind(config, addr).map_err(|e| e.to_string())?;
                    listener.serve(stop_at).map_err(|e| e.to_string())
                })?,
        );
    }
    let mut echoed = first.serve(stop_at)?;
    for t in threads {
        echoed += t.join().map_err(|_| "an echo thread panicked")??;
    }
    log::info!("done: {echoed} bytes echoed");
    Ok(())
}

/// The reactor configuration for `threads` reactors on one port.
fn reactor_config(threads: u32) -> Result<Config, String> {
    // TODO(merge): reuse_port — once `Config::reuse_port` lands this whole
    // function is `Ok(Config::default().reuse_port(threads > 1))`.
    if threads > 1 {
        return Err(format!(
            "--threads {threads} needs Config::reuse_port (SO_REUSEPORT), \
             which this build of lunanet does not have yet"
        ));
    }
    Ok(Config::default())
}

/// One reactor and its listening server.
struct Listener {
    reactor: Reactor,
    server: TcpServer,
}

impl Listener {
    fn bind(config: Config, addr: SocketAddr) -> Result<Listener, SocketError> {
        let reactor = Reactor::with_config(config)?;
        let mut server = TcpServer::new(&reactor);
        server.listen(addr.port(), addr.ip())?;
        Ok(Listener { reactor, server })
    }

    /// The echo loop, until `stop_at`; returns the bytes echoed.
    fn serve(mut self, stop_at: Option<Instant>) -> Result<u64, SocketError> {
        // TODO(merge): PeerMap — `lunanet::PeerMap<StreamPeerTcp>` instead of
        // the HashMap once the core helper's PeerMap lands.
        let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
        let mut ready = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut echoed: u64 = 0;
        let mut last_report = Instant::now();

        while stop_at.is_none_or(|t| Instant::now() < t) {
            self.reactor.poll(Some(Duration::from_millis(250)))?;
            while let Some(peer) = self.server.take_connection() {
                log::debug!("connection from {:?}", peer.remote_addr());
                if let Some(id) = peer.id() {
                    peers.insert(id, peer);
                }
            }
            self.reactor.drain_ready(&mut ready);
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
        Ok(echoed)
    }
}

/// Moves what fits from the peer's input to its output; returns bytes echoed.
/// Input that does not fit in the write queue stays buffered (and TCP
/// backpressure slows the client) until the queue drains.
fn echo(peer: &mut StreamPeerTcp, buf: &mut [u8]) -> u64 {
    let mut total = 0;
    loop {
        let room = buf
            .len()
            .min((1024 * 1024usize).saturating_sub(peer.pending_write_bytes()));
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
