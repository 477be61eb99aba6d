//! The keyId forms users already know, parsed without any network call:
//! key id, multi-Region key id (`mrk-…`), key ARN, alias name (`alias/x`), alias ARN, and the
//! sigstore forms `awskms:///<ref>` and `awskms://<host:port>/<ref>` (the latter selects the
//! KMS endpoint). The keyId itself is echoed unchanged; KMS resolves aliases.

/// What the forms accepted look like, for messages and `--help`.
pub const KEY_ID_HELP: &str = "a KMS key id (1234abcd-12ab-34cd-56ef-1234567890ab or \
     mrk-…), key ARN, alias name (alias/release), alias ARN, or the sigstore forms \
     awskms:///<any of those> and awskms://<host:port>/<any of those> (selects the endpoint)";

/// A parsed key reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// What KMS gets as `KeyId`: key id, ARN, or `alias/…`.
    pub kms_key_id: String,
    /// The Region named by an ARN (it wins: the key lives there).
    pub region: Option<String>,
    /// `https://host:port` from `awskms://host:port/…` (`http://` for loopback hosts).
    pub endpoint: Option<String>,
}

impl plugin_protocol::KeyReference for KeyRef {
    const KIND: &'static str = "an AWS KMS key reference";
    const HELP: &'static str = KEY_ID_HELP;
    /// KMS accepts key ids, ARNs and aliases of at most 2048 characters.
    const MAX_LEN: usize = 2048 + "awskms://".len() + 255;

    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| why.to_owned();
        let (endpoint, reference) = match key_id.strip_prefix("awskms://") {
            Some(rest) => {
                let (host, reference) = rest
                    .split_once('/')
                    .ok_or_else(|| bad("awskms:// needs a key after the host: awskms:///<key>"))?;
                let endpoint = if host.is_empty() {
                    None
                } else {
                    Some(endpoint_for_host(host).map_err(|why| bad(&why))?)
                };
                (endpoint, reference)
            }
            None => (None, key_id),
        };
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(bad("no key"));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("it contains white space"));
        }
        let region = if let Some(arn) = reference.strip_prefix("arn:") {
            Some(parse_arn(arn).map_err(|why| bad(&why))?)
        } else if let Some(name) = reference.strip_prefix("alias/") {
            if name.is_empty() {
                return Err(bad("empty alias name"));
            }
            None
        } else if is_key_id(reference) {
            None
        } else {
            return Err(bad("not a key id, ARN or alias/<name>"));
        };
        Ok(Self {
            kms_key_id: reference.to_owned(),
            region,
            endpoint,
        })
    }
}

/// `arn:<partition>:kms:<region>:<account>:key/<id>` or `...:alias/<name>` (after `arn:`);
/// returns the Region.
fn parse_arn(rest: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return Err("an ARN has the form arn:aws:kms:<region>:<account>:key/<id>".into());
    };
    if !partition.starts_with("aws") {
        return Err(format!("unknown partition '{partition}'"));
    }
    if service != "kms" {
        return Err(format!("an ARN of service '{service}', not kms"));
    }
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err("the ARN has no Region".into());
    }
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err("the ARN has no account id".into());
    }
    let ok = resource
        .strip_prefix("key/")
        .is_some_and(|id| !id.is_empty() && is_key_id(id))
        || resource
            .strip_prefix("alias/")
            .is_some_and(|name| !name.is_empty());
    if !ok {
        return Err("the ARN names neither key/<id> nor alias/<name>".into());
    }
    Ok(region.to_owned())
}

