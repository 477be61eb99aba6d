//! The certificates in a Key Vault certificate's backing secret: base64 PKCS#12
//! (`application/x-pkcs12`, password-less as Key Vault stores it) or PEM
//! (`application/x-pem-file`: the private key and the certificates). Only the certificates are
//! kept; the secret's text is zeroized when dropped.

use base64::Engine as _;
use plugin_protocol::{chain, PluginError, Result};
use zeroize::Zeroizing;

pub fn certificates(
    value: Option<Zeroizing<String>>,
    content_type: Option<&str>,
    source: &str,
) -> Result<Vec<Vec<u8>>> {
    let value = value.ok_or_else(|| {
        PluginError::generic(format!("Key Vault returned {source} without a value"))
    })?;
    let text = value.trim();
    let pem = content_type == Some("application/x-pem-file") || text.starts_with("-----BEGIN");
    if pem {
        let certs = chain::parse_pem_or_der(text.as_bytes(), source)?;
        return Ok(certs.into_iter().map(|c| c.der().to_vec()).collect());
    }
    let der = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| not_a_chain(source, content_type))?,
    );
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&der, "").map_err(|e| {
        PluginError::validation(format!(
            "{source} is not a password-less PKCS#12 file ({e}); store the certificate with \
             content type application/x-pkcs12 or application/x-pem-file, or set pluginConfig \
             ca_certs"
        ))
    })?;
    let certs: Vec<Vec<u8>> = archive
        .certs
        .iter()
        .map(|bag| bag.cert.as_der().to_vec())
        .collect();
    if certs.is_empty() {
        return Err(PluginError::validation(format!(
            "{source} holds no certificate; set pluginConfig ca_certs or certificate_chain"
        )));
    }
    Ok(certs)
}

fn not_a_chain(source: &str, content_type: Option<&str>) -> PluginError {
    PluginError::validation(format!(
        "{source} (content type {}) is neither PEM nor base64 PKCS#12, so it cannot hold the \
         certificate chain; set pluginConfig ca_certs or certificate_chain",
        content_type.unwrap_or("not set")
    ))
}
