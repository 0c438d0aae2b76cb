//! Deterministic randomness: a generator for every (seed, purpose, index), so an item is the
//! same whichever thread or order asks for it.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a well-mixed 64-bit hash of one word.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 generator seeded from the hash of several words.
pub(crate) fn rng_for(words: &[u64]) -> ChaCha8Rng {
    let mut h = 0x5265_7073_696d_0000u64;
    for w in words {
        h = mix(h ^ mix(*w));
    }
    ChaCha8Rng::seed_from_u64(h)
}
