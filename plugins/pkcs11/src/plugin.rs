//! The `Backend` of the shared crate for PKCS#11: a session on the token the URI names.

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::session::Session;
use plugin_protocol::{
    Backend, BackendSignature, ConfigKey, Context, KeySpec, PluginError, PluginInfo, PublicKey,
    Result, Retry,
};

use crate::key::{self, KeyObject, Signer};
use crate::token::{self, describe, TokenSlot};
use crate::uri::Pkcs11Uri;

pub static INFO: PluginInfo = PluginInfo {
    name: "pkcs11",
    description: "Signs with keys held in PKCS#11 tokens and HSMs (SoftHSM2, YubiKey YKCS11, network HSMs)",
    version: env!("CARGO_PKG_VERSION"),
    url: "https://github.com/notation-plugins/notation-plugins/tree/main/plugins/pkcs11",
    key_id_help: "an RFC 7512 PKCS#11 URI naming a token and a private key, e.g. \
        pkcs11:token=signing;object=release-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin",
    config_keys: &[
        ConfigKey {
            name: "module_path",
            env: &["PKCS11_MODULE_PATH"],
            help: "path of the PKCS#11 module (.so) when the key URI has no module-path/module-name",
            secret: false,
        },
        ConfigKey {
            name: "pin_file",
            env: &["PKCS11_PIN_FILE"],
            help: "file holding the user PIN (mode 0600) when the key URI has no pin-source",
            secret: false,
        },
        ConfigKey {
            name: "pin",
            env: &["PKCS11_PIN"],
            help: "the user PIN itself (prefer pin_file or pin-source; never put it in pluginConfig)",
            secret: true,
        },
    ],
    operator_commands: &[
        ("tokens", "list the tokens a PKCS#11 module offers (slot, label, serial, flags)"),
        ("keys", "list the private keys on a token with the exact URI to use as key id"),
        ("generate-key", "create a signing key pair of a Notary key spec on a token"),
        ("import-certificate", "store a certificate chain on the token next to a key"),
    ],
    chain_sources_help: "the token (a certificate object with the key's CKA_ID, imported with \
        notation-pkcs11 import-certificate)",
};

/// A private key and its public key.
pub struct SigningKey {
    pub object: KeyObject,
    pub public: PublicKey,
}

/// One invocation's session on the token. Fields drop in order: session before module.
pub struct Pkcs11Backend {
    session: Session,
    token: TokenSlot,
    uri: Pkcs11Uri,
    module: Pkcs11,
}

impl Pkcs11Backend {
    /// Loads the module, selects the token and logs in (read-write for the operator commands).
    pub fn open(ctx: &Context, read_write: bool) -> Result<Self> {
        let uri = Pkcs11Uri::parse(&ctx.key_id)?;
        let choice = token::module_for(&uri, &ctx.config)?;
        let (module, token, session) = open_with_retry(ctx, &uri, &choice, read_write)?;
        tracing::debug!(token = token.label(), slot = token.slot.id(), "logged in");
        Ok(Self {
            session,
            token,
            uri,
            module,
        })
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn token(&self) -> &TokenSlot {
        &self.token
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    pub fn find(&self) -> Result<SigningKey> {
        let object = key::find_key(&self.session, &self.token, &self.uri)?;
        let public = key::public_key(&self.session, &object)?;
        Ok(SigningKey { object, public })
    }

    fn signer(&self, spec: KeySpec) -> Result<Signer> {
        let mechanisms: Vec<MechanismType> = self
            .module
            .get_mechanism_list(self.token.slot)
            .map_err(|e| {
                PluginError::generic(format!(
                    "cannot list the mechanisms of token '{}': {}",
                    self.token.label(),
                    describe(&e)
                ))
            })?;
        key::signer(&mechanisms, spec, self.token.label())
    }
}

/// Loads the module, selects the token and logs in. A token that is missing, or a login
/// answered CKR_GENERAL_ERROR / CKR_USER_PIN_NOT_INITIALIZED, may only be busy: SoftHSM shows a
/// token another process is rewriting that way. Those transient failures are retried a few
/// times, quickly (a typo costs well under a second), each time with the module loaded afresh:
/// dropping it unloads the library, and SoftHSM reads its token store again only when loaded
/// and initialised again. Nothing here spends a PIN attempt (a wrong PIN is never transient).
fn open_with_retry(
    ctx: &Context,
    uri: &Pkcs11Uri,
    choice: &token::ModuleChoice,
    read_write: bool,
) -> Result<(Pkcs11, TokenSlot, Session)> {
    const DELAYS_MS: [u64; 4] = [20, 50, 120, 250];
    let mut attempt = 0;
    loop {
        let module = token::load(choice)?;
        let opened = token::select(&module, uri, choice).and_then(|token| {
            let session = token::open(&module, &token, uri, &ctx.config, read_write)?;
            Ok((token, session))
        });
        match opened {
            Ok((token, session)) => return Ok((module, token, session)),
            Err(e) if e.retry == Retry::Transient && attempt < DELAYS_MS.len() => {
                drop(module);
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::from(d.subsec_nanos() ^ std::process::id()) % 20)
                    .unwrap_or(0);
                let delay = std::time::Duration::from_millis(DELAYS_MS[attempt] + jitter);
                ctx.deadline.check("looking for the token")?;
                tracing::debug!(attempt, ?delay, error = %e.message, "token busy; retrying");
                std::thread::sleep(delay.min(ctx.deadline.remaining()));
                attempt += 1;
            }
            Err(mut e) => {
                e.retry = Retry::Never;
                return Err(e);
            }
        }
    }
}

impl Backend for Pkcs11Backend {
    type Key = SigningKey;

    fn key_name(key_id: &str) -> String {
        crate::uri::redact(key_id)
    }

    fn connect(ctx: &Context) -> Result<Self> {
        Self::open(ctx, false)
    }

    fn resolve_key(&mut self, _ctx: &Context) -> Result<(SigningKey, PublicKey)> {
        let key = self.find()?;
        let public = key.public.clone();
        Ok((key, public))
    }

    fn sign_digest(
        &mut self,
        ctx: &Context,
        key: &SigningKey,
        spec: KeySpec,
        digest: &[u8],
    ) -> Result<BackendSignature> {
        match self.signer(spec)? {
            signer @ Signer::Digest(_) => {
                key::sign(&self.session, &key.object, &signer, &[], digest)
            }
            Signer::Message(_) => Err(PluginError::generic(format!(
                "token '{}' can only hash-and-sign for key '{}', and no message was given",
                self.token.label(),
                ctx.key_name
            ))),
        }
    }

    fn sign_message(
        &mut self,
        _ctx: &Context,
        key: &SigningKey,
        spec: KeySpec,
        message: &[u8],
        digest: &[u8],
    ) -> Result<BackendSignature> {
        let signer = self.signer(spec)?;
        key::sign(&self.session, &key.object, &signer, message, digest)
    }

    fn certificate_chain(&mut self, _ctx: &Context, key: &SigningKey) -> Result<Vec<Vec<u8>>> {
        key::chain_on_token(&self.session, &key.object, &key.public)
    }
}
