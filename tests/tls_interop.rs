//! StreamPeerTls against TLS stacks nobody here wrote: `openssl s_client` and
//! `openssl s_server` (TLS 1.2 and 1.3 each), `curl --cacert`, Python's `ssl`.
//! A test whose tool is missing prints a SKIPPED line (CI installs them).
#![cfg(feature = "tls")]

mod tls_util;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lunanet::tls::rustls::ProtocolVersion;
use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus};
use lunanet::{Reactor, StreamPeer, StreamPeerTcp, TcpServer};
use tls_util::*;

/// A child process killed on drop, whose stdout is collected by a thread.
struct Proc {
    child: Child,
    out: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            out,
            seen: Vec::new(),
        }
    }

    /// Collects what stdout produced so far.
    fn stdout(&mut self) -> &[u8] {
        while let Ok(chunk) = self.out.try_recv() {
            self.seen.extend_from_slice(&chunk);
        }
        &self.seen
    }

    /// Everything stdout produced, once the process has exited: waits (bounded)
    /// for the reader thread to reach the end of the pipe.
    fn final_stdout(&mut self) -> String {
        let deadline = Instant::now() + LONG;
        while let Ok(chunk) = self
            .out
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&self.seen).to_string()
    }

    fn stdout_has(&mut self, needle: &str) -> bool {
        String::from_utf8_lossy(self.stdout()).contains(needle)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lunanet TLS echo server stepped by the test: accepts, handshakes, echoes.
struct Echo {
    reactor: Reactor,
    server: TcpServer,
    options: TlsOptions,
    peers: Vec<StreamPeerTls>,
    versions: Vec<ProtocolVersion>,
}

impl Echo {
    fn new(options: TlsOptions) -> Echo {
        let reactor = Reactor::new().unwrap();
        let server = listen(&reactor);
        Echo {
            reactor,
            server,
            options,
            peers: Vec::new(),
            versions: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.server.local_port()
    }

    fn step(&mut self, reply: impl Fn(&[u8]) -> Option<Vec<u8>>) {
        self.reactor.poll(Some(Duration::from_millis(10))).unwrap();
        while let Some(tcp) = self.server.take_connection() {
            self.peers
                .push(StreamPeerTls::accept_stream(tcp, &self.options).unwrap());
        }
        for p in &mut self.peers {
            let _ = p.process();
            if let Some(v) = p.protocol_version()
                && !self.versions.contains(&v)
            {
                self.versions.push(v);
            }
            let mut buf = vec![0u8; p.available_bytes()];
            if !buf.is_empty()
                && p.peek_data(&mut buf) == buf.len()
                && let Some(out) = reply(&buf)
            {
                p.get_data(&mut buf).unwrap();
                p.put_data(&out).unwrap();
            }
        }
    }
}

fn echo_lines(buf: &[u8]) -> Option<Vec<u8>> {
    buf.ends_with(b"\n").then(|| buf.to_vec())
}

fn s_client_against_lunanet(version_flag: &str, expect: ProtocolVersion) {
    let test = format!("openssl s_client {version_flag} -> lunanet server");
    if !have("openssl", &test) {
        return;
    }
    let certs = certs(&["localhost"]);
    let mut echo = Echo::new(certs.server_options());
    let mut client = Proc::spawn(Command::new("openssl").args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", echo.port()),
        "-servername",
        "localhost",
        "-verify_hostname",
        "localhost",
        "-CAfile",
        certs.cert_path.to_str().unwrap(),
        "-verify_return_error",
        version_flag,
        "-quiet",
    ]));
    let line = "hello from openssl s_client\n";
    client
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    client.child.stdin.as_mut().unwrap().flush().unwrap();
    let deadline = Instant::now() + LONG;
    while !client.stdout_has(line) {
        if Instant::now() >= deadline || client.exited().is_some() {
            panic!("{test}: no echo; s_client said: {}", client.stderr());
        }
        echo.step(echo_lines);
    }
    assert_eq!(echo.versions, vec![expect], "{test}");
    assert!(
        echo.peers
            .iter()
            .all(|p| p.status() == TlsStatus::Connected)
    );
    println!("{test}: echo OK over {expect:?}");
}

#[test]
fn openssl_s_client_tls13() {
    s_client_against_lunanet("-tls1_3", ProtocolVersion::TLSv1_3);
}

#[test]
fn openssl_s_client_tls12() {
    s_client_against_lunanet("-tls1_2", ProtocolVersion::TLSv1_2);
}

