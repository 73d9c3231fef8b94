//! StreamPeerTls between lunanet peers and against raw sockets: data paths,
//! backpressure, closing, and each failure with its status and error.
#![cfg(feature = "tls")]

mod tls_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lunanet::tls::{StreamPeerTls, TlsConfigError, TlsError, TlsOptions, TlsStatus};
use lunanet::variant::{GodotVersion, Vector2};
use lunanet::{PacketPeerStream, Reactor, SocketError, StreamPeer, StreamPeerTcp, vdict};
use tls_util::*;

fn pattern(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| (i * 31 % 251) as u8)
        .collect()
}

#[test]
fn typed_helpers_and_packets_over_tls() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let (mut client, mut server) = tls_pair(
        &reactor,
        &certs.server_options(),
        certs.client_options(),
        "localhost",
    );
    assert_eq!(client.status(), TlsStatus::Connected);
    assert_eq!(server.status(), TlsStatus::Connected);
    assert_eq!(server.server_name().as_deref(), Some("localhost"));
    assert_eq!(
        client.protocol_version(),
        Some(lunanet::tls::rustls::ProtocolVersion::TLSv1_3)
    );

    client.put_u32(0xdead_beef).unwrap();
    client.put_utf8_string("héllo").unwrap();
    poll_until(&reactor, "typed values", || {
        server.process().unwrap();
        server.available_bytes() >= 4 + 4 + 6
    });
    assert_eq!(server.get_u32().unwrap(), 0xdead_beef);
    assert_eq!(server.get_utf8_string().unwrap(), "héllo");

    // Godot Variants over TLS, in both Godot versions' encodings.
    for version in [GodotVersion::V4, GodotVersion::V3] {
        client.set_godot_version(version);
        server.set_godot_version(version);
        assert_eq!(server.godot_version(), version);
        let value = vdict! { "name" => "ada", "hp" => 12.5, "pos" => Vector2::new(1.0, 2.0) };
        client.put_var(&value).unwrap();
        let mut got = Err(SocketError::Busy);
        poll_until(&reactor, "a Variant", || {
            server.process().unwrap();
            got = server.get_var();
            got != Err(SocketError::Busy)
        });
        assert_eq!(got.unwrap(), value);
    }

    // PacketPeerStream works over TLS unchanged.
    let mut cp = PacketPeerStream::new(client);
    let mut sp = PacketPeerStream::new(server);
    for i in 0..10u8 {
        cp.put_packet(&vec![i; 100 * i as usize]).unwrap();
    }
    let mut got = Vec::new();
    poll_until(&reactor, "ten packets", || {
        sp.get_mut().process().unwrap();
        while let Ok(p) = sp.get_packet() {
            got.push(p);
        }
        got.len() == 10
    });
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p, &vec![i as u8; 100 * i]);
    }
}

