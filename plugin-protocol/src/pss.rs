//! EMSA-PSS encoding (RFC 8017, section 9.1.1) for backends that can only apply the raw RSA
//! private-key operation (PIV cards, some HSMs): the backend raises the encoded message this
//! returns to its private exponent. Notation's parameters: MGF1 with the signature's hash and a
//! salt as long as the hash. The result is verified like every other signature before notation
//! sees it.

use rand::RngCore;

use crate::error::{PluginError, Result};
use crate::HashAlgorithm;

/// The encoded message for `digest` (already `hash` of the payload) under a key of
/// `modulus_bits`, left-padded with zeros to the modulus length: the input a raw RSA operation
/// takes.
pub fn encode(hash: HashAlgorithm, digest: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    let mut salt = vec![0u8; hash.output_len()];
    rand::thread_rng().fill_bytes(&mut salt);
    encode_with_salt(hash, digest, modulus_bits, &salt)
}

/// [`encode`] with a given salt (tests and known-answer checks).
pub(crate) fn encode_with_salt(
    hash: HashAlgorithm,
    digest: &[u8],
    modulus_bits: usize,
    salt: &[u8],
) -> Result<Vec<u8>> {
    let h_len = hash.output_len();
    if digest.len() != h_len {
        return Err(PluginError::generic(format!(
            "EMSA-PSS: a {hash} digest is {h_len} bytes, not {}",
            digest.len()
        )));
    }
    let em_bits = modulus_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    if em_len < h_len + salt.len() + 2 {
        return Err(PluginError::generic(format!(
            "EMSA-PSS: an RSA key of {modulus_bits} bits is too small for {hash} with a \
             {}-byte salt",
            salt.len()
        )));
    }
    // H = Hash(0x00 * 8 || mHash || salt)
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    let h = hash.digest(&m_prime);
    // DB = PS || 0x01 || salt, masked with MGF1(H)
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - salt.len() - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    for (b, m) in db.iter_mut().zip(mgf1(hash, &h, db_len)) {
        *b ^= m;
    }
    // The leftmost 8 * emLen - emBits bits are zero.
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let modulus_len = modulus_bits.div_ceil(8);
    let mut em = vec![0u8; modulus_len - em_len];
    em.extend_from_slice(&db);
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}

