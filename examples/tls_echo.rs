//! A TLS echo/chat server on one reactor thread: every line a client sends is
//! sent to every connected client (so with one client it is an echo server).
//! An HTTP `GET` as the first line gets a small HTTPS page, so `curl` works too.
//!
//! ```text
//! cargo run --release --features tls --example tls_echo -- [--addr 127.0.0.1:8443] [--cert cert.pem --key key.pem]
//! # without --cert/--key it generates a self-signed certificate for localhost
//! # and prints where it wrote it; then, in another terminal:
//! openssl s_client -connect 127.0.0.1:8443 -CAfile /tmp/.../cert.pem -verify_hostname localhost
//! curl --cacert /tmp/.../cert.pem https://localhost:8443/
//! ```
//!
//! The loop is the tick-loop shape: sleep in `Reactor::poll` until the next
//! tick or the next packet, `process` only the peers in the ready set, and
//! every tick the handshaking ones (so the handshake timeout is enforced).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus};
use lunanet::{HandleId, Reactor, StreamPeer, TcpServer};

/// TLS echo/chat server (lunanet + rustls).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: the OS picks one and it is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// Certificate chain (PEM), server certificate first.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Stop after this many seconds (for scripts); default: run until killed.
    #[arg(long)]
    seconds: Option<f64>,
    /// Handshake timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    handshake_timeout: f64,
}

/// Longest line accepted; a client that sends more without a newline is
/// disconnected (bounded memory per client).
const MAX_LINE: usize = 4096;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("tls_echo: {e}");
        std::process::exit(1);
    }
}

fn load_options(args: &Args) -> Result<TlsOptions, String> {
    let (cert_pem, key_pem) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (
            std::fs::read(c).map_err(|e| format!("{}: {e}", c.display()))?,
            std::fs::read(k).map_err(|e| format!("{}: {e}", k.display()))?,
        ),
        _ => {
            // A self-signed certificate for localhost, written where clients
            // can be told to trust it.
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
            ])
            .map_err(|e| format!("generating a certificate: {e}"))?;
            let dir = std::env::temp_dir().join(format!("lunanet-tls_echo-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let cert_path = dir.join("cert.pem");
            let key_path = dir.join("key.pem");
            let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
            std::fs::write(&cert_path, &cert).map_err(|e| e.to_string())?;
            std::fs::write(&key_path, &key).map_err(|e| e.to_string())?;
            println!(
                "self-signed certificate for localhost: {}",
                cert_path.display()
            );
            println!("  (key: {})", key_path.display());
            (cert.into_bytes(), key.into_bytes())
        }
    };
    let secs = Duration::try_from_secs_f64(args.handshake_timeout).map_err(|e| e.to_string())?;
    Ok(TlsOptions::server(&cert_pem, &key_pem)
        .map_err(|e| e.to_string())?
        .with_handshake_timeout(secs))
}

struct Client {
    tls: StreamPeerTls,
    addr: String,
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    lines_seen: u64,
}

fn run(args: &Args) -> Result<(), String> {
    let options = load_options(args)?;
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let mut server = TcpServer::new(&reactor);
    server
        .listen(args.addr.port(), args.addr.ip())
        .map_err(|e| format!("listen on {}: {e}", args.addr))?;
    println!(
        "tls_echo listening on {}:{}",
        args.addr.ip(),
        server.local_port()
    );

    let stop = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let tick = Duration::from_millis(50);
    let mut next_tick = Instant::now() + tick;
    let mut clients: HashMap<HandleId, Client> = HashMap::new();
    let mut ready = Vec::new();
    let mut outgoing: Vec<Vec<u8>> = Vec::new();
    let mut gone = Vec::new();

    while stop.is_none_or(|s| Instant::now() < s) {
        reactor
            .poll(Some(next_tick.saturating_duration_since(Instant::now())))
            .map_err(|e| e.to_string())?;
        while let Some(tcp) = server.take_connection() {
            let addr = format!("{}:{}", tcp.connected_host(), tcp.connected_port());
            let Some(id) = tcp.id() else { continue };
            match StreamPeerTls::accept_stream(tcp, &options) {
                Ok(tls) => {
                    clients.insert(
                        id,
                        Client {
                            tls,
                            addr,
                            line: Vec::new(),
                            lines_seen: 0,
                        },
                    );
                }
                Err(e) => eprintln!("{addr}: {e}"),
            }
        }
        reactor.drain_ready(&mut ready);
        let tick_due = Instant::now() >= next_tick;
        if tick_due {
            next_tick += tick;
            // Handshaking peers are processed every tick: that is where a
            // stalled handshake times out.
            ready.extend(
                clients
                    .iter()
                    .filter(|(_, c)| c.tls.status() == TlsStatus::Handshaking)
                    .map(|(id, _)| *id),
            );
        }
        for id in ready.drain(..) {
            let Some(c) = clients.get_mut(&id) else {
                continue;
            };
            let was_handshaking = c.tls.status() == TlsStatus::Handshaking;
            let _ = c.tls.process();
            if was_handshaking && c.tls.status() == TlsStatus::Connected {
                println!(
                    "{} connected ({:?})",
                    c.addr,
                    c.tls.protocol_version().map(|v| format!("{v:?}"))
                );
            }
            if !serve(c, &mut outgoing) {
                gone.push(id);
            }
        }
        for id in gone.drain(..) {
            if let Some(mut c) = clients.remove(&id) {
                match c.tls.tls_error() {
                    Some(e) => println!("{} failed: {e}", c.addr),
                    None => println!("{} left", c.addr),
                }
                c.tls.disconnect_from_stream();
            }
        }
        for line in outgoing.drain(..) {
            for c in clients.values_mut() {
                if c.tls.status() == TlsStatus::Connected {
                    // A client too slow to take a line misses it (its queue
                    // is bounded); it is not allowed to stall the others.
                    let _ = c.tls.put_data(&line);
                }
            }
        }
    }
    println!("tls_echo: stopping with {} clients", clients.len());
    Ok(())
}

/// Reads the client's complete lines. Returns false when it should go.
fn serve(c: &mut Client, outgoing: &mut Vec<Vec<u8>>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match c.tls.get_partial_data(&mut buf) {
            Ok(0) => break,
            Ok(n) => c.line.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
    while let Some(end) = c.line.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.line.drain(..=end).collect();
        c.lines_seen += 1;
        if c.lines_seen == 1 && line.starts_with(b"GET ") {
            // An HTTPS client (curl, a browser): answer and close.
            let body = "lunanet tls_echo: connect with openssl s_client to chat\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = c.tls.put_data(reply.as_bytes());
            return false;
        }
        outgoing.push(line);
    }
    if c.line.len() > MAX_LINE {
        eprintln!(
            "{}: line longer than {MAX_LINE} bytes, disconnecting",
            c.addr
        );
        return false;
    }
    !matches!(
        c.tls.status(),
        TlsStatus::Error | TlsStatus::ErrorHostnameMismatch | TlsStatus::Disconnected
    )
}