#[test]
fn data_put_while_handshaking_is_delivered() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut tcp = StreamPeerTcp::new(&reactor);
    tcp.connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    let mut client =
        StreamPeerTls::connect_to_stream(tcp, "localhost", certs.client_options()).unwrap();
    assert_eq!(client.status(), TlsStatus::Handshaking);
    let early = pattern(0, 100_000);
    client.put_data(&early).unwrap();
    // Beyond the write limit while handshaking: refused whole, nothing taken.
    let limit = certs.client_options().write_buffer_limit();
    assert_eq!(
        client.put_data(&vec![0; limit]),
        Err(SocketError::OutOfBufferMemory)
    );
    let mut accepted = None;
    let mut got = Vec::new();
    poll_until(&reactor, "early data", || {
        if let Some(tcp) = server.take_connection() {
            accepted = Some(StreamPeerTls::accept_stream(tcp, &certs.server_options()).unwrap());
        }
        let _ = client.process();
        if let Some(a) = accepted.as_mut() {
            let mut buf = [0u8; 8192];
            while let Ok(n) = a.get_partial_data(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        got.len() == early.len()
    });
    assert_eq!(got, early);
}

/// A slow reader: the sender's TLS and TCP layers stop taking bytes at their
/// limits (nothing grows without bound), and every accepted byte arrives.
#[test]
fn backpressure_is_bounded_and_lossless() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::with_config(
        lunanet::Config::default()
            .read_buffer_limit(32 * 1024)
            .write_buffer_limit(64 * 1024),
    )
    .unwrap();
    let server_options = certs.server_options().with_read_buffer_limit(16 * 1024);
    let client_options = certs.client_options().with_write_buffer_limit(16 * 1024);
    let (mut client, mut server) = tls_pair(&reactor, &server_options, client_options, "localhost");
    let total = 4 * 1024 * 1024;
    let data = pattern(0, total);
    let mut sent = 0;
    // Fill until the sender refuses: the receiver is not reading.
    let deadline = Instant::now() + LONG;
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 50 {
        assert!(
            Instant::now() < deadline,
            "sender never stopped taking bytes"
        );
        let n = client
            .put_partial_data(&data[sent..(sent + 8192).min(total)])
            .unwrap();
        sent += n;
        refused_in_a_row = if n == 0 { refused_in_a_row + 1 } else { 0 };
        reactor.poll(Some(Duration::from_millis(1))).unwrap();
        assert!(sent < total, "a non-reading peer took everything");
    }
    // Bounded: TCP queue + one TLS write + the receiver's buffers + kernel.
    assert!(
        client.get_stream().unwrap().pending_write_bytes() <= 64 * 1024 + 16 * 1024 + 1024,
        "TCP queue {} over its limit",
        client.get_stream().unwrap().pending_write_bytes()
    );
    assert!(server.available_bytes() <= 16 * 1024);
    // Now read everything; the sender resumes.
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + LONG;
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "transfer stalled at {}",
            got.len()
        );
        if sent < total {
            sent += client
                .put_partial_data(&data[sent..(sent + 8192).min(total)])
                .unwrap();
        }
        reactor.poll(Some(Duration::from_millis(1))).unwrap();
        client.process().unwrap();
        server.process().unwrap();
        loop {
            let n = server.get_partial_data(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got.len(), total);
    assert!(got == data, "bytes differ");
}

#[test]
fn clean_close_delivers_everything_then_eof() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let (mut client, mut server) = tls_pair(
        &reactor,
        &certs.server_options(),
        certs.client_options(),
        "localhost",
    );
    let data = pattern(7, 200_000);
    client.put_data(&data).unwrap();
    client.disconnect_from_stream();
    assert_eq!(client.status(), TlsStatus::Disconnected);
    assert_eq!(client.put_data(b"x"), Err(SocketError::SocketInvalid));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    poll_until(&reactor, "data and close_notify", || {
        client.process().unwrap();
        let _ = server.process();
        loop {
            match server.get_partial_data(&mut buf) {
                Ok(0) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(SocketError::FileEof) => return true,
                Err(e) => panic!("unexpected {e:?} ({:?})", server.tls_error()),
            }
        }
    });
    assert_eq!(got, data);
    assert_eq!(server.status(), TlsStatus::Disconnected);
    assert!(server.tls_error().is_none());
    // io::Read sees the clean end as Ok(0).
    assert_eq!(server.read(&mut buf).unwrap(), 0);
}

#[test]
fn close_without_close_notify_is_truncation() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let (mut client, mut server) = tls_pair(
        &reactor,
        &certs.server_options(),
        certs.client_options(),
        "localhost",
    );
    client.put_data(b"last words").unwrap();
    client.process().unwrap();
    // Close the TCP connection under the TLS session: no close_notify.
    client.get_stream_mut().unwrap().disconnect_from_host();
    let mut got = Vec::new();
    poll_until(&reactor, "truncation seen", || {
        let _ = server.process();
        let mut buf = [0u8; 64];
        if let Ok(n) = server.get_partial_data(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        server.status() == TlsStatus::Error
    });
    // What arrived before is still readable, then FileEof.
    let mut buf = [0u8; 64];
    while let Ok(n) = server.get_partial_data(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"last words");
    assert_eq!(server.tls_error(), Some(&TlsError::Truncated));
    assert_eq!(server.get_partial_data(&mut buf), Err(SocketError::FileEof));
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::UnexpectedEof
    );
    assert!(server.process().is_err());
}

#[test]
fn hostname_mismatch() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let (client, server) = tls_pair(
        &reactor,
        &certs.server_options(),
        certs.client_options(),
        "game.example.com",
    );
    assert_eq!(client.status(), TlsStatus::ErrorHostnameMismatch);
    let e = client.tls_error().unwrap();
    assert!(matches!(e, TlsError::HostnameMismatch(_)), "{e:?}");
    assert!(e.to_string().contains("hostname"), "{e}");
    // The server learns from the client's alert.
    assert_eq!(server.status(), TlsStatus::Error);
    assert!(matches!(server.tls_error(), Some(TlsError::Protocol(_))));
}

