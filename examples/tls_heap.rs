//! Heap per idle connected TLS peer, server side: lunanet's `StreamPeerTls`
//! server against the tokio-rustls `current_thread` server of
//! `loadtest --transport tls` (same rustls, same `ServerConfig`).
//!
//! ```text
//! cargo run --release --features tls --example tls_heap -- [--peers 1000] [--rounds 3]
//! ```
//!
//! A counting global allocator adds up the bytes allocated minus freed *on the
//! server thread only* (a thread-local flag marks it), so the client peers of
//! the same process are not counted. Per round and server: start the server,
//! read its live heap, connect `--peers` lunanet TLS clients, each completes
//! a handshake and one 64 B echo, then everything idles for 2.5 s (lunanet
//! releases empty buffers in an idle sweep about 1 s after a peer stops),
//! read the live heap again: (after - before) / peers. Kernel socket memory
//! is not heap and is not counted, for either server.
//!
//! The counting allocator is the tests' (`tests/util/counting_alloc.rs`);
//! the library itself stays `forbid(unsafe_code)`.

#[path = "loadtest/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::tls::{StreamPeerTls, TlsStatus};
use lunanet::{Reactor, StreamPeer, StreamPeerTcp};

#[path = "../tests/util/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, track_this_thread, tracked_live};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap per idle TLS peer, lunanet vs tokio-rustls.
#[derive(Parser, Debug)]
struct Args {
    /// Idle connected TLS peers per measurement.
    #[arg(long, default_value_t = 1000)]
    peers: usize,
    /// Rounds (each measures both servers; medians reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn measure(which: tls::Which, fixture: &tls::Fixture, peers: usize) -> Result<f64, String> {
    let server = tls::spawn_hooked(which, fixture.server.clone(), track_this_thread);
    let before = tracked_live();
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(peers);
    for _ in 0..peers {
        let mut tcp = StreamPeerTcp::new(&reactor);
        tcp.connect_to_host(server.addr.ip(), server.addr.port())
            .map_err(|e| e.to_string())?;
        let mut c = StreamPeerTls::connect_to_stream(tcp, "localhost", fixture.client.clone())
            .map_err(|e| e.to_string())?;
        c.put_data(&[7u8; 64]).map_err(|e| e.to_string())?;
        clients.push(c);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = vec![false; peers];
    let mut left = peers;
    let mut buf = [0u8; 64];
    while left > 0 {
        if Instant::now() > deadline {
            return Err(format!("{left} peers did not get their echo"));
        }
        reactor
            .poll(Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        for (i, c) in clients.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            c.process()
                .map_err(|e| format!("{e}: {:?}", c.tls_error()))?;
            if c.available_bytes() >= 64 {
                c.get_data(&mut buf).map_err(|e| e.to_string())?;
                done[i] = true;
                left -= 1;
            }
        }
    }
    // Idle: keep the client reactor polled so nothing is left half-done.
    let idle_end = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < idle_end {
        reactor
            .poll(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
    }
    let after = tracked_live();
    assert!(clients.iter().all(|c| c.status() == TlsStatus::Connected));
    drop(clients);
    let _ = server.stop();
    Ok((after - before) as f64 / peers as f64)
}

fn main() {
    let args = Args::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let fixture = tls::Fixture::new();
    let mut results = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [tls::Which::Lunanet, tls::Which::TokioRustls]
        } else {
            [tls::Which::TokioRustls, tls::Which::Lunanet]
        };
        for which in order {
            match measure(which, &fixture, args.peers) {
                Ok(b) => {
                    println!(
                        "round {}/{} {:>12}: {:.0} B heap per idle TLS peer ({} peers)",
                        round + 1,
                        args.rounds,
                        which.name(),
                        b,
                        args.peers
                    );
                    results[(which == tls::Which::TokioRustls) as usize].push(b);
                }
                Err(e) => {
                    eprintln!("tls_heap: {}: {e}", which.name());
                    std::process::exit(1);
                }
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (l, t) = (med(&mut results[0]), med(&mut results[1]));
    println!(
        "median heap per idle TLS peer: lunanet {l:.0} B, tokio-rustls {t:.0} B, ratio x{:.3}",
        l / t
    );
}
