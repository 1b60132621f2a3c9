//! One typed configuration, layered: built-in defaults, then a TOML file (`--config`), then
//! environment variables and flags (`HERALD_*`, `--...`). Validated once at start-up and
//! passed explicitly; nothing reads it from a global.

use anyhow::{bail, Context};
use herald_domain::limits::FloodTable;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database and keys live.
    pub data_dir: PathBuf,
    /// Address to accept MTProto connections on.
    pub listen: SocketAddr,
    /// The address advertised to clients in help.getConfig (defaults to `listen`, with an
    /// unspecified IP replaced by 127.0.0.1).
    pub public_addr: Option<SocketAddr>,
    /// This node's data center id.
    pub dc: i32,
    /// Accept Telegram's test phone numbers 99966XYYYY with the code XXXXX (development;
    /// also writes issued codes to the log).
    pub test_phones: bool,
    /// Write issued login codes to the log (development only).
    pub log_codes: bool,
    /// A program run for every issued login code, with `HERALD_PHONE` and `HERALD_CODE` in
    /// its environment (an SMS gateway), and for every password email code, with
    /// `HERALD_EMAIL` and `HERALD_CODE`. Codes also go to the user's other sessions as a
    /// message from 777000.
    pub code_hook: Option<PathBuf>,
    /// Where to serve `GET /metrics` (Prometheus text); off when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// Create a new database next to existing keys (a recovery step, see README).
    pub init_database: bool,
    /// Open connections in all (clamped to what the process's file limit allows).
    pub max_connections: usize,
    /// Open connections per source address.
    pub max_connections_per_addr: usize,
    /// Connections per source address that have not yet sent an encrypted message.
    pub max_unauthenticated_per_addr: usize,
    /// Key exchanges per second per source address (sustained), and the burst allowed.
    pub key_exchanges_per_sec: f64,
    pub key_exchange_burst: f64,
    /// Bytes of partial frames buffered per source address, and in all.
    pub max_buffered_per_addr: usize,
    pub max_buffered_total: usize,
    /// Encrypted sessions kept in all, per auth key and per source address.
    pub max_sessions: usize,
    pub max_sessions_per_key: usize,
    pub max_sessions_per_addr: usize,
    /// Seconds a new connection has to deliver its first complete frame.
    pub init_timeout_secs: u64,
    /// Seconds without a complete frame before a connection is closed.
    pub idle_timeout_secs: u64,
    /// The same for a connection that has not yet sent an encrypted message.
    pub unauth_idle_timeout_secs: u64,
    /// Seconds a frame may take to arrive once it has started.
    pub frame_timeout_secs: u64,
    /// Seconds one write may wait for a client that does not read.
    pub write_timeout_secs: u64,
    /// Bytes of answers one received message (a container) may produce; its requests past
    /// that get FLOOD_WAIT_1.
    pub max_answer_bytes: usize,
    /// Auth keys never logged in and unused this many hours are deleted.
    pub unused_key_hours: u64,
    /// Flood limits by name (`herald_domain::limits::FloodTable`, docs/security.md §3.6), each
    /// `BURST,COUNT/UNIT` such as `"5000,1000/s"`; rows not named keep their defaults.
    pub flood: BTreeMap<String, String>,
    /// MiB one account may keep in stored files and uploads in progress (0: no quota).
    pub file_quota_mib: u64,
    /// Uploads are refused (500 STORAGE_FULL) while less than this many MiB are free on the
    /// disk holding the data directory's files.
    pub disk_free_floor_mib: u64,
    /// Seconds a file reference handed out with a message stays good (Telegram: about a day);
    /// clients refetch the message when one has expired.
    pub file_reference_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let addr = herald_net::addrs::AddrLimits::default();
        let sessions = herald_net::sessions::SessionLimits::default();
        Self {
            data_dir: PathBuf::from("./herald-data"),
            listen: "127.0.0.1:4430".parse().unwrap(),
            public_addr: None,
            dc: 1,
            test_phones: false,
            log_codes: false,
            code_hook: None,
            metrics_listen: None,
            init_database: false,
            max_connections: 20_000,
            max_connections_per_addr: addr.connections,
            max_unauthenticated_per_addr: addr.unauthenticated,
            key_exchanges_per_sec: addr.key_exchanges_per_sec,
            key_exchange_burst: addr.key_exchange_burst,
            max_buffered_per_addr: addr.buffered,
            max_buffered_total: addr.buffered_total,
            max_sessions: sessions.max_sessions,
            max_sessions_per_key: sessions.per_key,
            max_sessions_per_addr: sessions.per_addr,
            init_timeout_secs: 10,
            idle_timeout_secs: 120,
            unauth_idle_timeout_secs: 30,
            frame_timeout_secs: 30,
            write_timeout_secs: 30,
            max_answer_bytes: 2 << 20,
            unused_key_hours: 24,
            flood: BTreeMap::new(),
            file_quota_mib: 20 * 1024,
            disk_free_floor_mib: 1024,
            file_reference_secs: 24 * 3600,
        }
    }
}

