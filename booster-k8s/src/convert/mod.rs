//! Kubernetes objects to the core's snapshot types, and back for the ledger: one file per
//! object or concern, all re-exported here.

mod autoscaler_status;
mod boost_mark;
mod census;
mod karpenter;
mod ledger;
mod managed_fields;
mod names;
mod node;
mod pods;

pub use autoscaler_status::ca_observation;
pub use boost_mark::boost_mark_value;
pub use census::PodCensus;
pub use karpenter::{node_pools, nodeclaims, nodepool_group};
pub use ledger::{ledger_data, ledger_of, LedgerError};
pub(crate) use managed_fields::slim_managed_fields;
pub use names::{
    BOOST_MARK, CA_LAST_UPDATED, DO_NOT_DISRUPT, INTERRUPTION_TAINTS, LEDGER_KEY, NODEPOOL_LABEL,
    PROTECTED_FOR, REBALANCE_TAINT, SCALE_DOWN_DISABLED, STANDBY_TAINT,
};
pub use node::{node_of, nodeclaim_of};
pub use pods::{pod_name, pod_role, PodRole, PodRules, DEFAULT_PROTECTING_ANNOTATIONS};
