//! [`ArenaAlloc`]: a global allocator that serves allocations from a small
//! static arena before it asks the fallback allocator (std's) for memory.
//!
//! The host zero-fills a module's whole initial memory on every request.
//! std's dlmalloc (before Rust 1.97) never uses the free part of that
//! memory: its first allocation grows the memory by a page, and the host
//! then copies and zero-fills again. The arena is a 16 KiB zero-initialised
//! static, so it lies in the module's data (`.bss`, inside the initial
//! memory, no bytes in the file) and belongs to no other allocator: a small
//! handler never grows its memory, whatever the fallback does with the
//! memory above `__heap_base`.
//!
//! It is a bump allocator: freeing or resizing the most recent block is
//! done in place, any other block stays used until the instance ends, so
//! at most the arena itself is ever wasted. Once it is full, every
//! allocation goes to the fallback.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes in the arena. 16 KiB holds a small handler's request, response and
/// temporaries; with a 32 KiB stack and a few KiB of data the whole initial
/// memory still fits one 64 KiB page.
pub const ARENA_SIZE: usize = 16 * 1024;

/// A 16 KiB bump arena in front of the fallback allocator `A`.
/// [`handler!`](crate::handler) installs it over `std::alloc::System`.
pub struct ArenaAlloc<A> {
    fallback: A,
    arena: UnsafeCell<[u8; ARENA_SIZE]>,
    /// Offset of the first free byte of `arena`.
    next: AtomicUsize,
}

// SAFETY: the arena's bytes are only reached through the blocks `alloc`
// hands out, which are disjoint; `next` is atomic. wasm32 functions run on
// one thread, where the relaxed atomics are plain loads and stores; on other
// targets (tests) a single-threaded user is required, as documented.
unsafe impl<A: Sync> Sync for ArenaAlloc<A> {}

impl<A> ArenaAlloc<A> {
    /// An empty arena in front of `fallback`. For one thread only: the
    /// bookkeeping is not synchronised (wasm32 functions are single-threaded).
    pub const fn new(fallback: A) -> Self {
        Self {
            fallback,
            arena: UnsafeCell::new([0; ARENA_SIZE]),
            next: AtomicUsize::new(0),
        }
    }

    fn start(&self) -> usize {
        self.arena.get() as usize
    }

    /// Bumps `next` for `layout`, if the arena has room.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let start = self.start();
        let at = (start + self.next.load(Relaxed)).checked_next_multiple_of(layout.align())?;
        let after = at.checked_add(layout.size())?;
        if after > start + ARENA_SIZE {
            return None;
        }
        self.next.store(after - start, Relaxed);
        Some(at as *mut u8)
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let start = self.start();
        (start..start + ARENA_SIZE).contains(&(ptr as usize))
    }

    /// Moves the end of the block `[at, at + old)` to `at + new`, if it is
    /// the most recent block and the arena has room.
    fn resize_last(&self, at: usize, old: usize, new: usize) -> bool {
        let start = self.start();
        let last = at + old == start + self.next.load(Relaxed);
        match at.checked_add(new) {
            Some(after) if last && after <= start + ARENA_SIZE => {
                self.next.store(after - start, Relaxed);
                true
            }
            _ => false,
        }
    }
}

