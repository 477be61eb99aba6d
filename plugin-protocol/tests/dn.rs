//! `plugin_protocol::dn` held to x509-cert's own string forms (which the plugins no longer link,
//! see the module): the same text parses to the same DER, the same name prints as the same
//! text, and each attribute type's names are const-oid's.

use std::str::FromStr;

use der::Encode;
use plugin_protocol::dn;
use proptest::prelude::*;
use x509_cert::name::Name;

/// Every attribute type the module knows, by each name it accepts and by its OID.
const TYPES: &[(&str, &[&str])] = &[
    ("2.5.4.3", &["cn", "commonName"]),
    ("2.5.4.4", &["sn", "surname"]),
    ("2.5.4.5", &["serialNumber"]),
    ("2.5.4.6", &["c", "countryName"]),
    ("2.5.4.7", &["l", "localityName"]),
    ("2.5.4.8", &["st", "stateOrProvinceName"]),
    ("2.5.4.9", &["street", "streetAddress"]),
    ("2.5.4.10", &["o", "organizationName"]),
    ("2.5.4.11", &["ou", "organizationalUnitName"]),
    ("2.5.4.12", &["title"]),
    ("2.5.4.17", &["postalCode"]),
    ("2.5.4.41", &["name"]),
    ("2.5.4.42", &["givenName"]),
    ("2.5.4.43", &["initials"]),
    ("2.5.4.44", &["generationQualifier"]),
    ("2.5.4.46", &["dnQualifier"]),
    ("2.5.4.65", &["pseudonym"]),
    ("0.9.2342.19200300.100.1.1", &["uid", "userId"]),
    ("0.9.2342.19200300.100.1.25", &["dc", "domainComponent"]),
    ("1.2.840.113549.1.9.1", &["email", "emailAddress"]),
];

fn der(name: &Name) -> Vec<u8> {
    name.to_der().unwrap()
}

#[test]
fn each_name_is_const_oids_and_each_type_prints_as_x509_cert_prints_it() {
    for (oid, names) in TYPES {
        let oid = const_oid::ObjectIdentifier::new_unwrap(oid);
        for name in *names {
            assert_eq!(const_oid::db::DB.by_name(name), Some(&oid), "{name}");
            assert_eq!(dn::attribute_type(name), Some(oid), "{name}");
            assert_eq!(
                dn::attribute_type(&name.to_ascii_uppercase()),
                Some(oid),
                "{name}, upper-cased"
            );
        }
        let theirs = Name::from_str(&format!("{oid}=value")).unwrap();
        assert_eq!(dn::to_string(&theirs), theirs.to_string(), "{oid}");
        assert!(
            !dn::to_string(&theirs).starts_with(&oid.to_string()),
            "{oid} is named"
        );
    }
    assert_eq!(dn::attribute_type("telephoneNumber"), None);
    assert_eq!(
        dn::attribute_type("1.2.3.4"),
        Some(const_oid::ObjectIdentifier::new_unwrap("1.2.3.4"))
    );
}

#[test]
fn a_type_without_a_name_prints_as_its_oid_and_der_as_x509_cert_does() {
    let name = Name::from_str("CN=a,1.2.3.4=x,C=#13025553").unwrap();
    assert_eq!(dn::to_string(&name), name.to_string());
    assert!(dn::to_string(&name).contains("1.2.3.4=#0c0178"));
    // A type x509-cert names from const-oid's whole database but this module does not (not
    // found in certificate subjects) is shown the same way: the text differs, the DER does not.
    let phone = Name::from_str("telephoneNumber=1").unwrap();
    assert_eq!(dn::to_string(&phone), "2.5.4.20=#0c0131");
    assert_eq!(der(&dn::parse("2.5.4.20=#0c0131").unwrap()), der(&phone));
}

#[test]
fn what_x509_cert_refuses_or_cuts_short_and_what_this_accepts_besides() {
    // Spaces around a type, as people write them after a comma.
    assert_eq!(
        der(&dn::parse("CN=a, O=b ,  C = US").unwrap()),
        der(&Name::from_str("CN=a,O=b ,C= US").unwrap())
    );
    // A value ending in a lone or half escape: x509-cert drops it, this refuses it.
    for s in ["CN=a\\", "CN=a\\4"] {
        assert!(Name::from_str(s).is_ok(), "{s}");
        let why = dn::parse(s).unwrap_err();
        assert!(why.contains("escapes neither"), "{s}: {why}");
    }
    for (s, why) in [
        ("", "it is empty"),
        ("CN=a,,O=b", "an empty part"),
        ("release signer", "'release signer' has no '='"),
        ("CN=a,FOO=b", "'FOO' is not an attribute type"),
        ("CN=#zz", "not hex-encoded DER"),
        ("CN=a+CN=a", "names one attribute twice"),
        ("CN=a\\q", "escapes neither"),
    ] {
        let got = dn::parse(s).unwrap_err();
        assert!(got.contains(why), "{s:?}: {got}");
    }
    let err = dn::parse_subject("CN=a,FOO=b").unwrap_err();
    assert!(err
        .message
        .contains("'CN=a,FOO=b' is not a distinguished name"));
    assert!(err
        .message
        .contains("CN=release signer,O=Example,ST=Washington,C=US"));
}

