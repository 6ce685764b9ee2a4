//! Small builders for snapshots, for this crate's tests and for the adapters' and binary's
//! tests (feature `testkit`). Not part of the stable API.

use crate::ca_status::{CaNodeGroup, CaStatus, CaStatusFormat};
use crate::ledger::{Boost, DrainState, Entry};
use crate::snapshot::{CaObservation, Group, Instance, Lifecycle, Node, Signal, Snapshot};
use crate::time::{Dur, Timestamp};

/// 2024-06-10T12:00:00Z, the origin of test time.
pub const T0: Timestamp = Timestamp::from_unix_secs(1_718_020_800);

/// `T0` plus `secs` seconds.
pub fn t(secs: u64) -> Timestamp {
    T0.plus(Dur::from_secs(secs))
}

/// The instance id the builders give a node: `i-` and the node name's letters and digits.
pub fn instance_of(node: &str) -> String {
    let id: String = node.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("i-{id}")
}

/// A healthy cluster-autoscaler group entry mirroring an Auto Scaling group.
pub fn mk_ca_group(g: &Group) -> CaNodeGroup {
    CaNodeGroup {
        name: g.name.clone(),
        health: Some("Healthy".into()),
        ready: g.instances.len() as u32,
        registered: g.instances.len() as u32,
        cloud_provider_target: g.desired,
        min_size: g.min_size,
        max_size: g.max_size,
        scale_up: Some("NoActivity".into()),
        ..CaNodeGroup::default()
    }
}

/// NTH's Event about `node`, claiming and created at `at`.
pub fn nth_event(node: &str, at: Timestamp) -> Signal {
    Signal {
        id: format!("default/{node}"),
        namespace: crate::config::NTH_EVENT_NAMESPACE.into(),
        component: crate::config::NTH_COMPONENT.into(),
        instance_id: Some(instance_of(node)),
        created_at: Some(at),
        ..Signal::event(node, at)
    }
}

/// A ready, schedulable node created at `created`.
pub fn mk_node(name: &str, created: Timestamp) -> Node {
    Node {
        name: name.to_string(),
        instance_id: Some(instance_of(name)),
        created_at: created,
        ready: true,
        ..Node::default()
    }
}

/// An in-service instance.
pub fn mk_instance(id: &str) -> Instance {
    Instance {
        id: id.to_string(),
        az: "eu-west-1a".into(),
        lifecycle: Lifecycle::InService,
        healthy: true,
        protected_from_scale_in: false,
        instance_type: String::new(),
        weight: None,
    }
}

/// Builds a [`Snapshot`] step by step. The CA status is fresh, healthy and lists every
/// group added, unless [`SnapshotBuilder::ca`] replaces it.
pub struct SnapshotBuilder {
    s: Snapshot,
    ca: Option<CaObservation>,
}

impl SnapshotBuilder {
    /// An empty cluster at `now`.
    pub fn new(now: Timestamp) -> Self {
        SnapshotBuilder {
            s: Snapshot {
                now,
                ..Snapshot::default()
            },
            ca: None,
        }
    }

    /// Adds an Auto Scaling group with `desired` ready nodes named `{name}-{i}`, created at T0.
    pub fn group(mut self, name: &str, min: u32, desired: u32, max: u32) -> Self {
        let mut g = Group {
            name: name.to_string(),
            min_size: min,
            max_size: max,
            desired,
            ..Group::default()
        };
        for i in 0..desired {
            let n = mk_node(&format!("{name}-{i}"), T0);
            g.instances
                .push(mk_instance(n.instance_id.as_deref().unwrap_or_default()));
            self.s.nodes.push(n);
        }
        self.s.groups.push(g);
        self
    }

    /// Adds a node (and its in-service instance) to `group`, then lets `f` adjust the node.
    pub fn node(mut self, group: &str, name: &str, f: impl FnOnce(&mut Node)) -> Self {
        let mut n = mk_node(name, T0);
        f(&mut n);
        if let (Some(g), Some(id)) = (
            self.s.groups.iter_mut().find(|g| g.name == group),
            n.instance_id.as_deref(),
        ) {
            g.instances.push(mk_instance(id));
        }
        self.s.nodes.push(n);
        self
    }

