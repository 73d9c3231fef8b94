//! Godot Variants against a real Godot 3.2.3 (`godot3-server`, headless), over
//! loopback, both directions:
//!
//! 1. the GDScript client (`tests/godot/variant_client.gd`) `put_var`s one
//!    value of every 3.x type plus an object id; this lunanet server decodes
//!    each (checked here against the same values built in Rust), and echoes
//!    it re-encoded; the client checks each echo is byte-identical to its own
//!    `var2bytes` and decodes equal;
//! 2. lunanet sends its own construction of the values; the client checks
//!    them with `typeof` and `==`.
//!
//! Prints SKIPPED (and passes) when `godot3-server` is not installed; CI
//! installs it (`.ci/run`). Every wait is bounded by a deadline.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lunanet::variant::{
    Aabb, Basis, Color, GodotVersion, NodePath, Plane, Quaternion, Rect2, Transform2D, Transform3D,
    Variant, Vector2, Vector3,
};
use lunanet::{Reactor, SocketError, StreamPeer, TcpServer, varray, vdict};

const SCRIPT: &str = include_str!("godot/variant_client.gd");

fn godot() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v godot3-server"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The client's `values()`, built in Rust.
fn values() -> Vec<Variant> {
    let v2 = Vector2::new;
    let v3 = Vector3::new;
    // GDScript's Basis(x, y, z) takes the axes (columns); the wire has rows.
    let basis = Basis {
        rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)],
    };
    vec![
        Variant::Nil,
        Variant::Bool(true),
        Variant::Bool(false),
        Variant::Int(42),
        Variant::Int(-7),
        Variant::Int(1_099_511_627_776),
        Variant::Int(-2_147_483_649),
        Variant::Float(2.5),
        Variant::Float(0.1),
        Variant::from("héllo"),
        Variant::from(""),
        Variant::from(v2(1.5, -2.0)),
        Variant::from(Rect2::new(v2(1.0, 2.0), v2(3.0, 4.0))),
        Variant::from(v3(1.0, 2.0, 3.0)),
        Variant::from(Transform2D::new(v2(1.0, 2.0), v2(3.0, 4.0), v2(5.0, 6.0))),
        Variant::from(Plane::new(v3(1.0, 0.0, 0.0), 5.0)),
        Variant::from(Quaternion::new(0.0, 0.0, 0.0, 1.0)),
        Variant::from(Aabb::new(v3(1.0, 2.0, 3.0), v3(4.0, 5.0, 6.0))),
        Variant::from(basis),
        Variant::from(Transform3D::new(basis, v3(10.0, 11.0, 12.0))),
        Variant::from(Color::new(1.0, 0.0, 0.0, 1.0)),
        Variant::from(NodePath::parse("/root/a/b:c:d")),
        Variant::Rid(0),
        vdict! { "a" => 1, 2 => varray![3, "x"], v2(1.0, 1.0) => Variant::Nil },
        varray![1, "x", 2.5, varray![Variant::Nil]],
        varray![],
        Variant::from(vec![1u8, 2, 3]),
        Variant::from(vec![1i32, -2, 3]),
        Variant::from(vec![0.5f32, 1.5]),
        Variant::from(vec!["ab".to_owned(), String::new(), "日本".to_owned()]),
        Variant::from(vec![v2(1.0, 2.0), v2(3.0, 4.0)]),
        Variant::from(vec![v3(1.0, 2.0, 3.0)]),
        Variant::from(vec![Color::new(0.0, 0.5, 1.0, 1.0)]),
    ]
}

#[test]
fn round_trips_with_real_godot_3() {
    let Some(godot) = godot() else {
        println!("SKIPPED: godot3-server not found (apt-get install godot3-server)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("lunanet-godot3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("variant_client.gd");
    std::fs::write(&script, SCRIPT).expect("write script");

    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let log = std::fs::File::create(dir.join("godot.log")).expect("log");
    let mut child = Command::new(&godot)
        .args(["--no-window", "-s"])
        .arg(&script)
        // Without a project, Godot writes user:// files (logs/) under the
        // working directory: keep them in the temp dir.
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("LUNANET_PORT", server.local_port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().expect("log"))
        .spawn()
        .expect("spawn godot3-server");

    let want = values();
    let mut received = Vec::new();
    let mut peer = None;
    let mut replied = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        assert!(
            Instant::now() < deadline,
            "godot3-server did not finish in 90 s"
        );
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        if peer.is_none() {
            peer = server.take_connection().map(|mut p| {
                p.set_godot_version(GodotVersion::V3);
                p
            });
        }
        if let Some(p) = peer.as_mut() {
            loop {
                match p.get_var() {
                    Ok(v) if v == Variant::from("END") => {
                        p.put_var(&v).expect("echo END");
                        for w in &want {
                            p.put_var(w).expect("send value");
                        }
                        replied = true;
                    }
                    Ok(v) => {
                        p.put_var(&v).expect("echo");
                        received.push(v);
                    }
                    Err(SocketError::Busy) | Err(SocketError::FileEof) => break,
                    Err(SocketError::ConnectionClosed) => break,
                    Err(e) => panic!("get_var from Godot: {e}"),
                }
            }
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
    };
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    let log = std::fs::read_to_string(dir.join("godot.log")).unwrap_or_default();
    println!("godot3-server stdout:\n{out}\nstderr:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);

    // Direction 1, lunanet's side: every value decoded as built in Rust.
    assert_eq!(received.len(), want.len() + 1, "values received from Godot");
    for (i, (got, w)) in received.iter().zip(&want).enumerate() {
        assert_eq!(got, w, "value {i} decoded from Godot 3");
    }
    assert!(
        matches!(received.last(), Some(Variant::Object(id)) if *id != 0),
        "object id: {:?}",
        received.last()
    );
    assert!(replied, "END never arrived");
    // Both directions, Godot's side.
    let expected = format!("RESULT OK {}", 2 * want.len() + 1);
    assert!(out.contains(&expected), "Godot reported: {out}");
    assert!(status.success(), "godot3-server exit status {status}");
}
