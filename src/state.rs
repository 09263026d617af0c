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
}

impl AppState {
    /// Assembles the state, loading and validating the triage rules (built in, or `triage_rules_dir`).
    pub fn load(settings: Arc<Settings>, db: Db, keys: Arc<Keyset>) -> Result<AppState, RuleFileError> {
        let engine = match &settings.triage_rules_dir {
            Some(dir) => Engine::from_dir(dir)?,
            None => Engine::embedded()?,
        };
        Ok(AppState {
            db,
            crypto: Crypto::new(keys.clone()),
            settings,
            triage: Arc::new(engine),
            keys,
        })
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
