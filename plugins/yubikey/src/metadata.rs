//! GET METADATA for a key slot, read whole. The yubikey crate's `piv::metadata` sends a short
//! APDU and keeps only the first response (256 bytes), without the GET RESPONSE that fetches the
//! rest, so an RSA key's metadata (its modulus alone is 256 to 512 bytes) comes back as an
//! error on a YubiKey (the card answers 61xx, "more data"). This module asks over a second
//! shared PC/SC connection to the same reader and follows 61xx as ISO 7816-4 says; everything
//! else goes through the crate.

use std::ffi::CString;

use plugin_protocol::{PluginError, PublicKey, Result};
use yubikey::piv::{AlgorithmId, Origin};
use yubikey::{PinPolicy, TouchPolicy};

/// What a YubiKey says about the key in a slot.
#[derive(Debug)]
pub struct Metadata {
    pub algorithm: AlgorithmId,
    pub policy: Option<(PinPolicy, TouchPolicy)>,
    pub origin: Option<Origin>,
    /// The public key; `None` for a key notation cannot use (RSA-1024, Ed25519, X25519).
    pub public: Option<PublicKey>,
}

/// The card's answer to GET METADATA for `slot`, or why there is none.
pub enum Answer {
    Found(Metadata),
    /// The slot holds no key (SW 6A88).
    Empty,
    /// Firmware before 5.3 has no GET METADATA.
    NotSupported,
}

const PIV_AID: [u8; 5] = [0xa0, 0x00, 0x00, 0x03, 0x08];
/// The longest answer read: an RSA-4096 key's metadata is about 540 bytes.
const MAX_ANSWER: usize = 4096;

/// Reads the metadata of `slot` on the card in `reader` (a connection of its own, shared with
/// the crate's, let go without resetting the card).
pub fn read(reader: &str, slot: u8) -> Result<Answer> {
    read_slots(reader, &[slot])?.remove(0)
}

/// The metadata of each of `slots`, in order, over one connection and transaction: a failure
/// of the connection fails them all, a slot the card refuses only its own answer.
pub fn read_slots(reader: &str, slots: &[u8]) -> Result<Vec<Result<Answer>>> {
    let fail = |e: pcsc::Error| {
        crate::device::describe(
            yubikey::Error::PcscError { inner: Some(e) },
            "reading the slot's metadata",
        )
    };
    let context = pcsc::Context::establish(pcsc::Scope::User).map_err(fail)?;
    let name =
        CString::new(reader).map_err(|_| PluginError::generic("a reader name with a NUL byte"))?;
    let mut card = context
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::T1)
        .map_err(fail)?;
    let answers = (|| {
        let tx = card.transaction().map_err(fail)?;
        let mut select = vec![0x00, 0xa4, 0x04, 0x00, PIV_AID.len() as u8];
        select.extend_from_slice(&PIV_AID);
        let selected = exchange(&tx, &select).map_err(fail)?;
        if selected.1 != 0x9000 {
            return Err(PluginError::generic(format!(
                "the card in reader '{reader}' has no PIV application (SW {:04X})",
                selected.1
            )));
        }
        slots
            .iter()
            .map(|&slot| {
                let answer = exchange(&tx, &[0x00, 0xf7, 0x00, slot, 0x00]).map_err(fail)?;
                Ok(answer_of(slot, answer))
            })
            .collect::<Result<Vec<_>>>()
    })();
    // Whatever happened: let go without the reset a dropped connection would do.
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    answers
}

/// What GET METADATA's answer (data, status word) for `slot` says.
fn answer_of(slot: u8, (data, sw): (Vec<u8>, u16)) -> Result<Answer> {
    match sw {
        0x9000 => parse(&data).map(Answer::Found),
        0x6a88 => Ok(Answer::Empty),
        0x6d00 | 0x6a81 => Ok(Answer::NotSupported),
        sw => Err(PluginError::generic(format!(
            "the YubiKey refused to read the metadata of slot {slot:02x} (SW {sw:04X})"
        ))),
    }
}

/// Sends `apdu` and follows 61xx with GET RESPONSE; the data and the final status word.
fn exchange(
    tx: &pcsc::Transaction<'_>,
    apdu: &[u8],
) -> std::result::Result<(Vec<u8>, u16), pcsc::Error> {
    let mut data = Vec::new();
    let mut buf = [0u8; 258];
    let mut command = apdu.to_vec();
    loop {
        let rapdu = tx.transmit(&command, &mut buf)?;
        if rapdu.len() < 2 {
            return Ok((data, 0x6f00));
        }
        let (body, sw) = rapdu.split_at(rapdu.len() - 2);
        data.extend_from_slice(body);
        if sw[0] != 0x61 || data.len() > MAX_ANSWER {
            return Ok((data, u16::from_be_bytes([sw[0], sw[1]])));
        }
        command = vec![0x00, 0xc0, 0x00, 0x00, sw[1]];
    }
}

/// One BER-TLV with a one-byte tag: (tag, value, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0x00..=0x7f => (usize::from(first), rest),
        0x81 => (usize::from(*rest.first()?), &rest[1..]),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn malformed(what: &str) -> PluginError {
    PluginError::generic(format!("the YubiKey's slot metadata is malformed ({what})"))
}

