//! Client-side SASL for tests: SASL2 and RFC 6120 exchanges over [`XmppClient`], using the
//! same pure mechanism code the server uses (`tessera-sasl`), so the tests drive the real wire
//! protocol byte for byte.

use base64::Engine as _;
use tessera_sasl::scram::{ClientBinding, ClientSecret, ScramClient};
use tessera_sasl::{CbType, Hash};

use crate::XmppClient;

/// SASL2 namespace.
pub const SASL2: &str = "urn:xmpp:sasl:2";
/// RFC 6120 SASL namespace.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Standard base64.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decode standard base64 (panics on garbage: test helper).
pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64")
}

/// The text content of the first `<tag …>content</tag>` in `xml`.
pub fn inner<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}"))?;
    let rest = xml.get(start..)?;
    let open_end = rest.find('>')?;
    if rest.get(..open_end)?.ends_with('/') {
        return Some("");
    }
    let body = rest.get(open_end + 1..)?;
    let close = body.find(&format!("</{tag}>"))?;
    body.get(..close)
}

/// What a SASL2 attempt ended with.
#[derive(Debug, Clone)]
pub struct Sasl2Outcome {
    /// `true` for `<success>`.
    pub success: bool,
    /// The whole `<success>`/`<failure>` element text (and anything before it).
    pub xml: String,
}

impl Sasl2Outcome {
    /// The `<authorization-identifier>`.
    pub fn jid(&self) -> Option<String> {
        inner(&self.xml, "authorization-identifier").map(str::to_owned)
    }
}

fn read_outcome(c: &mut XmppClient) -> Sasl2Outcome {
    let text = c.read_until_any(&["</success>", "</failure>", "<success/>", "<failure/>"]);
    Sasl2Outcome {
        success: text.contains("<success"),
        xml: text,
    }
}

/// A SASL2 password mechanism the tests log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMechanism {
    /// SCRAM-SHA-1.
    ScramSha1,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// PLAIN.
    Plain,
}

/// Whether a SASL2 password login of `user` succeeds, on a fresh direct-TLS connection to
/// `addr`.
pub fn password_login_works(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
    mechanism: PasswordMechanism,
) -> bool {
    let mut c = XmppClient::direct_tls(addr);
    c.open();
    let none = Sasl2Extras::default();
    match mechanism {
        PasswordMechanism::ScramSha1 => c.sasl2_scram(Hash::Sha1, false, user, password, &none),
        PasswordMechanism::ScramSha256 => c.sasl2_scram(Hash::Sha256, false, user, password, &none),
        PasswordMechanism::Plain => c.sasl2_plain(user, password, &none),
    }
    .success
}

/// Optional SASL2 children: user agent and Bind 2.
#[derive(Debug, Clone, Default)]
pub struct Sasl2Extras {
    /// `<user-agent id=…>`.
    pub user_agent_id: Option<String>,
    /// `<bind><tag>…</tag></bind>`; `Some("")` binds without a tag.
    pub bind_tag: Option<String>,
    /// Raw extra children (e.g. FAST's `<request-token/>`).
    pub raw: String,
}

impl Sasl2Extras {
    /// Bind with this tag.
    pub fn bind(tag: &str) -> Self {
        Self {
            bind_tag: Some(tag.to_owned()),
            ..Self::default()
        }
    }

    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(id) = &self.user_agent_id {
            s.push_str(&format!(
                "<user-agent id='{id}'><software>tessera-tests</software></user-agent>"
            ));
        }
        match self.bind_tag.as_deref() {
            Some("") => s.push_str("<bind xmlns='urn:xmpp:bind:0'/>"),
            Some(tag) => s.push_str(&format!(
                "<bind xmlns='urn:xmpp:bind:0'><tag>{tag}</tag></bind>"
            )),
            None => {}
        }
        s.push_str(&self.raw);
        s
    }
}

impl XmppClient {
    /// `<authenticate>` with an initial response; returns the first answer element.
    pub fn sasl2_start(&mut self, mechanism: &str, initial: Option<&[u8]>, extras: &Sasl2Extras) {
        let ir = initial
            .map(|d| format!("<initial-response>{}</initial-response>", b64(d)))
            .unwrap_or_default();
        self.send(&format!(
            "<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>{ir}{}</authenticate>",
            extras.render()
        ));
    }

