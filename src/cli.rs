//! The `komek` command line: what each command does, in words a newcomer understands, and the code that
//! runs it. `main.rs` only calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::accounts::orgs::{self, NewOrganization};
use crate::accounts::users;
use crate::audit;
use crate::auth::rotation;
use crate::channels::{self, NewChannel};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;
use crate::domain::{CountryCode, EmailAddress, OrgSlug, PhoneNumber, Role};
use crate::keys::{self, KeyOrigin};
use crate::notify::{self, recipients};
use crate::sensitive::Sensitive;
use crate::startup::Application;
use crate::state::{self, AppState};
use crate::{bootstrap, ivr, telemetry};
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
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the duty rosters the phone menu dials: "in danger" rings the general roster, "under 18" the
    /// child-protection roster, each number in order until someone answers.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Take a consistent backup of the database while Komek runs (SQLite: a copy as of one moment;
    /// PostgreSQL: pg_dump), encrypted to the organization's age key when one is configured. The keys
    /// file is not in it: keep that separately, never beside the backups.
    Backup(crate::ops_cli::BackupArgs),
    /// Put a backup back into the configured database (an empty one, or any with --force; stop Komek
    /// first).
    Restore(crate::ops_cli::RestoreArgs),
    /// Exit 0 when this instance answers /readyz with 200 (a health check for containers and scripts).
    Health,
}

/// `komek roster ...`
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Replace an organization's roster (stored encrypted). An empty --numbers clears it: callers then
    /// go straight to recording a message, marked urgent.
    Set(RosterSet),
}

/// `komek roster set`
#[derive(Debug, Args)]
pub struct RosterSet {
    /// The organization's slug.
    #[arg(long)]
    pub org: String,
    /// general (callers in danger) or child (callers under 18: child-protection specialists).
    #[arg(long)]
    pub kind: String,
    /// Numbers in international form, in the order they are rung: +77011234567,+77017654321.
    #[arg(long, allow_hyphen_values = true)]
    pub numbers: String,
    /// Print JSON: {"organization": ..., "kind": ..., "count": N}.
    #[arg(long)]
    pub json: bool,
}

/// `komek audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that the audit log's hash chain is intact; names the first changed, missing or inserted entry
    /// and exits non-zero if it is not.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
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
    /// Break-glass recovery (e.g. the only admin lost their phone): give an account a new one-time password
    /// and a new second-factor enrolment, printed once; ends all its sessions. The person must change the
    /// password at the next login. Audited.
    Reset(UserReset),
}

/// `komek user reset`
#[derive(Debug, Args)]
pub struct UserReset {
    /// The account's email address.
    #[arg(long)]
    pub email: String,
    /// Print the result (including the one-time password and otpauth:// URI) as JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Add a new key to the keys file (KOMEK_KEYS_FILE). Restart the service afterwards.
    ///
    /// --jwt: new access tokens are signed with the new key; tokens signed with older keys stay valid until
    /// they expire (at most 15 minutes). --data: a new key-encryption key; every stored data key is then
    /// re-wrapped under it.
    Rotate {
        /// Add a JWT signing key.
        #[arg(long)]
        jwt: bool,
        /// Add a data key-encryption key and re-wrap every stored data key under it.
        #[arg(long)]
        data: bool,
    },
    /// Re-wrap every stored data key under the newest key-encryption key (after `rotate --data`, once the
    /// restarted service no longer writes with the old one).
    Rewrap,
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
        Command::User(UserCommand::Reset(args)) => user_reset(&settings, args),
        Command::Keys(KeysCommand::Rotate { jwt, data }) => rotate_keys(&settings, jwt, data),
        Command::Keys(KeysCommand::Rewrap) => rewrap_keys(&settings),
        Command::Keys(KeysCommand::Generate { .. }) => Ok(()),
        Command::Roster(RosterCommand::Set(args)) => roster_set(&settings, args),
        Command::Audit(AuditCommand::Verify { json }) => audit_verify(&settings, json),
        Command::Backup(args) => crate::ops_cli::backup(&settings, args),
        Command::Restore(args) => crate::ops_cli::restore(&settings, args),
        Command::Health => crate::ops_cli::health(&settings),
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
    // Everything that can be wrong in the configuration is checked before the database is touched.
    let triage = state::load_triage(&settings)?;
    tracing::info!(rules = triage.rule_count(), "triage rules loaded");
    let db = open_db(&settings, !settings.is_production())?;
    let applied = db.migrate_blocking()?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied database migrations");
    }
    bootstrap::ensure_first_admin(&settings, &db, &Crypto::new(keys.clone()))?;
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let state = AppState::new(settings.clone(), db.clone(), keys, triage);
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

