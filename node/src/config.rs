//! The data directory and the node's TOML config.
//!
//! Layout of a data dir:
//! - `config.toml`: the config below (human-edited);
//! - `node.key`: the node's ed25519 seed in hex, mode 0600; it is both the libp2p identity
//!   and the ledger account;
//! - `api.token`: the control API's bearer token, mode 0600;
//! - `genesis.bin`: the canonical genesis bytes (its hash is the chain id);
//! - `api.addr`, `public.addr`, `p2p.addr`, `gateway.addr`, `node.pid`: written by a running
//!   node;
//! - `db/`: the sled database;
//! - `p2p.listen`: the p2p listen address a node keeps across restarts when `listen` asks for
//!   port 0.
//!
//! The dir itself is created mode 0700.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use paychan_protocol::{Genesis, Keypair, Wire};
use paychan_store::{SledOptions, SledStore, SyncMode};
use serde::{Deserialize, Serialize};

/// Node configuration, read from `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// libp2p listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Peers to dial at start and to seed Kademlia with (`/ip4/../tcp/../p2p/<id>`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Control API address. Loopback unless deliberately changed.
    #[serde(default = "default_api")]
    pub api_listen: String,
    /// Whether this node is a witness (cosigns checkpoints) when genesis names it.
    #[serde(default = "yes")]
    pub witness: bool,
    /// The public read listener (tlog tiles and raw ledger bytes, no token); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<PublicConfig>,
    /// The `[storage]` section: how the database makes writes durable.
    #[serde(default)]
    pub storage: StorageConfig,
    /// The `[gateway]` section: an HTTP 402 gateway in front of a web service; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<crate::gateway::GatewayConfig>,
    /// The `[credit]` section: whether this node grants credit lines by itself when a channel
    /// with it opens (off by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub credit: crate::credit_policy::CreditConfig,
    /// TEST ONLY: a sequencer with this set silently drops dispute updates, to show that such
    /// censorship is caught by the witnesses. Never set it on a real network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_drop_updates: bool,
    /// TEST ONLY: a sequencer with this set answers the first this many transfers it is
    /// offered as accepted and drops them, as a pool that loses them would (to show that the
    /// node that signed them sends them again). Never set it on a real network.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub test_drop_transfers: u32,
    /// TEST ONLY: a sequencer with this set signs and gossips, once, a second checkpoint for a
    /// log size it already signed (another root), to show that every node catches the split
    /// view. Never set it on a real network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_equivocate: bool,
    /// TEST ONLY: a sequencer with this set signs and gossips, once, a second block at a height
    /// it already published, to show that every node keeps the evidence and stops cosigning.
    /// Never set it on a real network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_double_block: bool,
    /// TEST ONLY: a sequencer with this set reads its clock this many ms ahead of real time,
    /// so its blocks run ahead of every replica's clock (to show that replicas refuse blocks
    /// from the future). Never set it on a real network.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub test_clock_ahead_ms: u64,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_listen() -> String {
    "/ip4/127.0.0.1/tcp/0".into()
}
fn default_api() -> String {
    "127.0.0.1:0".into()
}
fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            bootstrap: vec![],
            api_listen: default_api(),
            witness: true,
            public: None,
            storage: StorageConfig::default(),
            gateway: None,
            credit: Default::default(),
            test_drop_updates: false,
            test_drop_transfers: 0,
            test_equivocate: false,
            test_double_block: false,
            test_clock_ahead_ms: 0,
        }
    }
}

