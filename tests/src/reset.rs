//! A reference client for the `PASSWORD-RESET` SASL mechanism (docs/password-reset.md), over
//! [`XmppClient`], for both SASL profiles: start the mechanism with the account name, answer the
//! data-form challenge by submitting the fields it asks for, and return the final `<failure/>`.
//! Also what a user's mail reader does with the reset mail: decode the body and find the link.
//!
//! It is written from the specification alone, as a client author would, so that the tests
//! check the document as much as the server. The last section holds the real parts the
//! password-reset tests drive: an SMTP server on loopback and a headless browser.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sasl::{b64, inner, unb64, SASL, SASL2};
use crate::{target_dir, workspace, XmppClient, TIMEOUT};

/// The mechanism's name.
pub const MECHANISM: &str = "PASSWORD-RESET";
/// The mechanism's namespace (`FORM_TYPE`, `<reset-requested/>`).
pub const RESET_NS: &str = "urn:tessera:password-reset:0";

/// Which SASL profile to run the exchange in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// XEP-0388 `<authenticate/>`.
    Sasl2,
    /// RFC 6120 `<auth/>`.
    Legacy,
}

impl Profile {
    fn ns(self) -> &'static str {
        match self {
            Profile::Sasl2 => SASL2,
            Profile::Legacy => SASL,
        }
    }
}

/// What the server answered to one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A `<challenge/>` with its decoded payload.
    Challenge(Vec<u8>),
    /// The `<failure>…</failure>` element, as received.
    Failure(String),
}

impl Answer {
    /// The challenge payload as text (panics on a failure: test helper).
    pub fn challenge_text(&self) -> String {
        match self {
            Answer::Challenge(data) => String::from_utf8_lossy(data).into_owned(),
            Answer::Failure(xml) => panic!("expected a challenge, got {xml}"),
        }
    }

    /// The failure XML (panics on a challenge: test helper).
    pub fn failure(&self) -> &str {
        match self {
            Answer::Failure(xml) => xml,
            Answer::Challenge(d) => {
                panic!("expected a failure, got a challenge of {} bytes", d.len())
            }
        }
    }
}

fn read_answer(c: &mut XmppClient, profile: Profile) -> Answer {
    let ns = profile.ns();
    let got = c.read_until_any(&[
        "</challenge>",
        &format!("<challenge xmlns='{ns}'/>"),
        "</failure>",
    ]);
    match got.find("<failure") {
        Some(at) if !got.contains("<challenge") => Answer::Failure(got[at..].to_owned()),
        _ => {
            let text = inner(&got, "challenge").unwrap_or_default().trim();
            // RFC 6120: a single `=` is a zero-length payload; SASL2 sends an empty element.
            let data = if text.is_empty() || text == "=" {
                Vec::new()
            } else {
                unb64(text)
            };
            Answer::Challenge(data)
        }
    }
}

/// The submitted form (`type='submit'`) answering a challenge form: `FORM_TYPE` copied, the
/// `username` field filled only when the challenge has one, the `email` field filled.
pub fn submit_form(challenge: &str, username: Option<&str>, email: &str) -> String {
    let form_type = challenge
        .split("<field")
        .find(|f| f.contains("var='FORM_TYPE'") || f.contains("var=\"FORM_TYPE\""))
        .and_then(|f| inner(f, "value"))
        .unwrap_or(RESET_NS);
    let field = |var: &str, value: &str| {
        format!(
            "<field var='{var}'><value>{}</value></field>",
            xml_escape(value)
        )
    };
    let mut out = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"
    );
    if challenge.contains("var='username'") {
        out.push_str(&field("username", username.unwrap_or_default()));
    }
    out.push_str(&field("email", email));
    out.push_str("</x>");
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

impl XmppClient {
    /// Start `PASSWORD-RESET`: `initial` is the initial response (the account name; `None`
    /// sends none). Returns the first answer.
    pub fn reset_start(&mut self, profile: Profile, initial: Option<&[u8]>) -> Answer {
        let xml = match (profile, initial) {
            (Profile::Sasl2, Some(ir)) => format!(
                "<authenticate xmlns='{SASL2}' mechanism='{MECHANISM}'><initial-response>{}</initial-response></authenticate>",
                b64(ir)
            ),
            (Profile::Sasl2, None) => {
                format!("<authenticate xmlns='{SASL2}' mechanism='{MECHANISM}'/>")
            }
            (Profile::Legacy, Some([])) => {
                format!("<auth xmlns='{SASL}' mechanism='{MECHANISM}'>=</auth>")
            }
            (Profile::Legacy, Some(ir)) => format!(
                "<auth xmlns='{SASL}' mechanism='{MECHANISM}'>{}</auth>",
                b64(ir)
            ),
            (Profile::Legacy, None) => format!("<auth xmlns='{SASL}' mechanism='{MECHANISM}'/>"),
        };
        self.send(&xml);
        read_answer(self, profile)
    }

