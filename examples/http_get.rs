//! The seed's scenario: resolve a hostname, connect to port 80, send a GET,
//! print the status line and the body.
//!
//! ```text
//! cargo run --release --example http_get -- [--host example.com] [--port 80] [--path /] [--ipv4|--ipv6]
//! # against a local server:
//! python3 -m http.server 8000 --bind 127.0.0.1 &
//! cargo run --release --example http_get -- --host localhost --port 8000
//! ```
//!
//! Mirrors the Luna documentation (`Ip.ResolveHostnameAddress` then
//! `ConnectToHost` and a `Poll()` loop): the lookup here is the blocking, cached
//! `ip::resolve_hostname`; `connect_to_host` would also accept the name and
//! resolve it in the background.

use std::time::{Duration, Instant};

use lunanet::{IpType, Reactor, SocketError, Status, StreamPeerTcp, ip};

struct Args {
    host: String,
    port: u16,
    path: String,
    ip_type: IpType,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "example.com".into(),
        port: 80,
        path: "/".into(),
        ip_type: IpType::Any,
        timeout: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--path" => args.path = value()?,
            "--ipv4" => args.ip_type = IpType::Ipv4,
            "--ipv6" => args.ip_type = IpType::Ipv6,
            "--timeout" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                args.timeout =
                    Duration::try_from_secs_f64(secs).map_err(|e| format!("--timeout: {e}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: http_get [--host NAME] [--port N] [--path /] [--ipv4|--ipv6] [--timeout SECS]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("http_get: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let address = ip::resolve_hostname(&args.host, args.ip_type)
        .map_err(|e| format!("resolving {}: {e}", args.host))?;
    eprintln!("{} resolved to {address}", args.host);

    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let mut peer = StreamPeerTcp::new(&reactor);
    peer.connect_to_host(address, args.port)
        .map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + args.timeout;

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
    eprintln!("connected to {address}:{}", args.port);

    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lunanet-http_get\r\nConnection: close\r\n\r\n",
        args.path, args.host
    );
    peer.put_data(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;

    // Read until the server closes (Connection: close).
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
            }
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(SocketError::FileEof) => break,
            Err(e) => return Err(format!("receive: {e} ({:?})", peer.error_kind())),
        }
    }

    let text = String::from_utf8_lossy(&response);
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
