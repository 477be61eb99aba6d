//! The `Backend` of the shared crate for PKCS#11: a session on the token the URI names.

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use plugin_protocol::blocking::SharedHandle;
use plugin_protocol::config::Backoff;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_protocol::{
    Backend, BackendSignature, ConfigKey, Context, ErrorCode, KeySpec, Payload, PluginError,
    PluginInfo, PublicKey, Result, Retry,
};

use crate::key::{self, KeyObject, Signer};
use crate::pin::Pin;
use crate::token::{self, describe, TokenSlot};
use crate::uri::Pkcs11Uri;

pub const MODULE_PATH: ConfigKey = ConfigKey::new(
    "module_path",
    &["PKCS11_MODULE_PATH"],
    "path of the PKCS#11 module (.so) when the key URI has no module-path/module-name",
);

pub const PIN_FILE: ConfigKey = ConfigKey::new(
    "pin_file",
    &["PKCS11_PIN_FILE"],
    "file holding the user PIN (mode 0600) when the key URI has no pin-source",
);

pub const PIN: ConfigKey = ConfigKey::new_secret(
    "pin",
    &["PKCS11_PIN"],
    "the user PIN itself (prefer pin_file or pin-source; never put it in pluginConfig)",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "pkcs11",
    "Signs with keys held in PKCS#11 tokens and HSMs (SoftHSM2, YubiKey YKCS11, network HSMs)",
    [MODULE_PATH, PIN_FILE, PIN],
    "the token (a certificate object with the key's CKA_ID, imported with \
     notation-pkcs11 import-certificate)",
);

/// A private key and its public key.
#[derive(Clone)]
pub struct SigningKey {
    pub object: KeyObject,
    pub public: PublicKey,
}

/// One logged-in session on the token a URI names. Fields drop in order: session before
/// module. The operator commands use it directly; the protocol goes through [`Pkcs11Backend`].
pub struct TokenSession {
    session: Session,
    /// The PIN the user login used (zeroized on drop), for the context-specific login of a key
    /// with CKA_ALWAYS_AUTHENTICATE.
    pin: Option<Pin>,
    token: TokenSlot,
    uri: Pkcs11Uri,
    module: Pkcs11,
    /// Held until the session ends: see [`token::StoreLock`].
    _store_lock: Option<token::StoreLock>,
}

