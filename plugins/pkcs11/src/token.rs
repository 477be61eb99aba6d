//! Loading the PKCS#11 module, choosing the token a URI names, and logging in.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::RawAuthPin;
use plugin_protocol::{Config, PluginError, Result};

use crate::pin::{self, Pin};
use crate::plugin::MODULE_PATH;
use crate::uri::Pkcs11Uri;

/// Directories searched for `module-name=<name>` (as `<name>.so`, `lib<name>.so`).
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64/pkcs11",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib/pkcs11",
    "/usr/local/lib/softhsm",
    "/usr/local/lib",
];

/// Where the module path came from, for messages.
pub struct ModuleChoice {
    pub path: PathBuf,
    pub source: String,
}

/// The module named by the URI (`module-path`, then `module-name`), else by `module_path`
/// (pluginConfig, `NOTATION_PKCS11_MODULE_PATH`, `PKCS11_MODULE_PATH`).
pub fn module_for(uri: &Pkcs11Uri, config: &Config) -> Result<ModuleChoice> {
    if let Some(path) = &uri.module_path {
        return Ok(ModuleChoice {
            path: PathBuf::from(path),
            source: "the key URI's module-path".into(),
        });
    }
    if let Some(name) = &uri.module_name {
        let candidates: Vec<PathBuf> = MODULE_DIRS
            .iter()
            .flat_map(|d| {
                [
                    Path::new(d).join(format!("{name}.so")),
                    Path::new(d).join(format!("lib{name}.so")),
                ]
            })
            .collect();
        return candidates
            .iter()
            .find(|p| p.is_file())
            .map(|p| ModuleChoice {
                path: p.clone(),
                source: format!("module-name={name}"),
            })
            .ok_or_else(|| {
                PluginError::validation(format!(
                    "no PKCS#11 module named '{name}' (module-name) in {}; give its full path \
                     with module-path= in the key URI instead",
                    MODULE_DIRS.join(", ")
                ))
            });
    }
    match config.path(&MODULE_PATH) {
        Some((path, source)) => Ok(ModuleChoice { path, source }),
        None => Err(PluginError::validation(
            "no PKCS#11 module: add ?module-path=/path/to/module.so to the key URI, set \
             pluginConfig module_path, or set PKCS11_MODULE_PATH (SoftHSM2: \
             /usr/lib/softhsm/libsofthsm2.so)",
        )),
    }
}

/// Loads and initialises a module.
pub fn load(module: &ModuleChoice) -> Result<Pkcs11> {
    let shown = module.path.display();
    match std::fs::metadata(&module.path) {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) => {
            return Err(PluginError::validation(format!(
                "the PKCS#11 module {shown} ({}) is {}, not a shared library file; give the \
                 path of the module's .so file",
                module.source,
                if meta.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                }
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PluginError::validation(format!(
                "the PKCS#11 module {shown} ({}) does not exist",
                module.source
            )))
        }
        Err(e) => {
            return Err(PluginError::validation(format!(
                "cannot read the PKCS#11 module {shown} ({}): {e}",
                module.source
            )))
        }
    }
    let ctx = Pkcs11::new(&module.path).map_err(|e| {
        PluginError::validation(format!(
            "cannot load the PKCS#11 module {shown} ({}): {}",
            module.source,
            describe(&e)
        ))
    })?;
    // A second key of the same module in one process (`ca issue --public-key-of`) finds the
    // library already initialised: that state is shared, so it is fine.
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        other => other,
    }
    .map_err(|e| {
        PluginError::generic(format!(
            "the PKCS#11 module {shown} failed to initialise: {}{}",
            describe(&e),
            softhsm_hint(module)
        ))
    })?;
    Ok(ctx)
}

fn is_softhsm(module: &ModuleChoice) -> bool {
    module
        .path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("softhsm"))
}

/// Why SoftHSM2 most often fails to initialise: its configuration file.
fn softhsm_hint(module: &ModuleChoice) -> String {
    if !is_softhsm(module) {
        return String::new();
    }
    match std::env::var_os("SOFTHSM2_CONF") {
        None => "; SoftHSM2 reads its configuration from SOFTHSM2_CONF (else \
                 /etc/softhsm/softhsm2.conf): set SOFTHSM2_CONF to the softhsm2.conf whose \
                 directories.tokendir holds your tokens"
            .into(),
        Some(conf) if !std::path::Path::new(&conf).is_file() => format!(
            "; SOFTHSM2_CONF is {}, which is not a readable file: point it at your softhsm2.conf",
            std::path::Path::new(&conf).display()
        ),
        Some(conf) => format!(
            "; check SOFTHSM2_CONF ({}): its directories.tokendir must exist and be readable",
            std::path::Path::new(&conf).display()
        ),
    }
}

