//! The ledger's ConfigMap data: read into a [`Ledger`], and written from one.

use std::collections::BTreeMap;

use booster_core::Ledger;
use k8s_openapi::api::core::v1::ConfigMap;

use super::names::LEDGER_KEY;

/// Why a ledger ConfigMap could not be read.
#[derive(Debug, thiserror::Error)]
#[error("ledger ConfigMap key {LEDGER_KEY} is not a ledger: {0}")]
pub struct LedgerError(String);

/// The ledger stored in a ConfigMap (an absent key is an empty ledger).
pub fn ledger_of(cm: &ConfigMap) -> Result<Ledger, LedgerError> {
    match cm.data.as_ref().and_then(|d| d.get(LEDGER_KEY)) {
        None => Ok(Ledger::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| LedgerError(e.to_string())),
    }
}

/// The ConfigMap data holding `ledger`.
/// Compact JSON: a ConfigMap holds 1 MiB, and indentation is a third of a pretty ledger.
/// A ledger that cannot be serialised is an error, never stored as an empty one (which
/// would forget every signal).
pub fn ledger_data(ledger: &Ledger) -> Result<BTreeMap<String, String>, serde_json::Error> {
    let text = serde_json::to_string(ledger)?;
    Ok(BTreeMap::from([(LEDGER_KEY.to_string(), text)]))
}
