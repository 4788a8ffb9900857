//! Command-line interface.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::auth::Mechanism;
use crate::net::TlsMode;

/// Drives a running XMPP server on loopback and prints one JSON line of results on stdout (and a
/// short summary on stderr).
#[derive(Debug, Parser)]
#[command(name = "tessera-load", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) mode: Mode,
}

/// What to measure.
#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// Concurrent clients doing repeated logins: connect, TLS, SASL2 + Bind 2, close.
    Logins(LoginsArgs),
    /// Open N authenticated sessions, hold them, report the server's memory per session.
    Idle(IdleArgs),
    /// N sessions of one account; change its password and time until all got `<reset/>`.
    /// Creates its own account (`<prefix>fan0`) through the tessera CLI: needs --tessera-config.
    Fanout(FanoutArgs),
    /// A steady mix for a set duration (soak, hot swap): held sessions pinging, SCRAM and FAST
    /// logins, and (with --password-every) password changes that reset a group of sessions.
    Mixed(MixedArgs),
    /// Pairs of accounts with each other in their rosters chatting (carbons optional, some
    /// recipients offline): messages/s, delivery latency, server CPU per message.
    Messages(MessagesArgs),
    /// One session stops reading while another floods it with messages: other sessions'
    /// ping latency idle and meanwhile, the server's memory, and the reader's stream error.
    SlowReader(SlowReaderArgs),
    /// Fill an account's archive (mod_mam) with messages, then time queries for its latest
    /// page: latency and server CPU per query.
    Mam(MamArgs),
}

/// `mam`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MamArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Messages to archive first.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) fill: usize,
    /// Queries to time.
    #[arg(long, default_value_t = 500)]
    pub(crate) queries: usize,
    /// Results per query (RSM `<max/>`).
    #[arg(long, default_value_t = 50)]
    pub(crate) page: usize,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

/// Where the accounts come from.
#[derive(Debug, Clone, Args)]
pub(crate) struct AccountArgs {
    /// Existing accounts, one `user[@domain]:password` per line (any XMPP server).
    #[arg(long, value_name = "FILE", conflicts_with = "create")]
    pub(crate) accounts: Option<PathBuf>,
    /// Create N accounts `<prefix>0..` through `tessera user add` and delete them at the end.
    #[arg(long, value_name = "N", requires = "tessera_config")]
    pub(crate) create: Option<usize>,
    /// The running Tessera server's config file (for `tessera -c FILE user …`).
    #[arg(long, value_name = "FILE")]
    pub(crate) tessera_config: Option<PathBuf>,
    /// The `tessera` binary (default: beside this one, else target/{release,debug}/tessera).
    #[arg(long, value_name = "PATH")]
    pub(crate) tessera_bin: Option<PathBuf>,
    /// Localpart prefix of created accounts.
    #[arg(long, default_value = "load")]
    pub(crate) prefix: String,
}

/// Options every mode has.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// The server's address (loopback only), e.g. 127.0.0.1:5223.
    #[arg(long, value_name = "ADDR")]
    pub(crate) server: String,
    /// Direct TLS (XEP-0368) or STARTTLS.
    #[arg(long, value_enum, default_value = "direct")]
    pub(crate) tls: TlsMode,
    /// TLS session resumption (session tickets).
    #[arg(long, value_enum, default_value = "off")]
    pub(crate) resumption: OnOff,
    /// Send the account's JID as stream `from` (ejabberd offers SASL2, Prosody FAST, only then).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub(crate) send_from: bool,
    /// The domain (stream `to`, TLS name) when the accounts do not say.
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// The server's process id: report its CPU time (and memory in `idle`).
    #[arg(long, value_name = "PID")]
    pub(crate) server_pid: Option<u32>,
    /// Seconds allowed for one connection + login (and for the close).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub(crate) timeout: f64,
    /// Tokio worker threads of the tool (default: one per core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) accounts: AccountArgs,
}

