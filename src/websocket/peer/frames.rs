//! Frame I/O of [`WebSocketPeer`]: decoding frames into the packet queue,
//! failing and closing the connection, flushing, timers, and the
//! stack-framed fast path for small server messages.

use super::*;

impl<S: WebSocketTransport> WebSocketPeer<S> {
    /// Decodes frames into the queue until the transport has nothing more,
    /// the queue is full, or the connection ends.
    pub(super) fn read_frames(&mut self) {
        loop {
            if self.queue.len() >= self.limits.max_packets
                || self.queued_bytes >= self.limits.inbound
            {
                // Backpressure: resume once the application takes packets.
                // tungstenite may hold whole frames already, so the next
                // `process` must read even if the transport has nothing new.
                self.stalled = true;
                return;
            }
            self.stalled = false;
            let Some(ctx) = self.ctx.as_mut() else { return };
            let result = ctx.read(&mut Io(&mut self.stream));
            match result {
                Ok(Message::Binary(b)) => self.push(b, false),
                Ok(Message::Text(t)) => self.push(Bytes::from(t), true),
                Ok(Message::Ping(_)) => {
                    // tungstenite queued the Pong and flushes it on the next
                    // read or flush.
                    self.last_heard = Instant::now();
                    self.unflushed = true;
                }
                Ok(Message::Pong(_)) => self.last_heard = Instant::now(),
                Ok(Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(f) => (i32::from(u16::from(f.code)), f.reason.as_str().to_owned()),
                        None => (1005, String::new()), // RFC 6455 §7.1.5: no status code
                    };
                    self.close_code = code;
                    self.close_reason = reason;
                    if matches!(self.phase, Phase::Open) {
                        self.phase = Phase::Closing {
                            deadline: Instant::now() + self.limits.timeout,
                        };
                    }
                    self.unflushed = true;
                }
                Ok(Message::Frame(_)) => {} // never returned by read
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.unflushed {
                        self.flush();
                    }
                    return;
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    // Both Close frames exchanged (and, client side, the
                    // server closed TCP).
                    self.finish();
                    return;
                }
                Err(e) => {
                    self.fail_on(e);
                    return;
                }
            }
        }
    }

    pub(super) fn push(&mut self, payload: Bytes, is_string: bool) {
        self.last_heard = Instant::now();
        self.queued_bytes += payload.len();
        // Copies out of tungstenite's read buffer (the payload shares its
        // allocation), so that buffer is reused for the next frame.
        self.queue.push_back((Vec::from(payload), is_string));
    }

    /// Maps a tungstenite error to the close code RFC 6455 prescribes, sends
    /// it when the protocol allows, and drops the connection.
    pub(super) fn fail_on(&mut self, e: WsError) {
        let (code, reason) = match &e {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
                CloseCode::Size,
                format!("message of {size} bytes exceeds the inbound buffer ({max_size} bytes)"),
            ),
            WsError::Capacity(c) => (CloseCode::Size, format!("{c}")),
            WsError::Utf8(_) => (
                CloseCode::Invalid,
                "invalid UTF-8 in a text message".to_owned(),
            ),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.drop_connection("connection closed without a closing handshake".to_owned());
                return;
            }
            WsError::Protocol(p) => (CloseCode::Protocol, format!("protocol error: {p}")),
            WsError::Io(io) => {
                self.drop_connection(format!("transport failed: {io}"));
                return;
            }
            other => (CloseCode::Error, format!("{other}")),
        };
        log::debug!(
            "WebSocket: failing the connection ({}): {reason}",
            u16::from(code)
        );
        if let Some(ctx) = self.ctx.as_mut() {
            // A control frame's reason is at most 123 bytes.
            let short = truncate_utf8(&reason, 123);
            let _ = ctx.close(
                &mut Io(&mut self.stream),
                Some(CloseFrame {
                    code,
                    reason: short.into(),
                }),
            );
        }
        self.close_code = i32::from(u16::from(code));
        self.close_reason = reason;
        self.ctx = None;
        self.stream.shut_down();
        self.phase = Phase::Closed;
    }

    /// The closing handshake completed.
    pub(super) fn finish(&mut self) {
        self.ctx = None;
        self.stream.shut_down();
        self.phase = Phase::Closed;
    }

    /// Ends without (or without completing) a closing handshake: close code
    /// -1.
    pub(super) fn drop_connection(&mut self, why: String) {
        log::debug!("WebSocket: connection dropped: {why}");
        self.ctx = None;
        self.close_code = -1;
        self.close_reason = why;
        self.stream.shut_down();
        self.phase = Phase::Closed;
    }

    pub(super) fn flush(&mut self) {
        let Some(ctx) = self.ctx.as_mut() else { return };
        match ctx.flush(&mut Io(&mut self.stream)) {
            Ok(()) => self.unflushed = false,
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.unflushed = true,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => self.finish(),
            Err(e) => self.fail_on(e),
        }
    }

    pub(super) fn timers(&mut self) {
        match self.phase {
            Phase::Closing { deadline } if Instant::now() >= deadline => {
                self.drop_connection("closing handshake timeout".to_owned());
            }
            Phase::Open if !self.limits.heartbeat.is_zero() => {
                let now = Instant::now();
                let interval = self.limits.heartbeat;
                let silence = interval.saturating_mul(3);
                if now.duration_since(self.last_heard) >= silence {
                    self.drop_connection(format!(
                        "nothing received for {silence:?} (3 heartbeat intervals)"
                    ));
                } else if now.duration_since(self.last_ping) >= interval {
                    self.last_ping = now;
                    if let Some(ctx) = self.ctx.as_mut() {
                        match ctx.write(&mut Io(&mut self.stream), Message::Ping(Bytes::new())) {
                            Ok(()) => {}
                            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                                self.unflushed = true;
                            }
                            Err(e) => self.fail_on(e),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Server frames are not masked: frame a small message on the stack and
    /// hand it to the transport in one call (one write, no allocation).
    /// tungstenite's out buffer is empty here (`unflushed` is false), so the
    /// order of frames is kept.
    pub(super) fn send_small(&mut self, data: &[u8], mode: WriteMode) -> Result<(), SocketError> {
        let mut frame = [0u8; STACK_FRAME + 4];
        frame[0] = 0x80
            | match mode {
                WriteMode::Text => 0x1,
                WriteMode::Binary => 0x2,
            };
        let head = if data.len() <= 125 {
            // Fits in 7 bits.
            frame[1] = data.len() as u8;
            2
        } else {
            frame[1] = 126;
            let len = u16::try_from(data.len()).map_err(|_| SocketError::InvalidParameter)?;
            frame[2..4].copy_from_slice(&len.to_be_bytes());
            4
        };
        frame[head..head + data.len()].copy_from_slice(data);
        match self.stream.put_data(&frame[..head + data.len()]) {
            Ok(()) => Ok(()),
            Err(SocketError::OutOfBufferMemory) => Err(SocketError::OutOfBufferMemory),
            Err(e) => {
                self.drop_connection(format!("sending failed: {e}"));
                Err(e)
            }
        }
    }
}
