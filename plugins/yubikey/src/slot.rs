//! Key ids: a PIV slot by hex id or name, with the serial of the YubiKey that holds it when
//! several are attached (`9c`, `signature`, `yubikey:serial=12345678;slot=9c`). Parsed once,
//! before the card is touched.

use std::fmt;

use plugin_protocol::{PluginError, Result};
use yubikey::piv::SlotId;

/// How to write a key id, for help and messages.
pub const KEY_ID_HELP: &str = "a PIV slot by hex id or name (9a/authentication, \
    9c/signature, 9d/key-management, 9e/card-authentication, 82-95/retired1-retired20), \
    alone when one YubiKey is attached, or with the YubiKey's serial: \
    yubikey:serial=12345678;slot=9c (run notation-yubikey list for the key ids)";

/// The PIV key slots that can hold a signing key, with their names.
pub const SLOTS: [(u8, &str); 24] = [
    (0x9a, "authentication"),
    (0x9c, "signature"),
    (0x9d, "key-management"),
    (0x9e, "card-authentication"),
    (0x82, "retired1"),
    (0x83, "retired2"),
    (0x84, "retired3"),
    (0x85, "retired4"),
    (0x86, "retired5"),
    (0x87, "retired6"),
    (0x88, "retired7"),
    (0x89, "retired8"),
    (0x8a, "retired9"),
    (0x8b, "retired10"),
    (0x8c, "retired11"),
    (0x8d, "retired12"),
    (0x8e, "retired13"),
    (0x8f, "retired14"),
    (0x90, "retired15"),
    (0x91, "retired16"),
    (0x92, "retired17"),
    (0x93, "retired18"),
    (0x94, "retired19"),
    (0x95, "retired20"),
];

/// A PIV key slot (never f9, the attestation key, which signs only attestations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(u8);

impl Slot {
    /// `9c`, `0x9c`, `signature` (any case).
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let hex = t.strip_prefix("0x").unwrap_or(&t);
        let found = SLOTS.iter().find(|(id, name)| {
            *name == t || (hex.len() == 2 && u8::from_str_radix(hex, 16).ok() == Some(*id))
        });
        match found {
            Some((id, _)) => Ok(Self(*id)),
            None if hex == "f9" || t == "attestation" => Err(PluginError::validation(
                "slot f9 holds the YubiKey's attestation key, which signs only attestations; \
                 use a key slot (9a, 9c, 9d, 9e, 82-95)",
            )),
            None => Err(PluginError::validation(format!(
                "'{s}' is not a PIV key slot; use one of 9a (authentication), 9c (signature), \
                 9d (key-management), 9e (card-authentication), 82-95 (retired1-retired20)"
            ))),
        }
    }

    /// Every key slot, in the order `list` shows them.
    pub fn all() -> impl Iterator<Item = Slot> {
        SLOTS.iter().map(|(id, _)| Slot(*id))
    }

    pub fn id(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        SLOTS
            .iter()
            .find(|(id, _)| *id == self.0)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// The yubikey crate's slot.
    pub fn piv(self) -> SlotId {
        // Every id of SLOTS is a slot the crate knows.
        SlotId::try_from(self.0).unwrap_or(SlotId::Signature)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x} ({})", self.0, self.name())
    }
}

/// `key_id` as messages and logs show it: a PIN, PUK or management key someone put into it
/// (`yubikey:slot=9c;pin=...`, which is refused) is replaced by `[redacted]`.
pub fn redact(key_id: &str) -> String {
    plugin_protocol::secret::redact_attributes(key_id, |name| {
        ["pin", "puk", "mgm", "management-key", "secret", "pass"]
            .iter()
            .any(|s| name.contains(s))
    })
}

/// A key id: the slot, and the serial of the YubiKey when the key id names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub serial: Option<u32>,
    pub slot: Slot,
}

/// The key id of the protocol and the commands: parsed once, named by [`redact`].
impl plugin_protocol::KeyReference for KeyRef {
    const KIND: &'static str = "a YubiKey key id";
    const HELP: &'static str = KEY_ID_HELP;
    /// `yubikey:serial=4294967295;slot=card-authentication` is 50 characters.
    const MAX_LEN: usize = 256;

    /// `9c`, `signature`, `yubikey:slot=9c`, `yubikey:serial=12345678;slot=9c` (attributes in
    /// any order).
    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        // Parsed in its redacted form: whatever a reason quotes cannot be a secret.
        let shown = redact(key_id);
        let Some(attrs) = shown.trim().strip_prefix("yubikey:") else {
            return Slot::parse(&shown)
                .map(|slot| Self { serial: None, slot })
                .map_err(|e| e.message);
        };
        let (mut serial, mut slot) = (None, None);
        for attr in attrs.split(';').filter(|a| !a.trim().is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| format!("'{attr}' is not name=value"))?;
            match name.trim().to_ascii_lowercase().as_str() {
                "serial" => {
                    let n = value.trim().parse::<u32>().map_err(|_| {
                        format!(
                            "serial '{value}' is not a YubiKey serial number (decimal, as \
                             printed on the key and by notation-yubikey list)"
                        )
                    })?;
                    serial = Some(n);
                }
                "slot" => slot = Some(Slot::parse(value).map_err(|e| e.message)?),
                other if other.starts_with("pin") => {
                    return Err(
                        "a PIN does not belong in a key id: use pin_file or YUBIKEY_PIN".to_owned(),
                    )
                }
                other => {
                    return Err(format!(
                        "unknown attribute '{other}'; a YubiKey key id has serial= and slot="
                    ))
                }
            }
        }
        let slot = slot.ok_or("it names no slot; add slot=")?;
        Ok(Self { serial, slot })
    }

    fn redacted(key_id: &str) -> String {
        redact(key_id)
    }
}