#[test]
fn untrusted_certificate() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    // Mozilla's roots do not include our self-signed certificate.
    let (client, _server) = tls_pair(
        &reactor,
        &certs.server_options(),
        TlsOptions::client(),
        "localhost",
    );
    assert_eq!(client.status(), TlsStatus::Error);
    let e = client.tls_error().unwrap();
    assert!(matches!(e, TlsError::Certificate(_)), "{e:?}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert_eq!(e.socket_error(), SocketError::ConnectFailed);

    // client_unsafe() accepts it (and any name).
    let (client, server) = tls_pair(
        &reactor,
        &certs.server_options(),
        TlsOptions::client_unsafe(),
        "anything.example",
    );
    assert_eq!(client.status(), TlsStatus::Connected);
    assert_eq!(server.status(), TlsStatus::Connected);
}

#[test]
fn expired_certificate() {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let certs = write_certs(cert.pem(), key.serialize_pem());
    let reactor = Reactor::new().unwrap();
    let (client, _server) = tls_pair(
        &reactor,
        &certs.server_options(),
        certs.client_options(),
        "localhost",
    );
    assert_eq!(client.status(), TlsStatus::Error);
    let e = client.tls_error().unwrap();
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn plaintext_to_tls_port() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut raw = TcpStream::connect(("127.0.0.1", server.local_port())).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut peer = None;
    poll_until(&reactor, "plaintext refused", || {
        if let Some(tcp) = server.take_connection() {
            peer = Some(StreamPeerTls::accept_stream(tcp, &certs.server_options()).unwrap());
        }
        peer.as_mut().is_some_and(|p| {
            let _ = p.process();
            p.status() == TlsStatus::Error
        })
    });
    let peer = peer.unwrap();
    let e = peer.tls_error().unwrap();
    assert!(matches!(e, TlsError::NotTls(_)), "{e:?}");
    assert!(e.to_string().contains("GET / HTTP"), "{e}");
}

/// The first bytes of a genuine ClientHello.
fn client_hello() -> Vec<u8> {
    let certs = certs(&["localhost"]);
    let opts = certs.client_options();
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut raw = None;
    let mut tcp = StreamPeerTcp::new(&reactor);
    tcp.connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    let _client = StreamPeerTls::connect_to_stream(tcp, "localhost", opts).unwrap();
    poll_until(&reactor, "accept", || {
        raw = raw.take().or_else(|| server.take_connection());
        raw.as_ref().is_some_and(|r| r.available_bytes() > 100)
    });
    let mut raw = raw.unwrap();
    let mut hello = vec![0u8; raw.available_bytes()];
    raw.get_data(&mut hello).unwrap();
    hello
}

#[test]
fn truncated_handshake_then_close() {
    let hello = client_hello();
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut raw = TcpStream::connect(("127.0.0.1", server.local_port())).unwrap();
    raw.write_all(&hello[..hello.len() / 2]).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut peer = None;
    poll_until(&reactor, "closed during handshake", || {
        if let Some(tcp) = server.take_connection() {
            peer = Some(StreamPeerTls::accept_stream(tcp, &certs.server_options()).unwrap());
        }
        peer.as_mut().is_some_and(|p| {
            let _ = p.process();
            p.status() == TlsStatus::Error
        })
    });
    assert_eq!(
        peer.unwrap().tls_error(),
        Some(&TlsError::ClosedDuringHandshake)
    );
}

#[test]
fn stalled_handshake_times_out() {
    let hello = client_hello();
    let certs = certs(&["localhost"]);
    let options = certs
        .server_options()
        .with_handshake_timeout(Duration::from_millis(300));
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut raw = TcpStream::connect(("127.0.0.1", server.local_port())).unwrap();
    raw.write_all(&hello[..20]).unwrap();
    let start = Instant::now();
    let mut peer = None;
    poll_until(&reactor, "handshake timeout", || {
        if let Some(tcp) = server.take_connection() {
            peer = Some(StreamPeerTls::accept_stream(tcp, &options).unwrap());
        }
        peer.as_mut().is_some_and(|p| {
            let _ = p.process();
            p.status() == TlsStatus::Error
        })
    });
    assert!(start.elapsed() >= Duration::from_millis(300));
    let peer = peer.unwrap();
    assert!(matches!(
        peer.tls_error(),
        Some(TlsError::HandshakeTimeout(_))
    ));
    drop(peer);
    // The raw client sees the connection end (no hang).
    raw.set_read_timeout(Some(LONG)).unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
}

