//! The accounts a run logs in with: read from a `user:password` file (any server), or created
//! through the `tessera` CLI (admin socket of the running server) and deleted at the end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use tessera_sasl::scram::ClientKeys;
use tessera_sasl::Hash;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::AccountArgs;

/// Parallel `tessera user …` processes while creating or deleting accounts.
const CLI_PARALLEL: usize = 4;

/// One account and the SCRAM keys derived for it (once per run).
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) local: String,
    pub(crate) domain: String,
    pub(crate) password: String,
    keys: Mutex<Vec<ClientKeys>>,
}

impl Account {
    pub(crate) fn new(local: &str, domain: &str, password: &str) -> Self {
        Self {
            local: local.to_owned(),
            domain: domain.to_owned(),
            password: password.to_owned(),
            keys: Mutex::new(Vec::new()),
        }
    }

    /// `local@domain`.
    pub(crate) fn jid(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// Keys derived earlier for `hash`, if any.
    pub(crate) fn keys(&self, hash: Hash) -> Option<ClientKeys> {
        let keys = self.keys.lock().ok()?;
        keys.iter().find(|k| k.hash() == hash).cloned()
    }

    /// Remember keys for later logins (replacing stale ones for the same hash).
    pub(crate) fn set_keys(&self, keys: &ClientKeys) {
        if let Ok(mut all) = self.keys.lock() {
            all.retain(|k| k.hash() != keys.hash());
            all.push(keys.clone());
        }
    }
}

/// Runs `tessera -c CONFIG …`.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    bin: PathBuf,
    config: PathBuf,
}

impl Admin {
    pub(crate) fn new(bin: Option<&Path>, config: &Path) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => default_tessera_bin()?,
        };
        Ok(Self {
            bin,
            config: config.to_path_buf(),
        })
    }

    /// The `domain` of the config file (default `localhost`).
    pub(crate) fn domain(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.config)
            .with_context(|| format!("reading {}", self.config.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", self.config.display()))?;
        Ok(table
            .get("domain")
            .and_then(|d| d.as_str())
            .unwrap_or("localhost")
            .to_owned())
    }

    /// `tessera -c CONFIG ARGS…` with `stdin`; fails with the CLI's message.
    pub(crate) async fn run(&self, args: &[&str], stdin: &str) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        if let Some(mut input) = child.stdin.take() {
            // A command that reads no password may have exited already: ignore a broken pipe.
            let _ = input.write_all(stdin.as_bytes()).await;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "tessera {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// `tessera` next to this binary (both live in target/release or target/debug), else
/// `target/release/tessera`, else `target/debug/tessera`.
fn default_tessera_bin() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("tessera")));
    let candidates = beside.into_iter().chain([
        PathBuf::from("target/release/tessera"),
        PathBuf::from("target/debug/tessera"),
    ]);
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    bail!("no tessera binary found (beside tessera-load or in target/); pass --tessera-bin")
}

/// The accounts of a run; created ones are deleted by [`Accounts::cleanup`].
#[derive(Debug)]
pub(crate) struct Accounts {
    pub(crate) list: Vec<Arc<Account>>,
    pub(crate) admin: Option<Admin>,
    created: bool,
}

impl Accounts {
    /// Read `--accounts FILE` or create `--create N` accounts.
    pub(crate) async fn obtain(args: &AccountArgs, domain: Option<&str>) -> anyhow::Result<Self> {
        let admin = match &args.tessera_config {
            Some(config) => Some(Admin::new(args.tessera_bin.as_deref(), config)?),
            None => None,
        };
        if let Some(file) = &args.accounts {
            let fallback = domain.unwrap_or("localhost");
            let list = read_file(file, fallback)?;
            return Ok(Self {
                list,
                admin,
                created: false,
            });
        }
        let (Some(n), Some(admin)) = (args.create, admin) else {
            bail!("give --accounts FILE, or --create N with --tessera-config FILE");
        };
        let domain = admin.domain()?;
        let list = create(&admin, &args.prefix, n, &domain).await?;
        Ok(Self {
            list,
            admin: Some(admin),
            created: true,
        })
    }

