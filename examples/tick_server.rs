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
//! keeps its rate. Writes are coalesced (`Config::coalesce_writes`): everything
//! sent to a client during a tick leaves in one `write` at the next pass.
//!
//! The state record is 16 bytes, little-endian (Godot's `StreamPeer` layout):
//! `u64` tick number, `u32` connected players, `u32` input bytes received this tick.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lunanet::{Config, HandleId, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};

struct Args {
    addr: std::net::SocketAddr,
    hz: u32,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7778".parse().expect("default address"),
        hz: 30,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--hz" => args.hz = value()?.parse().map_err(|e| format!("--hz: {e}"))?,
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "-h" | "--help" => {
                return Err("usage: tick_server [--addr IP:PORT] [--hz N] [--seconds N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.hz == 0 || args.hz > 1000 {
        return Err("--hz must be between 1 and 1000".into());
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = parse_args().map_err(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })?;

    let reactor = Reactor::with_config(Config::default().coalesce_writes(true))?;
    let mut server = TcpServer::new(&reactor);
    server.listen(args.addr.port(), args.addr.ip())?;
    log::info!(
        "tick server on {}:{} at {} Hz",
        args.addr.ip(),
        server.local_port(),
        args.hz
    );

    let period = Duration::from_secs(1) / args.hz;
    let start = Instant::now();
    let stop_at = args.seconds.map(|s| start + Duration::from_secs(s));
    let mut next_tick = start + period;
    let mut tick: u64 = 0;
    let mut late_ticks: u64 = 0;
    let mut players: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    let mut ready = Vec::new();
    let mut input = [0u8; 4096];
    let mut inputs_this_tick: u32 = 0;

    while stop_at.is_none_or(|t| Instant::now() < t) {
        // Sleep until the next tick or the next packet.
        reactor.poll(Some(next_tick.saturating_duration_since(Instant::now())))?;

        while let Some(p) = server.take_connection() {
            log::info!("player joined from {:?}", p.remote_addr());
            players.insert(p.id().expect("connected"), p);
        }
        // Only the players whose connection changed are visited.
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some(player) = players.get_mut(&id) else {
                continue;
            };
            loop {
                match player.get_partial_data(&mut input) {
                    Ok(0) => break,
                    Ok(n) => inputs_this_tick = inputs_this_tick.saturating_add(n as u32),
                    Err(_) => break,
                }
            }
            if matches!(player.status(), Status::None | Status::Error) {
                log::info!("player left ({:?})", player.error());
                players.remove(&id);
            }
        }

        let now = Instant::now();
        if now < next_tick {
            continue;
        }
        // The tick: simulate (nothing here), then broadcast the state.
        tick += 1;
        if now > next_tick + period {
            late_ticks += 1;
        }
        let count = players.len() as u32;
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&tick.to_le_bytes());
        record[8..12].copy_from_slice(&count.to_le_bytes());
        record[12..].copy_from_slice(&inputs_this_tick.to_le_bytes());
        for player in players.values_mut() {
            // One put per record: all-or-nothing, so a record is never cut.
            if let Err(SocketError::OutOfBufferMemory) = player.put_data(&record) {
                // A client that does not read: its queue is full. Skip it this
                // tick (a real game might disconnect it).
                log::debug!("player {:?} is not reading", player.remote_addr());
            }
        }
        inputs_this_tick = 0;
        next_tick += period;
        if tick.is_multiple_of(u64::from(args.hz) * 10) {
            log::info!("tick {tick}: {count} players, {late_ticks} late ticks so far");
        }
    }
    log::info!("stopped after {tick} ticks ({late_ticks} late)");
    Ok(())
}
