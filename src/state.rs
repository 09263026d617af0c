//! `AppState`: what every handler may use — the database, encryption, triage, and the validated settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;
use crate::intake::process::ProcessContext;
use crate::keys::Keyset;
use crate::triage::{Engine, RuleFileError};

/// Shared, cheaply cloneable application state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Field encryption and blind index.
    pub crypto: Crypto,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// The triage engine with its rules loaded and validated.
    pub triage: Arc<Engine>,
    /// The server's keys (JWT signing keys are read by auth).
    pub keys: Arc<Keyset>,
    /// The public web form's in-memory budgets (shared by every HTTP worker).
    pub webform: Arc<crate::webform::WebFormState>,
}

/// Loads and validates the triage rules: built in, or the files in `triage_rules_dir`.
pub fn load_triage(settings: &Settings) -> Result<Arc<Engine>, RuleFileError> {
    let engine = match &settings.triage_rules_dir {
        Some(dir) => Engine::from_dir(dir)?,
        None => Engine::embedded()?,
    };
    Ok(Arc::new(engine))
}

impl AppState {
    /// Assembles the state.
    pub fn new(settings: Arc<Settings>, db: Db, keys: Arc<Keyset>, triage: Arc<Engine>) -> AppState {
        let webform = Arc::new(crate::webform::WebFormState::new(&settings));
        AppState {
            db,
            crypto: Crypto::new(keys.clone()),
            settings,
            triage,
            keys,
            webform,
        }
    }

    /// What report processing needs.
    pub fn process_context(&self) -> ProcessContext {
        ProcessContext {
            crypto: self.crypto.clone(),
            engine: self.triage.clone(),
            critical_ack_deadline: self.settings.critical_ack_deadline,
            flood_threshold: i64::from(self.settings.flood_threshold),
            flood_window: self.settings.flood_window,
            parts_wait: self.settings.sms_parts_wait,
        }
    }
}
