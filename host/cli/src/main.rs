//! `portcullis`: `server` runs the server (and its host-side admin commands); every other
//! subcommand is an HTTP client of a running server.

mod client;
mod commands;
mod host;
mod output;
mod plugins;
mod policies;

use clap::{Args, Parser, Subcommand};
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
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
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
}

#[derive(Args)]
pub struct Global {
    pub server: String,
    pub output: Format,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        server: cli.server,
        output: cli.output,
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<plugins::CheckFailed>().is_some()
                || e.downcast_ref::<commands::Denied>().is_some() =>
        {
            ExitCode::FAILURE
        }
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
            ExitCode::FAILURE
        }
    }
}
