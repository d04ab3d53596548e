//! `tls://`: beats inside mutually authenticated TLS 1.3, with certificates made here
//! (rcgen). A client goes alive, left and dead as over UDP; a client whose certificate is
//! untrusted, expired, not yet valid, missing or for another id is refused with that
//! reason, told so, and counted; the monitor's certificate files are rotated under load
//! without losing a peer, and new handshakes present the new certificate.

mod engine_support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use hb_core::proto::{decode, Kind, NackReason};
use hb_core::{Client, Event, Monitor, Reason, State};
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, ServerName};

/// A CA and the certificates it signs, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Certificate,
    ca_key: KeyPair,
}

enum Validity {
    Now,
    Expired,
    NotYet,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn ca_file(&self) -> String {
        self.path("ca.pem")
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// Writes `<name>.pem` and `<name>-key.pem` for `sans`; returns the certificate's DER.
    fn issue(&self, name: &str, sans: &[&str], validity: Validity) -> Vec<u8> {
        let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        match validity {
            Validity::Now => {}
            Validity::Expired => (p.not_before, p.not_after) = (date_time_ymd(2001, 1, 1), date_time_ymd(2002, 1, 1)),
            Validity::NotYet => (p.not_before, p.not_after) = (date_time_ymd(2090, 1, 1), date_time_ymd(2091, 1, 1)),
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        write_atomically(&self.dir.path().join(format!("{name}-key.pem")), &key.serialize_pem());
        write_atomically(&self.dir.path().join(format!("{name}.pem")), &cert.pem());
        cert.der().to_vec()
    }

    /// The three options of one side whose files are `<name>.pem` and `<name>-key.pem`.
    fn options(&self, name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("tls_ca_file", self.ca_file()),
            ("tls_cert_file", self.path(&format!("{name}.pem"))),
            ("tls_key_file", self.path(&format!("{name}-key.pem"))),
        ]
    }
}

/// As certificate tooling rotates files: the new one is renamed over the old.
fn write_atomically(path: &Path, text: &str) {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn pairs<'a>(extra: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    extra.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn tls_monitor(pki: &Pki) -> Monitor {
    pki.issue("monitor", &["localhost", "127.0.0.1"], Validity::Now);
    monitor("tls://127.0.0.1:0", &pairs(&pki.options("monitor")))
}

/// A client beating as `id` with the files of `name`.
fn tls_client(m: &Monitor, pki: &Pki, name: &str, id: &str) -> Client {
    client(&endpoint(m, "tls"), id, &pairs(&pki.options(name)))
}

fn refused_with(c: &Client, words: &str) {
    wait_until(&format!("check() to say {words:?}"), DEADLINE, || {
        c.check().is_err_and(|e| e.to_string().contains(words))
    });
}

fn never_seen(m: &Monitor, id: &str) {
    assert!(m.peers().unwrap().iter().all(|p| p.id != id), "{id} got into the table");
}

#[test]
fn an_mtls_client_goes_alive_then_left_and_a_crashed_one_dead() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    pki.issue("leaver", &["leaver"], Validity::Now);
    let c = tls_client(&m, &pki, "leaver", "leaver");
    let alive = wait_transition(&m, "leaver", State::Alive, DEADLINE);
    assert_eq!(alive.reason, Reason::Registered);
    wait_until("the client's own view: healthy", DEADLINE, || c.check().is_ok());
    let peer = m.peers().unwrap().into_iter().find(|p| p.id == "leaver").unwrap();
    assert!(peer.addr.as_deref().is_some_and(|a| a.starts_with("tls://")), "{:?}", peer.addr);
    c.stop(Duration::from_secs(2)).unwrap();
    let left = wait_transition(&m, "leaver", State::Left, DEADLINE);
    assert_eq!(left.reason, Reason::Left);

    pki.issue("crasher", &["crasher"], Validity::Now);
    let c = tls_client(&m, &pki, "crasher", "crasher");
    wait_transition(&m, "crasher", State::Alive, DEADLINE);
    let beats = m.stats().beats_received;
    wait_until("a few beats", DEADLINE, || m.stats().beats_received >= beats + 5);
    c.crash_for_test();
    let dead = wait_transition(&m, "crasher", State::Dead, DEADLINE);
    assert_eq!(dead.reason, Reason::Timeout);
}

