//! Prometheus metrics, served at `/metrics` on the HTTPS listener in the Prometheus text format
//! (through the Prometheus project's `prometheus-client`), to allowed addresses only: loopback
//! by default, `[http] metrics_allow` widens it.
//!
//! Counters are counted where things happen (connections accepted, logins decided, events
//! fired, module operations); figures the server already keeps (sessions, open connections,
//! stanza fates, module generations) are read at each scrape. Modules count their own events
//! (FAST tokens issued, reset mails sent, …) through the `count` host call
//! ([`Metrics::module_count`]), exported as `tessera_mod_<module>_<counter>_total`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Login {
    mechanism: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StanzaKind {
    kind: &'static str,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventName {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleOp {
    module: String,
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleName {
    module: String,
}

/// The counters (cheap to bump: an atomic add after a label lookup).
#[derive(Debug, Default)]
pub struct Metrics {
    connections: Family<Transport, Counter>,
    logins: Family<Login, Counter>,
    events: Family<EventName, Counter>,
    module_ops: Family<ModuleOp, Counter>,
    module_calls: Family<ModuleName, Counter>,
    module_call_seconds: Family<ModuleName, Counter<f64, std::sync::atomic::AtomicU64>>,
    module_failures: Family<ModuleName, Counter>,
    module_panics: Family<ModuleName, Counter>,
    stanzas_routed: Family<StanzaKind, Counter>,
    /// Open connections and sessions by transport (guards count them down).
    open_connections: Family<Transport, Gauge>,
    open_sessions: Family<Transport, Gauge>,
    /// Modules' own counters, by (module, counter), with the number of label sets each has.
    module_counters: Mutex<BTreeMap<(String, String), (ModuleCounter, usize)>>,
}

type ModuleCounter = Family<Vec<(String, String)>, Counter>;

/// Most counters one module may create.
pub const MAX_MODULE_COUNTERS: usize = 32;
/// Most label values one module counter may have.
pub const MAX_COUNTER_SERIES: usize = 16;
const MAX_NAME_LEN: usize = 48;
const MAX_LABEL_VALUE_LEN: usize = 64;

/// Why a module's count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountRefused {
    /// A counter or label name outside `[a-z][a-z0-9_]*` (at most 48 bytes).
    #[error("`{0}` is not a metric name ([a-z][a-z0-9_]*, at most 48 bytes)")]
    Name(String),
    /// A label value too long or with control characters.
    #[error("label value too long or not printable")]
    Value,
    /// Over [`MAX_MODULE_COUNTERS`] or [`MAX_COUNTER_SERIES`].
    #[error("too many counters or label values (at most {MAX_MODULE_COUNTERS} counters of {MAX_COUNTER_SERIES} label values)")]
    TooMany,
}

fn metric_name(name: &str) -> Result<(), CountRefused> {
    let ok = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        // The exposition adds `_total`.
        && !name.ends_with("_total");
    if ok {
        Ok(())
    } else {
        Err(CountRefused::Name(name.to_owned()))
    }
}

/// Counts one open connection or session of a transport until dropped.
#[derive(Debug)]
pub struct OpenGuard(Gauge);

impl OpenGuard {
    fn on(family: &Family<Transport, Gauge>, transport: &'static str) -> Self {
        let gauge = family.get_or_create(&Transport { transport }).clone();
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A module's call counters, held by each of its generations (a reload keeps counting in the
/// same series).
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    calls: Counter,
    seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    failures: Counter,
    panics: Counter,
}

impl CallStats {
    /// A call returned after `seconds`.
    pub fn call(&self, seconds: f64) {
        self.calls.inc();
        self.seconds.inc_by(seconds);
    }

    /// A call failed (`panicked`: the plugin panicked).
    pub fn failure(&self, panicked: bool) {
        self.failures.inc();
        if panicked {
            self.panics.inc();
        }
    }
}

/// A module operation, for [`Metrics::module_operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleOperation {
    /// `tessera module load` (or a config reload loading one).
    Load,
    /// `tessera module unload`.
    Unload,
    /// `tessera module reload` (a hot swap).
    Reload,
}

impl ModuleOperation {
    fn as_str(self) -> &'static str {
        match self {
            ModuleOperation::Load => "load",
            ModuleOperation::Unload => "unload",
            ModuleOperation::Reload => "reload",
        }
    }
}

