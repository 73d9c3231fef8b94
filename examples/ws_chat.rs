//! A WebSocket chat room on a 20 Hz tick loop, with its own web page: one
//! port serves the HTML/JS client to browsers (plain HTTP GET) and the
//! WebSocket upgrades (the page, Godot web exports, any WebSocket client).
//!
//! ```text
//! cargo run --release --features websocket --example ws_chat -- [--addr 127.0.0.1:8080] [--seconds N]
//! # then open the printed URL in one or more browser tabs
//! ```
//!
//! Each text message a client sends is broadcast to everyone as
//! `name: text`; `/nick NAME` renames. The server pings every 10 s
//! (`heartbeat_interval`), because browsers never ping, and drops clients
//! that stay silent for 30 s. See `docs/websocket.md` for a Godot client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::websocket::{
    HttpRequestKind, WebSocketOptions, WebSocketPeer, WsState, classify_request,
};
use lunanet::{Reactor, StreamPeerTcp, TcpServer};

/// WebSocket chat server with a built-in web page.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: the OS picks one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    seconds: Option<u64>,
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>lunanet chat</title>
<style>body{font:15px sans-serif;max-width:40em;margin:2em auto}#log{height:60vh;overflow:auto;border:1px solid #ccc;padding:.5em;white-space:pre-wrap}input{width:80%}</style>
</head><body>
<h1>lunanet chat</h1><div id="state">connecting…</div><div id="log"></div>
<form id="f"><input id="msg" autocomplete="off" placeholder="message, or /nick NAME"><button>send</button></form>
<script>
const log = document.getElementById("log"), state = document.getElementById("state");
const ws = new WebSocket("ws://" + location.host + "/chat");
function add(line) { log.textContent += line + "\n"; log.scrollTop = log.scrollHeight; }
ws.onopen = () => state.textContent = "connected";
ws.onmessage = (e) => add(e.data);
ws.onclose = (e) => state.textContent = "closed (" + e.code + " " + e.reason + ")";
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("msg");
  if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
};
</script></body></html>
"#;

struct Client {
    ws: WebSocketPeer<StreamPeerTcp>,
    name: String,
    joined: bool,
}

fn http_reply(tcp: &mut StreamPeerTcp, status: &str, content_type: &str, body: &str) {
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = tcp.put_data(reply.as_bytes()) {
        log::warn!("HTTP reply not sent: {e}");
    }
    tcp.disconnect_from_host(); // still delivers the reply (graceful close)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    let reactor = Reactor::new()?;
    let mut server = TcpServer::new(&reactor);
    server.listen(args.addr.port(), args.addr.ip())?;
    println!(
        "lunanet ws_chat: open http://{}:{}/ in a browser",
        args.addr.ip(),
        server.local_port()
    );

    let mut options = WebSocketOptions::default();
    options.heartbeat_interval = Duration::from_secs(10);

    let tick = Duration::from_millis(50);
    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut next_tick = Instant::now() + tick;
    // Connections whose first request has not fully arrived yet.
    let mut fresh: Vec<(StreamPeerTcp, Instant)> = Vec::new();
    let mut clients: Vec<Client> = Vec::new();
    let mut outbox: Vec<String> = Vec::new();
    let mut served_pages = 0u64;
    let mut next_guest = 1u64;

    while stop_at.is_none_or(|t| Instant::now() < t) {
        // Sleep until the next tick, waking early for network events.
        reactor.poll(Some(next_tick.saturating_duration_since(Instant::now())))?;
        while let Some(tcp) = server.take_connection() {
            fresh.push((tcp, Instant::now()));
        }

        // Route new connections: page, upgrade, or error.
        let mut i = 0;
        while i < fresh.len() {
            let mut head = [0u8; 4096];
            let n = fresh[i].0.peek_data(&mut head);
            match classify_request(&head[..n]) {
                HttpRequestKind::Incomplete if fresh[i].1.elapsed() < options.handshake_timeout => {
                    i += 1;
                }
                HttpRequestKind::Upgrade => {
                    let (tcp, _) = fresh.swap_remove(i);
                    let name = format!("guest-{next_guest}");
                    next_guest += 1;
                    clients.push(Client {
                        ws: WebSocketPeer::accept_stream(tcp, &options),
                        name,
                        joined: false,
                    });
                }
                HttpRequestKind::Plain { method, path, .. } => {
                    let (mut tcp, _) = fresh.swap_remove(i);
                    if method == "GET" && (path == "/" || path.starts_with("/?")) {
                        served_pages += 1;
                        http_reply(&mut tcp, "200 OK", "text/html; charset=utf-8", PAGE);
                    } else {
                        http_reply(&mut tcp, "404 Not Found", "text/plain", "not found\n");
                    }
                }
                // Not HTTP, or too slow to send a request.
                HttpRequestKind::Incomplete | HttpRequestKind::Invalid => {
                    let (mut tcp, _) = fresh.swap_remove(i);
                    tcp.disconnect_from_host();
                }
            }
        }

        // Read everything that arrived; queue the broadcasts.
        for client in &mut clients {
            client.ws.process();
            if !client.joined && client.ws.ready_state() == WsState::Open {
                client.joined = true;
                outbox.push(format!("* {} joined", client.name));
                log::info!("{} joined ({})", client.name, client.ws.requested_url());
            }
            while let Ok(packet) = client.ws.get_packet() {
                let text = String::from_utf8_lossy(&packet);
                if let Some(nick) = text.strip_prefix("/nick ") {
                    let nick: String = nick.trim().chars().take(24).collect();
                    if !nick.is_empty() {
                        outbox.push(format!("* {} is now {nick}", client.name));
                        client.name = nick;
                    }
                } else {
                    outbox.push(format!(
                        "{}: {}",
                        client.name,
                        text.chars().take(500).collect::<String>()
                    ));
                }
            }
        }
        clients.retain(|c| {
            let gone = c.ws.ready_state() == WsState::Closed;
            if gone && c.joined {
                log::info!("{} left (close code {})", c.name, c.ws.close_code());
                outbox.push(format!("* {} left", c.name));
            }
            !gone
        });

        if Instant::now() >= next_tick {
            // The tick: broadcast what this tick collected.
            for line in outbox.drain(..) {
                for client in clients
                    .iter_mut()
                    .filter(|c| c.ws.ready_state() == WsState::Open)
                {
                    if let Err(e) = client.ws.send_text(&line) {
                        // A client too slow to take its messages: drop it.
                        log::warn!("{}: {e}; closing", client.name);
                        client.ws.close(1008, "too slow");
                    }
                }
            }
            next_tick += tick;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + tick; // fell behind: do not burst
            }
        }
    }
    println!(
        "ws_chat: served {served_pages} page(s), {} client(s) connected at exit",
        clients.len()
    );
    // Say goodbye properly: a Close frame (1001, going away), then wait
    // (bounded) for the closing handshakes.
    for client in &mut clients {
        client.ws.close(1001, "server shutting down");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && clients
            .iter()
            .any(|c| c.ws.ready_state() != WsState::Closed)
    {
        reactor.poll(Some(Duration::from_millis(20)))?;
        for client in &mut clients {
            client.ws.process();
        }
    }
    Ok(())
}
