//! Logging: a `tracing` subscriber that writes readable lines in development and one JSON object per line
//! with `KOMEK_LOG_FORMAT=json`, filtered by `KOMEK_LOG`. Log lines carry a message and structured fields
//! (request id, route, status, codes) — never a phone number, a name, a message body, a token or an IP
//! address; the types that hold those print `[redacted]`.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `writer`. Returns an error if one is already installed.
pub fn init<W>(filter: &str, format: LogFormat, writer: W, ansi: bool) -> Result<(), anyhow::Error>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .map_err(|e| anyhow::anyhow!(e)),
        LogFormat::Pretty => builder.compact().try_init().map_err(|e| anyhow::anyhow!(e)),
    }
}

/// Installs the subscriber on standard error (the service's normal log destination).
pub fn init_stderr(filter: &str, format: LogFormat) -> Result<(), anyhow::Error> {
    use std::io::IsTerminal as _;
    init(filter, format, std::io::stderr, std::io::stderr().is_terminal())
}

/// A writer that appends to a shared file; used by the test harness to inspect what was logged.
#[derive(Clone)]
pub struct SharedFile(pub std::sync::Arc<std::sync::Mutex<std::fs::File>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut file) => file.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut file) => file.flush(),
            Err(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFile;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
