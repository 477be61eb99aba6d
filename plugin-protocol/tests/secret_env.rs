//! A secret in an environment variable: read with its source, unset or empty is none. (Its own
//! test binary: it sets process environment variables.)

use plugin_protocol::secret::Secret;

#[test]
fn a_secret_in_the_environment_is_read_with_its_variable_and_empty_is_unset() {
    let var = "NOTATION_SECRET_ENV_TEST_TOKEN";
    std::env::set_var(var, "s.3nv");
    let secret = Secret::from_env(var).expect("set");
    assert_eq!(&secret.bytes[..], b"s.3nv");
    assert_eq!(secret.source, format!("environment variable {var}"));
    assert!(!format!("{secret:?}").contains("s.3nv"));
    std::env::set_var(var, "");
    assert!(Secret::from_env(var).is_none(), "empty counts as unset");
    std::env::remove_var(var);
    assert!(Secret::from_env(var).is_none());
}
