//! What a group's scaling activities tell the engine: launches that failed, and raises of
//! desired capacity that took effect.
//!
//! A raise shows only in an activity's `Cause`, in AWS's words: "At 2024-05-02T14:03:11Z a
//! user request explicitly set group desired capacity changing the desired capacity from 3
//! to 4. At ... an instance was started in response to a difference between desired and
//! running capacity, increasing the capacity from 3 to 4." The text is AWS's (or an
//! emulator's): anything that does not read as that sentence is no raise, never an error.

use aws_sdk_autoscaling::types::{Activity, ScalingActivityStatusCode};
use booster_core::snapshot::{Activities, LaunchFailure, Raise};
use booster_core::Timestamp;

/// The words before a desired capacity change's numbers.
const CHANGING: &str = "changing the desired capacity from ";

/// The longest message kept of a failed activity: AWS's text can never grow the snapshot.
const MESSAGE_CHARS: usize = 300;

/// The raises and failed launches of `activities`, in their order (newest first).
pub(crate) fn read(activities: &[Activity]) -> Activities {
    Activities {
        failures: activities.iter().filter_map(failure_of).collect(),
        raises: activities.iter().filter_map(raise_of).collect(),
    }
}

fn started(a: &Activity) -> Option<Timestamp> {
    let t = a.start_time()?;
    Some(Timestamp::from_unix_millis(t.to_millis().ok()?))
}

/// A failed activity: a launch that did not happen.
fn failure_of(a: &Activity) -> Option<LaunchFailure> {
    if a.status_code() != Some(&ScalingActivityStatusCode::Failed) {
        return None;
    }
    let at = started(a)?;
    let message: String = a
        .status_message()
        .or(a.description())
        .unwrap_or_default()
        .chars()
        .take(MESSAGE_CHARS)
        .collect();
    Some(LaunchFailure { at, message })
}

/// The raise an activity's cause tells of, failed launches included (the raise took effect
/// even when its launch did not).
fn raise_of(a: &Activity) -> Option<Raise> {
    let (at, from, to) = parse_cause(a.cause()?)?;
    (to > from).then_some(Raise {
        at: at.or_else(|| started(a))?,
        from,
        to,
    })
}

/// The desired capacity change in a cause, and the time its sentence gives, if any.
fn parse_cause(cause: &str) -> Option<(Option<Timestamp>, u32, u32)> {
    let i = cause.find(CHANGING)?;
    let mut words = cause[i + CHANGING.len()..].split_whitespace();
    let from = number(words.next()?)?;
    if words.next()? != "to" {
        return None;
    }
    let to = number(words.next()?)?;
    // The sentence's own "At <time>": the last one before the change.
    let at = cause[..i].rfind("At ").and_then(|j| {
        let word = cause[j + 3..].split_whitespace().next()?;
        Timestamp::parse_rfc3339(word).ok()
    });
    Some((at, from, to))
}

fn number(word: &str) -> Option<u32> {
    word.trim_end_matches(['.', ',']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_raise_and_its_own_time() {
        let cause = "At 2024-05-02T14:03:11Z a user request explicitly set group desired \
                     capacity changing the desired capacity from 3 to 4.  At \
                     2024-05-02T14:03:20Z an instance was started in response to a difference \
                     between desired and running capacity, increasing the capacity from 3 to 4.";
        let (at, from, to) = parse_cause(cause).expect("a raise");
        assert_eq!((from, to), (3, 4));
        assert_eq!(
            at,
            Timestamp::parse_rfc3339("2024-05-02T14:03:11Z").ok(),
            "the change's time, not the launch's"
        );
    }

    #[test]
    fn constraints_update_and_alarms_read_too() {
        let cause = "At 2020-06-23T15:51:43Z a user request update of AutoScalingGroup \
                     constraints to min: 1, max: 5, desired: 3 changing the desired capacity \
                     from 2 to 3.";
        assert_eq!(parse_cause(cause).map(|c| (c.1, c.2)), Some((2, 3)));
    }

    #[test]
    fn anything_else_is_no_raise() {
        for cause in [
            "",
            "an instance was taken out of service in response to a user request",
            "changing the desired capacity from three to 4",
            "changing the desired capacity from 3 into 4",
            "changing the desired capacity from 3",
            "changing the desired capacity from 99999999999 to 4",
        ] {
            assert_eq!(parse_cause(cause), None, "{cause:?}");
        }
        // A time that does not parse leaves the activity's start time to stand in.
        let c =
            parse_cause("At yesterday a user request changing the desired capacity from 1 to 2.");
        assert_eq!(c, Some((None, 1, 2)));
    }

    #[test]
    fn a_decrease_is_no_raise() {
        let a = Activity::builder()
            .activity_id("a")
            .auto_scaling_group_name("g")
            .cause(
                "At 2024-05-02T14:03:11Z a user request changing the desired capacity from 4 to 3.",
            )
            .start_time(aws_sdk_autoscaling::primitives::DateTime::from_secs(
                1_714_658_591,
            ))
            .status_code(ScalingActivityStatusCode::Successful)
            .build();
        assert!(read(&[a]).raises.is_empty());
    }
}
