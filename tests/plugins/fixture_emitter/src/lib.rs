//! Test fixture `fixture_emitter`: lets a host end-to-end test fire bus events over HTTP and read
//! back a module option.
//!
//! Used by the host tests for the event bus (with `fixture_listener_a`/`_b` and
//! `fixture_panicker`: priority order, propagation stop, panic isolation) and for module options
//! ("a module's option reaches the module", "a mistyped option key is refused").
//!
//! * `GET /test/emitter/fire?event=NAME&value=V` fires `NAME` with
//!   `{"value": V, "from": "fixture_emitter"}` and answers 200 `fired` (400 without `event`).
//! * `GET /test/emitter/greeting` answers 200 with the option `fixture_emitter_greeting`
//!   (a string, default `hello`).
//! * `<stream:features/>` get `<seen xmlns='urn:tessera:test:emitter' greeting=… calls=…
//!   stream=… peer=… from=… user=…/>`: the option, how many times this instance was asked,
//!   and what it was told about the stream (the host caches pre-auth features per stream
//!   class, so it must not learn the particular stream). With the greeting `fail-first` the
//!   first call fails.

use tessera_plugin_api::protocol::OptionValue;
use tessera_plugin_api::protocol::{
    HttpRequest, HttpResponse, Manifest, OptionKind, OptionSpec, Registrations, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Config, Host, Module, PluginError};

#[path = "../../fixture_listener_a/src/ping.rs"]
mod ping;

const PREFIX: &str = "/test/emitter";
const GREETING_OPTION: &str = "fixture_emitter_greeting";

/// The module: remembers its greeting option.
#[derive(Debug)]
pub struct Emitter {
    greeting: String,
    /// `stream_features` calls this instance answered (shows the host's features cache).
    feature_calls: std::sync::atomic::AtomicU64,
}

impl Module for Emitter {
    const NAME: &'static str = "fixture_emitter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: fires bus events on HTTP request".into(),
            options: vec![OptionSpec {
                name: GREETING_OPTION.into(),
                kind: OptionKind::String,
                default: Some(OptionValue::String("hello".into())),
                required: false,
                doc: "Text served at /test/emitter/greeting".into(),
            }],
            depends: Vec::new(),
            requires: Vec::new(),
        }
    }

    fn init(_host: &Host, config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let greeting = config.string(GREETING_OPTION).unwrap_or("hello").to_owned();
        Ok(Emitter {
            greeting,
            feature_calls: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            http_routes: vec![PREFIX.into()],
            stream_features: true,
            ..Registrations::default()
        }
    }

    fn stream_features(
        &self,
        _host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        let mut seen = Element::new("seen", "urn:tessera:test:emitter");
        let calls = 1 + self
            .feature_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if calls == 1 && self.greeting == "fail-first" {
            return Err(PluginError::internal(
                "first stream_features call fails (as asked)",
            ));
        }
        seen.set_attr("greeting", &self.greeting);
        seen.set_attr("calls", calls.to_string());
        seen.set_attr("stream", stream.id.to_string());
        seen.set_attr("peer", &stream.peer_ip);
        seen.set_attr("from", stream.from.as_deref().unwrap_or_default());
        seen.set_attr("user", stream.user.as_deref().unwrap_or_default());
        Ok(vec![seen])
    }

    fn timer(
        &self,
        host: &Host,
        timer: tessera_plugin_api::protocol::TimerFired,
    ) -> Result<(), PluginError> {
        let ping = ping::Ping {
            value: Some("timer".into()),
            from: Self::NAME.into(),
        };
        host.fire(&timer.tag, &ping)
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        // Accept the path with or without the route prefix.
        let rest = request.path.strip_prefix(PREFIX).unwrap_or(&request.path);
        match (request.method.as_str(), rest) {
            ("GET", "/fire") => {
                let Some(event) = query_param(&request.query, "event") else {
                    return Ok(text(400, "missing `event`"));
                };
                let ping = ping::Ping {
                    value: query_param(&request.query, "value"),
                    from: Self::NAME.into(),
                };
                host.fire(&event, &ping)?;
                Ok(text(200, "fired"))
            }
            ("GET", "/greeting") => Ok(text(200, &self.greeting)),
            ("GET", "/timer") => {
                // Fires `event` (value "timer") when the host calls back after `ms`.
                let ms = query_param(&request.query, "ms")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(10);
                let event =
                    query_param(&request.query, "event").unwrap_or_else(|| "fixture-ping".into());
                host.set_timer(ms, &event)?;
                Ok(text(200, "armed"))
            }
            ("GET", "/mail") => {
                let Some(to) = query_param(&request.query, "to") else {
                    return Ok(text(400, "missing `to`"));
                };
                let op = host.send_mail(tessera_plugin_api::protocol::Mail {
                    to,
                    subject: "Fixture mail".into(),
                    body: "Sent by fixture_emitter through the host's mailer.".into(),
                })?;
                Ok(text(200, &op.to_string()))
            }
            ("GET", "/sessions") => {
                let user = query_param(&request.query, "user").unwrap_or_default();
                let sessions = host.list_sessions(&user)?;
                Ok(text(
                    200,
                    &serde_json::to_string(&sessions)
                        .map_err(|e| PluginError::internal(e.to_string()))?,
                ))
            }
            _ => Ok(text(404, "not found")),
        }
    }
}

fn text(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// The percent-decoded value of the first `key=` pair in a query string.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Decode `%XX` escapes and `+` (form encoding); invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

tessera_plugin_api::export_module!(Emitter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let q = "event=fixture-ping&value=a%20b+c%2&x=%+1";
        assert_eq!(query_param(q, "event").as_deref(), Some("fixture-ping"));
        assert_eq!(query_param(q, "value").as_deref(), Some("a b c%2"));
        assert_eq!(query_param(q, "x").as_deref(), Some("% 1"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
    }
}
