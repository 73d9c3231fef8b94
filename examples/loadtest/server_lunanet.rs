//! The server under test for `--impl lunanet`: a `TcpServer` and the ready set
//! of one `Reactor`, on the calling thread.
//!
//! Echo (ping-pong, bulk): sleep in `reactor.poll`, take new connections,
//! visit only the peers in the ready set, and for each move what fits from its
//! input to its output: `get_partial_data` into one reusable buffer, at most
//! as many bytes as the peer's write queue has room for, then `put_data` of
//! exactly those bytes (so it cannot be refused and no byte is ever dropped).
//! What does not fit stays in the peer's read buffer; when that is full the
//! reactor stops reading the socket (TCP backpressure), and the peer comes
//! back in the ready set once its output flushed.
//!
//! Broadcast: the default config (coalescing); at each tick, `put_data` of
//! each 32-byte record to every peer (K calls per peer, as a game would send
//! K messages), then `reactor.poll(Some(until_next_tick))`, whose pass writes
//! each peer's queue in one `write`.

use std::time::{Duration, Instant};

use lunanet::{Config, HandleId, PeerMap, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};

use crate::{Mode, ServerConfig, ServerReport, Started, Stop};

/// Longest sleep in `poll`, so a stop request is seen promptly.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// Connected peers: the reactor's ids index a vector (no hashing per event,
/// stale ids refused by their generation).
type Peers = PeerMap<StreamPeerTcp>;

pub fn run(
    cfg: &ServerConfig,
    started: &dyn Fn(Result<Started, String>),
    stop: &Stop,
) -> ServerReport {
    let mut report = ServerReport::default();
    // The default coalesces the broadcast and writes ping-pong replies at once.
    // With `--threads N`, N reactors (one per thread) listen on one port.
    // `--write-at-once` turns coalescing off, to compare latency.
    let config = Config::default()
        .reuse_port(cfg.reuse_port)
        .coalesce_writes(!cfg.write_at_once);
    let write_limit = config.write_buffer_limit;
    let reactor = match Reactor::with_config(config) {
        Ok(r) => r,
        Err(e) => {
            started(Err(format!("lunanet reactor: {e}")));
            return report;
        }
    };
    let mut server = TcpServer::new(&reactor);
    if let Err(e) = server.listen(cfg.addr.port(), cfg.addr.ip()) {
        started(Err(format!("lunanet listen on {}: {e}", cfg.addr)));
        return report;
    }
    started(Ok(Started {
        addr: std::net::SocketAddr::new(cfg.addr.ip(), server.local_port()),
    }));

    let server_id = server.id();
    let mut peers = Peers::new();
    let mut ready: Vec<HandleId> = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut schedule = cfg.tick_clock();

    while !stop.requested() {
        let now = Instant::now();
        if cfg.mode == Mode::Broadcast {
            while let Some(tick) = schedule.due(now) {
                broadcast_tick(cfg, &mut peers, tick.number, tick.scheduled, &mut report);
            }
            report.ticks = schedule.ticks();
            report.late_ticks = schedule.late_ticks();
        }
        // Measured after the tick's work, so the sleep ends on schedule.
        let wait = match cfg.mode {
            Mode::Broadcast => schedule.until_next(Instant::now()).min(MAX_WAIT),
            _ => MAX_WAIT,
        };
        if let Err(e) = reactor.poll(Some(wait)) {
            report.error(format!("lunanet poll: {e}"));
            break;
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            if Some(id) == server_id {
                // The server is in the ready set when a pass accepted
                // connections for it.
                while let Some(peer) = server.take_connection() {
                    report.accepted += 1;
                    if let Some(id) = peer.id() {
                        peers.insert(id, peer);
                    }
                }
                continue;
            }
            let Some(peer) = peers.get_mut(id) else {
                continue; // a peer already gone
            };
            let input_ended = match cfg.mode {
                Mode::Broadcast => discard_input(peer, &mut buf),
                Mode::PingPong | Mode::Bulk => echo(peer, &mut buf, write_limit, &mut report),
            };
            // A peer whose status changed is in the ready set, and reading it
            // then fails (end of stream, or the error): only then is the
            // status worth a look.
            if !input_ended {
                continue;
            }
            match peer.status() {
                Status::Connected | Status::Connecting => {}
                Status::None => drop(peers.remove(id)), // drop: graceful close
                Status::Error => {
                    report.error(format!(
                        "connection {:?} failed: {:?} ({:?})",
                        peer.remote_addr(),
                        peer.error(),
                        peer.error_kind()
                    ));
                    peers.remove(id);
                }
            }
        }
    }
    report.open_at_stop = peers.len() as u64;
    report.stats = Some(reactor.stats().into());
    report
}

/// Moves what fits from the peer's input to its output (counted in
/// `report.bytes_echoed`); returns whether reading failed (end of stream or an
/// error), i.e. whether the status needs a look.
fn echo(
    peer: &mut StreamPeerTcp,
    buf: &mut [u8],
    write_limit: usize,
    report: &mut ServerReport,
) -> bool {
    loop {
        let room = write_limit.saturating_sub(peer.pending_write_bytes());
        let want = buf.len().min(room);
        if want == 0 {
            return false; // back in the ready set once the output flushed
        }
        let n = match peer.get_partial_data(&mut buf[..want]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(_) => return true, // closed or failed: the status says which
        };
        match peer.put_data(&buf[..n]) {
            Ok(()) => report.bytes_echoed += n as u64,
            Err(SocketError::ConnectionClosed) => return true,
            Err(e) => {
                report.error(format!("put_data of {n} bytes within the room: {e}"));
                return true;
            }
        }
        if n < want {
            return false; // took everything buffered
        }
    }
}

/// Reads and drops everything buffered; returns whether reading failed.
fn discard_input(peer: &mut StreamPeerTcp, buf: &mut [u8]) -> bool {
    loop {
        match peer.get_partial_data(buf) {
            Ok(n) if n < buf.len() => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

fn broadcast_tick(
    cfg: &ServerConfig,
    peers: &mut Peers,
    tick: u64,
    scheduled: Instant,
    report: &mut ServerReport,
) {
    let records: Vec<_> = cfg.tick_records(tick, scheduled).collect();
    for peer in peers.values_mut() {
        for record in &records {
            match peer.put_data(record) {
                Ok(()) => report.records_sent += 1,
                Err(SocketError::OutOfBufferMemory) => {
                    report.error("write queue full: a client is not reading".to_string());
                    break;
                }
                // Closed or failed since the last pass: its status says so.
                Err(_) => break,
            }
        }
    }
}
