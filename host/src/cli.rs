//! The command line: `tessera [-c FILE] run | check-config | user … | module … | client … |
//! config reload | status`.

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::admin::{self, AdminRequest, Reply};
use crate::config::Config;
use crate::data_dir::{self, DataDirError};
use crate::store::Store as _;

/// Tessera, a modular XMPP server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// Config file (default: ./tessera.toml if present, else the embedded default).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Run,
    /// Check the config (and the enabled plugin files and their options), start nothing.
    CheckConfig,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect, load, unload and reload modules of the running server.
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Configuration of the running server.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The running server's figures (JSON): sessions, connections and their caps, SASL
    /// exchanges in progress, runtime tasks, modules.
    Status,
    /// An account's clients (XEP-0494), on the running server.
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `tessera client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List the clients that can reach an account: id, software, device, how they log in, the
    /// age of their token, their sessions, their last login.
    List {
        /// `user@domain` or `user`.
        jid: String,
    },
    /// Revoke one client: its tokens die and its sessions close; other clients are untouched.
    Revoke {
        /// `user@domain` or `user`.
        jid: String,
        /// The id `client list` showed.
        id: String,
    },
}

/// `tessera config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Re-read the config file the server started with and load or unload modules to match
    /// `modules_enabled` (as SIGHUP does); a bad config is refused and the running one kept.
    Reload,
}

/// `tessera user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin (one line).
    Add {
        /// `user@domain` or `user`.
        jid: String,
        /// Email address for password reset.
        #[arg(long)]
        email: Option<String>,
    },
    /// Change a password (stdin, one line); a running server closes the account's sessions.
    Passwd {
        /// `user@domain` or `user`.
        jid: String,
    },
    /// Delete an account.
    Del {
        /// `user@domain` or `user`.
        jid: String,
    },
    /// List accounts.
    List,
}

/// `tessera module …`.
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// List module generations (name, version, build, file, load time, mapped size, state:
    /// running, draining or retired).
    List,
    /// Load a module that is not running (options from the server's current config).
    Load {
        /// Module name (`sasl2` is `libmod_sasl2.so` in `plugin_dir`).
        name: String,
    },
    /// Unload a running module; connected sessions stay up.
    Unload {
        /// Module name.
        name: String,
        /// Unload even if other loaded modules depend on it.
        #[arg(long)]
        force: bool,
    },
    /// Replace a running module with the current build of its file, handing its state over.
    Reload {
        /// Module name.
        name: String,
    },
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    // Before any thread or file exists: everything this process creates is owner-only.
    crate::data_dir::private_umask();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera: config error: {e}");
            if matches!(cli.command, Command::Config(ConfigCommand::Reload)) {
                eprintln!("tessera: nothing was reloaded; a running server keeps its config");
            }
            return 2;
        }
    };
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(dispatch(cli.command, config))
}

/// The log on stderr: text, or one JSON object per line (`log_format = "json"`: timestamp,
/// level, target, the span names, and the event's fields, `message` among them: the fields of
/// the text log, so nothing is logged in one format that the other does not show).
fn init_tracing(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        crate::config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

async fn dispatch(command: Command, config: Config) -> i32 {
    match command {
        Command::Run => match crate::run(config).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tessera: {e}");
                e.exit_code()
            }
        },
        Command::CheckConfig => match crate::startup::prepare_modules(&config) {
            Ok(mods) => {
                println!(
                    "config OK: domain {}, {} module(s): {}",
                    config.domain,
                    mods.len(),
                    mods.iter()
                        .map(|m| m.library.info.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                0
            }
            Err(e) => {
                eprintln!("tessera: {e}");
                e.exit_code()
            }
        },
        Command::User(cmd) => user(cmd, &config).await,
        Command::Module(cmd) => admin_only(&config, module_request(cmd)).await,
        Command::Config(ConfigCommand::Reload) => {
            admin_only(&config, AdminRequest::ConfigReload).await
        }
        Command::Status => admin_only(&config, AdminRequest::Status).await,
        Command::Client(cmd) => {
            let request = match cmd {
                ClientCommand::List { jid } => {
                    localpart(&jid, &config).map(|user| AdminRequest::ClientList { user })
                }
                ClientCommand::Revoke { jid, id } => {
                    localpart(&jid, &config).map(|user| AdminRequest::ClientRevoke { user, id })
                }
            };
            match request {
                Ok(request) => admin_only(&config, request).await,
                Err(e) => {
                    eprintln!("tessera: {e}");
                    2
                }
            }
        }
    }
}

fn module_request(cmd: ModuleCommand) -> AdminRequest {
    match cmd {
        ModuleCommand::List => AdminRequest::ModuleList,
        ModuleCommand::Load { name } => AdminRequest::ModuleLoad { name },
        ModuleCommand::Unload { name, force } => AdminRequest::ModuleUnload { name, force },
        ModuleCommand::Reload { name } => AdminRequest::ModuleReload { name },
    }
}

fn localpart(jid: &str, config: &Config) -> Result<String, String> {
    match jid.rsplit_once('@') {
        Some((local, domain)) if domain.eq_ignore_ascii_case(&config.domain) => {
            Ok(local.to_owned())
        }
        Some((_, domain)) => Err(format!(
            "{jid}: this server serves {}, not {domain}",
            config.domain
        )),
        None => Ok(jid.to_owned()),
    }
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err("no password on stdin (give it as one line)".into());
    }
    Ok(password)
}

