//! `tessera.toml`: types, defaults and validation in one place.
//!
//! Every problem is a [`ConfigError`] naming the key and, when the file has one, its line. Keys
//! the host does not know must be options declared by an enabled module (each module declares
//! its options and their types in its manifest), so a mistyped key is caught whichever module
//! it belongs to.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_plugin_api::protocol::{Manifest, OptionKind, OptionValue};
use toml::de::{DeTable, DeValue};

/// The config used when no file is given and `./tessera.toml` does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("../examples/default.toml");

/// A configuration problem, with the key and line it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax error.
    #[error("{origin}: {message}")]
    Syntax {
        /// File name or `<embedded default>`.
        origin: String,
        /// The parser's message (it names line and column).
        message: String,
    },
    /// A key with a bad value, an unknown key or a missing one.
    #[error("{origin}{line}: `{key}`: {message}", line = line.map(|l| format!(":{l}")).unwrap_or_default())]
    Key {
        /// File name or `<embedded default>`.
        origin: String,
        /// The key path, e.g. `c2s.listen`.
        key: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// The host's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the config came from (file path or `<embedded default>`).
    pub origin: String,
    /// The served domain.
    pub domain: String,
    /// Store, certificates, secrets, outbox, admin socket.
    pub data_dir: PathBuf,
    /// Where `libmod_<name>.so` files are found.
    pub plugin_dir: PathBuf,
    /// Module names to load at start.
    pub modules_enabled: Vec<String>,
    /// Client-to-server listeners and limits.
    pub c2s: C2sConfig,
    /// HTTP(S) server.
    pub http: HttpConfig,
    /// XMPP over WebSocket on the HTTPS server (RFC 7395).
    pub websocket: WebSocketConfig,
    /// Certificate and key, or `None` for a generated self-signed pair.
    pub tls: TlsConfig,
    /// Outgoing mail via SMTP, or `None` for the outbox folder.
    pub smtp: Option<SmtpConfig>,
    /// PBKDF2 iterations of new SCRAM verifiers (`scram_iteration_count`).
    pub scram_iterations: u32,
    /// How log lines are written (`log_format`).
    pub log_format: LogFormat,
    /// Top-level keys not known to the host: module options, checked against manifests.
    pub module_options: BTreeMap<String, serde_json::Value>,
    lines: HashMap<String, usize>,
}

/// Default `c2s.max_send_buffer` (see docs/modules.md, "Delivery": a login burst of a large
/// account is about 400 KB).
pub const DEFAULT_MAX_SEND_BUFFER: i64 = 1 << 20;
/// How the server writes its log (on stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (`log_format = "text"`, the default).
    #[default]
    Text,
    /// One JSON object per line with the same fields (`log_format = "json"`), for log shippers.
    Json,
}

/// The fewest PBKDF2 iterations `scram_iteration_count` accepts (RFC 5802 §5.1, RFC 7677 §4).
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;
/// The most: at 10 million a PLAIN login costs the server over a second of CPU.
pub const MAX_SCRAM_ITERATIONS: u32 = 10_000_000;
/// Default `c2s.max_send_queue` (ejabberd's `max_fsm_queue`): with 64 bytes counted per stanza,
/// the byte bound is reached first by any stanza over ~40 bytes.
pub const DEFAULT_MAX_SEND_QUEUE: i64 = 10_000;
/// Default `c2s.send_timeout`, in seconds (ejabberd: 15, Prosody: 180).
pub const DEFAULT_SEND_TIMEOUT: i64 = 30;
/// Default `c2s.receive_rate`: 128 KiB/s.
pub const DEFAULT_RECEIVE_RATE: i64 = 128 * 1024;
/// Default `c2s.receive_burst`: 1 MiB.
pub const DEFAULT_RECEIVE_BURST: i64 = 1 << 20;

