//! Outgoing mail, owned by the host: SMTP through lettre when `[smtp]` is configured, otherwise
//! each message is written as an `.eml` file into `<data_dir>/outbox/` and its path logged, so
//! the embedded default works with no mail server. The outbox is 0700 and each mail 0600: a
//! reset mail holds a live link.

use std::path::PathBuf;

use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tessera_plugin_api::protocol::Mail;
use tokio::io::AsyncWriteExt as _;

use crate::config::SmtpConfig;

/// Why a mail could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A bad address or header.
    #[error("invalid message: {0}")]
    Message(String),
    /// The SMTP server refused or could not be reached.
    #[error("smtp: {0}")]
    Smtp(String),
    /// Writing to the outbox failed.
    #[error("outbox: {0}")]
    Outbox(String),
}

/// The configured transport.
#[derive(Clone)]
pub enum Mailer {
    /// Relay through an SMTP server.
    Smtp {
        /// The transport (pooled connections).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Sender.
        from: Mailbox,
    },
    /// Write `.eml` files.
    Outbox {
        /// The folder.
        dir: PathBuf,
        /// Sender.
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
        }
    }
}

impl Mailer {
    /// Build the transport from the config.
    ///
    /// # Errors
    /// A malformed SMTP URL or sender address.
    pub fn new(
        smtp: Option<&SmtpConfig>,
        data_dir: &std::path::Path,
        domain: &str,
    ) -> Result<Self, MailError> {
        match smtp {
            Some(cfg) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.url)
                    .map_err(|e| MailError::Smtp(e.to_string()))?
                    .build();
                let from = cfg
                    .from
                    .parse()
                    .map_err(|e: lettre::address::AddressError| {
                        MailError::Message(e.to_string())
                    })?;
                Ok(Mailer::Smtp { transport, from })
            }
            None => {
                let from = format!("noreply@{domain}").parse().map_err(
                    |e: lettre::address::AddressError| MailError::Message(e.to_string()),
                )?;
                Ok(Mailer::Outbox {
                    dir: data_dir.join("outbox"),
                    from,
                })
            }
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message, MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Message(e.to_string()))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Message(e.to_string()))
    }

    /// Send a mail; returns where it went (the SMTP server's answer or the outbox file).
    ///
    /// # Errors
    /// [`MailError`].
    pub async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let message = self.build(mail)?;
        match self {
            Mailer::Smtp { transport, .. } => {
                let response = transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
                Ok(format!("smtp {}", response.code()))
            }
            Mailer::Outbox { dir, .. } => {
                let outbox = |e: std::io::Error| MailError::Outbox(e.to_string());
                tokio::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .await
                    .map_err(outbox)?;
                let name = format!("{}-{}.eml", crate::now_ms(), crate::secret::random_hex(6));
                let path = dir.join(&name);
                // Written under a hidden name and renamed when complete: whoever reads the
                // outbox (a delivery script, a test) never sees half a mail.
                let partial = dir.join(format!(".{name}.part"));
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&partial)
                    .await
                    .map_err(outbox)?;
                file.write_all(&message.formatted()).await.map_err(outbox)?;
                file.sync_all().await.map_err(outbox)?;
                drop(file);
                tokio::fs::rename(&partial, &path).await.map_err(outbox)?;
                Ok(path.display().to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_writes_an_eml_file_and_refuses_bad_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, dir.path(), "localhost").unwrap();
        let mail = Mail {
            to: "alice@example.org".into(),
            subject: "Hi".into(),
            body: "Body line".into(),
        };
        let path = mailer.send(&mail).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = |p: &std::path::Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir.path().join("outbox")), 0o700);
        assert_eq!(
            mode(std::path::Path::new(&path)),
            0o600,
            "it holds reset links"
        );
        assert!(text.contains("To: alice@example.org"), "{text}");
        assert!(text.contains("Subject: Hi"));
        assert!(text.contains("Body line"));
        let bad = Mail {
            to: "not an address".into(),
            ..mail
        };
        assert!(matches!(
            mailer.send(&bad).await,
            Err(MailError::Message(_))
        ));
    }
}
