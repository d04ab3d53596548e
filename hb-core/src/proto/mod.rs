//! Wire format v1: encode/decode, auth tag, test vectors. See docs/protocol.md.
//!
//! One datagram is one frame: a fixed 27-byte header, the sender id, a length-prefixed
//! TLV extension region, then an optional 16-byte HMAC tag. Decoding borrows from the
//! datagram ([`FrameRef`]) and never allocates or panics, whatever the input.

mod auth;
mod cursor;
mod decode;
mod encode;
mod error;
mod ext;
mod frame;
pub mod ident;
pub mod stream;
mod traceparent;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use auth::AuthKey;
pub use decode::decode;
pub use encode::encode;
pub use error::{DecodeError, EncodeError};
pub use frame::{Flags, Frame, FrameRef, Kind, NackReason};
pub(crate) use traceparent::is_valid as traceparent_is_valid;

/// "HB" in ASCII, first two bytes of every frame.
pub const MAGIC: u16 = 0x4842;
/// The only version this code speaks; anything else is rejected, never guessed at.
pub const VERSION: u8 = 1;
/// Largest frame on the wire, tag included. Keeps one frame in one unfragmented datagram.
pub const MAX_FRAME_LEN: usize = 512;
/// Length of the truncated HMAC-SHA256 tag.
pub const TAG_LEN: usize = 16;
/// Longest sender id, in bytes of UTF-8.
pub const MAX_ID_LEN: usize = 64;

/// Bytes before the id: magic, version, kind, flags, seq, ts_ns, interval_ms,
/// incarnation, stall_ms.
pub const HEADER_LEN: usize = 2 + 1 + 1 + 1 + 4 + 8 + 4 + 4 + 2;
/// Smallest valid frame: header, id_len, a 1-byte id, an empty extensions length.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + 1 + 1 + 2;
/// Longest value one TLV extension can carry (its length is a u8).
pub const MAX_EXT_VALUE_LEN: usize = 255;