/// An exclusive lock, per SoftHSM2 token store, held from loading the module until the session
/// ends. SoftHSM2 rewrites `token.object` on every C_Login (it clears CKF_USER_PIN_COUNT_LOW)
/// and releases the file's lock before its stdio buffer reaches the file, so another process
/// loading the module or logging in at that instant reads an empty token file: the token is
/// then missing ("no token matches") or C_Login answers CKR_GENERAL_ERROR. Plugin processes on
/// one store take turns instead (each holds it for a few milliseconds). Other modules keep
/// their own state and are not serialised. Within one process the lock is shared: a command
/// that opens two keys of one store (`ca issue --public-key-of`) takes it once, since a second
/// `flock` on another open file would wait for the first forever.
pub struct StoreLock(#[allow(dead_code)] std::sync::Arc<std::fs::File>);

/// The store locks this process holds, by lock file path.
static HELD: std::sync::Mutex<Vec<(std::path::PathBuf, std::sync::Weak<std::fs::File>)>> =
    std::sync::Mutex::new(Vec::new());

impl StoreLock {
    pub fn acquire(module: &ModuleChoice) -> Result<Option<Self>> {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::OpenOptionsExt;
        if !is_softhsm(module) {
            return Ok(None);
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        module.path.hash(&mut h);
        std::env::var_os("SOFTHSM2_CONF").hash(&mut h);
        let dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!(
            "notation-pkcs11-{}-{:016x}.lock",
            std::os::unix::fs::MetadataExt::uid(
                &std::fs::metadata("/proc/self")
                    .map_err(|e| PluginError::generic(format!("cannot find the user id: {e}")))?
            ),
            h.finish()
        ));
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|(_, w)| w.strong_count() > 0);
        if let Some(file) = held
            .iter()
            .find(|(p, _)| *p == path)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(Some(Self(file)));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path);
        let Ok(file) = file else {
            // No lock file possible (read-only /tmp): sign without taking turns.
            tracing::debug!(path = %path.display(), "no SoftHSM store lock");
            return Ok(None);
        };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            PluginError::generic(format!(
                "cannot lock {} to take turns on the SoftHSM2 token store: {e}",
                path.display()
            ))
        })?;
        let file = std::sync::Arc::new(file);
        held.push((path, std::sync::Arc::downgrade(&file)));
        Ok(Some(Self(file)))
    }
}

/// A token present in a slot, with the facts the URI can select on.
pub struct TokenSlot {
    pub slot: Slot,
    pub info: TokenInfo,
    pub slot_description: String,
    pub slot_manufacturer: String,
}

impl TokenSlot {
    pub fn label(&self) -> &str {
        self.info.label().trim_end()
    }

    /// The URI that selects exactly this token (label and serial), with the query carried over.
    pub fn uri(&self, query: &Pkcs11Uri) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.label().to_owned()),
            serial: Some(self.info.serial_number().trim_end().to_owned()),
            ..query.carry_query()
        }
    }

    fn matches(&self, uri: &Pkcs11Uri) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w == have.trim_end())
        };
        eq(&uri.token, self.info.label())
            && eq(&uri.manufacturer, self.info.manufacturer_id())
            && eq(&uri.serial, self.info.serial_number())
            && eq(&uri.model, self.info.model())
            && eq(&uri.slot_description, &self.slot_description)
            && eq(&uri.slot_manufacturer, &self.slot_manufacturer)
            && uri.slot_id.is_none_or(|id| id == self.slot.id())
    }
}

/// Every slot holding an initialised token.
pub fn tokens(ctx: &Pkcs11) -> Result<Vec<TokenSlot>> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| PluginError::generic(format!("cannot list slots: {}", describe(&e))))?;
    let mut out = Vec::new();
    for slot in slots {
        let info = match ctx.get_token_info(slot) {
            // SoftHSM always offers one empty slot for a new token: not a token to sign with.
            Ok(info) if !info.token_initialized() => continue,
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(slot = slot.id(), error = %e, "skipping slot");
                continue;
            }
        };
        let (slot_description, slot_manufacturer) = ctx
            .get_slot_info(slot)
            .map(|s| {
                (
                    s.slot_description().trim_end().to_owned(),
                    s.manufacturer_id().trim_end().to_owned(),
                )
            })
            .unwrap_or_default();
        out.push(TokenSlot {
            slot,
            info,
            slot_description,
            slot_manufacturer,
        });
    }
    Ok(out)
}

