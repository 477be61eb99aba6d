//! Operator commands beyond the protocol: `list`, `generate-key`, `import-certificate`,
//! `attest`, `verify-attestation`. They print for people (stdout) and report errors as
//! `error: ...` on stderr with exit code 1 (2 for usage errors). Card calls run under
//! `timeout_seconds` (default 30 s), as the protocol's do.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Subcommand, ValueEnum};
use der_yubikey::Encode;
use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::secret::{FileOwner, Secret};
use plugin_protocol::{Context, KeySpec, PluginError, PublicKey, Result};
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, Origin, SlotAlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use crate::attestation;
use crate::backend::{read_slot, slot_certificate};
use crate::device::{self, describe, Attached};
use crate::metadata::Answer;
use crate::slot::{KeyRef, Slot};
use crate::INFO;

/// The operator commands, run by the shared runner.
#[derive(Subcommand)]
pub enum Cmd {
    /// list attached YubiKeys and their PIV keys, with the key id for notation key add
    ///
    /// List every attached YubiKey (serial, firmware) and each slot holding a key: key spec, PIN
    /// and touch policy, origin, certificate subject and expiry, and the key id to use.
    List {
        /// Only the YubiKey with this serial.
        #[arg(long)]
        serial: Option<u32>,
    },
    /// generate a key pair of a Notary key spec in a slot
    ///
    /// Generate a key pair in a slot, with the PIN-protected management key when the YubiKey
    /// has one, else the management key from --management-key-file or YUBIKEY_MANAGEMENT_KEY.
    GenerateKey {
        #[command(flatten)]
        device: DeviceArgs,
        /// Key spec: EC-256, EC-384, RSA-2048, RSA-3072 or RSA-4096 (RSA-3072/4096 need
        /// firmware 5.7).
        #[arg(long)]
        algorithm: KeySpec,
        #[arg(long, value_enum, default_value = "default")]
        pin_policy: PinPolicyArg,
        #[arg(long, value_enum, default_value = "default")]
        touch_policy: TouchPolicyArg,
        /// Replace a key already in the slot (it is gone for good).
        #[arg(long)]
        force: bool,
        /// Also write the public key (SPKI PEM) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        management: ManagementArgs,
    },
    /// store the certificate of a slot's key in the slot
    ///
    /// Store a certificate for the slot's key in the slot (the leaf of the chain notation gets;
    /// complete it with pluginConfig ca_certs). Refused when the certificate is for another key.
    ImportCertificate {
        #[command(flatten)]
        device: DeviceArgs,
        /// PEM or DER file; the certificate whose public key is the slot's key is stored.
        file: PathBuf,
        #[command(flatten)]
        management: ManagementArgs,
    },
    /// fetch a slot's attestation (and the device's f9 certificate) and check it
    ///
    /// Fetch the attestation of a key generated in a slot and the device's f9 certificate,
    /// write them as PEM, and check them against Yubico's roots (or --root).
    Attest {
        #[command(flatten)]
        device: DeviceArgs,
        /// Directory for attestation-<slot>.pem and f9-<serial>.pem (default: current).
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// check an attestation against Yubico's roots or a root you name
    ///
    /// Check an attestation certificate and the f9 certificate that issued it, offline.
    VerifyAttestation {
        /// The attestation certificate (PEM or DER).
        #[arg(long)]
        attestation: PathBuf,
        /// The device's f9 certificate (PEM or DER).
        #[arg(long)]
        f9: PathBuf,
        /// Also check that this certificate (the slot's signing certificate) is for the
        /// attested key.
        #[arg(long)]
        certificate: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
    },
}

#[derive(clap::Args)]
pub struct DeviceArgs {
    /// The slot: 9a, 9c, 9d, 9e, 82-95 or a name (signature, retired1...).
    #[arg(long)]
    slot: String,
    /// The YubiKey's serial (needed when several are attached).
    #[arg(long)]
    serial: Option<u32>,
}

#[derive(clap::Args)]
pub struct ManagementArgs {
    /// File holding the management key as hex (mode 0600), when the YubiKey has no
    /// PIN-protected one; default: the environment variable YUBIKEY_MANAGEMENT_KEY.
    #[arg(long)]
    management_key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TrustArgs {
    /// Trust this root (PEM bundle) instead of Yubico's published PIV attestation roots.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Intermediate CA certificates (PEM bundle) between the f9 certificate and the root.
    #[arg(long)]
    intermediates: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PinPolicyArg {
    Default,
    Never,
    Once,
    Always,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TouchPolicyArg {
    Default,
    Never,
    Always,
    Cached,
}

impl plugin_protocol::operator::OperatorCommands for Cmd {
    fn run(self) -> Result<()> {
        run(self)
    }
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::List { serial } => list(serial),
        Cmd::GenerateKey {
            device,
            algorithm,
            pin_policy,
            touch_policy,
            force,
            out,
            management,
        } => generate_key(
            device,
            algorithm,
            policies(pin_policy, touch_policy),
            force,
            out,
            management,
        ),
        Cmd::ImportCertificate {
            device,
            file,
            management,
        } => import_certificate(device, file, management),
        Cmd::Attest {
            device,
            out_dir,
            trust,
        } => attest(device, out_dir, trust),
        Cmd::VerifyAttestation {
            attestation,
            f9,
            certificate,
            trust,
        } => verify_attestation(&attestation, &f9, certificate.as_deref(), &trust),
    }
}

fn policies(pin: PinPolicyArg, touch: TouchPolicyArg) -> (PinPolicy, TouchPolicy) {
    let pin = match pin {
        PinPolicyArg::Default => PinPolicy::Default,
        PinPolicyArg::Never => PinPolicy::Never,
        PinPolicyArg::Once => PinPolicy::Once,
        PinPolicyArg::Always => PinPolicy::Always,
    };
    let touch = match touch {
        TouchPolicyArg::Default => TouchPolicy::Default,
        TouchPolicyArg::Never => TouchPolicy::Never,
        TouchPolicyArg::Always => TouchPolicy::Always,
        TouchPolicyArg::Cached => TouchPolicy::Cached,
    };
    (pin, touch)
}

/// The invocation context of a command: configuration from the environment, the deadline,
/// and the key id checked and named as the protocol's is.
fn context(key_id: String) -> Result<Context> {
    Context::for_key::<KeyRef>(&INFO, key_id, None).map(|(ctx, _)| ctx)
}

/// Opens the YubiKey of `args` and runs `call` on it under the deadline.
fn with_device<T, F>(args: &DeviceArgs, doing: &str, call: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Context, Slot, &Attached, &mut YubiKey) -> Result<T> + Send + 'static,
{
    let slot = Slot::parse(&args.slot)?;
    let serial = args.serial;
    let ctx = context(format!("{:02x}", slot.id()))?;
    let ctx2 = context(ctx.key_id.clone())?;
    ctx.run_blocking(doing, move || {
        let (attached, mut yk) = device::open(serial)?;
        call(&ctx2, slot, &attached, &mut yk)
    })
}

fn spec_name(algorithm: AlgorithmId) -> &'static str {
    match algorithm {
        AlgorithmId::Rsa1024 => "RSA-1024 (notation cannot use it)",
        AlgorithmId::Rsa2048 => "RSA-2048",
        AlgorithmId::Rsa3072 => "RSA-3072",
        AlgorithmId::Rsa4096 => "RSA-4096",
        AlgorithmId::EccP256 => "EC-256",
        AlgorithmId::EccP384 => "EC-384",
        AlgorithmId::Ed25519 => "Ed25519 (notation cannot use it)",
        AlgorithmId::X25519 => "X25519 (cannot sign)",
    }
}

fn pin_policy_name(p: PinPolicy) -> &'static str {
    match p {
        PinPolicy::Default => "default",
        PinPolicy::Never => "never",
        PinPolicy::Once => "once",
        PinPolicy::Always => "always",
    }
}

fn touch_policy_name(t: TouchPolicy) -> &'static str {
    match t {
        TouchPolicy::Default => "default",
        TouchPolicy::Never => "never",
        TouchPolicy::Always => "always",
        TouchPolicy::Cached => "cached (15 s)",
    }
}

