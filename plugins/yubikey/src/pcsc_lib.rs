//! libpcsclite, loaded when the plugin first talks to a card instead of by the dynamic loader at
//! every start.
//!
//! The `pcsc` crate calls the PC/SC functions by name. This module defines each of them (and
//! the three protocol constants libpcsclite exports), so the linker needs nothing from
//! libpcsclite and, linking with `--as-needed`, drops it from the binary's dependencies
//! (`hsm-tests/tests/yubikey.rs` checks that it stays dropped). Each function loads
//! `libpcsclite.so.1` on its first call, once, and calls the library's own function with the same
//! arguments.
//!
//! Why: get-plugin-metadata, which notation runs before every signature and which needs no card,
//! no longer maps libpcsclite (0.05 ms of each start, `scripts/bench.sh`); and without
//! libpcsclite installed the plugin still starts, answers get-plugin-metadata, and says what is
//! missing ([`load_error`]), where the dynamic loader stopped it with a line notation cannot
//! parse. A library that cannot be loaded makes every PC/SC call answer `SCARD_E_NO_SERVICE`,
//! as a system without pcscd would.
#![allow(unsafe_code, non_snake_case, non_upper_case_globals)]

use std::ffi::{c_char, c_void};
use std::sync::OnceLock;

use pcsc::ffi::{
    DWORD, LONG, SCARDCONTEXT, SCARDHANDLE, SCARD_E_NO_SERVICE, SCARD_IO_REQUEST,
    SCARD_PROTOCOL_RAW, SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_READERSTATE,
};

/// The library's soname, as the dynamic loader would have looked it up (so `LD_LIBRARY_PATH`
/// and the system's library path apply as before).
pub const LIBRARY: &str = "libpcsclite.so.1";

/// Why libpcsclite could not be loaded, once a PC/SC call has tried; `None` before any call, or
/// when it loaded.
pub fn load_error() -> Option<&'static str> {
    API.get()
        .and_then(|api| api.as_ref().err())
        .map(String::as_str)
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn api() -> &'static Result<Api, String> {
    API.get_or_init(Api::load)
}

const PCI_LENGTH: DWORD = std::mem::size_of::<SCARD_IO_REQUEST>() as DWORD;

/// libpcsclite's `g_rgSCardT0Pci`: the same values (callers pass its address to
/// `SCardTransmit`, which reads the two fields).
#[no_mangle]
static g_rgSCardT0Pci: SCARD_IO_REQUEST = SCARD_IO_REQUEST {
    dwProtocol: SCARD_PROTOCOL_T0,
    cbPciLength: PCI_LENGTH,
};

/// libpcsclite's `g_rgSCardT1Pci`.
#[no_mangle]
static g_rgSCardT1Pci: SCARD_IO_REQUEST = SCARD_IO_REQUEST {
    dwProtocol: SCARD_PROTOCOL_T1,
    cbPciLength: PCI_LENGTH,
};

/// libpcsclite's `g_rgSCardRawPci`.
#[no_mangle]
static g_rgSCardRawPci: SCARD_IO_REQUEST = SCARD_IO_REQUEST {
    dwProtocol: SCARD_PROTOCOL_RAW,
    cbPciLength: PCI_LENGTH,
};

