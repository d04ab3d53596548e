//! Frames over a byte stream (TCP): each frame is preceded by its length as a big-endian
//! u16. [`put`] writes one; [`StreamDecoder`] takes bytes as they arrive and hands out
//! complete frames. A length of 0 or above [`MAX_FRAME_LEN`] cannot be resynchronised
//! after, so it is an error that ends the stream.

use super::{DecodeError, MAX_FRAME_LEN};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 2;

/// Appends `frame` (at most [`MAX_FRAME_LEN`] bytes, as `encode` guarantees) with its
/// length prefix to `out`.
pub fn put(frame: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!frame.is_empty() && frame.len() <= MAX_FRAME_LEN);
    let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
}

/// Reassembles length-prefixed frames from a stream read in arbitrary pieces. Holds at
/// most one partial frame plus one read's worth of bytes.
#[derive(Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` before this were handed out already.
    start: usize,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder { buf: Vec::with_capacity(2 * (PREFIX_LEN + MAX_FRAME_LEN)), start: 0 }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` until more bytes are needed, or `TooShort` /
    /// `TooLong` for a length no sender may use.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let rest = &self.buf[self.start..];
        let Some((prefix, body)) = rest.split_first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes(*prefix));
        if len == 0 {
            return Err(DecodeError::TooShort);
        }
        if len > MAX_FRAME_LEN {
            return Err(DecodeError::TooLong);
        }
        if body.len() < len {
            return Ok(None);
        }
        let at = self.start + PREFIX_LEN;
        self.start = at + len;
        Ok(self.buf.get(at..at + len))
    }

    /// True while part of a frame (or of its prefix) is buffered.
    pub fn is_partial(&self) -> bool {
        self.buf.len() > self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut StreamDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            out.push(f.to_vec());
        }
        out
    }

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let mut wire = Vec::new();
        put(b"first", &mut wire);
        put(&[7; MAX_FRAME_LEN], &mut wire);
        put(b"x", &mut wire);
        assert_eq!(&wire[..2], &[0, 5]);
        for piece in [1, 2, 3, 7, 100, wire.len()] {
            let mut d = StreamDecoder::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                d.push(chunk);
                got.extend(frames(&mut d));
            }
            assert_eq!(got, vec![b"first".to_vec(), vec![7; MAX_FRAME_LEN], b"x".to_vec()]);
            assert!(!d.is_partial());
        }
    }

    #[test]
    fn partial_frames_wait_and_bad_lengths_are_errors() {
        let mut d = StreamDecoder::new();
        d.push(&[0]);
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.is_partial());
        d.push(&[2, b'a']);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b"b");
        assert_eq!(d.next_frame(), Ok(Some(&b"ab"[..])));
        assert!(!d.is_partial());

        let mut d = StreamDecoder::new();
        d.push(&[0, 0]);
        assert_eq!(d.next_frame(), Err(DecodeError::TooShort));
        let mut d = StreamDecoder::new();
        d.push(&(MAX_FRAME_LEN as u16 + 1).to_be_bytes());
        assert_eq!(d.next_frame(), Err(DecodeError::TooLong));
    }
}
