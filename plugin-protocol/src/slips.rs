//! Key ids a slip away from valid ones, for each backend's key-id tests: a character inserted,
//! deleted or doubled, the text cut short, the case changed, the key id made huge. Every such key
//! id must parse, or be refused as the contract says (a `VALIDATION_ERROR` naming the key id),
//! and never panic; and a secret the key id holds (a PIN, a password in a URL) must not show, in
//! any case, in what the runner and every command would show of it (the key name when it parses,
//! else the refusal) or in what it parses to, unless the slip was in that secret's own attribute,
//! where no rule can tell a mistyped name from another attribute.

use std::fmt::Debug;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{Context, ErrorCode, KeyReference, PluginInfo};

/// What a slip inserts: separators of every key-id form, percent-escapes good and bad, a
/// character of two bytes, controls, quotes, white space, and the redaction marker itself.
#[rustfmt::skip]
const INSERTED: &[&str] = &[
    ";", "&", "?", "=", ":", "/", "//", "@", "#", "%", "%2", "%zz", "%+1", "%26", "%3B", "%00",
    "\u{e9}", "\u{1F511}", "\0", "\n", " ", "\t", "'", "\"", "\\", "+", "-", "..", "0", "9", "a",
    "Z", "*", "[redacted]",
];

/// One key id, and the secret it holds, if any.
#[derive(Clone, Copy, Debug)]
pub struct Example<'a> {
    /// A key id that parses, or one a user may paste (a URL with a password in it) that must be
    /// refused; it is checked as well as its slips.
    pub key_id: &'a str,
    /// A secret in it (a PIN, a URL's password) that no message or parsed value may repeat.
    pub secret: Option<&'a str>,
}

impl<'a> Example<'a> {
    /// A key id that holds no secret.
    pub const fn plain(key_id: &'a str) -> Self {
        Self {
            key_id,
            secret: None,
        }
    }

    /// A key id that holds `secret`, which must be in it as it is.
    pub const fn holding(key_id: &'a str, secret: &'a str) -> Self {
        Self {
            key_id,
            secret: Some(secret),
        }
    }
}

