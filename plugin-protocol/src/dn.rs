//! Distinguished names as text (RFC 4514): the `--subject` a user writes, and the subject or
//! issuer a message shows.
//!
//! x509-cert's own string forms (`Name::from_str`, `Display`) give the same results, but they
//! name attribute types through const-oid's database of some 1,100 OIDs: a table of pointers
//! that every plugin would relocate at each of its three starts per signature (2,156 of
//! notation-pkcs11's 3,804 start-up relocations, 7 pages written, 0.02 ms of every launch;
//! `scripts/bench.sh`). This module knows the attribute types that appear in certificate
//! subjects, and is held to x509-cert's parser and printer by `tests/dn.rs`: the same text gives
//! the same DER, and the same DER the same text. A type it does not name (x509-cert names 1,100)
//! is shown as its OID and DER in hex, as x509-cert shows a type it does not know either.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, SetOfVec, TeletexStringRef, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{PluginError, Result};

/// The attribute types known by name: the OID, the name a message shows (the shortest of
/// const-oid's names, upper-cased, as x509-cert prints it), and the names accepted when parsing
/// (ASCII case ignored, as const-oid compares them).
const ATTRIBUTES: &[(ObjectIdentifier, &str, &[&str])] = &[
    (oid("2.5.4.3"), "CN", &["cn", "commonName"]),
    (oid("2.5.4.4"), "SN", &["sn", "surname"]),
    (SERIAL_NUMBER, "SERIALNUMBER", &["serialNumber"]),
    (COUNTRY_NAME, "C", &["c", "countryName"]),
    (oid("2.5.4.7"), "L", &["l", "localityName"]),
    (oid("2.5.4.8"), "ST", &["st", "stateOrProvinceName"]),
    (oid("2.5.4.9"), "STREET", &["street", "streetAddress"]),
    (oid("2.5.4.10"), "O", &["o", "organizationName"]),
    (oid("2.5.4.11"), "OU", &["ou", "organizationalUnitName"]),
    (oid("2.5.4.12"), "TITLE", &["title"]),
    (oid("2.5.4.17"), "POSTALCODE", &["postalCode"]),
    (oid("2.5.4.41"), "NAME", &["name"]),
    (oid("2.5.4.42"), "GIVENNAME", &["givenName"]),
    (oid("2.5.4.43"), "INITIALS", &["initials"]),
    (
        oid("2.5.4.44"),
        "GENERATIONQUALIFIER",
        &["generationQualifier"],
    ),
    (oid("2.5.4.46"), "DNQUALIFIER", &["dnQualifier"]),
    (oid("2.5.4.65"), "PSEUDONYM", &["pseudonym"]),
    (oid("0.9.2342.19200300.100.1.1"), "UID", &["uid", "userId"]),
    (DOMAIN_COMPONENT, "DC", &["dc", "domainComponent"]),
    (
        oid("1.2.840.113549.1.9.1"),
        "EMAIL",
        &["email", "emailAddress"],
    ),
];

const COUNTRY_NAME: ObjectIdentifier = oid("2.5.4.6");
const SERIAL_NUMBER: ObjectIdentifier = oid("2.5.4.5");
const DOMAIN_COMPONENT: ObjectIdentifier = oid("0.9.2342.19200300.100.1.25");

const fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(dotted)
}

/// The OID of an attribute type written as a known name or as a dotted OID.
pub fn attribute_type(name: &str) -> Option<ObjectIdentifier> {
    ATTRIBUTES
        .iter()
        .find(|(_, _, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(oid, _, _)| *oid)
        .or_else(|| ObjectIdentifier::new(name).ok())
}

fn display_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|(o, _, _)| o == oid)
        .map(|(_, shown, _)| *shown)
}

/// The attribute types a message suggests.
const SUGGESTED: &str = "CN, O, OU, L, ST, C, STREET, DC, UID, serialNumber or a dotted OID";

/// A subject or issuer a user wrote (`--subject`), or a validation error that says what is wrong
/// with it and shows the form.
pub fn parse_subject(s: &str) -> Result<Name> {
    parse(s).map_err(|why| {
        PluginError::validation(format!(
            "'{s}' is not a distinguished name: {why}; write it as TYPE=VALUE pairs separated by \
             commas, e.g. \"CN=release signer,O=Example,ST=Washington,C=US\" (escape a comma \
             inside a value as \\,)"
        ))
    })
}

