//! What a backend adapter implements.

use crate::config::Context;
use crate::error::Result;
use crate::key_reference::KeyReference;
use crate::signature::BackendSignature;
use crate::{KeySpec, PublicKey};

/// A backend adapter: only translation between the backend's API and these calls (`Sync`: the
/// fewest-round-trips path calls the backend from two threads at once). Everything else
/// (request parsing, hashing, ECDSA encoding, chain rules, self-verification, errors on the
/// wire) is done once by the shared crate.
pub trait Backend: Sized + Sync {
    /// What a key id means to this backend, parsed once before any I/O; its redacted form is
    /// the only one messages and logs show ([`Context::key_name`]).
    type KeyRef: KeyReference;

    /// The backend's handle on a resolved key (an object handle, an ARN, a key version...).
    type Key;

    /// Connects and authenticates for one invocation, for the key `key` (the parsed keyId,
    /// kept for [`Backend::resolve_key`] and [`Backend::sign_unresolved`]). Never called for
    /// get-plugin-metadata.
    fn connect(ctx: &Context, key: Self::KeyRef) -> Result<Self>;

    /// Resolves the key reference [`Backend::connect`] was given to a key and its public key.
    /// A key notation cannot use is refused by [`PublicKey`]'s constructors with a message
    /// naming what the key is.
    fn resolve_key(&mut self, ctx: &Context) -> Result<(Self::Key, PublicKey)>;

    /// Signs `payload.message`, whose `payload.spec` hash is `payload.digest`: RSASSA-PSS with
    /// salt = hash length and MGF1 on the same hash, or ECDSA in either encoding (say which).
    /// Most backends sign the digest; one that can only hash-and-sign (a token offering
    /// SHA256-RSA-PKCS-PSS but not raw PSS) signs the message. The shared code normalises and
    /// self-verifies whatever this returns ([`crate::pipeline`]).
    fn sign(
        &mut self,
        ctx: &Context,
        key: &Self::Key,
        payload: &Payload,
    ) -> Result<BackendSignature>;

    /// Certificates the backend itself stores for this key (any order; leaf and issuers), used
    /// when `certificate_chain` is not configured. `ca_certs` is appended by the shared code.
    /// The default is [`Backend::chain_by_reference`].
    fn certificate_chain(&mut self, ctx: &Context, _key: &Self::Key) -> Result<Vec<Vec<u8>>> {
        self.chain_by_reference(ctx)
    }

    /// Certificates the backend keeps for the key reference itself, found without resolving
    /// the key (a chain in a secrets store that the configuration names), so that
    /// [`Backend::sign_unresolved`] can fetch them while it signs. Default: none.
    fn chain_by_reference(&self, _ctx: &Context) -> Result<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }

    /// Whether this backend implements [`Backend::sign_by_reference`] (or
    /// [`Backend::sign_unresolved`]): a remote backend that can sign knowing only the key id and
    /// the request's key spec.
    const SIGNS_UNRESOLVED: bool = false;

    /// Signs `payload` (as [`Backend::sign`] would) with the key the key reference names,
    /// without reading the key or its public key first; for [`Backend::SIGNS_UNRESOLVED`].
    fn sign_by_reference(&self, _ctx: &Context, _payload: &Payload) -> Result<BackendSignature> {
        Err(crate::PluginError::generic(
            "this backend resolves the key before it signs",
        ))
    }

    /// generate-signature in the fewest round trips, when [`Backend::SIGNS_UNRESOLVED`]: by
    /// default [`Backend::sign_by_reference`], and, when `sign.fetch_chain` (no
    /// `certificate_chain` file is configured), [`Backend::chain_by_reference`] at the same time
    /// ([`crate::blocking::sign_and_fetch_chain`]). A backend whose chain depends on which key
    /// version signed (Transit) replaces it.
    ///
    /// The shared code builds the chain, checks it, and verifies the signature under the
    /// leaf's key, which proves that key and certificate match. Only when that fails, or the
    /// backend refuses with `VALIDATION_ERROR`, does it resolve the key the usual way
    /// ([`Backend::resolve_key`], [`Backend::certificate_chain`]) to say what is wrong (a
    /// rotated key, a certificate of another key, an unusable key type).
    fn sign_unresolved(&mut self, ctx: &Context, sign: &UnresolvedSign) -> Result<Signed> {
        let this = &*self;
        crate::blocking::sign_and_fetch_chain(
            sign.fetch_chain,
            || this.chain_by_reference(ctx),
            || this.sign_by_reference(ctx, &sign.payload),
        )
    }
}

