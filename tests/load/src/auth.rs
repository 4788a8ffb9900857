//! One SASL2 login (XEP-0388) with Bind 2 (XEP-0386): stream header, `<authenticate>` with the
//! chosen mechanism, `<success>` (server signature or HT responder verified), post-auth
//! features. SCRAM reuses keys derived once per account; FAST (XEP-0484) uses a token obtained
//! with a password login carrying `<request-token/>`.

use std::net::IpAddr;
use std::sync::Arc;

use tessera_sasl::ht::{self, HtMechanism};
use tessera_sasl::scram::{nonce_from_random, ClientBinding, ClientSecret, ScramClient};
use tessera_sasl::{decode_base64_lenient, encode_base64, CbType, Hash};

use crate::accounts::Account;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::xml;

/// A login method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mechanism {
    #[value(name = "scram-sha-1")]
    ScramSha1,
    #[value(name = "scram-sha-1-plus")]
    ScramSha1Plus,
    #[value(name = "scram-sha-256")]
    ScramSha256,
    #[value(name = "scram-sha-256-plus")]
    ScramSha256Plus,
    #[value(name = "plain")]
    Plain,
    /// FAST with HT-SHA-256-NONE.
    #[value(name = "fast-none")]
    FastNone,
    /// FAST with HT-SHA-256-EXPR (tls-exporter).
    #[value(name = "fast-expr")]
    FastExpr,
}

impl Mechanism {
    /// The HT mechanism of a FAST method.
    pub(crate) fn fast(self) -> Option<HtMechanism> {
        match self {
            Mechanism::FastNone => Some(HtMechanism::Sha256None),
            Mechanism::FastExpr => Some(HtMechanism::Sha256Expr),
            _ => None,
        }
    }

    /// The SCRAM hash and `-PLUS` flag of a SCRAM method.
    fn scram(self) -> Option<(Hash, bool)> {
        match self {
            Mechanism::ScramSha1 => Some((Hash::Sha1, false)),
            Mechanism::ScramSha1Plus => Some((Hash::Sha1, true)),
            Mechanism::ScramSha256 => Some((Hash::Sha256, false)),
            Mechanism::ScramSha256Plus => Some((Hash::Sha256, true)),
            _ => None,
        }
    }

    /// The name used on the command line and in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "scram-sha-1",
            Mechanism::ScramSha1Plus => "scram-sha-1-plus",
            Mechanism::ScramSha256 => "scram-sha-256",
            Mechanism::ScramSha256Plus => "scram-sha-256-plus",
            Mechanism::Plain => "plain",
            Mechanism::FastNone => "fast-none",
            Mechanism::FastExpr => "fast-expr",
        }
    }
}

/// One client: an account, its user-agent id, and its FAST token if it has one.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) account: Arc<Account>,
    pub(crate) ua_id: String,
    pub(crate) token: Option<String>,
}

impl Client {
    /// A client with a stable UUID-v4-shaped user-agent id derived from `n` (so FAST tokens
    /// and Bind 2 resources stay the same between runs).
    pub(crate) fn new(account: Arc<Account>, n: u64) -> Self {
        Self {
            account,
            ua_id: format!("7e55e4a0-10ad-4000-8000-{:012x}", n & 0xffff_ffff_ffff),
            token: None,
        }
    }
}

/// An authenticated, bound stream.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) conn: Conn,
    /// A FAST token issued in `<success>` (requested or rotated).
    pub(crate) token: Option<String>,
}

/// A SCRAM-SHA-256 login of `account` as user agent `ua`: the stream, bound.
pub(crate) async fn scram_session(
    target: &Target,
    account: &std::sync::Arc<crate::accounts::Account>,
    ua: u64,
) -> Result<Conn, Failure> {
    let client = Client::new(account.clone(), ua);
    Ok(login(target, &client, Mechanism::ScramSha256, None, None)
        .await?
        .conn)
}

/// Connect and log in. `request_token` adds `<request-token mechanism=…/>`.
pub(crate) async fn login(
    target: &Target,
    client: &Client,
    mechanism: Mechanism,
    request_token: Option<HtMechanism>,
    source: Option<IpAddr>,
) -> Result<Session, Failure> {
    let conn = target.connect(source).await?;
    login_on(conn, target, client, mechanism, request_token).await
}