/// The `[public]` section: the public read listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    /// Listen address. Loopback unless deliberately changed.
    #[serde(default = "default_api")]
    pub listen: String,
    /// Requests per second one client IP may make on average.
    #[serde(default = "default_public_rate")]
    pub requests_per_s: u32,
    /// Requests one client IP may make in a burst (at least 1).
    #[serde(default = "default_public_burst")]
    pub burst: u32,
    /// Most connections open at once, all clients together.
    #[serde(default = "default_public_connections")]
    pub connections_max: u32,
    /// Most requests being answered at once, all clients together.
    #[serde(default = "default_public_in_flight")]
    pub requests_in_flight_max: u32,
    /// TEST ONLY, off by default: `/tlog/checkpoint` serves the newest checkpoint with one bit
    /// of its first cosignature flipped, so that a test can show that the explorer page
    /// catches a bad cosignature. Never set it on a node anyone reads.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_tamper_cosignature: bool,
}

fn default_public_rate() -> u32 {
    50
}
fn default_public_burst() -> u32 {
    100
}
fn default_public_connections() -> u32 {
    256
}
fn default_public_in_flight() -> u32 {
    32
}

impl Default for PublicConfig {
    fn default() -> Self {
        PublicConfig {
            listen: default_api(),
            requests_per_s: default_public_rate(),
            burst: default_public_burst(),
            connections_max: default_public_connections(),
            requests_in_flight_max: default_public_in_flight(),
            test_tamper_cosignature: false,
        }
    }
}

/// The `[storage]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `"flush"` (the default): sled's own flush only, which survives a killed process but may
    /// lose the last acknowledged writes to a power loss. `"fsync"`: a flush (before every ack,
    /// signature or seq reservation that depends on it) ends with `fsync`, so what was
    /// acknowledged survives a power loss too. BENCHMARKS.md has the cost of each, and why
    /// `flush` is the default.
    #[serde(default, with = "durability_name")]
    pub durability: SyncMode,
}

impl StorageConfig {
    /// The options the node's database is opened with.
    pub fn sled_options(&self) -> SledOptions {
        SledOptions {
            sync_mode: self.durability,
            ..SledOptions::default()
        }
    }
}

/// `durability` as its name in the config (`"fsync"` or `"flush"`).
mod durability_name {
    use paychan_store::SyncMode;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &SyncMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SyncMode, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(D::Error::custom)
    }
}

/// Paths of one data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Wraps a path.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `node.key`.
    pub fn key_path(&self) -> PathBuf {
        self.root.join("node.key")
    }
    /// `api.token`.
    pub fn token_path(&self) -> PathBuf {
        self.root.join("api.token")
    }
    /// `genesis.bin`.
    pub fn genesis_path(&self) -> PathBuf {
        self.root.join("genesis.bin")
    }
    /// `db/`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("db")
    }
    /// Opens the node's database (`db/`) as `config` says.
    pub fn open_store(&self, config: &Config) -> Result<SledStore> {
        SledStore::open_with(self.db_path(), config.storage.sled_options())
            .with_context(|| format!("open the database in {}", self.db_path().display()))
    }
    /// `api.addr`: written by a running node so that the CLI finds its API.
    pub fn api_addr_path(&self) -> PathBuf {
        self.root.join("api.addr")
    }
    /// `public.addr`: written by a running node with a public listener: its address.
    pub fn public_addr_path(&self) -> PathBuf {
        self.root.join("public.addr")
    }
    /// `p2p.addr`: written by a running node: its listen multiaddr with `/p2p/<id>`.
    pub fn p2p_addr_path(&self) -> PathBuf {
        self.root.join("p2p.addr")
    }
    /// `p2p.listen`: the listen address a node bound on its first start when its config asks
    /// for port 0; later starts listen there again.
    pub fn listen_path(&self) -> PathBuf {
        self.root.join("p2p.listen")
    }
    /// `node.pid`: the running node's process id.
    pub fn pid_path(&self) -> PathBuf {
        self.root.join("node.pid")
    }

    /// Creates the data dir with a fresh key, token and default config. Refuses to overwrite
    /// an existing key.
    pub fn init(&self, config: &Config, key: Option<&Keypair>) -> Result<Keypair> {
        create_private_dir(&self.root)?;
        if self.key_path().exists() {
            bail!(
                "{} already holds a key; refusing to overwrite it",
                self.root.display()
            );
        }
        let kp = key.cloned().unwrap_or_else(Keypair::generate);
        write_private(&self.key_path(), hex::encode(kp.seed()).as_bytes())?;
        let mut token = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        write_private(&self.token_path(), hex::encode(token).as_bytes())?;
        fs::write(self.config_path(), toml::to_string_pretty(config)?)?;
        Ok(kp)
    }

    /// Reads the config.
    pub fn config(&self) -> Result<Config> {
        let text = fs::read_to_string(self.config_path())
            .with_context(|| format!("read {} (run `paychan init` first)", self.config_path().display()))?;
        toml::from_str(&text).with_context(|| format!("parse {}", self.config_path().display()))
    }

    /// Writes the config.
    pub fn write_config(&self, config: &Config) -> Result<()> {
        fs::write(self.config_path(), toml::to_string_pretty(config)?)?;
        Ok(())
    }

    /// Reads the node key.
    pub fn keypair(&self) -> Result<Keypair> {
        let text = fs::read_to_string(self.key_path())
            .with_context(|| format!("read {} (run `paychan init` first)", self.key_path().display()))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).context("node.key is not 64 hex characters")?;
        Ok(Keypair::from_seed(seed))
    }

    /// Reads the API token.
    pub fn token(&self) -> Result<String> {
        Ok(fs::read_to_string(self.token_path())
            .with_context(|| format!("read {}", self.token_path().display()))?
            .trim()
            .to_owned())
    }

    /// Writes the genesis.
    pub fn write_genesis(&self, genesis: &Genesis) -> Result<()> {
        fs::write(self.genesis_path(), genesis.to_bytes())?;
        Ok(())
    }

    /// Reads the genesis.
    pub fn genesis(&self) -> Result<Genesis> {
        let bytes = fs::read(self.genesis_path())
            .with_context(|| format!("read {} (no genesis installed)", self.genesis_path().display()))?;
        Genesis::from_bytes(&bytes).context("genesis.bin is not a valid genesis")
    }
}

