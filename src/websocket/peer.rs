//! [`WebSocketPeer`]: the state machine around tungstenite's
//! `WebSocketContext`.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Error as WsError, Message};

use super::handshake::{self, MAX_HEADER_BYTES, Parsed};
use super::transport::Io;
use super::{TlsOptions, WebSocketOptions, WebSocketTransport, WriteMode, WsState};
use crate::{HandleId, PacketPeer, Reactor, SocketError, Status, StreamPeerTcp};

mod frames;

use super::client::{ClientTransport, PollReactor};

/// Initial (and idle) size of tungstenite's frame-reading buffer. Its
/// default, 128 KiB allocated eagerly, would make 1 000 idle peers cost
/// 128 MB; 1 KiB holds many small game messages per read. A larger frame
/// grows it to the frame's size (bounded by `inbound_buffer_size`).
const READ_CHUNK: usize = 1024;

/// Messages up to this size are framed on the stack and handed to the
/// transport in one call (server side, which does not mask). Larger ones,
/// and every client message (masked), go through tungstenite.
const STACK_FRAME: usize = 1024;

/// The bytes a frame header adds to `len` payload bytes.
fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    base + if masked { 4 } else { 0 }
}

/// Where the connection is. The handshake data lives only as long as the
/// handshake (boxed), so an open peer carries none of it.
enum Phase {
    /// Server: waiting for the complete upgrade request.
    ServerHandshake(Box<ServerHs>),
    /// Client: waiting for TCP (or TLS), then for the upgrade response.
    ClientHandshake(Box<ClientHs>),
    /// Frames flow; `ctx` exists from here on.
    Open,
    /// A Close frame was sent or received.
    Closing { deadline: Instant },
    /// Done.
    Closed,
}

struct ServerHs {
    deadline: Instant,
    protocols: Vec<String>,
    headers: Vec<String>,
    /// `available_bytes` at the last parse attempt: parse again only when
    /// more arrived.
    seen: usize,
}

struct ClientHs {
    /// Set once the transport connected and the request was queued.
    deadline: Option<Instant>,
    request: Vec<u8>,
    accept_key: String,
    protocols: Vec<String>,
    seen: usize,
}

/// A WebSocket connection (Godot 4's `WebSocketPeer`), client or server,
/// over a lunanet byte stream `S`: a [`StreamPeerTcp`] taken from a server,
/// or the [`ClientTransport`] that [`connect_to_url`](Self::connect_to_url)
/// opens.
///
/// # Driving it
///
/// Bytes move during reactor passes (as for every lunanet peer); the
/// WebSocket layer advances in [`process`](Self::process): the upgrade, frame
/// decoding into whole packets, automatic Pong and Close replies, heartbeat
/// Pings and timeouts. [`poll`](Self::poll) is Godot's call: one non-blocking
/// reactor pass, then `process`. In a tick loop with many peers, poll the
/// [`Reactor`] once and call `process` on each peer (or only on those in
/// [`Reactor::drain_ready`], via [`id`](Self::id), plus every peer now and
/// then for the timers and for peers whose inbound queue was full).
///
/// # Closing
///
/// [`close`](Self::close) sends a Close frame (state `Closing`); keep
/// calling `process` until `Closed`. A Close from the other side is answered
/// automatically. [`close_code`](Self::close_code) then reports the other
/// side's code, or -1 when the connection ended without a closing handshake.
/// When this peer fails the connection because of what the other side sent
/// (a message over [`inbound_buffer_size`](WebSocketOptions::inbound_buffer_size):
/// 1009, invalid UTF-8 in a text message: 1007, a protocol violation such as
/// an unmasked client frame: 1002), it sends that code, closes the
/// connection, and reports that code with a reason saying what was wrong.
///
/// See the [module documentation](super) for an example.
pub struct WebSocketPeer<S: WebSocketTransport = ClientTransport> {
    stream: S,
    /// tungstenite's codec and protocol state; `None` until the upgrade is
    /// done.
    ctx: Option<Box<WebSocketContext>>,
    phase: Phase,
    queue: VecDeque<(Vec<u8>, bool)>,
    queued_bytes: usize,
    last_was_string: bool,
    /// tungstenite holds output the transport could not take yet.
    unflushed: bool,
    /// Reading stopped because the inbound queue was full.
    stalled: bool,
    role: Role,
    limits: Limits,
    close_code: i32,
    close_reason: String,
    protocol: String,
    requested_url: String,
    /// Heartbeat bookkeeping (only read when `heartbeat_interval` is set).
    last_ping: Instant,
    last_heard: Instant,
}

