//! The single entry point of every plugin binary. It owns all stdio: the request is read from
//! stdin, exactly one JSON document is written to stdout (or a JSON error to stderr, exit 1),
//! and nothing a dependency prints can reach either stream.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;

use crate::backend::Backend;
use crate::config::{Config, LOG_ENV, SHARED_KEYS};
use crate::contract::Command;
use crate::error::PluginError;
use crate::operator::{self, NoCommands, OperatorCommands};
use crate::pipeline::{handle, MAX_REQUEST_BYTES};
use crate::plugin_info::PluginInfo;

/// The original stderr, kept for the JSON error (the panic hook writes there too).
static ERROR_OUT: Mutex<Option<File>> = Mutex::new(None);

/// What to undo when SIGTERM or SIGINT ends an invocation early (close a token's sessions,
/// revoke a login token), registered by the backend with [`on_interrupt`].
type Cleanup = Box<dyn FnOnce() + Send>;
static ON_INTERRUPT: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

/// How long the cleanups may delay the answer to a signal.
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Registers `cleanup` to run if SIGTERM or SIGINT arrives before the invocation ends (never on
/// a normal exit). Cleanups run on their own thread, at most 2 s in all, so
/// a cleanup that hangs cannot hold back the answer.
pub fn on_interrupt(cleanup: impl FnOnce() + Send + 'static) {
    ON_INTERRUPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(cleanup));
}

/// How long after the invocation's deadline the watcher ends a protocol command that has not
/// answered: every backend call is bounded by the deadline itself and reports what it was doing,
/// so this only ends an invocation stuck where nothing else bounds it (a bug, a library call
/// that ignores its timeout).
const BACKSTOP_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// How often the watcher looks for the deadline until it has one. [`end_by`] does not wake it:
/// a thread woken just before the first request competes with it for the other core and the
/// process's memory map (0.1-0.2 ms later to the first request in `scripts/bench.sh`), and an
/// invocation that ends within this never needs the backstop at all.
const BACKSTOP_LOOK: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a watcher runs ([`watch_signals`]; not for get-plugin-metadata, operator commands or
/// unit tests), and the protocol command's deadline once its request is read ([`end_by`]).
static WATCHER: Mutex<Option<Option<crate::Deadline>>> = Mutex::new(None);

/// SIGTERM or SIGINT during a backend call (a CI job cancelled, Ctrl-C) ends the invocation
/// promptly, and so does its deadline passing by [`BACKSTOP_GRACE`] without an answer: the
/// backend's cleanups run (bounded), the answer is a JSON error, exit 1. One thread and one
/// socket: each signal sets its flag and writes to the socket the thread polls, with the
/// deadline's time left (plus the grace) as the poll's timeout once [`end_by`] set it.
fn watch_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::os::fd::IntoRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Ok((wake, woken)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    let (term, int) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    // Open for the process's life, whatever becomes of the thread: the signal handlers write
    // to it.
    let wake = wake.into_raw_fd();
    // Each signal's flag is set before its write to the socket (signal-hook runs a signal's
    // actions in the order they were registered).
    for (signal, flag) in [(SIGTERM, &term), (SIGINT, &int)] {
        let registered = signal_hook::flag::register(signal, flag.clone())
            .and_then(|_| signal_hook::low_level::pipe::register_raw(signal, wake));
        if registered.is_err() {
            return;
        }
    }
    *WATCHER.lock().unwrap_or_else(|p| p.into_inner()) = Some(None);
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let _ = woken.set_nonblocking(true);
            let ended = loop {
                let deadline = WATCHER.lock().unwrap_or_else(|p| p.into_inner()).flatten();
                let wait = deadline.map_or(BACKSTOP_LOOK, |d| d.remaining() + BACKSTOP_GRACE);
                let timeout = rustix::event::Timespec {
                    tv_sec: wait.as_secs() as _,
                    tv_nsec: wait.subsec_nanos() as _,
                };
                let mut fds = [rustix::event::PollFd::new(
                    &woken,
                    rustix::event::PollFlags::IN,
                )];
                match rustix::event::poll(&mut fds, Some(&timeout)) {
                    // Timed out: the deadline passed, or it is time to look for it.
                    Ok(0) => {
                        if let Some(deadline) = deadline {
                            break Ended::Deadline(deadline);
                        }
                    }
                    Ok(_) => {
                        let _ = (&woken).read(&mut [0; 64]);
                        if term.load(Ordering::SeqCst) {
                            break Ended::Signal("SIGTERM");
                        }
                        if int.load(Ordering::SeqCst) {
                            break Ended::Signal("SIGINT");
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return,
                }
            };
            tracing::debug!(?ended, "ending the invocation early; cleaning up");
            let cleaned = run_cleanups();
            let closed = if cleaned {
                "what the plugin had opened on the backend was closed"
            } else {
                "closing what the plugin had opened on the backend did not finish in time"
            };
            fail(match ended {
                Ended::Signal(name) => PluginError::generic(format!(
                    "interrupted by {name} before the backend answered; {closed}"
                )),
                Ended::Deadline(deadline) => {
                    let mut e = deadline.exceeded("waiting for the backend to answer");
                    e.message = format!("{}; {closed}", e.message);
                    e
                }
            })
        });
}

/// Why the watcher ends the invocation.
#[derive(Debug)]
enum Ended {
    Signal(&'static str),
    Deadline(crate::Deadline),
}

/// Runs the registered cleanups on a thread of their own; whether they finished within
/// [`CLEANUP_TIMEOUT`].
fn run_cleanups() -> bool {
    let cleanups = std::mem::take(&mut *ON_INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()));
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("cleanup".into())
        .spawn(move || {
            for cleanup in cleanups {
                cleanup();
            }
            let _ = tx.send(());
        });
    rx.recv_timeout(CLEANUP_TIMEOUT).is_ok()
}

/// Ends the protocol command by `deadline` (plus [`BACKSTOP_GRACE`]), whatever it is stuck
/// in: the watcher then answers with a TIMEOUT error. Does nothing where no watcher runs.
pub(crate) fn end_by(deadline: crate::Deadline) {
    if let Some(at) = WATCHER.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        *at = Some(deadline);
    }
}

