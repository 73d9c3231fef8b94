//! Moving a connection to another reactor (another thread's poller): what the
//! state machine must know so that nothing the old poller already reported is
//! lost.

use super::Connection;
use crate::core::drive::{Actions, Transport};

impl<S: Transport> Connection<S> {
    /// The socket, mutably, in the links that have one (to take it out of one
    /// poller and put it into another).
    pub(crate) fn socket_mut(&mut self) -> Option<&mut S> {
        match &mut self.link {
            super::Link::Connecting { sock, .. }
            | super::Link::Open { sock }
            | super::Link::Closing { sock, .. } => Some(sock),
            super::Link::Resolving | super::Link::Closed => None,
        }
    }

    /// The connection now belongs to another reactor. Readiness is
    /// edge-triggered: an edge the old poller already reported (data that
    /// arrived, room in the send buffer, the remote's FIN) will not be
    /// reported again, so the new reactor must act without waiting for an
    /// event. Answers what it must do at its next pass:
    ///
    /// - read what the kernel holds until it answers `WouldBlock`, `0` (the
    ///   FIN) or an error (a reset), as after a close event: a short read
    ///   cannot be taken to mean "drained" here, since no edge will follow
    ///   for a FIN that had already arrived (a read stalled on a full buffer
    ///   stays stalled until the application takes bytes, as before);
    /// - write what is queued, as after a writable edge (a full send buffer
    ///   answers `WouldBlock`, which sets the block again);
    /// - re-arm the connect or linger deadline on its timers;
    /// - tell the application (ready set): bytes may already be buffered.
    pub(crate) fn rehome(&mut self) -> Actions {
        if !self.io.fin_received {
            self.io.hup = true;
        }
        self.io.write_blocked = false;
        let mut acts = Actions::RESUME | Actions::NOTIFY;
        if self.deadline.is_some() {
            acts |= Actions::ARM;
        }
        acts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::drive::{Clock, Dial, Limits, Readiness};
    use std::io::{self, Read, Write};
    use std::net::SocketAddr;
    use std::time::Duration;

    /// A socket whose data arrived while nobody was told (the edge went to
    /// the old poller), and whose send buffer had been full.
    struct Quiet {
        pending: Vec<u8>,
        written: Vec<u8>,
        eof: bool,
    }

    impl Read for Quiet {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    impl Write for Quiet {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Quiet {
        fn shutdown_write(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn connect_outcome(&mut self) -> io::Result<Option<SocketAddr>> {
            Ok(None)
        }
        fn local_addr(&self) -> Option<SocketAddr> {
            None
        }
    }

    struct NoDial;
    impl Dial<Quiet> for NoDial {
        fn dial(&mut self, _: SocketAddr) -> io::Result<(Quiet, Option<io::ErrorKind>)> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    fn limits() -> Limits {
        Limits {
            read_buffer: 1 << 16,
            write_buffer: 1 << 16,
            connect_timeout: Duration::from_secs(1),
            linger_timeout: Duration::from_secs(1),
        }
    }

    /// After a move, a resume with no readiness at all reads what the kernel
    /// held, writes what was queued behind a full send buffer, and applies
    /// the FIN rule once the application took every byte.
    #[test]
    fn a_rehomed_connection_reads_and_writes_without_an_event() {
        let sock = Quiet {
            pending: b"arrived during the move".to_vec(),
            written: Vec::new(),
            eof: true,
        };
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut c = Connection::accepted(sock, remote, limits());
        c.io.tx.push(b"queued before");
        c.io.write_blocked = true;
        let mut clock = Clock::lazy();
        let mut budget = 1 << 16;

        // Without the move, a resume alone does nothing: no edge, no read.
        let acts = c.on_ready(Readiness::default(), &mut budget, &mut clock, &mut NoDial);
        assert!(!acts.has(Actions::NOTIFY));
        assert_eq!(c.available(), 0);

        let acts = c.rehome();
        assert!(acts.has(Actions::RESUME) && acts.has(Actions::NOTIFY));
        let acts = c.on_ready(Readiness::default(), &mut budget, &mut clock, &mut NoDial);
        assert!(acts.has(Actions::NOTIFY));
        assert_eq!(c.available(), b"arrived during the move".len());
        assert_eq!(c.pending_write(), 0);
        assert_eq!(c.socket().unwrap().written, b"queued before");
        assert!(c.fin_received());
        assert_eq!(c.status(), crate::Status::Connected, "bytes remain");
    }
}
