#!/usr/bin/env bash
# The main job, on a fresh machine: builds notation-pkcs11 and the conformance checker, creates a
# throwaway SoftHSM2 token in the demo folder, generates an EC P-384 signing key and an
# offline-style root CA key on it, issues the signing key's certificate chain with the plugin's
# own `ca` commands, signs a sample artifact through the plugin exactly as notation does (JWS and
# COSE, via notation-plugin-check), verifies both signatures against the root, and prints the
# notation commands to run next. If `notation` is on PATH it also runs a real
# `notation blob sign` / `notation blob verify` in a private notation configuration.
#
# Usage: scripts/demo.sh [--no-build]
#   --no-build  use the binaries already in the target directory (the test of this script)
# The demo folder is ${NOTATION_PLUGINS_DEMO_DIR:-~/.local/share/notation-plugins/demo}: outside
# the cargo target directory, so `cargo clean` keeps what the printed commands point at.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
source scripts/cargo-env.sh

scripts/install-deps.sh

build=yes
case "${1:-}" in
  --no-build) build=no ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--no-build]" >&2; exit 2 ;;
esac
if [ "$build" = yes ]; then
  echo "==> building notation-pkcs11 and notation-plugin-check (debug profile; on a fresh machine"
  echo "    this compiles about 150 crates and takes several minutes on 2 cores; cargo shows progress)"
  cargo build -p notation-pkcs11 -p notation-plugin-check
fi
bin="$CARGO_TARGET_DIR/debug"
plugin="$bin/notation-pkcs11"
check="$bin/notation-plugin-check"

demo="${NOTATION_PLUGINS_DEMO_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/notation-plugins/demo}"
rm -rf "$demo"
mkdir -p "$demo"
echo "==> creating a throwaway SoftHSM token in $demo/softhsm"
softhsm/create-token.sh "$demo/softhsm" demo >/dev/null
export SOFTHSM2_CONF="$demo/softhsm/softhsm2.conf"
module=/usr/lib/softhsm/libsofthsm2.so
query="module-path=$module&pin-source=file:$demo/softhsm/user.pin"
"$plugin" tokens --module "$module"

echo "==> generating keys on the token: an EC-384 signing key and an EC-384 root CA key"
key_uri="$("$plugin" generate-key --key-id "pkcs11:token=demo;object=release-key?$query" --spec EC-384)"
root_uri="$("$plugin" generate-key --key-id "pkcs11:token=demo;object=demo-root?$query" --spec EC-384)"
echo "signing key: $key_uri"

echo "==> issuing the certificate chain with the token's root key"
"$plugin" ca init --key-id "$root_uri" --subject "CN=Demo Signing Root,O=Notation Plugins Demo,ST=Washington,C=US" \
  --days 30 --out "$demo/root.pem"
"$plugin" ca issue --ca-key-id "$root_uri" --ca-cert "$demo/root.pem" \
  --public-key-of "$key_uri" --subject "CN=release signer,O=Notation Plugins Demo,ST=Washington,C=US" \
  --days 7 --out "$demo/chain.pem"
"$plugin" import-certificate --key-id "$key_uri" --chain "$demo/chain.pem"
openssl x509 -in "$demo/chain.pem" -noout -subject -issuer -ext keyUsage,extendedKeyUsage

echo "==> signing a sample artifact through the plugin exactly as notation does"
printf 'sample release artifact, built %s\n' "$(date -u +%FT%TZ)" >"$demo/artifact.txt"
"$check" "$plugin" --key-id "$key_uri" --envelope both --blob "$demo/artifact.txt" --out "$demo/signatures"

echo "==> verifying the signatures against the root"
for format in jws cose; do
  "$check" verify "$demo/signatures/artifact.txt.$format.sig" --blob "$demo/artifact.txt" \
    --trust-anchor "$demo/root.pem"
done

echo "==> what a verifier installs: the root and a trust policy pinning the signer (trust export)"
"$plugin" trust export --key-id "$key_uri" --out "$demo/trust" --blob --store demo

verified_by="notation-plugin-check, which re-checks the envelopes as notation-go does (notation itself is not installed)"
if command -v notation >/dev/null; then
  echo "==> notation found: real notation blob sign / blob verify (private configuration)"
  export XDG_CONFIG_HOME="$demo/notation-config"
  mkdir -p "$XDG_CONFIG_HOME/notation/plugins/pkcs11"
  install -m 0755 "$plugin" "$XDG_CONFIG_HOME/notation/plugins/pkcs11/notation-pkcs11"
  notation plugin ls
  notation cert add --type ca --store demo "$demo/trust/demo/demo-signing-root.pem"
  cp "$demo/trust/trustpolicy.blob.json" "$XDG_CONFIG_HOME/notation/trustpolicy.blob.json"
  notation key add demo-key --plugin pkcs11 --id "$key_uri"
  for format in jws cose; do
    notation blob sign --key demo-key --signature-format "$format" \
      --signature-directory "$demo/notation-signatures" --force "$demo/artifact.txt"
    notation blob verify --policy-name demo \
      --signature "$demo/notation-signatures/artifact.txt.$format.sig" "$demo/artifact.txt"
  done
  verified_by="notation blob verify (and notation-plugin-check)"
else
  echo "==> notation is not on PATH: skipped the real notation blob sign / verify"
fi

cat <<NEXT

Done: the artifact was signed by a key that never left the token, and both envelopes (JWS, COSE)
verify against the root, as checked by $verified_by.
Files are in $demo (token, root.pem, chain.pem, signatures/, trust/).

Next, with notation installed (https://notaryproject.dev/docs/user-guides/installation/cli/):

  scripts/install.sh pkcs11            # or: notation plugin install --file notation-pkcs11_<version>_linux_amd64.tar.gz
  export SOFTHSM2_CONF=$SOFTHSM2_CONF
  notation cert add --type ca --store demo $demo/trust/demo/demo-signing-root.pem
  notation blob policy import $demo/trust/trustpolicy.blob.json
  notation key add demo-key --plugin pkcs11 --id '$key_uri'
  notation blob sign --key demo-key $demo/artifact.txt
  notation blob verify --signature artifact.txt.jws.sig $demo/artifact.txt
NEXT
