//! Server processes on loopback: free ports, starting a binary with its log, waiting for
//! it to listen, and stopping or continuing it with signals.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits for `port` to accept connections; with `child`, gives up as soon as it exits (a
/// port taken between [`free_port`] and the bind makes a server exit at once).
pub(super) fn wait_listening(
    port: u16,
    what: &str,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            return Err(format!(
                "{what} exited ({status}) before it listened on {port}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what} did not listen on {port} within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Two distinct free ports: two calls to [`free_port`] may return the same one.
pub(super) fn two_ports() -> (u16, u16) {
    let a = free_port();
    loop {
        let b = free_port();
        if b != a {
            return (a, b);
        }
    }
}

pub(super) fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    spawn_env(bin, args, &[], log)
}

/// A process's stdout and stderr, both appended to `log` (created if need be), so that a
/// restarted process adds to its predecessor's log.
pub fn log_to(log: &Path) -> Result<(Stdio, Stdio), String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(out), Stdio::from(err)))
}

pub(super) fn spawn_env(
    bin: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Child, String> {
    let (out, err) = log_to(log)?;
    Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))
}

/// A process stopped with SIGSTOP; SIGCONT when dropped.
pub struct Frozen(u32);

impl Frozen {
    /// Stops `pid`.
    pub fn pid(pid: u32) -> Result<Frozen, String> {
        signal(pid, "-STOP")?;
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = signal(self.0, "-CONT");
    }
}

/// Sends `sig` (as `kill` spells it: `-TERM`) to `pid`.
pub fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {sig} {pid}: {e}"))?;
    st.success()
        .then_some(())
        .ok_or_else(|| format!("kill {sig} {pid}: {st}"))
}