impl Metrics {
    /// The call counters of module `name`.
    pub fn module_stats(&self, name: &str) -> CallStats {
        let label = ModuleName {
            module: name.to_owned(),
        };
        CallStats {
            calls: self.module_calls.get_or_create(&label).clone(),
            seconds: self.module_call_seconds.get_or_create(&label).clone(),
            failures: self.module_failures.get_or_create(&label).clone(),
            panics: self.module_panics.get_or_create(&label).clone(),
        }
    }

    /// A connection was accepted (`starttls`, `direct_tls`, `https`) or upgraded (`websocket`).
    pub fn connection(&self, transport: &'static str) {
        self.connections
            .get_or_create(&Transport { transport })
            .inc();
    }

    /// A connection of `transport` is open until the guard is dropped.
    pub fn open_connection(&self, transport: &'static str) -> OpenGuard {
        OpenGuard::on(&self.open_connections, transport)
    }

    /// A session over `transport` is authenticated until the guard is dropped.
    pub fn open_session(&self, transport: &'static str) -> OpenGuard {
        OpenGuard::on(&self.open_sessions, transport)
    }

    /// Module `module` adds `by` to its counter `counter`, with one optional label.
    ///
    /// # Errors
    /// A bad name or value, or more counters or label values than a module may have (so a
    /// module cannot grow the exposition without bound).
    pub fn module_count(
        &self,
        module: &str,
        counter: &str,
        label: Option<(&str, &str)>,
        by: u64,
    ) -> Result<(), CountRefused> {
        metric_name(counter)?;
        let labels = match label {
            None => Vec::new(),
            Some((name, value)) => {
                metric_name(name)?;
                if value.len() > MAX_LABEL_VALUE_LEN || value.chars().any(char::is_control) {
                    return Err(CountRefused::Value);
                }
                vec![(name.to_owned(), value.to_owned())]
            }
        };
        let mut counters = self
            .module_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (module.to_owned(), counter.to_owned());
        if !counters.contains_key(&key)
            && counters.keys().filter(|(m, _)| m == module).count() >= MAX_MODULE_COUNTERS
        {
            return Err(CountRefused::TooMany);
        }
        let (family, series) = counters.entry(key).or_default();
        if let Some(c) = family.get(&labels) {
            c.inc_by(by);
            return Ok(());
        }
        if *series >= MAX_COUNTER_SERIES {
            return Err(CountRefused::TooMany);
        }
        *series += 1;
        family.get_or_create(&labels).inc_by(by);
        Ok(())
    }

    fn register_module_counters(&self, registry: &mut Registry) {
        let counters = self
            .module_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for ((module, counter), (family, _)) in counters.iter() {
            registry.register(
                format!("mod_{module}_{counter}"),
                format!("Counted by mod_{module}"),
                family.clone(),
            );
        }
    }

    /// The router took a stanza (`name`: message, presence or iq) from a client session or a
    /// module (`origin`).
    pub fn stanza_routed(&self, name: &str, origin: &'static str) {
        let kind = match name {
            "message" => "message",
            "presence" => "presence",
            "iq" => "iq",
            _ => "other",
        };
        self.stanzas_routed
            .get_or_create(&StanzaKind { kind, origin })
            .inc();
    }

