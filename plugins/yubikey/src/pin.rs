//! Where the PIN comes from, in order: the PIN file (`pin_file`, mode 0600), the environment
//! variable `YUBIKEY_PIN`, and, only when there is a controlling terminal and no other source, a
//! prompt on `/dev/tty`. Never pluginConfig `pin` (notation keeps pluginConfig in plain text in
//! signingkeys.json). The PIN lives in zeroizing buffers and is never part of a message.

use plugin_protocol::secret::{FileOwner, Secret};
use plugin_protocol::{Config, Deadline, ErrorCode, PluginError, Result};

use crate::tty::Tty;
use crate::{PIN, PIN_FILE};

/// The PIN of a YubiKey and where it came from (for messages).
pub type Pin = Secret;

/// A PIV PIN is 6 to 8 bytes: anything else would cost a try on the card for nothing.
const PIN_LENGTHS: std::ops::RangeInclusive<usize> = 6..=8;

/// The PIN for the YubiKey `serial`, from the first source configured; `None` when there is
/// none and no terminal to ask on.
pub fn find(config: &Config, deadline: &Deadline, serial: u32) -> Result<Option<Pin>> {
    let pin = if let Some(pin) =
        Secret::from_file_setting(config, &PIN_FILE, "the PIN file", FileOwner::User)?
    {
        pin
    } else if let Some(pin) = Secret::from_setting(config, &PIN) {
        if pin.source.starts_with("pluginConfig") {
            return Err(PluginError::validation(
                "refusing the PIN from pluginConfig 'pin': notation stores pluginConfig in plain \
                 text in signingkeys.json; put the PIN in a file (pluginConfig pin_file, mode \
                 0600) or the environment variable YUBIKEY_PIN",
            ));
        }
        pin
    } else if let Some(mut tty) = Tty::open() {
        let bytes = tty.read_secret(&format!("PIN for YubiKey {serial}: "), deadline)?;
        Pin {
            bytes,
            source: "the terminal".to_owned(),
        }
    } else {
        return Ok(None);
    };
    if !PIN_LENGTHS.contains(&pin.bytes.len()) {
        return Err(PluginError::validation(format!(
            "the PIN from {} is {} characters long; a YubiKey PIV PIN is 6 to 8 (it was not sent \
             to the card)",
            pin.source,
            pin.bytes.len()
        )));
    }
    Ok(Some(pin))
}

/// The answer to a PIN the card refused. A wrong PIN is never tried again: the message says how
/// many tries are left, or how to unblock the PIN.
pub fn refused(e: yubikey::Error, serial: u32, source: &str) -> PluginError {
    let unblock = format!(
        "unblock it with the PUK: ykman --device {serial} piv access unblock-pin (or \
         yubico-piv-tool -a unblock-pin); if the PUK is blocked too, only a PIV reset, which \
         erases every key, makes the YubiKey usable again"
    );
    match e {
        yubikey::Error::WrongPin { tries: 0 } | yubikey::Error::PinLocked => PluginError::new(
            ErrorCode::AccessDenied,
            format!("the PIN of YubiKey {serial} is blocked (no tries left); {unblock}"),
        ),
        yubikey::Error::WrongPin { tries } => PluginError::new(
            ErrorCode::AccessDenied,
            format!(
                "wrong PIN for YubiKey {serial} (from {source}): {tries} {} left before the PIN is \
                 blocked; the plugin does not retry a wrong PIN",
                if tries == 1 { "try" } else { "tries" }
            ),
        ),
        other => crate::device::describe(other, "verifying the PIN"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_how_many_tries_are_left_or_how_to_unblock() {
        let e = refused(yubikey::Error::WrongPin { tries: 2 }, 7, "PIN file /p");
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("2 tries left"), "{}", e.message);
        assert!(e.message.contains("does not retry"), "{}", e.message);
        let e = refused(yubikey::Error::WrongPin { tries: 1 }, 7, "x");
        assert!(e.message.contains("1 try left"), "{}", e.message);
        for blocked in [
            yubikey::Error::WrongPin { tries: 0 },
            yubikey::Error::PinLocked,
        ] {
            let e = refused(blocked, 7, "x");
            assert_eq!(e.code, ErrorCode::AccessDenied);
            assert!(e.message.contains("blocked") && e.message.contains("unblock-pin"));
            assert!(e.message.contains("--device 7"), "{}", e.message);
        }
    }
}
