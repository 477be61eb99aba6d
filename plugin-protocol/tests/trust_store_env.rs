//! A TLS trust store named by SSL_CERT_FILE or SSL_CERT_DIR that would block its reader (a FIFO,
//! a device) is refused by name before any HTTPS client reads it; regular files pass. (Its own
//! test binary: it sets process environment variables.)

use plugin_protocol::bounded::check_trust_store_env;
use plugin_protocol::ErrorCode;
use x509_cert::der::Decode;

#[test]
fn a_trust_store_that_would_block_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("roots.pem");
    plugin_protocol::client::make_fifo(&fifo);
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, "").unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("a.pem"), "").unwrap();

    // The system's roots are what SSL_CERT_FILE names, when set.
    let one = dir.path().join("one.pem");
    std::fs::write(
        &one,
        plugin_protocol::testca::TestCa::new("CN=Only,O=Test,C=US").root_pem(),
    )
    .unwrap();
    std::env::set_var("SSL_CERT_FILE", &one);
    std::env::remove_var("SSL_CERT_DIR");
    let roots = plugin_protocol::tls::Sources::from_env().load().unwrap();
    assert_eq!(roots.certificates.len(), 1);
    assert_eq!(roots.read, std::slice::from_ref(&one));

    // An empty variable counts as unset: the well-known bundle, and no directory beside it.
    std::env::set_var("SSL_CERT_FILE", "");
    std::env::set_var("SSL_CERT_DIR", "");
    let empty = plugin_protocol::tls::Sources::from_env();
    assert!(matches!(&empty.bundle, Some((_, None))), "{empty:?}");
    assert!(empty.directories.is_empty(), "{empty:?}");

    // For an SDK that reads the store itself: the one bundle is named, unless the user named
    // a file or a directory (then nothing changes).
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    plugin_protocol::tls::name_the_system_bundle();
    let system = plugin_protocol::tls::Sources::from_env()
        .bundle
        .map(|(p, _)| p);
    assert_eq!(
        std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from),
        system,
        "the system's bundle (this machine has one: {system:?})"
    );
    assert!(system.is_some(), "the test machine has a CA bundle");
    std::env::remove_var("SSL_CERT_FILE");
    std::env::set_var("SSL_CERT_DIR", &certs);
    plugin_protocol::tls::name_the_system_bundle();
    assert_eq!(
        std::env::var_os("SSL_CERT_FILE"),
        None,
        "SSL_CERT_DIR is the user's choice"
    );
    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::remove_var("SSL_CERT_DIR");
    plugin_protocol::tls::name_the_system_bundle();
    assert_eq!(
        std::env::var_os("SSL_CERT_FILE"),
        Some(bundle.clone().into())
    );

    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::set_var("SSL_CERT_DIR", &certs);
    check_trust_store_env().expect("regular files pass");

    std::env::set_var("SSL_CERT_FILE", &fifo);
    let e = check_trust_store_env().unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation);
    assert!(
        e.message.contains("SSL_CERT_FILE") && e.message.contains("a FIFO"),
        "{}",
        e.message
    );

    // A directory as SSL_CERT_FILE is named too (the user meant SSL_CERT_DIR).
    std::env::set_var("SSL_CERT_FILE", &certs);
    let e = check_trust_store_env().unwrap_err();
    assert!(
        e.message.contains("SSL_CERT_FILE") && e.message.contains("which is a directory"),
        "{}",
        e.message
    );

    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::fs::rename(&fifo, certs.join("b.pem")).unwrap();
    let e = check_trust_store_env().unwrap_err();
    assert!(
        e.message.contains("SSL_CERT_DIR") && e.message.contains("b.pem"),
        "{}",
        e.message
    );

    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("SSL_CERT_FILE", "/dev/zero");
    let e = check_trust_store_env().unwrap_err();
    assert!(e.message.contains("a device"), "{}", e.message);
    // /dev/null (no roots at all) ends at once: the TLS stack's to report.
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    check_trust_store_env().expect("/dev/null passes");

    // For an invocation that makes no TLS connection: one placeholder certificate, held in
    // memory, whatever the user named; no directory.
    std::env::set_var("SSL_CERT_DIR", &certs);
    assert!(plugin_protocol::tls::trust_nothing_for_plain_http());
    assert_eq!(std::env::var_os("SSL_CERT_DIR"), None);
    let store = std::path::PathBuf::from(std::env::var_os("SSL_CERT_FILE").unwrap());
    assert!(store.starts_with("/proc/self/fd"), "{}", store.display());
    check_trust_store_env().expect("the placeholder passes");
    let roots = plugin_protocol::tls::Sources::from_env().load().unwrap();
    assert_eq!(roots.certificates.len(), 1);
    let placeholder = x509_cert::Certificate::from_der(&roots.certificates[0]).unwrap();
    assert_eq!(
        plugin_protocol::dn::to_string(&placeholder.tbs_certificate.subject),
        "CN=notation-plugins no-TLS placeholder (key discarded)"
    );
}
