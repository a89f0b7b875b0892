//! The reference the kernel's speed is judged against, measured in the same process: a bare
//! discrete-event loop over a binary heap of (time, seq, node) with a handler that schedules
//! one reply to a pseudo-random node and a 64-bit hash fold per event. No connections, no
//! dispatch, no trace: what a kernel could reach if it did nothing else.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Runs `events` events over `nodes` nodes; returns the final hash (so nothing is
/// optimised away).
pub fn run(nodes: u64, events: u64) -> u64 {
    let mut heap: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::with_capacity(1024);
    let mut seq = 0u64;
    for n in 0..nodes {
        for k in 0..8 {
            seq += 1;
            heap.push(Reverse((k * 1000 + n, seq, n)));
        }
    }
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..events {
        let Reverse((t, s, n)) = heap.pop().expect("the loop keeps events in flight");
        hash = (hash ^ t ^ s.rotate_left(17) ^ n).wrapping_mul(0x100_0000_01b3);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seq += 1;
        heap.push(Reverse((t + 500_000 + (x & 0xffff), seq, x % nodes)));
    }
    hash
}