    /// One account of this run's own, `<prefix><suffix>0`, created through the tessera CLI
    /// (whose password the run changes: never one of `--accounts`); `what` names the option that
    /// needs it in the error when `--tessera-config` is missing.
    pub(crate) async fn own_account(
        args: &AccountArgs,
        suffix: &str,
        what: &str,
    ) -> anyhow::Result<Self> {
        if args.tessera_config.is_none() {
            bail!("{what} changes a password through the tessera CLI: give --tessera-config FILE");
        }
        let mut a = args.clone();
        a.accounts = None;
        a.create = Some(1);
        a.prefix = format!("{}{suffix}", a.prefix);
        Self::obtain(&a, None).await
    }

    /// The domain all accounts share.
    pub(crate) fn domain(&self) -> anyhow::Result<String> {
        let Some(first) = self.list.first() else {
            bail!("no accounts");
        };
        if let Some(other) = self.list.iter().find(|a| a.domain != first.domain) {
            bail!(
                "accounts of two domains ({} and {}); use one",
                first.domain,
                other.domain
            );
        }
        Ok(first.domain.clone())
    }

    /// Delete the accounts this run created.
    pub(crate) async fn cleanup(&self) {
        let (true, Some(admin)) = (self.created, &self.admin) else {
            return;
        };
        let jobs = self.list.iter().map(|a| (a.jid(), String::new()));
        for err in parallel(admin, "del", jobs).await {
            eprintln!("tessera-load: cleanup: {err:#}");
        }
    }
}

fn read_file(path: &Path, default_domain: &str) -> anyhow::Result<Vec<Arc<Account>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut list = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            bail!("{}:{}: expected user:password", path.display(), i + 1);
        };
        let (local, domain) = user.split_once('@').unwrap_or((user, default_domain));
        list.push(Arc::new(Account::new(local, domain, password)));
    }
    if list.is_empty() {
        bail!("{}: no accounts", path.display());
    }
    Ok(list)
}

async fn create(
    admin: &Admin,
    prefix: &str,
    n: usize,
    domain: &str,
) -> anyhow::Result<Vec<Arc<Account>>> {
    if n == 0 {
        bail!("--create needs at least 1 account");
    }
    let list: Vec<Arc<Account>> = (0..n)
        .map(|i| {
            Arc::new(Account::new(
                &format!("{prefix}{i}"),
                domain,
                &random_password(),
            ))
        })
        .collect();
    let jobs = || list.iter().map(|a| (a.jid(), a.password.clone()));
    // An account left over from an interrupted run gets the new password instead.
    if !parallel(admin, "add", jobs()).await.is_empty() {
        let errors = parallel(admin, "passwd", jobs()).await;
        if let Some(e) = errors.into_iter().next() {
            return Err(e.context("creating accounts"));
        }
    }
    Ok(list)
}

/// Run `tessera user VERB JID` with the password line on stdin per job, [`CLI_PARALLEL`] at a
/// time; returns the errors.
async fn parallel(
    admin: &Admin,
    verb: &'static str,
    jobs: impl Iterator<Item = (String, String)>,
) -> Vec<anyhow::Error> {
    let gate = Arc::new(Semaphore::new(CLI_PARALLEL));
    let mut set = JoinSet::new();
    for (jid, password) in jobs {
        let (admin, gate) = (admin.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            admin
                .run(&["user", verb, &jid], &format!("{password}\n"))
                .await
        });
    }
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.into()),
        }
    }
    errors
}

/// 128 random bits as hex.
pub(crate) fn random_password() -> String {
    random_hex(16)
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // getrandom only fails without an OS RNG; a fixed fallback still runs (tests only).
    let _ = getrandom::getrandom(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
