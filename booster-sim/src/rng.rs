//! Keyed random draws. Every draw is a hash of the seed and what it is for (the k-th launch
//! of a group, the i-th signal, a pod), not the next value of one stream: the same instance
//! boots in the same time under every policy, so that policies are compared on the same luck.

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string, to key draws by names.
pub(crate) fn key(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A hash of the seed and `parts`.
pub(crate) fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |h, p| mix(h ^ mix(*p)))
}

/// A uniform draw in `[0, 1)` keyed by the seed and `parts`.
pub(crate) fn unit(seed: u64, parts: &[u64]) -> f64 {
    (hash(seed, parts) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_keyed_and_spread() {
        assert_eq!(unit(7, &[1, 2]), unit(7, &[1, 2]));
        assert_ne!(unit(7, &[1, 2]), unit(7, &[2, 1]));
        assert_ne!(unit(7, &[1, 2]), unit(8, &[1, 2]));
        let mean = (0..10_000u64).map(|i| unit(1, &[i])).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!((0..1000u64).all(|i| (0.0..1.0).contains(&unit(3, &[i]))));
    }
}
