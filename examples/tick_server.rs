//! A 30 Hz tick-loop server: every tick it applies the inputs that arrived and
//! broadcasts a state record to every client.
//!
//! ```text
//! cargo run --release --example tick_server -- --addr 127.0.0.1:7778 [--hz 30] [--seconds N]
//! # in another terminal (each line you type is an "input"; records arrive 30 times a second):
//! nc 127.0.0.1 7778 | xxd    # or: python3 -c 'import socket;s=socket.create_connection(("127.0.0.1",7778));print(s.recv(64).hex())'
//! ```
//!
//! The loop sleeps in `Reactor::poll(timeout)` until the next tick *or* the next
//! packet, whichever comes first, so inputs are read as they arrive and the tick
//! keeps its rate; the schedule is the crate's [`lunanet::TickClock`]
//! (`--catch-up skip`, the default: a loop that fell behind drops the missed
//! state broadcasts, only the newest state matters; `burst` runs them all).
//! Writes are coalesced (`Config::coalesce_writes`): everything sent to a
//! client during a tick leaves in one `write` at the next pass.
//!
//! The state record is 16 bytes, little-endian (Godot's `StreamPeer` layout):
//! `u64` tick number (0 = the first tick), `u32` connected players, `u32`
//! input bytes received this tick.
//!
//! `--threads N` runs N tick loops, each with its own reactor and players, on
//! one port (SO_REUSEPORT, see `docs/many-cores.md`); the default is one per
//! core. Each loop ticks for the players the kernel gave its reactor, so the
//! `players` count in a record is that loop's own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use lunanet::{
    CatchUp, Config, PeerMap, Reactor, SocketError, Status, StreamPeerTcp, TcpServer, TickClock,
};

#[path = "common/stats_log.rs"]
mod stats_log;

/// A fixed-rate tick loop broadcasting a state record to every client.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:7778")]
    addr: SocketAddr,
    /// Ticks per second
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    hz: u32,
    /// Stop after this many seconds [default: run until killed]
    #[arg(long)]
    seconds: Option<u64>,
    /// What a loop that fell behind does with the missed ticks
    #[arg(long, value_enum, default_value_t = Policy::Skip)]
    catch_up: Policy,
    /// Tick loops, each with its own reactor, sharing the port
    /// [default: number of cores]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    /// Drop missed ticks; run the newest due one
    Skip,
    /// Run every missed tick back to back
    Burst,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(cores);
    // Writes coalesced per tick; several reactors share the port with SO_REUSEPORT.
    let config = Config::default()
        .coalesce_writes(true)
        .reuse_port(threads > 1);
    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let policy = match args.catch_up {
        Policy::Skip => CatchUp::Skip,
        Policy::Burst => CatchUp::Burst,
    };

    // The first reactor binds (port 0 picks one); the others join its port.
    let first = Room::bind(config.clone(), args.addr)?;
    let addr = SocketAddr::new(args.addr.ip(), first.server.local_port());
    log::info!(
        "tick server on {addr} at {} Hz ({} thread(s))",
        args.hz,
        threads
    );
    let mut workers = Vec::new();
    for i in 1..threads {
        let config = config.clone();
        let hz = args.hz;
        workers.push(
            std::thread::Builder::new()
                .name(format!("tick-{i}"))
                .spawn(move || -> Result<(), String> {
                    let room = Room::bind(config, addr).map_err(|e| e.to_string())?;
                    room.run(hz, policy, stop_at).map_err(|e| e.to_string())
                })?,
        );
    }
    first.run(args.hz, policy, stop_at)?;
    for t in workers {
        t.join().map_err(|_| "a tick thread panicked")??;
    }
    Ok(())
}

/// The number of cores the OS lets this process use (1 if it cannot tell).
fn cores() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1024).min(1024))
}

/// One reactor, its server, and the players it serves.
struct Room {
    reactor: Reactor,
    server: TcpServer,
}

impl Room {
    fn bind(config: Config, addr: SocketAddr) -> Result<Room, SocketError> {
        let reactor = Reactor::with_config(config)?;
        let mut server = TcpServer::new(&reactor);
        server.listen(addr.port(), addr.ip())?;
        Ok(Room { reactor, server })
    }

    fn run(
        mut self,
        hz: u32,
        policy: CatchUp,
        stop_at: Option<Instant>,
    ) -> Result<(), SocketError> {
        let start = Instant::now();
        // The first tick one period from now, then `hz` a second on the grid.
        let mut clock =
            TickClock::from_hz(hz, start + Duration::from_secs(1) / hz).catch_up(policy);
        // PeerMap: the player's id indexes a vector (no hashing per event).
        let mut players: PeerMap<StreamPeerTcp> = PeerMap::new();
        let mut ready = Vec::new();
        let mut input = [0u8; 4096];
        let mut inputs_this_tick: u32 = 0;
        let mut stats = stats_log::StatsLog::new(Duration::from_secs(1));

        while stop_at.is_none_or(|t| Instant::now() < t) {
            // Sleep until the next tick or the next packet.
            self.reactor.poll(Some(clock.until_next(Instant::now())))?;
            stats.maybe_log(&self.reactor);

            while let Some(p) = self.server.take_connection() {
                log::info!("player joined from {:?}", p.remote_addr());
                if let Some(id) = p.id() {
                    players.insert(id, p);
                }
            }
            // Only the players whose connection changed are visited.
            self.reactor.drain_ready(&mut ready);
            for id in ready.drain(..) {
                let Some(player) = players.get_mut(id) else {
                    continue;
                };
                loop {
                    match player.get_partial_data(&mut input) {
                        Ok(0) => break,
                        Ok(n) => inputs_this_tick = inputs_this_tick.saturating_add(n as u32),
                        Err(_) => break,
                    }
                }
                match player.status() {
                    Status::None => stats_log::peer_left(player, "closed"),
                    Status::Error => {
                        stats_log::peer_left(player, &format!("{:?}", player.error()));
                    }
                    Status::Connecting | Status::Connected => continue,
                }
                players.remove(id);
            }

            let Some(tick) = clock.due(Instant::now()) else {
                continue;
            };
            // With CatchUp::Burst the missed ticks come on the next turns of
            // the loop, with a zero poll timeout, so inputs keep being read.
            // The tick: simulate (nothing here), then broadcast the state.
            let count = players.len() as u32;
            let mut record = [0u8; 16];
            record[..8].copy_from_slice(&tick.number.to_le_bytes());
            record[8..12].copy_from_slice(&count.to_le_bytes());
            record[12..].copy_from_slice(&inputs_this_tick.to_le_bytes());
            for player in players.values_mut() {
                // One put per record: all-or-nothing, so a record is never cut.
                if let Err(SocketError::OutOfBufferMemory) = player.put_data(&record) {
                    // A client that does not read: its queue is full. Skip it
                    // this tick (a real game might disconnect it).
                    log::debug!("player {:?} is not reading", player.remote_addr());
                }
            }
            inputs_this_tick = 0;
            if (tick.number + 1).is_multiple_of(u64::from(hz) * 10) {
                log::info!(
                    "tick {}: {count} players, {} late and {} skipped ticks so far",
                    tick.number,
                    clock.late_ticks(),
                    clock.skipped_ticks()
                );
            }
        }
        log::info!(
            "stopped after {} ticks ({} late, {} skipped)",
            clock.ticks(),
            clock.late_ticks(),
            clock.skipped_ticks()
        );
        Ok(())
    }
}
