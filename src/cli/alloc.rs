//! The allocator of the shipped binary (and of the benches, so that they measure it).
//!
//! A run allocates and frees small objects (paths, messages, map nodes, log records) at a
//! high rate: with glibc's malloc, allocation and free were about a fifth of a fuzz run's
//! instructions. mimalloc does the same work in fewer (callgrind, `fuzz zk-nemesis` seeds
//! 0..300: 3.64 G instructions with glibc, 3.11 G with mimalloc). Addresses never reach
//! behaviour or output, so every run stays byte-for-byte the same (the golden trace hashes
//! do not depend on the allocator).
//!
//! Two settings keep peak memory where glibc's was. Transparent huge pages are off for the
//! process (the crate's `no_thp` feature): on a machine whose THP setting is `always`, 2 MiB
//! pages under mimalloc's arenas doubled the resident set of a deep campaign. And freed
//! pages go back to the OS at once (`purge_delay` 0) instead of after a second: with the delay,
//! a campaign's seeds, each building and dropping a whole world in a few milliseconds,
//! kept their pages and doubled the peak again (zk-nemesis-heavy 10000..11000: 23 MB with
//! glibc, 36-48 MB with mimalloc's defaults, 23 MB with these settings).
//!
//! Depends on nothing in the crate.

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e` of the vendored
/// mimalloc v3 header; the Rust bindings of this version do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the settings above; call once at the start of `main`.
pub fn tune() {
    // SAFETY: mi_option_set only writes mimalloc's option table, at an index the linked
    // mimalloc has (`MIMALLOC_VERBOSE=1` lists the options with their values: purge_delay
    // shows 0).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}
