//! The requests and responses of contract 1.0, with the field names notation uses.
//! Unknown fields are ignored (forward compatibility); missing required fields are reported by
//! name when a request is decoded (see [`crate::runner`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{HashAlgorithm, KeySpec, SigningAlgorithm};

/// The contract version this suite implements.
pub const CONTRACT_VERSION: &str = "1.0";

/// `pluginConfig`: the `--plugin-config KEY=VALUE` pairs `notation key add` stored with the key,
/// sent with every request (see [`crate::Config`] for how a plugin reads them).
pub type PluginConfig = BTreeMap<String, String>;

/// The commands of contract 1.0, as notation passes them in argv\[1\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `get-plugin-metadata`: static facts, no backend.
    GetPluginMetadata,
    /// `describe-key`: the key spec of a key id.
    DescribeKey,
    /// `generate-signature`: a raw signature and the certificate chain.
    GenerateSignature,
    /// `generate-envelope`: only for envelope plugins; ours refuse it.
    GenerateEnvelope,
    /// `verify-signature`: only for verification plugins; ours refuse it.
    VerifySignature,
}

impl Command {
    /// Every command, for tests that try them all.
    pub const ALL: [Command; 5] = [
        Self::GetPluginMetadata,
        Self::DescribeKey,
        Self::GenerateSignature,
        Self::GenerateEnvelope,
        Self::VerifySignature,
    ];
    /// The name in argv\[1\], e.g. `describe-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetPluginMetadata => "get-plugin-metadata",
            Self::DescribeKey => "describe-key",
            Self::GenerateSignature => "generate-signature",
            Self::GenerateEnvelope => "generate-envelope",
            Self::VerifySignature => "verify-signature",
        }
    }
    /// The command argv\[1\] names, or `None` for anything else (an operator command).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Capabilities a plugin can advertise in get-plugin-metadata.
pub mod capability {
    /// Signs a payload notation built (generate-signature): what every plugin of the suite does.
    pub const SIGNATURE_GENERATOR_RAW: &str = "SIGNATURE_GENERATOR.RAW";
    /// Builds the whole signature envelope (generate-envelope).
    pub const SIGNATURE_GENERATOR_ENVELOPE: &str = "SIGNATURE_GENERATOR.ENVELOPE";
    /// Checks the signer against the trust policy's identities (verify-signature).
    pub const VERIFY_TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";
    /// Checks revocation (verify-signature).
    pub const VERIFY_REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";
    /// Every capability contract 1.0 defines; the checker refuses any other.
    pub const ALL: [&str; 4] = [
        SIGNATURE_GENERATOR_RAW,
        SIGNATURE_GENERATOR_ENVELOPE,
        VERIFY_TRUSTED_IDENTITY,
        VERIFY_REVOCATION_CHECK,
    ];
}

/// get-plugin-metadata's request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMetadataRequest {
    /// Usually absent or empty: `notation plugin install` and `list` send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

/// get-plugin-metadata's response: static data from [`crate::PluginInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMetadataResponse {
    /// Must equal the plugin's directory name under `notation/plugins/`.
    pub name: String,
    /// One line for `notation plugin list`; non-empty.
    pub description: String,
    /// Strict SemVer without a leading `v`: install refuses a downgrade by it.
    pub version: String,
    /// Where the plugin's documentation lives; non-empty.
    pub url: String,
    /// Must contain [`CONTRACT_VERSION`].
    pub supported_contract_versions: Vec<String>,
    /// Names from [`capability`].
    pub capabilities: Vec<String>,
}

/// describe-key's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyRequest {
    /// `1.0`; another major version is UNSUPPORTED_CONTRACT_VERSION.
    pub contract_version: String,
    /// The `--id` given to `notation key add`, in the backend's own syntax.
    pub key_id: String,
    /// The key's pluginConfig; absent and empty mean the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

/// describe-key's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyResponse {
    /// The request's key id byte for byte (an alias is not canonicalised).
    pub key_id: String,
    /// Derived from the key's public key; notation signs with this spec from then on.
    pub key_spec: KeySpec,
}

/// generate-signature's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureRequest {
    /// `1.0`; another major version is UNSUPPORTED_CONTRACT_VERSION.
    pub contract_version: String,
    /// The key id as in describe-key.
    pub key_id: String,
    /// What describe-key answered; a key whose spec changed since is refused.
    pub key_spec: KeySpec,
    /// Must be the key spec's hash ([`KeySpec::hash_algorithm`]).
    pub hash_algorithm: HashAlgorithm,
    /// Base64 (standard alphabet, padded) of the bytes to sign.
    pub payload: String,
    /// The key's pluginConfig; absent and empty mean the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

