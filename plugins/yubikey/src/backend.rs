//! The `Backend` of the shared crate for a YubiKey's PIV application: the slot's metadata for
//! the key, the PIN when the slot's policy needs it, the card's ECDSA or raw RSA over an
//! EMSA-PSS encoding made by the shared crate. Every card call runs under the invocation's
//! deadline: a card that stops answering, or waits for a touch that never comes, ends in
//! TIMEOUT.

use der_yubikey::Encode;
use plugin_protocol::blocking::SharedHandle;
use plugin_protocol::{
    Backend, BackendSignature, Context, ErrorCode, KeySpec, Payload, PluginError, PublicKey, Result,
};
use yubikey::piv::{self, AlgorithmId, Origin};
use yubikey::{PinPolicy, TouchPolicy, YubiKey};

use crate::device::{self, Attached};
use crate::metadata::{self, Answer};
use crate::slot::{KeyRef, Slot};
use crate::tty::Tty;

/// What the card says about the key in a slot.
#[derive(Clone, Debug)]
pub struct SlotKey {
    pub slot: Slot,
    pub algorithm: AlgorithmId,
    pub public: PublicKey,
    /// PIN and touch policy, from the slot's metadata (firmware 5.3 and later).
    pub policy: Option<(PinPolicy, TouchPolicy)>,
    pub origin: Option<Origin>,
}

impl SlotKey {
    /// Whether signing needs the PIN: the slot's PIN policy, or, without metadata, the PIV
    /// default (every slot but 9e).
    pub fn needs_pin(&self) -> bool {
        match self.policy {
            Some((pin, _)) => pin != PinPolicy::Never,
            None => self.slot.id() != 0x9e,
        }
    }

    /// Whether signing may wait for a touch (policy always, or cached and not touched lately).
    pub fn may_need_touch(&self) -> bool {
        matches!(
            self.policy,
            Some((_, TouchPolicy::Always | TouchPolicy::Cached))
        )
    }
}

/// Reads the key in `slot` of the YubiKey on `attached`'s reader: its metadata (firmware 5.3
/// and later), else the public key of the slot's certificate. A key notation cannot use is
/// refused naming what it is.
pub fn read_slot(yk: &mut YubiKey, attached: &Attached, slot: Slot) -> Result<SlotKey> {
    let serial = attached.serial;
    let empty = || {
        PluginError::validation(format!(
            "slot {slot} of YubiKey {serial} holds no key; make one with notation-yubikey \
             generate-key --slot {:02x} --algorithm EC-256 (or see notation-yubikey list)",
            slot.id()
        ))
    };
    match metadata::read(&attached.reader, slot.id())? {
        Answer::Found(meta) => {
            refuse_unusable(meta.algorithm, slot, serial)?;
            Ok(SlotKey {
                slot,
                algorithm: meta.algorithm,
                public: meta.public.ok_or_else(empty)?,
                policy: meta.policy,
                origin: meta.origin,
            })
        }
        Answer::Empty => Err(empty()),
        // Firmware before 5.3 has no metadata: the slot's certificate says what the key is.
        Answer::NotSupported => {
            let der = slot_certificate(yk, slot)?.ok_or_else(empty)?;
            let cert = plugin_protocol::Certificate::from_der(&der, "the slot's certificate")?;
            let public = cert.public_key()?;
            let algorithm = piv_algorithm(public.key_spec()).ok_or_else(|| {
                plugin_protocol::public_key::unsupported_key(
                    "a P-521 key (a PIV card cannot hold one)",
                )
            })?;
            Ok(SlotKey {
                slot,
                algorithm,
                public,
                policy: None,
                origin: None,
            })
        }
    }
}

/// The PIV algorithm of a key spec; `None` for EC-521, which PIV does not have.
pub fn piv_algorithm(spec: KeySpec) -> Option<AlgorithmId> {
    Some(match spec {
        KeySpec::Rsa2048 => AlgorithmId::Rsa2048,
        KeySpec::Rsa3072 => AlgorithmId::Rsa3072,
        KeySpec::Rsa4096 => AlgorithmId::Rsa4096,
        KeySpec::Ec256 => AlgorithmId::EccP256,
        KeySpec::Ec384 => AlgorithmId::EccP384,
        KeySpec::Ec521 => return None,
    })
}

/// Refuses what notation cannot sign with, naming it.
fn refuse_unusable(algorithm: AlgorithmId, slot: Slot, serial: u32) -> Result<()> {
    let what = match algorithm {
        AlgorithmId::Rsa1024 => "an RSA-1024 key (notation needs RSA-2048 or larger)",
        AlgorithmId::Ed25519 => "an Ed25519 key (notation signs with RSA or ECDSA only)",
        AlgorithmId::X25519 => "an X25519 key, which only agrees keys and cannot sign",
        _ => return Ok(()),
    };
    Err(plugin_protocol::public_key::unsupported_key(format!(
        "slot {slot} of YubiKey {serial} holds {what}"
    )))
}

