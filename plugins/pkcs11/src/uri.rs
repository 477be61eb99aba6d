//! RFC 7512 PKCS#11 URIs: `pkcs11:<path attributes>[?<query attributes>]`, parsed completely
//! (percent-encoding, `;`-separated path and `&`-separated query attributes), and written back
//! in the same form so that every URI this plugin prints can be pasted into `notation key add`.

use std::fmt::{self, Write as _};

/// The `type` attribute: which kind of object the URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Private,
    Public,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "private" => Self::Private,
            "public" => Self::Public,
            "cert" => Self::Cert,
            "secret-key" => Self::SecretKey,
            "data" => Self::Data,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// A parsed PKCS#11 URI. `None` means the attribute is absent (matches anything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    // Token selectors.
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    // Library selectors.
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    pub library_version: Option<String>,
    // Object selectors.
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub object_type: Option<ObjectType>,
    // Query attributes.
    pub module_path: Option<String>,
    pub module_name: Option<String>,
    pub pin_source: Option<String>,
    /// Never printed: [`fmt::Display`] leaves it out and `Debug` redacts it.
    pub pin_value: Option<PinValue>,
}

/// A `pin-value`: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PinValue(pub zeroize::Zeroizing<String>);

impl fmt::Debug for PinValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

const SCHEME: &str = "pkcs11:";

impl Pkcs11Uri {
    fn parse_uri(uri: &str) -> Parsed<Self> {
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or("it does not start with 'pkcs11:'")?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Self::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = split_attr(attr)?;
            refuse_hidden_pin(name, value)?;
            out.set_path(name, value)?;
        }
        for attr in query.into_iter().flat_map(|q| q.split('&')) {
            if attr.is_empty() {
                continue;
            }
            let (name, value) = split_attr(attr)?;
            refuse_hidden_pin(name, value)?;
            out.set_query(name, value)?;
        }
        if out.pin_source.is_some() && out.pin_value.is_some() {
            return Err(
                "it has both pin-source and pin-value; keep one (pin-source is preferred)".into(),
            );
        }
        Ok(out)
    }

    fn set_path(&mut self, name: &str, raw: &str) -> Parsed<()> {
        let text = || decode_text(raw, name);
        let slot = match name {
            "token" => &mut self.token,
            "manufacturer" => &mut self.manufacturer,
            "serial" => &mut self.serial,
            "model" => &mut self.model,
            "slot-description" => &mut self.slot_description,
            "slot-manufacturer" => &mut self.slot_manufacturer,
            "library-manufacturer" => &mut self.library_manufacturer,
            "library-description" => &mut self.library_description,
            "library-version" => &mut self.library_version,
            "object" => &mut self.object,
            "slot-id" => {
                let value = text()?;
                let id = value
                    .parse::<u64>()
                    .map_err(|_| format!("slot-id '{value}' is not a decimal number"))?;
                return set_once(&mut self.slot_id, id, name);
            }
            "id" => return set_once(&mut self.id, percent_decode(raw, name)?, name),
            "type" => {
                let value = text()?;
                let t = ObjectType::parse(&value).ok_or_else(|| {
                    format!("type '{value}' is not one of private, public, cert, secret-key, data")
                })?;
                return set_once(&mut self.object_type, t, name);
            }
            other if other.starts_with("x-") => return Ok(()),
            other => {
                return Err(format!(
                    "unknown attribute '{other}'; path attributes are token, manufacturer, \
                     serial, model, slot-id, slot-description, slot-manufacturer, \
                     library-manufacturer, library-description, library-version, object, id, type"
                ))
            }
        };
        set_once(slot, text()?, name)
    }

    fn set_query(&mut self, name: &str, raw: &str) -> Parsed<()> {
        let slot = match name {
            "module-path" => &mut self.module_path,
            "module-name" => &mut self.module_name,
            "pin-source" => &mut self.pin_source,
            "pin-value" => {
                let value = PinValue(zeroize::Zeroizing::new(decode_text(raw, name)?));
                return set_once(&mut self.pin_value, value, name);
            }
            other if other.starts_with("x-") => return Ok(()),
            other => {
                return Err(format!(
                    "unknown query attribute '{other}'; query attributes are module-path, \
                     module-name, pin-source, pin-value"
                ))
            }
        };
        set_once(slot, decode_text(raw, name)?, name)
    }

    /// Whether any attribute selects a token.
    pub fn selects_token(&self) -> bool {
        self.token.is_some()
            || self.manufacturer.is_some()
            || self.serial.is_some()
            || self.model.is_some()
            || self.slot_id.is_some()
            || self.slot_description.is_some()
    }

    /// Whether any attribute selects an object.
    pub fn selects_object(&self) -> bool {
        self.object.is_some() || self.id.is_some()
    }

    /// The query part to carry over into URIs this plugin prints (module and PIN source, never
    /// a PIN value).
    pub fn carry_query(&self) -> Self {
        Self {
            module_path: self.module_path.clone(),
            module_name: self.module_name.clone(),
            pin_source: self.pin_source.clone(),
            ..Self::default()
        }
    }
}

