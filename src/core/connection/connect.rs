//! Connecting: addresses in, attempts through the [`Dial`]er, fallback to
//! the next address, completion checked on the [`Transport`].

use std::io;
use std::net::SocketAddr;

use super::{Connection, Link, Progress};
use crate::SocketError;
use crate::core::drive::{Actions, Clock, Dial, Transport};
use crate::core::status::Status;

impl<S: Transport> Connection<S> {
    /// The host resolved to `targets` (or was a literal): connect to the first,
    /// keeping the others as fallbacks.
    pub(crate) fn connect_to<D: Dial<S>>(
        &mut self,
        mut targets: Vec<SocketAddr>,
        dial: &mut D,
    ) -> Actions {
        if !self.is_resolving() {
            return Actions::NONE;
        }
        targets.reverse(); // pop() takes the first address
        if self.try_next_address(targets, dial) {
            return if self.has_early_error() {
                Actions::RESUME
            } else {
                Actions::NONE
            };
        }
        let kind = self.error_kind.unwrap_or(io::ErrorKind::NotFound);
        self.fail(SocketError::ConnectFailed, Some(kind));
        self.close() | self.summary_tail()
    }

    /// The hostname did not resolve.
    pub(crate) fn resolve_failed(&mut self) -> Actions {
        if !self.is_resolving() {
            return Actions::NONE;
        }
        log::debug!("hostname did not resolve");
        self.fail(SocketError::InvalidIpAddress, Some(io::ErrorKind::NotFound));
        self.close() | self.summary_tail()
    }

    pub(super) fn has_early_error(&self) -> bool {
        matches!(
            self.link,
            Link::Connecting {
                early_error: Some(_),
                ..
            }
        )
    }

    /// Checks a connecting transport (see [`Transport::connect_outcome`]);
    /// on failure, moves on to the next address.
    pub(super) fn connect_progress<D: Dial<S>>(
        &mut self,
        clock: &mut Clock,
        dial: &mut D,
        acts: &mut Actions,
    ) -> Progress {
        let Link::Connecting {
            sock, early_error, ..
        } = &mut self.link
        else {
            return Progress::Pending;
        };
        let outcome = match early_error.take() {
            Some(kind) => Err(io::Error::from(kind)),
            None => sock.connect_outcome(),
        };
        match outcome {
            Ok(None) => Progress::Pending,
            Ok(Some(addr)) => {
                self.remote = Some(addr);
                self.local = sock.local_addr();
                if self.attached {
                    let Link::Connecting { sock, .. } =
                        std::mem::replace(&mut self.link, Link::Closed)
                    else {
                        unreachable!("matched above");
                    };
                    self.link = Link::Open { sock };
                    self.deadline = None;
                    self.transition(Status::Connected);
                } else {
                    // Disconnected while connecting with output queued:
                    // deliver it, then close.
                    *acts |= self.enter_closing(clock);
                }
                Progress::Connected
            }
            Err(e) => {
                log::debug!("connect to {:?} failed: {e}", self.remote);
                self.error_kind = Some(e.kind());
                let fallbacks = match &mut self.link {
                    Link::Connecting { fallbacks, .. } => std::mem::take(fallbacks),
                    _ => Vec::new(),
                };
                if self.try_next_address(fallbacks, dial) {
                    return Progress::Pending;
                }
                self.fail(SocketError::ConnectFailed, Some(e.kind()));
                Progress::Failed
            }
        }
    }

    /// Dials the next address of `fallbacks` (last first) until one starts;
    /// the link becomes `Connecting` with it. Returns false (link unchanged
    /// unless it was connecting, then `Closed`) when none is left or none
    /// can be opened.
    fn try_next_address<D: Dial<S>>(
        &mut self,
        mut fallbacks: Vec<SocketAddr>,
        dial: &mut D,
    ) -> bool {
        while let Some(target) = fallbacks.pop() {
            match dial.dial(target) {
                Ok((sock, early_error)) => {
                    self.remote = Some(target);
                    self.link = Link::Connecting {
                        sock,
                        fallbacks,
                        early_error,
                    };
                    return true;
                }
                Err(e) => {
                    log::debug!("cannot connect to {target}: {e}");
                    self.error_kind = Some(e.kind());
                }
            }
        }
        if let Link::Connecting { .. } = self.link {
            // The failed attempt's socket goes; the caller fails and closes.
            self.link = Link::Resolving;
        }
        false
    }
}