/// Defines the loaded functions' table and, for each, the exported function that forwards to
/// it. Each signature is checked at compile time against `pcsc-sys`'s declaration of the same
/// name (`signatures_are_pcsc_sys`), so what the `pcsc` crate calls and what this module
/// forwards cannot disagree on an argument.
macro_rules! pcsc_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
        struct Api {
            $($name: unsafe extern "system" fn($($ty),*) -> LONG,)*
            /// Kept loaded for the life of the process: the pointers above point into it.
            _library: libloading::Library,
        }

        impl Api {
            fn load() -> Result<Api, String> {
                // SAFETY: libpcsclite is the C library these declarations describe; loading it
                // runs no initialiser beyond its own (it connects to pcscd on the first call).
                let library = unsafe { libloading::Library::new(LIBRARY) }
                    .map_err(|e| e.to_string())?;
                Ok(Api {
                    $($name: {
                        // SAFETY: the symbol is the function of this name and signature in
                        // libpcsclite's API; the library outlives the pointer (see `_library`).
                        let symbol = unsafe {
                            library.get::<unsafe extern "system" fn($($ty),*) -> LONG>(
                                concat!(stringify!($name), "\0").as_bytes(),
                            )
                        }
                        .map_err(|e| e.to_string())?;
                        *symbol
                    },)*
                    _library: library,
                })
            }
        }

        /// Never called: it compiles only if each function above has `pcsc-sys`'s signature.
        #[allow(dead_code)]
        fn signatures_are_pcsc_sys() {
            $(let _: unsafe extern "system" fn($($ty),*) -> LONG = pcsc::ffi::$name;)*
        }

        $(
            /// Forwards to libpcsclite's function of this name (see the module's docs).
            ///
            /// # Safety
            /// The caller's contract is libpcsclite's own for this function.
            #[no_mangle]
            unsafe extern "system" fn $name($($arg: $ty),*) -> LONG {
                match api() {
                    // SAFETY: the same arguments, to the function they were meant for.
                    Ok(api) => unsafe { (api.$name)($($arg),*) },
                    Err(_) => SCARD_E_NO_SERVICE,
                }
            }
        )*
    };
}

pcsc_functions! {
    fn SCardEstablishContext(
        dwScope: DWORD,
        pvReserved1: *const c_void,
        pvReserved2: *const c_void,
        phContext: *mut SCARDCONTEXT,
    );
    fn SCardReleaseContext(hContext: SCARDCONTEXT);
    fn SCardIsValidContext(hContext: SCARDCONTEXT);
    fn SCardCancel(hContext: SCARDCONTEXT);
    fn SCardConnect(
        hContext: SCARDCONTEXT,
        szReader: *const c_char,
        dwShareMode: DWORD,
        dwPreferredProtocols: DWORD,
        phCard: *mut SCARDHANDLE,
        pdwActiveProtocol: *mut DWORD,
    );
    fn SCardReconnect(
        hCard: SCARDHANDLE,
        dwShareMode: DWORD,
        dwPreferredProtocols: DWORD,
        dwInitialization: DWORD,
        pdwActiveProtocol: *mut DWORD,
    );
    fn SCardDisconnect(hCard: SCARDHANDLE, dwDisposition: DWORD);
    fn SCardGetStatusChange(
        hContext: SCARDCONTEXT,
        dwTimeout: DWORD,
        rgReaderStates: *mut SCARD_READERSTATE,
        cReaders: DWORD,
    );
    fn SCardListReaders(
        hContext: SCARDCONTEXT,
        mszGroups: *const c_char,
        mszReaders: *mut c_char,
        pcchReaders: *mut DWORD,
    );
    fn SCardBeginTransaction(hCard: SCARDHANDLE);
    fn SCardEndTransaction(hCard: SCARDHANDLE, dwDisposition: DWORD);
    fn SCardStatus(
        hCard: SCARDHANDLE,
        szReaderName: *mut c_char,
        pcchReaderLen: *mut DWORD,
        pdwState: *mut DWORD,
        pdwProtocol: *mut DWORD,
        pbAtr: *mut u8,
        pcbAtrLen: *mut DWORD,
    );
    fn SCardGetAttrib(hCard: SCARDHANDLE, dwAttrId: DWORD, pbAttr: *mut u8, pcbAttrLen: *mut DWORD);
    fn SCardSetAttrib(hCard: SCARDHANDLE, dwAttrId: DWORD, pbAttr: *const u8, cbAttrLen: DWORD);
    fn SCardTransmit(
        hCard: SCARDHANDLE,
        pioSendPci: *const SCARD_IO_REQUEST,
        pbSendBuffer: *const u8,
        cbSendLength: DWORD,
        pioRecvPci: *mut SCARD_IO_REQUEST,
        pbRecvBuffer: *mut u8,
        pcbRecvLength: *mut DWORD,
    );
    fn SCardControl(
        hCard: SCARDHANDLE,
        dwControlCode: DWORD,
        pbSendBuffer: *const u8,
        cbSendLength: DWORD,
        pbRecvBuffer: *mut u8,
        cbRecvLength: DWORD,
        lpBytesReturned: *mut DWORD,
    );
}