/// The one token `uri` selects: none or several is a VALIDATION_ERROR listing what is there.
pub fn select(ctx: &Pkcs11, uri: &Pkcs11Uri, module: &ModuleChoice) -> Result<TokenSlot> {
    check_library(ctx, uri)?;
    let all = tokens(ctx)?;
    let listing = |list: &[&TokenSlot]| -> String {
        list.iter()
            .map(|t| format!("\n  {}", t.uri(uri)))
            .collect::<String>()
    };
    if !uri.selects_token() {
        let refs: Vec<&TokenSlot> = all.iter().collect();
        return Err(PluginError::validation(format!(
            "the key URI names no token: add token=<label> (or serial=, slot-id=). Tokens in {}:{}",
            module.path.display(),
            if refs.is_empty() {
                " none".to_owned()
            } else {
                listing(&refs)
            }
        )));
    }
    let mut matching: Vec<TokenSlot> = Vec::new();
    let mut others: Vec<&TokenSlot> = Vec::new();
    for t in &all {
        if t.matches(uri) {
            matching.push(TokenSlot {
                slot: t.slot,
                info: t.info.clone(),
                slot_description: t.slot_description.clone(),
                slot_manufacturer: t.slot_manufacturer.clone(),
            });
        } else {
            others.push(t);
        }
    }
    match matching.len() {
        1 => Ok(matching.pop().expect("one token")),
        0 => Err(PluginError::validation(format!(
            "no token matches {} in the PKCS#11 module {}; tokens present:{}",
            token_part(uri),
            module.path.display(),
            if others.is_empty() {
                " none (is the token plugged in, or SOFTHSM2_CONF pointing at its directory?)"
                    .to_owned()
            } else {
                listing(&others)
            }
        ))
        .with_retry(plugin_protocol::Retry::Transient)),
        _ => {
            let refs: Vec<&TokenSlot> = matching.iter().collect();
            Err(PluginError::validation(format!(
                "{} matches {} tokens; name one of them exactly:{}",
                token_part(uri),
                matching.len(),
                listing(&refs)
            )))
        }
    }
}