/// The numeric options that outlive the handshake.
#[derive(Debug, Clone, Copy)]
struct Limits {
    inbound: usize,
    outbound: usize,
    max_packets: usize,
    heartbeat: Duration,
    timeout: Duration,
}

impl Limits {
    fn of(o: &WebSocketOptions) -> Limits {
        Limits {
            inbound: o.inbound_buffer_size,
            outbound: o.outbound_buffer_size,
            max_packets: o.max_queued_packets.max(1),
            heartbeat: o.heartbeat_interval,
            timeout: o.handshake_timeout,
        }
    }

    fn config(&self) -> WebSocketConfig {
        // write_buffer_size 0: each frame goes to the transport at once, so
        // tungstenite's own out buffer stays empty unless the transport is
        // full, and lunanet's bounded queue is the one place with
        // backpressure. max_write_buffer_size must exceed it (tungstenite
        // asserts); what it bounds is only what a full transport left behind.
        WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .write_buffer_size(0)
            .max_write_buffer_size(self.outbound.saturating_add(STACK_FRAME).max(1))
            .max_message_size(Some(self.inbound))
            .max_frame_size(Some(self.inbound))
    }
}

impl WebSocketPeer<ClientTransport> {
    /// Connects to a `ws://` URL with the default [`WebSocketOptions`]
    /// (Godot `connect_to_url`). The hostname is resolved without blocking
    /// (through [`StreamPeerTcp::connect_to_host`]); the peer is
    /// `Connecting` until the upgrade completes.
    ///
    /// `tls` is for `wss://`: TLS client options (`None`: the system's
    /// default roots, `TlsOptions::client()`); it is ignored for `ws://`.
    /// Without the `tls` feature it can only be `None`, and a `wss://` URL is
    /// refused with `InvalidParameter`.
    ///
    /// # Errors
    ///
    /// `InvalidParameter` for a malformed URL (not `ws://`/`wss://`, port 0,
    /// user info, spaces or control characters), invalid
    /// `handshake_headers` or subprotocols; the errors of
    /// [`StreamPeerTcp::connect_to_host`].
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::websocket::{WebSocketPeer, WsState};
    /// use lunanet::Reactor;
    ///
    /// let reactor = Reactor::new()?;
    /// let peer = WebSocketPeer::connect_to_url(&reactor, "ws://127.0.0.1:9/chat", None)?;
    /// assert_eq!(peer.ready_state(), WsState::Connecting);
    /// assert!(WebSocketPeer::connect_to_url(&reactor, "http://x", None).is_err());
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn connect_to_url(
        reactor: &Reactor,
        url: &str,
        tls: Option<TlsOptions>,
    ) -> Result<WebSocketPeer<ClientTransport>, SocketError> {
        WebSocketPeer::connect_to_url_with(reactor, url, &WebSocketOptions::default(), tls)
    }

