//! Variant chat server: Godot clients talk in Dictionaries with
//! `PacketPeer.put_var` over `PacketPeerStream` (u32 LE length + one encoded
//! Variant per packet), no hand-written byte layout on either side.
//!
//! ```text
//! cargo run --release --example var_chat -- --addr 127.0.0.1:7781 [--seconds N] [--godot3] [--selftest]
//! ```
//!
//! Protocol (every message a Dictionary):
//! - server -> client on join: `{"type": "welcome", "id": int, "online": int}`
//! - client -> server: `{"type": "say", "text": String}`
//! - server -> every client: `{"type": "said", "from": int, "text": String, "pos": Vector2}`
//!   (`pos` is the sender's optional `"pos"` field, `Vector2(0, 0)` without one)
//!
//! Anything else is answered with `{"type": "error", "reason": String}`; an
//! undecodable packet is skipped (`SocketError::InvalidData`) and the
//! connection stays in sync. `--godot3` speaks Godot 3's type ids;
//! `--selftest` connects a lunanet client, chats once and exits non-zero
//! unless the reply arrives (used by CI).
//!
//! A Godot 4 client (GDScript; for Godot 3 use `--godot3`, `StreamPeerTCP`
//! status polling without `poll()`, and `PoolByteArray` names):
//!
//! ```gdscript
//! extends Node
//!
//! var tcp := StreamPeerTCP.new()
//! var pps := PacketPeerStream.new()
//!
//! func _ready() -> void:
//!     tcp.connect_to_host("127.0.0.1", 7781)
//!     pps.stream_peer = tcp
//!
//! func _process(_delta: float) -> void:
//!     tcp.poll()
//!     if tcp.get_status() != StreamPeerTCP.STATUS_CONNECTED:
//!         return
//!     while pps.get_available_packet_count() > 0:
//!         var msg = pps.get_var()
//!         if msg is Dictionary and msg.get("type") == "said":
//!             print("%d says %s at %s" % [msg.from, msg.text, msg.pos])
//!
//! func say(text: String) -> void:
//!     pps.put_var({"type": "say", "text": text, "pos": Vector2(3, 4)})
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::variant::{GodotVersion, Variant, Vector2};
use lunanet::{
    HandleId, PacketPeerStream, Reactor, SocketError, Status, StreamPeer, StreamPeerTcp, TcpServer,
    vdict,
};

/// Chat server speaking Godot Variants (`put_var` Dictionaries).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: the OS picks one).
    #[arg(long, default_value = "127.0.0.1:7781")]
    addr: SocketAddr,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Speak Godot 3's Variant type ids instead of Godot 4's.
    #[arg(long)]
    godot3: bool,
    /// Connect a lunanet client, chat once, exit non-zero unless it works.
    #[arg(long)]
    selftest: bool,
}

type Peer = PacketPeerStream<StreamPeerTcp>;

/// Handles one message from `from`; returns what to broadcast, if anything.
fn handle(from: HandleId, msg: &Variant) -> Result<Variant, String> {
    if msg.get("type").and_then(Variant::as_str) != Some("say") {
        return Err(format!(
            "expected a Dictionary with type \"say\", got {}",
            msg.type_name()
        ));
    }
    let text = msg
        .get("text")
        .and_then(Variant::as_str)
        .ok_or("\"text\" must be a String")?;
    let pos = msg
        .get("pos")
        .and_then(Variant::as_vector2)
        .unwrap_or_default();
    Ok(vdict! {
        "type" => "said",
        "from" => i64::from(from.index() as u32),
        "text" => text,
        "pos" => pos,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let version = if args.godot3 {
        GodotVersion::V3
    } else {
        GodotVersion::V4
    };

    let reactor = Reactor::new()?;
    let mut server = TcpServer::new(&reactor);
    server.listen(args.addr.port(), args.addr.ip())?;
    log::info!(
        "var chat on {}:{} ({version:?})",
        args.addr.ip(),
        server.local_port()
    );

    let mut client = None;
    if args.selftest {
        let mut c = StreamPeerTcp::new(&reactor);
        c.connect_to_host(args.addr.ip().to_string(), server.local_port())?;
        c.set_godot_version(version);
        client = Some(PacketPeerStream::new(c));
    }
    let mut client_ok = false;

    let stop_at = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let selftest_deadline = Instant::now() + Duration::from_secs(10);
    let mut peers: HashMap<HandleId, Peer> = HashMap::new();
    let mut ready = Vec::new();
    let mut outbox: Vec<Variant> = Vec::new();
    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t)
            || (args.selftest && (client_ok || now >= selftest_deadline))
        {
            break;
        }
        reactor.poll(Some(Duration::from_millis(50)))?;

        while let Some(mut peer) = server.take_connection() {
            let id = peer.id().ok_or("accepted peer without id")?;
            peer.set_godot_version(version);
            let mut pps = PacketPeerStream::new(peer);
            let welcome = vdict! { "type" => "welcome", "id" => id.index() as i64, "online" => peers.len() as i64 + 1 };
            if let Err(e) = pps.put_var(&welcome) {
                log::warn!("{id:?}: welcome not sent: {e}");
            }
            log::info!("{id:?} joined ({} online)", peers.len() + 1);
            peers.insert(id, pps);
        }

        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some(pps) = peers.get_mut(&id) else {
                continue;
            };
            loop {
                match pps.get_var() {
                    Ok(msg) => match handle(id, &msg) {
                        Ok(out) => outbox.push(out),
                        Err(reason) => {
                            let _ = pps.put_var(&vdict! { "type" => "error", "reason" => reason });
                        }
                    },
                    Err(SocketError::InvalidData) => {
                        log::info!("{id:?}: undecodable packet skipped")
                    }
                    Err(SocketError::Busy) => break,
                    Err(e) => {
                        log::info!("{id:?} left ({e})");
                        peers.remove(&id);
                        break;
                    }
                }
            }
        }
        peers.retain(|_, p| !matches!(p.get_ref().status(), Status::Error | Status::None));

        for msg in outbox.drain(..) {
            for pps in peers.values_mut() {
                if let Err(e) = pps.put_var(&msg) {
                    log::warn!("broadcast: {e}");
                }
            }
        }

        if let Some(c) = client.as_mut() {
            match c.get_var() {
                Ok(msg) if msg.get("type").and_then(Variant::as_str) == Some("welcome") => {
                    c.put_var(&vdict! { "type" => "say", "text" => "hello", "pos" => Vector2::new(3.0, 4.0) })?;
                }
                Ok(msg) if msg.get("type").and_then(Variant::as_str) == Some("said") => {
                    log::info!("selftest client got {msg:?}");
                    client_ok = msg.get("text").and_then(Variant::as_str) == Some("hello")
                        && msg.get("pos").and_then(Variant::as_vector2)
                            == Some(Vector2::new(3.0, 4.0));
                }
                Ok(other) => log::warn!("selftest client: unexpected {other:?}"),
                Err(SocketError::Busy) => {}
                Err(e) => return Err(format!("selftest client: {e}").into()),
            }
        }
    }
    if args.selftest {
        if !client_ok {
            return Err("selftest: no reply within 10 s".into());
        }
        println!("selftest OK");
    }
    Ok(())
}