    /// A SASL exchange ended: `outcome` is `success` or the failure condition.
    pub fn login(&self, mechanism: &str, outcome: &str) {
        self.logins
            .get_or_create(&Login {
                mechanism: mechanism.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// An event was fired on the bus (whether or not a module hooks it).
    pub fn event(&self, name: &str) {
        self.events
            .get_or_create(&EventName {
                event: name.to_owned(),
            })
            .inc();
    }

    /// A module operation was carried out (`ok`) or refused (`refused`).
    pub fn module_operation(&self, module: &str, operation: ModuleOperation, ok: bool) {
        self.module_ops
            .get_or_create(&ModuleOp {
                module: module.to_owned(),
                operation: operation.as_str(),
                result: if ok { "ok" } else { "refused" },
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Fate {
    fate: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenerationState {
    state: String,
}

/// The whole exposition, in the Prometheus text format.
pub fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut registry = Registry::with_prefix("tessera");
    registry.register(
        "connections",
        "Client connections accepted, by transport",
        m.connections.clone(),
    );
    registry.register(
        "logins",
        "SASL authentications by mechanism and outcome (success or the failure condition)",
        m.logins.clone(),
    );
    registry.register(
        "events",
        "Events fired on the bus, by name",
        m.events.clone(),
    );
    registry.register(
        "stanzas_routed",
        "Stanzas the router took, by kind and origin (a client session or a module)",
        m.stanzas_routed.clone(),
    );
    registry.register(
        "module_operations",
        "Module loads, unloads and reloads, carried out or refused",
        m.module_ops.clone(),
    );
    registry.register(
        "module_calls",
        "Calls into each module (stream elements, IQs, hooks, stanzas, timers, mechanisms)",
        m.module_calls.clone(),
    );
    registry.register(
        "module_call_seconds",
        "Time spent in each module's calls",
        m.module_call_seconds.clone(),
    );
    registry.register(
        "module_failures",
        "Calls into each module that failed",
        m.module_failures.clone(),
    );
    registry.register(
        "module_panics",
        "Calls into each module that panicked (caught at the boundary)",
        m.module_panics.clone(),
    );
    // Figures the server keeps anyway, read now.
    let sessions = Gauge::<i64>::default();
    sessions.set(i64::try_from(shared.sessions.len()).unwrap_or(i64::MAX));
    registry.register("sessions", "Authenticated sessions", sessions);
    registry.register(
        "open_sessions_by_transport",
        "Authenticated sessions with a live connection, by transport",
        m.open_sessions.clone(),
    );
    registry.register(
        "open_connections_by_transport",
        "Open client connections past TLS, by transport",
        m.open_connections.clone(),
    );
    m.register_module_counters(&mut registry);
    let open = Family::<Kind, Gauge>::default();
    let (c2s, https) = shared.admission.in_use();
    open.get_or_create(&Kind { kind: "c2s" })
        .set(i64::try_from(c2s).unwrap_or(i64::MAX));
    open.get_or_create(&Kind { kind: "https" })
        .set(i64::try_from(https).unwrap_or(i64::MAX));
    registry.register("open_connections", "Open client connections", open);
    let fates = Family::<Fate, Counter>::default();
    let delivery = shared.delivery.to_json();
    if let Some(map) = delivery.as_object() {
        for (fate, value) in map {
            match value {
                serde_json::Value::Number(n) => {
                    let fate = Fate {
                        fate: fate.clone(),
                        reason: String::new(),
                    };
                    fates.get_or_create(&fate).inc_by(n.as_u64().unwrap_or(0));
                }
                serde_json::Value::Object(reasons) => {
                    for (reason, n) in reasons {
                        let label = Fate {
                            fate: fate.clone(),
                            reason: reason.clone(),
                        };
                        fates.get_or_create(&label).inc_by(n.as_u64().unwrap_or(0));
                    }
                }
                _ => {}
            }
        }
    }
    registry.register(
        "stanzas_to_sessions",
        "Stanzas for sessions: written, or stored, bounced or dropped and why",
        fates,
    );
    let generations = Family::<GenerationState, Gauge>::default();
    let mapped = Gauge::<i64>::default();
    for g in shared.modules.generations() {
        let state = serde_json::to_value(g.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        generations.get_or_create(&GenerationState { state }).inc();
        mapped.inc_by(i64::try_from(g.mapped_bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "module_generations",
        "Module generations by state",
        generations,
    );
    registry.register(
        "module_mapped_bytes",
        "Bytes of module libraries mapped (retired generations stay mapped)",
        mapped,
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// An address range of `[http] metrics_allow`: `ADDR` or `ADDR/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedRange {
    addr: IpAddr,
    prefix: u8,
}

impl AllowedRange {
    /// Parse `ADDR` or `ADDR/PREFIX`.
    ///
    /// # Errors
    /// Why it is not one, for the config error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: a prefix length is 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// Whether `ip` may read `/metrics`: loopback always, and the configured ranges.
pub fn allowed(ranges: &[AllowedRange], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || ranges.iter().any(|r| r.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_and_configured_ranges_only() {
        let ranges = [
            AllowedRange::parse("10.1.0.0/16").unwrap(),
            AllowedRange::parse("2001:db8::/32").unwrap(),
            AllowedRange::parse("192.0.2.7").unwrap(),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for ok in [
            "127.0.0.1",
            "::1",
            "10.1.200.3",
            "2001:db8:1::5",
            "192.0.2.7",
            "::ffff:10.1.0.9",
        ] {
            assert!(allowed(&ranges, ip(ok)), "{ok}");
        }
        for no in ["10.2.0.1", "192.0.2.8", "2001:db9::1", "8.8.8.8"] {
            assert!(!allowed(&ranges, ip(no)), "{no}");
        }
        assert!(!allowed(&[], ip("192.0.2.7")));
        assert!(AllowedRange::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        assert_eq!(
            AllowedRange::parse("10.0.0.0/33").unwrap_err(),
            "`10.0.0.0/33`: a prefix length is 0 to 32"
        );
        assert_eq!(
            AllowedRange::parse("localhost").unwrap_err(),
            "`localhost` is not an IP address or range"
        );
    }

    #[test]
    fn counters_render_in_the_prometheus_text_format() {
        let m = Metrics::default();
        m.login("SCRAM-SHA-256", "success");
        m.login("SCRAM-SHA-256", "success");
        m.login("PLAIN", "not-authorized");
        let mut registry = Registry::with_prefix("tessera");
        registry.register("logins", "SASL authentications", m.logins.clone());
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("# TYPE tessera_logins_total counter"), "{out}");
        assert!(
            out.contains("tessera_logins_total{mechanism=\"SCRAM-SHA-256\",outcome=\"success\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("tessera_logins_total{mechanism=\"PLAIN\",outcome=\"not-authorized\"} 1"),
            "{out}"
        );
    }

    #[test]
    fn module_counters_are_named_bounded_and_rendered_per_module() {
        let m = Metrics::default();
        let event = |v| Some(("event", v));
        m.module_count("sasl2_fast", "tokens", event("issued"), 1)
            .unwrap();
        m.module_count("sasl2_fast", "tokens", event("issued"), 1)
            .unwrap();
        m.module_count("sasl2_fast", "tokens", event("used"), 1)
            .unwrap();
        m.module_count("password_reset", "mails", None, 3).unwrap();
        for bad in [
            "Tokens",
            "9lives",
            "a-b",
            "tokens_total",
            "",
            &"x".repeat(49),
        ] {
            assert_eq!(
                m.module_count("x", bad, None, 1),
                Err(CountRefused::Name(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            m.module_count("x", "c", Some(("Bad", "v")), 1),
            Err(CountRefused::Name("Bad".into()))
        );
        assert_eq!(
            m.module_count("x", "c", Some(("l", "line\nbreak")), 1),
            Err(CountRefused::Value)
        );
        // "issued" and "used" are two of the sixteen.
        for i in 0..MAX_COUNTER_SERIES - 2 {
            let value = format!("v{i}");
            m.module_count("sasl2_fast", "tokens", Some(("event", &value)), 1)
                .unwrap();
        }
        assert_eq!(
            m.module_count("sasl2_fast", "tokens", event("one_too_many"), 1),
            Err(CountRefused::TooMany)
        );
        for i in 0..MAX_MODULE_COUNTERS {
            m.module_count("greedy", &format!("c{i}"), None, 1).unwrap();
        }
        assert_eq!(
            m.module_count("greedy", "more", None, 1),
            Err(CountRefused::TooMany)
        );
        // Existing series keep counting at the caps; other modules are not held back.
        m.module_count("greedy", "c0", None, 1).unwrap();
        m.module_count("sasl2_fast", "tokens", event("used"), 1)
            .unwrap();
        let mut registry = Registry::with_prefix("tessera");
        m.register_module_counters(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        for line in [
            "tessera_mod_sasl2_fast_tokens_total{event=\"issued\"} 2",
            "tessera_mod_sasl2_fast_tokens_total{event=\"used\"} 2",
            "tessera_mod_password_reset_mails_total 3",
            "tessera_mod_greedy_c0_total 2",
        ] {
            assert!(out.lines().any(|l| l == line), "{line}\n{out}");
        }
        assert!(!out.contains("one_too_many") && !out.contains("greedy_more"));
    }

    #[test]
    fn open_guards_count_down_when_dropped() {
        let m = Metrics::default();
        let a = m.open_session("websocket");
        let b = m.open_session("websocket");
        let gauge = |m: &Metrics| {
            m.open_sessions
                .get_or_create(&Transport {
                    transport: "websocket",
                })
                .get()
        };
        assert_eq!(gauge(&m), 2);
        drop(a);
        assert_eq!(gauge(&m), 1);
        drop(b);
        assert_eq!(gauge(&m), 0);
    }
}
