//! Email delivery: the SMTP URL syntax, and three backends behind one [`Mailer`] — SMTP (lettre, TLS or
//! STARTTLS required unless the URL says `tls=none` for a local relay), a maildir-style folder for running
//! without a mail server, and memory for tests.
//!
//! # `smtp_url` syntax
//!
//! | URL | connection |
//! |---|---|
//! | `smtps://user:pass@host[:465]` | TLS from the first byte (implicit TLS) |
//! | `smtp://user:pass@host[:587]` (or `?tls=starttls`, `?tls=required`) | STARTTLS, required: a server that does not offer it is refused |
//! | `smtp://host[:25]?tls=none` | plain text, for a relay on the same host or private network; refused in production when the URL carries a password |
//!
//! Certificates are checked against the platform's trust store. Every message carries a `Message-ID`
//! derived from its outbox row (`<outbox-ID@domain>`), so a retried send is recognisably the same message.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::sensitive::Sensitive;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Implicit TLS (`smtps://`).
    Tls,
    /// STARTTLS, required (`smtp://`).
    StartTls,
    /// No encryption (`smtp://...?tls=none`), for a local relay only.
    Plain,
}

/// A parsed `smtp_url`. Prints no password.
#[derive(Debug, Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Sensitive<String>>,
}

impl SmtpTarget {
    /// Parses the URL; the error says what to fix and never repeats the URL (it may hold a password).
    pub fn parse(raw: &str) -> Result<SmtpTarget, String> {
        let url = url::Url::parse(raw.trim()).map_err(|_| "not a URL (smtp://host:587)".to_owned())?;
        let mut tls: Option<String> = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" => tls = Some(value.to_ascii_lowercase()),
                _ => return Err(format!("unknown parameter `{key}` (only `tls` is understood)")),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None | Some("tls" | "wrapper" | "required")) => SmtpSecurity::Tls,
            ("smtp", None | Some("starttls" | "required")) => SmtpSecurity::StartTls,
            ("smtp", Some("none")) => SmtpSecurity::Plain,
            ("smtp" | "smtps", Some("opportunistic")) => {
                return Err(
                    "tls=opportunistic can be downgraded by an attacker; use STARTTLS (the default), \
                            smtps://, or tls=none for a local relay"
                        .to_owned(),
                );
            }
            ("smtp" | "smtps", Some(other)) => {
                return Err(format!(
                    "tls={other} is not understood (use starttls, required or none)"
                ));
            }
            _ => return Err("use smtp:// (STARTTLS) or smtps:// (TLS)".to_owned()),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "the URL has no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Plain => 25,
        });
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the user or password is not valid percent-encoding".to_owned())
        };
        let user = (!url.username().is_empty())
            .then(|| decode(url.username()))
            .transpose()?;
        let password = url.password().map(decode).transpose()?.map(Sensitive::new);
        if password.is_some() && user.is_none() {
            return Err("a password needs a user name".to_owned());
        }
        Ok(SmtpTarget {
            host,
            port,
            security,
            user,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One email ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address (staff; never logged).
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `<outbox-ID@domain>`.
    pub message_id: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// Why an email was not delivered. No variant carries an address.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message could not be built (bad from or to address).
    #[error("the email could not be built: {0}")]
    Build(String),
    /// The mail server could not be reached or refused for now (retry).
    #[error("the mail server failed: {0}")]
    Transport(String),
    /// Writing to the mail folder failed.
    #[error("the mail folder could not be written: {0}")]
    Io(String),
}

impl MailError {
    /// Stable code (stored in `outbox.last_error`).
    pub fn code(&self) -> &'static str {
        match self {
            MailError::Build(_) => "email_build_failed",
            MailError::Transport(_) => "smtp_failed",
            MailError::Io(_) => "mail_folder_failed",
        }
    }
}

/// Emails kept in memory (tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryMailbox(Arc<Mutex<Vec<Email>>>);

