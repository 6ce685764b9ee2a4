//! [`NthEvent`]: the part of a core/v1 Event that the engine reads, decoded straight off
//! the wire.
//!
//! Anyone who may create Events writes these objects, so their size is the poster's choice:
//! a message or annotations of a megabyte each, by the thousand. Decoding into
//! `k8s_openapi`'s `Event` and trimming afterwards would hold every message for a moment
//! and keep what the trimming forgets. This type keeps only bounded fields: the message is
//! read for the time it claims and dropped as it is parsed, annotations other than
//! `instance-id` are skipped unread, and an over-long string is kept as absent.

mod fields;
mod nth_event;
mod store;
mod wire;

pub use fields::{claimed_in, INSTANCE_ID_ANNOTATION};
pub(crate) use nth_event::ts;
pub use nth_event::{NthEvent, KARPENTER_REASON, NTH_REASON};
pub use store::{EventStore, MAX_KEPT};
