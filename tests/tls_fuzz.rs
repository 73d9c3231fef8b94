//! Property test: the server side of StreamPeerTls fed garbage, truncated and
//! corrupted TLS records, in arbitrary chunks. It must never panic, never
//! report `Connected` for a broken handshake, never loop without end, and
//! keep its output bounded.
#![cfg(feature = "tls")]

use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};

use lunanet::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore};
use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus, TlsTransport};
use lunanet::{SocketError, StreamPeer};
use proptest::prelude::*;

/// An in-memory transport: the test appends input, the peer's output is kept.
#[derive(Default)]
struct Pipe {
    input: Vec<u8>,
    pos: usize,
    eof: bool,
    out: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return if self.eof || buf.is_empty() {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StreamPeer for Pipe {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        self.out.extend_from_slice(data);
        Ok(())
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.out.extend_from_slice(data);
        Ok(data.len())
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        if self.input.len() - self.pos < buf.len() {
            return Err(self.short_read_error());
        }
        buf.copy_from_slice(&self.input[self.pos..self.pos + buf.len()]);
        self.pos += buf.len();
        Ok(())
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        Ok(self.read(buf).unwrap_or(0))
    }
    fn available_bytes(&self) -> usize {
        self.input.len() - self.pos
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        let rest = &self.input[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        n
    }
    fn is_big_endian(&self) -> bool {
        false
    }
    fn set_big_endian(&mut self, _: bool) {}
    fn short_read_error(&mut self) -> SocketError {
        if self.eof {
            SocketError::FileEof
        } else {
            SocketError::Busy
        }
    }
}

impl TlsTransport for Pipe {}

struct Fixture {
    server: TlsOptions,
    client: Arc<ClientConfig>,
    hello: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let server = TlsOptions::server(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let client = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let mut c = ClientConnection::new(client.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut hello = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut hello).unwrap();
        }
        Fixture {
            server,
            client,
            hello,
        }
    })
}

/// Feeds `input` in `chunks`, processing after each; then the end.
fn feed(input: &[u8], chunks: &[usize]) -> StreamPeerTls<Pipe> {
    let mut peer = StreamPeerTls::accept_stream(Pipe::default(), &fixture().server).unwrap();
    let mut at: usize = 0;
    for &c in chunks.iter().chain(std::iter::once(&usize::MAX)) {
        let end = at.saturating_add(c).min(input.len());
        peer.get_stream_mut()
            .unwrap()
            .input
            .extend_from_slice(&input[at..end]);
        at = end;
        let _ = peer.process();
        let mut buf = [0u8; 64];
        let _ = peer.get_partial_data(&mut buf);
        if at == input.len() {
            break;
        }
    }
    peer.get_stream_mut().unwrap().eof = true;
    let _ = peer.process();
    let _ = peer.process();
    // Bounded output: a handshake flight plus an alert, far below 64 KiB.
    assert!(peer.get_stream().unwrap().out.len() < 64 * 1024);
    peer
}

fn assert_failed_or_waiting(peer: &StreamPeerTls<Pipe>) {
    let s = peer.status();
    assert!(
        matches!(s, TlsStatus::Error | TlsStatus::Disconnected),
        "status {s:?} after input ended"
    );
    if s == TlsStatus::Error {
        assert!(!peer.tls_error().unwrap().to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn garbage(input in proptest::collection::vec(any::<u8>(), 0..4096),
               chunks in proptest::collection::vec(1usize..600, 0..16)) {
        let peer = feed(&input, &chunks);
        assert_failed_or_waiting(&peer);
    }

    #[test]
    fn garbage_behind_a_record_header(
        ct in prop_oneof![Just(20u8), Just(21), Just(22), Just(23), any::<u8>()],
        len in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        chunks in proptest::collection::vec(1usize..300, 0..8)) {
        let mut input = vec![ct, 3, 3, (len >> 8) as u8, len as u8];
        input.extend_from_slice(&body);
        let peer = feed(&input, &chunks);
        assert_failed_or_waiting(&peer);
    }

    #[test]
    fn truncated_or_mutated_client_hello(
        cut in 0usize..2000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        chunks in proptest::collection::vec(1usize..200, 0..8)) {
        let mut input = fixture().hello.clone();
        input.truncate(cut.min(input.len()));
        for (at, x) in flips {
            if !input.is_empty() {
                let i = at % input.len();
                input[i] ^= x;
            }
        }
        let peer = feed(&input, &chunks);
        assert_failed_or_waiting(&peer);
    }

    /// A real client whose byte stream to the server is corrupted at one
    /// position: the server fails cleanly (or, if the flip was harmless or
    /// beyond the stream, completes), never panics.
    #[test]
    fn corrupted_session(flip_at in 0usize..3000, flip in 1u8..=255) {
        let f = fixture();
        let mut client = ClientConnection::new(f.client.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut server = StreamPeerTls::accept_stream(Pipe::default(), &f.server).unwrap();
        let mut sent = 0usize;
        client.writer().write_all(b"application data after the handshake").unwrap();
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            if flip_at >= sent && flip_at < sent + wire.len() {
                wire[flip_at - sent] ^= flip;
            }
            sent += wire.len();
            server.get_stream_mut().unwrap().input.extend_from_slice(&wire);
            let _ = server.process();
            let mut buf = [0u8; 256];
            let _ = server.get_partial_data(&mut buf);
            let out = std::mem::take(&mut server.get_stream_mut().unwrap().out);
            if !out.is_empty() {
                let mut rd = &out[..];
                while !rd.is_empty() {
                    if client.read_tls(&mut rd).is_err() { break; }
                    if client.process_new_packets().is_err() { break; }
                }
            }
        }
        let s = server.status();
        prop_assert!(matches!(s, TlsStatus::Connected | TlsStatus::Error | TlsStatus::Handshaking), "{:?}", s);
        if flip_at >= sent {
            // Nothing was corrupted: the session must be up.
            prop_assert_eq!(s, TlsStatus::Connected);
        }
    }
}
