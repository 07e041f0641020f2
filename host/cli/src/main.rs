//! `portcullis`: `server` runs the server (and its host-side admin commands); every other
//! subcommand is an HTTP client of a running server.

mod client;
mod commands;
mod host;
mod output;
mod plugins;
mod policies;

use clap::{CommandFactory, Parser, Subcommand};
use output::Format;
use std::process::ExitCode;

/// jemalloc instead of glibc malloc: per-thread caches suit a server that allocates small
/// request-scoped objects on every worker, and it returns freed memory to the OS over time
/// (docs/benchmarks.md has the figures).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Identity server with WebAssembly authorization plugins"
)]
struct Cli {
    /// Server URL for client commands.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_SERVER",
        default_value = "http://127.0.0.1:8700"
    )]
    server: String,
    /// Output format of client commands.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = output::OutputArg::Table)]
    output: output::OutputArg,
    /// Tables without their header line (for scripts).
    #[arg(long, global = true)]
    no_headers: bool,
    /// Read the API key (from `keys create`, an access token, the IACT admin's key) from
    /// the first line of FILE instead of using the key `portcullis login` stored. The
    /// environment variable PORTCULLIS_API_KEY does the same with the key itself.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "PORTCULLIS_API_KEY_FILE"
    )]
    api_key_file: Option<std::path::PathBuf>,
    /// Trust the CA certificate(s) in FILE (PEM) for an https:// server, instead of the
    /// public roots (a private or self-signed certificate).
    #[arg(long, global = true, value_name = "FILE", env = "PORTCULLIS_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server, or a host-side admin command.
    Server(host::ServerArgs),
    /// Log in and store the API key in ~/.config/portcullis/credentials.
    Login(commands::LoginArgs),
    /// Revoke the stored key and forget it.
    Logout,
    /// Show who the stored key belongs to.
    Whoami,
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(commands::AccountsCmd),
    /// Manage users.
    #[command(subcommand)]
    Users(commands::UsersCmd),
    /// Manage personal API keys.
    #[command(subcommand)]
    Keys(commands::KeysCmd),
    /// Work with authorizer plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCmd),
    /// Manage application policies (each an AuthZEN PDP at /policies/NAME).
    #[command(subcommand)]
    Policies(policies::PoliciesCmd),
    /// Ask the server for a decision (exit 0 = allow, 1 = deny).
    Authorize(commands::AuthorizeArgs),
    /// Read the decision log.
    Decisions(commands::DecisionsArgs),
    /// Access tokens (REANA): request, grant, revoke.
    #[command(subcommand)]
    Tokens(commands::TokensCmd),
    /// Read the audit log.
    Audit(commands::AuditArgs),
    /// Print this CLI's version, and the server's when it answers (`--server`).
    Version,
    /// Print a shell completion script, e.g.
    /// `portcullis completion bash > /etc/bash_completion.d/portcullis`.
    Completion {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (troff): portcullis(1) to stdout, or with --dir one page per
    /// command into DIR (e.g. /usr/local/share/man/man1).
    Man {
        /// Write one page per command into DIR instead of portcullis(1) to stdout.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// What every client command is given: the server and the output format.
pub struct Global {
    pub server: String,
    pub output: Format,
}

/// Exit codes: 0 success (an allow), 1 a deny (`authorize`) or a failed check (`plugins
/// check`, `policies check`), 2 an error (printed as one `error:` line).
const EXIT_NEGATIVE: u8 = 1;
const EXIT_ERROR: u8 = 2;
/// A reader that went away (`portcullis users export | head`): 128 + SIGPIPE, what a
/// Unix tool killed by the signal reports, and nothing printed.
const EXIT_BROKEN_PIPE: u8 = 141;

/// Whether `e` is a write to a pipe whose reader has gone.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` panics when stdout's reader has gone: end quietly instead, as `cat` does.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") {
            std::process::exit(EXIT_BROKEN_PIPE.into());
        }
        default(info)
    }));
}

/// `portcullis man`: the manual pages from the command definitions.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing the manual pages to {}", dir.display()))?;
            Ok(())
        }
        None => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let setup =
        client::use_key_from(cli.api_key_file.as_deref()).and_then(|()| match &cli.ca_file {
            Some(f) => client::use_ca_file(f),
            None => Ok(()),
        });
    if let Err(e) = setup {
        eprintln!(
            "error: {}",
            portcullis_core::names::printable(&format!("{e:#}"), 4096)
        );
        return ExitCode::from(EXIT_ERROR);
    }
    output::set_style(output::Style {
        yaml: cli.output == output::OutputArg::Yaml,
        wide: cli.output == output::OutputArg::Wide,
        no_headers: cli.no_headers,
    });
    let global = Global {
        server: cli.server,
        output: cli.output.format(),
    };
    let result = match cli.command {
        Command::Server(args) => host::run(args),
        Command::Login(args) => commands::login(&global, args),
        Command::Logout => commands::logout(&global),
        Command::Whoami => commands::whoami(&global),
        Command::Accounts(c) => commands::accounts(&global, c),
        Command::Users(c) => commands::users(&global, c),
        Command::Keys(c) => commands::keys(&global, c),
        Command::Plugins(c) => plugins::run(&global, c),
        Command::Policies(c) => policies::run(&global, c),
        Command::Authorize(a) => commands::authorize(&global, a),
        Command::Decisions(a) => commands::decisions(&global, a),
        Command::Tokens(c) => commands::tokens(&global, c),
        Command::Audit(a) => commands::audit(&global, a),
        Command::Version => commands::version(&global),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "portcullis",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { dir } => man(dir.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<plugins::CheckFailed>().is_some()
                || e.downcast_ref::<commands::Denied>().is_some() =>
        {
            ExitCode::from(EXIT_NEGATIVE)
        }
        Err(e) if broken_pipe(&e) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(e) if e.downcast_ref::<host::Reported>().is_some() => ExitCode::from(EXIT_ERROR),
        Err(e) => {
            let mut msg = e.to_string();
            if let Some(cause) = e.chain().nth(1) {
                if !msg.contains(&cause.to_string()) {
                    msg = format!("{msg}: {cause}");
                }
            }
            // One line, and nothing a server or a plugin wrote can drive the terminal.
            let msg = msg.replace('\n', " ");
            eprintln!("error: {}", portcullis_core::names::printable(&msg, 4096));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for (`--help`, the man
    /// pages and completions show it).
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !cmd.is_hide_set() {
                missing.push(format!("{path}: the command"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }
}
