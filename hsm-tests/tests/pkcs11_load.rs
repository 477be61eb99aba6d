//! Many notation processes signing with one SoftHSM2 token at once, as parallel CI jobs do:
//! 32 concurrent generate-signature calls, several rounds, every one signs.
//!
//! `NOTATION_TEST_ROUNDS` sets the number of rounds (default 10: about 6 s here; fewer on a slow
//! machine).

use base64::Engine as _;
use hsm_tests::softhsm::SoftToken;
use plugin_protocol::contract::GenerateSignatureResponse;
use plugin_protocol::testca::TestCa;
use plugin_protocol::KeySpec;

#[test]
fn thirty_two_concurrent_signers_on_one_token() {
    let rounds: usize = std::env::var("NOTATION_TEST_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let token = SoftToken::new("busy32");
    let uri = token.generate("k", KeySpec::Ec256);
    let ca = TestCa::new("CN=Root");
    token.import_chain(&uri, &ca.issue_leaf(&token.public_key(&uri), "CN=busy"));
    let key = token.public_key(&uri);
    let client = token.client();
    let mut failures = Vec::new();
    for round in 0..rounds {
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..32)
                .map(|i| {
                    let (client, uri) = (client.clone(), uri.clone());
                    s.spawn(move || {
                        let payload = format!("round {round} signer {i}");
                        let inv = client
                            .generate_signature(
                                &uri,
                                KeySpec::Ec256,
                                KeySpec::Ec256.hash_algorithm(),
                                payload.as_bytes(),
                                None,
                            )
                            .unwrap();
                        (payload, inv)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (payload, inv) in results {
            if !inv.succeeded() {
                failures.push(format!("{payload}: {}", inv.stderr_text()));
                continue;
            }
            let resp: GenerateSignatureResponse = inv.response().unwrap();
            let sig = base64::engine::general_purpose::STANDARD
                .decode(resp.signature)
                .unwrap();
            let hash = KeySpec::Ec256.hash_algorithm();
            plugin_protocol::signature::verify_digest(
                &key,
                hash,
                &hash.digest(payload.as_bytes()),
                &sig,
            )
            .unwrap_or_else(|p| panic!("signature for '{payload}' does not verify: {p}"));
        }
    }
    println!(
        "32 x {rounds}: {} of {} failed",
        failures.len(),
        32 * rounds
    );
    assert!(
        failures.is_empty(),
        "{} of {} signatures failed:\n{}",
        failures.len(),
        32 * rounds,
        failures.join("\n")
    );
}