    /// Send one `<response/>` with `data`; returns the answer.
    pub fn reset_respond(&mut self, profile: Profile, data: &[u8]) -> Answer {
        let ns = profile.ns();
        let text = if data.is_empty() && profile == Profile::Legacy {
            "=".to_owned()
        } else {
            b64(data)
        };
        self.send(&format!("<response xmlns='{ns}'>{text}</response>"));
        read_answer(self, profile)
    }

    /// The whole exchange with `account` in the initial response and the form answered with
    /// `email`. Returns the final `<failure/>` (the mechanism never succeeds).
    pub fn password_reset(&mut self, profile: Profile, account: &str, email: &str) -> String {
        let form = self
            .reset_start(profile, Some(account.as_bytes()))
            .challenge_text();
        assert!(
            form.contains(&format!("<value>{RESET_NS}</value>")),
            "{form}"
        );
        let submitted = submit_form(&form, None, email);
        self.reset_respond(profile, submitted.as_bytes())
            .failure()
            .to_owned()
    }

    /// Like [`XmppClient::password_reset`] without an initial response: the server's empty
    /// challenge is answered with an empty name, and the account goes into the form.
    pub fn password_reset_by_form(
        &mut self,
        profile: Profile,
        account: &str,
        email: &str,
    ) -> String {
        assert_eq!(
            self.reset_start(profile, None),
            Answer::Challenge(Vec::new())
        );
        let form = self.reset_respond(profile, b"").challenge_text();
        assert!(form.contains("var='username'"), "{form}");
        let submitted = submit_form(&form, Some(account), email);
        self.reset_respond(profile, submitted.as_bytes())
            .failure()
            .to_owned()
    }
}

/// The body of a received mail (RFC 5322 text), decoded from its `Content-Transfer-Encoding`
/// (7bit, 8bit, quoted-printable or base64), with CRLF turned into LF.
pub fn mail_body(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let encoding = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => String::from_utf8_lossy(&unb64(&body.split_whitespace().collect::<String>()))
            .replace("\r\n", "\n"),
        _ => body.to_owned(),
    }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// A header of a received mail (first occurrence, unfolded).
pub fn mail_header(raw: &str, name: &str) -> Option<String> {
    let raw = raw.replace("\r\n", "\n");
    let head = raw
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace("\n ", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The reset link in a mail body: the first line that starts with `base` followed by
/// `/password-reset/`.
pub fn reset_link(body: &str, base: &str) -> Option<String> {
    let prefix = format!("{}/password-reset/", base.trim_end_matches('/'));
    body.lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .map(str::to_owned)
}

/// aiosmtpd (from `tests/web/.venv`, see `tests/web/install.sh`) on an OS-chosen loopback port,
/// storing what it receives in a maildir; killed on drop.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl SmtpSink {
    /// Start it and wait until it accepts connections.
    pub fn start() -> SmtpSink {
        let python = workspace().join("tests/web/.venv/bin/python");
        assert!(
            python.exists(),
            "no aiosmtpd venv: run tests/web/install.sh"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink { child, dir, port }
    }

    /// The server's `[smtp]` table for this sink.
    pub fn smtp_table(&self) -> String {
        format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"noreply@localhost\"\n",
            self.port
        )
    }

    /// The mails received so far (raw RFC 5322 text), oldest first.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir/new")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Wait until `n` mails have arrived; returns them.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/test-artifacts/` (created), where tests leave screenshots.
pub fn artifacts_dir() -> PathBuf {
    let dir = target_dir()
        .parent()
        .map(|p| p.join("test-artifacts"))
        .unwrap_or_else(|| PathBuf::from("test-artifacts"));
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir
}

/// Open a reset link in Debian's headless chromium (`tests/web/reset.mjs`, playwright-core),
/// type `password` into both fields, submit, and save screenshots of the form and the result as
/// `<artifacts>/<name>-form.png` and `<name>-done.png`. Returns the script's JSON report.
pub fn browse_reset_page(url: &str, password: &str, name: &str) -> serde_json::Value {
    let web = workspace().join("tests/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "run tests/web/install.sh"
    );
    let dir = artifacts_dir();
    let mut child = Command::new("node")
        .arg(web.join("reset.mjs"))
        .args(["--url", url, "--password", password, "--form-shot"])
        .arg(dir.join(format!("{name}-form.png")))
        .arg("--result-shot")
        .arg(dir.join(format!("{name}-done.png")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + Duration::from_secs(90);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the browser script timed out");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("browser output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("browser json")
}
