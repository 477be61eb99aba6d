//! `notation-aws-kms create-key`: creates an asymmetric SIGN_VERIFY KMS key of one of the six
//! Notary key specs, optionally with an alias and tags, and prints the keyId to use with
//! `notation key add`.

use aws_sdk_kms::types::{KeySpec as KmsKeySpec, KeyUsageType, Tag};
use clap::Subcommand;
use plugin_protocol::{Context, PluginError, Result};

use crate::aws::{self, Session};
use crate::INFO;

/// The operator commands, run by the shared runner.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// create a KMS signing key (--spec, --alias, --tag) and print its keyId
    ///
    /// Create an AWS KMS signing key for notation and print its keyId
    CreateKey(Args),
}

impl plugin_protocol::operator::OperatorCommands for Cmd {
    fn run(self) -> Result<()> {
        match self {
            Cmd::CreateKey(args) => run(args).map(|key_id| println!("{key_id}")),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Key spec: RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521
    /// (or the Notary names RSA-2048 ... EC-521)
    #[arg(long)]
    spec: String,
    /// Alias to create for the key (alias/ is added when missing); printed as the keyId
    #[arg(long)]
    alias: Option<String>,
    /// Tag KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = plugin_protocol::operator::key_value)]
    tags: Vec<(String, String)>,
    /// Key description
    #[arg(long)]
    description: Option<String>,
    /// pluginConfig KEY=VALUE (repeatable): region, profile, endpoint_url
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = plugin_protocol::operator::key_value)]
    plugin_config: Vec<(String, String)>,
}

/// The KMS key spec for `--spec`.
fn kms_spec(s: &str) -> Result<KmsKeySpec> {
    let spec = match s.to_ascii_uppercase().replace('-', "_").as_str() {
        "RSA_2048" => KmsKeySpec::Rsa2048,
        "RSA_3072" => KmsKeySpec::Rsa3072,
        "RSA_4096" => KmsKeySpec::Rsa4096,
        "ECC_NIST_P256" | "EC_256" => KmsKeySpec::EccNistP256,
        "ECC_NIST_P384" | "EC_384" => KmsKeySpec::EccNistP384,
        "ECC_NIST_P521" | "EC_521" => KmsKeySpec::EccNistP521,
        _ => {
            return Err(PluginError::validation(format!(
                "--spec '{s}' is not a key spec notation can sign with; use RSA_2048, RSA_3072, \
                 RSA_4096, ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521"
            )))
        }
    };
    Ok(spec)
}

fn run(args: Args) -> Result<String> {
    let spec = kms_spec(&args.spec)?;
    let ctx = Context::without_key(&INFO, Some(args.plugin_config.iter().cloned().collect()))?;
    let session = Session::open(&ctx, None)?;
    let kms = session.kms();
    let mut tags = Vec::new();
    for (k, v) in &args.tags {
        tags.push(
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| PluginError::validation(format!("invalid tag {k}={v}: {e}")))?,
        );
    }
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| "notation signing key (notation-aws-kms)".to_owned());
    let call = aws::call(
        "KMS",
        "CreateKey",
        format!("a new {} key", spec.as_str()),
        &session.kms_endpoint,
        "kms:CreateKey (and kms:TagResource for tags)",
    );
    let out = session.call(&ctx, &call, || {
        kms.create_key()
            .key_spec(spec.clone())
            .key_usage(KeyUsageType::SignVerify)
            .description(description.clone())
            .set_tags((!tags.is_empty()).then(|| tags.clone()))
            .send()
    })?;
    let meta = out
        .key_metadata()
        .ok_or_else(|| PluginError::generic("KMS CreateKey returned no key metadata"))?;
    let arn = meta.arn().unwrap_or(meta.key_id()).to_owned();
    eprintln!("created KMS key {arn} ({}, SIGN_VERIFY)", spec.as_str());
    let Some(alias) = args.alias else {
        return Ok(arn);
    };
    let alias = if alias.starts_with("alias/") {
        alias
    } else {
        format!("alias/{alias}")
    };
    let call = aws::call(
        "KMS",
        "CreateAlias",
        format!("alias '{alias}'"),
        &session.kms_endpoint,
        "kms:CreateAlias on the alias and the key",
    );
    session
        .call(&ctx, &call, || {
            kms.create_alias()
                .alias_name(alias.clone())
                .target_key_id(arn.clone())
                .send()
        })
        .map_err(|e| e.context(format_args!("key {arn} was created but its alias was not")))?;
    eprintln!("created alias {alias}");
    Ok(alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names() {
        assert_eq!(kms_spec("RSA-3072").unwrap(), KmsKeySpec::Rsa3072);
        assert_eq!(kms_spec("ecc_nist_p521").unwrap(), KmsKeySpec::EccNistP521);
        assert_eq!(kms_spec("EC-256").unwrap(), KmsKeySpec::EccNistP256);
        let e = kms_spec("ECC_SECG_P256K1").unwrap_err();
        assert!(e.message.contains("ECC_SECG_P256K1"));
    }
}
