//! Login-code delivery to an external program (an SMS gateway): `--code-hook PROGRAM` runs
//! PROGRAM once per issued code with `HERALD_PHONE` and `HERALD_CODE` in its environment
//! (not its arguments, which other local users can read in the process list). At most
//! [`MAX_RUNNING`] run at once, each for at most [`TIMEOUT`]; failures are logged without
//! the code.

use herald_domain::auth::CodeHook;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const MAX_RUNNING: usize = 16;
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct CommandHook {
    program: PathBuf,
    slots: Arc<Semaphore>,
}

impl CommandHook {
    pub fn new(program: PathBuf) -> Self {
        Self { program, slots: Arc::new(Semaphore::new(MAX_RUNNING)) }
    }
}

impl CodeHook for CommandHook {
    fn deliver(&self, phone: &str, code: &str) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(phone, "code hook busy ({MAX_RUNNING} running); this code goes only to the user's sessions");
            return;
        };
        let (program, phone, code) = (self.program.clone(), phone.to_string(), code.to_string());
        tokio::spawn(async move {
            let child = tokio::process::Command::new(&program)
                .env("HERALD_PHONE", &phone)
                .env("HERALD_CODE", &code)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn();
            let outcome = match child {
                Ok(mut c) => match tokio::time::timeout(TIMEOUT, c.wait()).await {
                    Ok(Ok(status)) if status.success() => Ok(()),
                    Ok(Ok(status)) => Err(format!("exited with {status}")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("did not finish within {}s", TIMEOUT.as_secs())),
                },
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => tracing::debug!(phone, "code hook delivered"),
                Err(e) => tracing::warn!(phone, program = %program.display(), error = %e, "code hook failed"),
            }
            drop(slot);
        });
    }
}