/// A plugin's `main`, whose body ends in [`run`] or [`run_with`]:
///
/// ```ignore
/// #![deny(unsafe_code)]
/// #![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]
/// plugin_protocol::main! {
///     plugin_protocol::run::<MyBackend>(&INFO)
/// }
/// ```
///
/// On Linux with glibc it is the C `main` itself (with `#![no_main]`, which the crate must
/// declare as above): std's own start-up, which reads `/proc/self/maps` and maps a signal
/// stack for the stack-overflow message, is 0.1 ms of every invocation there, about 13% of
/// starting `/bin/true` (`scripts/bench.sh`). What it gave that a plugin needs is kept: std
/// reads the arguments on glibc without it, and the runner ignores SIGPIPE itself
/// ([`run_with`]). What is not kept: the "has overflowed its stack" line (an overflow still
/// ends the process, by SIGSEGV), and opening `/dev/null` on a standard stream the parent
/// closed (the runner then reports that it cannot set up its streams). `#[no_mangle]` is why
/// the crate denies rather than forbids `unsafe_code`; the macro allows it for this one item.
/// Elsewhere, and in unit tests, it is a plain `fn main`.
#[macro_export]
macro_rules! main {
    ($($body:tt)*) => {
        #[cfg(not(all(target_os = "linux", target_env = "gnu", not(test))))]
        fn main() {
            $($body)*
        }

        /// The program's entry, called by the C runtime.
        #[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
        #[allow(unsafe_code)]
        #[no_mangle]
        extern "C" fn main(
            _argc: ::std::ffi::c_int,
            _argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            $($body)*
        }
    };
}

/// A closed pipe (to pcscd, a network HSM's daemon, a credential process, notation's stderr)
/// is then an error the plugin reports, not a silent death by SIGPIPE. std's start-up ignores
/// SIGPIPE; a [`main!`] entry on glibc skips that start-up, so the runner does it for every
/// command but get-plugin-metadata (nothing but the answer to write), `--help` and `--version`
/// (where SIGPIPE ends `| head` quietly, as for any command-line tool). Elsewhere std's
/// start-up has run, and this does nothing.
fn ignore_sigpipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGPIPE,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
}

/// Turns off the backtraces that libraries' error types capture (`Backtrace::capture`, which
/// follows `RUST_LIB_BACKTRACE`, else `RUST_BACKTRACE`). No output ever shows one (a user gets
/// the message, never a stack trace), yet with `RUST_BACKTRACE=1` in a CI job's environment
/// each capture walks the stack: Azure's SDK builds an error for every optional header it
/// looks up and finds missing, 0.3-0.4 ms of CPU in each Key Vault invocation. Panics still
/// follow `RUST_BACKTRACE` (the panic hook shows none either). Called before any thread starts,
/// so nothing reads the environment meanwhile.
fn no_library_backtraces() {
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
}

/// What the process needs before its first thread, for every command that can touch a backend.
fn prepare_process() {
    ignore_sigpipe();
    no_library_backtraces();
}

