//! lunanet WebSocket client and server against each other (one reactor) and
//! against a raw socket: subprotocols, bounded inbound queue with TCP
//! backpressure, bounded outbound buffer, heartbeat, abrupt close.
#![cfg(feature = "websocket")]

mod ws_common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use lunanet::websocket::{WebSocketOptions, WebSocketPeer, WsState};
use lunanet::{PacketPeer, Reactor, SocketError, StreamPeerTcp, TcpServer, WriteMode};
use ws_common::{LONG, spawn_echo};

/// A connected client/server pair on one reactor.
fn pair(
    server_options: &WebSocketOptions,
    client_options: &WebSocketOptions,
) -> (Reactor, WebSocketPeer, WebSocketPeer<StreamPeerTcp>) {
    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let url = format!("ws://127.0.0.1:{}/room/7", server.local_port());
    let mut client =
        WebSocketPeer::connect_to_url_with(&reactor, &url, client_options, None).expect("connect");
    let mut accepted: Option<WebSocketPeer<StreamPeerTcp>> = None;
    let deadline = Instant::now() + LONG;
    loop {
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        if let Some(tcp) = server.take_connection() {
            accepted = Some(WebSocketPeer::accept_stream(tcp, server_options));
        }
        client.process();
        if let Some(s) = accepted.as_mut() {
            s.process();
            if s.ready_state() == WsState::Open && client.ready_state() == WsState::Open {
                break;
            }
        }
        assert!(Instant::now() < deadline, "pair did not open: {client:?}");
    }
    (reactor, client, accepted.expect("accepted"))
}

#[test]
fn subprotocol_and_url_reach_the_server() {
    let mut server_options = WebSocketOptions::default();
    server_options.supported_protocols = vec!["b".into(), "a".into()];
    let mut client_options = WebSocketOptions::default();
    client_options.supported_protocols = vec!["a".into(), "b".into()];
    let (_reactor, client, server) = pair(&server_options, &client_options);
    // The client's first choice the server supports.
    assert_eq!(server.selected_protocol(), "a");
    assert_eq!(client.selected_protocol(), "a");
    assert_eq!(server.requested_url(), "/room/7");
}

#[test]
fn send_refusals() {
    let mut small = WebSocketOptions::default();
    small.outbound_buffer_size = 100;
    let (_reactor, mut client, mut server) = pair(&WebSocketOptions::default(), &small);
    // 200 bytes + header can never fit in a 100-byte outbound buffer.
    assert_eq!(
        client.send(&[0; 200], WriteMode::Binary),
        Err(SocketError::OutOfBufferMemory)
    );
    assert_eq!(
        client.send(b"\xff\xfe", WriteMode::Text),
        Err(SocketError::InvalidParameter)
    );
    client.send(&[1; 50], WriteMode::Binary).expect("fits");
    // Not connected yet.
    let reactor = Reactor::new().expect("reactor");
    let mut early = WebSocketPeer::connect_to_url(&reactor, "ws://127.0.0.1:9/", None).expect("ok");
    assert_eq!(early.send_text("x"), Err(SocketError::SocketInvalid));
    assert_eq!(early.get_packet(), Err(SocketError::Busy));
    // Closing.
    server.close(1001, "going away");
    assert_eq!(server.ready_state(), WsState::Closing);
    assert_eq!(server.send_text("x"), Err(SocketError::ConnectionClosed));
}

#[test]
fn inbound_queue_is_bounded_and_reading_resumes() {
    let mut server_options = WebSocketOptions::default();
    server_options.max_queued_packets = 4;
    let (reactor, mut client, mut server) = pair(&server_options, &WebSocketOptions::default());
    const N: usize = 50;
    for i in 0..N {
        let msg = vec![u8::try_from(i).expect("small"); 1000];
        client.put_packet(&msg).expect("send"); // PacketPeer: binary
    }
    // Without taking packets the server never queues more than 4.
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        client.process();
        server.process();
        assert!(server.available_packet_count() <= 4);
    }
    assert_eq!(server.available_packet_count(), 4);
    // Taking them lets reading resume; all arrive, in order.
    let mut got = 0;
    let deadline = Instant::now() + LONG;
    while got < N {
        assert!(Instant::now() < deadline, "only {got} of {N} arrived");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        client.process();
        server.process();
        while let Ok(p) = PacketPeer::get_packet(&mut server) {
            assert!(!server.was_string_packet());
            assert_eq!(p, vec![u8::try_from(got).expect("small"); 1000]);
            got += 1;
        }
    }
}

#[test]
fn outbound_buffer_applies_backpressure() {
    let (reactor, mut client, mut server) =
        pair(&WebSocketOptions::default(), &WebSocketOptions::default());
    // The server does not read: the kernel buffers fill, then lunanet's
    // outbound buffer, then `send` refuses.
    let msg = vec![7u8; 30_000];
    let mut sent = 0usize;
    let deadline = Instant::now() + LONG;
    loop {
        assert!(Instant::now() < deadline, "send never refused");
        match server.send(&msg, WriteMode::Binary) {
            Ok(()) => sent += 1,
            Err(SocketError::OutOfBufferMemory) => break,
            Err(e) => panic!("send: {e}"),
        }
        assert!(server.current_outbound_buffered_amount() <= 65_535);
        reactor.poll(Some(Duration::ZERO)).expect("poll");
    }
    assert!(server.current_outbound_buffered_amount() > 0);
    // Draining on the client side lets everything through.
    let mut got = 0usize;
    let deadline = Instant::now() + LONG;
    while got < sent {
        assert!(Instant::now() < deadline, "{got} of {sent}");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        server.process();
        client.process();
        while let Ok(p) = client.get_packet() {
            assert_eq!(p.len(), 30_000);
            got += 1;
        }
    }
    server.send(&msg, WriteMode::Binary).expect("room again");
}

#[test]
fn negative_close_code_drops_at_once() {
    let (reactor, mut client, mut server) =
        pair(&WebSocketOptions::default(), &WebSocketOptions::default());
    server.close(-1, "");
    assert_eq!(server.ready_state(), WsState::Closed);
    let deadline = Instant::now() + LONG;
    while client.ready_state() != WsState::Closed {
        assert!(Instant::now() < deadline);
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        client.process();
    }
    assert_eq!(client.close_code(), -1, "{}", client.close_reason());
}

#[test]
fn heartbeat_pings_and_drops_a_silent_client() {
    let mut options = WebSocketOptions::default();
    options.heartbeat_interval = Duration::from_millis(100);
    let server = spawn_echo(options, None);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(LONG)).expect("timeout");
    s.write_all(
        b"GET /hb HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("request");
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break; // the server dropped us
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    let body = &bytes[text.find("\r\n\r\n").expect("response") + 4..];
    // Empty Ping frames (0x89 0x00), at least two before the drop.
    let pings = body.chunks(2).filter(|f| *f == [0x89, 0x00]).count();
    assert!(pings >= 2, "pings: {pings} in {body:?}");
    assert!(
        elapsed >= Duration::from_millis(290),
        "dropped after {elapsed:?}"
    );
    let (code, reason) = server.next_close();
    assert_eq!(code, -1);
    assert!(reason.contains("heartbeat"), "{reason}");
}