    /// Adjusts an existing node.
    pub fn with_node(mut self, name: &str, f: impl FnOnce(&mut Node)) -> Self {
        if let Some(n) = self.s.nodes.iter_mut().find(|n| n.name == name) {
            f(n);
        }
        self
    }

    /// Adjusts an existing group.
    pub fn with_group(mut self, name: &str, f: impl FnOnce(&mut Group)) -> Self {
        if let Some(g) = self.s.groups.iter_mut().find(|g| g.name == name) {
            f(g);
        }
        self
    }

    /// A rebalance recommendation for `node` at `at`, as NTH reports it with its
    /// recommended settings: NTH's Event (in `default`, from NTH's component, created at
    /// `at`) and its taint on the node, written at `at`.
    pub fn signal(self, node: &str, at: Timestamp) -> Self {
        self.event(node, at, |_| {}).with_node(node, |n| {
            n.rebalance_taint = true;
            n.tainted_at = Some(at);
        })
    }

    /// A `RebalanceRecommendation` Event alone (nothing on the node), as NTH would post it
    /// at `at`, adjusted by `f`.
    pub fn event(mut self, node: &str, at: Timestamp, f: impl FnOnce(&mut Signal)) -> Self {
        let mut e = nth_event(node, at);
        e.id = format!("default/{node}.{}", self.s.signals.len());
        f(&mut e);
        self.s.signals.push(e);
        self
    }

    /// A ledger entry for `node` (its group found by instance), adjusted by `f`.
    pub fn entry(mut self, node: &str, signal_at: Timestamp, f: impl FnOnce(&mut Entry)) -> Self {
        let id = instance_of(node);
        let group = self
            .s
            .groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i.id == id))
            .map(|g| g.name.clone())
            .unwrap_or_default();
        let mut e = Entry {
            instance_id: id,
            group,
            signal_at,
            boost: Boost::Queued {
                reason: crate::plan::Reason::NewSignal,
            },
            drain: DrainState::NotStarted,
            released_at: None,
            fallback: None,
            retiring: None,
            cordoned_before: false,
            pool: String::new(),
            outcome: None,
        };
        f(&mut e);
        self.s.ledger.entries.insert(node.to_string(), e);
        self
    }

    /// Replaces the CA status observation.
    pub fn ca(mut self, obs: CaObservation) -> Self {
        self.ca = Some(obs);
        self
    }

    /// Sets `ledger.last_drain_started_at`.
    pub fn last_drain(mut self, at: Timestamp) -> Self {
        self.s.ledger.last_drain_started_at = Some(at);
        self
    }

    /// The snapshot.
    pub fn build(mut self) -> Snapshot {
        self.s.ca_status = self.ca.take().unwrap_or_else(|| CaObservation::Parsed {
            status: CaStatus {
                format: CaStatusFormat::Yaml,
                time: Some(self.s.now),
                autoscaler_status: Some("Running".into()),
                node_groups: self.s.groups.iter().map(mk_ca_group).collect(),
            },
            updated_at: self.s.now,
        });
        self.s
    }
}

/// A group `spot` of four; `spot-0` was signalled at t(90), boosted (ours) and drained by
/// the booster, and its signal has just expired under `Config::default()`: its retire is
/// due.
pub fn expired_and_drained() -> Snapshot {
    let expiry = crate::config::Config::default().signal_expiry;
    SnapshotBuilder::new(t(100).plus(expiry))
        .group("spot", 1, 4, 6)
        .entry("spot-0", t(90), |e| {
            e.boost = crate::ledger::Boost::Applied {
                to: 4,
                at: t(95),
                assumed: false,
            };
            e.drain = crate::ledger::DrainState::Draining {
                since: t(200),
                attempt: 1,
            };
        })
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.pods_to_evict = 0;
        })
        .build()
}

