//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics:
//!
//! * The Lease's resourceVersion is the lock: every write is a compare-and-swap.
//! * Expiry is judged on this replica's own monotonic clock, from the moment it last *saw the
//!   Lease change*, never by comparing the holder's `renewTime` with the local wall clock:
//!   a replica whose clock runs 20 s ahead does not steal a Lease that is being renewed.
//! * A leader that could not renew within the renew deadline stops acting by itself
//!   ([`Leadership::is_leader`] turns false without any call answering), and is well
//!   inside the lease duration the others wait before they take over.
//!
//! The two crates that do this (`kube-leader-election` 0.44, `kube-lease-manager` 0.13) were
//! evaluated: both decide expiry from the holder's `renewTime` against the local clock
//! (the clock-skew steal this module exists to prevent), and the first is built on kube 4.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use booster_core::ports::{Leadership, PortError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;

use crate::errors::{port_error, status_of};

/// Leader-election timings, as client-go (and Cluster Autoscaler's flags) name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long the others wait, after they last saw the Lease change, before taking it.
    pub lease_duration: Duration,
    /// How long a leader keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// How often a replica tries to acquire or renew.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timings {
    /// Refuses timings under which two replicas could act at once, as client-go does.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(format!(
                "the renew deadline ({:?}) must be longer than 1.2 × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }

    /// The longest a standby waits to take over after the holder's last renewal: it sees the
    /// change within a retry period, waits the lease duration from then, and tries again
    /// within another retry period (each try bounded by [`Timings::call_timeout`]).
    pub fn takeover_bound(&self) -> Duration {
        self.lease_duration + 2 * self.retry_period + self.call_timeout()
    }

    /// The deadline of one Lease call: a renewal that hangs must fail in time for the next
    /// one to be tried before the renew deadline.
    pub fn call_timeout(&self) -> Duration {
        (self.renew_deadline / 2).max(Duration::from_millis(500))
    }
}

/// What this replica last saw of the Lease, and when (on its own monotonic clock).
#[derive(Clone, Debug)]
struct Observed {
    version: Option<String>,
    at: Instant,
}

/// One replica's handle on the Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    observed: Mutex<Option<Observed>>,
}

/// An offset added to the wall clock this module writes (the Lease's times), for tests
/// that run a replica whose clock is wrong. Expiry never reads the wall clock.
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Makes this process's Lease times run `ms` ahead (negative: behind). Tests only.
pub fn offset_clock_for_tests(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, Ordering::SeqCst);
}

fn now() -> MicroTime {
    let offset =
        k8s_openapi::jiff::SignedDuration::from_millis(CLOCK_OFFSET_MS.load(Ordering::SeqCst));
    MicroTime(
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| Timestamp::now()),
    )
}

impl LeaseLock {
    /// `identity` must be unique per replica (the pod name).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: Timings,
    ) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timings,
            observed: Mutex::new(None),
        }
    }

    fn spec(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timings.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquired.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Runs one Lease call with its deadline.
    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, PortError> {
        tokio::time::timeout(self.timings.call_timeout(), f)
            .await
            .map_err(|_| PortError::Unavailable(format!("{what} Lease {}: timed out", self.name)))
    }

    /// When this replica first saw the Lease at `version` (now, if it just changed).
    fn seen(&self, version: Option<String>, at: Instant) -> Instant {
        let mut o = self.observed.lock().unwrap_or_else(PoisonError::into_inner);
        match o.as_ref() {
            Some(prev) if prev.version == version => prev.at,
            _ => {
                *o = Some(Observed { version, at });
                at
            }
        }
    }

    /// Takes the Lease if it is free or expired, renews it if ours. `Ok(true)`: we lead.
    /// `at` is the local instant the attempt started (a renewal counts from then).
    pub async fn try_acquire_or_renew(&self, at: Instant) -> Result<bool, PortError> {
        let ctx = || format!("Lease {}", self.name);
        let current = self
            .call("get", self.api.get_opt(&self.name))
            .await?
            .map_err(|e| port_error(&ctx(), e))?;
        let pp = PostParams::default();
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, 0)),
            };
            return match self.call("create", self.api.create(&pp, &lease)).await? {
                Ok(l) => {
                    self.seen(l.metadata.resource_version, at);
                    Ok(true)
                }
                Err(e) if status_of(&e) == Some(409) => Ok(false),
                Err(e) => {
                    // The shipped RBAC allows no `create`: the chart makes the Lease.
                    if status_of(&e) == Some(403) {
                        tracing::error!(
                            lease = %self.name,
                            "the Lease is missing and this account may not create it: no \
                             replica leads until it exists (upgrade the Helm release, or apply \
                             deploy/rbac.yaml)"
                        );
                    }
                    Err(port_error(&ctx(), e))
                }
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let ours = holder == Some(self.identity.as_str());
        let duration = spec
            .lease_duration_seconds
            .and_then(|d| u64::try_from(d).ok())
            .map_or(self.timings.lease_duration, Duration::from_secs);
        let seen_at = self.seen(lease.metadata.resource_version.clone(), at);
        let expired = at.saturating_duration_since(seen_at) >= duration;
        if !(ours || holder.is_none() || expired) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(if ours { spec.acquire_time } else { None }, transitions));
        // The resourceVersion we read makes this a compare-and-swap.
        match self
            .call("update", self.api.replace(&self.name, &pp, &lease))
            .await?
        {
            Ok(l) => {
                self.seen(l.metadata.resource_version, at);
                Ok(true)
            }
            Err(e) if status_of(&e) == Some(409) => Ok(false),
            Err(e) => Err(port_error(&ctx(), e)),
        }
    }

    /// Gives the Lease up if we hold it, so that another replica takes over at once.
    pub async fn release(&self) -> Result<(), PortError> {
        let ctx = || format!("Lease {}", self.name);
        let Some(mut lease) = self
            .call("get", self.api.get_opt(&self.name))
            .await?
            .map_err(|e| port_error(&ctx(), e))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        match self
            .call(
                "release",
                self.api.replace(&self.name, &PostParams::default(), &lease),
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(port_error(&ctx(), e)),
        }
    }
}

