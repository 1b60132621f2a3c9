//! One typed configuration, layered: built-in defaults, then a TOML file (`--config`), then
//! environment variables and flags (`HERALD_*`, `--...`). Validated once at start-up and
//! passed explicitly; nothing reads it from a global.

use anyhow::{bail, Context};
use serde::Deserialize;
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
    /// Accept Telegram's test phone numbers 99966XYYYY with the code XXXXX.
    pub test_phones: bool,
    pub max_connections: usize,
    /// Seconds a new connection has to deliver its first complete frame.
    pub init_timeout_secs: u64,
    /// Seconds without a complete frame before a connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./herald-data"),
            listen: "127.0.0.1:4430".parse().unwrap(),
            public_addr: None,
            dc: 1,
            test_phones: false,
            max_connections: 10_000,
            init_timeout_secs: 10,
            idle_timeout_secs: 120,
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
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=99).contains(&self.dc) {
            bail!("dc must be between 1 and 99, got {}", self.dc);
        }
        if self.max_connections == 0 {
            bail!("max_connections must be positive");
        }
        if self.init_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            bail!("timeouts must be positive");
        }
        Ok(())
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
}
