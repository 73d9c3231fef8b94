//! "Who left?": the remote address is kept for the connection's lifetime,
//! after the remote closed or the connection failed, until the handle lets go.

mod util;

use std::net::TcpStream;
use std::time::Duration;

use lunanet::{IpAddress, Reactor, Status};
use util::{accept, poll_until, server};

#[test]
fn the_remote_address_outlives_a_graceful_close() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let client = TcpStream::connect(("127.0.0.1", server.local_port())).unwrap();
    let client_addr = client.local_addr().unwrap();
    let mut peer = accept(&reactor, &mut server);
    assert_eq!(peer.remote_addr(), Some(client_addr));
    drop(client); // FIN
    poll_until(&reactor, "the FIN rule", || peer.status() == Status::None);
    assert_eq!(peer.remote_addr(), Some(client_addr), "who left?");
    assert_eq!(peer.connected_host(), IpAddress::from(client_addr.ip()));
    assert_eq!(peer.connected_port(), client_addr.port());
    assert!(format!("{peer:?}").contains(&client_addr.to_string()));
    peer.disconnect_from_host();
    assert_eq!(peer.remote_addr(), None);
    assert_eq!(peer.connected_port(), 0);
    assert!(!peer.connected_host().is_valid());
}

#[test]
fn the_remote_address_outlives_a_reset() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let client = TcpStream::connect(("127.0.0.1", server.local_port())).unwrap();
    let client_addr = client.local_addr().unwrap();
    let peer = accept(&reactor, &mut server);
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client); // RST
    poll_until(&reactor, "the reset", || peer.status() == Status::Error);
    assert_eq!(peer.remote_addr(), Some(client_addr));
    assert_eq!(peer.connected_port(), client_addr.port());
}
