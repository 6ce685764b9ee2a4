//! Kubernetes adapter of aws-spots-booster (kube-rs): watches Nodes, Events and the
//! cluster-autoscaler status ConfigMap, keeps the ledger, cordons, protects and drains.
//!
//! It implements [`booster_core::ports::Cluster`]. The implementation is tracked by its own
//! issue ("booster-k8s: the Kubernetes adapter"); until it lands this crate only fixes the
//! workspace layout and holds no code.
#![forbid(unsafe_code)]
