//! Packet chat server: every packet a client sends goes to every OTHER client,
//! in Godot's `PacketPeerStream` framing (u32 little-endian length + payload),
//! so Godot clients connect with `StreamPeerTCP` + `PacketPeerStream` unchanged.
//!
//! ```text
//! cargo run --release --example packet_chat -- --addr 127.0.0.1:7780 [--seconds N]
//! ```
//!
//! Binds 127.0.0.1:7780 by default (pass `--addr 0.0.0.0:7780` to accept other
//! machines); `--seconds N` stops after N seconds; `--help` prints the usage.
//! The 20 Hz schedule is the crate's [`lunanet::TickClock`].
//! `RUST_LOG=debug` also logs packet sizes (payload bytes are only logged at
//! `trace`).
//!
//! A Godot 4 client (GDScript): attach to a node, call `say("hi")` to send.
//!
//! ```gdscript
//! extends Node
//!
//! var tcp := StreamPeerTCP.new()
//! var pps := PacketPeerStream.new()
//!
//! func _ready() -> void:
//!     tcp.connect_to_host("127.0.0.1", 7780)
//!     pps.stream_peer = tcp
//!
//! func _process(_delta: float) -> void:
//!     tcp.poll()  # drives the connection; call it every frame
//!     if tcp.get_status() != StreamPeerTCP.STATUS_CONNECTED:
//!         return  # STATUS_CONNECTING: wait; STATUS_NONE / STATUS_ERROR: gone
//!     while pps.get_available_packet_count() > 0:
//!         var packet: PackedByteArray = pps.get_packet()
//!         if pps.get_packet_error() != OK:
//!             break
//!         print("chat: ", packet.get_string_from_utf8())
//!
//! func say(text: String) -> void:
//!     pps.put_packet(text.to_utf8_buffer())  # 4-byte LE length + UTF-8 bytes
//! ```
//!
//! Any other client works too, e.g. Python: send
//! `struct.pack("<I", len(payload)) + payload`, read 4 bytes of length, then
//! the payload.
//!
//! Structure: a 20 Hz tick loop on one thread and one reactor. Between ticks it
//! sleeps in `Reactor::poll` until the next tick or the next packet, whichever
//! comes first; it then visits only the peers that changed (the ready set),
//! collects their complete packets, and at each tick relays what was collected.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{
    CatchUp, HandleId, PacketPeerStream, PeerMap, Reactor, SocketError, Status, StreamPeerTcp,
    TcpServer, TickClock,
};

#[path = "common/stats_log.rs"]
mod stats_log;

/// 20 ticks per second, as a game server might run.
const TICK: Duration = Duration::from_millis(50);

/// Relay every packet a client sends to every other client (Godot's
/// PacketPeerStream framing).
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (0.0.0.0:7780 accepts other machines)
    #[arg(long, default_value = "127.0.0.1:7780")]
    addr: SocketAddr,
    /// Stop after this many seconds [default: run until killed]
    #[arg(long)]
    seconds: Option<u64>,
}

type Peer = PacketPeerStream<StreamPeerTcp>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    let reactor = Reactor::new()?;
    let mut server = TcpServer::new(&reactor);
    server.listen(args.addr.port(), args.addr.ip())?;
    log::info!(
        "packet chat on {}:{} ({} Hz ticks)",
        args.addr.ip(),
        server.local_port(),
        1000 / TICK.as_millis()
    );

    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    // PeerMap: the peer's id indexes a vector (no hashing per event).
    let mut peers: PeerMap<Peer> = PeerMap::new();
    let mut ready = Vec::new();
    // Packets received since the last tick, with their sender.
    let mut inbox: Vec<(HandleId, Vec<u8>)> = Vec::new();
    let mut relayed: u64 = 0;
    let mut stats = stats_log::StatsLog::new(Duration::from_secs(1));
    // A loop that fell behind relays what it collected at once, then goes
    // back on the 20 Hz grid: missed ticks are skipped, not bursted.
    let mut clock = TickClock::new(TICK, Instant::now() + TICK).catch_up(CatchUp::Skip);

    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t) {
            break;
        }
        // Sleep until the next tick, the next packet or the stop time.
        let wait = clock.until_next(now);
        let wait = stop_at.map_or(wait, |t| wait.min(t.saturating_duration_since(now)));
        reactor.poll(Some(wait))?;
        stats.maybe_log(&reactor);

        while let Some(peer) = server.take_connection() {
            let Some(id) = peer.id() else { continue };
            let from = peer.remote_addr().map_or("?".into(), |a| a.to_string());
            log::info!("{id:?} joined from {from} ({} online)", peers.len() + 1);
            peers.insert(id, PacketPeerStream::new(peer));
        }

        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some(peer) = peers.get_mut(id) else {
                continue; // the server itself, or a peer already gone
            };
            if let Some(reason) = receive(id, peer, &mut inbox) {
                leave(&mut peers, id, &reason);
            }
        }

        if clock.due(Instant::now()).is_some() {
            relayed += broadcast(&mut peers, &mut inbox);
        }
    }
    log::info!(
        "done: {relayed} packets relayed, {} clients online, {} ticks skipped",
        peers.len(),
        clock.skipped_ticks()
    );
    // Dropping the peers closes them gracefully (queued packets still go out).
    Ok(())
}

/// Takes every complete packet `peer` has sent into `inbox`. Returns why the
/// peer must be dropped, if it must.
fn receive(id: HandleId, peer: &mut Peer, inbox: &mut Vec<(HandleId, Vec<u8>)>) -> Option<String> {
    loop {
        match peer.get_packet() {
            Ok(packet) => {
                log::debug!("{id:?} sent {} bytes", packet.len());
                log::trace!("{id:?} payload {:?}", String::from_utf8_lossy(&packet));
                inbox.push((id, packet));
            }
            Err(SocketError::Busy) => break, // no complete packet yet
            Err(SocketError::FileEof) => return Some("disconnected".into()),
            Err(SocketError::OutOfBufferMemory) => {
                // Oversized frame: the stream cannot be split into packets any more.
                return Some("sent a packet over the size limit".into());
            }
            Err(e) => return Some(format!("error: {e}")),
        }
    }
    match peer.get_ref().status() {
        Status::None => Some("disconnected".into()),
        Status::Error => Some(format!("error: {:?}", peer.get_ref().error())),
        Status::Connecting | Status::Connected => None,
    }
}

fn leave(peers: &mut PeerMap<Peer>, id: HandleId, reason: &str) {
    if let Some(peer) = peers.remove(id) {
        stats_log::peer_left(peer.get_ref(), reason);
        log::info!("{id:?} left ({} online)", peers.len());
    }
}

/// Sends each packet of `inbox` to every peer except its sender; returns how
/// many packets were delivered into write queues. A peer whose write queue is
/// full (it does not read) misses the packet rather than stalling everyone.
fn broadcast(peers: &mut PeerMap<Peer>, inbox: &mut Vec<(HandleId, Vec<u8>)>) -> u64 {
    let mut sent = 0;
    for (from, packet) in inbox.drain(..) {
        for (to, peer) in peers.iter_mut() {
            if to == from {
                continue;
            }
            match peer.put_packet(&packet) {
                Ok(()) => sent += 1,
                Err(SocketError::OutOfBufferMemory) => {
                    log::warn!("{to:?} is not reading: packet from {from:?} dropped");
                }
                // Closed peers are dropped when the reactor reports them.
                Err(e) => log::debug!("{to:?}: {e}"),
            }
        }
    }
    sent
}
