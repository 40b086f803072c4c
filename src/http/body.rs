//! Reading a message's body, whatever delimits it, within framing
//! [`Limits`]; bytes come through the [`Decoder`]'s buffer.

use std::time::Instant;

use smol::io::AsyncRead;

use super::decode::{Decoder, Gate, Limits, Request};
use super::head::BodyLength;
use super::syntax::{chunk_size, valid_field_line};
use crate::error::DecodeError;

/// Longest line accepted in a chunked body (chunk size with extensions, or
/// one trailer field). Defaults to 1 KiB: a size is at most 16 digits, and
/// extensions carry no meaning here.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a body read failed when the peer closed before its end.
pub(super) const CLOSED_IN_BODY: &str = "connection closed inside the message body";
impl Decoder {
    /// Reads the next request, head and body, or says why none can be
    /// read. `gate` hears of the head and grants memory for the body. No
    /// `100 Continue` is written: a server whose clients may wait for one
    /// reads with [`Self::read_head`] and [`Self::read_body`].
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        limits: &Limits,
        gate: &dyn Gate,
    ) -> Result<Request, DecodeError> {
        let head = self.read_head(io, limits, gate).await?;
        let body = self.read_body(io, head.body, limits, gate).await?;
        Ok(Request::new(head, body))
    }

    /// Reads a body delimited by `length`, within `body_timeout` from now.
    /// A declared length must have passed [`Self::read_head`]'s checks;
    /// chunks are checked and reserved from `gate` as they come.
    pub async fn read_body<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        length: BodyLength,
        limits: &Limits,
        gate: &dyn Gate,
    ) -> Result<Vec<u8>, DecodeError> {
        let deadline = Instant::now() + limits.body_timeout;
        let mut body = Vec::new();
        match length {
            BodyLength::None => {}
            BodyLength::Fixed(n) => {
                // Checked against max_body by `read_head`; a length this
                // platform cannot hold is too large whatever max_body says.
                let len = usize::try_from(n).map_err(|_| DecodeError::BodyTooLarge(n))?;
                self.read_exactly(io, &mut body, len, gate, deadline)
                    .await?;
            }
            BodyLength::Chunked => {
                self.read_chunked(io, &mut body, limits, gate, deadline)
                    .await?;
            }
            BodyLength::UntilClose => {
                self.read_to_close(io, &mut body, limits, gate, deadline)
                    .await?;
            }
        }
        Ok(body)
    }

    async fn need<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<(), DecodeError> {
        match self.fill(io, deadline).await {
            Ok(0) => Err(DecodeError::Malformed(CLOSED_IN_BODY)),
            Ok(_) => Ok(()),
            Err(None) => Err(DecodeError::BodyTimeout),
            Err(Some(e)) => Err(DecodeError::Io(e)),
        }
    }

    /// Appends exactly `len` body bytes to `out`. `out` grows, and `gate`'s
    /// budget is asked, with the bytes that arrive, not with `len`: a
    /// declared length or chunk size is only a claim.
    async fn read_exactly<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        out: &mut Vec<u8>,
        len: usize,
        gate: &dyn Gate,
        deadline: Instant,
    ) -> Result<(), DecodeError> {
        let mut remaining = len;
        while remaining > 0 {
            if self.pending().is_empty() {
                self.need(io, deadline).await?;
            }
            let take = remaining.min(self.pending().len());
            if !gate.reserve_body(len_u64(take)) {
                return Err(DecodeError::Overloaded);
            }
            out.try_reserve(take).map_err(|_| {
                DecodeError::BodyTooLarge(len_u64(out.len()).saturating_add(len_u64(take)))
            })?;
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            remaining -= take;
        }
        Ok(())
    }

    /// Reads one line of a chunked body, without its CRLF. A bare LF is
    /// refused, as in the head.
    pub(super) async fn read_line<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<Vec<u8>, DecodeError> {
        // A line of MAX_CHUNK_LINE bytes and its CRLF: a line end further
        // away is not looked for (it may not have arrived yet).
        let window = MAX_CHUNK_LINE + 2;
        loop {
            let pending = self.pending();
            let pending = &pending[..pending.len().min(window)];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let Some(line) = i
                    .checked_sub(1)
                    .and_then(|cr| (pending[cr] == b'\r').then(|| pending[..cr].to_vec()))
                else {
                    return Err(DecodeError::Malformed(
                        "bare LF in a chunked body: lines must end with CRLF",
                    ));
                };
                self.start += i + 1;
                return Ok(line);
            }
            if pending.len() == window {
                return Err(DecodeError::Malformed("chunk line too long"));
            }
            self.need(io, deadline).await?;
        }
    }

    /// Reads a chunked body into `out` (RFC 9112 §7.1), trailers included
    /// (checked, then dropped).
    async fn read_chunked<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        out: &mut Vec<u8>,
        limits: &Limits,
        gate: &dyn Gate,
        deadline: Instant,
    ) -> Result<(), DecodeError> {
        let (max_body, max_trailers) = (limits.max_body, limits.max_header_bytes);
        loop {
            let line = self.read_line(io, deadline).await?;
            let size = chunk_size(&line).map_err(DecodeError::Malformed)?;
            if size == 0 {
                return self.read_trailers(io, deadline, max_trailers).await;
            }
            let total = len_u64(out.len()).saturating_add(size);
            if total > max_body {
                return Err(DecodeError::BodyTooLarge(total));
            }
            let size = usize::try_from(size).map_err(|_| DecodeError::BodyTooLarge(total))?;
            self.read_exactly(io, out, size, gate, deadline).await?;
            if !self.read_line(io, deadline).await?.is_empty() {
                return Err(DecodeError::Malformed("chunk data not followed by CRLF"));
            }
        }
    }

    /// Reads the trailer fields after a chunked body's last chunk, up to
    /// the empty line: checked, then dropped, bounded like a head
    /// (`max_trailers` bytes).
    pub(super) async fn read_trailers<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
        max_trailers: usize,
    ) -> Result<(), DecodeError> {
        let mut trailers = 0usize;
        loop {
            let line = self.read_line(io, deadline).await?;
            if line.is_empty() {
                return Ok(());
            }
            if !valid_field_line(&line) {
                return Err(DecodeError::Malformed("invalid trailer field"));
            }
            trailers = trailers.saturating_add(line.len() + 2);
            if trailers > max_trailers {
                return Err(DecodeError::HeadTooLarge);
            }
        }
    }

    /// Reads a body that ends when the peer closes (a response without
    /// framing), up to `max_body`, reserving it from `gate` as it comes.
    async fn read_to_close<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        out: &mut Vec<u8>,
        limits: &Limits,
        gate: &dyn Gate,
        deadline: Instant,
    ) -> Result<(), DecodeError> {
        loop {
            let pending = self.pending();
            let total = len_u64(out.len()).saturating_add(len_u64(pending.len()));
            if total > limits.max_body {
                return Err(DecodeError::BodyTooLarge(total));
            }
            if !gate.reserve_body(len_u64(pending.len())) {
                return Err(DecodeError::Overloaded);
            }
            out.try_reserve(pending.len())
                .map_err(|_| DecodeError::BodyTooLarge(total))?;
            out.extend_from_slice(pending);
            self.start = self.buf.len();
            match self.fill(io, deadline).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(None) => return Err(DecodeError::BodyTimeout),
                Err(Some(e)) => return Err(DecodeError::Io(e)),
            }
        }
    }
}

/// A buffer length as a byte count; `usize` is at most 64 bits everywhere
/// wasmgate runs, so this never saturates in practice.
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
