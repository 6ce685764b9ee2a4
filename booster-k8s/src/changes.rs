//! The watches' wake-up for the loop, with the instant of the first change it has not yet
//! acted on: the start of a signal's latency as the booster measures it.

use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

/// Watched changes: a wake-up (one permit, so a change that arrives mid-pass wakes the next
/// wait at once) and when the first change not yet taken arrived.
#[derive(Debug, Default)]
pub struct Changes {
    notify: Notify,
    first_untaken: Mutex<Option<Instant>>,
}

impl Changes {
    /// A watch delivered a change.
    pub fn changed(&self) {
        if let Ok(mut first) = self.first_untaken.lock() {
            first.get_or_insert_with(Instant::now);
        }
        self.notify.notify_one();
    }

    /// Waits for a change (returns at once if one came while nobody waited).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// When the first change since the last call arrived (`None`: none since). A pass takes
    /// it as it starts: what arrives later is the next pass's.
    pub fn take_first(&self) -> Option<Instant> {
        self.first_untaken.lock().ok().and_then(|mut f| f.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_change_is_kept_until_taken_and_a_permit_survives() {
        let c = Changes::default();
        assert_eq!(c.take_first(), None);
        c.changed();
        let first = c.take_first().expect("first");
        c.changed();
        c.changed();
        let second = c.take_first().expect("second");
        assert!(second >= first);
        assert_eq!(c.take_first(), None);
        // The permits of the changes above wake one wait at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), c.notified())
            .await
            .expect("woken by the stored permit");
    }
}
