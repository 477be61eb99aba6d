//! What every plugin binary carries into each of its three starts per signature: not
//! const-oid's database of OID names (`plugin_protocol::dn` names attribute types itself), whose
//! table of pointers each start would relocate.

use hsm_tests::plugin_binary;

const PLUGINS: [&str; 6] = [
    "pkcs11",
    "aws-kms",
    "hashicorp-vault",
    "azure-keyvault",
    "gcp-kms",
    "yubikey",
];

#[test]
fn no_plugin_links_the_oid_name_database() {
    // The database's first name, which nothing else in the suite spells.
    let marker = b"textEncodedORAddress";
    for plugin in PLUGINS {
        let exe = plugin_binary(plugin);
        let bytes = std::fs::read(&exe).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "{} links const-oid's OID database (x509-cert's Name::from_str or Display of a \
             Name is called somewhere: use plugin_protocol::dn)",
            exe.display()
        );
    }
}
