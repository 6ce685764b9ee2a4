//! The wall clock each snapshot's `now` comes from, and the offset end-to-end tests put on
//! it.

use booster_core::Timestamp;

/// An offset added to [`wall_clock`], for end-to-end tests of a replica whose clock is
/// wrong (`BOOSTER_TEST_CLOCK_OFFSET_SECS`).
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Makes [`wall_clock`] run `ms` ahead. Tests only.
pub fn offset_clock_for_tests(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, std::sync::atomic::Ordering::SeqCst);
}

/// The wall clock, as the snapshot's `now`.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_unix_millis(ms + CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::SeqCst))
}
