//! A certificate subject as notation sees it when a trust policy pins `x509.subject: ...`.
//!
//! Notation renders the signing certificate's subject with Go's `pkix.Name.String()` (RFC 2253
//! order, standard attributes regrouped by type), parses that text and the pinned value as
//! RFC 4514, and requires each to hold at least `C`, `ST` and `O`, in single-valued RDNs without
//! duplicates; the pin matches when every pinned attribute is in the subject. This module
//! reproduces that view from the DER name, so the plugins can warn before they write a subject
//! notation cannot pin, and write a pin in the exact form notation compares.

use std::fmt;

use der::{Tag, Tagged};
use x509_cert::name::Name;

/// The attributes Go names, in the order its `pkix.Name.String()` writes them (the reverse of
/// the order `ToRDNSequence` builds), with whether several values of one type are possible
/// (CN and SERIALNUMBER keep the last value only).
const NAMED: [(&str, &str, bool); 9] = [
    ("2.5.4.5", "SERIALNUMBER", false),
    ("2.5.4.3", "CN", false),
    ("2.5.4.11", "OU", true),
    ("2.5.4.10", "O", true),
    ("2.5.4.17", "POSTALCODE", true),
    ("2.5.4.9", "STREET", true),
    ("2.5.4.7", "L", true),
    ("2.5.4.8", "ST", true),
    ("2.5.4.6", "C", true),
];

/// The attributes notation requires in a pinned subject and in the certificate's.
pub(crate) const MANDATORY: [&str; 3] = ["C", "ST", "O"];

/// Why notation cannot pin a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdentityProblem {
    /// `C`, `ST` or `O` is absent or empty (listed in that order).
    Missing(Vec<&'static str>),
    /// Several values of one attribute type (`O=a` and `O=b`): notation's rendering puts them in
    /// one multi-valued RDN, which it refuses.
    MultiValued(String),
    /// An attribute type notation does not name appears twice.
    Duplicate(String),
    /// A value in a string type notation's certificate parser does not read.
    Unreadable(String),
}

impl fmt::Display for IdentityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(which) => {
                let list = match which.as_slice() {
                    [one] => (*one).to_owned(),
                    [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                    [] => String::new(),
                };
                write!(
                    f,
                    "it has no {list} attribute{}; notation requires C, ST and O in a pinned \
                     identity (\"has no mandatory RDN attribute\")",
                    if which.len() > 1 { "s" } else { "" }
                )
            }
            Self::MultiValued(t) => write!(
                f,
                "it has several {t} attributes, which notation reads as one multi-valued RDN and \
                 refuses"
            ),
            Self::Duplicate(t) => write!(
                f,
                "attribute {t} appears twice, and notation refuses duplicate RDN attributes"
            ),
            Self::Unreadable(t) => {
                write!(f, "attribute {t} is not in a string type notation can read")
            }
        }
    }
}

/// A subject notation can pin: its attributes as notation renders them, in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PinnableSubject {
    /// (type, value) of each attribute notation names, in Go's order, values unescaped.
    pub(crate) attributes: Vec<(&'static str, String)>,
    /// Dotted OIDs of attributes Go does not name (left out of the pin: a pin may be a subset).
    pub(crate) unnamed: Vec<String>,
}

