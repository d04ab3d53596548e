//! A tiny checked reader: every read either returns bytes or a `Truncated` error,
//! so decoding has no indexing or slicing that could panic.

use super::DecodeError;

pub(super) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { rest: bytes }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes; `field` names what was being read if they are missing.
    pub(super) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self.rest.split_first_chunk::<N>().ok_or(DecodeError::Truncated { field })?;
        self.rest = tail;
        Ok(*head)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(super) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(super) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_network_order_and_reports_truncation() {
        let mut c = Cursor::new(&[0x01, 0x02, 0x03]);
        assert_eq!(c.u16("a"), Ok(0x0102));
        assert_eq!(c.u16("b"), Err(DecodeError::Truncated { field: "b" }));
        // A failed read consumes nothing.
        assert_eq!(c.u8("c"), Ok(0x03));
        assert!(c.is_empty());
        assert_eq!(c.take(usize::MAX, "d"), Err(DecodeError::Truncated { field: "d" }));
        assert_eq!(c.take(0, "e"), Ok(&[][..]));
    }
}
