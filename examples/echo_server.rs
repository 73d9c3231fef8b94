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
//! changed (the ready set). Once a second it logs the reactor's counters
//! (`Reactor::stats`), and each client that leaves with its own
//! (`StreamPeerTcp::stats`); `RUST_LOG=debug` also shows clients arriving.
//!
//! `--threads N` runs N such loops, each with its own reactor, all listening
//! on the same port (SO_REUSEPORT: the kernel spreads new connections over
//! them by a hash of the addresses, see `docs/many-cores.md`). The default is
//! one thread per core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{Config, PeerMap, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};

#[path = "common/stats_log.rs"]
mod stats_log;

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
    /// [default: number of cores]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(cores);
    // Several reactors can only share the port with SO_REUSEPORT.
    let config = Config::default().reuse_port(threads > 1);
    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));

    // The first reactor binds (port 0 picks one); the others join its port.
    let first = Listener::bind(config.clone(), args.addr)?;
    let addr = SocketAddr::new(args.addr.ip(), first.server.local_port());
    log::info!("echoing on {addr} ({threads} thread(s))");
    let mut workers = Vec::new();
    for i in 1..threads {
        let config = config.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("echo-{i}"))
                .spawn(move || -> Result<u64, String> {
                    let listener = Listener::bind(config, addr).map_err(|e| e.to_string())?;
                    listener.serve(stop_at).map_err(|e| e.to_string())
                })?,
        );
    }
    let mut echoed = first.serve(stop_at)?;
    for t in workers {
        echoed += t.join().map_err(|_| "an echo thread panicked")??;
    }
    log::info!("done: {echoed} bytes echoed");
    Ok(())
}

/// The number of cores the OS lets this process use (1 if it cannot tell).
fn cores() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1024).min(1024))
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
        // PeerMap: the peer's id indexes a vector (no hashing per event).
        let mut peers: PeerMap<StreamPeerTcp> = PeerMap::new();
        let mut ready = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes the write queue can hold (`Config::write_buffer_limit`).
        let write_limit = self.reactor.config().write_buffer_limit;
        let mut echoed: u64 = 0;
        let mut stats = stats_log::StatsLog::new(Duration::from_secs(1));

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
                let Some(peer) = peers.get_mut(id) else {
                    continue; // the server itself, or a peer already gone
                };
                let (bytes, input_ended) = echo(peer, &mut buf, write_limit);
                echoed += bytes;
                if !input_ended {
                    continue; // still open: its status only changes when reading fails
                }
                match peer.status() {
                    Status::None => stats_log::peer_left(peer, "closed"),
                    Status::Error => stats_log::peer_left(peer, &format!("{:?}", peer.error())),
                    Status::Connecting | Status::Connected => continue,
                }
                peers.remove(id);
            }
            stats.maybe_log(&self.reactor);
        }
        Ok(echoed)
    }
}

/// Moves what fits from the peer's input to its output: takes at most as many
/// bytes as the write queue has room for, so that putting them back cannot be
/// refused and no byte is dropped. Input that does not fit stays buffered (and
/// TCP backpressure slows the client) until the queue drains. Returns the
/// bytes echoed and whether reading failed (end of stream or an error: only
/// then is the status worth a look).
fn echo(peer: &mut StreamPeerTcp, buf: &mut [u8], write_limit: usize) -> (u64, bool) {
    let mut total = 0;
    loop {
        let room = write_limit.saturating_sub(peer.pending_write_bytes());
        let want = buf.len().min(room);
        if want == 0 {
            return (total, false); // back in the ready set once the output flushed
        }
        let n = match peer.get_partial_data(&mut buf[..want]) {
            Ok(0) => return (total, false),
            Ok(n) => n,
            Err(_) => return (total, true), // closed or failed: the status says which
        };
        if peer.put_data(&buf[..n]).is_err() {
            return (total, true); // closed or failed since the last pass
        }
        total += n as u64;
        if n < want {
            return (total, false); // took everything buffered
        }
    }
}