async fn user(cmd: UserCommand, config: &Config) -> i32 {
    let request = match build_user_request(cmd, config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: {e}");
            return 2;
        }
    };
    match admin::request(&config.admin_socket(), &request).await {
        Ok(Reply::Answered(resp)) => report(&resp),
        Ok(Reply::Unreachable(_)) => offline(request, config).await,
        Err(e) => {
            eprintln!("tessera: admin socket: {e}");
            1
        }
    }
}

fn build_user_request(cmd: UserCommand, config: &Config) -> Result<AdminRequest, String> {
    Ok(match cmd {
        UserCommand::Add { jid, email } => AdminRequest::UserAdd {
            user: localpart(&jid, config)?,
            password: read_password()?,
            email,
        },
        UserCommand::Passwd { jid } => AdminRequest::UserPasswd {
            user: localpart(&jid, config)?,
            password: read_password()?,
        },
        UserCommand::Del { jid } => AdminRequest::UserDel {
            user: localpart(&jid, config)?,
        },
        UserCommand::List => AdminRequest::UserList,
    })
}

fn report(resp: &admin::AdminResponse) -> i32 {
    if resp.ok {
        match &resp.result {
            serde_json::Value::Array(items) => items.iter().for_each(|i| {
                println!(
                    "{}",
                    i.as_str().map_or_else(|| i.to_string(), str::to_owned)
                )
            }),
            serde_json::Value::Null => {}
            other => println!(
                "{}",
                other
                    .get("user")
                    .and_then(|u| u.as_str())
                    .map_or_else(|| other.to_string(), |u| format!("ok: {u}"))
            ),
        }
        0
    } else {
        eprintln!("tessera: {}", resp.error.as_deref().unwrap_or("failed"));
        1
    }
}

/// No server answered: act on the store directly (no sessions to close, no modules to notify;
/// FAST tokens issued before the change are refused because they predate it) — but only while
/// holding the data directory's lock. A server that holds it and did not answer is never
/// bypassed.
async fn offline(request: AdminRequest, config: &Config) -> i32 {
    let _lock = match data_dir::take(&config.data_dir, data_dir::Role::Command).await {
        Ok(lock) => lock,
        Err(DataDirError::Locked { holder, .. }) => {
            // It may have started since: ask it once more before refusing.
            return match admin::request(&config.admin_socket(), &request).await {
                Ok(Reply::Answered(resp)) => report(&resp),
                Ok(Reply::Unreachable(e)) | Err(e) => {
                    eprintln!(
                        "tessera: {holder} holds {}; its admin socket did not answer: {e}; \
                         refusing to write the store behind its back",
                        config.data_dir.display()
                    );
                    1
                }
            };
        }
        Err(e) => {
            eprintln!("tessera: {e}");
            return 1;
        }
    };
    let store = match crate::store::SqliteStore::open(&config.data_dir.join("tessera.sqlite")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: store: {e}");
            return 1;
        }
    };
    let now = crate::now_ms();
    let result = match request {
        AdminRequest::UserAdd {
            user,
            password,
            email,
        } => crate::accounts::create(
            &store,
            crate::accounts::NewAccount {
                user: &user,
                password: &password,
                email: email.as_deref(),
                iterations: config.scram_iterations,
            },
            now,
        )
        .map(|u| format!("ok: {u}")),
        AdminRequest::UserPasswd { user, password } => {
            crate::accounts::set_password(&store, (&user, &password), config.scram_iterations, now)
                .map(|u| format!("ok: {u}"))
        }
        AdminRequest::UserDel { user } => {
            crate::accounts::delete(&store, &user).map(|u| format!("ok: {u}"))
        }
        AdminRequest::UserList => store
            .list_accounts()
            .map(|v| v.join("\n"))
            .map_err(Into::into),
        AdminRequest::ModuleList
        | AdminRequest::Status
        | AdminRequest::ModuleLoad { .. }
        | AdminRequest::ModuleUnload { .. }
        | AdminRequest::ModuleReload { .. }
        | AdminRequest::ConfigReload
        | AdminRequest::ClientList { .. }
        | AdminRequest::ClientRevoke { .. } => Ok("no server is running".into()),
    };
    match result {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            0
        }
        Err(e) => {
            eprintln!("tessera: {e}");
            1
        }
    }
}

async fn admin_only(config: &Config, request: AdminRequest) -> i32 {
    match admin::request(&config.admin_socket(), &request).await {
        Ok(Reply::Answered(resp)) => {
            if resp.ok {
                match resp.result.get("message").and_then(|m| m.as_str()) {
                    Some(message) => println!("{message}"),
                    None => println!(
                        "{}",
                        serde_json::to_string_pretty(&resp.result).unwrap_or_default()
                    ),
                }
                0
            } else {
                report(&resp)
            }
        }
        Ok(Reply::Unreachable(e)) => {
            match data_dir::holder(&config.data_dir) {
                Some(holder) => eprintln!(
                    "tessera: {holder} holds {}, but its admin socket did not answer: {e}",
                    config.data_dir.display()
                ),
                None => eprintln!(
                    "tessera: no server is running (no admin socket at {})",
                    config.admin_socket().display()
                ),
            }
            1
        }
        Err(e) => {
            eprintln!("tessera: admin socket: {e}");
            1
        }
    }
}