impl PinnableSubject {
    /// The RFC 4514 text notation compares (`CN=release,O=Example,ST=WA,C=US`), escaped as Go
    /// escapes it.
    pub(crate) fn dn(&self) -> String {
        self.attributes
            .iter()
            .map(|(t, v)| format!("{t}={}", escape(v)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `trustedIdentities` entry that pins this subject.
    pub(crate) fn trusted_identity(&self) -> String {
        format!("x509.subject: {}", self.dn())
    }
}

/// Reads `name` the way notation does and says whether a trust policy can pin it.
pub(crate) fn pinnable(name: &Name) -> Result<PinnableSubject, IdentityProblem> {
    let mut named: Vec<Vec<String>> = vec![Vec::new(); NAMED.len()];
    let mut unnamed: Vec<String> = Vec::new();
    for atv in name.0.iter().flat_map(|rdn| rdn.0.iter()) {
        let oid = atv.oid.to_string();
        match NAMED.iter().position(|(o, _, _)| *o == oid) {
            Some(i) => {
                let value = text(&atv.value)
                    .ok_or_else(|| IdentityProblem::Unreadable(NAMED[i].1.into()))?;
                named[i].push(value);
            }
            None => {
                if unnamed.contains(&oid) {
                    return Err(IdentityProblem::Duplicate(oid));
                }
                unnamed.push(oid);
            }
        }
    }
    let mut attributes = Vec::new();
    for ((_, short, several), values) in NAMED.iter().zip(named) {
        match values.len() {
            0 => {}
            1 => attributes.push((*short, values.into_iter().next().expect("one value"))),
            _ if *several => return Err(IdentityProblem::MultiValued((*short).into())),
            // Go keeps the last CN / SERIALNUMBER.
            _ => attributes.push((*short, values.into_iter().last().expect("values"))),
        }
    }
    // Go leaves out an empty CN or SERIALNUMBER; other empty values stay but count as absent.
    attributes.retain(|(t, v)| !(v.is_empty() && (*t == "CN" || *t == "SERIALNUMBER")));
    let missing: Vec<&'static str> = MANDATORY
        .into_iter()
        .filter(|m| !attributes.iter().any(|(t, v)| t == m && !v.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(IdentityProblem::Missing(missing));
    }
    Ok(PinnableSubject {
        attributes,
        unnamed,
    })
}

/// The warning the certificate commands print before they write a leaf whose subject notation
/// cannot pin, or `None` when it can.
pub fn leaf_subject_warning(name: &Name) -> Option<String> {
    let problem = pinnable(name).err()?;
    let name = crate::dn::to_string(name);
    Some(format!(
        "warning: the leaf subject '{name}' cannot be pinned by a notation trust policy: {problem}. \
         notation will verify its signatures only under trustedIdentities [\"*\"] (any identity \
         the trusted root certifies); a subject such as \"CN=release signer,O=Example,ST=Washington,C=US\" \
         can be pinned"
    ))
}

/// The string value of an attribute, for the types Go's certificate parser reads.
fn text(value: &der::Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::NumericString => std::str::from_utf8(bytes)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit() || b == b' '))
            .map(str::to_owned),
        Tag::BmpString => {
            let pairs = bytes.chunks_exact(2);
            if !pairs.remainder().is_empty() {
                return None;
            }
            let units: Vec<u16> = pairs.map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Escapes a value as Go's `RDNSequence.String()` does: `,+"\<>;` always, a space at the start
/// or the end, `#` at the start.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let escaped = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use const_oid::ObjectIdentifier;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn named_attributes_come_in_gos_order_whatever_the_certificate_order() {
        let s = pinnable(&name(
            "C=US,ST=Washington,L=Seattle,O=Example,OU=Release,CN=signer",
        ))
        .unwrap();
        assert_eq!(
            s.dn(),
            "CN=signer,OU=Release,O=Example,L=Seattle,ST=Washington,C=US"
        );
        let s = pinnable(&name("CN=signer,C=US,O=Example,ST=WA")).unwrap();
        assert_eq!(s.dn(), "CN=signer,O=Example,ST=WA,C=US");
        assert_eq!(
            s.trusted_identity(),
            "x509.subject: CN=signer,O=Example,ST=WA,C=US"
        );
    }

    #[test]
    fn values_are_escaped_as_go_escapes_them() {
        let s = pinnable(&name(
            r#"CN=a\,b\+c\"d\\e\<f\>g\;h=i,O=\#1 #2,ST=\ lead and trail\ ,C=US"#,
        ))
        .unwrap();
        assert_eq!(
            s.attributes[0],
            ("CN", r#"a,b+c"d\e<f>g;h=i"#.to_owned()),
            "values are held unescaped"
        );
        assert_eq!(
            s.dn(),
            r#"CN=a\,b\+c\"d\\e\<f\>g\;h=i,O=\#1 #2,ST=\ lead and trail\ ,C=US"#
        );
        let s = pinnable(&name("CN=Jürgen Müller,O=東京,ST=Île-de-France,C=FR")).unwrap();
        assert_eq!(s.dn(), "CN=Jürgen Müller,O=東京,ST=Île-de-France,C=FR");
    }

    #[test]
    fn subjects_notation_cannot_pin_are_named() {
        assert_eq!(
            pinnable(&name("CN=release pipeline,O=Example")),
            Err(IdentityProblem::Missing(vec!["C", "ST"]))
        );
        assert_eq!(
            pinnable(&name("CN=x,O=Example,ST=,C=US")),
            Err(IdentityProblem::Missing(vec!["ST"]))
        );
        assert_eq!(
            pinnable(&name("CN=x,O=A,O=B,ST=WA,C=US")),
            Err(IdentityProblem::MultiValued("O".into()))
        );
        assert_eq!(
            pinnable(&name("CN=x,O=A,ST=WA,C=US,DC=example,DC=com")),
            Err(IdentityProblem::Duplicate(
                "0.9.2342.19200300.100.1.25".into()
            ))
        );
        let none = pinnable(&name("CN=release pipeline")).unwrap_err();
        assert_eq!(none, IdentityProblem::Missing(vec!["C", "ST", "O"]));
        assert!(none
            .to_string()
            .starts_with("it has no C, ST and O attributes;"));
        let one = pinnable(&name("CN=x,O=Example,ST=WA")).unwrap_err();
        assert!(
            one.to_string().starts_with("it has no C attribute;"),
            "{one}"
        );
        let warning = leaf_subject_warning(&name("CN=release pipeline,O=Example")).unwrap();
        assert!(warning.contains("no C and ST attributes"), "{warning}");
        assert!(warning.contains("[\"*\"]"), "{warning}");
        assert_eq!(leaf_subject_warning(&name("CN=a,O=b,ST=c,C=US")), None);
    }

    #[test]
    fn an_empty_common_name_or_serial_number_is_left_out_and_other_empty_values_stay() {
        // Go's ToRDNSequence skips an empty CommonName and SerialNumber, and writes an empty
        // value of every other attribute it names.
        let s = pinnable(&name("SERIALNUMBER=,CN=,OU=,O=Example,ST=WA,C=US")).unwrap();
        assert_eq!(s.dn(), "OU=,O=Example,ST=WA,C=US");
    }

    #[test]
    fn go_keeps_the_last_common_name_and_splits_multi_valued_rdns() {
        // RFC 4514 text lists RDNs last first: "CN=first" is the certificate's last CN.
        let s = pinnable(&name("CN=first,CN=second,O=Example+ST=WA,C=US")).unwrap();
        assert_eq!(s.dn(), "CN=first,O=Example,ST=WA,C=US");
    }

    fn atv(oid: &str, tag: Tag, value: &[u8]) -> x509_cert::attr::AttributeTypeAndValue {
        x509_cert::attr::AttributeTypeAndValue {
            oid: ObjectIdentifier::new_unwrap(oid),
            value: der::Any::new(tag, value).unwrap(),
        }
    }

    fn name_of(atvs: Vec<x509_cert::attr::AttributeTypeAndValue>) -> Name {
        let rdns = atvs
            .into_iter()
            .map(|a| x509_cert::name::RelativeDistinguishedName::try_from(vec![a]).unwrap())
            .collect();
        x509_cert::name::RdnSequence(rdns)
    }

    #[test]
    fn every_string_type_go_reads_is_read_and_others_are_named() {
        let bmp: Vec<u8> = "Zoë".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let s = pinnable(&name_of(vec![
            atv("2.5.4.6", Tag::PrintableString, b"US"),
            atv("2.5.4.8", Tag::NumericString, b"12 3"),
            atv("2.5.4.10", Tag::TeletexString, b"Example"),
            atv("2.5.4.7", Tag::Ia5String, b"Seattle"),
            atv("2.5.4.3", Tag::BmpString, &bmp),
        ]))
        .unwrap();
        assert_eq!(s.dn(), "CN=Zoë,O=Example,L=Seattle,ST=12 3,C=US");
        let with = |cn: x509_cert::attr::AttributeTypeAndValue| {
            pinnable(&name_of(vec![
                atv("2.5.4.6", Tag::PrintableString, b"US"),
                atv("2.5.4.8", Tag::Utf8String, b"WA"),
                atv("2.5.4.10", Tag::Utf8String, b"Example"),
                cn,
            ]))
        };
        let unreadable = Err(IdentityProblem::Unreadable("CN".into()));
        assert_eq!(with(atv("2.5.4.3", Tag::BmpString, &bmp[1..])), unreadable);
        assert_eq!(with(atv("2.5.4.3", Tag::NumericString, b"12a")), unreadable);
        assert_eq!(
            with(atv("2.5.4.3", Tag::Utf8String, &[0xff, 0xfe])),
            unreadable
        );
        assert_eq!(with(atv("2.5.4.3", Tag::OctetString, b"x")), unreadable);
        assert!(with(atv("2.5.4.3", Tag::Utf8String, b"x")).is_ok());
    }

    #[test]
    fn unnamed_attributes_are_left_out_of_the_pin() {
        let s = pinnable(&name("CN=x,O=A,ST=WA,C=US,UID=builder")).unwrap();
        assert_eq!(s.dn(), "CN=x,O=A,ST=WA,C=US");
        assert_eq!(s.unnamed, vec!["0.9.2342.19200300.100.1.1".to_owned()]);
    }
}