impl TokenSession {
    /// Loads the module, selects the token and logs in (read-write for the operator commands),
    /// all under the invocation's deadline: a module that hangs in C_Initialize, C_OpenSession
    /// or C_Login (a network HSM whose link died) ends in TIMEOUT.
    pub fn open(ctx: &Context, uri: Pkcs11Uri, read_write: bool) -> Result<Self> {
        let choice = token::module_for(&uri, &ctx.config)?;
        let (config, deadline) = (ctx.config.clone(), ctx.deadline);
        let step = Step::default();
        let at = step.clone();
        let opened = ctx.run_blocking("opening the PKCS#11 token", move || {
            open_token(&config, &deadline, &uri, &choice, read_write, &at).map(|parts| (parts, uri))
        });
        let ((module, token, (session, pin), store_lock), uri) =
            opened.map_err(|e| step.explain(e))?;
        // A signal during a later call (C_Sign on a stalled HSM) ends this invocation's
        // sessions with C_Finalize (a network HSM then frees them at once); the runner bounds
        // how long that may take.
        let closer = module.clone();
        plugin_protocol::on_interrupt(move || {
            let _ = closer.finalize();
        });
        tracing::debug!(token = token.label(), slot = token.slot.id(), "logged in");
        Ok(Self {
            session,
            pin,
            token,
            uri,
            module,
            _store_lock: store_lock,
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

    /// Signs with `object` on this session (see [`key::sign`]); a key that needs a
    /// context-specific login gets it with the PIN of the user login.
    fn sign(
        &self,
        object: &KeyObject,
        signer: &Signer,
        message: &[u8],
        digest: &[u8],
    ) -> Result<BackendSignature> {
        let login = |session: &Session| {
            token::log_in_as(
                &self.module,
                &self.token,
                session,
                UserType::ContextSpecific,
                self.pin.as_ref(),
            )
        };
        key::sign(&self.session, object, signer, message, digest, &login)
    }

    /// The mechanism for `spec`; `multi_part` for a key that needs a context-specific login.
    fn signer(&self, spec: KeySpec, multi_part: bool) -> Result<Signer> {
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
        key::signer(&mechanisms, spec, self.token.label(), multi_part)
    }
}

/// Which PKCS#11 call the worker is in, so that a TIMEOUT names the call that hung.
#[derive(Clone, Default)]
struct Step(Arc<Mutex<&'static str>>);

impl Step {
    fn enter(&self, call: &'static str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = call;
    }
    fn explain(&self, mut e: PluginError) -> PluginError {
        let call = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        if e.code == ErrorCode::Timeout && !call.is_empty() {
            e.message = format!(
                "{} (the PKCS#11 module did not return from {call}: is the token or network HSM \
                 reachable?)",
                e.message
            );
        }
        e
    }
}

type Opened = (
    Pkcs11,
    TokenSlot,
    (Session, Option<Pin>),
    Option<token::StoreLock>,
);

/// Loads the module, selects the token, opens a session and logs in once. Only the token
/// opening is retried: a token that is missing may just be busy (another process is rewriting
/// SoftHSM's token file), so it is looked for again a few times, quickly, each time with the
/// module loaded afresh (SoftHSM reads its token store only when initialised). C_Login is
/// called at most once per invocation, whatever it answers: a login whose outcome is unknown
/// (CKR_GENERAL_ERROR, a dropped link) may have been counted against the PIN.
fn open_token(
    config: &plugin_protocol::Config,
    deadline: &plugin_protocol::Deadline,
    uri: &Pkcs11Uri,
    choice: &token::ModuleChoice,
    read_write: bool,
    step: &Step,
) -> Result<Opened> {
    // A token that is not there yet or busy (another process holds it) is looked for again
    // quickly; C_Login is never retried.
    const BUSY: Backoff = Backoff {
        base: Duration::from_millis(15),
        max: Duration::from_millis(250),
        attempts: 5,
    };
    step.enter("waiting for the token store lock");
    let store_lock = token::StoreLock::acquire(choice)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        step.enter("C_GetFunctionList/C_Initialize");
        let module = token::load(choice)?;
        step.enter("C_GetSlotList/C_GetTokenInfo");
        let opened = token::select(&module, uri, choice).and_then(|token| {
            step.enter("C_OpenSession");
            let session = token::open_session(&module, &token, read_write)?;
            Ok((token, session))
        });
        match opened {
            Ok((token, session)) => {
                step.enter("C_Login");
                let session = token::login(&module, &token, session, uri, config)?;
                step.enter("");
                return Ok((module, token, session, store_lock));
            }
            Err(mut e) => {
                drop(module);
                if e.retry != Retry::Transient {
                    e.retry = Retry::Never;
                    return Err(e);
                }
                let delay = BUSY.after_failure(deadline, "looking for the token", attempt, e)?;
                tracing::debug!(attempt, ?delay, "token busy; retrying");
                std::thread::sleep(delay);
            }
        }
    }
}

/// The protocol's backend: a [`TokenSession`] used only from worker threads, each call under
/// the invocation's deadline (find, read the chain, sign: any of them may hang on a dead HSM).
pub struct Pkcs11Backend {
    inner: SharedHandle<TokenSession>,
}

impl Pkcs11Backend {
    /// Runs `call` on the session under the deadline; a TIMEOUT names the PKCS#11 call.
    fn with_session<T, F>(&self, ctx: &Context, doing: &str, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&TokenSession) -> Result<T> + Send + 'static,
    {
        self.inner
            .run(&ctx.deadline, doing, move |session| call(session))
    }
}

impl Backend for Pkcs11Backend {
    type KeyRef = Pkcs11Uri;
    type Key = SigningKey;

    fn connect(ctx: &Context, uri: Pkcs11Uri) -> Result<Self> {
        let session = TokenSession::open(ctx, uri, false)?;
        Ok(Self {
            inner: SharedHandle::new(session),
        })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(SigningKey, PublicKey)> {
        let doing = "finding the key on the PKCS#11 token (C_FindObjects)";
        self.with_session(ctx, doing, |s| s.find())
            .map(|key| (key.clone(), key.public))
    }

    fn sign(
        &mut self,
        ctx: &Context,
        key: &SigningKey,
        payload: &Payload,
    ) -> Result<BackendSignature> {
        let (object, spec) = (key.object.clone(), payload.spec);
        let (message, digest) = (payload.message.to_vec(), payload.digest.to_vec());
        self.with_session(ctx, "signing on the PKCS#11 token (C_Sign)", move |s| {
            let signer = s.signer(spec, object.always_authenticate)?;
            s.sign(&object, &signer, &message, &digest)
        })
    }

    fn certificate_chain(&mut self, ctx: &Context, key: &SigningKey) -> Result<Vec<Vec<u8>>> {
        let (object, public) = (key.object.clone(), key.public.clone());
        self.with_session(
            ctx,
            "reading the certificate chain on the PKCS#11 token (C_FindObjects)",
            move |s| key::chain_on_token(&s.session, &object, &public),
        )
    }
}