/// The most of `times` within any 60 s: a rate of calls, as an account's limits count it.
pub fn most_in_a_minute(times: &[Timestamp]) -> usize {
    times
        .iter()
        .map(|a| {
            times
                .iter()
                .filter(|b| **b >= *a && b.since(*a) < crate::time::Dur::from_secs(60))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Runs `plan`'s ledger and node parts on `s`, and raises desired capacity as asked (each
/// raise succeeds): the world after the plan, for tests that step through passes.
pub fn apply_plan(s: &mut Snapshot, plan: &crate::plan::Plan) {
    use crate::plan::Action;
    let mut ledger = s.ledger.clone();
    for a in &plan.actions {
        ledger.apply(a);
        if let Some(confirm) = a.set_desired_confirmation(true) {
            if let Action::SetDesired { group, to, .. } = a {
                if let Some(g) = s.groups.iter_mut().find(|g| &g.name == group) {
                    g.desired = *to;
                }
            }
            ledger.apply(&confirm);
        }
        if let Some(n) = a
            .node()
            .and_then(|n| s.nodes.iter_mut().find(|x| x.name == n))
        {
            apply_to_node(n, a);
        }
    }
    s.ledger = ledger;
}

/// What an action does to its Node, as the Kubernetes adapter does it: cordon, protect,
/// unprotect, release (uncordon and untaint). Other actions leave the node alone.
pub fn apply_to_node(node: &mut Node, action: &crate::plan::Action) {
    use crate::plan::Action;
    match action {
        Action::Cordon { .. } => {
            node.unschedulable = true;
            node.cordoned_by = Some("aws-spots-booster".into());
        }
        Action::Protect { for_node, .. } => {
            node.protected_for = Some(for_node.clone());
            node.scale_down_disabled = true;
        }
        // The `protected_for` marker stays: a replacement stands in for one signal only.
        Action::Unprotect { .. } => node.scale_down_disabled = false,
        Action::Steer { standby, .. } => node.standby_taint = *standby,
        Action::Release { uncordon, .. } => {
            if *uncordon {
                node.unschedulable = false;
                node.cordoned_by = None;
            }
            node.rebalance_taint = false;
            node.tainted_at = None;
        }
        _ => {}
    }
}

/// mockall doubles of the ports, for unit tests of code that drives them.
pub mod mocks {
    use async_trait::async_trait;

    use crate::ledger::Ledger;
    use crate::plan::Reason;
    use crate::ports::{
        Cloud, Cluster, ClusterView, DrainOutcome, DrainSpec, Leadership, PortError, RetireOutcome,
        SetDesiredOutcome,
    };
    use crate::snapshot::Group;

    mockall::mock! {
        /// A mocked [`Cloud`].
        pub Cloud {}
        #[async_trait]
        impl Cloud for Cloud {
            async fn describe_groups(&self, names: &[String]) -> Result<Vec<Group>, PortError>;
            async fn groups_of(&self, instance_ids: &[String]) -> Result<Vec<(String, String)>, PortError>;
            async fn set_desired(&self, group: &str, from: u32, to: u32) -> Result<SetDesiredOutcome, PortError>;
            async fn scaling_activities(&self, group: &str) -> Result<crate::snapshot::Activities, PortError>;
            async fn retire(&self, instance_id: &str, decrement: bool) -> Result<RetireOutcome, PortError>;
        }
    }

    mockall::mock! {
        /// A mocked [`Cluster`].
        pub Cluster {}
        #[async_trait]
        impl Cluster for Cluster {
            async fn observe(&self) -> Result<ClusterView, PortError>;
            async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError>;
            async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError>;
            async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError>;
            async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError>;
            async fn unprotect(&self, node: &str) -> Result<(), PortError>;
            async fn set_standby_taint(&self, node: &str, standby: bool) -> Result<(), PortError>;
            async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError>;
            async fn place_placeholders(&self, node: &str, signal_at: crate::time::Timestamp) -> Result<u32, PortError>;
            async fn remove_placeholders(&self, node: &str) -> Result<(), PortError>;
            async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError>;
            async fn record_event(&self, node: &str, reason: Reason, message: &str, warning: bool) -> Result<(), PortError>;
        }
    }

    mockall::mock! {
        /// A mocked [`Leadership`].
        pub Leadership {}
        #[async_trait]
        impl Leadership for Leadership {
            async fn is_leader(&self) -> bool;
        }
    }
}