#[test]
fn certificates_the_monitor_refuses_are_named_to_the_client_and_counted() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    let other = Pki::new("another CA");
    other.issue("stranger", &["stranger"], Validity::Now);
    pki.issue("expired", &["expired"], Validity::Expired);
    pki.issue("early", &["early"], Validity::NotYet);
    pki.issue("someone-else", &["someone-else"], Validity::Now);
    // The stranger trusts the monitor's CA, but its own certificate is signed by another.
    let mut stranger = other.options("stranger");
    stranger[0].1 = pki.ca_file();

    let cases = [
        ("stranger", stranger, NackReason::CertUntrusted),
        ("expired", pki.options("expired"), NackReason::CertExpired),
        ("early", pki.options("early"), NackReason::CertNotYetValid),
        // A valid certificate, for another id: one client cannot beat for another.
        ("impostor", pki.options("someone-else"), NackReason::IdMismatch),
    ];
    for (id, files, reason) in cases {
        let before = rejected(reason.as_str());
        let c = client(&endpoint(&m, "tls"), id, &pairs(&files));
        refused_with(&c, &format!("the monitor refused us ({})", reason.as_str()));
        wait_until("the refusal counted", DEADLINE, || rejected(reason.as_str()) > before);
        c.stop(Duration::from_secs(1)).unwrap();
        never_seen(&m, id);
    }
    // The rightful owner of the id still gets in.
    let owner = tls_client(&m, &pki, "someone-else", "someone-else");
    wait_transition(&m, "someone-else", State::Alive, DEADLINE);
    owner.stop(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_connection_without_a_client_certificate_is_told_cert_required() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    let before = rejected("cert_required");
    let mut conn = RawTls::connect(m.local_addr("tls").unwrap(), &pki.ca_file());
    let mut wire = Vec::new();
    let _ = conn.read_to_end(&mut wire);
    assert!(wire.len() > 2, "no NACK before the close: {wire:?}");
    let f = decode(&wire[2..2 + usize::from(u16::from_be_bytes([wire[0], wire[1]]))], None).unwrap();
    assert_eq!((f.kind, f.nack_reason, f.seq), (Kind::Nack, Some(NackReason::CertRequired), 0));
    assert!(rejected("cert_required") > before);
}

#[test]
fn a_client_refuses_a_monitor_it_cannot_verify_and_says_why() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    pki.issue("careful", &["careful"], Validity::Now);
    // Trusting another CA: the monitor's certificate is untrusted.
    let other = Pki::new("another CA");
    let mut files = pki.options("careful");
    files[0].1 = other.ca_file();
    let c = client(&endpoint(&m, "tls"), "careful", &pairs(&files));
    refused_with(&c, "tls: the monitor's certificate is not signed by the CA of tls_ca_file (untrusted)");
    c.stop(Duration::from_secs(1)).unwrap();
    // The right CA, the wrong name.
    let mut files = pki.options("careful");
    files.push(("tls_server_name", "monitor.example".into()));
    let c = client(&endpoint(&m, "tls"), "careful", &pairs(&files));
    refused_with(&c, "is not valid for the name \"monitor.example\"");
    c.stop(Duration::from_secs(1)).unwrap();
    never_seen(&m, "careful");
}

