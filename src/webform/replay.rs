//! Sending the same form twice — a reload of the receipt page, or pressing Send again after the answer was
//! lost on a slow connection — must not open a second case, and must still give the person their code.
//! So the receipt of each stored submission is remembered, in memory only and for a few minutes, under a
//! keyed hash of the form's token (which only that browser holds); the same token sent again gets the
//! same receipt page. Nothing of this reaches the database or the logs, and a restart forgets it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::crypto::Crypto;

/// How long a receipt is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(15 * 60);

const MAX_ENTRIES: usize = 10_000;

/// What the receipt page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub reference: String,
    pub code: String,
}

/// Recent receipts by token hash.
#[derive(Debug, Default)]
pub struct Receipts {
    recent: Mutex<HashMap<String, (Instant, Receipt)>>,
}

fn key(crypto: &Crypto, token: &str) -> String {
    crypto.blind_index("webform-receipt", token)
}

impl Receipts {
    /// The receipt already given for this token, if it is recent.
    pub fn get(&self, crypto: &Crypto, token: &str) -> Option<Receipt> {
        let recent = self.recent.lock().ok()?;
        recent
            .get(&key(crypto, token))
            .filter(|(at, _)| at.elapsed() < REMEMBER_FOR)
            .map(|(_, receipt)| receipt.clone())
    }

    /// Remembers the receipt given for this token.
    pub fn remember(&self, crypto: &Crypto, token: &str, receipt: Receipt) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        if recent.len() >= MAX_ENTRIES {
            recent.retain(|_, (at, _)| at.elapsed() < REMEMBER_FOR);
            if recent.len() >= MAX_ENTRIES {
                recent.clear();
            }
        }
        recent.insert(key(crypto, token), (Instant::now(), receipt));
    }
}