/// Parses GET METADATA's answer: 01 algorithm, 02 PIN and touch policy, 03 origin, 04 public key.
pub fn parse(mut data: &[u8]) -> Result<Metadata> {
    let (mut algorithm, mut policy, mut origin, mut key) = (None, None, None, None);
    while !data.is_empty() {
        let (tag, value, rest) = tlv(data).ok_or_else(|| malformed("a truncated field"))?;
        match (tag, value) {
            (0x01, [a]) => {
                algorithm =
                    Some(AlgorithmId::try_from(*a).map_err(|_| malformed("an unknown algorithm"))?)
            }
            (0x02, [pin, touch]) => {
                policy = PinPolicy::try_from(*pin)
                    .ok()
                    .zip(TouchPolicy::try_from(*touch).ok())
            }
            (0x03, [o]) => origin = Origin::try_from(*o).ok(),
            (0x04, v) => key = Some(v),
            _ => {}
        }
        data = rest;
    }
    let algorithm = algorithm.ok_or_else(|| malformed("no algorithm"))?;
    let public = match (algorithm, key) {
        (AlgorithmId::Rsa2048 | AlgorithmId::Rsa3072 | AlgorithmId::Rsa4096, Some(v)) => {
            let (t1, modulus, rest) = tlv(v).ok_or_else(|| malformed("RSA modulus"))?;
            let (t2, exponent, _) = tlv(rest).ok_or_else(|| malformed("RSA exponent"))?;
            if (t1, t2) != (0x81, 0x82) {
                return Err(malformed("RSA public key tags"));
            }
            Some(PublicKey::from_rsa_components(modulus, exponent)?)
        }
        (AlgorithmId::EccP256 | AlgorithmId::EccP384, Some(v)) => {
            let (tag, point, _) = tlv(v).ok_or_else(|| malformed("EC point"))?;
            if tag != 0x86 {
                return Err(malformed("EC public key tag"));
            }
            let spec = if algorithm == AlgorithmId::EccP256 {
                plugin_protocol::KeySpec::Ec256
            } else {
                plugin_protocol::KeySpec::Ec384
            };
            let curve = plugin_protocol::public_key::named_curve_der(spec)
                .ok_or_else(|| malformed("curve"))?;
            Some(PublicKey::from_ec_point(&curve, point)?)
        }
        _ => None,
    };
    Ok(Metadata {
        algorithm,
        policy,
        origin,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::KeySpec;

    /// GET METADATA's answer for an EC key of `spec` whose point is `point`, with `tag` for it.
    fn ec_metadata(algorithm: u8, tag: u8, point: &[u8]) -> Vec<u8> {
        let mut data = vec![0x01, 0x01, algorithm, 0x04, point.len() as u8 + 2, tag];
        data.push(point.len() as u8);
        data.extend_from_slice(point);
        data
    }

    #[test]
    fn ec_keys_of_both_curves() {
        for (spec, algorithm) in [(KeySpec::Ec256, 0x11), (KeySpec::Ec384, 0x14)] {
            let key = plugin_protocol::testca::generate_key(spec)
                .public_key()
                .unwrap();
            let spki = key.to_spki_der();
            let point = &spki[spki.len() - (1 + 2 * spec.ecdsa_scalar_len().unwrap())..];
            let m = parse(&ec_metadata(algorithm, 0x86, point)).unwrap();
            assert_eq!(m.public.as_ref(), Some(&key), "{spec}");
            assert!(
                parse(&ec_metadata(algorithm, 0x85, point)).is_err(),
                "wrong tag"
            );
        }
    }

    #[test]
    fn long_lengths_and_every_field() {
        let modulus = {
            let mut m = vec![0xc5u8; 256];
            m[255] |= 1;
            m
        };
        let mut key = vec![0x81, 0x82, 0x01, 0x00];
        key.extend_from_slice(&modulus);
        key.extend_from_slice(&[0x82, 0x03, 0x01, 0x00, 0x01]);
        let mut data = vec![0x01, 0x01, 0x07, 0x02, 0x02, 0x03, 0x01, 0x03, 0x01, 0x01];
        data.extend_from_slice(&[0x04, 0x82]);
        data.extend_from_slice(&(key.len() as u16).to_be_bytes());
        data.extend_from_slice(&key);
        let m = parse(&data).unwrap();
        assert_eq!(m.algorithm, AlgorithmId::Rsa2048);
        assert_eq!(m.policy, Some((PinPolicy::Always, TouchPolicy::Never)));
        assert_eq!(m.origin, Some(Origin::Generated));
        assert_eq!(
            m.public.unwrap().key_spec(),
            plugin_protocol::KeySpec::Rsa2048
        );
        // Cut anywhere, it is refused, not misread.
        for cut in [1, 5, 12, data.len() - 1] {
            assert!(parse(&data[..cut]).is_err(), "cut at {cut}");
        }
        // A one-byte 0x81 length (an RSA exponent field of 3 bytes written long-form).
        let mut long_exp = vec![0x81, 0x82, 0x01, 0x00];
        long_exp.extend_from_slice(&modulus);
        long_exp.extend_from_slice(&[0x82, 0x81, 0x03, 0x01, 0x00, 0x01]);
        let mut data = vec![0x01, 0x01, 0x07, 0x04, 0x82];
        data.extend_from_slice(&(long_exp.len() as u16).to_be_bytes());
        data.extend_from_slice(&long_exp);
        assert!(parse(&data).unwrap().public.is_some(), "0x81 lengths");
        let ed = parse(&[0x01, 0x01, 0xe0, 0x04, 0x02, 0x86, 0x00]).unwrap();
        assert_eq!(
            (ed.algorithm, ed.public.is_none()),
            (AlgorithmId::Ed25519, true)
        );
        assert!(parse(&[0x02, 0x02, 0x01, 0x01]).is_err(), "no algorithm");
    }
}
