//! Reading the ledger of a stopped node straight from its data dir: the same answers as the
//! control API's read endpoints, from the stored blocks replayed and verified again by the
//! auditor (`paychan_audit`).

use anyhow::{Context, Result};
use paychan_ledger::LedgerState;
use paychan_protocol::PublicKey;
use paychan_store::{SledStore, Store};
use serde_json::{json, Value};

use crate::api::BlockView;
use crate::audit_cmd::replay_store;
use crate::config::DataDir;
use crate::node::LedgerStatus;

/// A stopped node's ledger.
#[derive(Debug)]
pub struct Offline {
    store: SledStore,
    state: LedgerState,
}

impl Offline {
    /// Opens the database (refused while a node holds it) and replays its blocks.
    pub fn open(dir: &DataDir) -> Result<Offline> {
        let store = SledStore::open(dir.db_path())
            .with_context(|| format!("open {} (is the node still running?)", dir.db_path().display()))?;
        let genesis = match store.genesis()? {
            Some(g) => g,
            None => dir.genesis()?,
        };
        // Replayed through the auditor: the ledger rules and conservation after every block.
        let state = replay_store(&genesis, &store)?;
        Ok(Offline { store, state })
    }

    /// What `GET /v1/{path}` would answer, for the read endpoints of the ledger.
    pub fn get(&self, path: &str) -> Result<Value> {
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
        };
        if route == "ledger/status" {
            return Ok(json!(LedgerStatus::of(&self.state, 0)));
        }
        if route == "ledger/blocks" {
            let limit = param("limit").unwrap_or(20).min(256) as usize;
            if limit == 0 {
                return Ok(json!([]));
            }
            let from = param("from")
                .unwrap_or_else(|| self.state.height().saturating_sub(limit as u64 - 1))
                .max(1);
            let blocks = self.store.blocks(from, limit)?;
            return Ok(json!(blocks.iter().map(BlockView::from).collect::<Vec<_>>()));
        }
        if let Some(key) = route.strip_prefix("accounts/") {
            let key = PublicKey::from_hex(key).context("an account is 64 hex characters")?;
            return Ok(
                json!({"account": key.to_hex(), "balance": self.state.balance(&key), "nonce": self.state.nonce(&key)}),
            );
        }
        anyhow::bail!("{path} needs a running node")
    }
}
