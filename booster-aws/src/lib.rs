//! AWS adapter of aws-spots-booster (aws-sdk-autoscaling): describes Auto Scaling groups,
//! sets desired capacity and retires instances.
//!
//! It implements [`booster_core::ports::Cloud`]. The implementation is tracked by its own
//! issue ("booster-aws: the Auto Scaling adapter"); until it lands this crate only fixes the
//! workspace layout and holds no code.
#![forbid(unsafe_code)]
