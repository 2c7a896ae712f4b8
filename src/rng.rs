//! SplitMix64: the one small, seedable, well-mixed generator behind every
//! reproducible draw that must not depend on a library's stream (prompt
//! heads, working-set selection, the simulator's ids and output tokens).

/// Advances `state` and returns the next value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
