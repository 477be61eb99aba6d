//! The Notary payload of a blob signature, as `notation blob sign` builds it: a descriptor of
//! the blob (media type, digest under the key spec's hash, size) under `targetArtifact`. Also
//! the signing-time text of the JWS header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugin_protocol::HashAlgorithm;
use serde::{Deserialize, Serialize};

/// The payload content type of every Notary signature.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// `notation blob sign`'s default `--media-type`.
pub const DEFAULT_BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// An OCI descriptor, in the field order notation writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// `{"targetArtifact": descriptor}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub target_artifact: Descriptor,
}

/// The descriptor of `blob` with its digest under `hash` (notation digests a blob with the hash
/// of the signing key's spec: `sha384:` for EC-384 and RSA-3072).
pub fn blob_descriptor(blob: &[u8], hash: HashAlgorithm) -> Descriptor {
    Descriptor {
        media_type: DEFAULT_BLOB_MEDIA_TYPE.to_owned(),
        digest: format!("{}:{}", hash.oci_name(), hex(&hash.digest(blob))),
        size: blob.len() as u64,
    }
}

impl Payload {
    pub fn for_blob(blob: &[u8], hash: HashAlgorithm) -> Self {
        Self {
            target_artifact: blob_descriptor(blob, hash),
        }
    }

    /// The payload bytes of a COSE envelope: notation-go marshals the payload struct as is.
    pub fn to_cose_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings and numbers serialises")
    }

    /// The payload bytes of a JWS envelope: notation-core-go re-encodes the payload as JWT
    /// claims (a JSON object with sorted keys), so key order differs from COSE's.
    pub fn to_jws_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("a struct serialises to a value");
        // serde_json's Map is a BTreeMap here: keys come out sorted, as Go's map encoding does.
        serde_json::to_vec(&value).expect("a JSON value serialises")
    }

    /// Checks that this payload describes `blob`: digest (under the algorithm the digest names)
    /// and size. Returns what matched, or what did not.
    pub fn matches_blob(&self, blob: &[u8]) -> Result<String, String> {
        let d = &self.target_artifact;
        let (alg, hex_digest) = d.digest.split_once(':').ok_or_else(|| {
            format!(
                "targetArtifact.digest '{}' is not '<algorithm>:<hex>'",
                d.digest
            )
        })?;
        let hash = match alg {
            "sha256" => HashAlgorithm::Sha256,
            "sha384" => HashAlgorithm::Sha384,
            "sha512" => HashAlgorithm::Sha512,
            other => {
                return Err(format!(
                    "targetArtifact.digest uses unsupported algorithm '{other}'"
                ))
            }
        };
        let actual = hex(&hash.digest(blob));
        if actual != hex_digest {
            return Err(format!(
                "the blob's {alg} digest is {alg}:{actual} but the signature covers {}: the blob was changed or is not the one signed",
                d.digest
            ));
        }
        if d.size != blob.len() as u64 {
            return Err(format!(
                "the blob is {} bytes but the signature covers {} bytes",
                blob.len(),
                d.size
            ));
        }
        if d.media_type.is_empty() {
            return Err("targetArtifact.mediaType is empty".into());
        }
        Ok(format!("{} ({} bytes, {})", d.digest, d.size, d.media_type))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, truncated to whole seconds (notation-core-go truncates the signing time).
pub fn now_seconds() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// RFC 3339 in UTC (`2026-11-23T17:22:00Z`), as Go's time encoding writes a UTC time.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses RFC 3339 (`Z` or `±hh:mm`, optional fractional seconds), as Go's time decoding does.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' || !matches!(ob[0], b'+' | b'-') {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        Some(UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()))
    }
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bytes_match_notation() {
        let p = Payload::for_blob(b"hello\n", HashAlgorithm::Sha256);
        let cose = String::from_utf8(p.to_cose_bytes()).unwrap();
        assert_eq!(
            cose,
            r#"{"targetArtifact":{"mediaType":"application/octet-stream","digest":"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","size":6}}"#
        );
        let jws = String::from_utf8(p.to_jws_bytes()).unwrap();
        assert_eq!(
            jws,
            r#"{"targetArtifact":{"digest":"sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","mediaType":"application/octet-stream","size":6}}"#
        );
        assert!(p.matches_blob(b"hello\n").is_ok());
        let err = p.matches_blob(b"hello!").unwrap_err();
        assert!(err.contains("was changed"), "{err}");
    }

    #[test]
    fn rfc3339_round_trips_and_accepts_offsets() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_454_520);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-23T17:22:00Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(parse_rfc3339("2026-11-23T18:22:00.123456+01:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }
}