/// Values given on the command line or in the environment; each overrides the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// TOML file with any of the settings below.
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "HERALD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "HERALD_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "HERALD_PUBLIC_ADDR")]
    pub public_addr: Option<SocketAddr>,
    #[arg(long, env = "HERALD_DC")]
    pub dc: Option<i32>,
    /// Accept test numbers 99966XYYYY with the code XXXXX (X = the digit after 99966).
    #[arg(long, env = "HERALD_TEST_PHONES")]
    pub test_phones: bool,
    /// Write issued login codes to the log (development only).
    #[arg(long, env = "HERALD_LOG_CODES")]
    pub log_codes: bool,
    /// Program run for every login code (HERALD_PHONE, HERALD_CODE in its environment) and
    /// password email code (HERALD_EMAIL, HERALD_CODE).
    #[arg(long, env = "HERALD_CODE_HOOK")]
    pub code_hook: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "HERALD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Create a new, empty database next to existing server keys (recovery; see README).
    #[arg(long)]
    pub init_database: bool,
    /// A flood limit, NAME=BURST,COUNT/UNIT (e.g. sends=100,10/s); repeatable, `;` between
    /// several in the environment.
    #[arg(long = "flood", env = "HERALD_FLOOD", value_delimiter = ';', value_name = "NAME=SPEC")]
    pub flood: Vec<String>,
    /// MiB of files and uploads one account may keep (0: no quota; default 20480).
    #[arg(long, env = "HERALD_FILE_QUOTA_MIB")]
    pub file_quota_mib: Option<u64>,
    /// Refuse uploads while fewer MiB than this are free on the data directory's disk
    /// (default 1024).
    #[arg(long, env = "HERALD_DISK_FREE_FLOOR_MIB")]
    pub disk_free_floor_mib: Option<u64>,
    /// Seconds file references stay good (default 86400).
    #[arg(long, env = "HERALD_FILE_REFERENCE_SECS")]
    pub file_reference_secs: Option<u64>,
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<Self> {
        let mut c = match &o.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = &o.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = o.listen {
            c.listen = v;
        }
        if let Some(v) = o.public_addr {
            c.public_addr = Some(v);
        }
        if let Some(v) = o.dc {
            c.dc = v;
        }
        c.test_phones |= o.test_phones;
        c.log_codes |= o.log_codes;
        c.init_database |= o.init_database;
        if let Some(v) = &o.code_hook {
            c.code_hook = Some(v.clone());
        }
        if let Some(v) = o.metrics_listen {
            c.metrics_listen = Some(v);
        }
        if let Some(v) = o.file_quota_mib {
            c.file_quota_mib = v;
        }
        if let Some(v) = o.disk_free_floor_mib {
            c.disk_free_floor_mib = v;
        }
        if let Some(v) = o.file_reference_secs {
            c.file_reference_secs = v;
        }
        for f in &o.flood {
            let Some((name, spec)) = f.split_once('=') else { bail!("--flood takes NAME=BURST,COUNT/UNIT, got {f:?}") };
            c.flood.insert(name.trim().to_string(), spec.to_string());
        }
        c.validate()?;
        Ok(c)
    }

    /// The upload quota and free-space floor in the domain's terms.
    pub fn file_limits(&self) -> herald_domain::files::FileLimits {
        herald_domain::files::FileLimits { quota_bytes: self.file_quota_mib << 20, free_floor_bytes: self.disk_free_floor_mib << 20 }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=99).contains(&self.dc) {
            bail!("dc must be between 1 and 99, got {}", self.dc);
        }
        let counts = [
            ("max_connections", self.max_connections),
            ("max_connections_per_addr", self.max_connections_per_addr),
            ("max_unauthenticated_per_addr", self.max_unauthenticated_per_addr),
            ("max_buffered_per_addr", self.max_buffered_per_addr),
            ("max_buffered_total", self.max_buffered_total),
            ("max_sessions", self.max_sessions),
            ("max_sessions_per_key", self.max_sessions_per_key),
            ("max_sessions_per_addr", self.max_sessions_per_addr),
            ("max_answer_bytes", self.max_answer_bytes),
            ("file_reference_secs", self.file_reference_secs.min(usize::MAX as u64) as usize),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, v)| *v == 0) {
            bail!("{name} must be positive");
        }
        let rates = [("key_exchanges_per_sec", self.key_exchanges_per_sec, 0.0), ("key_exchange_burst", self.key_exchange_burst, 1.0)];
        for (name, v, min) in rates {
            let ok = if min == 0.0 { v > 0.0 } else { v >= min };
            if v.is_nan() || !ok {
                bail!("{name} must be {}", if min == 0.0 { "positive".to_string() } else { format!("at least {min}") });
            }
        }
        let timeouts = [
            self.init_timeout_secs,
            self.idle_timeout_secs,
            self.unauth_idle_timeout_secs,
            self.frame_timeout_secs,
            self.write_timeout_secs,
            self.unused_key_hours,
        ];
        if timeouts.contains(&0) {
            bail!("timeouts must be positive");
        }
        self.flood_table()?;
        Ok(())
    }

    /// The flood limits: the defaults with the configured rows replaced.
    pub fn flood_table(&self) -> anyhow::Result<FloodTable> {
        let mut t = FloodTable::default();
        for (name, spec) in &self.flood {
            t.set(name, spec).map_err(anyhow::Error::msg)?;
        }
        Ok(t)
    }

    pub fn advertised(&self, bound: SocketAddr) -> SocketAddr {
        self.public_addr.unwrap_or_else(|| {
            let mut a = bound;
            if a.ip().is_unspecified() {
                a.set_ip([127, 0, 0, 1].into());
            }
            a
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layering_file_then_flags() {
        let dir = std::env::temp_dir().join(format!("herald-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("herald.toml");
        std::fs::write(&file, "dc = 3\ntest_phones = true\nlisten = \"0.0.0.0:5000\"\n").unwrap();
        let o = Overrides { config: Some(file.clone()), dc: Some(4), ..Default::default() };
        let c = Config::load(&o).unwrap();
        assert_eq!((c.dc, c.test_phones, c.listen.port()), (4, true, 5000));
        assert_eq!(c.advertised(c.listen).to_string(), "127.0.0.1:5000");
        std::fs::write(&file, "bogus = 1\n").unwrap();
        assert!(Config::load(&Overrides { config: Some(file), ..Default::default() }).is_err());
        assert!(Config::load(&Overrides { dc: Some(0), ..Default::default() }).is_err());
    }

    #[test]
    fn flood_rows_from_the_file_and_the_flags() {
        let dir = std::env::temp_dir().join(format!("herald-config-flood-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("herald.toml");
        std::fs::write(&file, "[flood]\nsends = \"100, 10/s\"\nsearch = \"1,1/s\"\n").unwrap();
        let flags = vec!["search=5,1/m".to_string(), "group_creations=3,3/d".to_string()];
        let c = Config::load(&Overrides { config: Some(file.clone()), flood: flags, ..Default::default() }).unwrap();
        let t = c.flood_table().unwrap();
        assert_eq!((t.sends.burst, t.sends.per_sec), (100.0, 10.0));
        assert_eq!((t.search.burst, t.search.per_sec), (5.0, 1.0 / 60.0), "the flag wins over the file");
        assert_eq!(t.group_creations.burst, 3.0);
        assert_eq!(t.typing, FloodTable::default().typing);
        for bad in ["sendz=1,1/s", "sends", "sends=1/s"] {
            let e = Config::load(&Overrides { flood: vec![bad.into()], ..Default::default() }).unwrap_err();
            assert!(e.to_string().contains("flood") || e.to_string().contains("BURST"), "{bad}: {e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