/// `[c2s]`.
#[derive(Clone, Debug)]
pub struct C2sConfig {
    /// STARTTLS listeners (RFC 6120).
    pub listen: Vec<SocketAddr>,
    /// Direct TLS listeners (XEP-0368).
    pub direct_tls: Vec<SocketAddr>,
    /// Largest stanza accepted, in bytes.
    pub max_stanza_size: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// Time allowed to finish stream, TLS and authentication negotiation.
    pub negotiation_timeout: Duration,
    /// Most simultaneous client connections (lowered to what the descriptor limit allows; see
    /// `admission`).
    pub max_connections: usize,
    /// Most simultaneous client connections from one address (IPv6: one /64).
    pub max_connections_per_ip: usize,
    /// Largest element accepted before authentication, in bytes.
    pub max_pre_auth_stanza_size: usize,
    /// Most elements (the top-level one included) in one element before authentication.
    pub max_pre_auth_elements: usize,
    /// Most bytes waiting to be written to one session (its outbox, counting 64 bytes of
    /// overhead per stanza); a session that lets more pile up is closed (see `sessions`).
    pub max_send_buffer: usize,
    /// Most stanzas waiting to be written to one session.
    pub max_send_queue: usize,
    /// How long a connection may write nothing while it has something to write before its
    /// client counts as not reading and is closed.
    pub send_timeout: Duration,
    /// How long a closing connection may take to get out the rest of its output and the stream
    /// error before its socket is closed anyway (Prosody's `c2s_close_timeout`).
    pub close_timeout: Duration,
    /// Bytes per second one connection may send once its burst is spent; beyond it the
    /// server stops reading from it for a while (TCP then slows the client down).
    pub receive_rate: usize,
    /// Bytes a connection may send at once before `receive_rate` applies.
    pub receive_burst: usize,
}

impl C2sConfig {
    /// The bounds of each session's outbox.
    pub fn outbox_limits(&self) -> crate::sessions::outbox::Limits {
        crate::sessions::outbox::Limits {
            max_bytes: self.max_send_buffer,
            max_stanzas: self.max_send_queue,
        }
    }
}

/// `[http]`.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// HTTPS listeners.
    pub listen: Vec<SocketAddr>,
    /// The URL users reach the server at (for links in mails).
    pub public_url: Option<String>,
    /// Most simultaneous HTTPS connections (lowered to an eighth of the descriptor budget).
    pub max_connections: usize,
    /// Addresses besides loopback that may read `/metrics` (`metrics_allow`).
    pub metrics_allow: Vec<crate::metrics::AllowedRange>,
}

/// `[websocket]`: XMPP over WebSocket (RFC 7395) at `/xmpp-websocket` on the HTTPS listeners.
#[derive(Clone, Debug)]
pub struct WebSocketConfig {
    /// Serve `/xmpp-websocket` and list it in `/.well-known/host-meta` (default `true`).
    pub enabled: bool,
    /// Web page origins (`https://chat.example.org`) whose scripts may connect, besides the
    /// server's own (`https://{domain}` and the origin of `http.public_url`); `"*"` allows any
    /// page. A request without `Origin` (not a browser) is always allowed.
    pub allowed_origins: Vec<String>,
    /// The endpoint URL published by XEP-0156 discovery (default: from `http.public_url`, else
    /// `wss://{domain}:{first http.listen port}/xmpp-websocket`).
    pub url: Option<String>,
    /// Offer channel-binding mechanisms (SCRAM-*-PLUS) over WebSocket (default `true`): the
    /// binding is real when the client's TLS ends at this server. Set `false` behind a proxy
    /// that terminates TLS (else -PLUS logins through it fail: the bindings differ).
    pub channel_binding: bool,
}

/// `[tls]`.
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// `[smtp]`.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain or STARTTLS when offered), `smtps://host:port`.
    pub url: String,
    /// Sender address.
    pub from: String,
}

const HOST_KEYS: &[&str] = &[
    "domain",
    "scram_iteration_count",
    "log_format",
    "data_dir",
    "plugin_dir",
    "modules_enabled",
    "c2s",
    "http",
    "websocket",
    "tls",
    "smtp",
];