/// A parse step: `Err` says what is wrong, in a few words ([`plugin_protocol::parse_key_id`]
/// makes the message).
type Parsed<T> = std::result::Result<T, String>;

fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Parsed<()> {
    if slot.is_some() {
        return Err(format!("attribute '{name}' appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn split_attr(attr: &str) -> Parsed<(&str, &str)> {
    attr.split_once('=')
        .ok_or_else(|| format!("'{}' is not an attribute=value pair", redact(attr)))
}

/// A PIN attribute inside another attribute's value: after a separator of the other part
/// (`object=k&pin-value=...`: `&` does not end a path attribute; `module-path=/m.so;pin-value=...`)
/// or glued on where a separator is missing (`module-path=/m.sopin-value=...`). RFC 7512 reads it
/// as part of that value, which messages name ("no private key with object=..."), so it is
/// refused, by the rules that redact PINs ([`redact`]), without repeating any of it.
fn refuse_hidden_pin(name: &str, value: &str) -> Parsed<()> {
    let attribute = format!("{name}={value}");
    if is_pin_attribute(&name.to_ascii_lowercase())
        || plugin_protocol::secret::redact_attributes(&attribute, is_pin_attribute) == attribute
    {
        return Ok(());
    }
    Err(format!(
        "attribute '{name}' has a PIN attribute in its value, where RFC 7512 reads it as part of \
         the {name}: end path attributes with ';', put query attributes after '?' and separate \
         them with '&' (pkcs11:token=...;object=...?module-path=...&pin-source=file:...), and \
         percent-encode a character that belongs to the {name}"
    ))
}

fn decode_text(raw: &str, name: &str) -> Parsed<String> {
    String::from_utf8(percent_decode(raw, name)?).map_err(|e| {
        // A pin-value is decoded here too: what was not text is wiped all the same.
        zeroize::Zeroize::zeroize(&mut e.into_bytes());
        format!("attribute '{name}' is not UTF-8 after percent-decoding")
    })
}

/// RFC 7512's percent-decoding, strict: a `%` must start an escape of two hex digits (the
/// decoder alone would keep such a `%` as it is, and a mistyped escape would select another
/// token or object than the one meant).
fn percent_decode(raw: &str, name: &str) -> Parsed<Vec<u8>> {
    let bytes = raw.as_bytes();
    let is_escape = |i: usize| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    };
    if (0..bytes.len()).any(|i| bytes[i] == b'%' && !is_escape(i)) {
        return Err(format!(
            "attribute '{name}' has a '%' not followed by two hex digits"
        ));
    }
    Ok(percent_encoding::percent_decode(bytes).collect())
}

/// The URI with any PIN replaced, for messages: `pin-value` in the path or the query, in any
/// case or percent-encoding, mistyped PIN attributes (`pin=`, `pinvalue=`, `pin-value` with no
/// `=`) and one glued onto the value before it (`module-path=/m.sopin-value=`) alike.
pub fn redact(uri: &str) -> String {
    // Shortened too: a huge key id is named by its start, not repeated whole.
    plugin_protocol::bounded::shorten(
        &plugin_protocol::secret::redact_attributes(uri, is_pin_attribute),
        300,
    )
}

/// `pin-value` and its misspellings (`pin`, `pinvalue`, `pin-valeu`), and a `pin-value` glued onto
/// the value before it (`/m.sopin-value`); not `pin-source`, which names where the PIN is.
fn is_pin_attribute(name: &str) -> bool {
    (name.starts_with("pin") && !name.starts_with("pin-source")) || name.ends_with("pin-value")
}

/// Characters RFC 7512 allows unencoded in a path value (unreserved plus pk11-res-avail
/// minus the separators).
fn path_char_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&c)
}

