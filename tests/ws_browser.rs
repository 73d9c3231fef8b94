//! lunanet's WebSocket server against a real browser: headless Chromium loads
//! a page served by the test server (plain HTTP on the same port), which
//! exchanges binary, text and a 60 000-byte message, then opens 100 sockets at
//! once. Skipped, with a SKIPPED line, when Chromium is missing (CI installs
//! it).
#![cfg(feature = "websocket")]

mod ws_common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lunanet::websocket::WebSocketOptions;
use ws_common::{Event, spawn_echo};

fn chromium() -> Option<String> {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return Some(candidate.to_owned());
        }
    }
    None
}

/// Chromium, killed (this child only) when dropped.
struct Browser(Child, std::path::PathBuf);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[test]
fn headless_chromium_exchanges_messages_and_opens_100_sockets() {
    let Some(chromium) = chromium() else {
        eprintln!("SKIPPED: chromium not found (apt-get install chromium)");
        return;
    };
    let page = std::fs::read_to_string(ws_common::script("browser_test.html")).expect("page");
    let server = spawn_echo(WebSocketOptions::default(), Some(page));
    let profile = std::env::temp_dir().join(format!(
        "lunanet-chromium-{}-{}",
        std::process::id(),
        server.port
    ));
    let child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // Keeps Chromium running with the page open (--dump-dom with a
            // virtual-time budget exits before WebSocket traffic is done:
            // sockets do not hold virtual time back); killed after the
            // report.
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut browser = Browser(child, profile);

    // The page's verdict arrives over a WebSocket; Chromium may take a while
    // to start on a loaded 2-core machine.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut report = None;
    let mut opened = 0;
    let mut closed_1000 = 0;
    while report.is_none() && Instant::now() < deadline {
        match server.events.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Report(r)) => report = Some(r),
            Ok(Event::Opened { url, .. }) => {
                assert_eq!(url, "/browser");
                opened += 1;
            }
            Ok(Event::Closed { code, .. }) => closed_1000 += usize::from(code == 1000),
            Err(_) => {
                if let Ok(Some(status)) = browser.0.try_wait() {
                    let dom = browser
                        .0
                        .stdout
                        .take()
                        .map(|mut o| {
                            let mut s = String::new();
                            let _ = std::io::Read::read_to_string(&mut o, &mut s);
                            s
                        })
                        .unwrap_or_default();
                    panic!("chromium exited ({status}) before reporting; output: {dom}");
                }
            }
        }
    }
    let report = report.expect("the page reported within 90 s");
    assert_eq!(report, "PASS binary text big sockets=100");
    assert!(opened >= 101, "opened {opened}");
    // The 100 sockets close with 1000 "bye": the server saw each closing
    // handshake complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    while closed_1000 < 100 && Instant::now() < deadline {
        if let Ok(Event::Closed { code, .. }) =
            server.events.recv_timeout(Duration::from_millis(200))
        {
            closed_1000 += usize::from(code == 1000);
        }
    }
    assert_eq!(closed_1000, 100, "clean closes seen by the server");
}
