//! What a plugin's operator commands (`notation-pkcs11 keys`, `notation-aws-kms create-key`,
//! the shared certificate commands) share: clap parsing with the exit codes of the plugins'
//! help (0 for `--help`, 2 for a usage error, 1 for a failed command), and `KEY=VALUE` values.

/// Parses an operator command's arguments as `program` (e.g. `notation-pkcs11`, or
/// `notation-aws-kms create-key`): the parsed command, or the exit code once clap has printed the
/// help (0) or the usage error (2).
pub fn parse<T: clap::Parser>(
    program: &str,
    args: impl IntoIterator<Item = String>,
) -> std::result::Result<T, i32> {
    T::try_parse_from(std::iter::once(program.to_owned()).chain(args)).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            2
        } else {
            0
        }
    })
}

/// The exit code of a command that ran: 0, or 1 after `error: <message>` on stderr.
pub fn exit_code(result: crate::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", e.message);
            1
        }
    }
}

/// A clap value parser for `KEY=VALUE` (`--plugin-config`, `--tag`).
pub fn key_value(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Args {
        #[arg(long, value_parser = key_value)]
        pair: Vec<(String, String)>,
    }

    #[test]
    fn parses_pairs_and_maps_help_and_usage_errors_to_exit_codes() {
        let args: Args = parse("t", ["--pair".into(), "a=b=c".into()]).unwrap();
        assert_eq!(args.pair, [("a".to_owned(), "b=c".to_owned())]);
        assert_eq!(parse::<Args>("t", ["--help".into()]).unwrap_err(), 0);
        assert_eq!(
            parse::<Args>("t", ["--pair".into(), "nope".into()]).unwrap_err(),
            2
        );
        assert_eq!(parse::<Args>("t", ["--unknown".into()]).unwrap_err(), 2);
        assert_eq!(exit_code(Ok(())), 0);
        assert_eq!(exit_code(Err(crate::PluginError::validation("no"))), 1);
    }
}