fn check_library(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<()> {
    if uri.library_manufacturer.is_none()
        && uri.library_description.is_none()
        && uri.library_version.is_none()
    {
        return Ok(());
    }
    let info = ctx
        .get_library_info()
        .map_err(|e| PluginError::generic(format!("C_GetInfo failed: {}", describe(&e))))?;
    let version = format!(
        "{}.{}",
        info.library_version().major(),
        info.library_version().minor()
    );
    let checks = [
        (
            "library-manufacturer",
            &uri.library_manufacturer,
            info.manufacturer_id().trim_end().to_owned(),
        ),
        (
            "library-description",
            &uri.library_description,
            info.library_description().trim_end().to_owned(),
        ),
        ("library-version", &uri.library_version, version),
    ];
    for (name, want, have) in checks {
        if let Some(want) = want {
            if *want != have {
                return Err(PluginError::validation(format!(
                    "the PKCS#11 module is '{have}' but the key URI asks for {name}={want}"
                )));
            }
        }
    }
    Ok(())
}

/// The token-selecting attributes of `uri`, for messages.
fn token_part(uri: &Pkcs11Uri) -> String {
    let only = Pkcs11Uri {
        token: uri.token.clone(),
        manufacturer: uri.manufacturer.clone(),
        serial: uri.serial.clone(),
        model: uri.model.clone(),
        slot_id: uri.slot_id,
        slot_description: uri.slot_description.clone(),
        slot_manufacturer: uri.slot_manufacturer.clone(),
        ..Pkcs11Uri::default()
    };
    format!("'{only}'")
}

/// Opens a session on `token` (no login yet).
pub fn open_session(ctx: &Pkcs11, token: &TokenSlot, read_write: bool) -> Result<Session> {
    if read_write {
        ctx.open_rw_session(token.slot)
    } else {
        ctx.open_ro_session(token.slot)
    }
    .map_err(|e| {
        PluginError::generic(format!(
            "cannot open a session on token '{}': {}",
            token.label(),
            describe(&e)
        ))
    })
}

/// Opens a session on `token` and logs the user in when the token needs it (the operator
/// commands' path). See [`login`].
pub fn open(
    ctx: &Pkcs11,
    token: &TokenSlot,
    uri: &Pkcs11Uri,
    config: &Config,
    read_write: bool,
) -> Result<Session> {
    let session = open_session(ctx, token, read_write)?;
    login(ctx, token, session, uri, config).map(|(session, _pin)| session)
}

/// Logs the user in on `session` when the token needs it, calling C_Login exactly once, and
/// returns the PIN it used (zeroized on drop), kept for the keys that need a context-specific
/// login before each signature. See [`log_in_as`] for the answers.
pub fn login(
    ctx: &Pkcs11,
    token: &TokenSlot,
    session: Session,
    uri: &Pkcs11Uri,
    config: &Config,
) -> Result<(Session, Option<Pin>)> {
    if !token.info.login_required() {
        return Ok((session, None));
    }
    let label = token.label();
    let pin = pin::find(uri, config)?;
    if pin.is_none() && !token.info.protected_authentication_path() {
        return Err(PluginError::validation(format!(
            "token '{label}' needs a PIN: add pin-source=file:/path/to/pin-file to the key URI's \
             query, or set pluginConfig pin_file (or NOTATION_PKCS11_PIN_FILE), or set \
             NOTATION_PKCS11_PIN / PKCS11_PIN"
        )));
    }
    log_in_as(ctx, token, &session, UserType::User, pin.as_ref())?;
    Ok((session, pin))
}

/// One C_Login as `user` (the user, or the context-specific login a CKA_ALWAYS_AUTHENTICATE key
/// needs after C_SignInit) with `pin`, or through the token's protected authentication path
/// when there is none. A wrong PIN is ACCESS_DENIED and reports the token's remaining-tries
/// flags; a login whose outcome is unknown (CKR_GENERAL_ERROR, CKR_DEVICE_ERROR, ...) is never
/// tried again either: the token may have counted it against the PIN.
pub fn log_in_as(
    ctx: &Pkcs11,
    token: &TokenSlot,
    session: &Session,
    user: UserType,
    pin: Option<&Pin>,
) -> Result<()> {
    let label = token.label();
    let result = match pin {
        Some(pin) => {
            let raw = RawAuthPin::new(Box::new(pin.bytes.to_vec()));
            session.login_with_raw(user, &raw)
        }
        None => session.login(user, None),
    };
    let source = pin
        .map(|p| p.source.clone())
        .unwrap_or_else(|| "the token's protected authentication path".into());
    let not_retried = "; the plugin does not log in again after an answer like this (the token \
                       may have counted it against the PIN): check the token and sign again";
    let context = if matches!(user, UserType::ContextSpecific) {
        " in the context-specific login the key needs before every signature \
         (CKA_ALWAYS_AUTHENTICATE)"
    } else {
        ""
    };
    match result {
        Ok(()) => Ok(()),
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) if matches!(user, UserType::User) => {
            Ok(())
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            let remaining = ctx
                .get_token_info(token.slot)
                .map(|i| tries_left(&i))
                .unwrap_or_default();
            Err(PluginError::access_denied(format!(
                "wrong PIN for token '{label}' (from {source}){context}; the plugin does not \
                 retry, so the token counted one failed attempt{remaining}"
            ))
            .with_metadata("token", label))
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(PluginError::access_denied(format!(
            "the user PIN of token '{label}' is blocked after too many wrong PINs; unblock it \
             with the PUK or the security officer PIN (e.g. ykman piv access unblock-pin, \
             pkcs11-tool --init-pin, softhsm2-util)"
        ))
        .with_metadata("token", label)),
        Err(CkError::Pkcs11(RvError::PinLenRange, _)) => Err(PluginError::access_denied(format!(
            "the PIN from {source} has a length token '{label}' does not accept ({}..{} \
             characters)",
            token.info.min_pin_length(),
            token.info.max_pin_length()
        ))),
        Err(CkError::Pkcs11(RvError::UserPinNotInitialized, _)) => {
            Err(PluginError::validation(format!(
                "token '{label}' answered C_Login with CKR_USER_PIN_NOT_INITIALIZED: it has no \
                 user PIN yet; initialise it first (softhsm2-util --init-token, or pkcs11-tool \
                 --init-pin with the security officer PIN){not_retried}"
            )))
        }
        Err(CkError::Pkcs11(RvError::PinExpired, _)) => Err(PluginError::access_denied(format!(
            "the user PIN of token '{label}' has expired; change it before signing"
        ))),
        Err(e) => Err(PluginError::generic(format!(
            "login to token '{label}'{context} failed: {}{not_retried}",
            describe(&e)
        ))),
    }
}

/// What the token's flags say about the remaining PIN tries.
fn tries_left(info: &TokenInfo) -> String {
    if info.user_pin_locked() {
        "; the token now reports the PIN as locked".into()
    } else if info.user_pin_final_try() {
        "; the token reports ONE try left before the PIN locks".into()
    } else if info.user_pin_count_low() {
        "; the token reports that few tries remain before the PIN locks".into()
    } else {
        String::new()
    }
}

/// A cryptoki error in words (the PKCS#11 return value name, e.g. CKR_KEY_TYPE_INCONSISTENT).
pub fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} failed: {rv} ({rv:?})"),
        other => other.to_string(),
    }
}
