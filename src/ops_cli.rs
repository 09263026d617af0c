//! The operator's commands for keeping Komek running and its data safe: `komek backup`, `komek restore`
//! and `komek health`. The dispatcher in [`crate::cli`] only hands over to [`backup`], [`restore`] and
//! [`health`].

use std::path::PathBuf;

use clap::Args;

use crate::backup::{self, Format};
use crate::config::Settings;
use crate::db::DatabaseUrl;

/// `komek backup`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "dir"])))]
pub struct BackupArgs {
    /// Write the backup to this file (it must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write a time-stamped backup into this folder instead (komek-YYYYMMDDTHHMMSSZ.sqlite[.age]).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// With --dir: afterwards remove the oldest backups there, keeping this many.
    #[arg(long, value_name = "N", requires = "dir")]
    pub keep: Option<usize>,
    /// Encrypt to this age public key (age1…); default: the `backup_age_recipient` setting.
    #[arg(long, value_name = "AGE1…")]
    pub age_recipient: Option<String>,
    /// Write an unencrypted backup even though `backup_age_recipient` is set.
    #[arg(long, conflicts_with = "age_recipient")]
    pub plain: bool,
    /// Print JSON: {"path", "bytes", "encrypted", "removed"}.
    #[arg(long)]
    pub json: bool,
}

/// `komek restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (made by `komek backup`; encrypted or not).
    pub file: PathBuf,
    /// The age identity file (AGE-SECRET-KEY-1…) for an encrypted backup.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Replace a database that already holds data (stop Komek first).
    #[arg(long)]
    pub force: bool,
}

/// Runs `komek backup`.
pub fn backup(settings: &Settings, args: BackupArgs) -> Result<(), anyhow::Error> {
    let recipient = if args.plain {
        None
    } else {
        args.age_recipient
            .clone()
            .or_else(|| settings.backup_age_recipient.clone())
    };
    let plain_format = match settings.database_url {
        DatabaseUrl::Sqlite(_) => Format::Sqlite,
        DatabaseUrl::Postgres(_) => Format::PgDump,
    };
    let out = match (&args.out, &args.dir) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => {
            crate::db::create_private_dir(dir)?;
            let extension = match recipient {
                Some(_) => format!("{}.age", plain_format.extension()),
                None => plain_format.extension().to_owned(),
            };
            backup::backup_name(dir, &extension, chrono::Utc::now())
        }
        (None, None) => anyhow::bail!("give --out FILE or --dir DIR"),
    };
    let done = backup::backup(&settings.database_url, &out, recipient.as_deref())?;
    let removed = match (&args.dir, args.keep) {
        (Some(dir), Some(keep)) => backup::prune(dir, keep.max(1))?,
        _ => Vec::new(),
    };
    tracing::info!(
        bytes = done.bytes,
        encrypted = done.encrypted,
        removed = removed.len(),
        "backup written"
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "path": done.path,
                "bytes": done.bytes,
                "encrypted": done.encrypted,
                "removed": removed,
            })
        );
    } else {
        println!(
            "Backup written to {} ({} bytes, {}).",
            done.path.display(),
            done.bytes,
            if done.encrypted {
                "encrypted to the age key"
            } else {
                "NOT encrypted: keep it somewhere only the NGO can read"
            }
        );
        for path in removed {
            println!("Removed the old backup {}.", path.display());
        }
    }
    Ok(())
}

/// Runs `komek restore`.
pub fn restore(settings: &Settings, args: RestoreArgs) -> Result<(), anyhow::Error> {
    backup::restore(
        &settings.database_url,
        &args.file,
        args.identity.as_deref(),
        args.force,
    )?;
    println!(
        "Restored {} into the configured database. Start Komek with the keys file of the backed-up \
         installation (the one it was running with); `komek audit verify` checks the audit log.",
        args.file.display()
    );
    Ok(())
}

/// Runs `komek health`: asks this instance's `/readyz` (for container health checks, where there is no
/// curl). Exits non-zero unless it answers 200.
pub fn health(settings: &Settings) -> Result<(), anyhow::Error> {
    use std::io::{Read as _, Write as _};
    let mut address = settings.bind;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| anyhow::anyhow!("cannot reach Komek at {address}: {e}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if head.starts_with(b"HTTP/1.") && &head[9..12] == b"200" {
        println!("ready");
        Ok(())
    } else {
        anyhow::bail!("not ready: {}", String::from_utf8_lossy(&head))
    }
}