    /// [`connect_to_url`](Self::connect_to_url) with explicit options
    /// (subprotocols to offer, extra headers, buffer sizes, timeouts).
    ///
    /// # Errors
    ///
    /// As `connect_to_url`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::websocket::{WebSocketOptions, WebSocketPeer};
    /// use lunanet::{Reactor, SocketError};
    ///
    /// let reactor = Reactor::new()?;
    /// let mut options = WebSocketOptions::default();
    /// options.handshake_headers = vec!["X-Bad: a\r\nInjected: b".into()];
    /// let r = WebSocketPeer::connect_to_url_with(&reactor, "ws://127.0.0.1:9", &options, None);
    /// assert_eq!(r.err(), Some(SocketError::InvalidParameter));
    /// # Ok::<(), SocketError>(())
    /// ```
    pub fn connect_to_url_with(
        reactor: &Reactor,
        url: &str,
        options: &WebSocketOptions,
        tls: Option<TlsOptions>,
    ) -> Result<WebSocketPeer<ClientTransport>, SocketError> {
        let parsed = handshake::parse_url(url)?;
        #[cfg(not(feature = "tls"))]
        {
            if let Some(never) = tls {
                match never {}
            }
            if parsed.tls {
                log::warn!("WebSocket: wss:// needs lunanet's `tls` feature");
                return Err(SocketError::InvalidParameter);
            }
        }
        let (request, accept_key) = handshake::client_request(
            &parsed,
            &options.supported_protocols,
            &options.handshake_headers,
        )?;
        let mut tcp = StreamPeerTcp::new(reactor);
        tcp.connect_to_host(parsed.host.as_str(), parsed.port)?;
        #[cfg(feature = "tls")]
        let transport = if parsed.tls {
            // The certificate is checked against the URL's host.
            let options = tls.unwrap_or_else(TlsOptions::client);
            match crate::tls::StreamPeerTls::connect_to_stream(tcp, &parsed.host, options) {
                Ok(t) => ClientTransport::Tls(Box::new(t)),
                Err(e) => {
                    log::warn!("WebSocket: cannot start TLS to {}: {e}", parsed.host);
                    return Err(e.socket_error());
                }
            }
        } else {
            ClientTransport::Tcp(tcp)
        };
        #[cfg(not(feature = "tls"))]
        let transport = ClientTransport::Tcp(tcp);
        let hs = ClientHs {
            deadline: None,
            request,
            accept_key,
            protocols: options.supported_protocols.clone(),
            seen: 0,
        };
        let mut peer = WebSocketPeer::new(transport, options, Role::Client);
        peer.phase = Phase::ClientHandshake(Box::new(hs));
        peer.requested_url = url.to_owned();
        Ok(peer)
    }
}

impl<S: WebSocketTransport> WebSocketPeer<S> {
    fn new(stream: S, options: &WebSocketOptions, role: Role) -> WebSocketPeer<S> {
        let now = Instant::now();
        WebSocketPeer {
            stream,
            ctx: None,
            phase: Phase::Closed,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_was_string: false,
            unflushed: false,
            stalled: false,
            role,
            limits: Limits::of(options),
            close_code: -1,
            close_reason: String::new(),
            protocol: String::new(),
            requested_url: String::new(),
            last_ping: now,
            last_heard: now,
        }
    }

    /// Server side: runs the WebSocket upgrade on a connection accepted by a
    /// [`TcpServer`](crate::TcpServer) (or an accepted TLS stream) (Godot
    /// `accept_stream`). The peer is `Connecting` until the client's upgrade
    /// request has arrived and been answered; a request that is malformed,
    /// offers none of `supported_protocols` (when there are some), or does
    /// not complete within `handshake_timeout` is answered with an HTTP error
    /// (or nothing) and the peer goes `Closed`.
    ///
    /// Bytes the client sent after its request (frames sent eagerly) stay in
    /// the stream and are decoded as frames.
    ///
    /// See the [module documentation](super) for an example.
    pub fn accept_stream(stream: S, options: &WebSocketOptions) -> WebSocketPeer<S> {
        let hs = ServerHs {
            deadline: Instant::now() + options.handshake_timeout,
            protocols: options.supported_protocols.clone(),
            headers: options.handshake_headers.clone(),
            seen: 0,
        };
        let mut peer = WebSocketPeer::new(stream, options, Role::Server);
        peer.phase = Phase::ServerHandshake(Box::new(hs));
        peer
    }

    /// One non-blocking reactor pass, then [`process`](Self::process)
    /// (Godot `poll`).
    ///
    /// # Errors
    ///
    /// Only if the OS poller fails.
    pub fn poll(&mut self) -> Result<(), SocketError>
    where
        S: PollReactor,
    {
        self.stream.poll_reactor()?;
        self.process();
        Ok(())
    }

