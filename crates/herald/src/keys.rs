//! The server's key material in the data directory: the RSA key (generated on first start,
//! PKCS#1 PEM, private part mode 0600), its public half for clients, and a 32-byte secret
//! that derives salts and access hashes.

use anyhow::{Context, Result};
use herald_mtproto::rng::{OsRng, Rng};
use herald_mtproto::rsa::RsaKey;
use std::path::{Path, PathBuf};

pub const PRIVATE_KEY: &str = "server.key.pem";
pub const PUBLIC_KEY: &str = "server.pub.pem";
pub const SECRET: &str = "server.secret";

pub struct KeyMaterial {
    pub rsa: RsaKey,
    pub secret: [u8; 32],
    pub public_path: PathBuf,
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Loads the key material; on a first start (`fresh`, see `datadir::guard`) creates it.
/// Outside a first start a missing file is an error, never silently regenerated.
pub fn load_or_create(data_dir: &Path, fresh: bool) -> Result<KeyMaterial> {
    let key_path = data_dir.join(PRIVATE_KEY);
    let rsa = if key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)?;
        RsaKey::from_private_pem(&pem).with_context(|| format!("loading {}", key_path.display()))?
    } else if !fresh {
        anyhow::bail!("{} is missing; restore it from a backup", key_path.display());
    } else {
        tracing::info!("generating the server's RSA-2048 key (first start)");
        let k = RsaKey::generate(&mut OsRng);
        write_private(&key_path, k.private_pem().as_bytes())?;
        k
    };
    let public_path = data_dir.join(PUBLIC_KEY);
    let public = rsa.public_pem();
    if std::fs::read_to_string(&public_path).ok().as_deref() != Some(public.as_str()) {
        std::fs::write(&public_path, &public)?;
    }
    let secret_path = data_dir.join(SECRET);
    let secret = match std::fs::read(&secret_path) {
        Ok(b) if b.len() == 32 => b.try_into().unwrap(),
        Ok(_) => anyhow::bail!("{} is damaged (expected 32 bytes); restore it from a backup", secret_path.display()),
        Err(e) if !fresh || e.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("cannot read {}: {e}; restore it from a backup", secret_path.display())
        }
        Err(_) => {
            let mut s = [0u8; 32];
            OsRng.fill(&mut s);
            write_private(&secret_path, &s)?;
            s
        }
    };
    Ok(KeyMaterial { rsa, secret, public_path })
}