impl MemoryMailbox {
    /// Everything sent so far.
    pub fn messages(&self) -> Vec<Email> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Where email goes.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    /// `<dir>/new/<outbox id>.eml` files (maildir layout), for running without a mail server.
    Maildir(PathBuf),
    /// Memory (tests).
    Memory(MemoryMailbox),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp"),
            Mailer::Maildir(dir) => write!(f, "Mailer::Maildir({})", dir.display()),
            Mailer::Memory(_) => f.write_str("Mailer::Memory"),
        }
    }
}

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl Mailer {
    /// An SMTP mailer for `target`, greeting as `hello_domain`.
    pub fn smtp(target: &SmtpTarget, hello_domain: &str) -> Result<Mailer, MailError> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| MailError::Transport(format!("TLS setup: {e}")))
        };
        let security = match target.security {
            SmtpSecurity::Tls => Tls::Wrapper(tls(&target.host)?),
            SmtpSecurity::StartTls => Tls::Required(tls(&target.host)?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
            .port(target.port)
            .tls(security)
            .timeout(Some(SMTP_TIMEOUT))
            .hello_name(ClientId::Domain(hello_domain.to_owned()));
        if let (Some(user), Some(password)) = (&target.user, &target.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(Mailer::Smtp(Box::new(builder.build())))
    }

    /// Sends one email from `from`.
    pub async fn send(&self, from: &Mailbox, email: &Email) -> Result<(), MailError> {
        let message = build_message(from, email)?;
        match self {
            Mailer::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(smtp_error_summary(&e))),
            Mailer::Maildir(dir) => write_maildir(dir, &email.message_id, &message.formatted()).await,
            Mailer::Memory(mailbox) => {
                if let Ok(mut messages) = mailbox.0.lock() {
                    messages.push(email.clone());
                }
                Ok(())
            }
        }
    }
}

/// The SMTP failure without the server's free text (which may quote an address).
fn smtp_error_summary(err: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = err.status() {
        format!("SMTP reply {code}")
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_tls() {
        "TLS failed".to_owned()
    } else {
        "connection failed or closed".to_owned()
    }
}

fn build_message(from: &Mailbox, email: &Email) -> Result<Message, MailError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| MailError::Build("the recipient address is not valid".to_owned()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
}

async fn write_maildir(dir: &Path, message_id: &str, bytes: &[u8]) -> Result<(), MailError> {
    let name: String = message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '@'))
        .collect();
    let dir = dir.to_owned();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let tmp = dir.join("tmp");
        let new = dir.join("new");
        crate::db::create_private_dir(&tmp)?;
        crate::db::create_private_dir(&new)?;
        let staged = tmp.join(format!("{name}.eml"));
        std::fs::write(&staged, &bytes)?;
        std::fs::rename(&staged, new.join(format!("{name}.eml")))
    })
    .await
    .map_err(|e| MailError::Io(e.to_string()))?
    .map_err(|e| MailError::Io(e.kind().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_says_how_the_connection_is_protected() -> Result<(), String> {
        let t = SmtpTarget::parse("smtps://u:p%40ss@mail.example.org")?;
        assert_eq!((t.security, t.port), (SmtpSecurity::Tls, 465));
        assert_eq!(t.password.as_ref().map(|p| p.expose().as_str()), Some("p@ss"));
        let t = SmtpTarget::parse("smtp://mail.example.org")?;
        assert_eq!((t.security, t.port), (SmtpSecurity::StartTls, 587));
        let t = SmtpTarget::parse("smtp://relay:2525?tls=none")?;
        assert_eq!((t.security, t.port), (SmtpSecurity::Plain, 2525));
        assert!(SmtpTarget::parse("smtp://relay?tls=opportunistic").is_err());
        assert!(SmtpTarget::parse("smtps://relay?tls=none").is_err());
        assert!(SmtpTarget::parse("smtp://relay?foo=1").is_err());
        assert!(SmtpTarget::parse("http://relay").is_err());
        let err = SmtpTarget::parse("smtp://u:secret@relay?tls=maybe")
            .err()
            .unwrap_or_default();
        assert!(!err.contains("secret"));
        Ok(())
    }

    #[tokio::test]
    async fn the_mail_folder_keeps_one_file_per_message_id() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("komek-maildir-{}", uuid::Uuid::new_v4().simple()));
        let mailer = Mailer::Maildir(dir.clone());
        let from: Mailbox = "Komek <komek@example.org>".parse()?;
        let email = Email {
            to: "cw@example.org".into(),
            subject: "Case KMK-7Q2F9X: assigned to you (high)".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
            message_id: "<outbox-1@example.org>".into(),
        };
        mailer.send(&from, &email).await?;
        mailer.send(&from, &email).await?;
        let files: Vec<_> = std::fs::read_dir(dir.join("new"))?.collect();
        assert_eq!(files.len(), 1, "a retry overwrites the same file");
        let written = std::fs::read_to_string(dir.join("new").join("outbox-1@example.org.eml"))?;
        assert!(
            written.contains("Message-ID: <outbox-1@example.org>"),
            "{written}"
        );
        std::fs::remove_dir_all(dir)?;
        Ok(())
    }
}
