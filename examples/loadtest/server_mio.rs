//! The server under test for `--impl mio`: a hand-written edge-triggered mio
//! 1.x + slab server, the baseline a library on mio is measured against.
//!
//! - Each socket is registered once for READABLE | WRITABLE; no `epoll_ctl`
//!   per message.
//! - Reads go into one 64 KiB buffer shared by all connections. A read that
//!   returns fewer bytes than asked means the socket is drained (a new edge
//!   comes with new data), so there is no extra read just to see `WouldBlock`;
//!   the loop reads on only after a full buffer, or to reach the EOF when the
//!   event says the peer closed.
//! - Echo writes at once; only what the kernel refused is kept in the
//!   connection's output buffer and written on the next writable edge. When
//!   that buffer holds 1 MiB the connection stops reading (TCP backpressure)
//!   and resumes, without waiting for an edge, once it drained.
//! - Broadcast: at each tick the K records are appended to each client's
//!   output buffer and written with one `write` per client per tick.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::proto::RECORD;
use crate::{Mode, ServerConfig, ServerReport, Started, Stop};

const LISTENER: Token = Token(usize::MAX);
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Output buffered for one connection before it stops reading.
const OUT_HIGH: usize = 1 << 20;
/// Output buffered for a broadcast client before it counts as not reading.
const BROADCAST_OUT_MAX: usize = 16 << 20;

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    out_pos: usize,
    /// Stopped reading because `out` is full; data may wait in the kernel.
    read_paused: bool,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Writes buffered output until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Sends `data` now if nothing is queued ahead, keeping what the kernel
    /// refused.
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut written = 0;
        if self.pending() == 0 {
            loop {
                match self.stream.write(data) {
                    Ok(n) => {
                        written = n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.out.extend_from_slice(&data[written..]);
        Ok(())
    }
}

/// What a connection's read loop found.
enum ReadEnd {
    Open,
    Eof,
}

pub fn run(
    cfg: &ServerConfig,
    started: &dyn Fn(Result<Started, String>),
    stop: &Stop,
) -> ServerReport {
    let mut report = ServerReport::default();
    let setup = || -> io::Result<(Poll, TcpListener)> {
        let poll = Poll::new()?;
        let mut listener = listen(cfg.addr, cfg.reuse_port)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok((poll, listener))
    };
    let (mut poll, listener) = match setup() {
        Ok(x) => x,
        Err(e) => {
            started(Err(format!("mio listen on {}: {e}", cfg.addr)));
            return report;
        }
    };
    started(Ok(Started {
        addr: listener.local_addr().unwrap_or(cfg.addr),
    }));

    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut records: Vec<u8> = Vec::new();
    let mut schedule = cfg.tick_clock();

    while !stop.requested() {
        let now = Instant::now();
        if cfg.mode == Mode::Broadcast {
            while let Some(tick) = schedule.due(now) {
                make_records(cfg, tick.number, tick.scheduled, &mut records);
                broadcast(&mut conns, &records, &mut report);
            }
            report.ticks = schedule.ticks();
            report.late_ticks = schedule.late_ticks();
        }
        // Measured after the tick's work, so the sleep ends on schedule.
        let wait = match cfg.mode {
            Mode::Broadcast => schedule.until_next(Instant::now()).min(MAX_WAIT),
            _ => MAX_WAIT,
        };
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            report.error(format!("mio poll: {e}"));
            break;
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept(&poll, &listener, &mut conns, &mut report);
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let closing = event.is_read_closed() || event.is_error();
            let mut read = event.is_readable() || closing;
            let outcome = (|| -> io::Result<ReadEnd> {
                if event.is_writable() && conn.pending() > 0 {
                    conn.flush()?;
                    if conn.read_paused && conn.pending() < OUT_HIGH {
                        // No new edge will announce the data left waiting.
                        conn.read_paused = false;
                        read = true;
                    }
                }
                if !read || conn.read_paused {
                    return Ok(ReadEnd::Open);
                }
                match cfg.mode {
                    Mode::Broadcast => discard(conn, &mut buf, closing),
                    Mode::PingPong | Mode::Bulk => {
                        echo(conn, &mut buf, closing, &mut report.bytes_echoed)
                    }
                }
            })();
            match outcome {
                Ok(ReadEnd::Open) => {}
                Ok(ReadEnd::Eof) => {
                    // Give queued output one last chance, then close.
                    let mut conn = conns.remove(key);
                    let _ = conn.flush();
                }
                Err(e) => {
                    report.error(format!("connection {:?}: {e}", conn.stream.peer_addr()));
                    conns.remove(key);
                }
            }
        }
    }
    report.open_at_stop = conns.len() as u64;
    report
}

/// Like `TcpListener::bind`, with the accept backlog lunanet uses (1024)
/// instead of mio's 128, so 1 000 clients connecting at once are not dropped
/// and retried a second later; SO_REUSEPORT for `--threads N`.
fn listen(addr: std::net::SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "--threads N needs SO_REUSEPORT (Unix)",
        ));
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn accept(poll: &Poll, listener: &TcpListener, conns: &mut Slab<Conn>, report: &mut ServerReport) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    report.error(format!("set_nodelay: {e}"));
                }
                let entry = conns.vacant_entry();
                if let Err(e) = poll.registry().register(
                    &mut stream,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    report.error(format!("register: {e}"));
                    continue;
                }
                report.accepted += 1;
                entry.insert(Conn {
                    stream,
                    out: Vec::new(),
                    out_pos: 0,
                    read_paused: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and the like; the next edge (a new client) retries.
                report.error(format!("accept: {e}"));
                return;
            }
        }
    }
}