/// Parses `CN=signer,O=Example,ST=WA,C=US` into a [`Name`], as x509-cert's `Name::from_str`
/// does: the last RDN written first in the DER, `+` joining the values of one RDN, `\` escaping
/// a special character or two hex digits, `#` a DER-encoded value; C and serialNumber as
/// PrintableString, DC as IA5String, the others as UTF8String. Unlike it, spaces around a type
/// are allowed (`CN=a, O=b`), and a value ending in a lone or half escape is refused rather than
/// cut. `Err` says why, in a few words.
pub fn parse(s: &str) -> std::result::Result<Name, String> {
    if s.trim().is_empty() {
        return Err("it is empty".into());
    }
    let mut rdns = Vec::new();
    for rdn in split(s, b',') {
        if rdn.trim().is_empty() {
            return Err("it has an empty part (two commas in a row, or one at an end)".into());
        }
        let atvs = split(rdn, b'+')
            .map(parse_attribute)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let set = SetOfVec::try_from(atvs)
            .map_err(|_| format!("'{}' names one attribute twice", rdn.trim()))?;
        rdns.push(RelativeDistinguishedName(set));
    }
    rdns.reverse();
    Ok(RdnSequence(rdns))
}

fn parse_attribute(s: &str) -> std::result::Result<AttributeTypeAndValue, String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("'{}' has no '='", s.trim()));
    };
    let key = key.trim();
    let oid = attribute_type(key)
        .ok_or_else(|| format!("'{key}' is not an attribute type (use {SUGGESTED})"))?;
    let value = match value.strip_prefix('#') {
        Some(hex) => hex::decode(hex)
            .ok()
            .and_then(|der| Any::from_der(&der).ok())
            .ok_or_else(|| format!("the value of {key} is not hex-encoded DER after '#'"))?,
        None => {
            let tag = match oid {
                COUNTRY_NAME | SERIAL_NUMBER => Tag::PrintableString,
                DOMAIN_COMPONENT => Tag::Ia5String,
                _ => Tag::Utf8String,
            };
            unescape(value)
                .and_then(|bytes| Any::new(tag, bytes).ok())
                .ok_or_else(|| {
                    format!(
                        "the value of {key} has a '\\' that escapes neither a special character \
                         nor two hex digits"
                    )
                })?
        }
    };
    Ok(AttributeTypeAndValue { oid, value })
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A value's bytes with RFC 4514's escapes undone: `\` before a special character or two hex
/// digits; `None` for a lone or unknown escape.
fn unescape(value: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            c @ (b' ' | b'"' | b'#' | b'=' | b'\\' | b'+' | b',' | b';' | b'<' | b'>') => {
                out.push(c)
            }
            c => {
                let high = hex_digit(c)?;
                let low = bytes.next().and_then(hex_digit)?;
                out.push(16 * high + low);
            }
        }
    }
    Some(out)
}

/// The parts of `s` between separators `sep` that no backslash escapes (a separator after an
/// escaped backslash separates), as x509-cert splits them.
fn split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let cuts = (0..bytes.len()).filter(move |&i| {
        bytes[i] == sep && (i == 0 || bytes[i - 1] != b'\\' || (i >= 2 && bytes[i - 2] == b'\\'))
    });
    let mut start = 0;
    cuts.chain([s.len()]).map(move |end| {
        let part = &s[start..end];
        start = end + 1;
        part
    })
}

/// `name` as text, as x509-cert's `Display` writes it: the RDNs last first, known types by name
/// with their string values escaped, any other attribute as `OID=#` and its DER in hex.
pub fn to_string(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_attribute(&mut out, atv);
        }
    }
    out
}

fn write_attribute(out: &mut String, atv: &AttributeTypeAndValue) {
    let value = match atv.value.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(&atv.value)
            .ok()
            .map(|s| s.as_str()),
        Tag::Utf8String => Utf8StringRef::try_from(&atv.value).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(&atv.value).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(&atv.value)
            .ok()
            .map(|s| s.as_str()),
        _ => None,
    };
    match (display_name(&atv.oid), value) {
        (Some(name), Some(value)) => {
            out.push_str(name);
            out.push('=');
            let mut chars = value.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                match c {
                    '#' if i == 0 => out.push_str("\\#"),
                    ' ' if i == 0 || chars.peek().is_none() => out.push_str("\\ "),
                    '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\x00'..='\x1f' | '\x7f' => out.push_str(&format!("\\{:02x}", c as u8)),
                    _ => out.push(c),
                }
            }
        }
        _ => {
            out.push_str(&atv.oid.to_string());
            out.push_str("=#");
            out.push_str(&hex::encode(atv.value.to_der().unwrap_or_default()));
        }
    }
}
