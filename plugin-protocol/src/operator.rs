//! Operator commands (`notation-pkcs11 keys`, `notation-aws-kms create-key`, the shared
//! certificate commands): a plugin declares its own as a clap [`clap::Subcommand`] enum that
//! implements [`OperatorCommands`] and hands it to [`crate::run_with`]; the runner merges them
//! with the shared ones ([`SHARED_COMMANDS`]) into one clap command, refuses a name clash at
//! start-up, lists them in `--help` from their clap `about`, parses, runs, and maps the exit
//! codes (0 for `--help`, 2 for a usage error, 1 for a failed command). `KEY=VALUE` values too.

use clap::{FromArgMatches, Subcommand};

use crate::contract::Command;
use crate::plugin_info::PluginInfo;

/// A plugin's own operator commands: a clap subcommand enum, one variant a command. The first
/// paragraph of a variant's doc comment is its one line in `notation-<name> --help`.
pub trait OperatorCommands: Subcommand {
    /// Runs the parsed command; an error is printed as `error: <message>`, exit 1.
    fn run(self) -> crate::Result<()>;
}

/// The operator commands of a plugin that has none of its own ([`crate::run`]).
#[derive(Subcommand, Debug)]
pub enum NoCommands {}

impl OperatorCommands for NoCommands {
    fn run(self) -> crate::Result<()> {
        match self {}
    }
}

/// The commands every plugin gets from the shared crate ([`crate::certificates`]).
pub const SHARED_COMMANDS: [&str; 4] = ["certificate", "ca", "public-key", "trust"];

/// What the runner answers itself before any command: help and version.
const RUNNER_WORDS: [&str; 5] = ["help", "--help", "-h", "--version", "-V"];

/// Refuses operator commands `C` whose name (or alias) is already taken by a protocol command,
/// a shared command or the runner's help: such a command would never run, or would hide one.
/// No I/O: the runner checks it for `--help` and every operator command ([`command`]), and a
/// protocol command by its name alone (`Subcommand::has_subcommand`).
pub fn check_names<C: OperatorCommands>(info: &PluginInfo) -> crate::Result<()> {
    let taken = Command::ALL
        .iter()
        .map(|c| (c.as_str(), "a protocol command"))
        .chain(SHARED_COMMANDS.iter().map(|c| (*c, "a shared command")))
        .chain(RUNNER_WORDS.iter().map(|c| (*c, "the runner's help")));
    let own = C::augment_subcommands(clap::Command::new(info.name));
    let own: Vec<&str> = own
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .collect();
    for (name, what) in taken {
        if own.contains(&name) {
            return Err(crate::PluginError::generic(format!(
                "notation-{} is built with an operator command '{name}', which is already {what}; \
                 rename the plugin's command",
                info.name
            )));
        }
    }
    Ok(())
}

/// The plugin's whole operator command line: the shared commands, then the plugin's `C`,
/// checked by [`check_names`].
pub fn command<C: OperatorCommands>(info: &PluginInfo) -> crate::Result<clap::Command> {
    check_names::<C>(info)?;
    let cmd = clap::Command::new(info.name)
        .bin_name(format!("notation-{}", info.name))
        .disable_help_subcommand(true)
        .subcommand_required(true);
    Ok(C::augment_subcommands(crate::certificates::augment(cmd)))
}

/// The (name, one-line help) of each visible subcommand of `cmd`, for `--help`.
pub(crate) fn summaries(cmd: &clap::Command) -> Vec<(String, String)> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            (c.get_name().to_owned(), about)
        })
        .collect()
}