/// The DER certificate in `slot`, or `None` when the slot has none.
pub fn slot_certificate(yk: &mut YubiKey, slot: Slot) -> Result<Option<Vec<u8>>> {
    match yubikey::Certificate::read(yk, slot.piv()) {
        Ok(cert) => cert.cert.to_der().map(Some).map_err(|e| {
            PluginError::generic(format!("the certificate in slot {slot} is not DER: {e}"))
        }),
        Err(yubikey::Error::InvalidObject) => Ok(None),
        Err(e) => Err(device::describe(
            e,
            &format!("reading the certificate of slot {slot}"),
        )),
    }
}

/// The protocol's backend: the YubiKey the key id names, used from worker threads under the
/// invocation's deadline.
pub struct YubiKeyBackend {
    card: SharedHandle<YubiKey>,
    key: KeyRef,
    attached: Attached,
}

impl YubiKeyBackend {
    fn with_card<T, F>(&self, ctx: &Context, doing: &str, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut YubiKey) -> Result<T> + Send + 'static,
    {
        let reader = self.attached.reader.clone();
        let what = doing.to_owned();
        self.card.run(&ctx.deadline, doing, move |yk| {
            call(yk).map_err(|e| device::explain_removal(e, &reader, &what))
        })
    }
}

impl Backend for YubiKeyBackend {
    type KeyRef = KeyRef;
    type Key = SlotKey;

    fn connect(ctx: &Context, key: KeyRef) -> Result<Self> {
        let (attached, yk) =
            ctx.run_blocking("opening the YubiKey", move || device::open(key.serial))?;
        tracing::debug!(serial = attached.serial, version = %attached.version, "YubiKey opened");
        Ok(Self {
            card: SharedHandle::new(yk),
            key,
            attached,
        })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(SlotKey, PublicKey)> {
        let (slot, attached) = (self.key.slot, self.attached.clone());
        let key = self.with_card(
            ctx,
            "reading the slot's metadata on the YubiKey",
            move |yk| read_slot(yk, &attached, slot),
        )?;
        let public = key.public.clone();
        Ok((key, public))
    }

    fn sign(
        &mut self,
        ctx: &Context,
        key: &SlotKey,
        payload: &Payload,
    ) -> Result<BackendSignature> {
        let (spec, digest) = (payload.spec, payload.digest);
        let serial = self.attached.serial;
        let slot = key.slot;
        let pin = if key.needs_pin() {
            let pin = crate::pin::find(&ctx.config, &ctx.deadline, serial)?;
            Some(pin.ok_or_else(|| {
                PluginError::new(
                    ErrorCode::AccessDenied,
                    format!(
                        "slot {slot} of YubiKey {serial} needs the PIN to sign{} and no PIN is \
                         configured: set pluginConfig pin_file (a file holding the PIN, mode \
                         0600) or the environment variable YUBIKEY_PIN, or run notation from a \
                         terminal to be asked for it",
                        match key.policy {
                            Some((PinPolicy::Always, _)) => " (PIN policy: always)",
                            _ => "",
                        }
                    ),
                )
            })?)
        } else {
            None
        };
        let touch = key.may_need_touch();
        let input = if spec.is_rsa() {
            plugin_protocol::pss::encode(spec.hash_algorithm(), digest, spec.bits())?
        } else {
            digest.to_vec()
        };
        let algorithm = key.algorithm;
        let signed = self.with_card(ctx, "signing on the YubiKey", move |yk| {
            if let Some(pin) = &pin {
                yk.verify_pin(&pin.bytes)
                    .map_err(|e| crate::pin::refused(e, serial, &pin.source))?;
            }
            if touch {
                if let Some(mut tty) = Tty::open() {
                    tty.say(&format!(
                        "Touch your YubiKey {serial} to sign with slot {slot} (it blinks)."
                    ));
                }
            }
            piv::sign_data(yk, &input, algorithm, slot.piv()).map_err(|e| match e {
                yubikey::Error::AuthenticationError if touch => PluginError::timeout(format!(
                    "slot {slot} of YubiKey {serial} needs a touch to sign (touch policy) and \
                     none came before the YubiKey gave up waiting; sign again and touch the \
                     key when it blinks"
                )),
                yubikey::Error::AuthenticationError => PluginError::access_denied(format!(
                    "YubiKey {serial} refused to sign with slot {slot}: the PIN was not verified \
                     (set pin_file or YUBIKEY_PIN)"
                )),
                other => device::describe(other, &format!("signing with slot {slot}")),
            })
        });
        let signature = signed.map_err(|mut e| {
            if e.code == ErrorCode::Timeout && touch && !e.message.contains("touch") {
                e.message = format!(
                    "{} (slot {slot} of YubiKey {serial} needs a touch to sign: was the key \
                     touched when it blinked?)",
                    e.message
                );
            }
            e
        })?;
        Ok(if spec.is_rsa() {
            // The card's raw RSA output, as long as the modulus.
            let len = spec.bits().div_ceil(8);
            let mut sig = vec![0u8; len.saturating_sub(signature.len())];
            sig.extend_from_slice(&signature);
            BackendSignature::RsaPss(sig)
        } else {
            BackendSignature::EcdsaDer(signature.to_vec())
        })
    }

    fn certificate_chain(&mut self, ctx: &Context, key: &SlotKey) -> Result<Vec<Vec<u8>>> {
        let slot = key.slot;
        self.with_card(
            ctx,
            "reading the slot's certificate on the YubiKey",
            move |yk| Ok(slot_certificate(yk, slot)?.into_iter().collect()),
        )
    }
}
