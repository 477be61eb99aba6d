//! Finding the YubiKey a key id names among the PC/SC readers, and saying what went wrong in
//! the words of the user's situation (no pcscd, no reader, a card held by gpg's scdaemon, a key
//! pulled out), not in PC/SC status codes.

use plugin_protocol::{PluginError, Result};
use yubikey::{Error, YubiKey};

/// A YubiKey seen on a reader.
#[derive(Clone, Debug)]
pub struct Attached {
    pub serial: u32,
    pub version: String,
    pub reader: String,
}

/// What the readers hold: the YubiKeys that answered (opened), and readers whose card another
/// program holds exclusively.
pub struct Scan {
    pub keys: Vec<(Attached, YubiKey)>,
    pub busy: Vec<String>,
}

/// Every YubiKey attached, opened, in one pass over the readers.
pub fn scan() -> Result<Scan> {
    let mut context = yubikey::reader::Context::open().map_err(|e| describe(e, "opening PC/SC"))?;
    let readers = context
        .iter()
        .map_err(|e| describe(e, "listing the smart-card readers"))?;
    let mut scan = Scan {
        keys: Vec::new(),
        busy: Vec::new(),
    };
    for reader in readers {
        let name = reader.name().into_owned();
        match reader.open() {
            Ok(yk) => {
                let attached = Attached {
                    serial: yk.serial().0,
                    version: yk.version().to_string(),
                    reader: name,
                };
                scan.keys.push((attached, yk));
            }
            Err(Error::PcscError {
                inner: Some(pcsc::Error::SharingViolation),
            }) => scan.busy.push(name),
            // Not a YubiKey (another smart card, an empty reader): skipped.
            Err(e) => tracing::debug!(reader = %name, error = %e, "reader skipped"),
        }
    }
    Ok(scan)
}

/// How to get a YubiKey seen at all, for "none found" messages.
pub const PLUG_IN: &str = "is it plugged in, with its CCID (smart card) interface enabled \
    (ykman config usb --enable PIV)?";
/// What holds a card exclusively, and how to let it go.
pub const HELD: &str = "held by another program (gpg's scdaemon, gpg-agent, yubikey-agent or a \
    browser): stop it (gpgconf --kill scdaemon) or let it share the card (pcsc-shared in \
    ~/.gnupg/scdaemon.conf)";
/// A card that went away mid-command.
const REMOVED: &str = "the YubiKey was removed (or its reader went away) during the operation; \
    plug it back in and sign again";

