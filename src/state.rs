//! `AppState`: what every handler may use — the database, encryption, and the validated settings.

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;

/// Shared, cheaply cloneable application state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Field encryption and blind index.
    pub crypto: Crypto,
    /// Validated settings.
    pub settings: Arc<Settings>,
}