impl Config {
    /// Load `path`, or `./tessera.toml` if present, or the embedded default.
    ///
    /// # Errors
    /// Unreadable file or any [`ConfigError`].
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let chosen = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("tessera.toml")).filter(|p| p.exists()),
        };
        match chosen {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                Self::parse(&text, &path.display().to_string(), &base)
            }
            None => Self::parse(EMBEDDED_DEFAULT, "<embedded default>", Path::new(".")),
        }
    }

    /// Parse config text; relative paths are resolved against `base`.
    ///
    /// # Errors
    /// Any [`ConfigError`].
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut p = Parser {
            origin,
            lines: key_lines(text),
            base,
        };
        let cfg = p.build(&table)?;
        Ok(cfg)
    }

    /// Check module options against the manifests of the enabled modules and return each
    /// module's options, typed, with defaults filled in.
    ///
    /// # Errors
    /// An unknown top-level key, a wrong type, a value out of bounds or a missing required key.
    pub fn module_configs(
        &self,
        manifests: &[(String, Manifest)],
    ) -> Result<HashMap<String, tessera_plugin_api::Config>, ConfigError> {
        let mut owner: HashMap<&str, (&str, &tessera_plugin_api::protocol::OptionSpec)> =
            HashMap::new();
        for (module, manifest) in manifests {
            for spec in &manifest.options {
                owner.insert(spec.name.as_str(), (module.as_str(), spec));
            }
        }
        for key in self.module_options.keys() {
            if !owner.contains_key(key.as_str()) {
                return Err(self.key_error(key, unknown_key_message(key, &owner)));
            }
        }
        for (module, manifest) in manifests {
            for key in &manifest.requires {
                if !self.host_key_is_set(key) {
                    return Err(
                        self.key_error(key, format!("must be set: module `{module}` needs it"))
                    );
                }
            }
        }
        let mut out: HashMap<String, tessera_plugin_api::Config> = manifests
            .iter()
            .map(|(m, _)| (m.clone(), tessera_plugin_api::Config::default()))
            .collect();
        for (key, (module, spec)) in &owner {
            let value = match self.module_options.get(*key) {
                Some(v) => check_option(v, &spec.kind).map_err(|m| self.key_error(key, m))?,
                None if spec.required => {
                    return Err(self.key_error(key, format!("required by module `{module}`")))
                }
                None => match &spec.default {
                    Some(d) => d.clone(),
                    None => continue,
                },
            };
            if let Some(config) = out.get_mut(*module) {
                config.set(key, value);
            }
        }
        Ok(out)
    }

    /// A [`ConfigError::Key`] for `key`, with its line if known.
    pub fn key_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            origin: self.origin.clone(),
            key: key.to_owned(),
            line: self.lines.get(key).copied(),
            message: message.into(),
        }
    }

    /// Whether a host key a module `requires` is set.
    fn host_key_is_set(&self, key: &str) -> bool {
        match key {
            "http.public_url" => self.http.public_url.is_some(),
            "smtp" | "smtp.url" => self.smtp.is_some(),
            "tls.cert" => self.tls.cert.is_some(),
            _ => false,
        }
    }

    /// The file of module `name`.
    pub fn plugin_path(&self, name: &str) -> PathBuf {
        self.plugin_dir.join(format!(
            "{}mod_{name}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ))
    }

    /// The admin socket path.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }
}

/// Keys that were host options and are now options of a shipped module, with that module: an
/// operator upgrading gets told which module to enable instead of "unknown key".
const MOVED_TO_MODULES: &[(&str, &str)] = &[
    ("allow_registration", "register"),
    ("registration_throttle_max", "register"),
    ("registration_throttle_period", "register"),
    ("disco_name", "disco"),
];

fn unknown_key_message(
    key: &str,
    owner: &HashMap<&str, (&str, &tessera_plugin_api::protocol::OptionSpec)>,
) -> String {
    if let Some((_, module)) = MOVED_TO_MODULES.iter().find(|(k, _)| *k == key) {
        return format!(
            "an option of the `{module}` module, which is not enabled: add \"{module}\" to \
             modules_enabled (or remove this key)"
        );
    }
    let nearest = owner
        .keys()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min();
    match nearest {
        Some((_, k)) => format!(
            "unknown key (not a host option, nor an option of an enabled module; did you mean {k}?)"
        ),
        None => "unknown key (not a host option, nor an option of an enabled module)".to_owned(),
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != *cb);
            let value = (prev + cost)
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            prev = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The typed value of an option, if `value` has the declared type and bounds.
fn check_option(value: &serde_json::Value, kind: &OptionKind) -> Result<OptionValue, String> {
    match kind {
        OptionKind::Bool => value
            .as_bool()
            .map(OptionValue::Bool)
            .ok_or_else(|| "expected true or false".into()),
        OptionKind::Integer { min, max } => match value.as_i64() {
            Some(v) if v < *min || v > *max => Err(format!("{v} is out of range {min}..={max}")),
            Some(v) => Ok(OptionValue::Integer(v)),
            None => Err("expected an integer".into()),
        },
        OptionKind::String => value
            .as_str()
            .map(|s| OptionValue::String(s.to_owned()))
            .ok_or_else(|| "expected a string".into()),
        OptionKind::StringList => value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .map(OptionValue::StringList)
            .ok_or_else(|| "expected a list of strings".into()),
    }
}

/// Map every key path (`c2s.listen`) to the 1-based line where it is defined.
fn key_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    if let Ok(table) = DeTable::parse(text) {
        collect_lines(text, table.get_ref(), "", &mut out);
    }
    out
}

fn collect_lines(text: &str, table: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, usize>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let line = 1 + text
            .get(..key.span().start)
            .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count());
        out.insert(path.clone(), line);
        if let DeValue::Table(inner) = value.get_ref() {
            collect_lines(text, inner, &path, out);
        }
    }
}

