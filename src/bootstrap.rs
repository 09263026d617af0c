//! The first start on an empty database: create an organization and an admin account, and hand the admin's
//! one-time password and second-factor enrolment to the person at the terminal — once, and never through
//! the log. When standard output is not a terminal (a service manager capturing output into a journal),
//! the credentials go to a file readable only by the service user, and the log says where.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use crate::accounts::orgs::{self, NewOrganization};
use crate::accounts::{AccountError, users};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;
use crate::domain::{EmailAddress, OrgSlug, Role};
use crate::keys;

/// Where the first admin's credentials went.
#[derive(Debug)]
pub enum Handover {
    /// The database already had an organization: nothing was created.
    NotNeeded,
    /// Printed to the terminal.
    Printed,
    /// Written to this file (mode 0600).
    Written(PathBuf),
}

/// Creates the first organization and admin if the database has none.
pub fn ensure_first_admin(settings: &Settings, db: &Db, crypto: &Crypto) -> Result<Handover, anyhow::Error> {
    let slug = OrgSlug::parse(&settings.bootstrap_org_slug)?;
    let email = EmailAddress::parse(&settings.bootstrap_admin_email)?;
    let new_org = NewOrganization::new(slug, &settings.bootstrap_org_name, None)?;
    let crypto = crypto.clone();
    let created = db.write_blocking(|conn| -> Result<_, AccountError> {
        if orgs::count(conn)? > 0 {
            return Ok(None);
        }
        let org = orgs::create(conn, &new_org)?;
        let admin = users::create(conn, &crypto, &org.id, &email, Role::Admin)?;
        Ok(Some((org, admin)))
    })?;
    let Some((org, admin)) = created else {
        return Ok(Handover::NotNeeded);
    };
    tracing::info!(organization.slug = %org.slug, "created the first organization and its admin account");
    let text = format!(
        "Komek created the organization `{slug}` and its first admin account.\n\
         \n  email:          {email}\n  password:       {password}\n  second factor:  {uri}\n\n\
         This password works once: change it at the first login. Add the second factor to an authenticator\n\
         app (paste the otpauth:// link, or make a QR code of it). These credentials are shown only now.\n",
        slug = org.slug,
        email = admin.email,
        password = admin.password.expose(),
        uri = admin.totp_uri.expose(),
    );
    if std::io::stdout().is_terminal() {
        print!("\n{text}\n");
        return Ok(Handover::Printed);
    }
    let path = settings.data_dir.join("first-admin-credentials.txt");
    keys::write_new_file(&path, &text)?;
    tracing::warn!(
        path = %path.display(),
        "standard output is not a terminal: the first admin's one-time credentials were written to this file \
         (mode 0600); read it, then delete it"
    );
    Ok(Handover::Written(path))
}