/// A type as a user may write it: any of the known names in any case, or a dotted OID.
fn attribute_type() -> impl Strategy<Value = String> {
    let names: Vec<String> = TYPES
        .iter()
        .flat_map(|(oid, names)| names.iter().map(|n| n.to_string()).chain([oid.to_string()]))
        .collect();
    (proptest::sample::select(names), any::<bool>()).prop_map(|(n, upper)| {
        if upper {
            n.to_ascii_uppercase()
        } else {
            n
        }
    })
}

/// A value: plain characters, specials raw and escaped, hex escapes (of ASCII and of UTF-8),
/// unknown escapes, or `#` and hex (DER or not).
fn value() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[a-zA-Z0-9 é=#;<>\"-]",
        Just("\\,".to_owned()),
        Just("\\+".to_owned()),
        Just("\\\\".to_owned()),
        Just("\\=".to_owned()),
        Just("\\#".to_owned()),
        Just("\\ ".to_owned()),
        Just("\\\"".to_owned()),
        Just("\\4f".to_owned()),
        Just("\\C3\\A9".to_owned()),
        Just("\\q".to_owned()),
        Just("\\4g".to_owned()),
        // Control characters, which print as hex escapes.
        Just("\\01".to_owned()),
        Just("\\1F".to_owned()),
        Just("\\7f".to_owned()),
    ];
    prop_oneof![
        4 => proptest::collection::vec(token, 0..6).prop_map(|t| t.concat()),
        1 => Just("#0c0161".to_owned()),
        1 => Just("#13025553".to_owned()),
        // TeletexString and IA5String values, which print as text.
        1 => Just("#14026162".to_owned()),
        1 => Just("#16026162".to_owned()),
        1 => Just("#130255".to_owned()),
        1 => Just("#zz".to_owned()),
        1 => Just("#c0161".to_owned()),
    ]
}

/// A subject: one to four RDNs of one or two attributes.
fn subject() -> impl Strategy<Value = String> {
    let atv = (attribute_type(), value()).prop_map(|(t, v)| format!("{t}={v}"));
    let rdn = proptest::collection::vec(atv, 1..3).prop_map(|a| a.join("+"));
    proptest::collection::vec(rdn, 1..5).prop_map(|r| r.join(","))
}

/// Whether a value of `s` ends in a lone or half escape (which x509-cert cuts off).
fn ends_in_a_dangling_escape(s: &str) -> bool {
    s.split([',', '+']).any(|part| {
        let trailing = part.bytes().rev().take_while(|&b| b == b'\\').count();
        let bytes = part.as_bytes();
        trailing % 2 == 1
            || (bytes.len() >= 2
                && bytes[bytes.len() - 2] == b'\\'
                && bytes[bytes.len() - 1].is_ascii_hexdigit()
                && !(bytes.len() >= 3 && bytes[bytes.len() - 3] == b'\\'))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_same_text_gives_the_same_name_as_x509_cert(s in subject()) {
        let theirs = Name::from_str(&s);
        let ours = dn::parse(&s);
        match (theirs, ours) {
            (Ok(theirs), Ok(ours)) => prop_assert_eq!(der(&theirs), der(&ours), "{}", s),
            (Err(_), Err(_)) => {}
            (Ok(_), Err(why)) => prop_assert!(
                ends_in_a_dangling_escape(&s),
                "x509-cert parses {:?}, this refuses it: {}", s, why
            ),
            (Err(e), Ok(_)) => prop_assert!(false, "x509-cert refuses {:?} ({}), this parses it", s, e),
        }
    }

    #[test]
    fn the_same_name_prints_as_x509_cert_prints_it(s in subject()) {
        if let Ok(name) = Name::from_str(&s) {
            let text = dn::to_string(&name);
            prop_assert_eq!(&text, &name.to_string(), "{}", s);
            // And the text reads back as the name it shows. String types may differ (a DC
            // written as UTF8String reads back as IA5String, in x509-cert too), which can reorder
            // the values of a multi-valued RDN (a SET, sorted by encoding): single-valued only.
            // Two values of one type that differ only in their string type (L=#14...+L=#16...)
            // print alike, and that text names one attribute twice.
            let single_valued = name.0.iter().all(|rdn| rdn.0.len() == 1);
            match dn::parse(&text) {
                Ok(again) if single_valued => prop_assert_eq!(dn::to_string(&again), text, "{}", s),
                Ok(_) => {}
                Err(e) => prop_assert!(
                    !single_valued && e.contains("names one attribute twice"),
                    "{}: {}", text, e
                ),
            }
        }
    }
}