fn user_reset(settings: &Settings, args: UserReset) -> Result<(), anyhow::Error> {
    use diesel::prelude::*;

    use crate::db::schema::users as users_table;
    let email = EmailAddress::parse(&args.email)?;
    let (db, crypto) = open_admin_db(settings)?;
    let one_time = crate::accounts::password::generate_one_time();
    let hash = crate::accounts::password::hash(&one_time).map_err(|e| anyhow::anyhow!(e))?;
    let (user_id, totp_uri) = db.write_blocking(|conn| -> Result<_, anyhow::Error> {
        let found: Option<(String, String)> = users_table::table
            .filter(users_table::email.eq(email.as_str()))
            .select((users_table::id, users_table::organization_id))
            .first(conn)
            .optional()?;
        let (user_id, organization_id) =
            found.ok_or_else(|| anyhow::anyhow!("no account has this email address"))?;
        diesel::update(users_table::table.filter(users_table::id.eq(&user_id)))
            .set((
                users_table::password_hash.eq(&hash),
                users_table::password_changed_at.eq(chrono::Utc::now().naive_utc()),
                users_table::must_change_password.eq(true),
            ))
            .execute(conn)?;
        let uri = users::reset_totp(conn, &crypto, &user_id, email.as_str())?;
        crate::auth::sessions::rotate_stamp(conn, &user_id)?;
        crate::auth::sessions::revoke_all_for_user(conn, &user_id, "reset_by_operator")?;
        audit::record(
            conn,
            &audit::AuditEntry {
                organization_id: Some(&organization_id),
                actor: audit::Actor::Cli,
                action: "user_reset",
                target_kind: Some("user"),
                target_id: Some(&user_id),
                outcome: audit::Outcome::Success,
                details: Some(json!({ "password": "one_time", "second_factor": "new_enrolment" })),
                request_id: None,
            },
        )?;
        Ok((user_id, uri))
    })?;
    if args.json {
        println!(
            "{}",
            json!({
                "id": user_id,
                "email": email.as_str(),
                "password": one_time.expose(),
                "totp_uri": totp_uri.expose(),
            })
        );
    } else {
        println!(
            "Reset {email}: all its sessions are ended.\n  one-time password: {password}\n  second factor:     {uri}\n\
             Give these to the person privately; they are not shown again.",
            password = one_time.expose(),
            uri = totp_uri.expose(),
        );
    }
    Ok(())
}

