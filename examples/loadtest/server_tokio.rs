//! The server under test for `--impl tokio`: the idiomatic tokio shape, on a
//! `current_thread` runtime owned by the calling thread.
//!
//! Echo (ping-pong, bulk): a task per connection, `set_nodelay(true)`, `read`
//! into a 64 KiB buffer (the same size lunanet reads into and the mio server
//! uses), `write_all` of what was read — tokio's own echo example.
//!
//! Broadcast: as tokio's chat examples — every client has a task fed by an
//! unbounded `mpsc` channel, which `write_all`s each record as it comes and
//! watches its read half for the client's EOF; a ticker task
//! (`tokio::time::interval`) sends the K records of each tick to every
//! client's channel. `MissedTickBehavior::Burst` (tokio's default): a ticker
//! that falls behind fires the missed ticks back to back, so no tick is
//! skipped and each record keeps the time its tick was scheduled for — the
//! same fixed-rate schedule the lunanet and mio servers follow.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::proto::RECORD;
use crate::{Mode, ServerConfig, ServerReport, Started, Stop};

/// Figures shared by the tasks (each task adds its own once, when it ends).
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    bytes_echoed: AtomicU64,
    records_sent: AtomicU64,
    ticks: AtomicU64,
    late_ticks: AtomicU64,
    errors: AtomicU64,
    open: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, what: String) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
        }
    }
}

/// Adds a task's local counts to the shared ones when the task ends — also
/// when the runtime shuts down and drops it mid-flight.
struct TaskTally<'a> {
    counters: &'a Counters,
    bytes: u64,
    records: u64,
}

impl Drop for TaskTally<'_> {
    fn drop(&mut self) {
        self.counters
            .bytes_echoed
            .fetch_add(self.bytes, Ordering::Relaxed);
        self.counters
            .records_sent
            .fetch_add(self.records, Ordering::Relaxed);
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

type Clients = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<[u8; RECORD]>>>>;

pub fn run(
    cfg: &ServerConfig,
    started: &dyn Fn(Result<Started, String>),
    stop: &Stop,
) -> ServerReport {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            started(Err(format!("tokio runtime: {e}")));
            return ServerReport::default();
        }
    };
    let counters = Arc::new(Counters::default());
    let c = Arc::clone(&counters);
    runtime.block_on(async move {
        let listener = match bind(cfg.addr, cfg.reuse_port) {
            Ok(l) => l,
            Err(e) => {
                started(Err(format!("tokio bind {}: {e}", cfg.addr)));
                return;
            }
        };
        let addr = listener.local_addr().unwrap_or(cfg.addr);
        started(Ok(Started { addr }));

        let clients: Clients = Arc::default();
        if cfg.mode == Mode::Broadcast {
            tokio::spawn(ticker(*cfg, Arc::clone(&clients), Arc::clone(&c)));
        }
        let mut next_id = 0u64;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        c.accepted.fetch_add(1, Ordering::Relaxed);
                        c.open.fetch_add(1, Ordering::Relaxed);
                        let counters = Arc::clone(&c);
                        if cfg.mode == Mode::Broadcast {
                            let (tx, rx) = mpsc::unbounded_channel();
                            next_id += 1;
                            lock(&clients).insert(next_id, tx);
                            let clients = Arc::clone(&clients);
                            let id = next_id;
                            tokio::spawn(async move {
                                subscriber(stream, rx, &counters).await;
                                lock(&clients).remove(&id);
                            });
                        } else {
                            tokio::spawn(async move { echo(stream, &counters).await });
                        }
                    }
                    Err(e) => {
                        // EMFILE and the like: back off rather than spin.
                        c.error(format!("accept: {e}"));
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
                _ = stop.notified() => break,
            }
        }
    });
    // Dropping the runtime drops every task, closing the connections.
    drop(runtime);
    let c = &counters;
    ServerReport {
        accepted: c.accepted.load(Ordering::Relaxed),
        accepted_per_thread: Vec::new(),
        bytes_echoed: c.bytes_echoed.load(Ordering::Relaxed),
        records_sent: c.records_sent.load(Ordering::Relaxed),
        ticks: c.ticks.load(Ordering::Relaxed),
        late_ticks: c.late_ticks.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        first_error: lock(&c.first_error).clone(),
        open_at_stop: c.open.load(Ordering::Relaxed),
        cpu: None,
        stats: None, // tokio has no reactor counters to show
    }
}

/// `TcpListener::bind` with the accept backlog lunanet uses (1024) instead of
/// mio's 128, so 1 000 clients connecting at once are not dropped and retried
/// a second later; SO_REUSEPORT for `--threads N`.
fn bind(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    if reuse_port {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "--threads N needs SO_REUSEPORT (Unix)",
        ));
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn echo(mut stream: TcpStream, counters: &Counters) {
    let mut tally = TaskTally {
        counters,
        bytes: 0,
        records: 0,
    };
    if let Err(e) = stream.set_nodelay(true) {
        counters.error(format!("set_nodelay: {e}"));
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => return counters.error(format!("read: {e}")),
        };
        if let Err(e) = stream.write_all(&buf[..n]).await {
            return counters.error(format!("write_all: {e}"));
        }
        tally.bytes += n as u64;
    }
}

async fn subscriber(
    mut stream: TcpStream,
    mut rx: mpsc::UnboundedReceiver<[u8; RECORD]>,
    counters: &Counters,
) {
    let mut tally = TaskTally {
        counters,
        bytes: 0,
        records: 0,
    };
    if let Err(e) = stream.set_nodelay(true) {
        counters.error(format!("set_nodelay: {e}"));
    }
    let (mut rd, mut wr) = stream.split();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => return, // the client left
                Ok(_) => {}      // clients send nothing; ignore
                Err(e) => return counters.error(format!("read: {e}")),
            },
            record = rx.recv() => match record {
                Some(record) => {
                    if let Err(e) = wr.write_all(&record).await {
                        return counters.error(format!("write_all: {e}"));
                    }
                    tally.records += 1;
                }
                None => return,
            },
        }
    }
}

async fn ticker(cfg: ServerConfig, clients: Clients, counters: Arc<Counters>) {
    let mut interval = tokio::time::interval(cfg.tick.period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for tick in 0u64.. {
        let scheduled = interval.tick().await.into_std();
        if std::time::Instant::now() > scheduled + cfg.tick.period {
            counters.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        let records: Vec<_> = cfg.tick_records(tick, scheduled).collect();
        for tx in lock(&clients).values() {
            for record in &records {
                let _ = tx.send(*record); // a closed channel: that client left
            }
        }
        counters.ticks.store(tick + 1, Ordering::Relaxed);
    }
}