/// Reads and echoes until drained (a short read), paused, EOF or error.
fn echo(conn: &mut Conn, buf: &mut [u8], closing: bool, echoed: &mut u64) -> io::Result<ReadEnd> {
    loop {
        if conn.pending() >= OUT_HIGH {
            conn.read_paused = true;
            return Ok(ReadEnd::Open);
        }
        match conn.stream.read(buf) {
            Ok(0) => return Ok(ReadEnd::Eof),
            Ok(n) => {
                conn.send(&buf[..n])?;
                *echoed += n as u64;
                if n < buf.len() && !closing {
                    return Ok(ReadEnd::Open); // drained
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::Open),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Broadcast clients send nothing; read to see their EOF.
fn discard(conn: &mut Conn, buf: &mut [u8], closing: bool) -> io::Result<ReadEnd> {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return Ok(ReadEnd::Eof),
            Ok(n) if n < buf.len() && !closing => return Ok(ReadEnd::Open),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::Open),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn make_records(cfg: &ServerConfig, tick: u64, scheduled: Instant, out: &mut Vec<u8>) {
    out.clear();
    for record in cfg.tick_records(tick, scheduled) {
        out.extend_from_slice(&record);
    }
    debug_assert_eq!(out.len(), RECORD * cfg.tick.records);
}

/// One tick: append the records to every client's output, one write each.
fn broadcast(conns: &mut Slab<Conn>, records: &[u8], report: &mut ServerReport) {
    let mut failed = Vec::new();
    for (key, conn) in conns.iter_mut() {
        if conn.pending() + records.len() > BROADCAST_OUT_MAX {
            report.error("client output over 16 MiB: a client is not reading".into());
            failed.push(key);
            continue;
        }
        let was_idle = conn.pending() == 0;
        conn.out.extend_from_slice(records);
        report.records_sent += (records.len() / RECORD) as u64;
        // A client waiting for a writable edge is flushed by that edge.
        if was_idle && let Err(e) = conn.flush() {
            report.error(format!("broadcast write: {e}"));
            failed.push(key);
        }
    }
    for key in failed {
        conns.remove(key);
    }
}
