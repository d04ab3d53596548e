//! Wire format: encode/decode, auth tag, test vectors. See docs/protocol.md.