fn query_char_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=/?|".contains(&c)
}

fn encode(out: &mut String, bytes: &[u8], ok: fn(u8) -> bool) {
    for &b in bytes {
        if ok(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The key id of the protocol and the commands: parsed once, named by [`redact`].
impl plugin_protocol::KeyReference for Pkcs11Uri {
    const KIND: &'static str = "a PKCS#11 URI (RFC 7512)";
    const HELP: &'static str = "an RFC 7512 PKCS#11 URI naming a token and a private key, e.g. \
        pkcs11:token=signing;object=release-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin";
    /// Long enough for any module path and attribute set.
    const MAX_LEN: usize = 8192;

    fn parse(key_id: &str) -> Parsed<Self> {
        Pkcs11Uri::parse_uri(key_id)
    }

    fn redacted(key_id: &str) -> String {
        redact(key_id)
    }
}

impl fmt::Display for Pkcs11Uri {
    /// The canonical form: path attributes in a fixed order, `id` fully percent-encoded, and
    /// the query without pin-value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<String> = Vec::new();
        let mut text = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                let mut s = format!("{name}=");
                encode(&mut s, v.as_bytes(), path_char_ok);
                path.push(s);
            }
        };
        text("library-manufacturer", &self.library_manufacturer);
        text("library-description", &self.library_description);
        text("library-version", &self.library_version);
        text("slot-manufacturer", &self.slot_manufacturer);
        text("slot-description", &self.slot_description);
        text("model", &self.model);
        text("manufacturer", &self.manufacturer);
        text("serial", &self.serial);
        text("token", &self.token);
        text("object", &self.object);
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        if let Some(t) = self.object_type {
            path.push(format!("type={}", t.as_str()));
        }
        if let Some(id) = &self.id {
            let mut s = "id=".to_owned();
            for b in id {
                let _ = write!(s, "%{b:02X}");
            }
            path.push(s);
        }
        let mut query: Vec<String> = Vec::new();
        for (name, value) in [
            ("module-name", &self.module_name),
            ("module-path", &self.module_path),
            ("pin-source", &self.pin_source),
        ] {
            if let Some(v) = value {
                let mut s = format!("{name}=");
                encode(&mut s, v.as_bytes(), query_char_ok);
                query.push(s);
            }
        }
        write!(f, "{SCHEME}{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::slips::Example;

    #[test]
    fn uris_a_slip_away_are_refused_or_parsed_and_never_show_their_pin() {
        let with_pin = [
            "pkcs11:token=t;object=k;pin-value=S3cretPin?module-path=/m.so",
            "pkcs11:token=t;object=k?module-path=/m.so&pin-value=S3cretPin",
            "pkcs11:token=t;PIN-VALUE=S3cretPin;object=k",
            "pkcs11:token=t;object=k?Pin-Value=S3cretPin&module-path=/m.so",
            "pkcs11:token=t;object=k?pin%2Dvalue=S3cretPin",
            "PKCS11:Pin-Value=S3cretPin",
            "pkcs11:token=t;pin=S3cretPin",
            "pkcs11:token=t?pinvalue=S3cretPin",
            "pkcs11:token=t;object=k?pin-value=S3cretPin&pin-value=S3cretPin",
            "pkcs11:token=t;object=%ZZ?pin-value=S3cretPin",
            "pkcs11:serial=5a3f;slot-id=7;object=k?pin-value=S3cretPin&module-name=softhsm2",
        ]
        .map(|key_id| Example::holding(key_id, "S3cretPin"));
        let others = [
            Example::holding(
                "pkcs11:token=signing;object=release;id=%01%ff;type=private\
                 ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=7319",
                "7319",
            ),
            Example::plain("pkcs11:token=t;object=k?pin-source=file:/run/secrets/pin"),
        ];
        let checked = plugin_protocol::slips::check::<Pkcs11Uri>(
            &crate::plugin::INFO,
            &[&with_pin[..], &others].concat(),
        );
        assert!(checked > 20_000, "{checked}");
        assert_eq!(
            redact("pkcs11:object=k?module-path=/m.soPIN-VALUE=7319&pin-value=S3cret;x=1?y=2"),
            "pkcs11:object=k?module-path=/m.soPIN-VALUE=[redacted]&pin-value=[redacted];x=1?y=2"
        );
    }

    #[test]
    fn parses_the_issue_example() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:token=signing;object=release-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("signing"));
        assert_eq!(u.object.as_deref(), Some("release-key"));
        assert_eq!(
            u.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin_source.as_deref(), Some("file:/run/secrets/pin"));
        assert!(u.selects_token() && u.selects_object());
    }

    #[test]
    fn percent_decodes_every_attribute() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=5a3f;model=SoftHSM%20v2;\
             slot-id=17;object=key%3Bone;id=%01%02%FF;type=private\
             ?module-name=softhsm2&pin-value=12%2634",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(u.serial.as_deref(), Some("5a3f"));
        assert_eq!(u.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(u.slot_id, Some(17));
        assert_eq!(u.object.as_deref(), Some("key;one"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2, 0xff][..]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(u.module_name.as_deref(), Some("softhsm2"));
        assert_eq!(u.pin_value.as_ref().map(|p| p.0.as_str()), Some("12&34"));
        assert!(!format!("{u:?}").contains("12&34"));
    }

    #[test]
    fn every_object_type_round_trips() {
        for t in ["private", "public", "cert", "secret-key", "data"] {
            let uri = format!("pkcs11:object=k;type={t}");
            let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(&uri)
                .unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(u.object_type.map(ObjectType::as_str), Some(t));
            assert_eq!(u.to_string(), uri);
        }
    }

    #[test]
    fn each_selector_alone_selects() {
        for attr in [
            "token=t",
            "manufacturer=m",
            "serial=s",
            "model=m",
            "slot-id=1",
            "slot-description=d",
        ] {
            let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(&format!("pkcs11:{attr}")).unwrap();
            assert!(u.selects_token() && !u.selects_object(), "{attr}");
        }
        for attr in ["object=o", "id=%01"] {
            let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(&format!("pkcs11:{attr}")).unwrap();
            assert!(u.selects_object() && !u.selects_token(), "{attr}");
        }
        // Library attributes and the query select neither.
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:library-manufacturer=x;type=private?module-name=m",
        )
        .unwrap();
        assert!(!u.selects_token() && !u.selects_object());
    }

    #[test]
    fn carried_query_keeps_module_and_pin_source_only() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:token=t;object=o?module-path=/m.so&module-name=softhsm2&pin-source=file:/p",
        )
        .unwrap();
        assert_eq!(
            u.carry_query().to_string(),
            "pkcs11:?module-name=softhsm2&module-path=/m.so&pin-source=file:/p"
        );
        let u =
            plugin_protocol::parse_key_id::<Pkcs11Uri>("pkcs11:token=t?pin-value=1234").unwrap();
        assert_eq!(u.carry_query(), Pkcs11Uri::default());
    }

    #[test]
    fn messages_keep_the_pin_source_and_drop_every_pin() {
        let shown = redact("pkcs11:object=k;PIN=1111?pin-source=file:/run/pin&Pin-Value=2222");
        assert!(shown.contains("pin-source=file:/run/pin"), "{shown}");
        assert!(
            !shown.contains("1111") && !shown.contains("2222"),
            "{shown}"
        );
    }

    #[test]
    fn debug_redacts_the_pin_value() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>("pkcs11:object=k?pin-value=hunter2")
            .unwrap();
        let debug = format!("{u:?}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn display_round_trips_and_never_prints_the_pin() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:token=a%20b;object=k;id=%0A%0B?module-path=/opt/x%20y.so&pin-value=secret",
        )
        .unwrap();
        let s = u.to_string();
        assert!(!s.contains("secret"), "{s}");
        assert_eq!(
            s,
            "pkcs11:token=a%20b;object=k;id=%0A%0B?module-path=/opt/x%20y.so"
        );
        let mut back = plugin_protocol::parse_key_id::<Pkcs11Uri>(&s).unwrap();
        back.pin_value = Some(PinValue(zeroize::Zeroizing::new("secret".into())));
        assert_eq!(back, u);
    }

    #[test]
    fn rejects_malformed_uris_with_a_reason() {
        let cases = [
            (
                "token=x;object=y",
                "is not a PKCS#11 URI (RFC 7512) (it does not start with 'pkcs11:')",
            ),
            ("pkcs11:token=x;token=y", "appears twice"),
            ("pkcs11:token=x;colour=red", "unknown attribute 'colour'"),
            (
                "pkcs11:token=x?color=red",
                "unknown query attribute 'color'",
            ),
            ("pkcs11:token=%zz", "two hex digits"),
            (
                "pkcs11:token=ab%4",
                "attribute 'token' has a '%' not followed by two hex digits",
            ),
            ("pkcs11:object=k%", "attribute 'object' has a '%' not"),
            ("pkcs11:id=%4g", "attribute 'id' has a '%' not"),
            // from_str_radix would take "+1" for a number.
            ("pkcs11:id=%+1", "attribute 'id' has a '%' not"),
            ("pkcs11:token=a%%41", "attribute 'token' has a '%' not"),
            (
                "pkcs11:token=t?pin-value=%ff%fe",
                "attribute 'pin-value' is not UTF-8 after percent-decoding",
            ),
            (
                "pkcs11:token=t;object=k&pin-value=S3cretPin",
                "attribute 'object' has a PIN attribute in its value, where RFC 7512 reads it as \
                 part of the object: end path attributes with ';', put query attributes after '?' \
                 and separate them with '&' \
                 (pkcs11:token=...;object=...?module-path=...&pin-source=file:...), and \
                 percent-encode a character that belongs to the object",
            ),
            (
                "pkcs11:token=t&PIN%2DValue=S3cretPin;object=k",
                "'token' has a PIN attribute",
            ),
            (
                "pkcs11:object=k?module-path=/m.so;pin-value=S3cretPin",
                "'module-path' has a PIN attribute",
            ),
            (
                "pkcs11:object=k?x-vendor=a?pin=S3cretPin",
                "'x-vendor' has a PIN attribute",
            ),
            (
                "pkcs11:object=k?module-path=/m.soPin-Value=S3cretPin",
                "'module-path' has a PIN attribute",
            ),
            ("pkcs11:slot-id=abc", "not a decimal number"),
            ("pkcs11:type=key", "not one of private"),
            ("pkcs11:token", "not an attribute=value pair"),
            (
                "pkcs11:token=x?pin-value=1&pin-source=file:/p",
                "both pin-source and pin-value",
            ),
        ];
        for (uri, want) in cases {
            let e = plugin_protocol::parse_key_id::<Pkcs11Uri>(uri).unwrap_err();
            assert!(e.message.contains(want), "{uri}: {}", e.message);
            assert!(!e.message.contains("S3cret"), "{uri}: {}", e.message);
        }
        // The same characters are a label's own when no PIN attribute follows them, or when
        // they are percent-encoded.
        for (uri, object) in [
            ("pkcs11:object=a&b", "a&b"),
            ("pkcs11:object=R&D=1", "R&D=1"),
            ("pkcs11:object=k%26pin-value%3D1", "k&pin-value=1"),
        ] {
            let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(uri).unwrap();
            assert_eq!(u.object.as_deref(), Some(object), "{uri}");
        }
    }

    #[test]
    fn vendor_attributes_are_ignored_and_pins_redacted_in_errors() {
        let u = plugin_protocol::parse_key_id::<Pkcs11Uri>(
            "pkcs11:token=t;x-vendor=1;object=o?x-foo=bar",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("t"));
        let e =
            plugin_protocol::parse_key_id::<Pkcs11Uri>("pkcs11:token=t;bogus=1?pin-value=hunter2")
                .unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(e.message.contains("pin-value=[redacted]"), "{}", e.message);
    }
}