#[test]
fn config_errors_name_the_option_and_the_path() {
    let pki = Pki::new("test CA");
    pki.issue("a", &["a"], Validity::Now);
    pki.issue("b", &["b"], Validity::Now);
    let start = |extra: &[(&'static str, String)]| {
        let mut p = vec![("listen", "tls://127.0.0.1:0")];
        p.extend(pairs(extra));
        Monitor::new(&options(&p)).err().expect("must fail").to_string()
    };
    let missing = start(&pki.options("a")[..2]);
    assert_eq!(
        missing,
        "tls_key_file \"\": expected a PEM file of this side's private key: tls://127.0.0.1:0 needs it"
    );
    let mut unreadable = pki.options("a");
    unreadable[1].1 = "/nonexistent/a.pem".into();
    let err = start(&unreadable);
    assert!(err.starts_with("tls_cert_file \"/nonexistent/a.pem\": expected a readable PEM file"), "{err}");
    let mut no_key = pki.options("a");
    no_key[2].1 = pki.path("a.pem");
    let err = start(&no_key);
    assert!(err.contains("tls_key_file") && err.contains("a.pem") && err.contains("none found"), "{err}");
    let mut mismatch = pki.options("a");
    mismatch[2].1 = pki.path("b-key.pem");
    let err = start(&mismatch);
    assert!(err.contains("b-key.pem") && err.contains("they do not match"), "{err}");
    // TLS options without a tls:// endpoint are not silently ignored.
    let err = Monitor::new(&options(&[("listen", "udp://127.0.0.1:0"), ("tls_ca_file", &pki.ca_file())])).err();
    assert!(err.unwrap().to_string().starts_with("tls_ca_file \"\": expected a tls:// listen"));
}

#[test]
fn rotating_the_monitors_certificate_under_load_loses_no_peer() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    let ids: Vec<String> = (0..6).map(|i| format!("busy-{i}")).collect();
    let clients: Vec<Client> = ids
        .iter()
        .map(|id| {
            pki.issue(id, &[id], Validity::Now);
            tls_client(&m, &pki, id, id)
        })
        .collect();
    let mut pending: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    while !pending.is_empty() {
        let (hit, seen) = wait_event(&m, DEADLINE, |e| e.to == State::Alive && pending.contains(e.peer.as_str()));
        let hit = hit.unwrap_or_else(|| panic!("{pending:?} not alive; saw {seen:?}"));
        pending.remove(hit.peer.as_str());
    }
    let addr = m.local_addr("tls").unwrap();
    let old = RawTls::connect(addr, &pki.ca_file()).peer_certificate();
    let new = pki.issue("monitor", &["localhost", "127.0.0.1"], Validity::Now);
    assert_ne!(old, new);
    wait_until("a new handshake to present the new certificate", DEADLINE, || {
        RawTls::connect(addr, &pki.ca_file()).peer_certificate() == new
    });
    // The connections made before go on: beats still arrive, from every client.
    let beats = m.stats().beats_received;
    wait_until("more beats from all", DEADLINE, || m.stats().beats_received >= beats + 3 * ids.len() as u64);
    // And a client that connects now is admitted with the new certificate.
    pki.issue("late", &["late"], Validity::Now);
    let late = tls_client(&m, &pki, "late", "late");
    let (hit, seen) = wait_event(&m, DEADLINE, |e| e.peer == "late" && e.to == State::Alive);
    assert!(hit.is_some(), "late did not get in; saw {seen:?}");
    let losses: Vec<&Event> = seen.iter().filter(|e| e.to != State::Alive || e.reason == Reason::Restarted).collect();
    assert!(losses.is_empty(), "peers lost during the rotation: {losses:?}");
    assert_eq!(m.stats().alive, ids.len() + 1);
    // The monitor reports `late` alive on its beat; its client is registered on the ACK.
    wait_until("every client registered", DEADLINE, || clients.iter().chain([&late]).all(|c| c.check().is_ok()));
}

#[test]
fn a_client_picks_up_its_renewed_certificate_without_a_restart() {
    let pki = Pki::new("test CA");
    let m = tls_monitor(&pki);
    pki.issue("renewed", &["renewed"], Validity::Expired);
    let c = tls_client(&m, &pki, "renewed", "renewed");
    refused_with(&c, "the monitor refused us (cert_expired)");
    // Renewed in place, as certificate tooling does: the next handshake uses it.
    pki.issue("renewed", &["renewed"], Validity::Now);
    let alive = wait_transition(&m, "renewed", State::Alive, DEADLINE);
    assert_eq!(alive.reason, Reason::Registered);
    wait_until("the client registered", DEADLINE, || c.check().is_ok());
}

/// A bare TLS client (no client certificate), to see what the monitor presents and says.
struct RawTls(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl RawTls {
    fn connect(addr: SocketAddr, ca_file: &str) -> RawTls {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(ca_file).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).unwrap();
        }
        RawTls(rustls::StreamOwned::new(conn, sock))
    }

    fn peer_certificate(&self) -> Vec<u8> {
        self.0.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

impl Read for RawTls {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