fn list(serial: Option<u32>) -> Result<()> {
    let ctx = Context::without_key(&INFO, None)?;
    let text = ctx.run_blocking("listing the YubiKeys", move || {
        let device::Scan {
            keys: attached,
            busy,
        } = device::scan()?;
        let mut out = String::new();
        let mut shown = 0;
        for (a, mut yk) in attached {
            if serial.is_some_and(|s| s != a.serial) {
                let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
                continue;
            }
            shown += 1;
            out.push_str(&format!(
                "YubiKey {} (firmware {}, reader '{}')\n",
                a.serial, a.version, a.reader
            ));
            if let Ok(tries) = yk.get_pin_retries() {
                out.push_str(&format!("  PIN tries left: {tries}\n"));
            }
            let ids: Vec<u8> = Slot::all().map(Slot::id).collect();
            let metadata = crate::metadata::read_slots(&a.reader, &ids)?;
            let mut any = false;
            for (slot, meta) in Slot::all().zip(metadata) {
                let meta = match meta {
                    Ok(Answer::Found(m)) => Some(m),
                    _ => None,
                };
                let Some(line) = describe_slot(&mut yk, &a, slot, meta) else {
                    continue;
                };
                any = true;
                out.push_str(&line);
            }
            if !any {
                out.push_str("  no keys in the PIV key slots\n");
            }
        }
        if shown == 0 {
            return Err(PluginError::generic(match serial {
                Some(s) => format!("no YubiKey with serial {s} is attached"),
                None => format!("no YubiKey found: {}", device::PLUG_IN),
            }));
        }
        for reader in busy {
            out.push_str(&format!(
                "reader '{reader}': the card is {}\n",
                device::HELD
            ));
        }
        Ok(out)
    })?;
    print!("{text}");
    Ok(())
}