/// Runs every slip of every example through [`Context::for_key`] as `R` for the plugin `info`
/// and returns how many key ids it checked; panics listing the first failures (a panic inside
/// the parser, a refusal that is not a `VALIDATION_ERROR` naming the key id, a secret shown).
pub fn check<R: KeyReference + Debug>(
    info: &'static PluginInfo,
    examples: &[Example<'_>],
) -> usize {
    let mut checked = 0;
    let mut failures = Vec::new();
    for ex in examples {
        let guarded = ex
            .secret
            .map(|s| (s.to_lowercase(), own_attributes(ex.key_id, s)));
        for (key_id, at) in slips(ex.key_id, R::MAX_LEN) {
            checked += 1;
            let parsed = catch_unwind(AssertUnwindSafe(|| {
                Context::for_key::<R>(info, key_id.clone(), None)
            }));
            let shown = match parsed {
                Err(_) => {
                    failures.push(format!("{key_id:?}: the parser panicked"));
                    continue;
                }
                Ok(Ok((ctx, parsed))) => {
                    format!("key name {:?}, parsed {parsed:?}", ctx.key_name())
                }
                Ok(Err(e)) => {
                    if e.code != ErrorCode::Validation || !e.message.starts_with("keyId '") {
                        failures.push(format!("{key_id:?}: refused as {e:?}"));
                    }
                    format!("refusal {:?}", e.message)
                }
            };
            if let Some((secret, own)) = &guarded {
                let in_own = own.iter().any(|own| overlaps(&at, own));
                if !in_own && shown.to_lowercase().contains(secret) {
                    failures.push(format!("{key_id:?}: the secret shows: {shown}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} key ids a slip away from the examples failed; the first:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    checked
}

/// The bytes of each attribute that holds `secret` in `key_id`: from the separator before its
/// name (the last `;`, `&`, `?` or `/`; a URL's `user:` is part of it) to the character that ends
/// it (a URL's `@`, the next attribute's separator), both included.
fn own_attributes(key_id: &str, secret: &str) -> Vec<Range<usize>> {
    let own: Vec<Range<usize>> = key_id
        .match_indices(secret)
        .map(|(at, _)| {
            let start = key_id[..at].rfind([';', '&', '?', '/']).unwrap_or(0);
            let end = at + secret.len();
            start..end + key_id[end..].chars().next().map_or(0, char::len_utf8)
        })
        .collect();
    assert!(
        !own.is_empty(),
        "the secret is not in the example {key_id:?}"
    );
    own
}

/// Whether a slip over `at` (an insertion at `at.start` when it is empty) touches `own`.
fn overlaps(at: &Range<usize>, own: &Range<usize>) -> bool {
    if at.is_empty() {
        own.start <= at.start && at.start < own.end
    } else {
        at.start < own.end && own.start < at.end
    }
}

/// Every slip of `key_id`, each with the byte range of the original it changed (empty for an
/// insertion), plus the key id itself, in other cases, padded with white space, one byte too
/// long, twice, and followed by a hundred attributes.
fn slips(key_id: &str, max_len: usize) -> Vec<(String, Range<usize>)> {
    // The key id itself, as an insertion of nothing at its end, which touches no attribute.
    let mut out = vec![(key_id.to_owned(), key_id.len()..key_id.len())];
    let bounds: Vec<usize> = key_id
        .char_indices()
        .map(|(i, _)| i)
        .chain([key_id.len()])
        .collect();
    for (n, &i) in bounds.iter().enumerate() {
        for s in INSERTED {
            out.push((format!("{}{s}{}", &key_id[..i], &key_id[i..]), i..i));
        }
        out.push((key_id[..i].to_owned(), i..key_id.len()));
        if let Some(&next) = bounds.get(n + 1) {
            let c = &key_id[i..next];
            out.push((format!("{}{}", &key_id[..i], &key_id[next..]), i..next));
            out.push((
                format!("{}{c}{}", &key_id[..next], &key_id[next..]),
                next..next,
            ));
        }
    }
    let whole = 0..key_id.len();
    out.push((key_id.to_uppercase(), whole.clone()));
    out.push((key_id.to_lowercase(), whole.clone()));
    out.push((format!("  {key_id}\n"), 0..0));
    out.push((
        format!(
            "{key_id}{}",
            " ".repeat(max_len + 1 - key_id.len().min(max_len))
        ),
        0..0,
    ));
    out.push((format!("{key_id}{key_id}"), key_id.len()..key_id.len()));
    out.push((
        format!("{key_id}{}", ";x=y".repeat(100)),
        key_id.len()..key_id.len(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slips_insert_delete_double_and_cut_at_every_character() {
        let all: Vec<String> = slips("a\u{e9}", 8).into_iter().map(|(s, _)| s).collect();
        for want in [
            "",
            "a",
            "\u{e9}",
            "aa\u{e9}",
            "a\u{e9}\u{e9}",
            "a;\u{e9}",
            "a\u{e9}%zz",
            "A\u{c9}",
        ] {
            assert!(all.iter().any(|s| s == want), "{want:?} in {all:?}");
        }
        assert!(
            all.iter()
                .any(|s| s.len() == 9 && s.starts_with("a\u{e9}  ")),
            "one byte too long"
        );
    }

    #[test]
    fn the_secrets_own_attribute_runs_from_its_separator_to_its_end() {
        let key_id = "pkcs11:object=k?pin-value=1234&module-path=/m.so";
        let [own] = &own_attributes(key_id, "1234")[..] else {
            panic!("one attribute holds it")
        };
        let own = own.clone();
        assert_eq!(&key_id[own.clone()], "?pin-value=1234&");
        assert!(
            !overlaps(&(14..14), &own),
            "an insertion before the separator"
        );
        assert!(overlaps(&(15..15), &own), "an insertion before the name");
        assert!(overlaps(&(29..29), &own), "an insertion into the secret");
        assert!(overlaps(&(30..30), &own), "an insertion before its end");
        assert!(!overlaps(&(31..31), &own), "an insertion after its end");
        assert!(
            !overlaps(&(14..15), &own),
            "the character before it deleted"
        );
        assert!(overlaps(&(15..16), &own), "its separator deleted");
        assert!(overlaps(&(30..31), &own), "its end deleted");
        assert!(!overlaps(&(31..32), &own), "the next character deleted");
        let url = "https://user:pw@h/x?pw";
        let own: Vec<&str> = own_attributes(url, "pw")
            .into_iter()
            .map(|r| &url[r])
            .collect();
        assert_eq!(own, ["/user:pw@", "?pw"]);
    }
}