struct Parser<'a> {
    origin: &'a str,
    lines: HashMap<String, usize>,
    base: &'a Path,
}

impl Parser<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            origin: self.origin.to_owned(),
            key: key.to_owned(),
            line: self.lines.get(key).copied(),
            message: message.into(),
        }
    }

    fn build(&mut self, t: &toml::Table) -> Result<Config, ConfigError> {
        let domain = self
            .string(t, "domain", "domain")?
            .unwrap_or("localhost".into());
        validate_domain(&domain).map_err(|m| self.err("domain", m))?;
        let data_dir = self
            .path(t, "data_dir")?
            .unwrap_or_else(|| self.base.join("tessera-data"));
        let plugin_dir = match self.path(t, "plugin_dir")? {
            Some(p) => p,
            None => default_plugin_dir(),
        };
        let modules_enabled = self.string_list(t, "modules_enabled", "modules_enabled")?;
        for m in &modules_enabled {
            if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err("modules_enabled", format!("`{m}` is not a module name")));
            }
        }
        let c2s = self.c2s(t.get("c2s"))?;
        let http = self.http(t.get("http"))?;
        let websocket = self.websocket(t.get("websocket"))?;
        let tls = self.tls(t.get("tls"))?;
        let smtp = self.smtp(t.get("smtp"))?;
        let scram_iterations = self
            .int(
                t,
                "scram_iteration_count",
                "scram_iteration_count",
                i64::from(MIN_SCRAM_ITERATIONS),
                i64::from(MAX_SCRAM_ITERATIONS),
            )?
            .map_or(crate::accounts::SCRAM_ITERATIONS, |i| {
                u32::try_from(i).unwrap_or(crate::accounts::SCRAM_ITERATIONS)
            });
        let log_format = match self.string(t, "log_format", "log_format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(self.err(
                    "log_format",
                    format!("`{other}` is not a log format (\"text\" or \"json\")"),
                ))
            }
        };
        let mut module_options = BTreeMap::new();
        for (key, value) in t {
            if HOST_KEYS.contains(&key.as_str()) {
                continue;
            }
            let json = serde_json::to_value(value).map_err(|e| self.err(key, e.to_string()))?;
            module_options.insert(key.clone(), json);
        }
        Ok(Config {
            origin: self.origin.to_owned(),
            domain,
            data_dir,
            plugin_dir,
            modules_enabled,
            c2s,
            http,
            websocket,
            tls,
            smtp,
            scram_iterations,
            log_format,
            module_options,
            lines: std::mem::take(&mut self.lines),
        })
    }

    fn section<'t>(
        &self,
        v: Option<&'t toml::Value>,
        key: &str,
        allowed: &[&str],
    ) -> Result<Option<&'t toml::Table>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let table = v
            .as_table()
            .ok_or_else(|| self.err(key, "expected a table"))?;
        for k in table.keys() {
            if !allowed.contains(&k.as_str()) {
                let path = format!("{key}.{k}");
                return Err(self.err(
                    &path,
                    format!("unknown key; [{key}] accepts {}", allowed.join(", ")),
                ));
            }
        }
        Ok(Some(table))
    }

    fn c2s(&self, v: Option<&toml::Value>) -> Result<C2sConfig, ConfigError> {
        let allowed = [
            "listen",
            "direct_tls",
            "max_stanza_size",
            "max_depth",
            "negotiation_timeout",
            "max_connections",
            "max_connections_per_ip",
            "max_pre_auth_stanza_size",
            "max_pre_auth_elements",
            "max_send_buffer",
            "max_send_queue",
            "send_timeout",
            "close_timeout",
            "receive_rate",
            "receive_burst",
        ];
        let t = self
            .section(v, "c2s", &allowed)?
            .cloned()
            .unwrap_or_default();
        let addrs = |k: &str, d: &str| -> Result<Vec<SocketAddr>, ConfigError> {
            match t.get(k) {
                None => Ok(vec![d.parse().map_err(|_| self.err(k, "bad default"))?]),
                Some(_) => self.addrs(&t, k, &format!("c2s.{k}")),
            }
        };
        let c2s = C2sConfig {
            listen: addrs("listen", "127.0.0.1:5222")?,
            direct_tls: addrs("direct_tls", "127.0.0.1:5223")?,
            max_stanza_size: self
                .int(&t, "max_stanza_size", "c2s.max_stanza_size", 1024, 16 << 20)?
                .unwrap_or(256 * 1024) as usize,
            max_depth: self
                .int(&t, "max_depth", "c2s.max_depth", 4, 256)?
                .unwrap_or(32) as usize,
            negotiation_timeout: Duration::from_secs(
                self.int(
                    &t,
                    "negotiation_timeout",
                    "c2s.negotiation_timeout",
                    1,
                    3600,
                )?
                .unwrap_or(30) as u64,
            ),
            max_connections: self
                .int(&t, "max_connections", "c2s.max_connections", 1, 10_000_000)?
                .unwrap_or(100_000) as usize,
            max_connections_per_ip: self
                .int(
                    &t,
                    "max_connections_per_ip",
                    "c2s.max_connections_per_ip",
                    1,
                    10_000_000,
                )?
                .unwrap_or(256) as usize,
            max_pre_auth_stanza_size: self
                .int(
                    &t,
                    "max_pre_auth_stanza_size",
                    "c2s.max_pre_auth_stanza_size",
                    1024,
                    16 << 20,
                )?
                .unwrap_or(16 * 1024) as usize,
            max_pre_auth_elements: self
                .int(
                    &t,
                    "max_pre_auth_elements",
                    "c2s.max_pre_auth_elements",
                    4,
                    100_000,
                )?
                .unwrap_or(128) as usize,
            max_send_buffer: self
                .int(
                    &t,
                    "max_send_buffer",
                    "c2s.max_send_buffer",
                    16 * 1024,
                    1 << 30,
                )?
                .unwrap_or(DEFAULT_MAX_SEND_BUFFER) as usize,
            max_send_queue: self
                .int(&t, "max_send_queue", "c2s.max_send_queue", 16, 10_000_000)?
                .unwrap_or(DEFAULT_MAX_SEND_QUEUE) as usize,
            send_timeout: Duration::from_secs(
                self.int(&t, "send_timeout", "c2s.send_timeout", 1, 3600)?
                    .unwrap_or(DEFAULT_SEND_TIMEOUT) as u64,
            ),
            close_timeout: Duration::from_secs(
                self.int(&t, "close_timeout", "c2s.close_timeout", 1, 300)?
                    .unwrap_or(5) as u64,
            ),
            receive_rate: self
                .int(&t, "receive_rate", "c2s.receive_rate", 1024, 1 << 40)?
                .unwrap_or(DEFAULT_RECEIVE_RATE) as usize,
            receive_burst: self
                .int(&t, "receive_burst", "c2s.receive_burst", 4096, 1 << 40)?
                .unwrap_or(DEFAULT_RECEIVE_BURST) as usize,
        };
        // One stanza of the largest size from another account must fit its half of a
        // session's outbox, or it could never be delivered.
        if c2s.max_send_buffer < 2 * c2s.max_stanza_size {
            return Err(self.err(
                "c2s.max_send_buffer",
                format!(
                    "{} is less than twice c2s.max_stanza_size ({}): a stanza of that size \
                     from another account could never be delivered",
                    c2s.max_send_buffer, c2s.max_stanza_size
                ),
            ));
        }
        Ok(c2s)
    }

    fn http(&self, v: Option<&toml::Value>) -> Result<HttpConfig, ConfigError> {
        let t = self
            .section(
                v,
                "http",
                &["listen", "public_url", "max_connections", "metrics_allow"],
            )?
            .cloned()
            .unwrap_or_default();
        let listen = match t.get("listen") {
            None => vec![SocketAddr::from(([127, 0, 0, 1], 5281))],
            Some(_) => self.addrs(&t, "listen", "http.listen")?,
        };
        let public_url = self.string(&t, "public_url", "http.public_url")?;
        if let Some(url) = &public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(self.err("http.public_url", "must start with https:// or http://"));
            }
        }
        let max_connections = self
            .int(&t, "max_connections", "http.max_connections", 1, 1_000_000)?
            .unwrap_or(512) as usize;
        let metrics_allow = self
            .string_list(&t, "metrics_allow", "http.metrics_allow")?
            .iter()
            .map(|r| {
                crate::metrics::AllowedRange::parse(r)
                    .map_err(|m| self.err("http.metrics_allow", m))
            })
            .collect::<Result<_, _>>()?;
        Ok(HttpConfig {
            listen,
            public_url,
            max_connections,
            metrics_allow,
        })
    }

    fn websocket(&self, v: Option<&toml::Value>) -> Result<WebSocketConfig, ConfigError> {
        let t = self
            .section(
                v,
                "websocket",
                &["enabled", "allowed_origins", "url", "channel_binding"],
            )?
            .cloned()
            .unwrap_or_default();
        let enabled = self
            .bool(&t, "enabled", "websocket.enabled")?
            .unwrap_or(true);
        let allowed_origins =
            self.string_list(&t, "allowed_origins", "websocket.allowed_origins")?;
        for origin in &allowed_origins {
            if origin != "*" && crate::websocket::origin_of(origin).as_deref() != Some(origin) {
                return Err(self.err(
                    "websocket.allowed_origins",
                    format!(
                        "`{origin}` is not an origin (scheme://host[:port], no path), nor \"*\""
                    ),
                ));
            }
        }
        let url = self.string(&t, "url", "websocket.url")?;
        if let Some(url) = &url {
            if !(url.starts_with("wss://") || url.starts_with("ws://")) {
                return Err(self.err("websocket.url", "must start with wss:// or ws://"));
            }
        }
        let channel_binding = self
            .bool(&t, "channel_binding", "websocket.channel_binding")?
            .unwrap_or(true);
        Ok(WebSocketConfig {
            enabled,
            allowed_origins,
            url,
            channel_binding,
        })
    }

    fn tls(&self, v: Option<&toml::Value>) -> Result<TlsConfig, ConfigError> {
        let t = self
            .section(v, "tls", &["cert", "key"])?
            .cloned()
            .unwrap_or_default();
        let cert = self
            .string(&t, "cert", "tls.cert")?
            .map(|p| self.base.join(p));
        let key = self
            .string(&t, "key", "tls.key")?
            .map(|p| self.base.join(p));
        match (&cert, &key) {
            (Some(_), None) => return Err(self.err("tls.key", "required when tls.cert is set")),
            (None, Some(_)) => return Err(self.err("tls.cert", "required when tls.key is set")),
            _ => {}
        }
        for (k, p) in [("tls.cert", &cert), ("tls.key", &key)] {
            if let Some(p) = p {
                if !p.is_file() {
                    return Err(self.err(k, format!("{} does not exist", p.display())));
                }
            }
        }
        Ok(TlsConfig { cert, key })
    }

    fn smtp(&self, v: Option<&toml::Value>) -> Result<Option<SmtpConfig>, ConfigError> {
        let Some(t) = self.section(v, "smtp", &["url", "from"])? else {
            return Ok(None);
        };
        let url = self
            .string(t, "url", "smtp.url")?
            .ok_or_else(|| self.err("smtp.url", "required in [smtp]"))?;
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            return Err(self.err("smtp.url", "must start with smtp:// or smtps://"));
        }
        let from = self
            .string(t, "from", "smtp.from")?
            .ok_or_else(|| self.err("smtp.from", "required in [smtp]"))?;
        if !from.contains('@') {
            return Err(self.err("smtp.from", "must be a mail address"));
        }
        Ok(Some(SmtpConfig { url, from }))
    }

    fn string(&self, t: &toml::Table, k: &str, path: &str) -> Result<Option<String>, ConfigError> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(
                path,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    fn bool(&self, t: &toml::Table, k: &str, path: &str) -> Result<Option<bool>, ConfigError> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(
                path,
                format!("expected true or false, found {}", other.type_str()),
            )),
        }
    }

    fn path(&self, t: &toml::Table, k: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(t, k, k)?.map(|s| self.base.join(s)))
    }

    fn int(
        &self,
        t: &toml::Table,
        k: &str,
        path: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= min && *i <= max => Ok(Some(*i)),
            Some(toml::Value::Integer(i)) => {
                Err(self.err(path, format!("{i} is out of range {min}..={max}")))
            }
            Some(other) => Err(self.err(
                path,
                format!("expected an integer, found {}", other.type_str()),
            )),
        }
    }

    fn string_list(
        &self,
        t: &toml::Table,
        k: &str,
        path: &str,
    ) -> Result<Vec<String>, ConfigError> {
        match t.get(k) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.err(path, "expected a list of strings"))
                })
                .collect(),
            Some(other) => Err(self.err(
                path,
                format!("expected a list of strings, found {}", other.type_str()),
            )),
        }
    }

    fn addrs(&self, t: &toml::Table, k: &str, path: &str) -> Result<Vec<SocketAddr>, ConfigError> {
        self.string_list(t, k, path)?
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|_| self.err(path, format!("`{a}` is not an IP address with port (e.g. 127.0.0.1:5222 or [::1]:5222)")))
            })
            .collect()
    }
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{domain}` is not a valid domain name"))
    }
}

/// The directory of the running executable: cargo puts the plugin libraries beside it.
fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .map(|dir| {
            // `cargo test` runs binaries from target/<profile>/deps; plugins sit one level up.
            if dir.ends_with("deps") {
                dir.parent().map(Path::to_path_buf).unwrap_or(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
