//! `issue-certificate`: a certificate for a Transit key from Vault's own PKI engine, stored on
//! the key version so that signing finds it with no further configuration.
//!
//! Transit makes a CSR signed by the key (`<transit>/keys/<name>/csr`, subject from a template),
//! the PKI engine signs it with `<pki>/sign-verbatim` (keyUsage digitalSignature, EKU codeSigning
//! only), the chain is checked against notation's rules and stored on the key version with
//! `set-certificate` (PEM blocks separated by newlines).

use std::path::PathBuf;

use clap::Subcommand;
use der::EncodePem;
use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::{Backend, Context, PluginError, Result};
use serde_json::{json, Value};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::name::Name;

use crate::backend::VaultBackend;
use crate::http::Method;
use crate::transit;
use plugin_protocol::config::CA_CERTS;

/// The operator commands, run by the shared runner.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// have Vault's PKI engine certify a Transit key version and store the chain on it
    ///
    /// Have Vault's PKI engine issue a code-signing certificate for a Transit key version
    /// (transit CSR -> pki sign-verbatim) and store the chain on that key version
    IssueCertificate(Args),
}

impl plugin_protocol::operator::OperatorCommands for Cmd {
    fn run(self) -> Result<()> {
        match self {
            Cmd::IssueCertificate(args) => run(args),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The key id, as given to `notation key add --id` (`name` or `name:version`)
    #[arg(long)]
    key_id: String,
    /// Subject distinguished name of the certificate, e.g. "CN=release signer,O=Example"
    #[arg(long)]
    subject: String,
    /// Mount path of the PKI secrets engine
    #[arg(long, default_value = "pki")]
    pki_mount: String,
    /// A PKI role to sign with (`<pki>/sign-verbatim/<role>`); none by default
    #[arg(long)]
    pki_role: Option<String>,
    /// Validity of the certificate (a Vault duration, e.g. 8760h); capped by the mount's max TTL
    #[arg(long, default_value = "8760h")]
    ttl: String,
    /// Configuration, as `notation key add --plugin-config KEY=VALUE` (repeatable)
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = plugin_protocol::operator::key_value)]
    plugin_config: Vec<(String, String)>,
    /// Also write the chain (PEM, leaf first) to this file
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run(args: Args) -> Result<()> {
    let pki = args.pki_mount.trim().trim_matches('/').to_owned();
    transit::check_mount(&pki, "--pki-mount")?;
    if let Some(role) = &args.pki_role {
        transit::check_mount(role, "--pki-role")?;
    }
    let subject = plugin_protocol::dn::parse_subject(&args.subject)?;
    if let Some(warning) = plugin_protocol::identity::leaf_subject_warning(&subject) {
        eprintln!("{warning}");
    }
    let config: plugin_protocol::contract::PluginConfig =
        args.plugin_config.iter().cloned().collect();
    let (ctx, key_ref) = Context::for_key(&crate::INFO, args.key_id.clone(), Some(config))?;
    let mut backend = VaultBackend::connect(&ctx, key_ref)?;
    backend.check_chain_file = false;
    let (key, public) = backend.resolve_key(&ctx)?;
    let vault = &backend.vault;

    // 1. Transit signs a CSR for the key version; the template only carries the subject.
    let template = template_csr(subject)?;
    let csr = transit::csr(vault, &key.key, key.version, &template)?;

    // 2. The PKI engine signs it verbatim, as a code-signing leaf.
    let path = match &args.pki_role {
        Some(role) => format!("{pki}/sign-verbatim/{role}"),
        None => format!("{pki}/sign-verbatim"),
    };
    let doing = format!("having PKI mount '{pki}' sign the CSR (POST {path})");
    let body = json!({
        "csr": csr,
        "key_usage": ["DigitalSignature"],
        "ext_key_usage": ["CodeSigning"],
        "ttl": args.ttl,
    });
    let resp = vault
        .call(Method::Post, &path, Some(&body), &doing)
        .map_err(|e| vault.explain_denied(e, &path, "update", false))?;
    let data = resp.get("data").cloned().unwrap_or(Value::Null);
    let mut pems = Vec::new();
    if let Some(leaf) = data.get("certificate").and_then(Value::as_str) {
        pems.push(leaf.to_owned());
    }
    match data.get("ca_chain").and_then(Value::as_array) {
        Some(ca_chain) if !ca_chain.is_empty() => {
            pems.extend(ca_chain.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => pems.extend(
            data.get("issuing_ca")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
    }
    if pems.is_empty() {
        return Err(PluginError::generic(format!(
            "Vault answered {doing} without a certificate"
        )));
    }
    let mut certs: Vec<Certificate> = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        for cert in chain::parse_pem_or_der(pem.as_bytes(), &format!("PKI certificate #{}", i + 1))?
        {
            if !certs.iter().any(|c| c.der() == cert.der()) {
                certs.push(cert);
            }
        }
    }
    // The PKI mount may not hand out its root (an intermediate mount): ca_certs completes it.
    if let Some((path, source)) = ctx.config.path(&CA_CERTS) {
        let extra = chain::load_file(&path).map_err(|e| e.context(format_args!("{source}")))?;
        for cert in extra {
            if !certs.iter().any(|c| c.der() == cert.der()) {
                certs.push(cert);
            }
        }
    }

    // 3. Only a chain notation accepts is stored.
    let chain = chain::build(
        certs,
        Some((ctx.key_name(), &public)),
        std::time::SystemTime::now(),
    )
    .map_err(|e| {
        e.context(format_args!(
            "the chain PKI mount '{pki}' issued cannot be used with notation (nothing was stored)"
        ))
    })?;
    let bundle: Vec<String> = chain.iter().map(|c| c.to_pem().trim().to_owned()).collect();
    let bundle = bundle.join("\n");
    transit::set_certificate(vault, &key.key, key.version, &bundle)?;

    if let Some(out) = &args.out {
        std::fs::write(out, format!("{bundle}\n"))
            .map_err(|e| PluginError::generic(format!("cannot write {}: {e}", out.display())))?;
    }
    let subject = |c: Option<&Certificate>| c.map(|c| c.subject().to_owned()).unwrap_or_default();
    eprintln!(
        "stored a {}-certificate chain (leaf '{}', root '{}') on version {} of {}",
        chain.len(),
        subject(chain.first()),
        subject(chain.last()),
        key.version,
        key.key.place()
    );
    Ok(())
}

/// A CSR carrying only `subject`, signed by a throwaway key: Transit replaces the key and the
/// signature with its own.
fn template_csr(subject: Name) -> Result<String> {
    let throwaway = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let encode = |e: &dyn std::fmt::Display| {
        PluginError::generic(format!("cannot build the CSR template: {e}"))
    };
    let builder = RequestBuilder::new(subject, &throwaway).map_err(|e| encode(&e))?;
    let req = builder
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| encode(&e))?;
    req.to_pem(der::pem::LineEnding::LF).map_err(|e| encode(&e))
}