/// Lines about the key in `slot` (its metadata, when the card has it), or `None` when the slot
/// is empty.
fn describe_slot(
    yk: &mut YubiKey,
    a: &Attached,
    slot: Slot,
    meta: Option<crate::metadata::Metadata>,
) -> Option<String> {
    let cert = slot_certificate(yk, slot).ok().flatten();
    if meta.is_none() && cert.is_none() {
        return None;
    }
    let mut s = format!("  slot {slot}\n");
    match &meta {
        Some(m) => s.push_str(&format!("    key spec:      {}\n", spec_name(m.algorithm))),
        None => s.push_str("    key spec:      (no metadata: see the certificate)\n"),
    }
    if let Some((pin, touch)) = meta.as_ref().and_then(|m| m.policy) {
        s.push_str(&format!(
            "    PIN policy:    {}\n    touch policy:  {}\n",
            pin_policy_name(pin),
            touch_policy_name(touch)
        ));
    }
    if let Some(origin) = meta.as_ref().and_then(|m| m.origin) {
        s.push_str(&format!(
            "    origin:        {}\n",
            match origin {
                Origin::Generated => "generated on the device (attestable)",
                Origin::Imported => "imported",
            }
        ));
    }
    match cert.and_then(|der| Certificate::from_der(&der, "the slot's certificate").ok()) {
        Some(c) => s.push_str(&format!(
            "    certificate:   {} (expires {})\n",
            c.subject(),
            c.x509().tbs_certificate.validity.not_after
        )),
        None => s.push_str(
            "    certificate:   none (import one: notation-yubikey import-certificate)\n",
        ),
    }
    s.push_str(&format!(
        "    key id:        {}\n",
        KeyRef::key_id(a.serial, slot)
    ));
    Some(s)
}

