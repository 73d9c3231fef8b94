//! A controllable in-memory stream for tests: bytes are appended by the
//! test ("arrive from the network"), reads are all-or-nothing with `Busy`
//! when short, and optional limits model a TCP peer's buffers.

use crate::{SocketError, StreamPeer};
use std::collections::VecDeque;

/// A test `StreamPeer` whose incoming bytes the test appends.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    /// Bytes "in the kernel", not yet buffered (beyond `read_limit`).
    pub(crate) network: VecDeque<u8>,
    /// Bytes buffered in user space (what `available_bytes` counts).
    pub(crate) rx: VecDeque<u8>,
    /// Bytes written by the code under test.
    pub(crate) tx: Vec<u8>,
    /// Most bytes `rx` holds at once (None = unlimited).
    pub(crate) read_limit: Option<usize>,
    /// Most bytes `tx` holds (None = unlimited).
    pub(crate) write_limit: Option<usize>,
    /// The remote closed: no more bytes will arrive once `network` is empty.
    pub(crate) closed: bool,
    pub(crate) big_endian: bool,
    /// How many times get_data / get_partial_data were called.
    pub(crate) get_calls: usize,
}

impl Pipe {
    pub(crate) fn new() -> Pipe {
        Pipe::default()
    }

    pub(crate) fn with_read_limit(limit: usize) -> Pipe {
        Pipe {
            read_limit: Some(limit),
            ..Pipe::default()
        }
    }

    /// Bytes arrive from the network.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.network.extend(bytes);
        self.refill();
    }

    fn refill(&mut self) {
        let limit = self.read_limit.unwrap_or(usize::MAX);
        while self.rx.len() < limit {
            match self.network.pop_front() {
                Some(b) => self.rx.push_back(b),
                None => break,
            }
        }
    }

    fn input_finished(&self) -> bool {
        self.closed && self.network.is_empty()
    }
}

/// A small deterministic generator (xorshift64*) for garbage input.
pub(crate) fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()[7]
        })
        .collect()
}

impl StreamPeer for Pipe {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        if let Some(limit) = self.write_limit
            && self.tx.len() + data.len() > limit
        {
            return Err(SocketError::OutOfBufferMemory);
        }
        self.tx.extend_from_slice(data);
        Ok(())
    }

    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        let room = self
            .write_limit
            .map_or(usize::MAX, |l| l.saturating_sub(self.tx.len()));
        let n = room.min(data.len());
        self.tx.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        self.get_calls += 1;
        if buf.len() > self.max_buffered_bytes() {
            return Err(SocketError::OutOfBufferMemory);
        }
        if self.rx.len() < buf.len() {
            return Err(if self.input_finished() {
                SocketError::FileEof
            } else {
                SocketError::Busy
            });
        }
        for b in buf.iter_mut() {
            *b = self.rx.pop_front().unwrap_or(0);
        }
        self.refill();
        Ok(())
    }

    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        self.get_calls += 1;
        let n = self.rx.len().min(buf.len());
        if n == 0 && !buf.is_empty() && self.input_finished() {
            return Err(SocketError::FileEof);
        }
        for b in &mut buf[..n] {
            *b = self.rx.pop_front().unwrap_or(0);
        }
        self.refill();
        Ok(n)
    }

    fn available_bytes(&self) -> usize {
        self.rx.len()
    }

    fn peek_data(&self, buf: &mut [u8]) -> usize {
        let n = self.rx.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(self.rx.iter()) {
            *dst = *src;
        }
        n
    }

    fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }

    fn max_buffered_bytes(&self) -> usize {
        self.read_limit.unwrap_or(usize::MAX)
    }
    // short_read_error: the trait's default (probing get_data) on purpose.
}