#[test]
fn connection_refused_is_a_transport_error() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut tcp = StreamPeerTcp::new(&reactor);
    tcp.connect_to_host("127.0.0.1", port).unwrap();
    let mut client =
        StreamPeerTls::connect_to_stream(tcp, "localhost", certs.client_options()).unwrap();
    poll_until(&reactor, "refused", || {
        let _ = client.process();
        client.status() == TlsStatus::Error
    });
    assert_eq!(
        client.tls_error(),
        Some(&TlsError::Transport(SocketError::ConnectFailed))
    );
    assert_eq!(client.poll(), Err(SocketError::ConnectFailed));
}

#[test]
fn wrong_options_and_names_are_refused() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let e = StreamPeerTls::accept_stream(StreamPeerTcp::new(&reactor), &certs.client_options())
        .unwrap_err();
    assert!(matches!(e, TlsError::WrongOptions(_)));
    let e = StreamPeerTls::connect_to_stream(
        StreamPeerTcp::new(&reactor),
        "localhost",
        certs.server_options(),
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::WrongOptions(_)));
    let e = StreamPeerTls::connect_to_stream(
        StreamPeerTcp::new(&reactor),
        "not a name!",
        certs.client_options(),
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::InvalidServerName(_)), "{e:?}");
}

#[test]
fn option_errors_name_what_failed() {
    let a = certs(&["localhost"]);
    let b = certs(&["localhost"]);
    let e = TlsOptions::server(b"junk", a.key_pem.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        TlsConfigError::NoCertificate {
            what: "certificate chain"
        }
    );
    assert!(e.to_string().contains("certificate chain"));
    let e = TlsOptions::server(a.cert_pem.as_bytes(), a.cert_pem.as_bytes()).unwrap_err();
    assert_eq!(e, TlsConfigError::NoPrivateKey);
    let e = TlsOptions::server(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
    assert_eq!(e, TlsConfigError::KeyMismatch);
    assert!(e.to_string().contains("does not match"));
    let broken = a.cert_pem.replace("-----END CERTIFICATE-----", "");
    let e = TlsOptions::client_with_roots(broken.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            TlsConfigError::Pem {
                what: "trusted roots",
                ..
            }
        ),
        "{e:?}"
    );
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = TlsOptions::client_with_roots(garbage.as_bytes()).unwrap_err();
    assert!(
        matches!(e, TlsConfigError::BadCertificate { index: 0, .. }),
        "{e:?}"
    );
    let e = TlsOptions::server(
        a.cert_pem.as_bytes(),
        garbage.replace("CERTIFICATE", "PRIVATE KEY").as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(e, TlsConfigError::BadPrivateKey(_)), "{e:?}");
}

/// The tick-loop shape: one reactor poll per tick, then `process` only on the
/// peers in the ready set.
#[test]
fn ready_set_ping_pong() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let server_options = certs.server_options();
    let mut server = listen(&reactor);
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut tcp = StreamPeerTcp::new(&reactor);
        tcp.connect_to_host("127.0.0.1", server.local_port())
            .unwrap();
        let mut c =
            StreamPeerTls::connect_to_stream(tcp, "localhost", certs.client_options()).unwrap();
        c.put_u32(0).unwrap();
        clients.push(c);
    }
    let mut peers: std::collections::HashMap<lunanet::HandleId, StreamPeerTls> =
        std::collections::HashMap::new();
    let mut ready = Vec::new();
    let mut counts = vec![0u32; clients.len()];
    let deadline = Instant::now() + LONG;
    while counts.iter().any(|&c| c < 50) {
        assert!(Instant::now() < deadline, "ping-pong stalled: {counts:?}");
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
        while let Some(tcp) = server.take_connection() {
            let p = StreamPeerTls::accept_stream(tcp, &server_options).unwrap();
            peers.insert(p.id().unwrap(), p);
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            if let Some(p) = peers.get_mut(&id) {
                p.process().unwrap();
                while let Ok(v) = p.get_u32() {
                    p.put_u32(v + 1).unwrap();
                }
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.process().unwrap();
            while let Ok(v) = c.get_u32() {
                counts[i] = v;
                if v < 50 {
                    c.put_u32(v + 1).unwrap();
                }
            }
        }
    }
}