/// Opens the YubiKey with `serial`, or the only one attached when `serial` is `None`.
pub fn open(serial: Option<u32>) -> Result<(Attached, YubiKey)> {
    let scan = scan()?;
    let serials: Vec<String> = scan
        .keys
        .iter()
        .map(|(a, _)| a.serial.to_string())
        .collect();
    let busy = held_by_another_program(&scan.busy);
    let mut chosen = None;
    for (attached, yk) in scan.keys {
        if chosen.is_none() && serial.is_none_or(|s| s == attached.serial) {
            chosen = Some((attached, yk));
        } else {
            // Left as it was: no reset of a card this invocation does not use.
            let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
    match (serial, chosen) {
        (None, Some(_)) if serials.len() > 1 => Err(PluginError::validation(format!(
            "{} YubiKeys are attached (serials {}); name one in the key id: \
                 yubikey:serial={};slot=<slot>",
            serials.len(),
            serials.join(", "),
            serials[0]
        ))),
        (_, Some(found)) => Ok(found),
        (Some(serial), None) => Err(PluginError::generic(format!(
            "no YubiKey with serial {serial} is attached{}{busy}",
            if serials.is_empty() {
                String::new()
            } else {
                format!(" (attached: {})", serials.join(", "))
            }
        ))),
        (None, None) => Err(PluginError::generic(format!(
            "no YubiKey found: {PLUG_IN}{busy}"
        ))),
    }
}

fn held_by_another_program(busy: &[String]) -> String {
    if busy.is_empty() {
        return String::new();
    }
    format!("; the card in reader '{}' is {HELD}", busy.join("', '"))
}

/// A yubikey crate error during `doing`, as a message a user can act on. PIN errors are
/// explained by the PIN module, which knows where the PIN came from.
pub fn describe(e: Error, doing: &str) -> PluginError {
    use pcsc::Error as P;
    let inner = match e {
        Error::PcscError { inner } => inner,
        Error::NotFound => {
            return PluginError::generic(format!("{doing}: no YubiKey found: {PLUG_IN}"))
        }
        Error::NotSupported => {
            return PluginError::validation(format!(
                "{doing}: this YubiKey does not support the operation (firmware too old?)"
            ))
        }
        other => return PluginError::generic(format!("{doing}: the YubiKey answered: {other}")),
    };
    let message = match inner {
        Some(P::NoService | P::ServiceStopped) => match pcsc_library_missing() {
            Some(why) => why,
            None => "cannot reach pcscd, the PC/SC daemon: is it installed and running (apt \
                     install pcscd; systemctl start pcscd.socket)? In a container, mount the \
                     host's /run/pcscd/pcscd.comm"
                .to_owned(),
        },
        Some(P::NoReadersAvailable) => format!("no smart-card reader: {PLUG_IN}"),
        Some(P::SharingViolation) => format!("the YubiKey is {HELD}"),
        Some(P::RemovedCard | P::NoSmartcard | P::ReaderUnavailable | P::UnknownReader) => {
            REMOVED.to_owned()
        }
        Some(P::ResetCard) => "the YubiKey was reset by another program during the \
             operation; sign again"
            .to_owned(),
        Some(P::UnpoweredCard | P::UnresponsiveCard | P::CommError) => {
            "the YubiKey did not answer (communication error); unplug it, plug it back in and \
             sign again"
                .to_owned()
        }
        Some(other) => format!("PC/SC error: {other}"),
        None => "PC/SC error".to_owned(),
    };
    PluginError::generic(format!("{doing}: {message}"))
}

/// Why the PC/SC client library could not be loaded, if that is why PC/SC answered "no
/// service".
fn pcsc_library_missing() -> Option<String> {
    #[cfg(target_os = "linux")]
    if let Some(why) = crate::pcsc_lib::load_error() {
        return Some(format!(
            "cannot load {}, the PC/SC client library ({why}): install it with pcscd (apt \
             install pcscd libpcsclite1; dnf install pcsc-lite pcsc-lite-libs)",
            crate::pcsc_lib::LIBRARY
        ));
    }
    None
}

/// Whether a card is in `reader` now, through a fresh PC/SC connection let go without a reset:
/// after a failed command, this tells a YubiKey pulled out mid-command (which the card layer
/// may report only as a failed command) from a refusal.
pub fn card_present(reader: &str) -> bool {
    use pcsc::Error as P;
    let Ok(context) = pcsc::Context::establish(pcsc::Scope::User) else {
        return true;
    };
    let Ok(name) = std::ffi::CString::new(reader) else {
        return true;
    };
    match context.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
        Ok(card) => {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
            true
        }
        Err(P::NoSmartcard | P::RemovedCard | P::UnknownReader | P::ReaderUnavailable) => false,
        Err(_) => true,
    }
}

/// `e` from a command on the card in `reader`, restated when the card is gone. PC/SC notices a
/// pulled-out card on its reader's next poll, so presence is asked for up to a second (5 times,
/// 200 ms apart; only after a failure, and the deadline still bounds the answer).
pub fn explain_removal(e: PluginError, reader: &str, doing: &str) -> PluginError {
    if e.code != plugin_protocol::ErrorCode::Generic || e.message.contains("removed") {
        return e;
    }
    let gone = (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        !card_present(reader)
    });
    if !gone {
        return e;
    }
    PluginError::generic(format!("{doing}: {REMOVED}"))
}
