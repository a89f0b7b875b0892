//! A counting global allocator for benchmarks: allocations per delivered event, the figure
//! the speed issue asks for, and the peak of live heap bytes (per run, after
//! [`reset_peak`]). Lives in the bench binaries only, never in the shipped binary. It
//! forwards to the shipped binary's allocator (mimalloc, `faultline::cli::alloc`), so that
//! the events/s a bench prints are the binary's.
//!
//! The counters are updated with plain relaxed loads and stores, not read-modify-write
//! atomics: a `lock`-prefixed add and a compare-and-swap loop per allocation cost about a
//! tenth of the Kafka bench's wall time, which is the instrument's cost, not the
//! simulator's. The benches allocate from one thread at a time (a run is never threaded;
//! a one-job fuzz's caller only waits), so no update is lost in practice; were two
//! threads to allocate at once, a count could come out slightly low.

use std::alloc::{GlobalAlloc, Layout};

use faultline::cli::alloc::Fast as System;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
/// LIVE when the peak measurement began, and the highest LIVE above it since. The peak is
/// kept as a difference taken with wrapping arithmetic: LIVE itself can drift (an update
/// lost while two threads allocated at once, e.g. during a threaded fuzz before the
/// measurement, even wraps it below zero), and an absolute maximum would then never move
/// again; a difference over a one-thread window stays exact.
static BASE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn add(counter: &AtomicU64, by: u64) -> u64 {
    let now = counter.load(Ordering::Relaxed).wrapping_add(by);
    counter.store(now, Ordering::Relaxed);
    now
}

fn grew(by: u64) {
    let live = add(&LIVE, by);
    let above = live.wrapping_sub(BASE.load(Ordering::Relaxed)) as i64;
    if above > PEAK.load(Ordering::Relaxed) as i64 {
        PEAK.store(above as u64, Ordering::Relaxed);
    }
}

fn shrank(by: u64) {
    add(&LIVE, by.wrapping_neg());
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(&ALLOCATIONS, 1);
        grew(layout.size() as u64);
        // SAFETY: forwarded unchanged to the shipped allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size() as u64);
        // SAFETY: forwarded unchanged to the shipped allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(&ALLOCATIONS, 1);
        shrank(layout.size() as u64);
        grew(new_size as u64);
        // SAFETY: forwarded unchanged to the shipped allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (and reallocations) made so far by the whole process.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the heap bytes live now.
#[allow(dead_code)]
pub fn reset_peak() {
    BASE.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
}

/// The most heap bytes live at once since the last [`reset_peak`], above what was live
/// then (0 right after it).
#[allow(dead_code)]
pub fn peak_bytes() -> u64 {
    PEAK.load(Ordering::Relaxed)
}