/// What a login asks of stream management (XEP-0198), inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sm<'a> {
    /// `<enable resume='true'/>` inside Bind 2.
    Enable,
    /// `<resume previd h='0'/>` inside SASL2 (instead of binding).
    Resume(&'a str),
}

/// A login with stream management inline: the stream, the resumption id (from `<enabled/>`,
/// or the one resumed), and whether it resumed (then no stream features follow).
pub(crate) async fn login_sm(
    target: &Target,
    client: &Client,
    mechanism: Mechanism,
    sm: Sm<'_>,
) -> Result<(Conn, Option<String>, bool), Failure> {
    let mut conn = target.connect(None).await?;
    let from = target.send_from.then(|| client.account.jid());
    conn.send(&xml::stream_header(&target.domain, from.as_deref()))
        .await?;
    conn.read_until(&["</stream:features>"]).await?;
    let mut extras = extras(client, None, mechanism.fast().is_some());
    match sm {
        Sm::Enable => {
            extras = extras.replace(
                "<tag>load</tag></bind>",
                "<tag>load</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>",
            );
        }
        Sm::Resume(id) => extras.push_str(&format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{}' h='0'/>",
            xml::escape(id)
        )),
    }
    let success = match mechanism.fast() {
        Some(ht) => fast(&mut conn, client, ht, &extras).await?,
        None => {
            let (hash, plus) = mechanism
                .scram()
                .ok_or_else(|| Failure::Protocol("stream management needs FAST or SCRAM".into()))?;
            scram(&mut conn, &client.account, hash, plus, &extras).await?
        }
    };
    let resumed = success.contains("<resumed");
    if let Sm::Resume(id) = sm {
        if !resumed {
            return Err(Failure::Protocol(format!(
                "not resumed: {}",
                xml::first_child(&success, "failed").unwrap_or_else(|| "no <resumed/>".into())
            )));
        }
        return Ok((conn, Some(id.to_owned()), true));
    }
    conn.read_until(&["</stream:features>", "<stream:features/>"])
        .await?;
    let id = xml::attr(&success, "enabled", "id");
    if sm == Sm::Enable && id.is_none() {
        return Err(Failure::Protocol("no <enabled id/> in <bound/>".into()));
    }
    Ok((conn, id, false))
}

/// [`login`] over a connection made already (e.g. with a small receive buffer).
pub(crate) async fn login_on(
    mut conn: Conn,
    target: &Target,
    client: &Client,
    mechanism: Mechanism,
    request_token: Option<HtMechanism>,
) -> Result<Session, Failure> {
    let from = target.send_from.then(|| client.account.jid());
    conn.send(&xml::stream_header(&target.domain, from.as_deref()))
        .await?;
    let (_, features) = conn.read_until(&["</stream:features>"]).await?;
    if !features.contains("urn:xmpp:sasl:2") {
        return Err(Failure::Protocol(
            "no SASL2 <authentication> offered".into(),
        ));
    }
    let extras = extras(client, request_token, mechanism.fast().is_some());
    let success = if let Some(ht) = mechanism.fast() {
        fast(&mut conn, client, ht, &extras).await?
    } else if let Some((hash, plus)) = mechanism.scram() {
        scram(&mut conn, &client.account, hash, plus, &extras).await?
    } else {
        let initial = format!("\0{}\0{}", client.account.local, client.account.password);
        conn.send(&authenticate("PLAIN", initial.as_bytes(), &extras))
            .await?;
        outcome(&mut conn).await?
    };
    conn.read_until(&["</stream:features>", "<stream:features/>"])
        .await?;
    let token = xml::attr(&success, "token", "token");
    if request_token.is_some() && token.is_none() {
        return Err(Failure::Protocol(format!(
            "no FAST <token> in <success> (offered: {})",
            fast_offer(&features)
        )));
    }
    Ok(Session { conn, token })
}

fn fast_offer(features: &str) -> String {
    match xml::inner(features, "fast") {
        Some(f) => f.replace("<mechanism>", " ").replace("</mechanism>", ""),
        None => "no <fast/> in the features".into(),
    }
}

