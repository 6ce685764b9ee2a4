//! What `/healthz` and `/readyz` answer.
//!
//! * Liveness is about the loop making progress with the apiserver: it fails when no pass
//!   has had the cluster's answer for the liveness window while the watches were synced
//!   (a wedged connection pool, a loop stuck in a call). A restart is what fixes that.
//!   AWS being down does not fail it: a restart would not help, and the Kubernetes side
//!   still works.
//! * Readiness says whether this replica can act now: synced, not wedged, its last pass
//!   succeeded. A standby that would act if it led is ready (its body says it stands by):
//!   a rolling update of a two-replica Deployment waits for its new pods to be ready, and
//!   only one of them can lead.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    synced_at: Option<Instant>,
    observed_at: Option<Instant>,
    last_pass: Option<Result<(), String>>,
    leading: bool,
}

/// Shared between the loop and the HTTP server.
#[derive(Debug)]
pub struct Health {
    window: Duration,
    state: Mutex<State>,
}

impl Health {
    /// Liveness fails after `window` without the apiserver's answer.
    pub fn new(window: Duration) -> Self {
        Health {
            window,
            state: Mutex::new(State {
                synced_at: None,
                observed_at: None,
                last_pass: None,
                leading: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every watch has listed once.
    pub fn synced(&self) {
        self.state().synced_at = Some(Instant::now());
    }

    /// A pass ended: whether it succeeded, when it last had the cluster's answer, whether
    /// this replica leads.
    pub fn pass_ended(
        &self,
        result: Result<(), String>,
        observed_at: Option<Instant>,
        leading: bool,
    ) {
        let mut s = self.state();
        s.last_pass = Some(result);
        s.observed_at = observed_at.or(s.observed_at);
        s.leading = leading;
    }

    fn wedged(&self, s: &State) -> Option<String> {
        let since = s.observed_at.or(s.synced_at)?;
        let quiet = since.elapsed();
        (quiet > self.window).then(|| {
            format!(
                "wedged: no pass has had the apiserver's answer for {}s (liveness window {}s)",
                quiet.as_secs(),
                self.window.as_secs()
            )
        })
    }

    /// `/healthz`: `Err` with the reason when the loop is wedged.
    pub fn live(&self) -> Result<String, String> {
        let s = self.state();
        match self.wedged(&s) {
            Some(why) => Err(why),
            None if s.synced_at.is_none() => Ok("ok: listing".into()),
            None => Ok("ok".into()),
        }
    }

    /// `/readyz`: `Err` with the reason when this replica cannot act now.
    pub fn ready(&self) -> Result<String, String> {
        let s = self.state();
        if s.synced_at.is_none() {
            return Err("waiting for the first full snapshot".into());
        }
        if let Some(why) = self.wedged(&s) {
            return Err(why);
        }
        match &s.last_pass {
            None => Err("waiting for the first pass".into()),
            Some(Err(e)) => Err(format!("last pass failed: {e}")),
            Some(Ok(())) if s.leading => Ok("ok: leading".into()),
            Some(Ok(())) => Ok("ok: standing by (another replica leads)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_fails_only_after_the_window_without_the_apiservers_answer() {
        let h = Health::new(Duration::from_millis(50));
        assert_eq!(h.live(), Ok("ok: listing".into()));
        assert!(h.ready().is_err());
        h.synced();
        h.pass_ended(Ok(()), Some(Instant::now()), false);
        assert_eq!(
            h.ready(),
            Ok("ok: standing by (another replica leads)".into())
        );
        h.pass_ended(Err("AWS: unavailable".into()), Some(Instant::now()), true);
        assert_eq!(
            h.live(),
            Ok("ok".into()),
            "AWS down is no reason to restart"
        );
        assert!(h.ready().is_err_and(|e| e.contains("AWS")));
        std::thread::sleep(Duration::from_millis(80));
        // Passes keep ending, but none had the apiserver's answer.
        h.pass_ended(Err("timed out".into()), None, true);
        assert!(h.live().is_err_and(|e| e.starts_with("wedged")));
        assert!(h.ready().is_err());
        h.pass_ended(Ok(()), Some(Instant::now()), true);
        assert_eq!(h.live(), Ok("ok".into()));
        assert_eq!(h.ready(), Ok("ok: leading".into()));
    }
}
