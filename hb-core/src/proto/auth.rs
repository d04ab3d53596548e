//! The frame tag: HMAC-SHA256 over every byte before it, truncated to [`TAG_LEN`].
//! Replay is not handled here: the monitor requires `seq` to increase per incarnation.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{EncodeError, TAG_LEN};

/// Shared key for the HMAC-SHA256 tag. Debug never prints the key.
#[derive(Clone)]
pub struct AuthKey {
    // Keyed once here so each frame only clones the prepared state (no per-frame key setup).
    mac: Hmac<Sha256>,
}

impl AuthKey {
    /// Any non-empty byte string; 32 random bytes is the recommended size.
    pub fn new(bytes: &[u8]) -> Result<AuthKey, EncodeError> {
        if bytes.is_empty() {
            return Err(EncodeError::EmptyKey);
        }
        // HMAC accepts keys of any length, so this cannot fail; map it anyway rather than unwrap.
        let mac = Hmac::<Sha256>::new_from_slice(bytes).map_err(|_| EncodeError::EmptyKey)?;
        Ok(AuthKey { mac })
    }

    /// The truncated tag for `covered`.
    pub(super) fn tag(&self, covered: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(covered);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        for (t, b) in tag.iter_mut().zip(full.iter()) {
            *t = *b;
        }
        tag
    }

    /// Constant-time check, so timing does not leak how many tag bytes matched.
    pub(super) fn verify(&self, covered: &[u8], tag: &[u8]) -> bool {
        bool::from(self.tag(covered).as_slice().ct_eq(tag))
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_key() {
        assert_eq!(AuthKey::new(b"").unwrap_err(), EncodeError::EmptyKey);
    }

    #[test]
    fn debug_hides_key() {
        let k = AuthKey::new(b"hunter2").unwrap();
        assert_eq!(format!("{k:?}"), "AuthKey(<redacted>)");
    }

    #[test]
    fn tag_is_truncated_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let k = AuthKey::new(b"Jefe").unwrap();
        let tag = k.tag(b"what do ya want for nothing?");
        assert_eq!(hex::encode(tag), "5bdcc146bf60754e6a042426089575c7");
        assert!(k.verify(b"what do ya want for nothing?", &tag));
        assert!(!k.verify(b"what do ya want for nothing!", &tag));
        assert!(!k.verify(b"what do ya want for nothing?", &tag[..15]));
    }
}