fn user_add(settings: &Settings, args: UserAdd) -> Result<(), anyhow::Error> {
    let slug = OrgSlug::parse(&args.org)?;
    let email = EmailAddress::parse(&args.email)?;
    let role: Role = args.role.parse()?;
    let (db, crypto) = open_admin_db(settings)?;
    let user = db.write_blocking(|conn| -> Result<_, anyhow::Error> {
        let org = orgs::find_by_slug(conn, &slug)?;
        let user = users::create(conn, &crypto, &org.id, &email, role)?;
        audit::record(
            conn,
            &audit::AuditEntry {
                organization_id: Some(&org.id),
                actor: audit::Actor::Cli,
                action: "user_created",
                target_kind: Some("user"),
                target_id: Some(&user.id),
                outcome: audit::Outcome::Success,
                details: Some(json!({ "role": role.as_str() })),
                request_id: None,
            },
        )?;
        Ok(user)
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

fn record_cli_audit(
    db: &Db,
    action: &str,
    target_id: Option<&str>,
    details: serde_json::Value,
) -> Result<(), anyhow::Error> {
    db.write_blocking(|conn| -> Result<(), anyhow::Error> {
        audit::record(
            conn,
            &audit::AuditEntry {
                organization_id: None,
                actor: audit::Actor::Cli,
                action,
                target_kind: Some("key"),
                target_id,
                outcome: audit::Outcome::Success,
                details: Some(details),
                request_id: None,
            },
        )?;
        Ok(())
    })
}

fn rotate_keys(settings: &Settings, jwt: bool, data: bool) -> Result<(), anyhow::Error> {
    if !jwt && !data {
        anyhow::bail!("say what to rotate: --jwt, --data, or both");
    }
    // Load (and check) the current keys and the database before changing anything.
    let (db, _) = open_admin_db(settings)?;
    if jwt {
        let kid = rotation::add_jwt_key(&settings.keys_file)?;
        record_cli_audit(&db, "jwt_key_added", Some(&kid), json!({ "kid": kid }))?;
        println!(
            "Added JWT signing key {kid} to {}. Restart Komek to sign with it; tokens signed with older keys stay              valid until they expire.",
            settings.keys_file.display()
        );
    }
    if data {
        let version = rotation::add_data_key(&settings.keys_file)?;
        record_cli_audit(
            &db,
            "data_key_added",
            Some(&version.to_string()),
            json!({ "version": version }),
        )?;
        println!("Added data key-encryption key version {version}.");
        rewrap_keys(settings)?;
        println!(
            "Restart Komek now, then run `komek keys rewrap` once more to catch rows written meanwhile with the              old key."
        );
    }
    Ok(())
}

fn rewrap_keys(settings: &Settings) -> Result<(), anyhow::Error> {
    let keys = Arc::new(settings.load_keys()?);
    let current = keys
        .current_data()
        .map(|k| k.version)
        .ok_or_else(|| anyhow::anyhow!("the keys file has no data key"))?;
    let (db, _) = open_admin_db(settings)?;
    let crypto = Crypto::new(keys);
    let done = rotation::rewrap_all(&db, &crypto, current)?;
    let total: u64 = done.iter().map(|d| d.rows).sum();
    let per_table: serde_json::Map<String, serde_json::Value> = done
        .iter()
        .map(|d| (format!("{}.{}", d.table, d.column), json!(d.rows)))
        .collect();
    record_cli_audit(
        &db,
        "data_keys_rewrapped",
        Some(&current.to_string()),
        json!({ "version": current, "rows": total }),
    )?;
    println!(
        "Re-wrapped {total} data key(s) under key version {current}: {}",
        serde_json::Value::Object(per_table)
    );
    Ok(())
}

fn audit_verify(settings: &Settings, as_json: bool) -> Result<(), anyhow::Error> {
    let db = open_db(settings, false)?;
    let result = db.run_blocking(|conn| audit::verify(conn).map_err(crate::db::DbError::from))?;
    match result {
        audit::Verification::Intact { entries, head } => {
            if as_json {
                println!("{}", json!({ "intact": true, "entries": entries, "head": head }));
            } else {
                println!("The audit log is intact: {entries} entries, head {head}.");
            }
            Ok(())
        }
        audit::Verification::Broken { seq, reason } => {
            if as_json {
                println!(
                    "{}",
                    json!({ "intact": false, "first_bad_seq": seq, "reason": reason })
                );
            }
            anyhow::bail!("the audit log is broken at entry {seq}: {reason}")
        }
    }
}

fn roster_set(settings: &Settings, args: RosterSet) -> Result<(), anyhow::Error> {
    let slug = OrgSlug::parse(&args.org)?;
    let kind = ivr::RosterKind::parse(&args.kind)
        .ok_or_else(|| anyhow::anyhow!("unknown roster kind `{}`: use general or child", args.kind))?;
    let numbers = ivr::roster::parse_numbers(&args.numbers)?;
    let (db, crypto) = open_admin_db(settings)?;
    db.write_blocking(|conn| -> Result<_, anyhow::Error> {
        let org = orgs::find_by_slug(conn, &slug)?;
        ivr::roster::set(conn, &crypto, &org.id, kind, &numbers)?;
        Ok(())
    })?;
    if args.json {
        println!(
            "{}",
            json!({ "organization": slug.as_str(), "kind": kind.as_str(), "count": numbers.len() })
        );
    } else if numbers.is_empty() {
        println!("Cleared the {} duty roster of `{slug}`.", kind.as_str());
    } else {
        println!(
            "Set the {} duty roster of `{slug}`: {} number(s), rung in the order given.",
            kind.as_str(),
            numbers.len()
        );
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
