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
//! [`Fast`] calls mimalloc's plain entry points for the alignments every allocation of a
//! run asks for: the `mimalloc` crate's allocator passes each layout's alignment to
//! `mi_malloc_aligned`, whose checks cost about four times the plain `mi_malloc` per
//! allocation (callgrind, the Kafka bench scenario: 82 instructions per allocation, a
//! third of them through the aligned generic path).
//!
//! Depends on nothing in the crate.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

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

/// The alignment every plain mimalloc block has (`MI_MAX_ALIGN_SIZE`, `max_align_t`'s
/// alignment: 16 bytes on 64-bit targets, 8 on 32-bit ones, as Rust's own `System`
/// allocator assumes of `malloc`).
const PLAIN_ALIGN: usize = if cfg!(target_pointer_width = "64") {
    16
} else {
    8
};

/// mimalloc, through its plain entry points when the alignment allows (see the module doc)
/// and its aligned ones otherwise.
pub struct Fast;

// SAFETY: every block comes from mimalloc with at least the layout's alignment (a plain
// block is aligned to `PLAIN_ALIGN`), and is freed or resized by mimalloc, which accepts
// blocks from either family of entry points.
unsafe impl GlobalAlloc for Fast {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions have no preconditions.
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; mimalloc keeps the block's
        // alignment on a resize (the plain one keeps `PLAIN_ALIGN`).
        unsafe {
            if layout.align() <= PLAIN_ALIGN {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}
