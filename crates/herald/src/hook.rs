//! Code delivery to an external program (an SMS or mail gateway): `--code-hook PROGRAM` runs
//! PROGRAM once per issued code with `HERALD_CODE` and either `HERALD_PHONE` (login codes) or
//! `HERALD_EMAIL` (two-step-verification email codes) in its environment
//! (not its arguments, which other local users can read in the process list). At most
//! [`MAX_RUNNING`] run at once, each for at most [`TIMEOUT`]; failures are logged without
//! the code.

use herald_domain::auth::{CodeHook, CodeTo};
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
    fn deliver(&self, to: CodeTo<'_>, code: &str) {
        let (var, phone) = match to {
            CodeTo::Phone(p) => ("HERALD_PHONE", p),
            CodeTo::Email(e) => ("HERALD_EMAIL", e),
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(phone, "code hook busy ({MAX_RUNNING} running); this code goes only to the user's sessions");
            return;
        };
        let (program, phone, code) = (self.program.clone(), phone.to_string(), code.to_string());
        tokio::spawn(async move {
            let child = tokio::process::Command::new(&program)
                .env(var, &phone)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_program_gets_phone_and_code_in_its_environment() {
        let dir = std::env::temp_dir().join(format!("herald-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("got");
        let script = dir.join("hook.sh");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$HERALD_PHONE $HERALD_CODE $#\" > {}\n", out.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        CommandHook::new(script).deliver(CodeTo::Phone("15550001111"), "12345");
        for _ in 0..100 {
            if let Ok(s) = std::fs::read_to_string(&out) {
                if !s.is_empty() {
                    assert_eq!(s.trim(), "15550001111 12345 0", "phone and code in the environment, no arguments");
                    let _ = std::fs::remove_dir_all(&dir);
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the hook did not run");
    }
}
