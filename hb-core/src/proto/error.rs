//! Decode and encode errors. Decode errors map to a small, stable set of metric labels
//! ([`DecodeError::reason`]); encode errors name the field and the accepted form.

/// Why a datagram was rejected. Checked in this order: length, magic, version,
/// minimum length, tag presence and validity (with a key), then the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame shorter than the {min}-byte minimum", min = super::MIN_FRAME_LEN)]
    TooShort,
    #[error("frame longer than {max} bytes", max = super::MAX_FRAME_LEN)]
    TooLong,
    #[error("bad magic {0:#06x}, expected 0x4842 (\"HB\")")]
    BadMagic(u16),
    #[error("unsupported protocol version {0}, expected 1")]
    UnsupportedVersion(u8),
    #[error("unknown frame kind {0}, expected 1..=4")]
    UnknownKind(u8),
    #[error("id length {0}, expected 1..=64 bytes")]
    BadIdLength(usize),
    #[error("{field}: invalid UTF-8")]
    BadUtf8 { field: &'static str },
    /// Ids, services and labels are shown in logs and terminal output, where a newline
    /// or escape sequence from the network could forge lines.
    #[error("{field}: contains a control character")]
    ControlChar { field: &'static str },
    /// Ids, services and label keys are names people read: see `proto::ident`.
    #[error("{field}: contains a character a name may not hold (a space, format, separator or unassigned character, or a fullwidth form)")]
    UnsafeChar { field: &'static str },
    #[error("{field}: truncated, the frame ends inside it")]
    Truncated { field: &'static str },
    #[error("extension type {ty}: {reason}")]
    BadExtension { ty: u8, reason: &'static str },
    #[error(
        "traceparent: expected 00-<32 lowercase hex, not all zero>-<16 lowercase hex, not all zero>-<2 lowercase hex>"
    )]
    BadTraceparent,
    #[error("frame has no auth tag but a key is configured")]
    Untagged,
    #[error("auth tag does not verify")]
    BadTag,
    #[error("bytes left after the last field")]
    TrailingBytes,
}

impl DecodeError {
    /// Stable snake_case label for the "frames rejected by reason" metric. Structural
    /// problems share `malformed` to keep the label set small.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort => "too_short",
            DecodeError::TooLong => "too_long",
            DecodeError::BadMagic(_) => "bad_magic",
            DecodeError::UnsupportedVersion(_) => "bad_version",
            DecodeError::UnknownKind(_) => "unknown_kind",
            DecodeError::Untagged => "untagged",
            DecodeError::BadTag => "bad_tag",
            DecodeError::BadIdLength(_)
            | DecodeError::BadUtf8 { .. }
            | DecodeError::ControlChar { .. }
            | DecodeError::UnsafeChar { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::BadExtension { .. }
            | DecodeError::BadTraceparent
            | DecodeError::TrailingBytes => "malformed",
        }
    }

    /// Every label [`reason`](Self::reason) can return, e.g. to pre-register metrics.
    pub const REASONS: [&'static str; 8] =
        ["too_short", "too_long", "bad_magic", "bad_version", "unknown_kind", "malformed", "untagged", "bad_tag"];
}

/// Why a frame (or key) could not be encoded. Each names the field and the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("id: {len} bytes, expected 1..=64 bytes of UTF-8")]
    IdLength { len: usize },
    #[error("service: {len} bytes, expected 1..=255 bytes of UTF-8")]
    ServiceLength { len: usize },
    #[error("label {index}: key {key:?} must be non-empty and contain no '='")]
    LabelKey { index: usize, key: String },
    #[error("label {index}: \"key=value\" is {len} bytes, expected at most 255")]
    LabelLength { index: usize, len: usize },
    #[error("{field} {value:?}: contains a control character, which monitors reject")]
    ControlChar { field: &'static str, value: String },
    #[error("{field} {value:?}: expected {chars}, which monitors require", chars = super::ident::NAME_CHARS)]
    UnsafeChar { field: &'static str, value: String },
    #[error("traceparent {value:?}: expected 00-<32 lowercase hex, not all zero>-<16 lowercase hex, not all zero>-<2 lowercase hex>")]
    Traceparent { value: String },
    #[error("flags: {flags:#04x} sets reserved bits, expected only bits of 0x0f")]
    ReservedFlags { flags: u8 },
    #[error("frame: {len} bytes, expected at most 512 (shorten id, service or labels)")]
    FrameTooLong { len: usize },
    #[error("auth key: 0 bytes, expected at least 1 byte")]
    EmptyKey,
}