/// A key id: a UUID, or a multi-Region key id `mrk-` followed by 32 hex digits.
fn is_key_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("mrk-") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The endpoint URL for `awskms://<host[:port]>/…`: HTTPS, except plain HTTP for loopback hosts
/// (LocalStack and other local emulators serve plain HTTP).
fn endpoint_for_host(host: &str) -> std::result::Result<String, String> {
    if host.contains('@') {
        return Err(
            "the part before the key holds credentials (user:password@host), which do \
             not belong in a key id: the plugin takes them from the AWS environment (AWS_PROFILE, \
             AWS_ACCESS_KEY_ID, an instance role)"
                .into(),
        );
    }
    if host.contains(['?', '#', ' ']) {
        return Err(format!("'{host}' is not a host[:port]"));
    }
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let loopback = name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = if loopback { "http" } else { "https" };
    Ok(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::slips::Example;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn parse(s: &str) -> KeyRef {
        plugin_protocol::parse_key_id::<KeyRef>(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn key_ids_a_slip_away_are_refused_or_parsed_and_never_show_a_password() {
        let checked = plugin_protocol::slips::check::<KeyRef>(
            &crate::INFO,
            &[
                Example::plain(ID),
                Example::plain("arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"),
                Example::plain("arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/release"),
                Example::plain("alias/release-signing"),
                Example::plain("awskms://localhost:4566/alias/release"),
                Example::plain("awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                // A pasted endpoint with credentials in it is refused without them.
                Example::holding("awskms://AKIAEXAMPLE:S3cretKey@localhost:4566/alias/release", "S3cretKey"),
            ],
        );
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn plain_forms() {
        assert_eq!(parse(ID).kms_key_id, ID);
        assert_eq!(parse(ID).region, None);
        let mrk = "mrk-1234abcd12ab34cd56ef1234567890ab";
        assert_eq!(parse(mrk).kms_key_id, mrk);
        assert_eq!(parse("alias/release").kms_key_id, "alias/release");
        let arn = format!("arn:aws:kms:us-west-2:111122223333:key/{ID}");
        let k = parse(&arn);
        assert_eq!(
            (k.kms_key_id.as_str(), k.region.as_deref()),
            (arn.as_str(), Some("us-west-2"))
        );
        let alias_arn = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/release";
        assert_eq!(parse(alias_arn).region.as_deref(), Some("us-gov-west-1"));
    }

    #[test]
    fn sigstore_forms() {
        let k = parse("awskms:///alias/release");
        assert_eq!((k.kms_key_id.as_str(), k.endpoint), ("alias/release", None));
        let k = parse(&format!("awskms://127.0.0.1:4566/{ID}"));
        assert_eq!(k.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        let k = parse("awskms://kms.example.com:443/arn:aws:kms:eu-west-1:111122223333:alias/a");
        assert_eq!(k.endpoint.as_deref(), Some("https://kms.example.com:443"));
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            parse("awskms://localhost/alias/x").endpoint.as_deref(),
            Some("http://localhost")
        );
    }

    #[test]
    fn rejects_what_is_not_a_kms_key() {
        for bad in [
            "release",
            "alias/",
            "awskms://",
            "awskms:///",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:111122223333:key/",
            "arn:aws:kms::111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef",
            "alias/a b",
            // A Region, account, multi-Region id or key id with a wrong character or length.
            "arn:aws:kms:us_east-1:111122223333:alias/a",
            "arn:aws:kms:us-east-1:11112222333x:alias/a",
            "arn:aws:kms:us-east-1:111122223333:key/release",
            "mrk-",
            "mrk-1234abcd12ab34cd56ef1234567890ax",
            "1234abcg-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890a",
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(bad).unwrap_err();
            assert_eq!(e.code, plugin_protocol::ErrorCode::Validation, "{bad}");
            assert!(e.message.contains(bad.trim()), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn the_length_bound_is_kmss_own_plus_the_awskms_prefix_and_host() {
        let limit = 2048 + "awskms://".len() + 255;
        let longest = format!("alias/{}", "a".repeat(limit - "alias/".len()));
        assert_eq!(parse(&longest).kms_key_id, longest);
        let e = plugin_protocol::parse_key_id::<KeyRef>(&format!("{longest}a")).unwrap_err();
        assert!(
            e.message
                .contains(&format!("it is {} characters long", limit + 1)),
            "{}",
            e.message
        );
        assert!(
            e.message.len() < 1000,
            "the key id is shortened in the message"
        );
    }
}