/// Authenticates with the management key: the PIN-protected one when the YubiKey has one
/// (after verifying the PIN), else the one the user gives. Returns a warning to print, if any.
fn authenticate(
    ctx: &Context,
    yk: &mut YubiKey,
    serial: u32,
    management: &ManagementArgs,
) -> Result<Option<String>> {
    let pin = crate::pin::find(&ctx.config, &ctx.deadline, serial)?;
    if let Some(pin) = &pin {
        yk.verify_pin(&pin.bytes)
            .map_err(|e| crate::pin::refused(e, serial, &pin.source))?;
        if let Ok(key) = MgmKey::get_protected(yk) {
            return yk
                .authenticate(&key)
                .map(|()| None)
                .map_err(|e| describe(e, "authenticating with the PIN-protected management key"));
        }
    }
    let (hex, from) = match &management.management_key_file {
        Some(path) => (
            plugin_protocol::secret::read_file(path, "the management key file", FileOwner::User)?,
            format!("management key file {}", path.display()),
        ),
        None => match Secret::from_env("YUBIKEY_MANAGEMENT_KEY") {
            Some(key) => (key.bytes, key.source),
            None => {
                return Err(PluginError::validation(format!(
                    "YubiKey {serial} has no PIN-protected management key{}: give the \
                     management key with --management-key-file (hex, mode 0600) or \
                     YUBIKEY_MANAGEMENT_KEY",
                    if pin.is_none() {
                        " that could be used without a PIN (set pin_file or YUBIKEY_PIN if it has one)"
                    } else {
                        ""
                    }
                )))
            }
        },
    };
    let bytes = management_key_bytes(&hex, &from)?;
    let meta = piv::metadata(yk, SlotId::Management(ManagementSlotId::Management)).ok();
    let algorithm = meta.as_ref().and_then(|m| match m.algorithm {
        SlotAlgorithmId::Management(a) => Some(a),
        _ => None,
    });
    let key = MgmKey::from_bytes(&*bytes, algorithm).map_err(|_| {
        PluginError::validation(format!(
            "the {from} is not a management key of this YubiKey's type ({})",
            algorithm.map_or("3DES".to_owned(), |a| format!("{a:?}"))
        ))
    })?;
    yk.authenticate(&key).map_err(|e| match e {
        yubikey::Error::AuthenticationError => PluginError::access_denied(format!(
            "YubiKey {serial} refused the management key from {from}"
        )),
        other => describe(other, "authenticating with the management key"),
    })?;
    Ok(meta.and_then(|m| m.default).filter(|d| *d).map(|_| {
        format!(
            "warning: YubiKey {serial} still uses the factory-default management key; change it \
             (ykman --device {serial} piv access change-management-key --generate --protect)"
        )
    }))
}

/// The management key's bytes from its hex text (surrounding white space ignored), decoded into a
/// buffer that is wiped, so no partly decoded key is left behind on an error. The error says
/// what is wrong without naming any of the text.
fn management_key_bytes(hex: &[u8], from: &str) -> Result<Zeroizing<Vec<u8>>> {
    let digits = hex.trim_ascii();
    let mut bytes = Zeroizing::new(vec![0u8; digits.len() / 2]);
    hex::decode_to_slice(digits, &mut bytes).map_err(|e| {
        let why = match e {
            hex::FromHexError::OddLength => "an odd number of hex digits",
            _ => "a character that is not a hex digit",
        };
        PluginError::validation(format!(
            "the {from} does not hold a hex management key: it has {why}"
        ))
    })?;
    Ok(bytes)
}