// SAFETY: arena blocks are disjoint, aligned ranges of the arena (`next`
// only moves back over the most recent block when that block is freed or
// resized), and the arena is a static no other allocator knows; every other
// pointer comes from and goes back to `fallback`, which keeps the contract
// itself.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ArenaAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(at) => at,
            // SAFETY: the caller's guarantees on `layout` are passed on.
            None => unsafe { self.fallback.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(at) => {
                // SAFETY: `at` starts `layout.size()` bytes of the arena that
                // were just handed out; a reused block may hold old bytes.
                unsafe { ptr::write_bytes(at, 0, layout.size()) };
                at
            }
            // SAFETY: the caller's guarantees on `layout` are passed on.
            None => unsafe { self.fallback.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // Undo the most recent block; others stay used.
            self.resize_last(ptr as usize, layout.size(), 0);
        } else {
            // SAFETY: not ours, so `fallback` allocated it with `layout`.
            unsafe { self.fallback.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `fallback` allocated it with `layout`;
            // the caller's guarantees on `new_size` are passed on.
            return unsafe { self.fallback.realloc(ptr, layout, new_size) };
        }
        if self.resize_last(ptr as usize, layout.size(), new_size) || new_size <= layout.size() {
            // Resized in place, or shrunk: a shrunk block that is not the
            // last keeps its bytes (it can never be the last again).
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to
        // `layout.align()`, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (the caller's guarantee).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct and at least this long.
            unsafe { ptr::copy_nonoverlapping(ptr, moved, layout.size()) };
            // SAFETY: `ptr` is ours and was allocated with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::alloc::System;
    use std::boxed::Box;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// A fresh arena over the real system allocator (boxed: 16 KiB).
    fn arena() -> Box<ArenaAlloc<System>> {
        Box::new(ArenaAlloc::new(System))
    }

    /// Fills `len` bytes at `p` with `byte`.
    unsafe fn fill(p: *mut u8, len: usize, byte: u8) {
        unsafe { ptr::write_bytes(p, byte, len) }
    }

    unsafe fn all(p: *mut u8, len: usize, byte: u8) -> bool {
        unsafe { core::slice::from_raw_parts(p, len) }
            .iter()
            .all(|&b| b == byte)
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_spill_to_the_fallback() {
        let a = arena();
        unsafe {
            let mut blocks = std::vec::Vec::new();
            // 100 blocks of 300 bytes: the first ~54 fit the arena.
            for i in 0..100u8 {
                let l = layout(300, 1 << (i % 5));
                let p = a.alloc(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align(), 0);
                fill(p, 300, i);
                blocks.push((p, l, i));
            }
            assert!(blocks.iter().any(|(p, ..)| a.owns(*p)));
            assert!(blocks.iter().any(|(p, ..)| !a.owns(*p)));
            for (p, l, i) in blocks {
                assert!(all(p, 300, i), "block {i} was overwritten");
                a.dealloc(p, l);
            }
        }
    }

    #[test]
    fn the_last_block_is_freed_and_resized_in_place() {
        let a = arena();
        unsafe {
            let first = a.alloc(layout(16, 8));
            let last = a.alloc(layout(16, 8));
            assert_eq!(a.realloc(last, layout(16, 8), 64), last, "grown in place");
            a.dealloc(last, layout(64, 8));
            assert_eq!(a.alloc(layout(8, 8)), last, "reused after free");
            // Not the last block: freeing it keeps it used.
            a.dealloc(first, layout(16, 8));
            assert_eq!(a.alloc(layout(8, 8)) as usize, last as usize + 8);
        }
    }

    #[test]
    fn a_block_that_cannot_grow_in_place_moves_with_its_bytes() {
        let a = arena();
        unsafe {
            let p = a.alloc(layout(4, 1));
            ptr::copy_nonoverlapping(b"abcd".as_ptr(), p, 4);
            let pin = a.alloc(layout(4, 1));
            // Shrinking a block that is not the last keeps it where it is.
            assert_eq!(a.realloc(p, layout(4, 1), 2), p);
            let moved = a.realloc(p, layout(2, 1), 8);
            assert_eq!(moved as usize, pin as usize + 4);
            assert_eq!(core::slice::from_raw_parts(moved, 2), b"ab");
            // Too large for what is left: the fallback's block, bytes kept.
            let out = a.realloc(moved, layout(8, 1), ARENA_SIZE);
            assert!(!a.owns(out));
            assert_eq!(core::slice::from_raw_parts(out, 2), b"ab");
            a.dealloc(out, layout(ARENA_SIZE, 1));
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let a = arena();
        unsafe {
            let p = a.alloc(layout(64, 1));
            fill(p, 64, 0xff);
            a.dealloc(p, layout(64, 1));
            let q = a.alloc_zeroed(layout(64, 1));
            assert_eq!(q, p, "the freed last block is reused");
            assert!(all(q, 64, 0));
        }
    }

    #[test]
    fn a_request_larger_than_the_arena_goes_to_the_fallback() {
        let a = arena();
        unsafe {
            let p = a.alloc(layout(ARENA_SIZE + 1, 1));
            assert!(!a.owns(p));
            a.dealloc(p, layout(ARENA_SIZE + 1, 1));
            assert!(
                a.owns(a.alloc(layout(ARENA_SIZE, 1))),
                "the arena is still empty"
            );
        }
    }
}
