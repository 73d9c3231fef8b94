//! The decoder's cursor: every read checked against the bytes present and
//! `Limits::max_bytes` with one comparison.

use super::{Color, VariantError, Vector2, Vector3, Vector4};

/// A bounds-checked cursor. `pos` may pass `end` after a top-level
/// `PackedByteArray` whose padding is absent (Godot counts it anyway); every
/// later read then fails cleanly.
pub(super) struct Reader<'a> {
    /// The input, cut at `max_bytes`: one comparison per read covers both
    /// the bytes present and the cap.
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// The whole input's length, to tell truncation from the cap in errors.
    full_len: usize,
    max_bytes: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], max_bytes: usize) -> Reader<'a> {
        Reader {
            buf: &bytes[..bytes.len().min(max_bytes)],
            pos: 0,
            full_len: bytes.len(),
            max_bytes,
        }
    }

    /// Fails unless `n` bytes are present at `pos` and within `max_bytes`.
    pub(super) fn check(&self, n: usize, what: &'static str) -> Result<(), VariantError> {
        if n <= self.buf.len().saturating_sub(self.pos) {
            Ok(())
        } else {
            Err(self.short(n, what))
        }
    }

    /// Why `n` bytes at `pos` cannot be read: absent, or present but past
    /// the cap.
    #[cold]
    fn short(&self, n: usize, what: &'static str) -> VariantError {
        if n > self.full_len.saturating_sub(self.pos) {
            VariantError::Truncated {
                what,
                offset: self.pos,
                needed: n,
            }
        } else {
            VariantError::LimitExceeded {
                limit: "max_bytes",
                max: self.max_bytes,
                offset: self.pos,
            }
        }
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], VariantError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.short(n, what)),
        }
    }

    #[inline]
    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], VariantError> {
        // `pos + N` cannot overflow (`pos` is at most `buf.len()` plus a
        // padding of 3, see the type's note), so one range check does.
        match self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|a| <[u8; N]>::try_from(a).ok())
        {
            Some(a) => {
                self.pos += N;
                Ok(a)
            }
            None => Err(self.short(N, what)),
        }
    }

    #[inline]
    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, VariantError> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    #[inline]
    pub(super) fn i32(&mut self, what: &'static str) -> Result<i32, VariantError> {
        self.array::<4>(what).map(i32::from_le_bytes)
    }

    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, VariantError> {
        self.array::<8>(what).map(u64::from_le_bytes)
    }

    pub(super) fn f32(&mut self) -> Result<f32, VariantError> {
        self.array::<4>("float").map(f32::from_le_bytes)
    }

    /// A `real`: f32, or f64 narrowed to f32 when the 64-bit flag is set.
    pub(super) fn real(&mut self, wide: bool) -> Result<f32, VariantError> {
        if wide {
            Ok(f64::from_le_bytes(self.array::<8>("double")?) as f32)
        } else {
            self.f32()
        }
    }

    /// `N` reals; checks the whole block first so a truncation names it.
    pub(super) fn reals<const N: usize>(
        &mut self,
        wide: bool,
        what: &'static str,
    ) -> Result<[f32; N], VariantError> {
        self.check(N * if wide { 8 } else { 4 }, what)?;
        let mut out = [0f32; N];
        for f in &mut out {
            *f = self.real(wide)?;
        }
        Ok(out)
    }

    pub(super) fn i32s<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[i32; N], VariantError> {
        self.check(N * 4, what)?;
        let mut out = [0i32; N];
        for i in &mut out {
            *i = self.i32(what)?;
        }
        Ok(out)
    }

    /// A non-negative signed 32-bit count (Godot reads them as `int32`).
    pub(super) fn count(&mut self, what: &'static str) -> Result<usize, VariantError> {
        let offset = self.pos;
        let n = self.i32(what)?;
        usize::try_from(n).map_err(|_| VariantError::Invalid {
            what: "negative count",
            offset,
        })
    }

    /// The string block: length, UTF-8 bytes, padding (which must be
    /// present; its content is never checked). Like Godot, a leading BOM is
    /// skipped and the text stops at the first NUL byte.
    pub(super) fn str_block(&mut self) -> Result<&'a str, VariantError> {
        let offset = self.pos;
        let len = self.count("string length")?;
        let padded = len
            .checked_add((4 - len % 4) % 4)
            .ok_or(VariantError::Invalid {
                what: "string length",
                offset,
            })?;
        let bytes = self.take(padded, "string")?;
        let text = cut_at_nul(&bytes[..len]);
        let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(text);
        match std::str::from_utf8(text) {
            Ok(s) => Ok(s),
            Err(_) => Err(VariantError::InvalidUtf8 { offset }),
        }
    }

    #[inline]
    pub(super) fn vector2(&mut self, wide: bool) -> Result<Vector2, VariantError> {
        if wide {
            let [x, y] = self.reals(wide, "Vector2")?;
            return Ok(Vector2 { x, y });
        }
        // The usual 32-bit one: one read of eight bytes (the same check and
        // error as `reals`).
        let [x0, x1, x2, x3, y0, y1, y2, y3] = self.array::<8>("Vector2")?;
        Ok(Vector2 {
            x: f32::from_le_bytes([x0, x1, x2, x3]),
            y: f32::from_le_bytes([y0, y1, y2, y3]),
        })
    }

    pub(super) fn vector3(&mut self, wide: bool) -> Result<Vector3, VariantError> {
        let [x, y, z] = self.reals(wide, "Vector3")?;
        Ok(Vector3 { x, y, z })
    }

    pub(super) fn vector4(&mut self, wide: bool) -> Result<Vector4, VariantError> {
        let [x, y, z, w] = self.reals(wide, "Vector4")?;
        Ok(Vector4 { x, y, z, w })
    }

    pub(super) fn color(&mut self) -> Result<Color, VariantError> {
        let [r, g, b, a] = self.reals(false, "Color")?;
        Ok(Color { r, g, b, a })
    }
}

/// `text` up to its first NUL (Godot's decoder stops there). The usual
/// short string (a name, a key) is checked eight bytes at a time, with the
/// classic zero-byte test, before any byte-by-byte search.
#[inline(always)]
fn cut_at_nul(text: &[u8]) -> &[u8] {
    if text.len() <= 32 {
        let (words, tail) = text.as_chunks::<8>();
        let nul_word = words.iter().any(|w| {
            let x = u64::from_le_bytes(*w);
            x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 != 0
        });
        if !nul_word && !tail.contains(&0) {
            return text;
        }
    }
    match text.iter().position(|&b| b == 0) {
        Some(nul) => &text[..nul],
        None => text,
    }
}
