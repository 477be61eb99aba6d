//! The requests and responses of contract 1.0, with the field names notation uses.
//! Unknown fields are ignored (forward compatibility); missing required fields are reported by
//! name when a request is decoded (see [`crate::runner`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{HashAlgorithm, KeySpec, SigningAlgorithm};

/// The contract version this suite implements.
pub const CONTRACT_VERSION: &str = "1.0";

pub type PluginConfig = BTreeMap<String, String>;

/// The commands of contract 1.0, as notation passes them in argv[1].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    GetPluginMetadata,
    DescribeKey,
    GenerateSignature,
    GenerateEnvelope,
    VerifySignature,
}

impl Command {
    pub const ALL: [Command; 5] = [
        Self::GetPluginMetadata,
        Self::DescribeKey,
        Self::GenerateSignature,
        Self::GenerateEnvelope,
        Self::VerifySignature,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetPluginMetadata => "get-plugin-metadata",
            Self::DescribeKey => "describe-key",
            Self::GenerateSignature => "generate-signature",
            Self::GenerateEnvelope => "generate-envelope",
            Self::VerifySignature => "verify-signature",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Capabilities a plugin can advertise.
pub mod capability {
    pub const SIGNATURE_GENERATOR_RAW: &str = "SIGNATURE_GENERATOR.RAW";
    pub const SIGNATURE_GENERATOR_ENVELOPE: &str = "SIGNATURE_GENERATOR.ENVELOPE";
    pub const VERIFY_TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";
    pub const VERIFY_REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";
    pub const ALL: [&str; 4] = [
        SIGNATURE_GENERATOR_RAW,
        SIGNATURE_GENERATOR_ENVELOPE,
        VERIFY_TRUSTED_IDENTITY,
        VERIFY_REVOCATION_CHECK,
    ];
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMetadataRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMetadataResponse {
    pub name: String,
    pub description: String,
    pub version: String,
    pub url: String,
    pub supported_contract_versions: Vec<String>,
    pub capabilities: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyRequest {
    pub contract_version: String,
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyResponse {
    pub key_id: String,
    pub key_spec: KeySpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureRequest {
    pub contract_version: String,
    pub key_id: String,
    pub key_spec: KeySpec,
    pub hash_algorithm: HashAlgorithm,
    /// Base64 (standard alphabet, padded) of the bytes to sign.
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureResponse {
    pub key_id: String,
    /// Base64 of the signature bytes (PSS, or fixed-width ECDSA r‖s).
    pub signature: String,
    pub signing_algorithm: SigningAlgorithm,
    /// Base64 DER certificates, leaf first, root last.
    pub certificate_chain: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeRequest {
    pub contract_version: String,
    pub key_id: String,
    pub payload_type: String,
    pub signature_envelope_type: String,
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_duration_in_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeResponse {
    pub signature_envelope: String,
    pub signature_envelope_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureRequest {
    pub contract_version: String,
    pub signature: SignatureInfo,
    pub trust_policy: TrustPolicyInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<PluginConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureInfo {
    pub critical_attributes: CriticalAttributes,
    #[serde(default)]
    pub unprocessed_attributes: Vec<String>,
    pub certificate_chain: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalAttributes {
    pub content_type: String,
    pub signing_scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentic_signing_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_attributes: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyInfo {
    #[serde(default)]
    pub trusted_identities: Vec<String>,
    #[serde(default)]
    pub signature_verification: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureResponse {
    pub verification_results: BTreeMap<String, VerificationResult>,
    #[serde(default)]
    pub processed_attributes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResult {
    pub success: bool,
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
