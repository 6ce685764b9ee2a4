//! Leader election on a `coordination.k8s.io/v1` Lease: acquire, renew, release, with the
//! Lease's resourceVersion as the lock, as client-go's leaderelection does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use booster_core::ports::{Leadership, PortError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;

use crate::errors::{port_error, status_of};

/// One replica's handle on the Lease.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaseLock {
    /// `identity` must be unique per replica (the pod name).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    fn spec(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: acquired.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Takes the Lease if it is free or expired, renews it if ours. `Ok(true)`: we lead.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, PortError> {
        let ctx = || format!("Lease {}", self.name);
        let current = self
            .api
            .get_opt(&self.name)
            .await
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
            return match self.api.create(&pp, &lease).await {
                Ok(_) => Ok(true),
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
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(r), Some(d)) => {
                r.0.as_millisecond() + i64::from(d) * 1000 < Timestamp::now().as_millisecond()
            }
            _ => true,
        };
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
        if !(ours || expired || free) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(if ours { spec.acquire_time } else { None }, transitions));
        // The resourceVersion we read makes this a compare-and-swap.
        match self.api.replace(&self.name, &pp, &lease).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(409) => Ok(false),
            Err(e) => Err(port_error(&ctx(), e)),
        }
    }

    /// Gives the Lease up if we hold it, so that another replica takes over at once.
    pub async fn release(&self) -> Result<(), PortError> {
        let ctx = || format!("Lease {}", self.name);
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
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
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
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
    leading: Arc<AtomicBool>,
}

impl Elector {
    /// An elector on `lock`, not leading yet.
    pub fn new(lock: LeaseLock) -> Self {
        Elector {
            lock,
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// One round: acquire or renew. A failed renewal drops leadership (fail safe).
    pub async fn tick(&self) -> bool {
        let lead = match self.lock.try_acquire_or_renew().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed; not leading");
                false
            }
        };
        if lead != self.leading.swap(lead, Ordering::SeqCst) {
            tracing::info!(leading = lead, lease = %self.lock.name, identity = %self.lock.identity, "leadership changed");
        }
        lead
    }

    /// Renews every third of the lease duration until `stop` resolves, then releases.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let every = self.lock.duration / 3;
        loop {
            self.tick().await;
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        self.leading.store(false, Ordering::SeqCst);
        if let Err(e) = self.lock.release().await {
            tracing::warn!(error = %e, "could not release the lease");
        }
    }
}

#[async_trait]
impl Leadership for Elector {
    async fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }
}
