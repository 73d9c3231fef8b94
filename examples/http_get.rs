//! The seed's scenario: resolve a hostname, connect, send a GET, print the
//! status line and the body; with `--tls`, the same over HTTPS with the
//! server's certificate checked (feature `tls`).
//!
//! ```text
//! cargo run --release --example http_get -- [--host example.com] [--port 80] [--path /] [--ipv4|--ipv6]
//! # against a local server:
//! python3 -m http.server 8000 --bind 127.0.0.1 &
//! cargo run --release --example http_get -- --host localhost --port 8000
//! # HTTPS, checked against Mozilla's roots, or against a private CA / self-signed cert:
//! cargo run --release --features tls --example http_get -- --tls --host example.com
//! cargo run --release --features tls --example http_get -- --tls --host localhost --port 8443 --cacert cert.pem
//! ```
//!
//! Mirrors the Luna documentation (`Ip.ResolveHostnameAddress` then
//! `ConnectToHost` and a `Poll()` loop): the lookup here is the blocking, cached
//! `ip::resolve_hostname`; `connect_to_host` would also accept the name and
//! resolve it in the background.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{IpType, Reactor, SocketError, Status, StreamPeer, StreamPeerTcp, ip};

/// HTTP(S) GET with lunanet.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Host name or address to fetch from.
    #[arg(long, default_value = "example.com")]
    host: String,
    /// Port (default 80, or 443 with --tls).
    #[arg(long)]
    port: Option<u16>,
    /// Path to request.
    #[arg(long, default_value = "/")]
    path: String,
    /// Resolve to IPv4 addresses only.
    #[arg(long, conflicts_with = "ipv6")]
    ipv4: bool,
    /// Resolve to IPv6 addresses only.
    #[arg(long)]
    ipv6: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
    timeout: f64,
    /// Use HTTPS (TLS with certificate and hostname checks; feature `tls`).
    #[arg(long)]
    tls: bool,
    /// With --tls: trust the certificates in this PEM file instead of the
    /// bundled Mozilla roots (a private CA, or a self-signed server).
    #[arg(long, value_name = "FILE", requires = "tls")]
    cacert: Option<PathBuf>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| e.to_string())?;
    Ok(v)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("http_get: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let ip_type = match (args.ipv4, args.ipv6) {
        (true, _) => IpType::Ipv4,
        (_, true) => IpType::Ipv6,
        _ => IpType::Any,
    };
    let port = args.port.unwrap_or(if args.tls { 443 } else { 80 });
    let address = ip::resolve_hostname(&args.host, ip_type)
        .map_err(|e| format!("resolving {}: {e}", args.host))?;
    eprintln!("{} resolved to {address}", args.host);

    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let mut peer = StreamPeerTcp::new(&reactor);
    peer.connect_to_host(address, port)
        .map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);

    // The seed's loop: poll until connected.
    while peer.status() == Status::Connecting {
        if Instant::now() >= deadline {
            return Err("timed out connecting".into());
        }
        reactor
            .poll(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
    }
    if peer.status() != Status::Connected {
        return Err(format!(
            "connection failed: {:?} ({:?})",
            peer.error(),
            peer.error_kind()
        ));
    }
    eprintln!("connected to {address}:{port}");

    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lunanet-http_get\r\nConnection: close\r\n\r\n",
        args.path, args.host
    );
    let response = if args.tls {
        https(args, peer, &reactor, request.as_bytes(), deadline)?
    } else {
        exchange(
            &reactor,
            &mut peer,
            request.as_bytes(),
            deadline,
            |_| Ok(()),
        )?
    };
    print_response(&response)
}

#[cfg(feature = "tls")]
fn https(
    args: &Args,
    tcp: StreamPeerTcp,
    reactor: &Reactor,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    use lunanet::tls::{StreamPeerTls, TlsError, TlsOptions, TlsStatus};
    let options = match &args.cacert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            TlsOptions::client_with_roots(&pem).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => TlsOptions::client(),
    };
    let mut tls = StreamPeerTls::connect_to_stream(tcp, &args.host, options)
        .map_err(|e| format!("TLS: {e}"))?;
    let result = exchange(reactor, &mut tls, request, deadline, |tls| {
        let _ = tls.process();
        match tls.status() {
            TlsStatus::Error | TlsStatus::ErrorHostnameMismatch => {
                match tls.tls_error() {
                    // Many servers close without close_notify after
                    // `Connection: close`; the body is still complete.
                    Some(TlsError::Truncated) => Ok(()),
                    Some(e) => Err(format!("TLS: {e}")),
                    None => Err("TLS failed".into()),
                }
            }
            _ => Ok(()),
        }
    });
    if let (Ok(_), Some(v)) = (&result, tls.protocol_version()) {
        eprintln!("TLS: {v:?}, {:?}", tls.cipher_suite().map(|c| c.suite()));
    }
    result
}

#[cfg(not(feature = "tls"))]
fn https(_: &Args, _: StreamPeerTcp, _: &Reactor, _: &[u8], _: Instant) -> Result<Vec<u8>, String> {
    Err("--tls needs the `tls` feature: cargo run --features tls --example http_get".into())
}

/// Sends `request` and reads until the server closes (`Connection: close`).
/// `check` runs after each reactor pass (the TLS layer's processing).
fn exchange<P: StreamPeer>(
    reactor: &Reactor,
    peer: &mut P,
    request: &[u8],
    deadline: Instant,
    mut check: impl FnMut(&mut P) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    peer.put_data(request).map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match peer.get_partial_data(&mut buf) {
            Ok(0) => {
                if Instant::now() >= deadline {
                    return Err("timed out reading the response".into());
                }
                reactor
                    .poll(Some(Duration::from_millis(50)))
                    .map_err(|e| e.to_string())?;
                check(peer)?;
            }
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(SocketError::FileEof) => break,
            Err(e) => {
                check(peer)?;
                return Err(format!("receive: {e}"));
            }
        }
    }
    Ok(response)
}

fn print_response(response: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: {status:?}"));
    }
    println!("{status}");
    println!("{body}");
    eprintln!("{} bytes received", response.len());
    Ok(())
}