fn extras(client: &Client, request_token: Option<HtMechanism>, fast: bool) -> String {
    let mut s = format!(
        "<user-agent id='{}'><software>tessera-load</software></user-agent>\
         <bind xmlns='urn:xmpp:bind:0'><tag>load</tag></bind>",
        xml::escape(&client.ua_id)
    );
    if let Some(m) = request_token {
        s.push_str(&format!(
            "<request-token xmlns='urn:xmpp:fast:0' mechanism='{}'/>",
            m.name()
        ));
    }
    if fast {
        s.push_str("<fast xmlns='urn:xmpp:fast:0'/>");
    }
    s
}

fn authenticate(mechanism: &str, initial: &[u8], extras: &str) -> String {
    format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='{mechanism}'>\
         <initial-response>{}</initial-response>{extras}</authenticate>",
        encode_base64(initial)
    )
}

/// Wait for `<success>` (returned) or `<failure>` (its condition as [`Failure::Auth`]).
async fn outcome(conn: &mut Conn) -> Result<String, Failure> {
    let (i, text) = conn.read_until(&["</success>", "</failure>"]).await?;
    if i == 1 {
        return Err(auth_failure(&text));
    }
    Ok(text)
}

fn auth_failure(text: &str) -> Failure {
    Failure::Auth(xml::first_child(text, "failure").unwrap_or_else(|| "undefined-condition".into()))
}

fn base64_of(text: &str, tag: &str) -> Result<Vec<u8>, Failure> {
    let b64 = xml::inner(text, tag).ok_or_else(|| Failure::Protocol(format!("no <{tag}>")))?;
    decode_base64_lenient(b64).map_err(|e| Failure::Protocol(format!("<{tag}>: {e}")))
}

async fn scram(
    conn: &mut Conn,
    account: &Account,
    hash: Hash,
    plus: bool,
    extras: &str,
) -> Result<String, Failure> {
    let binding = if plus {
        let data = conn.tls_exporter()?;
        ClientBinding::Bound {
            cb_type: CbType::TlsExporter,
            data,
        }
    } else {
        ClientBinding::NotSupported
    };
    let mut random = [0u8; 18];
    let _ = getrandom::getrandom(&mut random);
    let nonce = nonce_from_random(&random);
    let client = ScramClient::new(hash, &account.local, None, binding, &nonce)
        .map_err(|e| Failure::Protocol(format!("SCRAM client: {e}")))?;
    let first = authenticate(hash.scram_mechanism(plus), &client.client_first(), extras);
    conn.send(&first).await?;
    let (i, text) = conn.read_until(&["</challenge>", "</failure>"]).await?;
    if i == 1 {
        return Err(auth_failure(&text));
    }
    let challenge = base64_of(&text, "challenge")?;
    // Cached keys skip PBKDF2; if the salt changed (new password), derive again.
    let cached = account.keys(hash);
    let attempt = match &cached {
        Some(keys) => client
            .clone()
            .server_first(&challenge, ClientSecret::Keys(keys))
            .ok(),
        None => None,
    };
    let (client_final, verifier) = match attempt {
        Some(done) => done,
        None => {
            let done = client
                .server_first(&challenge, ClientSecret::Password(&account.password))
                .map_err(|e| Failure::Protocol(format!("SCRAM server-first: {e}")))?;
            account.set_keys(done.1.keys());
            done
        }
    };
    let response = format!(
        "<response xmlns='urn:xmpp:sasl:2'>{}</response>",
        encode_base64(&client_final)
    );
    conn.send(&response).await?;
    let success = outcome(conn).await?;
    verifier
        .server_final(&base64_of(&success, "additional-data")?)
        .map_err(|e| Failure::Protocol(format!("server signature: {e}")))?;
    Ok(success)
}

async fn fast(
    conn: &mut Conn,
    client: &Client,
    ht: HtMechanism,
    extras: &str,
) -> Result<String, Failure> {
    let Some(token) = client.token.as_deref() else {
        return Err(Failure::Protocol("no FAST token".into()));
    };
    let cb = match ht {
        HtMechanism::Sha256Expr => conn.tls_exporter()?,
        _ => Vec::new(),
    };
    let initial = ht::build_initial_response(&client.account.local, token.as_bytes(), &cb);
    conn.send(&authenticate(ht.name(), &initial, extras))
        .await?;
    let success = outcome(conn).await?;
    let data = base64_of(&success, "additional-data")?;
    if data != ht::responder_hmac(token.as_bytes(), &cb) {
        return Err(Failure::Protocol("HT responder HMAC does not match".into()));
    }
    Ok(success)
}
