//! The Notation plugin contract 1.0, written once for every plugin of the suite.
//!
//! A backend plugin implements [`Backend`] (resolve a key, sign a digest, optionally supply a
//! certificate chain) and calls [`run`] from `main`. Everything else — the wire format, request
//! checks, hashing, ECDSA encoding, certificate-chain rules, self-verification, error codes,
//! deadlines and retries — lives here.
//!
//! # Author surface
//!
//! What a backend adapter uses, and all it should need:
//! - [`Backend`] (with [`Payload`], [`UnresolvedSign`] and [`Signed`]), described by a [`PluginInfo`] and its
//!   [`ConfigKey`]s, started by [`run`], or by [`run_with`] with the plugin's own operator
//!   commands ([`operator::OperatorCommands`], a clap subcommand enum); [`on_interrupt`] for
//!   cleanups.
//! - [`KeyReference`] (or [`PlainKeyId`]): the backend's key id, parsed once; its redacted form
//!   names the key in every message.
//! - [`Context`]: the key id, the [`Config`] and the [`Deadline`]; settings are read through
//!   their [`ConfigKey`] constants (the shared ones in [`config`]) with typed accessors that
//!   return the value and its source ([`config::Setting`]); [`Context::run_blocking`] for
//!   a blocking call, [`retry`] (and `remote::retry`, feature `remote`) for retried calls;
//!   [`remote::map_failure`] maps a failed remote call ([`remote::RemoteFailure`]) to the contract.
//! - [`PluginError`], [`ErrorCode`], [`Retry`] and [`Result`]; [`error::error_chain`].
//! - [`KeySpec`], [`HashAlgorithm`], [`SigningAlgorithm`], [`PublicKey`], [`BackendSignature`],
//!   [`pss::encode`] for a raw-RSA backend.
//! - Helpers: [`secret`] ([`secret::Secret`] from a value, the environment or a file under one
//!   secret-file policy; redaction), [`bounded`] (size-bounded reads),
//!   [`chain`] ([`Certificate`], PEM/DER), [`operator`] (operator commands), [`blocking`].
//!
//! The wire types ([`contract`], [`error::ErrorResponse`]) and the checks ([`signature`],
//! [`chain`]) are public for the conformance checker, with the client (feature `client`) and
//! the test backend and CA (feature `softkey`). [`run`] answers the protocol through
//! [`pipeline`] and adds the certificate and trust commands ([`certificates`]) to every plugin;
//! an adapter calls neither.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
pub mod blocking;
pub mod bounded;
pub mod certificates;
pub mod chain;
#[cfg(feature = "client")]
pub mod client;
mod command_key;
pub mod config;
pub mod contract;
mod deadline;
pub mod dn;
pub mod error;
pub mod identity;
mod key_reference;
mod keyspec;
pub mod operator;
pub mod pipeline;
mod plugin_info;
pub mod pss;
pub mod public_key;
pub mod remote;
pub mod runner;
pub mod secret;
pub mod signature;
#[cfg(feature = "testing")]
pub mod slips;
#[cfg(feature = "softkey")]
pub mod softkey;
#[cfg(feature = "softkey")]
pub mod testca;
#[cfg(feature = "tls")]
pub mod tls;
mod trust;

pub use backend::{Backend, Payload, Signed, UnresolvedSign};
pub use chain::Certificate;
pub use config::{retry, Config, Context};
pub use deadline::Deadline;
pub use error::{ErrorCode, PluginError, Result, Retry};
pub use key_reference::{parse_key_id, KeyReference, PlainKeyId};
pub use keyspec::{HashAlgorithm, KeySpec, SigningAlgorithm};
pub use plugin_info::{ConfigKey, PluginInfo};
pub use public_key::PublicKey;
pub use runner::{on_interrupt, run, run_with};
pub use signature::BackendSignature;