    /// Advances the connection with what the last reactor pass buffered: the
    /// upgrade, incoming frames into whole packets (until the inbound queue
    /// is full), automatic Pong/Close replies, heartbeat and timeouts. No
    /// system call, except for output written at once.
    pub fn process(&mut self) {
        if let Err(e) = self.stream.advance() {
            self.drop_connection(format!("transport failed: {e}"));
            return;
        }
        match &self.phase {
            Phase::ServerHandshake(_) => self.server_handshake(),
            Phase::ClientHandshake(_) => self.client_handshake(),
            Phase::Open | Phase::Closing { .. } => {}
            Phase::Closed => return,
        }
        if self.ctx.is_none() {
            return;
        }
        if self.unflushed {
            self.flush();
        }
        // Fast path for a quiet peer (most of them, most ticks): nothing
        // arrived, nothing was left undecoded, the connection is up. Skips
        // tungstenite's read, which would only end in `WouldBlock`.
        let quiet = !self.stalled
            && self.stream.available_bytes() == 0
            && self.stream.status() == Status::Connected;
        if !quiet {
            self.read_frames();
        }
        self.timers();
    }

    fn server_handshake(&mut self) {
        match self.stream.status() {
            Status::Connected => {}
            Status::Connecting => return,
            Status::None | Status::Error => {
                self.drop_connection("the connection ended during the upgrade".to_owned());
                return;
            }
        }
        let Phase::ServerHandshake(hs) = &mut self.phase else {
            return;
        };
        let (mut buf, timed_out) = match look(&mut self.stream, &mut hs.seen, hs.deadline) {
            Look::Nothing => return,
            Look::TimedOut => return self.drop_connection("handshake timeout".to_owned()),
            Look::Bytes(buf, timed_out) => (buf, timed_out),
        };
        match handshake::server_accept(&buf, &hs.protocols, &hs.headers) {
            Ok(Parsed::Partial) => {
                if timed_out {
                    self.drop_connection("handshake timeout".to_owned());
                }
            }
            Ok(Parsed::Done(len, accepted)) => {
                // Consume exactly the request; what follows is frames.
                if let Err(e) = self.stream.get_data(&mut buf[..len]) {
                    self.drop_connection(format!("reading the upgrade request: {e}"));
                    return;
                }
                if let Err(e) = self.stream.put_data(&accepted.response) {
                    self.drop_connection(format!("sending the upgrade response: {e}"));
                    return;
                }
                self.protocol = accepted.protocol;
                self.requested_url = accepted.resource;
                self.open();
            }
            Err(refused) => {
                log::debug!("WebSocket: refusing an upgrade: {}", refused.why);
                let _ = self.stream.put_data(refused.response);
                self.drop_connection(refused.why);
            }
        }
    }

    fn client_handshake(&mut self) {
        match self.stream.status() {
            Status::Connected => {}
            Status::Connecting => return,
            Status::None | Status::Error => {
                let why = match self.stream.short_read_error() {
                    SocketError::FileEof => "the server closed during the upgrade".to_owned(),
                    e => format!("connecting failed: {e}"),
                };
                self.drop_connection(why);
                return;
            }
        }
        let Phase::ClientHandshake(hs) = &mut self.phase else {
            return;
        };
        let deadline = match hs.deadline {
            Some(d) => d,
            None => {
                let d = Instant::now() + self.limits.timeout;
                hs.deadline = Some(d);
                let request = std::mem::take(&mut hs.request);
                if let Err(e) = self.stream.put_data(&request) {
                    self.drop_connection(format!("sending the upgrade request: {e}"));
                    return;
                }
                d
            }
        };
        let Phase::ClientHandshake(hs) = &mut self.phase else {
            return;
        };
        let (mut buf, timed_out) = match look(&mut self.stream, &mut hs.seen, deadline) {
            Look::Nothing => return,
            Look::TimedOut => return self.drop_connection("handshake timeout".to_owned()),
            Look::Bytes(buf, timed_out) => (buf, timed_out),
        };
        match handshake::client_verify(&buf, &hs.accept_key, &hs.protocols) {
            Ok(Parsed::Partial) => {
                if timed_out {
                    self.drop_connection("handshake timeout".to_owned());
                }
            }
            Ok(Parsed::Done(len, protocol)) => {
                if let Err(e) = self.stream.get_data(&mut buf[..len]) {
                    self.drop_connection(format!("reading the upgrade response: {e}"));
                    return;
                }
                self.protocol = protocol;
                self.open();
            }
            Err(why) => {
                log::debug!("WebSocket: upgrade refused: {why}");
                self.drop_connection(why);
            }
        }
    }

