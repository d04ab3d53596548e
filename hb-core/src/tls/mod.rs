//! TLS 1.3 for `tls://` endpoints, on rustls with the ring provider (the one etcd-client
//! already brings): the PEM files made into rustls configurations, with errors that name
//! the option and the path as typed.
//!
//! Both sides authenticate: the monitor requires a client certificate signed by the CA and
//! lets it beat only under an id its certificate names ([`peer`]); the client checks the
//! monitor's certificate against the same CA and the server name. [`reload`] makes the
//! configurations again when their files change.

pub(crate) mod peer;
pub(crate) mod reload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsOptions;
use crate::error::{Error, Result};

/// The three files of one side, all required (mutual authentication is the default).
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of a resolved configuration (`Config::resolve` checked they are all set
    /// when a `tls://` endpoint is used).
    pub fn of(o: &TlsOptions) -> Result<TlsFiles> {
        let need = |key: &str, p: &Option<PathBuf>| {
            p.clone().ok_or_else(|| Error::config(key, "", "a PEM file: a tls:// endpoint needs it"))
        };
        Ok(TlsFiles {
            ca: need("tls_ca_file", &o.ca_file)?,
            cert: need("tls_cert_file", &o.cert_file)?,
            key: need("tls_key_file", &o.key_file)?,
        })
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.ca.clone(), self.cert.clone(), self.key.clone()]
    }
}

/// A monitor's side: the rustls configuration and the real client-certificate check,
/// which runs right after the handshake ([`peer::Deferred`]).
pub(crate) struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub verifier: Arc<dyn ClientCertVerifier>,
}

pub(crate) fn server(files: &TlsFiles) -> Result<ServerTls> {
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(&files.ca)?), provider())
        .build()
        .map_err(|e| Error::config("tls_ca_file", files.ca.display(), format!("a usable CA certificate ({e})")))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::io("tls", e))?
        .with_client_cert_verifier(Arc::new(peer::Deferred(Arc::clone(&verifier))))
        .with_single_cert(read_certs("tls_cert_file", &files.cert)?, read_key(&files.key)?)
        .map_err(|e| key_error(files, e))?;
    Ok(ServerTls { config: Arc::new(config), verifier })
}

pub(crate) fn client(files: &TlsFiles) -> Result<ClientConfig> {
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(read_roots(&files.ca)?), provider())
        .build()
        .map_err(|e| Error::config("tls_ca_file", files.ca.display(), format!("a usable CA certificate ({e})")))?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::io("tls", e))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(read_certs("tls_cert_file", &files.cert)?, read_key(&files.key)?)
        .map_err(|e| key_error(files, e))?;
    Ok(config)
}

/// What `check()` says of a client's handshake that failed: which check refused the
/// monitor's certificate, or that the monitor refused ours at the TLS level.
pub(crate) fn client_failure(e: &std::io::Error, name: &ServerName<'_>) -> String {
    use rustls::CertificateError as C;
    let what = match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::Expired | C::ExpiredContext { .. } => "has expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => "is not valid yet".to_string(),
            C::UnknownIssuer => "is not signed by the CA of tls_ca_file (untrusted)".to_string(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("is not valid for the name {:?} (set tls_server_name to a name it holds)", name.to_str())
            }
            other => format!("is refused ({other:?})"),
        },
        Some(rustls::Error::AlertReceived(alert)) => {
            return format!("tls: the monitor refused the handshake (alert {alert:?})")
        }
        Some(other) => return format!("tls: the handshake failed ({other})"),
        None => return format!("tls: the handshake failed ({e})"),
    };
    format!("tls: the monitor's certificate {what}")
}

/// `tls_server_name`: a DNS name or an IP address.
pub fn parse_server_name(text: &str) -> Result<String> {
    ServerName::try_from(text).map(|_| text.to_string()).map_err(|_| {
        Error::config("tls_server_name", text, "a DNS name or IP address that the monitor's certificate holds")
    })
}

/// The name a client checks the monitor's certificate against: `tls_server_name`, or the
/// endpoint's host.
pub(crate) fn server_name(explicit: Option<&str>, host: &str, endpoint: &str) -> Result<ServerName<'static>> {
    let (field, text) = match explicit {
        Some(name) => ("tls_server_name", name),
        None => ("endpoint", host),
    };
    ServerName::try_from(text.to_string())
        .map_err(|_| Error::config(field, endpoint, "a host that is a DNS name or IP address (or set tls_server_name)"))
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::config(field, path.display(), format!("a readable PEM file ({e})")))
}

fn read_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(field, path.display(), format!("a PEM file of certificates ({e})")))?;
    if certs.is_empty() {
        return Err(Error::config(field, path.display(), "a PEM file holding a CERTIFICATE (none found)"));
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("tls_ca_file", path)? {
        roots.add(cert).map_err(|e| Error::config("tls_ca_file", path.display(), format!("a CA certificate ({e})")))?;
    }
    Ok(roots)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = read("tls_key_file", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => "none found".to_string(),
            other => other.to_string(),
        };
        Error::config(
            "tls_key_file",
            path.display(),
            format!("a PEM file holding a private key (PRIVATE KEY, RSA or EC PRIVATE KEY): {why}"),
        )
    })
}

fn key_error(files: &TlsFiles, e: rustls::Error) -> Error {
    match e {
        rustls::Error::InconsistentKeys(_) => Error::config(
            "tls_key_file",
            files.key.display(),
            format!(
                "the private key of the certificate in tls_cert_file {:?}: they do not match",
                files.cert.display()
            ),
        ),
        other => Error::config("tls_key_file", files.key.display(), format!("a private key rustls can use ({other})")),
    }
}