/// Runs the plugin: `notation-<name> <command>`, with the shared operator commands only.
/// Never returns.
pub fn run<B: Backend>(info: &'static PluginInfo) -> ! {
    run_with::<B, NoCommands>(info)
}

/// Like [`run`], with the plugin's own operator commands `C` (`tokens`, `keys`, ...), parsed,
/// listed in `--help` and run by the runner beside the shared ones. A command of `C` whose name
/// is taken ([`operator::check_names`]) stops the plugin at start-up with an error: checked in
/// full for `--help` and every operator command, and for a protocol command by its own name
/// alone (a string comparison, so that get-plugin-metadata builds no command line).
pub fn run_with<B: Backend, C: OperatorCommands>(info: &'static PluginInfo) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("--help" | "-h" | "help") => {
            match operator::command::<C>(info) {
                Ok(cmd) => print!(
                    "{}",
                    help(info, <B::KeyRef as crate::KeyReference>::HELP, &cmd)
                ),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "{}", e.to_json());
                    std::process::exit(1)
                }
            }
            std::process::exit(0)
        }
        Some("--version" | "-V") => {
            println!("notation-{} {}", info.name, info.version);
            std::process::exit(0)
        }
        Some(cmd) => match Command::parse(cmd) {
            Some(_) if C::has_subcommand(cmd) => {
                let e = operator::check_names::<C>(info).err().unwrap_or_else(|| {
                    PluginError::generic(format!("an operator command hides {cmd}"))
                });
                let _ = writeln!(std::io::stderr(), "{}", e.to_json());
                std::process::exit(1)
            }
            Some(command) => run_protocol::<B>(info, command),
            None => {
                prepare_process();
                match operator::command::<C>(info) {
                    Ok(commands) if commands.find_subcommand(cmd).is_some() => {
                        std::process::exit(operator::dispatch::<B, C>(info, commands, &args))
                    }
                    Ok(_) => {}
                    Err(e) => std::process::exit(operator::exit_code(Err(e))),
                }
                let err = PluginError::validation(format!(
                    "unknown command '{cmd}'; notation-{} answers get-plugin-metadata, \
                     describe-key and generate-signature (run it with --help)",
                    info.name
                ));
                let _ = writeln!(std::io::stderr(), "{}", err.to_json());
                std::process::exit(1)
            }
        },
    }
}

fn run_protocol<B: Backend>(info: &'static PluginInfo, command: Command) -> ! {
    let (mut out, err) = match take_stdio(info, command) {
        Ok(pair) => pair,
        Err(e) => {
            let err = PluginError::generic(format!("cannot set up standard streams: {e}"));
            let _ = writeln!(std::io::stderr(), "{}", err.to_json());
            std::process::exit(1)
        }
    };
    *ERROR_OUT.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
    // get-plugin-metadata touches no backend: a signal may end it the default way, and its
    // start (notation runs it before every signature) spawns no watcher thread.
    if command != Command::GetPluginMetadata {
        prepare_process();
        watch_signals();
    }
    std::panic::set_hook(Box::new(|panic| {
        let what = panic
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = panic
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("panic: {what}{place}");
        fail(PluginError::generic(format!(
            "internal error in the plugin ({what}{place}); please report it with the command and \
             NOTATION_PLUGIN_LOG output"
        )))
    }));

    let mut input = Vec::new();
    let read = std::io::stdin()
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut input);
    let result = match read {
        Err(e) => Err(PluginError::generic(format!(
            "cannot read the request from stdin: {e}"
        ))),
        Ok(n) if n > MAX_REQUEST_BYTES => Err(PluginError::validation(format!(
            "the request on stdin is larger than {} MiB",
            MAX_REQUEST_BYTES >> 20
        ))),
        Ok(_) => handle::<B>(info, command, &input),
    };
    match result {
        Ok(json) => {
            // The answer, or the watcher's error (a signal, the deadline), never both.
            let _answering = ERROR_OUT.lock().unwrap_or_else(|p| p.into_inner());
            if out
                .write_all(json.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                std::process::exit(1)
            }
            std::process::exit(0)
        }
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "failed");
            fail(e)
        }
    }
}

fn fail(err: PluginError) -> ! {
    let mut guard = ERROR_OUT.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_mut() {
        Some(f) => {
            let _ = f.write_all(err.to_json().as_bytes());
            let _ = f.flush();
        }
        None => {
            let _ = std::io::stderr().write_all(err.to_json().as_bytes());
        }
    }
    std::process::exit(1)
}

