//! Auto Scaling API calls: the AWS adapter counts them, this family exports the increase.

use std::collections::BTreeMap;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::CallLabels;

/// The adapter's counts: `(operation, outcome)` to calls since it started.
pub(super) type CallCounts = BTreeMap<(&'static str, &'static str), u64>;

/// `spots_booster_aws_calls`.
pub(super) struct AwsCalls {
    calls: Family<CallLabels, Counter>,
    /// The counts already exported.
    seen: CallCounts,
}

impl AwsCalls {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "spots_booster_aws_calls",
            "Auto Scaling API calls, by operation and outcome",
            calls.clone(),
        );
        AwsCalls {
            calls,
            seen: BTreeMap::new(),
        }
    }

    /// Adds what each count grew by since the last call.
    pub(super) fn mirror(&mut self, counts: CallCounts) {
        for (k, n) in counts {
            let seen = self.seen.entry(k).or_insert(0);
            if n > *seen {
                self.calls
                    .get_or_create(&CallLabels {
                        operation: k.0.to_string(),
                        outcome: k.1.to_string(),
                    })
                    .inc_by(n - *seen);
                *seen = n;
            }
        }
    }
}
