//! Who a `tls://` client is: its certificate, checked right after the handshake, and the
//! ids that certificate lets it beat under.
//!
//! The handshake itself only checks that the client holds the key of the certificate it
//! presents ([`Deferred`]); the chain is checked by [`verdict`] before any frame is read.
//! Done in the handshake, a refusal would reach the client as a TLS alert, which cannot
//! tell "expired" from "not yet valid" and has no word for "not your id"; after it, the
//! monitor answers with a NACK that names the reason, on the encrypted connection.
//!
//! The ids a certificate names: each DNS-name SAN and each URI SAN, compared with the id
//! byte for byte (so case counts, and a wildcard such as `*.example` names no id).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::proto::NackReason;

/// Asks for a client certificate and checks the client's signature with it, but leaves
/// the chain to [`verdict`].
#[derive(Debug)]
pub(crate) struct Deferred(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Deferred {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Not at the TLS level: a missing certificate is refused by `verdict`, with a reason.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The ids a verified client may beat under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerIds(Vec<String>);

impl PeerIds {
    pub fn allows(&self, id: &str) -> bool {
        self.0.iter().any(|name| name == id)
    }
}

/// The client's certificate chain (as the handshake got it) checked against the CA now:
/// the ids it names, or the reason to refuse it.
pub(crate) fn verdict(
    verifier: &dyn ClientCertVerifier,
    chain: Option<&[CertificateDer<'_>]>,
) -> Result<PeerIds, NackReason> {
    let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else {
        return Err(NackReason::CertRequired);
    };
    verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()).map_err(|e| refusal(&e))?;
    let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| NackReason::CertInvalid)?;
    let names = cert.valid_dns_names().filter(|n| !n.starts_with('*')).chain(cert.valid_uri_names());
    Ok(PeerIds(names.map(str::to_owned).collect()))
}

fn refusal(e: &rustls::Error) -> NackReason {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => NackReason::CertExpired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => NackReason::CertNotYetValid,
            CertificateError::UnknownIssuer => NackReason::CertUntrusted,
            _ => NackReason::CertInvalid,
        },
        _ => NackReason::CertInvalid,
    }
}