/// MGF1 (RFC 8017, B.2.1) with `hash`: `len` bytes from `seed`.
fn mgf1(hash: HashAlgorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let blocks = len.div_ceil(hash.output_len());
    let mut out = Vec::with_capacity(blocks * hash.output_len());
    // A message is at most a few hundred bytes: far fewer than 2^32 blocks.
    for counter in 0..blocks as u32 {
        let mut block = seed.to_vec();
        block.extend_from_slice(&counter.to_be_bytes());
        out.extend(hash.digest(&block));
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_rfc_8017() {
        let digest = HashAlgorithm::Sha256.digest(b"payload");
        let salt = [7u8; 32];
        let em = encode_with_salt(HashAlgorithm::Sha256, &digest, 2048, &salt).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(em[255], 0xbc);
        assert_eq!(
            em[0] & 0x80,
            0,
            "the top bit of a 2047-bit message is clear"
        );
        // Unmask DB and find PS || 0x01 || salt.
        let h = &em[256 - 33..255];
        let mut db = em[..256 - 33].to_vec();
        let mask = mgf1(HashAlgorithm::Sha256, h, db.len());
        for (b, m) in db.iter_mut().zip(mask) {
            *b ^= m;
        }
        db[0] &= 0x7f;
        let ps = db.len() - 32 - 1;
        assert!(db[..ps].iter().all(|&b| b == 0));
        assert_eq!(db[ps], 0x01);
        assert_eq!(&db[ps + 1..], &salt);
        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(&digest);
        m_prime.extend_from_slice(&salt);
        assert_eq!(h, HashAlgorithm::Sha256.digest(&m_prime).as_slice());
    }

    /// EMSA-PSS-VERIFY (RFC 8017, 9.1.2, steps 4-14), written from the RFC apart from the
    /// encoder: the salt `em` was encoded with, or which step refuses it.
    fn verify(
        hash: HashAlgorithm,
        digest: &[u8],
        em: &[u8],
        modulus_bits: usize,
    ) -> Result<Vec<u8>, &'static str> {
        let h_len = hash.output_len();
        let em_bits = modulus_bits - 1;
        let em_len = em_bits.div_ceil(8);
        // The integer is below 2^emBits: the bytes above the message are zero.
        let (high, em) = em.split_at(modulus_bits.div_ceil(8) - em_len);
        if high.iter().any(|&b| b != 0) {
            return Err("a byte above the encoded message is not zero");
        }
        if em[em_len - 1] != 0xbc {
            return Err("no trailer 0xbc");
        }
        let (masked_db, h) = em[..em_len - 1].split_at(em_len - h_len - 1);
        let unused_bits = 8 * em_len - em_bits;
        if u32::from(masked_db[0]) >> (8 - unused_bits) != 0 {
            return Err("the leftmost 8 * emLen - emBits bits are not zero");
        }
        let mask = mgf1(hash, h, masked_db.len());
        let mut db = masked_db.to_vec();
        for (b, m) in db.iter_mut().zip(mask) {
            *b ^= m;
        }
        db[0] &= (0xffu16 >> unused_bits) as u8;
        let one = db.iter().position(|&b| b != 0).ok_or("DB is all zeros")?;
        if db[one] != 0x01 {
            return Err("PS is not followed by 0x01");
        }
        let salt = db[one + 1..].to_vec();
        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(digest);
        m_prime.extend_from_slice(&salt);
        if hash.digest(&m_prime).as_slice() != h {
            return Err("H does not match");
        }
        Ok(salt)
    }

    #[test]
    fn every_modulus_size_and_hash_decodes_to_its_salt() {
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let digest = hash.digest(b"payload");
            for modulus_bits in [2047, 2048, 2049, 2050, 2055, 3072, 3073, 4095, 4096] {
                // Several salts, so that MGF1's first byte has its top bit both set and clear.
                for n in 0..8u8 {
                    let salt = vec![n; hash.output_len()];
                    let em = encode_with_salt(hash, &digest, modulus_bits, &salt).unwrap();
                    assert_eq!(em.len(), modulus_bits.div_ceil(8));
                    assert_eq!(
                        verify(hash, &digest, &em, modulus_bits),
                        Ok(salt),
                        "{hash}, {modulus_bits} bits, salt {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_modulus_whose_bits_minus_one_divide_by_eight_gets_a_leading_zero_byte() {
        let digest = HashAlgorithm::Sha256.digest(b"x");
        let em = encode(HashAlgorithm::Sha256, &digest, 2049).unwrap();
        assert_eq!(em.len(), 257);
        assert_eq!(em[0], 0);
    }

    #[test]
    fn wrong_digest_length_and_small_keys_are_refused() {
        assert!(encode(HashAlgorithm::Sha384, &[0; 32], 3072).is_err());
        let err = encode(HashAlgorithm::Sha512, &[0; 64], 1024).unwrap_err();
        assert!(err.message.contains("too small"), "{}", err.message);
        assert!(encode(HashAlgorithm::Sha512, &[0; 64], 1040).is_ok());
    }

    #[test]
    fn mgf1_counts_blocks() {
        let m = mgf1(HashAlgorithm::Sha256, b"seed", 70);
        assert_eq!(m.len(), 70);
        let mut first = b"seed".to_vec();
        first.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(&m[..32], HashAlgorithm::Sha256.digest(&first).as_slice());
        let mut third = b"seed".to_vec();
        third.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(&m[64..], &HashAlgorithm::Sha256.digest(&third)[..6]);
    }
}