    fn open(&mut self) {
        self.ctx = Some(Box::new(WebSocketContext::new(
            self.role,
            Some(self.limits.config()),
        )));
        self.phase = Phase::Open;
        let now = Instant::now();
        self.last_ping = now;
        self.last_heard = now;
    }

    /// The state (Godot `get_ready_state`).
    pub fn ready_state(&self) -> WsState {
        match self.phase {
            Phase::ServerHandshake(_) | Phase::ClientHandshake(_) => WsState::Connecting,
            Phase::Open => WsState::Open,
            Phase::Closing { .. } => WsState::Closing,
            Phase::Closed => WsState::Closed,
        }
    }

    /// Sends one message (Godot `send`): binary, or text (`data` must then be
    /// UTF-8). The message is queued whole or refused whole.
    ///
    /// # Errors
    ///
    /// - `SocketInvalid` while `Connecting`; `ConnectionClosed` once
    ///   `Closing` or `Closed`.
    /// - `InvalidParameter`: text that is not UTF-8.
    /// - `OutOfBufferMemory`: the message does not fit in the outbound buffer
    ///   now: [`current_outbound_buffered_amount`](Self::current_outbound_buffered_amount)
    ///   plus the frame exceed `outbound_buffer_size`; retry once it drained.
    ///   A frame larger than the whole `outbound_buffer_size` can never be
    ///   sent.
    pub fn send(&mut self, data: &[u8], mode: WriteMode) -> Result<(), SocketError> {
        match self.phase {
            Phase::Open => {}
            Phase::ServerHandshake(_) | Phase::ClientHandshake(_) => {
                return Err(SocketError::SocketInvalid);
            }
            Phase::Closing { .. } | Phase::Closed => return Err(SocketError::ConnectionClosed),
        }
        if mode == WriteMode::Text && std::str::from_utf8(data).is_err() {
            return Err(SocketError::InvalidParameter);
        }
        let masked = self.role == Role::Client;
        let frame_len = header_len(data.len(), masked) + data.len();
        if self.current_outbound_buffered_amount() + frame_len > self.limits.outbound {
            return Err(SocketError::OutOfBufferMemory);
        }
        if !masked && !self.unflushed && data.len() <= STACK_FRAME {
            return self.send_small(data, mode);
        }
        let message = match mode {
            WriteMode::Binary => Message::Binary(Bytes::copy_from_slice(data)),
            // Checked above; tungstenite re-validates.
            WriteMode::Text => match Bytes::copy_from_slice(data).try_into() {
                Ok(text) => Message::Text(text),
                Err(_) => return Err(SocketError::InvalidParameter),
            },
        };
        let Some(ctx) = self.ctx.as_mut() else {
            return Err(SocketError::ConnectionClosed);
        };
        match ctx.write(&mut Io(&mut self.stream), message) {
            Ok(()) => Ok(()),
            // The frame is in tungstenite's buffer: accepted, sent later.
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.unflushed = true;
                Ok(())
            }
            Err(WsError::WriteBufferFull(_)) => Err(SocketError::OutOfBufferMemory),
            Err(e) => {
                let err = match &e {
                    WsError::Io(io) => SocketError::from(io::Error::from(io.kind())),
                    _ => SocketError::ConnectionClosed,
                };
                self.fail_on(e);
                Err(err)
            }
        }
    }

    /// Sends a text message (Godot `send_text`).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_text(&mut self, text: &str) -> Result<(), SocketError> {
        self.send(text.as_bytes(), WriteMode::Text)
    }

    /// Takes the next received message (Godot `get_packet`);
    /// [`was_string_packet`](Self::was_string_packet) then tells whether it
    /// was text.
    ///
    /// # Errors
    ///
    /// `Busy` while none is queued; `FileEof` when none is queued and the
    /// peer is `Closed`.
    pub fn get_packet(&mut self) -> Result<Vec<u8>, SocketError> {
        match self.queue.pop_front() {
            Some((packet, is_string)) => {
                self.queued_bytes -= packet.len();
                self.last_was_string = is_string;
                Ok(packet)
            }
            None if matches!(self.phase, Phase::Closed) => Err(SocketError::FileEof),
            None => Err(SocketError::Busy),
        }
    }

    /// How many received messages are queued (Godot
    /// `get_available_packet_count`). No I/O.
    pub fn available_packet_count(&self) -> usize {
        self.queue.len()
    }

    /// Whether the last packet taken by [`get_packet`](Self::get_packet) was
    /// a text message (Godot `was_string_packet`).
    pub fn was_string_packet(&self) -> bool {
        self.last_was_string
    }

    /// Starts the closing handshake (Godot `close`): sends a Close frame with
    /// `code` and `reason` (UTF-8, cut to 123 bytes), state `Closing`; keep
    /// calling [`process`](Self::process) until `Closed`. A negative `code`
    /// closes the connection at once without telling the other side. While
    /// `Connecting` it simply drops the connection. Codes outside 1000-4999
    /// other than the reserved ones are sent as given; prefer 1000 (normal),
    /// 1001 (going away) or 4000-4999 (application).
    pub fn close(&mut self, code: i32, reason: &str) {
        match self.phase {
            Phase::Open => {}
            Phase::ServerHandshake(_) | Phase::ClientHandshake(_) => {
                self.drop_connection("closed by the application while connecting".to_owned());
                return;
            }
            Phase::Closing { .. } | Phase::Closed => return,
        }
        let Ok(wire_code) = u16::try_from(code) else {
            self.drop_connection("closed by the application without a closing handshake".into());
            return;
        };
        self.phase = Phase::Closing {
            deadline: Instant::now() + self.limits.timeout,
        };
        let Some(ctx) = self.ctx.as_mut() else { return };
        let frame = CloseFrame {
            code: CloseCode::from(wire_code),
            reason: truncate_utf8(reason, 123).into(),
        };
        match ctx.close(&mut Io(&mut self.stream), Some(frame)) {
            Ok(()) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.unflushed = true,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => self.finish(),
            Err(e) => self.fail_on(e),
        }
    }

    /// The close code: the other side's (1005 if its Close had none), the one
    /// this peer sent when it failed the connection, or -1 when the
    /// connection ended without a closing handshake or is not closed yet
    /// (Godot `get_close_code`).
    pub fn close_code(&self) -> i32 {
        self.close_code
    }

    /// The reason that came with [`close_code`](Self::close_code); for -1,
    /// what ended the connection (Godot `get_close_reason`, more detailed).
    pub fn close_reason(&self) -> &str {
        &self.close_reason
    }

    /// The subprotocol the upgrade selected, "" when none (Godot
    /// `get_selected_protocol`).
    pub fn selected_protocol(&self) -> &str {
        &self.protocol
    }

    /// Client: the URL it connected to. Server: the path and query the client
    /// requested (for example `/play?token=...`) once the upgrade is done
    /// (Godot `get_requested_url`).
    pub fn requested_url(&self) -> &str {
        &self.requested_url
    }

    /// Bytes accepted by `send` and not yet taken by the operating system
    /// (Godot `get_current_outbound_buffered_amount`).
    pub fn current_outbound_buffered_amount(&self) -> usize {
        self.stream.queued_output()
    }

    /// The reactor id of the underlying connection (for
    /// [`Reactor::drain_ready`]); `None` once closed.
    pub fn id(&self) -> Option<HandleId> {
        if matches!(self.phase, Phase::Closed) {
            None
        } else {
            self.stream.handle_id()
        }
    }

    /// Enables or disables `TCP_NODELAY` on the underlying connection (Godot
    /// `set_no_delay`).
    ///
    /// # Errors
    ///
    /// As [`StreamPeerTcp::set_no_delay`].
    pub fn set_no_delay(&mut self, enabled: bool) -> Result<(), SocketError> {
        self.stream.set_no_delay(enabled)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

/// `put_packet` sends a binary message; `get_packet` returns one message of
/// either kind (check [`WebSocketPeer::was_string_packet`]).
impl<S: WebSocketTransport> PacketPeer for WebSocketPeer<S> {
    fn put_packet(&mut self, packet: &[u8]) -> Result<(), SocketError> {
        self.send(packet, WriteMode::Binary)
    }

    fn get_packet(&mut self) -> Result<Vec<u8>, SocketError> {
        WebSocketPeer::get_packet(self)
    }

    fn available_packet_count(&self) -> usize {
        WebSocketPeer::available_packet_count(self)
    }

    /// Kept by the transport (a `StreamPeerTcp` or `StreamPeerTls` stores
    /// it), as for a `PacketPeerStream`.
    fn godot_version(&self) -> crate::variant::GodotVersion {
        self.stream.godot_version()
    }

    fn set_godot_version(&mut self, version: crate::variant::GodotVersion) {
        self.stream.set_godot_version(version);
    }
}

impl<S: WebSocketTransport> fmt::Debug for WebSocketPeer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketPeer")
            .field("state", &self.ready_state())
            .field("role", &self.role)
            .field("queued_packets", &self.queue.len())
            .field("queued_bytes", &self.queued_bytes)
            .field("outbound", &self.current_outbound_buffered_amount())
            .field("protocol", &self.protocol)
            .field("close_code", &self.close_code)
            .finish()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
/// One look at an upgrade in progress (both sides wait for a header the
/// same way).
enum Look {
    /// No byte arrived since the last look; the deadline has not passed.
    Nothing,
    /// No byte arrived since the last look and the deadline has passed.
    TimedOut,
    /// The buffered head (peeked, not consumed: the parser decides how much
    /// is the header), and whether the deadline has passed.
    Bytes(Vec<u8>, bool),
}

/// Peeks at the upgrade bytes buffered in `stream` if more arrived since
/// `seen` (which it updates), so the header is parsed once per arrival, not
/// once per poll.
fn look<S: WebSocketTransport>(stream: &mut S, seen: &mut usize, deadline: Instant) -> Look {
    let timed_out = Instant::now() >= deadline;
    let available = stream.available_bytes();
    if available == *seen {
        return if timed_out {
            Look::TimedOut
        } else {
            Look::Nothing
        };
    }
    *seen = available;
    let mut buf = vec![0u8; available.min(MAX_HEADER_BYTES)];
    let n = stream.peek_data(&mut buf);
    buf.truncate(n);
    Look::Bytes(buf, timed_out)
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamPeer;
    use crate::stream::testing::{Pipe, garbage};

    /// A transport over the test `Pipe`: "connected" until the remote closed
    /// and everything was read.
    struct TestStream {
        pipe: Pipe,
        shut: bool,
    }

    impl TestStream {
        fn new() -> TestStream {
            TestStream {
                pipe: Pipe::new(),
                shut: false,
            }
        }
    }

    impl StreamPeer for TestStream {
        fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
            self.pipe.put_data(data)
        }
        fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
            self.pipe.put_partial_data(data)
        }
        fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
            self.pipe.get_data(buf)
        }
        fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
            self.pipe.get_partial_data(buf)
        }
        fn available_bytes(&self) -> usize {
            self.pipe.available_bytes()
        }
        fn peek_data(&self, buf: &mut [u8]) -> usize {
            self.pipe.peek_data(buf)
        }
        fn is_big_endian(&self) -> bool {
            false
        }
        fn set_big_endian(&mut self, _: bool) {}
    }

    impl io::Read for TestStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.pipe.get_partial_data(buf) {
                Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
                Ok(n) => Ok(n),
                Err(SocketError::FileEof) => Ok(0),
                Err(e) => Err(e.into()),
            }
        }
    }

    impl io::Write for TestStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.pipe.put_data(buf)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl WebSocketTransport for TestStream {
        fn status(&self) -> Status {
            if self.shut || (self.pipe.closed && self.pipe.available_bytes() == 0) {
                Status::None
            } else {
                Status::Connected
            }
        }
        fn queued_output(&self) -> usize {
            0
        }
        fn shut_down(&mut self) {
            self.shut = true;
        }
        fn handle_id(&self) -> Option<HandleId> {
            None
        }
        fn set_no_delay(&mut self, _: bool) -> Result<(), SocketError> {
            Ok(())
        }
    }

    const UPGRADE: &[u8] = b"GET /t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    /// A masked client frame.
    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask = [9u8, 8, 7, 6];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn frames_split_at_every_byte_arrive_whole() {
        let mut bytes = UPGRADE.to_vec();
        bytes.extend(client_frame(0x2, true, &[1, 2, 3]));
        bytes.extend(client_frame(0x1, false, "hé".as_bytes()));
        bytes.extend(client_frame(0x9, true, b"ping")); // between fragments
        bytes.extend(client_frame(0x0, true, "llo".as_bytes()));
        bytes.extend(client_frame(0x2, true, &[7; 300]));
        for split in 1..bytes.len() {
            let mut peer =
                WebSocketPeer::accept_stream(TestStream::new(), &WebSocketOptions::default());
            peer.stream.pipe.feed(&bytes[..split]);
            peer.process();
            peer.stream.pipe.feed(&bytes[split..]);
            peer.process();
            assert_eq!(peer.ready_state(), WsState::Open, "split {split}");
            assert_eq!(peer.get_packet().unwrap(), [1, 2, 3]);
            assert!(!peer.was_string_packet());
            assert_eq!(peer.get_packet().unwrap(), "héllo".as_bytes());
            assert!(peer.was_string_packet());
            assert_eq!(peer.get_packet().unwrap(), [7; 300]);
            assert_eq!(peer.get_packet(), Err(SocketError::Busy));
            // The response, then the Pong (0x8A, 4 bytes "ping").
            let tx = &peer.stream.pipe.tx;
            let end = tx.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(&tx[end..], [0x8A, 4, b'p', b'i', b'n', b'g']);
        }
    }

    #[test]
    fn garbage_after_the_upgrade_never_panics_and_stays_bounded() {
        let options = WebSocketOptions {
            inbound_buffer_size: 200,
            max_queued_packets: 3,
            ..WebSocketOptions::default()
        };
        for seed in 0..300u64 {
            let mut bytes = garbage(seed, 600);
            // Make plausible headers common: small masked binary/text frames.
            for chunk in bytes.chunks_mut(37).step_by(2) {
                if chunk.len() >= 2 {
                    chunk[0] = 0x80 | (chunk[0] % 3);
                    chunk[1] = 0x80 | (chunk[1] % 40);
                }
            }
            let mut peer = WebSocketPeer::accept_stream(TestStream::new(), &options);
            peer.stream.pipe.feed(UPGRADE);
            for piece in bytes.chunks(usize::try_from(seed % 13 + 1).unwrap()) {
                peer.stream.pipe.feed(piece);
                peer.process();
                assert!(peer.available_packet_count() <= 3);
                assert!(peer.queued_bytes <= 200 + 200);
                while let Ok(p) = peer.get_packet() {
                    assert!(p.len() <= 200);
                }
            }
            peer.stream.pipe.closed = true;
            peer.process();
            peer.process();
            assert_eq!(peer.ready_state(), WsState::Closed, "seed {seed}");
        }
    }

    #[test]
    fn header_lengths() {
        assert_eq!(header_len(0, false), 2);
        assert_eq!(header_len(125, false), 2);
        assert_eq!(header_len(126, false), 4);
        assert_eq!(header_len(65_535, true), 8);
        assert_eq!(header_len(65_536, false), 10);
    }

    #[test]
    fn truncation_keeps_utf8() {
        assert_eq!(truncate_utf8("abc", 2), "ab");
        assert_eq!(truncate_utf8("é", 1), "");
        assert_eq!(truncate_utf8("aé", 2), "a");
    }
}