/// Keeps private copies of stdout and stderr for the response and the error, then points fd 1
/// and fd 2 at the debug log (when `NOTATION_PLUGIN_LOG` names a log that can be written) or
/// `/dev/null`, so that no library output can corrupt what notation parses.
fn take_stdio(info: &PluginInfo, command: Command) -> std::io::Result<(File, File)> {
    let out = File::from(rustix::io::dup(std::io::stdout())?);
    let err = File::from(rustix::io::dup(std::io::stderr())?);
    let log = std::env::var_os(LOG_ENV)
        .filter(|p| !p.is_empty())
        .and_then(|path| open_log(std::path::Path::new(&path), info, command));
    let sink = match log {
        Some(file) => {
            if let Ok(writer) = file.try_clone() {
                let _ = tracing_subscriber::fmt()
                    .with_writer(Mutex::new(LogWriter(writer)))
                    .with_ansi(false)
                    .with_max_level(tracing::Level::DEBUG)
                    .log_internal_errors(false)
                    .try_init();
            }
            file
        }
        None => File::options().write(true).open("/dev/null")?,
    };
    rustix::stdio::dup2_stdout(&sink)?;
    rustix::stdio::dup2_stderr(&sink)?;
    Ok((out, err))
}

/// The debug log, if it can be written: a regular file (or a character device such as a
/// terminal) that took a first line. A missing folder, a directory, a FIFO (opened without
/// blocking, never written to), a full disk or an EIO device give `None`: the log is optional
/// and the plugin then runs silently, with the same answer.
fn open_log(path: &std::path::Path, info: &PluginInfo, command: Command) -> Option<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .ok()?;
    let kind = file.metadata().ok()?.file_type();
    if !(kind.is_file() || kind.is_char_device()) {
        return None;
    }
    rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::APPEND).ok()?;
    let first = format!(
        "--- notation-{} {} (pid {})\n",
        info.name,
        command.as_str(),
        std::process::id()
    );
    file.write_all(first.as_bytes())
        .and_then(|_| file.flush())
        .ok()?;
    Some(file)
}

/// The debug log's writer: a write that fails (the disk filled up meanwhile) is dropped, never
/// reported (stderr is the log itself) and never retried.
struct LogWriter(File);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The human help printed for no arguments or `--help`; `commands` is the plugin's operator
/// command line ([`operator::command`]), whose subcommands are listed with their `about`.
pub fn help(info: &PluginInfo, key_id_help: &str, commands: &clap::Command) -> String {
    use std::fmt::Write as _;
    let name = info.name;
    let mut h = String::new();
    let _ = writeln!(h, "notation-{name} {} — {}", info.version, info.description);
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "A plugin for the Notary Project's `notation` CLI, which runs it for you:"
    );
    let _ = writeln!(
        h,
        "  notation plugin install --file notation-{name}_<version>_linux_amd64.tar.gz"
    );
    let _ = writeln!(
        h,
        "  notation key add <name> --plugin {name} --id <KEY_ID> [--plugin-config KEY=VALUE]..."
    );
    let _ = writeln!(
        h,
        "  notation sign --key <name> <registry>/<repository>@<digest>"
    );
    let _ = writeln!(h);
    let _ = writeln!(h, "KEY_ID: {key_id_help}");
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "Protocol commands (JSON request on stdin, JSON response on stdout, JSON error on stderr):"
    );
    let _ = writeln!(h, "  get-plugin-metadata, describe-key, generate-signature");
    let (shared, own): (Vec<_>, Vec<_>) = operator::summaries(commands)
        .into_iter()
        .partition(|(cmd, _)| operator::SHARED_COMMANDS.contains(&cmd.as_str()));
    if !own.is_empty() {
        let _ = writeln!(h);
        let _ = writeln!(
            h,
            "Operator commands (run `notation-{name} <command> --help`):"
        );
        for (cmd, what) in own {
            let _ = writeln!(h, "  {cmd:<20} {what}");
        }
    }
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "Certificate and trust commands (run `notation-{name} <command> --help`):"
    );
    for (cmd, what) in shared {
        let _ = writeln!(h, "  {cmd:<20} {what}");
    }
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "Configuration: pluginConfig key, else environment variable(s):"
    );
    for key in SHARED_KEYS.iter().chain(info.config_keys) {
        let mut vars = vec![Config::env_name(info, key.name)];
        vars.extend(key.env.iter().map(|s| s.to_string()));
        let _ = writeln!(h, "  {:<18} {}", key.name, vars.join(", "));
        let _ = writeln!(
            h,
            "  {:<18} {}{}",
            "",
            key.help,
            if key.secret { " (secret)" } else { "" }
        );
    }
    let _ = writeln!(h);
    let _ = writeln!(
        h,
        "Debug log: set {LOG_ENV}=/path/to/file (off by default; secrets are never logged)."
    );
    h
}
