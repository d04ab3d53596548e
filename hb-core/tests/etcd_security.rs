//! etcd over TLS (CA + client certificate, generated here with rcgen) and with
//! username/password auth; refused credentials are `PermissionDenied`, not `Connect`.

mod etcd_support;

use std::path::Path;
use std::time::{Duration, Instant};

use etcd_support::{options, start_client, wait_event, wait_for, Etcd};
use hb_core::{Error, State, Watcher};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// Writes ca.pem, server.pem/server-key.pem and client.pem/client-key.pem into `dir`.
fn make_certs(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "heartbeater test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "root")] {
        let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

#[test]
fn tls_with_client_certificates() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let etcd = Etcd::start_with(Some(certs.path()));
    let url = etcd.url("/secure");
    let tls = [
        ("etcd_ca_file", path(certs.path(), "ca.pem")),
        ("etcd_cert_file", path(certs.path(), "client.pem")),
        ("etcd_key_file", path(certs.path(), "client-key.pem")),
    ];
    let mut pairs: Vec<(&str, &str)> =
        vec![("endpoint", &url), ("service", "svc"), ("instance_id", "t"), ("ttl", "3s")];
    pairs.extend(tls.iter().map(|(k, v)| (*k, v.as_str())));
    let m = start_client(&options(&pairs)).unwrap();
    assert_eq!(etcd.keys("/secure/"), vec!["/secure/svc/t".to_string()]);
    m.check().unwrap();

    let mut wpairs: Vec<(&str, &str)> = vec![("endpoint", &url)];
    wpairs.extend(tls.iter().map(|(k, v)| (*k, v.as_str())));
    let w = Watcher::new(&options(&wpairs)).unwrap();
    w.start().unwrap();
    assert_eq!(w.peers().unwrap().len(), 1);

    // Without a client certificate the server refuses the handshake: a precise error, fast.
    let t0 = Instant::now();
    let err = start_client(&options(&[
        ("endpoint", &url),
        ("service", "svc"),
        ("instance_id", "nocert"),
        ("ttl", "3s"),
        ("connect_timeout", "2s"),
        ("etcd_ca_file", &path(certs.path(), "ca.pem")),
    ]))
    .err()
    .expect("no client certificate must fail");
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert!(err.to_string().starts_with(&format!("cannot reach etcd at {}", etcd.endpoint())), "{err}");

    // A CA file that is not there names the option.
    let err = start_client(&options(&[("endpoint", &url), ("etcd_ca_file", "/nonexistent/ca.pem"), ("ttl", "3s")]))
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("etcd_ca_file \"/nonexistent/ca.pem\""), "{err}");

    m.stop(Duration::from_secs(2)).unwrap();
    wait_event(w.events(), Duration::from_secs(3), "left over TLS", |e| e.peer == "t" && e.to == State::Left);
    w.stop().unwrap();
}

#[test]
fn username_and_password() {
    if !etcd_support::etcd_installed() {
        return;
    }
    let mut etcd = Etcd::start();
    etcd.etcdctl(&["user", "add", "root:rootpw", "--interactive=false"]);
    etcd.etcdctl(&["auth", "enable"]);
    let url = etcd.url("/services");
    let start = |password: &str, id: &str| {
        start_client(&options(&[
            ("endpoint", &url),
            ("service", "svc"),
            ("instance_id", id),
            ("ttl", "2s"),
            ("connect_timeout", "2s"),
            ("etcd_username", "root"),
            ("etcd_password", password),
        ]))
    };

    let err = start("wrong", "bad").err().expect("wrong password must fail");
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("permission denied by etcd at {}", etcd.endpoint())), "{err}");

    // No credentials at all against an etcd with auth on: refused too, not "unreachable".
    let err = start_client(&options(&[("endpoint", &url), ("service", "svc"), ("instance_id", "anon"), ("ttl", "2s")]))
        .err()
        .expect("anonymous must fail");
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");

    let m = start("rootpw", "ok").unwrap();
    let keys = etcd.etcdctl_as(Some("root:rootpw"), &["get", "--prefix", "/services/", "--keys-only"]).unwrap();
    assert!(keys.contains("/services/svc/ok"), "{keys}");

    // etcd forgets its auth tokens when it restarts: the member logs in again by itself.
    etcd.restart(false);
    wait_for(Duration::from_secs(10), "healthy after restart with auth", || {
        let keys = etcd.etcdctl_as(Some("root:rootpw"), &["get", "--prefix", "/services/", "--keys-only"]).ok()?;
        (keys.contains("/services/svc/ok") && m.state().unwrap() == State::Healthy && m.check().is_ok()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    m.check().unwrap();
    m.stop(Duration::from_secs(2)).unwrap();
}