/// What a backend signs ([`Backend::sign`], [`Backend::sign_unresolved`]).
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    /// The key spec to sign with; its hash made `digest`.
    pub spec: KeySpec,
    /// The bytes to sign (notation's payload, or a certificate's to-be-signed part), for
    /// backends that hash and sign.
    pub message: &'a [u8],
    /// `message`'s digest with `spec`'s hash.
    pub digest: &'a [u8],
}

/// What [`Backend::sign_unresolved`] is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct UnresolvedSign<'a> {
    /// What to sign: the request's key spec, the payload and its digest.
    pub payload: Payload<'a>,
    /// Fetch the backend's own chain too: no `certificate_chain` file is configured.
    pub fetch_chain: bool,
}

/// A signature and the certificates the backend holds for the key (none unless fetched).
pub type Signed = (BackendSignature, Vec<Vec<u8>>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlainKeyId, PluginInfo};

    static INFO: PluginInfo = PluginInfo {
        name: "defaults",
        description: "",
        version: "0.0.0",
        url: "",
        config_keys: &[],
        chain_sources_help: "",
    };

    /// A backend with only what every backend must write: the trait's defaults for the rest.
    struct Plain;

    impl Backend for Plain {
        type KeyRef = PlainKeyId;
        type Key = ();
        fn connect(_ctx: &Context, _key: PlainKeyId) -> Result<Self> {
            Ok(Self)
        }
        fn resolve_key(&mut self, _ctx: &Context) -> Result<((), PublicKey)> {
            unreachable!("not asked here")
        }
        fn sign(&mut self, _: &Context, _: &(), _: &Payload) -> Result<BackendSignature> {
            unreachable!("not asked here")
        }
    }

    /// A backend that signs by reference and keeps a chain there, with the default
    /// `sign_unresolved`.
    struct ByReference;

    impl Backend for ByReference {
        type KeyRef = PlainKeyId;
        type Key = ();
        fn connect(_ctx: &Context, _key: PlainKeyId) -> Result<Self> {
            Ok(Self)
        }
        fn resolve_key(&mut self, _ctx: &Context) -> Result<((), PublicKey)> {
            unreachable!("not asked here")
        }
        fn sign(&mut self, _: &Context, _: &(), _: &Payload) -> Result<BackendSignature> {
            unreachable!("not asked here")
        }
        const SIGNS_UNRESOLVED: bool = true;
        fn sign_by_reference(&self, _: &Context, payload: &Payload) -> Result<BackendSignature> {
            Ok(BackendSignature::EcdsaFixed(payload.digest.to_vec()))
        }
        fn chain_by_reference(&self, _ctx: &Context) -> Result<Vec<Vec<u8>>> {
            Ok(vec![b"leaf".to_vec(), b"root".to_vec()])
        }
    }

    fn ctx() -> Context {
        Context::for_key::<PlainKeyId>(&INFO, "k".into(), None)
            .unwrap()
            .0
    }

    #[test]
    fn a_backend_keeps_no_chain_and_resolves_before_signing_unless_it_says_otherwise() {
        let ctx = ctx();
        assert_eq!(
            Plain.chain_by_reference(&ctx).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            Plain.certificate_chain(&ctx, &()).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        let payload = Payload {
            spec: KeySpec::Ec256,
            message: b"m",
            digest: b"d",
        };
        let e = Plain.sign_by_reference(&ctx, &payload).unwrap_err();
        assert!(
            e.message.contains("resolves the key before it signs"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_chain_kept_by_reference_is_the_usual_paths_chain_and_fetched_only_when_asked() {
        let ctx = ctx();
        let chain = vec![b"leaf".to_vec(), b"root".to_vec()];
        assert_eq!(ByReference.certificate_chain(&ctx, &()).unwrap(), chain);
        let payload = Payload {
            spec: KeySpec::Ec256,
            message: b"m",
            digest: b"digest",
        };
        for (fetch_chain, want) in [(true, chain.clone()), (false, Vec::new())] {
            let sign = UnresolvedSign {
                payload,
                fetch_chain,
            };
            let (signature, certificates) = ByReference.sign_unresolved(&ctx, &sign).unwrap();
            assert_eq!(certificates, want, "fetch_chain={fetch_chain}");
            assert!(
                matches!(&signature, BackendSignature::EcdsaFixed(s) if s == b"digest"),
                "{signature:?}"
            );
        }
    }
}
