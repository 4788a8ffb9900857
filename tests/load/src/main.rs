//! `tessera-load`: drives a running XMPP server (Tessera, or any server with SASL2 and Bind 2)
//! over real sockets on loopback, and prints one JSON line of results on stdout plus a short
//! summary on stderr. Every run is bounded by a duration and/or a count.
//!
//! ```text
//! tessera-load logins --server 127.0.0.1:5223 --concurrency 4 --duration 10 \
//!     --mechanism scram-sha-256 --create 4 --tessera-config tessera.toml --server-pid PID
//! tessera-load idle --server 127.0.0.1:5223 --count 1000 --create 10 --tessera-config tessera.toml --server-pid PID
//! tessera-load fanout --server 127.0.0.1:5223 --count 1000 --tessera-config tessera.toml
//! tessera-load mixed --server 127.0.0.1:5223 --duration 60 --idle 200 --scram 2 --fast 2 \
//!     --password-every 5 --create 8 --tessera-config tessera.toml --server-pid PID
//! tessera-load messages --server 127.0.0.1:5223 --pairs 8 --offline 2 --carbons --duration 10 \
//!     --create 16 --tessera-config tessera.toml --server-pid PID
//! tessera-load slow-reader --server 127.0.0.1:5223 --pingers 20 --flood 20000 --create 22 \
//!     --tessera-config tessera.toml --server-pid PID
//! ```
//!
//! How to read it: `net` (TCP, TLS, reading up to a pattern), `auth` (one SASL2 login),
//! `accounts` (where logins come from), then one file per mode; `stats` and `procfs` measure.

mod accounts;
mod auth;
mod cli;
mod failure;
mod fanout;
mod idle;
mod logins;
mod mam;
mod messages;
mod mixed;
mod net;
mod procfs;
mod slowreader;
mod sm;
mod stats;
mod ws;
mod xml;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser as _;

use crate::accounts::Accounts;
use crate::cli::{Cli, Common, Mode, OnOff};
use crate::net::Target;

/// Set by Ctrl-C: every mode stops early (and still cleans up and reports).
static STOP: AtomicBool = AtomicBool::new(false);

/// Whether the run was interrupted.
pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.mode {
        Mode::Logins(a) => a.common.threads,
        Mode::Idle(a) => a.common.threads,
        Mode::Fanout(a) => a.common.threads,
        Mode::Mixed(a) => a.common.threads,
        Mode::Messages(a) => a.common.threads,
        Mode::SlowReader(a) => a.common.threads,
        Mode::Mam(a) => a.common.threads,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.mode)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode) -> anyhow::Result<serde_json::Value> {
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("tessera-load: interrupted, finishing");
            STOP.store(true, Ordering::Relaxed);
        }
    });
    let common = match &mode {
        Mode::Logins(a) => &a.common,
        Mode::Idle(a) => &a.common,
        Mode::Fanout(a) => &a.common,
        Mode::Mixed(a) => &a.common,
        Mode::Messages(a) => &a.common,
        Mode::SlowReader(a) => &a.common,
        Mode::Mam(a) => &a.common,
    };
    let addr = net::loopback_addr(&common.server).await?;
    let accounts = match &mode {
        // Fanout uses one account of its own.
        Mode::Fanout(a) => fanout::accounts(a).await?,
        _ => Accounts::obtain(&common.accounts, common.domain.as_deref()).await?,
    };
    let fanout_account = match &mode {
        Mode::Mixed(a) => match mixed::fanout_account(a).await {
            Ok(f) => f,
            Err(e) => {
                accounts.cleanup().await;
                return Err(e);
            }
        },
        _ => None,
    };
    let result = match target(common, addr, &accounts) {
        Ok(target) => match &mode {
            Mode::Logins(a) => logins::run(a, target, &accounts).await,
            Mode::Idle(a) => idle::run(a, target, &accounts).await,
            Mode::Fanout(a) => fanout::run(a, target, &accounts).await,
            Mode::Mixed(a) => mixed::run(a, target, &accounts, fanout_account.as_ref()).await,
            Mode::Messages(a) => messages::run(a, target, &accounts).await,
            Mode::SlowReader(a) => slowreader::run(a, target, &accounts).await,
            Mode::Mam(a) => mam::run(a, target, &accounts).await,
        },
        Err(e) => Err(e),
    };
    accounts.cleanup().await;
    if let Some(f) = &fanout_account {
        f.cleanup().await;
    }
    result
}

fn target(
    common: &Common,
    addr: std::net::SocketAddr,
    accounts: &Accounts,
) -> anyhow::Result<Target> {
    let domain = match &common.domain {
        Some(d) => d.clone(),
        None => accounts.domain()?,
    };
    Target::new(
        addr,
        common.tls,
        &domain,
        common.send_from,
        common.resumption == OnOff::On,
    )
    .context("TLS client configuration")
}