/// `logins`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoginsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Clients logging in at the same time.
    #[arg(long, default_value_t = 1)]
    pub(crate) concurrency: usize,
    /// Stop starting logins after this many seconds (default 10 when --count is not given).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<f64>,
    /// Stop after this many logins.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Start logins at this many per second in all (open loop; latency counts from when a
    /// login was due). Default: back to back.
    #[arg(long, value_name = "PER_S")]
    pub(crate) rate: Option<f64>,
    /// Login method.
    #[arg(long, value_enum, default_value = "scram-sha-256")]
    pub(crate) mechanism: Mechanism,
    /// XEP-0198 stream management inline (the server needs mod_smacks): without `--resume`,
    /// every login enables it in Bind 2; with it, each client keeps its session and every
    /// measured login drops the last connection without a word and resumes the session
    /// inline in SASL2 (a phone coming back) instead of binding.
    #[arg(long, value_enum, default_value = "off")]
    pub(crate) sm: SmLogin,
}

/// How `logins` uses stream management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SmLogin {
    /// Not at all.
    Off,
    /// Enabled inline in Bind 2 at every login.
    Enable,
    /// Resumed inline in SASL2 at every login.
    Resume,
}

impl SmLogin {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Enable => "enable",
            Self::Resume => "resume",
        }
    }
}

/// `idle`.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Sessions to open and hold.
    #[arg(long, value_name = "N")]
    pub(crate) count: usize,
    /// Sessions being opened at the same time.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Seconds to hold the sessions once all are open.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub(crate) duration: f64,
    /// Also report the server's memory when this many sessions are open (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    pub(crate) checkpoints: Vec<usize>,
    /// Login method.
    #[arg(long, value_enum, default_value = "scram-sha-256")]
    pub(crate) mechanism: Mechanism,
    /// Enable XEP-0198 stream management with resumption on every session (the server needs
    /// mod_smacks) and answer the server's `<r/>`.
    #[arg(long)]
    pub(crate) sm: bool,
}

/// `fanout`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Sessions of the one account.
    #[arg(long, value_name = "N")]
    pub(crate) count: usize,
    /// Sessions being opened at the same time.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Each session also gets a FAST token (HT-SHA-256-NONE); after the change, time until
    /// every token is refused.
    #[arg(long)]
    pub(crate) tokens: bool,
}

/// `mixed`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MixedArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub(crate) duration: f64,
    /// Sessions opened and held, each pinging the server.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub(crate) idle: usize,
    /// Seconds between two pings of a held session.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub(crate) ping_every: f64,
    /// Held sessions being opened at the same time.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Workers doing SCRAM-SHA-256 logins back to back.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) scram: usize,
    /// Workers doing FAST (HT-SHA-256-NONE) logins back to back.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) fast: usize,
    /// Change the password of a separate account every SECS (needs --tessera-config).
    #[arg(long, value_name = "SECS")]
    pub(crate) password_every: Option<f64>,
    /// Sessions of that account, each of which must get `<reset/>` at every change.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) fanout: usize,
}

/// `messages`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MessagesArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Sender/recipient pairs (2 accounts each).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) pairs: usize,
    /// Of those, pairs whose recipient is offline (their messages are stored).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) offline: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub(crate) duration: f64,
    /// Messages per second over all online pairs (open loop); without it, as fast as the
    /// recipients take them.
    #[arg(long, value_name = "PER_S")]
    pub(crate) rate: Option<f64>,
    /// Without --rate: messages in flight per pair.
    #[arg(long, default_value_t = 4)]
    pub(crate) window: usize,
    /// The sender has a second session, and both enable XEP-0280 carbons.
    #[arg(long)]
    pub(crate) carbons: bool,
    /// Every session enables XEP-0198 stream management with resumption (the server needs
    /// mod_smacks) and the readers answer the server's `<r/>`.
    #[arg(long)]
    pub(crate) sm: bool,
    /// Bytes of each message body.
    #[arg(long, default_value_t = 100)]
    pub(crate) body_bytes: usize,
}

/// `slow-reader`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SlowReaderArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Sessions pinging the server, idle and during the flood.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) pingers: usize,
    /// Milliseconds between one pinger's pings.
    #[arg(long, default_value_t = 20, value_name = "MS")]
    pub(crate) ping_interval_ms: u64,
    /// Seconds the pingers run before the flood.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub(crate) idle: f64,
    /// Messages the sender writes to the reader.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub(crate) flood: usize,
    /// Bytes of each message body.
    #[arg(long, default_value_t = 1000)]
    pub(crate) body_bytes: usize,
    /// The reader's socket receive buffer, in bytes.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub(crate) reader_rcvbuf: u32,
}