/// Keeps trying to lead; [`Leadership::is_leader`] says whether we do right now.
pub struct Elector {
    lock: LeaseLock,
    /// The start of the last successful acquire or renew.
    renewed: Mutex<Option<Instant>>,
    /// For logging transitions only.
    logged: AtomicBool,
}

impl Elector {
    /// An elector on `lock`, not leading yet.
    pub fn new(lock: LeaseLock) -> Self {
        Elector {
            lock,
            renewed: Mutex::new(None),
            logged: AtomicBool::new(false),
        }
    }

    fn renewed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How much longer this replica may act without another renewal; `None`: not leading.
    pub fn lead_left(&self) -> Option<Duration> {
        let deadline = self.lock.timings.renew_deadline;
        self.renewed()
            .map(|t| deadline.saturating_sub(t.elapsed()))
            .filter(|left| !left.is_zero())
    }

    /// One round: acquire or renew. A failed call leaves leadership to run out at the renew
    /// deadline; a Lease held by another ends it at once.
    pub async fn tick(&self) -> bool {
        let at = Instant::now();
        match self.lock.try_acquire_or_renew(at).await {
            Ok(true) => *self.renewed() = Some(at),
            Ok(false) => *self.renewed() = None,
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        self.note()
    }

    /// Logs a change of leadership once; returns whether this replica leads.
    fn note(&self) -> bool {
        let lead = self.lead_left().is_some();
        if lead != self.logged.swap(lead, Ordering::SeqCst) {
            tracing::info!(leading = lead, lease = %self.lock.name, identity = %self.lock.identity, "leadership changed");
        }
        lead
    }

    /// Resolves when the lead runs out without a renewal (never while not leading).
    async fn deadline(&self) {
        match self.lead_left() {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    }

    /// Tries every retry period (jittered, as client-go does) until `stop` resolves, then
    /// stops leading and releases the Lease. The caller resolves `stop` only after its own
    /// writes have stopped.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let every = self.lock.timings.retry_period;
        loop {
            // A renewal that hangs past the renew deadline is abandoned there, and the end
            // of leadership is logged when it happens, not at the next try.
            tokio::select! {
                _ = self.tick() => {}
                _ = self.deadline() => {
                    self.note();
                }
            }
            let jitter = every.mul_f64(fastrand::f64() * 0.2);
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(every + jitter) => {}
            }
        }
        *self.renewed() = None;
        if let Err(e) = self.lock.release().await {
            tracing::warn!(error = %e, "could not release the lease");
        }
        tracing::info!(lease = %self.lock.name, "lease released");
    }
}

#[async_trait]
impl Leadership for Elector {
    async fn is_leader(&self) -> bool {
        self.lead_left().is_some()
    }

    async fn lead_left(&self) -> Option<Duration> {
        Elector::lead_left(self)
    }
}