impl KeyRef {
    /// The key id to give notation for the key in `slot` of the YubiKey `serial`.
    pub fn key_id(serial: u32, slot: Slot) -> String {
        format!("yubikey:serial={serial};slot={:02x}", slot.id())
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.serial {
            Some(serial) => write!(f, "slot {} of YubiKey {serial}", self.slot),
            None => write!(f, "slot {}", self.slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::slips::Example;

    #[test]
    fn key_ids_a_slip_away_are_refused_or_parsed_and_never_show_a_pin() {
        let checked = plugin_protocol::slips::check::<KeyRef>(
            &crate::INFO,
            &[
                Example::holding("yubikey:slot=9c;pin=S3cret9", "S3cret9"),
                Example::holding("yubikey:PIN=S3cret9;slot=9c", "S3cret9"),
                Example::holding("yubikey:serial=5;slot=9c;management-key=S3cret9", "S3cret9"),
                Example::holding("yubikey:slot=9c&Puk=S3cret9", "S3cret9"),
                Example::plain("yubikey:serial=12345678;slot=signature"),
                Example::plain("0x9C"),
                Example::plain("retired20"),
            ],
        );
        assert!(checked > 2000, "{checked}");
    }

    #[test]
    fn slots_by_hex_or_name() {
        for (s, id) in [
            ("9c", 0x9c),
            ("0x9C", 0x9c),
            ("signature", 0x9c),
            ("Authentication", 0x9a),
            ("9d", 0x9d),
            ("key-management", 0x9d),
            ("card-authentication", 0x9e),
            ("82", 0x82),
            ("retired1", 0x82),
            ("retired20", 0x95),
            ("95", 0x95),
        ] {
            assert_eq!(Slot::parse(s).unwrap().id(), id, "{s}");
        }
        for bad in [
            "9b",
            "f9",
            "attestation",
            "96",
            "81",
            "retired21",
            "",
            "9cc",
            "x",
        ] {
            assert!(Slot::parse(bad).is_err(), "{bad}");
        }
        assert!(Slot::parse("f9")
            .unwrap_err()
            .message
            .contains("attestation"));
        assert_eq!(Slot::all().count(), 24);
        assert_eq!(Slot::parse("8c").unwrap().name(), "retired11");
        assert_eq!(Slot::parse("9e").unwrap().piv(), SlotId::CardAuthentication);
        assert_eq!(u8::from(Slot::parse("90").unwrap().piv()), 0x90);
    }

    #[test]
    fn key_ids_are_bounded_at_256_characters() {
        let padded = |len: usize| format!("yubikey:{}slot=9c", ";".repeat(len - 15));
        assert_eq!(padded(256).len(), 256);
        assert_eq!(
            plugin_protocol::parse_key_id::<KeyRef>(&padded(256))
                .unwrap()
                .slot
                .id(),
            0x9c
        );
        let e = plugin_protocol::parse_key_id::<KeyRef>(&padded(257)).unwrap_err();
        assert!(e.message.contains("257 characters long"), "{}", e.message);
    }

    #[test]
    fn key_ids_with_and_without_serial() {
        assert_eq!(
            plugin_protocol::parse_key_id::<KeyRef>("9c").unwrap(),
            KeyRef {
                serial: None,
                slot: Slot(0x9c)
            }
        );
        let both =
            plugin_protocol::parse_key_id::<KeyRef>("yubikey:serial=18000001;slot=signature")
                .unwrap();
        assert_eq!((both.serial, both.slot.id()), (Some(18000001), 0x9c));
        let reordered =
            plugin_protocol::parse_key_id::<KeyRef>("yubikey:slot=9a;serial=7").unwrap();
        assert_eq!((reordered.serial, reordered.slot.id()), (Some(7), 0x9a));
        assert_eq!(
            plugin_protocol::parse_key_id::<KeyRef>("yubikey:slot=82")
                .unwrap()
                .serial,
            None
        );
        assert_eq!(
            KeyRef::key_id(18000001, Slot(0x9c)),
            "yubikey:serial=18000001;slot=9c"
        );
        assert_eq!(
            plugin_protocol::parse_key_id::<KeyRef>(&KeyRef::key_id(5, Slot(0x95))).unwrap(),
            KeyRef {
                serial: Some(5),
                slot: Slot(0x95)
            }
        );
        for (bad, says) in [
            ("yubikey:serial=12", "names no slot"),
            ("yubikey:serial=abc;slot=9c", "not a YubiKey serial"),
            (
                "yubikey:slot=9c;pin=975310",
                "a PIN does not belong in a key id",
            ),
            ("yubikey:slot=9c;colour=red", "unknown attribute 'colour'"),
            ("yubikey:slot", "not name=value"),
            ("pkcs11:token=x", "not a PIV key slot"),
            (&"9".repeat(257), "257 characters long"),
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
            assert!(!e.message.contains("975310"), "{}", e.message);
        }
    }
}