/// Creates a directory (and any missing parents) readable by its owner only (0700), with that
/// mode from the start. An existing directory is left as it is.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .with_context(|| format!("create {}", path.display()))
}

/// Writes a file readable by its owner only (0600), atomically enough for a fresh file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_store::Store;

    #[test]
    fn durability_defaults_to_flush_and_reaches_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("node"));
        data.init(&Config::default(), None).unwrap();
        let text = std::fs::read_to_string(data.config_path()).unwrap();
        assert!(
            text.contains("[storage]") && text.contains("durability = \"flush\""),
            "{text}"
        );
        let config = data.config().unwrap();
        assert_eq!(config.storage.durability, SyncMode::SyncFileRange);
        let store = data.open_store(&config).unwrap();
        assert_eq!(store.sync_mode(), SyncMode::SyncFileRange);
        assert_eq!(store.fsync_passes(), 0);
        drop(store);

        // An older config without the section gets the default; "fsync" opts in, and the
        // store it opens runs the fsync path (one pass at open, one per flush).
        for (section, mode, passes) in [
            ("", SyncMode::SyncFileRange, 0),
            ("[storage]\ndurability = \"fsync\"\n", SyncMode::Fsync, 2),
        ] {
            std::fs::write(data.config_path(), format!("witness = true\n{section}")).unwrap();
            let config = data.config().unwrap();
            assert_eq!(config.storage.durability, mode);
            let store = data.open_store(&config).unwrap();
            assert_eq!(store.sync_mode(), mode);
            store.put_meta("k", b"v").unwrap();
            store.flush().unwrap();
            assert_eq!(store.fsync_passes(), passes);
        }
    }

    #[test]
    fn an_unknown_durability_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        std::fs::write(data.config_path(), "[storage]\ndurability = \"sometimes\"\n").unwrap();
        let err = format!("{:#}", data.config().unwrap_err());
        assert!(err.contains("unknown durability mode \"sometimes\""), "{err}");
    }
}