fn generate_key(
    args: DeviceArgs,
    spec: KeySpec,
    (pin_policy, touch_policy): (PinPolicy, TouchPolicy),
    force: bool,
    out: Option<PathBuf>,
    management: ManagementArgs,
) -> Result<()> {
    let algorithm = crate::backend::piv_algorithm(spec).ok_or_else(|| {
        PluginError::validation(
            "a YubiKey cannot hold EC-521 keys; use EC-256, EC-384 or RSA-2048/3072/4096",
        )
    })?;
    let (key_id, public, warning) = with_device(
        &args,
        "generating a key on the YubiKey",
        move |ctx, slot, a, yk| {
            if !force && read_slot(yk, a, slot).is_ok() {
                return Err(PluginError::validation(format!(
                "slot {slot} of YubiKey {} already holds a key; --force replaces it (the old key \
                 is gone for good)",
                a.serial
            )));
            }
            let warning = authenticate(ctx, yk, a.serial, &management)?;
            let spki = piv::generate(yk, slot.piv(), algorithm, pin_policy, touch_policy)
                .map_err(|e| describe(e, &format!("generating {spec} in slot {slot}")))?;
            let der = spki
                .to_der()
                .map_err(|e| PluginError::generic(format!("the new public key is not DER: {e}")))?;
            Ok((
                KeyRef::key_id(a.serial, slot),
                PublicKey::from_spki_der(&der)?,
                warning,
            ))
        },
    )?;
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    let pem = public.to_spki_pem();
    if let Some(path) = &out {
        std::fs::write(path, &pem)
            .map_err(|e| PluginError::generic(format!("cannot write {}: {e}", path.display())))?;
    }
    println!("generated {} key: {key_id}", public.describe());
    print!("{pem}");
    println!(
        "next: a certificate for it (notation-yubikey certificate self-signed --key-id \
         '{key_id}' ..., certificate csr, or ca issue from your CA key), then \
         notation-yubikey import-certificate --slot {} FILE",
        args.slot
    );
    Ok(())
}

fn import_certificate(args: DeviceArgs, file: PathBuf, management: ManagementArgs) -> Result<()> {
    let certs = chain::load_file(&file)?;
    let shown = file.display().to_string();
    let (slot_name, serial) = with_device(
        &args,
        "storing the certificate on the YubiKey",
        move |ctx, slot, a, yk| {
            let key = read_slot(yk, a, slot)?;
            let cert = certs
                .iter()
                .find(|c| c.public_key().is_ok_and(|k| k == key.public))
                .ok_or_else(|| {
                    PluginError::validation(format!(
                    "no certificate in {shown} is for the key in slot {slot} of YubiKey {} ({}); \
                     issue one for that key",
                    a.serial,
                    key.public.describe()
                ))
                })?;
            authenticate(ctx, yk, a.serial, &management)?;
            let piv_cert = yubikey::Certificate::from_bytes(cert.der().to_vec())
                .map_err(|e| describe(e, "reading the certificate"))?;
            piv_cert
                .write(yk, slot.piv(), yubikey::certificate::CertInfo::Uncompressed)
                .map_err(|e| describe(e, &format!("writing the certificate into slot {slot}")))?;
            Ok((slot.to_string(), a.serial))
        },
    )?;
    println!("stored the certificate in slot {slot_name} of YubiKey {serial}");
    Ok(())
}

fn trust_pool(trust: &TrustArgs) -> Result<(Vec<Certificate>, Vec<Certificate>)> {
    let roots = match &trust.root {
        Some(path) => chain::load_file(path)?,
        None => attestation::yubico_roots()?,
    };
    let intermediates = match &trust.intermediates {
        Some(path) => chain::load_file(path)?,
        None => Vec::new(),
    };
    Ok((roots, intermediates))
}

fn report(att: &Certificate, f9: &Certificate, trust: &TrustArgs) -> Result<String> {
    let (roots, intermediates) = trust_pool(trust)?;
    let path = attestation::verify(att, f9, &intermediates, &roots, SystemTime::now())?;
    let facts = attestation::facts(att);
    let unknown = || "unknown".to_owned();
    Ok(format!(
        "attestation verified: {}\n  the key was generated on the YubiKey and cannot leave it\n  \
         serial:        {}\n  firmware:      {}\n  PIN policy:    {}\n  touch policy:  {}\n  \
         form factor:   {}\n  public key:    {}\n",
        path.join(" <- "),
        facts.serial.map_or_else(unknown, |s| s.to_string()),
        facts.firmware.unwrap_or_else(unknown),
        facts.pin_policy.unwrap_or("unknown"),
        facts.touch_policy.unwrap_or("unknown"),
        facts.form_factor.unwrap_or_else(unknown),
        att.public_key()?.describe()
    ))
}

