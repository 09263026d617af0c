//! The `komek` command line: what each command does, in words a newcomer understands, and the code that
//! runs it. `main.rs` only calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::accounts::orgs::{self, NewOrganization};
use crate::accounts::{AccountError, users};
use crate::channels::{self, NewChannel};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;
use crate::domain::{CountryCode, EmailAddress, OrgSlug, PhoneNumber, Role};
use crate::keys::{self, KeyOrigin};
use crate::notify::{self, recipients};
use crate::sensitive::Sensitive;
use crate::startup::Application;
use crate::state::AppState;
use crate::{bootstrap, telemetry};
use komek_gateways::Provider;

/// Komek: hotline and incident intake for anti-trafficking NGOs.
///
/// Receives reports by SMS, phone (IVR) and web form, triages them into victim-assistance cases and tells
/// caseworkers by email. With no configuration at all, `komek serve` keeps its data in ./komek-data
/// (SQLite) and listens on http://127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "komek", version, about, long_about)]
pub struct Cli {
    /// A TOML configuration file (see ops/komek.example.toml). KOMEK_* environment variables override it.
    #[arg(long, global = true, value_name = "PATH", env = "KOMEK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (webhooks, web form, API, console) and the background workers.
    ///
    /// Applies pending database migrations first. On an empty database it creates the first organization
    /// and an admin account and prints the admin's one-time password once. Stops gracefully on Ctrl-C or
    /// SIGTERM, letting requests in flight finish.
    Serve,
    /// Apply pending database migrations, then exit (creates the SQLite file if it does not exist).
    Migrate,
    /// Run only the outbox worker (emails to staff, SMS to contacts) and the deadline watch, no HTTP server.
    ///
    /// Any number of workers may run against one PostgreSQL database; each message is claimed by one at a
    /// time. Stops on Ctrl-C or SIGTERM after finishing the message in flight.
    Worker {
        /// Send what is due now, then exit (instead of running until stopped).
        #[arg(long)]
        once: bool,
    },
    /// Notification settings: who is told what, and dead-lettered messages.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Manage organizations (hotline NGOs and shelter NGOs sharing this Komek).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage channels: the numbers and endpoints at SMS and voice providers that report to Komek.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Manage the server's keys (JWT signing, data encryption, blind index).
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `komek channel ...`
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Add a channel and print the webhook URLs to paste into the provider's console.
    Add(ChannelAdd),
    /// List channels (never their secrets).
    List {
        /// Only this organization's channels.
        #[arg(long)]
        org: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `komek channel add`
#[derive(Debug, Args)]
pub struct ChannelAdd {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// capcom6 (Android SMS Gateway), smssync, jasmin, infobip, africastalking, twilio, vonage or freeswitch.
    #[arg(long)]
    pub provider: String,
    /// The channel's own number, in international form (+77011234567).
    #[arg(long)]
    pub number: Option<String>,
    /// The provider secret (format per provider: see gateways/README.md). Stored encrypted. Prefer the
    /// KOMEK_CHANNEL_SECRET environment variable, which keeps it out of the shell history.
    #[arg(long, env = "KOMEK_CHANNEL_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Language spoken first to callers and used for replies: ru, kk, ky, tg, uz or en.
    #[arg(long, default_value = "ru")]
    pub language: String,
    /// Print JSON: {"id": ..., "webhook_urls": {...}}.
    #[arg(long)]
    pub json: bool,
}

/// `komek notify ...`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Who is told what, per organization (added to the defaults: on-duty caseworkers and supervisors for
    /// critical cases, child-protection-trained staff for child cases, supervisors for missed deadlines).
    #[command(subcommand)]
    Recipients(RecipientsCommand),
    /// List messages that failed for good (ids and error codes only).
    Dead {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put dead-lettered messages back in the queue (after fixing the mail server, say).
    RequeueDead {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// Only this message.
        #[arg(long)]
        id: Option<String>,
    },
}

/// `komek notify recipients ...`
#[derive(Debug, Subcommand)]
pub enum RecipientsCommand {
    /// Also tell this staff member about a topic.
    Add(RecipientArgs),
    /// Stop telling this (configured) staff member about a topic.
    Remove(RecipientArgs),
    /// List the configured recipients of an organization.
    List {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `komek notify recipients add|remove`
#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// case_critical, case_child or sla_breach.
    #[arg(long)]
    pub topic: String,
    /// The staff member's account id or login email address.
    #[arg(long)]
    pub user: String,
}

/// `komek org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization.
    Add(OrgAdd),
}

/// `komek org add`
#[derive(Debug, Args)]
pub struct OrgAdd {
    /// Short name used on the command line and in URLs: lowercase letters, digits, hyphens (e.g. sana-sezim).
    #[arg(long)]
    pub slug: String,
    /// Full name shown to staff.
    #[arg(long)]
    pub name: String,
    /// Two-letter country code (KZ, KG, TJ, UZ, TM, ...).
    #[arg(long)]
    pub country: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `komek user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a staff account with a one-time password and a second-factor enrolment, printed once.
    Add(UserAdd),
}

/// `komek user add`
#[derive(Debug, Args)]
pub struct UserAdd {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// Login and notification email address.
    #[arg(long)]
    pub email: String,
    /// admin, supervisor, operator, caseworker or shelter_staff.
    #[arg(long)]
    pub role: String,
    /// Print the result (including the one-time password and otpauth:// URI) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `komek keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new keys file for production (then set KOMEK_KEYS_FILE to its path).
    Generate {
        /// Where to write it (mode 0600; an existing file is never overwritten). Without it, prints the file.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), anyhow::Error> {
    if let Command::Keys(KeysCommand::Generate { out }) = &cli.command {
        return generate_keys(out.as_deref());
    }
    let settings = Arc::new(Settings::load(cli.config.as_deref())?);
    let quiet = !matches!(cli.command, Command::Serve | Command::Worker { .. });
    let filter = if quiet && std::env::var_os("KOMEK_LOG").is_none() {
        "warn"
    } else {
        &settings.log
    };
    telemetry::init_stderr(filter, settings.log_format)?;
    match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
        Command::Worker { once } => worker(settings, once),
        Command::Notify(command) => notify(&settings, command),
        Command::Org(OrgCommand::Add(args)) => org_add(&settings, args),
        Command::User(UserCommand::Add(args)) => user_add(&settings, args),
        Command::Channel(ChannelCommand::Add(args)) => channel_add(&settings, args),
        Command::Channel(ChannelCommand::List { org, json }) => channel_list(&settings, org.as_deref(), json),
        Command::Keys(_) => Ok(()),
    }
}

fn open_db(settings: &Settings, create_if_missing: bool) -> Result<Db, anyhow::Error> {
    let db = Db::connect(
        &settings.database_url,
        settings.connect_options(create_if_missing),
        settings.pool_options(),
    )?;
    Ok(db)
}

/// Opens the database for an administrative command and brings its schema up to date.
fn open_admin_db(settings: &Settings) -> Result<(Db, Crypto), anyhow::Error> {
    let keys = Arc::new(settings.load_keys()?);
    let db = open_db(settings, !settings.is_production())?;
    db.migrate_blocking()?;
    Ok((db, Crypto::new(keys)))
}

fn serve(settings: Arc<Settings>) -> Result<(), anyhow::Error> {
    let keys = Arc::new(settings.load_keys()?);
    let db = open_db(&settings, !settings.is_production())?;
    let applied = db.migrate_blocking()?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied database migrations");
    }
    bootstrap::ensure_first_admin(&settings, &db, &Crypto::new(keys.clone()))?;
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let state = AppState::load(settings.clone(), db.clone(), keys)?;
    tracing::info!(rules = state.triage.rule_count(), "triage rules loaded");
    runtime.block_on(async {
        let app = Application::build(state, listener)?;
        tracing::info!(
            address = %format!("{}:{}", settings.bind.ip(), app.port()),
            database = db.backend().as_str(),
            "komek is listening"
        );
        app.run().await?;
        Ok::<(), anyhow::Error>(())
    })?;
    db.checkpoint_blocking()?;
    tracing::info!("komek stopped");
    Ok(())
}

fn worker(settings: Arc<Settings>, once: bool) -> Result<(), anyhow::Error> {
    let keys = Arc::new(settings.load_keys()?);
    let db = open_db(&settings, !settings.is_production())?;
    db.migrate_blocking()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let worker = notify::Worker::from_settings(&settings, db.clone(), Crypto::new(keys))?;
    runtime.block_on(async {
        if once {
            let sent = worker.drain().await?;
            tracing::info!(handled = sent, "outbox drained");
            return Ok::<(), anyhow::Error>(());
        }
        let (stop, handle) = notify::worker::spawn(worker);
        shutdown_signal().await;
        tracing::info!("stopping the outbox worker after the message in flight");
        let _ = stop.send(true);
        let _ = tokio::time::timeout(settings.shutdown_timeout, handle).await;
        Ok(())
    })?;
    db.checkpoint_blocking()?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn notify(settings: &Settings, command: NotifyCommand) -> Result<(), anyhow::Error> {
    let (db, _) = open_admin_db(settings)?;
    let org_id = |conn: &mut crate::db::AnyConnection, slug: &str| -> Result<String, anyhow::Error> {
        Ok(orgs::find_by_slug(conn, &OrgSlug::parse(slug)?)?.id)
    };
    match command {
        NotifyCommand::Recipients(RecipientsCommand::Add(args)) => {
            let topic: notify::Topic = args.topic.parse().map_err(anyhow::Error::msg)?;
            let added = db.write_blocking(|conn| -> Result<bool, anyhow::Error> {
                let org = org_id(conn, &args.org)?;
                let user = recipients::find_staff(conn, &org, &args.user)?;
                Ok(recipients::add(conn, &org, topic, &user)?)
            })?;
            println!(
                "{} `{}` in `{}`.",
                if added {
                    "Added a recipient of"
                } else {
                    "Already a recipient of"
                },
                topic.as_str(),
                args.org
            );
        }
        NotifyCommand::Recipients(RecipientsCommand::Remove(args)) => {
            let topic: notify::Topic = args.topic.parse().map_err(anyhow::Error::msg)?;
            let removed = db.write_blocking(|conn| -> Result<bool, anyhow::Error> {
                let org = org_id(conn, &args.org)?;
                let user = recipients::find_staff(conn, &org, &args.user)?;
                Ok(recipients::remove(conn, &org, topic, &user)?)
            })?;
            println!(
                "{} `{}` in `{}`.",
                if removed {
                    "Removed a recipient of"
                } else {
                    "That account was not a configured recipient of"
                },
                topic.as_str(),
                args.org
            );
        }
        NotifyCommand::Recipients(RecipientsCommand::List { org, json: as_json }) => {
            let list = db.run_blocking(|conn| -> Result<_, anyhow::Error> {
                let org = org_id(conn, &org)?;
                Ok(recipients::list(conn, &org)?)
            })?;
            if as_json {
                println!("{}", serde_json::to_string(&list)?);
            } else if list.is_empty() {
                println!("No configured recipients: the defaults apply.");
            } else {
                for r in &list {
                    println!("{:<14} {}", r.topic, r.user_id);
                }
            }
        }
        NotifyCommand::Dead { org, json: as_json } => {
            let list = db.run_blocking(|conn| -> Result<_, anyhow::Error> {
                let org = org_id(conn, &org)?;
                Ok(notify::worker::dead_letters(conn, &org, 500)?)
            })?;
            if as_json {
                println!("{}", serde_json::to_string(&list)?);
            } else if list.is_empty() {
                println!("No dead-lettered messages.");
            } else {
                for d in &list {
                    println!(
                        "{}  {:<5} {:<14} attempts {:<3} {}",
                        d.id,
                        d.kind,
                        d.topic,
                        d.attempts,
                        d.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        NotifyCommand::RequeueDead { org, id } => {
            let n = db.write_blocking(|conn| -> Result<usize, anyhow::Error> {
                let org = org_id(conn, &org)?;
                Ok(notify::worker::requeue_dead(conn, Some(&org), id.as_deref())?)
            })?;
            println!("Requeued {n} message(s).");
        }
    }
    Ok(())
}

fn migrate(settings: &Settings) -> Result<(), anyhow::Error> {
    let db = open_db(settings, true)?;
    let applied = db.migrate_blocking()?;
    if applied.is_empty() {
        println!("The database is up to date ({}).", settings.database_url);
    } else {
        println!(
            "Applied {} migration(s) to the {}: {}",
            applied.len(),
            settings.database_url,
            applied.join(", ")
        );
    }
    Ok(())
}

fn org_add(settings: &Settings, args: OrgAdd) -> Result<(), anyhow::Error> {
    let slug = OrgSlug::parse(&args.slug)?;
    let country = args.country.as_deref().map(CountryCode::parse).transpose()?;
    let new = NewOrganization::new(slug, &args.name, country)?;
    let (db, _) = open_admin_db(settings)?;
    let org = db.write_blocking(|conn| orgs::create(conn, &new))?;
    if args.json {
        println!(
            "{}",
            json!({ "id": org.id, "slug": org.slug, "name": org.name, "country": org.country })
        );
    } else {
        println!("Added organization `{}` ({}).", org.slug, org.name);
    }
    Ok(())
}

fn user_add(settings: &Settings, args: UserAdd) -> Result<(), anyhow::Error> {
    let slug = OrgSlug::parse(&args.org)?;
    let email = EmailAddress::parse(&args.email)?;
    let role: Role = args.role.parse()?;
    let (db, crypto) = open_admin_db(settings)?;
    let user = db.write_blocking(|conn| -> Result<_, AccountError> {
        let org = orgs::find_by_slug(conn, &slug)?;
        users::create(conn, &crypto, &org.id, &email, role)
    })?;
    if args.json {
        println!(
            "{}",
            json!({
                "id": user.id,
                "email": user.email.as_str(),
                "role": user.role.as_str(),
                "organization": slug.as_str(),
                "password": user.password.expose(),
                "totp_uri": user.totp_uri.expose(),
            })
        );
    } else {
        println!(
            "Added {role} {email} to `{slug}`.\n  one-time password: {password}\n  second factor:     {uri}\n\
             Give these to the person privately; they are not shown again.",
            role = user.role,
            email = user.email,
            password = user.password.expose(),
            uri = user.totp_uri.expose(),
        );
    }
    Ok(())
}

fn channel_add(settings: &Settings, args: ChannelAdd) -> Result<(), anyhow::Error> {
    let slug = OrgSlug::parse(&args.org)?;
    let provider: Provider = args.provider.parse()?;
    let number = args
        .number
        .as_deref()
        .map(|n| PhoneNumber::parse(n, None))
        .transpose()?;
    let secret = args.secret.map(Sensitive::new);
    channels::check_secret(provider, secret.as_ref())?;
    let (db, crypto) = open_admin_db(settings)?;
    let channel = db.write_blocking(|conn| -> Result<_, anyhow::Error> {
        let org = orgs::find_by_slug(conn, &slug)?;
        let new = NewChannel {
            organization_id: org.id,
            provider,
            number,
            secret,
            language: args.language.clone(),
        };
        Ok(channels::create(conn, &crypto, &new)?)
    })?;
    let urls = channels::webhook_urls(&settings.public_url, provider, &channel.id);
    if args.json {
        println!(
            "{}",
            json!({ "id": channel.id, "provider": provider.slug(), "webhook_urls": urls })
        );
    } else {
        println!(
            "Added {} channel {} to `{slug}`. Paste these URLs into the provider's console:",
            provider.slug(),
            channel.id
        );
        for (action, url) in &urls {
            println!("  {action:<13} {url}");
        }
        if settings.public_url.scheme() != "https" {
            println!(
                "Note: KOMEK_PUBLIC_URL is {}; providers need the public https address.",
                settings.public_url
            );
        }
    }
    Ok(())
}

fn channel_list(settings: &Settings, org: Option<&str>, as_json: bool) -> Result<(), anyhow::Error> {
    let slug = org.map(OrgSlug::parse).transpose()?;
    let (db, _) = open_admin_db(settings)?;
    let list = db.run_blocking(|conn| -> Result<_, anyhow::Error> {
        let org_id = match &slug {
            Some(slug) => Some(orgs::find_by_slug(conn, slug)?.id),
            None => None,
        };
        Ok(channels::list(conn, org_id.as_deref())?)
    })?;
    let rows: Vec<_> = list
        .iter()
        .map(|c| {
            let urls = c.provider().map(|p| channels::webhook_urls(&settings.public_url, p, &c.id)).unwrap_or_default();
            json!({
                "id": c.id, "organization_id": c.organization_id, "provider": c.provider, "number": c.number,
                "language": c.language, "enabled": c.enabled, "has_secret": c.secret_enc.is_some(), "webhook_urls": urls,
            })
        })
        .collect();
    if as_json {
        println!("{}", serde_json::Value::Array(rows));
    } else if list.is_empty() {
        println!("No channels yet. Add one with `komek channel add`.");
    } else {
        for c in &list {
            println!(
                "{}  {:<15} {:<14} {} {}",
                c.id,
                c.provider,
                c.number.as_deref().unwrap_or("-"),
                c.language,
                if c.enabled { "" } else { "(disabled)" }
            );
        }
    }
    Ok(())
}

fn generate_keys(out: Option<&std::path::Path>) -> Result<(), anyhow::Error> {
    let text = keys::generate_file_text(KeyOrigin::Operator)?;
    match out {
        Some(path) => {
            keys::write_new_file(path, &text)?;
            println!(
                "Wrote new keys to {} (mode 0600). Set KOMEK_KEYS_FILE={}",
                path.display(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