/// generate-signature's response; every field is required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureResponse {
    /// The request's key id byte for byte.
    pub key_id: String,
    /// Base64 of the signature bytes (PSS, or fixed-width ECDSA r‖s).
    pub signature: String,
    /// The key spec's algorithm; notation checks it against the leaf certificate's key.
    pub signing_algorithm: SigningAlgorithm,
    /// Base64 DER certificates, leaf first, root last.
    pub certificate_chain: Vec<String>,
}

/// generate-envelope's request. The suite's plugins sign raw and refuse the command; the type
/// keeps the wire format complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeRequest {
    /// `1.0`.
    pub contract_version: String,
    /// The key id as in describe-key.
    pub key_id: String,
    /// Media type of the payload (an OCI descriptor).
    pub payload_type: String,
    /// `application/jose+json` or `application/cose`.
    pub signature_envelope_type: String,
    /// Base64 of the payload.
    pub payload: String,
    /// Signature expiry asked with `notation sign --expiry`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_duration_in_seconds: Option<u64>,
    /// The key's pluginConfig; absent and empty mean the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

/// generate-envelope's response (no plugin of the suite sends one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeResponse {
    /// Base64 of the whole envelope.
    pub signature_envelope: String,
    /// The request's envelope type.
    pub signature_envelope_type: String,
    /// Annotations notation adds to the signature manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// verify-signature's request; notation sends it only for signatures an envelope plugin
/// marked, so a raw-signature plugin never gets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureRequest {
    /// `1.0`.
    pub contract_version: String,
    /// What notation read from the signature.
    pub signature: SignatureInfo,
    /// The parts of the trust policy the plugin is asked to enforce.
    pub trust_policy: TrustPolicyInfo,
    /// The key's pluginConfig; absent and empty mean the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

/// The signature a verify-signature request is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureInfo {
    /// The signature's signed critical attributes.
    pub critical_attributes: CriticalAttributes,
    /// Critical attributes notation did not process, left to the plugin.
    #[serde(default)]
    pub unprocessed_attributes: Vec<String>,
    /// Base64 DER certificates, leaf first.
    pub certificate_chain: Vec<String>,
}

/// The signed attributes every verifier must understand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalAttributes {
    /// Media type of the signed payload.
    pub content_type: String,
    /// `notary.x509` or `notary.x509.signingAuthority`.
    pub signing_scheme: String,
    /// RFC 3339 time after which the signature is expired, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// RFC 3339 signing time, for the `notary.x509.signingAuthority` scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentic_signing_time: Option<String>,
    /// Further critical attributes by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_attributes: Option<BTreeMap<String, serde_json::Value>>,
}

/// What the trust policy asks of a verification plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyInfo {
    /// `*` or `x509.subject: <DN>` entries.
    #[serde(default)]
    pub trusted_identities: Vec<String>,
    /// The verification capabilities the policy asks of the plugin.
    #[serde(default)]
    pub signature_verification: Vec<String>,
}

/// verify-signature's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureResponse {
    /// One result per capability asked for, by capability name.
    pub verification_results: BTreeMap<String, VerificationResult>,
    /// The unprocessed attributes the plugin did process.
    #[serde(default)]
    pub processed_attributes: Vec<String>,
}

/// The outcome of one verification capability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResult {
    /// Whether the check passed.
    pub success: bool,
    /// Why it failed, shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored_and_names_match_notation() {
        let req: GenerateSignatureRequest = serde_json::from_str(
            r#"{"contractVersion":"1.0","keyId":"k","keySpec":"EC-384","hashAlgorithm":"SHA-384",
                "payload":"aGk=","pluginConfig":{"a":"b"},"someFutureField":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(req.key_spec, KeySpec::Ec384);
        assert_eq!(req.plugin_config.unwrap()["a"], "b");
        let resp = GenerateSignatureResponse {
            key_id: "k".into(),
            signature: "c2ln".into(),
            signing_algorithm: SigningAlgorithm::EcdsaSha384,
            certificate_chain: vec!["Y2VydA==".into()],
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"keyId":"k","signature":"c2ln","signingAlgorithm":"ECDSA-SHA-384","certificateChain":["Y2VydA=="]}"#
        );
    }

    #[test]
    fn missing_field_is_named() {
        let err = serde_json::from_str::<DescribeKeyRequest>(r#"{"contractVersion":"1.0"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("keyId"), "{err}");
    }
}
