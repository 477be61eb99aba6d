//! Operator commands beyond the protocol: `tokens`, `keys`, `generate-key`,
//! `import-certificate`. They print for people (stdout) and report errors as `error: ...` on
//! stderr with exit code 1 (2 for usage errors).

use std::path::PathBuf;

use clap::Subcommand;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, CertificateType, ObjectClass};
use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::contract::PluginConfig;
use plugin_protocol::{Context, KeySpec, PluginError, Result};

use crate::key;
use crate::plugin::MODULE_PATH;
use crate::plugin::{TokenSession, INFO};
use crate::token::{self, describe};
use crate::uri::Pkcs11Uri;

/// The operator commands, run by the shared runner.
#[derive(Subcommand)]
pub enum Cmd {
    /// list the tokens a PKCS#11 module offers (slot, label, serial, flags)
    ///
    /// List the tokens of a PKCS#11 module: slot, label, manufacturer, model, serial, flags.
    Tokens {
        /// PKCS#11 module path (default: pluginConfig module_path / PKCS11_MODULE_PATH).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// list the private keys on a token with the exact URI to use as key id
    ///
    /// List private keys with their key spec and the exact URI to use as notation key id.
    Keys {
        /// A PKCS#11 URI selecting tokens (and carrying module-path / pin-source), e.g.
        /// "pkcs11:token=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin".
        /// Without a token selector every token of the module is listed.
        uri: Option<String>,
        /// PKCS#11 module path when the URI has none.
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// create a signing key pair of a Notary key spec on a token
    ///
    /// Create a signing key pair (private key non-extractable) on a token and print its URI.
    GenerateKey {
        /// URI of the token and the new key's label: pkcs11:token=<label>;object=<new label>[?...].
        #[arg(long)]
        key_id: String,
        /// Key spec: RSA-2048, RSA-3072, RSA-4096, EC-256, EC-384 or EC-521.
        #[arg(long)]
        spec: KeySpec,
        /// CKA_ID of the new key as hex (default: 16 random bytes from the token).
        #[arg(long)]
        id: Option<String>,
        /// PKCS#11 module path when the URI has none.
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// store a certificate chain on the token next to a key
    ///
    /// Store a certificate chain on the token: the certificate carrying the key's public key gets
    /// the key's CKA_ID and label; the CA certificates are stored by subject. Certificates
    /// already on the token are skipped.
    ImportCertificate {
        /// URI of the private key the chain belongs to.
        #[arg(long)]
        key_id: String,
        /// PEM (or DER) file with the chain, leaf first.
        #[arg(long)]
        chain: PathBuf,
        /// PKCS#11 module path when the URI has none.
        #[arg(long)]
        module: Option<PathBuf>,
    },
}

impl plugin_protocol::operator::OperatorCommands for Cmd {
    fn run(self) -> Result<()> {
        match self {
            Cmd::Tokens { module } => tokens(module),
            Cmd::Keys { uri, module } => keys(uri, module),
            Cmd::GenerateKey {
                key_id,
                spec,
                id,
                module,
            } => generate_key(key_id, spec, id, module),
            Cmd::ImportCertificate {
                key_id,
                chain,
                module,
            } => import_certificate(key_id, chain, module),
        }
    }
}

/// The context of a command for the URI `key_id`, parsed once, as the protocol's is.
fn context(key_id: String, module: Option<PathBuf>) -> Result<(Context, Pkcs11Uri)> {
    let config: Option<PluginConfig> = module.map(|m| {
        [("module_path".to_owned(), m.display().to_string())]
            .into_iter()
            .collect()
    });
    Context::for_key(&INFO, key_id, config)
}

/// The URI's query, completed with the module actually used so printed URIs work as they are.
fn printable_query(uri: &Pkcs11Uri, module: &token::ModuleChoice) -> Pkcs11Uri {
    let mut q = uri.carry_query();
    if q.module_path.is_none() && q.module_name.is_none() {
        q.module_path = Some(module.path.display().to_string());
    }
    q
}

fn tokens(module: Option<PathBuf>) -> Result<()> {
    let (ctx, uri) = context("pkcs11:".into(), module)?;
    let choice = module_for_command(&uri, &ctx, "tokens")?;
    let pkcs11 = token::load(&choice)?;
    let list = token::tokens(&pkcs11)?;
    if list.is_empty() {
        println!("no tokens in {}", choice.path.display());
        return Ok(());
    }
    let query = printable_query(&uri, &choice);
    for t in list {
        let i = &t.info;
        let mut flags = Vec::new();
        for (on, name) in [
            (i.login_required(), "login-required"),
            (i.protected_authentication_path(), "protected-auth-path"),
            (i.write_protected(), "write-protected"),
            (i.user_pin_count_low(), "user-pin-count-low"),
            (i.user_pin_final_try(), "user-pin-final-try"),
            (i.user_pin_locked(), "USER-PIN-LOCKED"),
            (!i.user_pin_initialized(), "user-pin-not-initialized"),
        ] {
            if on {
                flags.push(name);
            }
        }
        println!("slot {}: token '{}'", t.slot.id(), t.label());
        println!("  manufacturer: {}", i.manufacturer_id().trim_end());
        println!("  model:        {}", i.model().trim_end());
        println!("  serial:       {}", i.serial_number().trim_end());
        println!("  flags:        {}", flags.join(", "));
        println!("  uri:          {}", t.uri(&query));
    }
    Ok(())
}

fn keys(uri: Option<String>, module: Option<PathBuf>) -> Result<()> {
    let (ctx, uri) = context(uri.unwrap_or_else(|| "pkcs11:".into()), module)?;
    let choice = module_for_command(&uri, &ctx, "keys")?;
    let pkcs11 = token::load(&choice)?;
    let selected: Vec<token::TokenSlot> = if uri.selects_token() {
        vec![token::select(&pkcs11, &uri, &choice)?]
    } else {
        token::tokens(&pkcs11)?
    };
    let query = printable_query(&uri, &choice);
    let mut refused: Option<PluginError> = None;
    for t in &selected {
        println!("token '{}' (slot {}):", t.label(), t.slot.id());
        let session = match token::open(&pkcs11, t, &uri, &ctx.config, false) {
            Ok(s) => s,
            Err(e) => {
                println!("  cannot log in: {}", e.message);
                // Listed, and the command fails at the end, so a script can tell.
                let e = e.context(format_args!("cannot log in to token '{}'", t.label()));
                refused.get_or_insert(e);
                continue;
            }
        };
        let found = key::private_keys(&session, uri.selects_object().then_some(&uri))?;
        if found.is_empty() {
            println!("  no private keys");
        }
        for k in found {
            let spec = match key::public_key(&session, &k) {
                Ok(p) => p.key_spec().to_string(),
                Err(e) => format!("unusable: {}", e.message),
            };
            println!("  {spec:<8} object={} id={}", k.label, hex::encode(&k.id));
            println!("           {}", k.uri(t, &query));
        }
    }
    refused.map_or(Ok(()), Err)
}

/// The module for an operator command: when nothing names one, the hint names the command's
/// own `--module` option rather than the key URI's `module-path=`.
fn module_for_command(
    uri: &Pkcs11Uri,
    ctx: &Context,
    command: &str,
) -> Result<token::ModuleChoice> {
    let named = uri.module_path.is_some()
        || uri.module_name.is_some()
        || ctx.config.get(&MODULE_PATH).is_some();
    if !named {
        return Err(PluginError::validation(format!(
            "no PKCS#11 module: pass --module /path/to/module.so to `{command}` (SoftHSM2: \
             /usr/lib/softhsm/libsofthsm2.so){}, or set PKCS11_MODULE_PATH",
            if command == "keys" {
                " or put ?module-path= in the URI"
            } else {
                ""
            }
        )));
    }
    token::module_for(uri, &ctx.config)
}

fn generate_key(
    key_id: String,
    spec: KeySpec,
    id: Option<String>,
    module: Option<PathBuf>,
) -> Result<()> {
    let (ctx, uri) = context(key_id, module)?;
    let backend = TokenSession::open(&ctx, uri, true)?;
    let uri = backend.uri();
    let label = uri.object.clone().ok_or_else(|| {
        PluginError::validation("give the new key a label: object=<label> in the --key-id URI")
    })?;
    let session = backend.session();
    let existing = key::private_keys(
        session,
        Some(&Pkcs11Uri {
            object: Some(label.clone()),
            ..Pkcs11Uri::default()
        }),
    )?;
    if !existing.is_empty() {
        return Err(PluginError::validation(format!(
            "token '{}' already has a private key labelled '{label}'; choose another label (two \
             keys with one label make the URI ambiguous)",
            backend.token().label()
        )));
    }
    let id = match (id, uri.id.as_deref()) {
        (Some(h), _) => parse_hex(&h)?,
        (None, Some([])) => {
            return Err(PluginError::validation(
                "the --key-id URI has an empty id=; give the new key's id percent-encoded \
                 (id=%0a%1b) or with --id 0a1b, or leave it out for a random one",
            ))
        }
        (None, Some(uri_id)) => uri_id.to_vec(),
        (None, None) => session.generate_random_vec(16).map_err(|e| {
            PluginError::generic(format!(
                "the token cannot make random bytes: {}",
                describe(&e)
            ))
        })?,
    };
    let same_id = key::private_keys(
        session,
        Some(&Pkcs11Uri {
            id: Some(id.clone()),
            ..Pkcs11Uri::default()
        }),
    )?;
    if let Some(other) = same_id.first() {
        return Err(PluginError::validation(format!(
            "token '{}' already has a private key with id {} (labelled '{}'); choose another \
             --id, or leave it out for a random one (a key's certificate is found by its id)",
            backend.token().label(),
            hex::encode(&id),
            other.label
        )));
    }
    let common = |public: bool| {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        if public {
            t.extend([Attribute::Private(false), Attribute::Verify(true)]);
        } else {
            t.extend([
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
            ]);
        }
        t
    };
    let mut public = common(true);
    let private = common(false);
    let mechanism = match plugin_protocol::public_key::named_curve_der(spec) {
        Some(params) => {
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        }
        None => {
            public.push(Attribute::ModulusBits((spec.bits() as u64).into()));
            public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| {
            PluginError::generic(format!(
                "token '{}' could not generate an {spec} key: {}",
                backend.token().label(),
                describe(&e)
            ))
        })?;
    let made = key::find_key(
        session,
        backend.token(),
        &Pkcs11Uri {
            object: Some(label.clone()),
            id: Some(id.clone()),
            ..uri.carry_query()
        },
    )?;
    let choice = token::module_for(uri, &ctx.config)?;
    eprintln!(
        "created {spec} key '{label}' (id {}) on token '{}'",
        hex::encode(&id),
        backend.token().label()
    );
    println!(
        "{}",
        made.uri(backend.token(), &printable_query(uri, &choice))
    );
    Ok(())
}

fn parse_hex(h: &str) -> Result<Vec<u8>> {
    let digits = h.strip_prefix("0x").unwrap_or(h);
    let problem = match hex::decode(digits) {
        Ok(id) if !id.is_empty() => return Ok(id),
        Ok(_) => "is empty".to_owned(),
        Err(hex::FromHexError::OddLength) => "has an odd number of hex digits".to_owned(),
        Err(hex::FromHexError::InvalidHexCharacter { c, index }) => {
            // The crate names a byte; everything before it is hex, so a character starts there.
            let c = digits
                .get(index..)
                .and_then(|s| s.chars().next())
                .unwrap_or(c);
            format!("has '{c}', which is not a hex digit")
        }
        Err(e) => e.to_string(),
    };
    Err(PluginError::validation(format!(
        "--id '{h}' {problem}; give the object id as hex digits, two per byte (e.g. 0a1b)"
    )))
}

fn import_certificate(key_id: String, chain_file: PathBuf, module: Option<PathBuf>) -> Result<()> {
    let (ctx, uri) = context(key_id, module)?;
    let backend = TokenSession::open(&ctx, uri, true)?;
    let key = backend.find()?;
    let certs = chain::load_file(&chain_file)?;
    let leaf_index = certs
        .iter()
        .position(|c| c.public_key().is_ok_and(|p| p == key.public))
        .ok_or_else(|| {
            PluginError::validation(format!(
                "no certificate in {} carries the public key of '{}' ({}); issue one for this \
                 key first (notation-pkcs11 certificate csr / ca issue)",
                chain_file.display(),
                key.object.label,
                key.public.describe()
            ))
        })?;
    let session = backend.session();
    for (i, cert) in certs.iter().enumerate() {
        let is_leaf = i == leaf_index;
        let present = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Value(cert.der().to_vec()),
            ])
            .map_err(|e| {
                PluginError::generic(format!("cannot search certificates: {}", describe(&e)))
            })?;
        if !present.is_empty() {
            eprintln!("already on the token: {}", cert.subject());
            continue;
        }
        session
            .create_object(&certificate_template(cert, is_leaf.then_some(&key.object))?)
            .map_err(|e| {
                PluginError::generic(format!(
                    "token '{}' refused the certificate '{}': {}",
                    backend.token().label(),
                    cert.subject(),
                    describe(&e)
                ))
            })?;
        eprintln!(
            "imported {}: {}",
            if is_leaf { "leaf" } else { "CA" },
            cert.subject()
        );
    }
    Ok(())
}

fn certificate_template(
    cert: &Certificate,
    key: Option<&key::KeyObject>,
) -> Result<Vec<Attribute>> {
    let tbs = &cert.x509().tbs_certificate;
    let enc =
        |e: der::Error| PluginError::generic(format!("cannot encode certificate fields: {e}"));
    let mut t = vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Subject(der::Encode::to_der(&tbs.subject).map_err(enc)?),
        Attribute::Issuer(der::Encode::to_der(&tbs.issuer).map_err(enc)?),
        Attribute::SerialNumber(der::Encode::to_der(&tbs.serial_number).map_err(enc)?),
        Attribute::Value(cert.der().to_vec()),
    ];
    match key {
        Some(k) => {
            t.push(Attribute::Label(k.label.as_bytes().to_vec()));
            t.push(Attribute::Id(k.id.clone()));
        }
        None => t.push(Attribute::Label(cert.subject().as_bytes().to_vec())),
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_hex_digits_two_per_byte() {
        assert_eq!(parse_hex("0a1B").unwrap(), [0x0a, 0x1b]);
        assert_eq!(parse_hex("0x00ff").unwrap(), [0x00, 0xff]);
        let refused = |h: &str| parse_hex(h).unwrap_err().message;
        assert_eq!(
            refused("abc"),
            "--id 'abc' has an odd number of hex digits; give the object id as hex digits, two \
             per byte (e.g. 0a1b)"
        );
        assert!(refused("0x").starts_with("--id '0x' is empty; "));
        assert!(refused("").starts_with("--id '' is empty; "));
        // Not a panic on a character of two bytes, which a slice of two bytes would cut.
        assert!(refused("aéb").starts_with("--id 'aéb' has 'é', which is not a hex digit; "));
        // u8::from_str_radix would read "+a" as 10.
        assert!(refused("+a").starts_with("--id '+a' has '+', which is not a hex digit; "));
    }
}