/// Parses `args` (after the program name) with `cmd` ([`command`]) as one of the plugin's
/// operator commands and runs it: the exit code (0, 1 for a failed command, 2 for a usage
/// error).
pub(crate) fn dispatch<B: crate::Backend, C: OperatorCommands>(
    info: &'static PluginInfo,
    cmd: clap::Command,
    args: &[String],
) -> i32 {
    let program = format!("notation-{}", info.name);
    let matches = match cmd.try_get_matches_from(std::iter::once(program).chain(args.to_vec())) {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    let shared = matches
        .subcommand_name()
        .is_some_and(|n| SHARED_COMMANDS.contains(&n));
    if shared {
        match crate::certificates::Top::from_arg_matches(&matches) {
            Ok(top) => exit_code(crate::certificates::execute::<B>(info, top)),
            Err(e) => clap_exit(e),
        }
    } else {
        match C::from_arg_matches(&matches) {
            Ok(own) => exit_code(own.run()),
            Err(e) => clap_exit(e),
        }
    }
}

/// Prints clap's help or usage error: 0 for help, 2 for a usage error.
fn clap_exit(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        2
    } else {
        0
    }
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

    /// A plugin's commands as a backend author writes them.
    #[derive(Subcommand, Debug)]
    enum Ops {
        /// run a command
        ///
        /// Runs a command, at length.
        Run {
            #[arg(long, value_parser = key_value)]
            pair: Vec<(String, String)>,
            #[arg(long)]
            fail: bool,
        },
    }

    impl OperatorCommands for Ops {
        fn run(self) -> crate::Result<()> {
            let Ops::Run { pair, fail } = self;
            if fail || pair != [("a".to_owned(), "b=c".to_owned())] {
                return Err(crate::PluginError::validation("failed"));
            }
            Ok(())
        }
    }

    #[derive(Subcommand, Debug)]
    enum ClashesWithShared {
        /// a second trust
        Trust,
    }

    #[derive(Subcommand, Debug)]
    enum ClashesWithProtocol {
        /// a second describe-key
        DescribeKey,
    }

    #[derive(Subcommand, Debug)]
    enum ClashesByAlias {
        /// a command also called ca
        #[command(alias = "ca")]
        Authority,
    }

    #[derive(Subcommand, Debug)]
    enum ClashesWithHelp {
        /// a command the runner's help hides
        Help,
    }

    macro_rules! impl_ops {
        ($($t:ty),*) => {$(
            impl OperatorCommands for $t {
                fn run(self) -> crate::Result<()> {
                    Ok(())
                }
            }
        )*};
    }
    impl_ops!(
        ClashesWithShared,
        ClashesWithProtocol,
        ClashesByAlias,
        ClashesWithHelp
    );

    static INFO: PluginInfo = PluginInfo {
        name: "test",
        description: "",
        version: "0.0.0",
        url: "",
        config_keys: &[],
        chain_sources_help: "",
    };

    #[test]
    fn a_command_whose_name_is_taken_stops_the_plugin() {
        let refused = |e: crate::PluginError, name: &str, what: &str| {
            assert!(
                e.message.contains(&format!("command '{name}'")),
                "{}",
                e.message
            );
            assert!(e.message.contains(what), "{}", e.message);
        };
        let e = check_names::<ClashesWithShared>(&INFO).unwrap_err();
        refused(e, "trust", "a shared command");
        let e = check_names::<ClashesWithProtocol>(&INFO).unwrap_err();
        refused(e, "describe-key", "a protocol command");
        let e = check_names::<ClashesByAlias>(&INFO).unwrap_err();
        refused(e, "ca", "a shared command");
        let e = check_names::<ClashesWithHelp>(&INFO).unwrap_err();
        refused(e, "help", "the runner's help");
        // The merged command line refuses them too, and takes the others.
        assert!(command::<ClashesWithShared>(&INFO).is_err());
        check_names::<Ops>(&INFO).unwrap();
        check_names::<NoCommands>(&INFO).unwrap();
    }

    #[test]
    fn the_merged_command_line_lists_shared_then_own_commands_with_their_summary() {
        let cmd = command::<Ops>(&INFO).unwrap();
        let listed = summaries(&cmd);
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["certificate", "ca", "public-key", "trust", "run"]);
        assert_eq!(listed[4].1, "run a command");
        let shared = summaries(&command::<NoCommands>(&INFO).unwrap());
        let shared: Vec<&str> = shared.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(shared, SHARED_COMMANDS);
        assert!(cmd.find_subcommand("run").is_some() && cmd.find_subcommand("trust").is_some());
        assert!(cmd.find_subcommand("describe-key").is_none());
    }

    #[cfg(feature = "softkey")]
    #[test]
    fn parses_runs_and_maps_help_usage_and_failures_to_exit_codes() {
        let info = &crate::softkey::INFO;
        let code = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let cmd = command::<Ops>(info).unwrap();
            dispatch::<crate::softkey::SoftKeyBackend, Ops>(info, cmd, &args)
        };
        assert_eq!(code(&["run", "--pair", "a=b=c"]), 0);
        assert_eq!(code(&["run", "--help"]), 0);
        assert_eq!(code(&["run", "--pair", "nope"]), 2);
        assert_eq!(code(&["run", "--unknown"]), 2);
        assert_eq!(code(&["run", "--pair", "a=b=c", "--fail"]), 1);
        assert_eq!(code(&["trust", "export", "--help"]), 0);
        assert_eq!(code(&["trust", "export", "--bogus"]), 2);
        assert_eq!(exit_code(Ok(())), 0);
        assert_eq!(exit_code(Err(crate::PluginError::validation("no"))), 1);
    }
}
