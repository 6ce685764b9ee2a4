//! The booster's placeholder pods (`--boost-mode placeholder`): made and deleted through
//! the cluster port, one per pod a signalled node has to evict.

use booster_core::time::Timestamp;

use super::World;

/// A placeholder pod of the booster's: it takes one pod's room, anything else preempts it,
/// and nothing recreates it.
pub(super) struct Placeholder {
    pub(super) for_node: String,
    pub(super) signal_at: Timestamp,
    pub(super) node: Option<String>,
    pub(super) running_at: Option<Timestamp>,
}

impl World {
    /// Makes the placeholders of `node`'s signal: one per pod it has to evict, less those
    /// already there. Returns how many were made.
    pub fn place(&mut self, node: &str, signal_at: Timestamp) -> u32 {
        let want = self.pods_to_evict(node);
        let have = self
            .placeholders
            .values()
            .filter(|p| p.for_node == node && p.signal_at == signal_at)
            .count() as u32;
        for _ in have..want {
            self.placeholders.insert(
                self.next_pod,
                Placeholder {
                    for_node: node.to_string(),
                    signal_at,
                    node: None,
                    running_at: None,
                },
            );
            self.next_pod += 1;
        }
        let made = want.saturating_sub(have);
        if made > 0 {
            self.metrics.placeholders_made += made;
            self.bump();
        }
        made
    }

    /// Deletes every placeholder of `node`'s signals.
    pub fn unplace(&mut self, node: &str) {
        let before = self.placeholders.len();
        self.placeholders.retain(|_, p| p.for_node != node);
        if self.placeholders.len() != before {
            self.bump();
        }
    }

    /// Placeholders that exist now (none should at the end of a run).
    pub fn placeholders_left(&self) -> u32 {
        self.placeholders.len() as u32
    }
}
