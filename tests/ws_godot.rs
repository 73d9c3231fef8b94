//! lunanet's WebSocket server against Godot 3.2.3's `WebSocketClient`
//! (headless `godot3-server`): subprotocol, text, binary, `put_var`, and a
//! server-initiated close seen as clean with its code and reason. Skipped,
//! with a SKIPPED line, when `godot3-server` is missing.
#![cfg(feature = "websocket")]

mod ws_common;

use std::process::Command;

use lunanet::websocket::WebSocketOptions;
use ws_common::{Event, script, spawn_echo};

#[test]
fn godot3_websocket_client_talks_to_lunanet() {
    let godot = "godot3-server";
    if Command::new(godot).arg("--version").output().is_err() {
        eprintln!("SKIPPED: godot3-server not found (apt-get install godot3-server)");
        return;
    }
    let mut options = WebSocketOptions::default();
    options.supported_protocols = vec!["chat".into()];
    let server = spawn_echo(options, None);
    let url = format!("ws://127.0.0.1:{}/godot", server.port);
    // godot3-server runs until the script quits; the script bounds itself to
    // 20 s, and `timeout` bounds Godot itself.
    // Godot writes a logs/ directory into its working directory: use a
    // temporary one.
    let cwd = std::env::temp_dir().join(format!("lunanet-godot-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("godot working directory");
    let out = Command::new("timeout")
        .args(["60", godot, "--no-window", "-s"])
        .arg(script("godot3_client.gd"))
        .current_dir(&cwd)
        .env("LUNANET_WS_URL", &url)
        .output()
        .expect("run godot3-server");
    let _ = std::fs::remove_dir_all(&cwd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .collect();
    assert!(
        out.status.success(),
        "godot failed ({}): {results:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        results,
        [
            "open protocol=chat",
            "text ok",
            "binary ok",
            "var ok",
            "close_request 4005 godot bye",
            "closed clean=True",
        ]
    );
    assert_eq!(
        server.next_event(),
        Event::Opened {
            protocol: "chat".into(),
            url: "/godot".into()
        }
    );
    assert_eq!(server.next_close().0, 4005);
}