fn attest(args: DeviceArgs, out_dir: PathBuf, trust: TrustArgs) -> Result<()> {
    let (att, f9, slot, serial) = with_device(
        &args,
        "attesting the key on the YubiKey",
        move |_, slot, a, yk| {
            let key = read_slot(yk, a, slot)?;
            if key.origin == Some(Origin::Imported) {
                return Err(PluginError::validation(format!(
                "the key in slot {slot} of YubiKey {} was imported: a YubiKey attests only keys it \
                 generated",
                a.serial
            )));
            }
            let att = piv::attest(yk, slot.piv())
                .map_err(|e| describe(e, &format!("attesting slot {slot}")))?;
            let att = Certificate::from_der(&att, "the attestation")?;
            let f9 = slot_certificate_f9(yk)?;
            if att.public_key()? != key.public {
                return Err(PluginError::generic(format!(
                    "the attestation of slot {slot} is for another key than the slot holds"
                )));
            }
            Ok((att, f9, slot, a.serial))
        },
    )?;
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| PluginError::generic(format!("cannot create {}: {e}", out_dir.display())))?;
    let att_path = out_dir.join(format!("attestation-{:02x}.pem", slot.id()));
    let f9_path = out_dir.join(format!("f9-{serial}.pem"));
    for (path, cert) in [(&att_path, &att), (&f9_path, &f9)] {
        std::fs::write(path, cert.to_pem())
            .map_err(|e| PluginError::generic(format!("cannot write {}: {e}", path.display())))?;
    }
    println!("wrote {} and {}", att_path.display(), f9_path.display());
    print!("{}", report(&att, &f9, &trust)?);
    Ok(())
}

fn slot_certificate_f9(yk: &mut YubiKey) -> Result<Certificate> {
    let cert = yubikey::Certificate::read(yk, SlotId::Attestation)
        .map_err(|e| describe(e, "reading the f9 attestation certificate"))?;
    let der = cert
        .cert
        .to_der()
        .map_err(|e| PluginError::generic(format!("the f9 certificate is not DER: {e}")))?;
    Certificate::from_der(&der, "the f9 certificate")
}

fn verify_attestation(
    att: &Path,
    f9: &Path,
    certificate: Option<&Path>,
    trust: &TrustArgs,
) -> Result<()> {
    let one = |path: &Path| -> Result<Certificate> {
        chain::load_file(path)?.into_iter().next().ok_or_else(|| {
            PluginError::validation(format!("{} holds no certificate", path.display()))
        })
    };
    let (att, f9) = (one(att)?, one(f9)?);
    let text = report(&att, &f9, trust)?;
    if let Some(path) = certificate {
        let cert = one(path)?;
        if cert.public_key()? != att.public_key()? {
            return Err(PluginError::validation(format!(
                "{} ('{}') is not for the attested key",
                path.display(),
                cert.subject()
            )));
        }
        print!("{text}");
        println!(
            "  certificate:   {} is for the attested key",
            cert.subject()
        );
        return Ok(());
    }
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_management_key_is_hex_and_never_named_in_a_refusal() {
        let key =
            management_key_bytes(b"  010203040506070801020304050607080102030405060708\n", "f")
                .unwrap();
        assert_eq!(*key, [1, 2, 3, 4, 5, 6, 7, 8].repeat(3));
        assert_eq!(*management_key_bytes(b"aBcD", "f").unwrap(), [0xab, 0xcd]);
        let refused =
            |text: &[u8]| management_key_bytes(text, "management key file k").unwrap_err();
        assert_eq!(
            refused(b"abc").message,
            "the management key file k does not hold a hex management key: it has an odd number \
             of hex digits"
        );
        // u8::from_str_radix would read "+a" as 10; a character of two bytes is not cut.
        for text in ["+a01", "zz01", "\u{e9}01"] {
            let e = refused(text.as_bytes());
            assert!(
                e.message
                    .ends_with("it has a character that is not a hex digit"),
                "{e:?}"
            );
            assert!(!e.message.contains(&text[..2]), "{e:?}");
        }
    }
}
