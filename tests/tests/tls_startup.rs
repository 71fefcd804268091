//! `gridcap serve` with TLS material it cannot use must refuse to start:
//! exit non-zero, say which file is wrong, and never listen (a node that
//! served plain HTTP, or nothing, while its operator believes it serves
//! `https://` is the failure this prevents).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use testkit::node::serve_command;
use testkit::ports::free_addr;
use testkit::process::Proc;
use testkit::{TestDir, WAIT};

/// A self-signed certificate and its key, PEM, written into `dir` as
/// `<name>.cert.pem` and `<name>.key.pem`.
fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join(format!("{name}.cert.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// Starts `gridcap serve` with `cert` and `key`; expects it to exit with a
/// failure within [`WAIT`], saying each of `culprits` (which file, which
/// part) in its output, and never to have accepted a connection.
async fn refuses_to_start(dir: &TestDir, label: &str, cert: &Path, key: &Path, culprits: &[&str]) {
    let addr = free_addr();
    let mut command = serve_command();
    command
        .args(["--listen", &addr.to_string()])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key);
    let mut node = Proc::spawn(label, command, &dir.path);
    let status = node.wait_exit(WAIT).await;
    let output = format!(
        "{}{}",
        std::fs::read_to_string(node.stdout_path()).unwrap_or_default(),
        std::fs::read_to_string(node.stderr_path()).unwrap_or_default()
    );
    assert!(
        !status.success(),
        "{label}: gridcap started with unusable TLS material ({status})\n{output}"
    );
    for culprit in culprits {
        assert!(
            output.contains(culprit),
            "{label}: the error does not say {culprit:?}\n{output}"
        );
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "{label}: something listens on {addr} after the failed start"
    );
}

#[tokio::test]
async fn unusable_tls_material_stops_the_start() {
    let dir = TestDir::new("unusable_tls_material_stops_the_start");
    let (cert, key) = pair(&dir.path, "good");
    let (_other_cert, other_key) = pair(&dir.path, "other");
    let missing = dir.join("missing.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();

    // (label, --tls-cert, --tls-key, what the error must say)
    let cases: [(&str, &Path, &Path, &[&str]); 6] = [
        (
            "missing-cert",
            &missing,
            &key,
            &["certificate", "missing.pem"],
        ),
        (
            "missing-key",
            &cert,
            &missing,
            &["private key", "missing.pem"],
        ),
        (
            "garbage-cert",
            &garbage,
            &key,
            &["certificate", "garbage.pem"],
        ),
        (
            "garbage-key",
            &cert,
            &garbage,
            &["private key", "garbage.pem"],
        ),
        // Swapped files: a certificate where the key goes.
        (
            "cert-as-key",
            &cert,
            &cert,
            &["private key", "good.cert.pem"],
        ),
        // Both valid, but the key is not the certificate's.
        (
            "mismatched-key",
            &cert,
            &other_key,
            &["certificate/key pair"],
        ),
    ];
    for (label, cert, key, culprits) in cases {
        refuses_to_start(&dir, label, cert, key, culprits).await;
    }
}
