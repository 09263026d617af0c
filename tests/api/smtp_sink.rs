//! A tiny SMTP server for the tests, on loopback: speaks enough SMTP for lettre (EHLO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT; no STARTTLS, so the client must be told `tls=none`), records every message it receives
//! with its Message-ID, and can be stopped and started again on the same port (SMTP "down"), or told to
//! hold a message after receiving its data without acknowledging it (a crash between send and mark-sent).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// The raw message as sent.
    pub raw: String,
    /// Every text part, decoded (transfer encoding and charset), with the decoded subject.
    pub decoded: String,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    hold: Mutex<bool>,
    arrived: Notify,
}

/// The sink. Dropping it stops it.
pub struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let task = Some(tokio::spawn(serve(listener, shared.clone())));
        SmtpSink { addr, shared, task }
    }

    /// The `smtp_url` for Komek.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    /// Stops listening and drops open connections (SMTP down).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        self.stop();
        let mut last = None;
        for _ in 0..50 {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(self.addr).and_then(|()| socket.listen(64)) {
                Ok(listener) => {
                    self.task = Some(tokio::spawn(serve(listener, self.shared.clone())));
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot listen on {} again: {last:?}", self.addr);
    }

    /// While true, a message is recorded when its data arrives but never acknowledged.
    pub fn hold(&self, hold: bool) {
        *self.shared.hold.lock().unwrap() = hold;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages have arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let notified = self.shared.arrived.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                panic!("expected {n} emails within {timeout:?}, got {}", got.len());
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(session(stream, shared.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink ESMTP ready\r\n").await;
    let mut recipients = Vec::new();
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("MAIL FROM") {
            recipients.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            let rcpt = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
            recipients.push(rcpt);
            b"250 OK\r\n"
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match lines.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                let l = l.strip_prefix('.').map(str::to_owned).unwrap_or(l);
                data.push_str(&l);
            }
            let received = parse(&data, std::mem::take(&mut recipients));
            shared.received.lock().unwrap().push(received);
            shared.arrived.notify_waiters();
            if *shared.hold.lock().unwrap() {
                // Never acknowledge: the sender is killed while waiting.
                std::future::pending::<()>().await;
            }
            b"250 OK queued\r\n"
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn parse(raw: &str, recipients: Vec<String>) -> Received {
    let parsed = mailparse::parse_mail(raw.as_bytes()).unwrap();
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let subject = header("Subject");
    let mut decoded = format!("{subject}\n");
    fn walk(part: &mailparse::ParsedMail<'_>, out: &mut String) {
        if part.subparts.is_empty() {
            out.push_str(&part.get_body().unwrap_or_default());
            out.push('\n');
        }
        for sub in &part.subparts {
            walk(sub, out);
        }
    }
    walk(&parsed, &mut decoded);
    Received {
        message_id: header("Message-ID").trim().to_owned(),
        recipients,
        subject,
        raw: raw.to_owned(),
        decoded,
    }
}