fn lunanet_against_s_server(version_flag: &str, expect: ProtocolVersion) {
    let test = format!("lunanet client -> openssl s_server {version_flag}");
    if !have("openssl", &test) {
        return;
    }
    let certs = certs(&["localhost"]);
    let mut server = Proc::spawn(Command::new("openssl").args([
        "s_server",
        "-accept",
        "127.0.0.1:0",
        "-cert",
        certs.cert_path.to_str().unwrap(),
        "-key",
        certs.key_path.to_str().unwrap(),
        "-rev",
        version_flag,
    ]));
    // s_server prints "ACCEPT 127.0.0.1:<port>" once it listens.
    let deadline = Instant::now() + LONG;
    let port: u16 = loop {
        let out = String::from_utf8_lossy(server.stdout()).to_string();
        if let Some(rest) = out.split("ACCEPT 127.0.0.1:").nth(1)
            && let Some(p) = rest.split_whitespace().next()
        {
            break p.parse().expect("port");
        }
        assert!(
            Instant::now() < deadline && server.exited().is_none(),
            "s_server did not start: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let reactor = Reactor::new().unwrap();
    let mut tcp = StreamPeerTcp::new(&reactor);
    tcp.connect_to_host("127.0.0.1", port).unwrap();
    let mut client =
        StreamPeerTls::connect_to_stream(tcp, "localhost", certs.client_options()).unwrap();
    client.put_data(b"hello lunanet\n").unwrap();
    let want = b"tenanul olleh\n";
    let mut got = Vec::new();
    let deadline = Instant::now() + LONG;
    while !got.ends_with(want) {
        assert!(
            Instant::now() < deadline,
            "{test}: got {:?}, status {:?} {:?}",
            String::from_utf8_lossy(&got),
            client.status(),
            client.tls_error()
        );
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
        client.process().unwrap();
        let mut buf = [0u8; 256];
        let n = client.get_partial_data(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(client.protocol_version(), Some(expect), "{test}");
    assert_eq!(client.status(), TlsStatus::Connected);
    client.disconnect_from_stream();
    println!("{test}: reversed echo OK over {expect:?}");
}

#[test]
fn openssl_s_server_tls13() {
    lunanet_against_s_server("-tls1_3", ProtocolVersion::TLSv1_3);
}

#[test]
fn openssl_s_server_tls12() {
    lunanet_against_s_server("-tls1_2", ProtocolVersion::TLSv1_2);
}

/// A minimal HTTPS responder on the lunanet TLS server, fetched by curl with
/// certificate checking (`--cacert`), over TLS 1.3 and TLS 1.2.
#[test]
fn curl_cacert_https() {
    if !have("curl", "curl --cacert -> lunanet HTTPS") {
        return;
    }
    let certs = certs(&["localhost"]);
    for tls_max in ["1.3", "1.2"] {
        let mut echo = Echo::new(certs.server_options());
        let port = echo.port();
        let mut curl = Proc::spawn(Command::new("curl").args([
            "-sS",
            "--max-time",
            "15",
            "--tls-max",
            tls_max,
            "--cacert",
            certs.cert_path.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            &format!("https://localhost:{port}/hello"),
        ]));
        let deadline = Instant::now() + LONG;
        let status = loop {
            if let Some(s) = curl.exited() {
                break s;
            }
            assert!(Instant::now() < deadline, "curl hung");
            echo.step(|req| {
                let req = String::from_utf8_lossy(req);
                req.ends_with("\r\n\r\n").then(|| {
                    assert!(req.starts_with("GET /hello HTTP/1.1\r\n"), "{req}");
                    b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello from tls\n"
                        .to_vec()
                })
            });
        };
        let body = curl.final_stdout();
        assert!(status.success(), "curl failed: {}", curl.stderr());
        assert_eq!(body, "hello from tls\n");
        let want = if tls_max == "1.3" {
            ProtocolVersion::TLSv1_3
        } else {
            ProtocolVersion::TLSv1_2
        };
        assert_eq!(echo.versions, vec![want]);
        println!("curl --tls-max {tls_max} --cacert: 200 OK over {want:?}");
    }
}

/// curl refuses the self-signed certificate without `--cacert` (a real
/// client's check, not ours), and the lunanet server reports the alert.
#[test]
fn curl_without_cacert_refuses() {
    if !have("curl", "curl (no cacert) -> lunanet HTTPS") {
        return;
    }
    let certs = certs(&["localhost"]);
    let mut echo = Echo::new(certs.server_options());
    let port = echo.port();
    let mut curl = Proc::spawn(Command::new("curl").args([
        "-sS",
        "--max-time",
        "15",
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}/"),
    ]));
    let deadline = Instant::now() + LONG;
    let status = loop {
        if let Some(s) = curl.exited() {
            break s;
        }
        assert!(Instant::now() < deadline, "curl hung");
        echo.step(|_| None);
    };
    assert!(!status.success());
    let deadline = Instant::now() + LONG;
    while !echo.peers.iter().any(|p| p.status() == TlsStatus::Error) {
        assert!(Instant::now() < deadline, "server did not see the failure");
        echo.step(|_| None);
    }
    let e = echo.peers[0].tls_error().unwrap();
    println!("server side: {e}");
}

const PY_CLIENT: &str = r#"
import socket, ssl, sys
cafile, port, version = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = v
ctx.maximum_version = v
with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello from python\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        print(s.version(), data.decode().strip())
"#;

#[test]
fn python_ssl_client() {
    if !have("python3", "python ssl -> lunanet server") {
        return;
    }
    let certs = certs(&["localhost"]);
    for version in ["1.3", "1.2"] {
        let mut echo = Echo::new(certs.server_options());
        let mut py = Proc::spawn(Command::new("python3").args([
            "-c",
            PY_CLIENT,
            certs.cert_path.to_str().unwrap(),
            &echo.port().to_string(),
            version,
        ]));
        let deadline = Instant::now() + LONG;
        let status = loop {
            if let Some(s) = py.exited() {
                break s;
            }
            assert!(Instant::now() < deadline, "python hung");
            echo.step(echo_lines);
        };
        let out = py.final_stdout();
        assert!(status.success(), "python failed: {}", py.stderr());
        assert_eq!(out.trim(), format!("TLSv{version} hello from python"));
        println!("python ssl: {}", out.trim());
    }
}

/// Python with the wrong expected hostname refuses our certificate; lunanet
/// as client refuses a server whose certificate names another host.
#[test]
fn python_hostname_mismatch() {
    if !have("python3", "python ssl hostname mismatch") {
        return;
    }
    let certs = certs(&["other.example"]);
    let mut echo = Echo::new(certs.server_options());
    let mut py = Proc::spawn(Command::new("python3").args([
        "-c",
        PY_CLIENT,
        certs.cert_path.to_str().unwrap(),
        &echo.port().to_string(),
        "1.3",
    ]));
    let deadline = Instant::now() + LONG;
    let status = loop {
        if let Some(s) = py.exited() {
            break s;
        }
        assert!(Instant::now() < deadline, "python hung");
        echo.step(echo_lines);
    };
    assert!(!status.success());
    let err = py.stderr();
    assert!(err.contains("CERTIFICATE_VERIFY_FAILED"), "{err}");
}

const GODOT_CLIENT: &str = r#"extends SceneTree

func _init():
	var port = int(OS.get_environment("LUNANET_PORT"))
	var cert = X509Certificate.new()
	if cert.load(OS.get_environment("LUNANET_CERT")) != OK:
		print("GODOT_FAIL cannot load the certificate")
		quit()
		return
	var tcp = StreamPeerTCP.new()
	tcp.connect_to_host("127.0.0.1", port)
	var start = OS.get_ticks_msec()
	while tcp.get_status() == StreamPeerTCP.STATUS_CONNECTING and OS.get_ticks_msec() - start < 10000:
		OS.delay_msec(5)
	var ssl = StreamPeerSSL.new()
	ssl.blocking_handshake = false
	var err = ssl.connect_to_stream(tcp, true, "localhost", cert)
	if err != OK:
		print("GODOT_FAIL connect_to_stream ", err)
		quit()
		return
	while ssl.get_status() == StreamPeerSSL.STATUS_HANDSHAKING and OS.get_ticks_msec() - start < 10000:
		ssl.poll()
		OS.delay_msec(5)
	if ssl.get_status() != StreamPeerSSL.STATUS_CONNECTED:
		print("GODOT_FAIL status ", ssl.get_status())
		quit()
		return
	ssl.put_data("hello from godot 3\n".to_utf8())
	var got = ""
	while not got.ends_with("\n") and OS.get_ticks_msec() - start < 10000:
		ssl.poll()
		var n = ssl.get_available_bytes()
		if n > 0:
			var r = ssl.get_partial_data(n)
			got += r[1].get_string_from_utf8()
		else:
			OS.delay_msec(5)
	print("GODOT_ECHO ", got.strip_edges())
	ssl.disconnect_from_stream()
	quit()
"#;

/// Godot 3.2.3's StreamPeerSSL (mbedTLS 2.16, TLS 1.2 only) as a real
/// client, validating our certificate for "localhost".
#[test]
fn godot3_stream_peer_ssl_client() {
    if !have("godot3-server", "Godot 3 StreamPeerSSL -> lunanet server") {
        return;
    }
    let certs = certs(&["localhost"]);
    let script = certs.dir.join("client.gd");
    std::fs::write(&script, GODOT_CLIENT).unwrap();
    let mut echo = Echo::new(certs.server_options());
    let home = certs.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut godot = Proc::spawn(
        Command::new("godot3-server")
            .args(["--no-window", "-s", script.to_str().unwrap()])
            // Godot treats the working directory as its project and writes
            // logs/ there: keep it in the temporary directory.
            .current_dir(&certs.dir)
            .env("HOME", &home)
            .env("LUNANET_PORT", echo.port().to_string())
            .env("LUNANET_CERT", &certs.cert_path),
    );
    let deadline = Instant::now() + LONG;
    while !godot.stdout_has("GODOT_ECHO") && !godot.stdout_has("GODOT_FAIL") {
        assert!(
            Instant::now() < deadline && godot.exited().is_none(),
            "godot did not finish: {}",
            String::from_utf8_lossy(godot.stdout())
        );
        echo.step(echo_lines);
    }
    let out = String::from_utf8_lossy(godot.stdout()).to_string();
    assert!(out.contains("GODOT_ECHO hello from godot 3"), "{out}");
    assert_eq!(echo.versions, vec![ProtocolVersion::TLSv1_2]);
    println!("Godot 3.2.3 StreamPeerSSL: echo OK over TLS 1.2");
}