    /// SASL2 PLAIN.
    pub fn sasl2_plain(
        &mut self,
        user: &str,
        password: &str,
        extras: &Sasl2Extras,
    ) -> Sasl2Outcome {
        self.sasl2_start(
            "PLAIN",
            Some(format!("\0{user}\0{password}").as_bytes()),
            extras,
        );
        read_outcome(self)
    }

    /// SASL2 SCRAM-SHA-1/256, with tls-exporter channel binding when `plus`.
    pub fn sasl2_scram(
        &mut self,
        hash: Hash,
        plus: bool,
        user: &str,
        password: &str,
        extras: &Sasl2Extras,
    ) -> Sasl2Outcome {
        let binding = if plus {
            ClientBinding::Bound {
                cb_type: CbType::TlsExporter,
                data: self.tls_exporter(),
            }
        } else {
            ClientBinding::NotSupported
        };
        let scram = ScramClient::new(hash, user, None, binding, "clientnonce0123456789ABCDEF")
            .expect("scram client");
        let mechanism = hash.scram_mechanism(plus);
        self.sasl2_start(mechanism, Some(&scram.client_first()), extras);
        let first = self.read_until_any(&["</challenge>", "</failure>"]);
        let Some(challenge) = inner(&first, "challenge") else {
            return Sasl2Outcome {
                success: false,
                xml: first,
            };
        };
        let (client_final, verifier) = scram
            .server_first(&unb64(challenge), ClientSecret::Password(password))
            .expect("server-first");
        self.send(&format!(
            "<response xmlns='{SASL2}'>{}</response>",
            b64(&client_final)
        ));
        let outcome = read_outcome(self);
        if outcome.success {
            let data = inner(&outcome.xml, "additional-data").expect("additional-data");
            verifier
                .server_final(&unb64(data))
                .expect("server signature verifies");
        }
        outcome
    }

    /// RFC 6120 SASL with SCRAM-SHA-1, then stream restart and resource binding. Returns the
    /// bound JID.
    pub fn legacy_login(&mut self, user: &str, password: &str, resource: &str) -> String {
        let scram = ScramClient::new(
            Hash::Sha1,
            user,
            None,
            ClientBinding::NotSupported,
            "legacynonce0123456789ABCDEF",
        )
        .expect("scram client");
        self.send(&format!(
            "<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{}</auth>",
            b64(&scram.client_first())
        ));
        let first = self.read_until("</challenge>");
        let challenge = inner(&first, "challenge").expect("challenge");
        let (client_final, verifier) = scram
            .server_first(&unb64(challenge), ClientSecret::Password(password))
            .expect("server-first");
        self.send(&format!(
            "<response xmlns='{SASL}'>{}</response>",
            b64(&client_final)
        ));
        let success = self.read_until("</success>");
        verifier
            .server_final(&unb64(inner(&success, "success").expect("success data")))
            .expect("server signature");
        let features = self.open();
        assert!(
            features.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"),
            "{features}"
        );
        self.send(&format!("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"));
        let bound = self.read_until("</iq>");
        inner(&bound, "jid").expect("bound jid").to_owned()
    }

    /// Direct TLS, SASL2 PLAIN with Bind 2: a ready session. Returns the client and full JID.
    pub fn login(
        addr: std::net::SocketAddr,
        user: &str,
        password: &str,
        tag: &str,
    ) -> (XmppClient, String) {
        Self::login_on(XmppClient::direct_tls(addr), user, password, tag)
    }

    /// [`XmppClient::login`] on a connection made already (e.g. with a small receive buffer).
    pub fn login_on(
        mut c: XmppClient,
        user: &str,
        password: &str,
        tag: &str,
    ) -> (XmppClient, String) {
        c.open();
        let outcome = c.sasl2_plain(user, password, &Sasl2Extras::bind(tag));
        assert!(outcome.success, "login failed: {}", outcome.xml);
        c.read_until("</stream:features>");
        let jid = outcome.jid().expect("jid");
        (c, jid)
    }

    /// Whether a SASL2 PLAIN login with these credentials succeeds (on a fresh connection,
    /// closed afterwards).
    pub fn try_login(addr: std::net::SocketAddr, user: &str, password: &str) -> bool {
        let mut c = XmppClient::direct_tls(addr);
        c.open();
        c.sasl2_plain(user, password, &Sasl2Extras::default())
            .success
    }
}
