//! Rooms on threads: accept on any thread, authenticate, then move the
//! player to the thread where its room lives
//! ([`StreamPeerTcp::detach`] → [`DetachedPeer`] → [`DetachedPeer::attach`]).
//!
//! The lobby thread accepts and waits for one line, `JOIN <room>\n` (the
//! "authentication"); the player then moves to room `room % ROOMS`, whose
//! thread relays every line a player sends to everyone in that room. Bytes
//! the player sent right after its JOIN line travel with it.
//!
//! ```text
//! cargo run --example rooms -- --addr 127.0.0.1:4000 --seconds 5
//! # elsewhere:  printf 'JOIN 1\nhello\n' | nc 127.0.0.1 4000
//! ```
//! With `--seconds`, a few built-in players join rooms and chat, so the run
//! shows something on its own; `--seconds 0` serves until killed.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{DetachedPeer, Reactor, ReactorWaker, Status, StreamPeerTcp, TcpServer};

const ROOMS: usize = 2;
/// Longest JOIN line accepted before the player is dropped.
const MAX_LINE: usize = 64;

/// Lobby on one thread, rooms on others, players moved between them.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Run this long with built-in demo players (0: serve until killed).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

/// A room's thread: attaches arriving players and relays lines.
fn room(number: usize, arrivals: mpsc::Receiver<DetachedPeer>, ready: mpsc::Sender<ReactorWaker>) {
    let reactor = Reactor::new().expect("room reactor");
    ready
        .send(reactor.waker().expect("waker"))
        .expect("lobby alive");
    let mut players: Vec<(StreamPeerTcp, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if reactor.poll(Some(Duration::from_millis(100))).is_err() {
            return;
        }
        loop {
            match arrivals.try_recv() {
                Ok(moved) => match moved.attach(&reactor) {
                    Ok(p) => {
                        println!("room {number}: {:?} joined", p.remote_addr());
                        players.push((p, Vec::new()));
                    }
                    Err(e) => eprintln!("room {number}: attach failed: {e}"),
                },
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let mut lines = Vec::new();
        for (p, pending) in &mut players {
            while let Ok(n) = p.get_partial_data(&mut buf) {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
            }
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                lines.push(pending.drain(..=end).collect::<Vec<u8>>());
            }
        }
        for line in &lines {
            print!("room {number}: {}", String::from_utf8_lossy(line));
            for (p, _) in &mut players {
                let _ = p.put_data(line); // a slow or gone player misses it
            }
        }
        players.retain(|(p, _)| p.status() == Status::Connected);
    }
}

/// Built-in players: join a room, say hello, print what the room relays.
fn demo_player(addr: SocketAddr, id: usize) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // JOIN and the first message in one write: the message arrives in the
    // lobby and travels with the player.
    let _ = write!(s, "JOIN {}\nhello from player {id}\n", id % ROOMS);
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}

fn main() {
    let args = Args::parse();
    let lobby = Reactor::new().expect("lobby reactor");
    let mut server = TcpServer::new(&lobby);
    server
        .listen(args.addr.port(), args.addr.ip())
        .expect("listen");
    let addr = SocketAddr::new(args.addr.ip(), server.local_port());
    println!("lobby listening on {addr}; {ROOMS} rooms");

    let mut rooms = Vec::new();
    for number in 0..ROOMS {
        let (to_room, arrivals) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || room(number, arrivals, ready_tx));
        rooms.push((to_room, ready_rx.recv().expect("room started")));
    }
    let end = (args.seconds > 0.0).then(|| Instant::now() + Duration::from_secs_f64(args.seconds));
    if end.is_some() {
        for id in 0..4 {
            thread::spawn(move || demo_player(addr, id));
        }
    }

    let mut waiting: Vec<StreamPeerTcp> = Vec::new();
    while end.is_none_or(|t| Instant::now() < t) {
        lobby.poll(Some(Duration::from_millis(50))).expect("poll");
        while let Some(p) = server.take_connection() {
            waiting.push(p);
        }
        let mut i = 0;
        while i < waiting.len() {
            // Authenticate: the JOIN line, peeked so nothing after it is taken.
            let mut head = [0u8; MAX_LINE];
            let n = waiting[i].peek_data(&mut head);
            let Some(eol) = head[..n].iter().position(|&b| b == b'\n') else {
                if n == MAX_LINE || waiting[i].status() != Status::Connected {
                    waiting.swap_remove(i); // no JOIN line: dropped
                } else {
                    i += 1;
                }
                continue;
            };
            let room = std::str::from_utf8(&head[..eol])
                .ok()
                .and_then(|l| l.strip_prefix("JOIN "))
                .and_then(|r| r.trim().parse::<usize>().ok());
            let mut player = waiting.swap_remove(i);
            let Some(room) = room else {
                let _ = player.put_data(b"expected JOIN <room>\n");
                continue;
            };
            let mut line = vec![0u8; eol + 1];
            if player.get_data(&mut line).is_err() {
                continue;
            }
            let (to_room, waker) = &rooms[room % ROOMS];
            match player.detach() {
                Ok(moved) => {
                    let _ = to_room.send(moved);
                    let _ = waker.wake();
                }
                Err(e) => eprintln!("lobby: detach failed: {e}"),
            }
        }
    }
    println!("done");
}