/// A raw rustls client over a blocking std socket, so the test decides when
/// the server's reactor runs a pass.
struct RawClient {
    tls: lunanet::tls::rustls::ClientConnection,
    sock: TcpStream,
}

impl RawClient {
    fn connect(port: u16, options: &TlsOptions) -> RawClient {
        let config = options.client_config().unwrap().clone();
        let name = "localhost".try_into().unwrap();
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_nodelay(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        RawClient {
            tls: lunanet::tls::rustls::ClientConnection::new(config, name).unwrap(),
            sock,
        }
    }

    /// Sends everything rustls has queued in one `write` (one segment on
    /// loopback, so the server reads it in one pass); returns the length.
    fn send(&mut self) -> usize {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).unwrap();
        }
        self.sock.write_all(&out).unwrap();
        out.len()
    }

    /// Reads from the socket (never running the server's reactor) until
    /// `done`; false if that did not happen within `within`.
    fn read_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&mut lunanet::tls::rustls::ClientConnection) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        while !done(&mut self.tls) {
            if Instant::now() >= deadline {
                return false;
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => return false,
                Ok(_) => {
                    self.tls.process_new_packets().unwrap();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("raw client read: {e}"),
            }
        }
        true
    }

    /// [`read_until`](Self::read_until) `out` holds at least `want` bytes of
    /// the server's plaintext.
    fn read_plaintext(&mut self, within: Duration, out: &mut Vec<u8>, want: usize) -> bool {
        self.read_until(within, |c| {
            let mut buf = [0u8; 64];
            while let Ok(n) = c.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            out.len() >= want
        })
    }
}

/// With write coalescing on (the default), the TLS session's own records
/// must not hold back the application's reply: the server's flight leaves
/// in the pass that read the ClientHello, and when the pass that reads the
/// client's Finished plus its first request also makes the server send its
/// session tickets, the reply `put` right after is still written at once.
/// Before, the tickets used up the TCP peer's "reply written at once"
/// allowance and the reply waited for the next reactor pass.
#[test]
fn session_records_do_not_hold_back_the_first_reply() {
    let certs = certs(&["localhost"]);
    let reactor = Reactor::new().unwrap();
    let mut server = listen(&reactor);
    let mut client = RawClient::connect(server.local_port(), &certs.client_options());
    let hello = client.send();

    // The pass that reads the ClientHello, then `process` once.
    let mut peer: Option<StreamPeerTls> = None;
    poll_until(&reactor, "the ClientHello read", || {
        if peer.is_none()
            && let Some(tcp) = server.take_connection()
        {
            peer = Some(StreamPeerTls::accept_stream(tcp, &certs.server_options()).unwrap());
        }
        peer.as_ref()
            .is_some_and(|p| p.get_stream().unwrap().available_bytes() >= hello)
    });
    let mut peer = peer.unwrap();
    peer.process().unwrap();
    // No further pass: the flight was written at once.
    assert!(
        client.read_until(LONG, |c| !c.is_handshaking()),
        "the server's handshake flight was not written in the pass that read the ClientHello"
    );

    // Finished and the first request in one segment.
    client.tls.writer().write_all(b"ping").unwrap();
    let sent = client.send();
    poll_until(&reactor, "Finished and the request read", || {
        peer.get_stream().unwrap().available_bytes() >= sent
    });
    peer.process().unwrap();
    assert_eq!(peer.status(), TlsStatus::Connected);
    let mut got = [0u8; 4];
    peer.get_data(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    peer.put_data(b"pong").unwrap();
    // Coalescing still applies to the application: a second put in the
    // same pass is queued for the next pass.
    peer.put_data(b"later").unwrap();
    assert!(peer.get_stream().unwrap().pending_write_bytes() > 0);

    // No further pass: the reply (after the tickets) is already sent.
    let mut reply = Vec::new();
    let arrived = client.read_plaintext(Duration::from_secs(5), &mut reply, 4);
    assert!(
        arrived,
        "the reply put after the handshake waited for the next reactor pass (got {reply:?})"
    );
    assert_eq!(&reply[..4], b"pong");
    assert_eq!(reply.len(), 4, "the queued second put left before a pass");

    // The next pass sends the queued put.
    let mut more = Vec::new();
    let deadline = Instant::now() + LONG;
    while more.len() < 5 {
        assert!(Instant::now() < deadline, "the queued put never left");
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
        client.read_plaintext(Duration::from_millis(10), &mut more, 5);
    }
    assert_eq!(more, b"later");
}
