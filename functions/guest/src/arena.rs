//! [`ArenaAlloc`]: a global allocator that serves allocations from the free
//! tail of a module's initial memory before it asks the fallback allocator
//! (std's dlmalloc) for more.
//!
//! The host zero-fills a module's whole initial memory on every request, and
//! dlmalloc never uses the part of it above `__heap_base`: its first
//! allocation grows the memory by a page, which makes the host copy and
//! zero-fill again. With a 32 KiB stack, `hello`'s stack and data leave ~30
//! KiB of that first page unused; serving its few small allocations there
//! removes the `memory.grow` from every request.
//!
//! The arena is a bump allocator: freeing the most recent allocation (or
//! resizing it) is undone in place, anything else stays used until the
//! instance ends. That can waste at most the arena itself, the free part of
//! the initial memory, so it never costs the function more memory than a
//! module without it would have; once the arena is full every allocation
//! goes to the fallback.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A bump arena over `[start, end)` of the initial memory in front of the
/// fallback allocator `A`. [`handler!`](crate::handler) installs it.
pub struct ArenaAlloc<A> {
    fallback: A,
    /// First address of the arena; `usize::MAX` until the first allocation.
    start: AtomicUsize,
    /// Next free address.
    next: AtomicUsize,
    /// End of the arena: the memory size at the first allocation.
    end: AtomicUsize,
}

impl<A> ArenaAlloc<A> {
    /// An arena in front of `fallback`, set up on its first allocation.
    pub const fn new(fallback: A) -> Self {
        Self {
            fallback,
            start: AtomicUsize::new(usize::MAX),
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
        }
    }

    /// An arena over `[start, end)`, for tests off wasm32.
    #[cfg(test)]
    fn over(fallback: A, start: usize, end: usize) -> Self {
        Self {
            fallback,
            start: AtomicUsize::new(start),
            next: AtomicUsize::new(start),
            end: AtomicUsize::new(end),
        }
    }

    /// `[start, end)` of the arena, found on first use: from `__heap_base`
    /// to the end of the memory as it is before anything grew it.
    fn bounds(&self) -> (usize, usize) {
        let start = self.start.load(Relaxed);
        if start != usize::MAX {
            return (start, self.end.load(Relaxed));
        }
        let (start, end) = initial_free_memory();
        self.next.store(start, Relaxed);
        self.end.store(end, Relaxed);
        self.start.store(start, Relaxed);
        (start, end)
    }

    /// Bumps `next` for `layout`, if the arena has room.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let (_, end) = self.bounds();
        let next = self.next.load(Relaxed);
        let at = next.checked_next_multiple_of(layout.align())?;
        let after = at.checked_add(layout.size())?;
        if after > end {
            return None;
        }
        self.next.store(after, Relaxed);
        Some(at as *mut u8)
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let (start, end) = self.bounds();
        (start..end).contains(&(ptr as usize))
    }

    /// Moves the end of the most recent allocation `[at, at + old)` to
    /// `at + new`, if it is the most recent one and the arena has room.
    fn resize_last(&self, at: usize, old: usize, new: usize) -> bool {
        let (_, end) = self.bounds();
        let last = at.checked_add(old) == Some(self.next.load(Relaxed));
        match at.checked_add(new) {
            Some(after) if last && after <= end => {
                self.next.store(after, Relaxed);
                true
            }
            _ => false,
        }
    }
}

/// `__heap_base` (where the linker put the end of stack and data) and the
/// current memory size.
#[cfg(target_arch = "wasm32")]
fn initial_free_memory() -> (usize, usize) {
    unsafe extern "C" {
        static __heap_base: u8;
    }
    // Only the symbol's address is taken, it is never read.
    let start = (&raw const __heap_base) as usize;
    let end = core::arch::wasm32::memory_size(0) * 65536;
    (start, end.max(start))
}

/// Off wasm32 there is no initial memory to use: an empty arena.
#[cfg(not(target_arch = "wasm32"))]
fn initial_free_memory() -> (usize, usize) {
    (0, 0)
}

// SAFETY: arena blocks are disjoint ranges of `[start, end)` (`next` only
// moves back over the most recent block when that block is freed or resized),
// aligned as asked and inside memory the module owns; every other pointer
// comes from and goes back to `fallback`, which upholds the contract itself.
// wasm32 functions are single-threaded, so the relaxed atomics are plain
// loads and stores.
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
            // Undo the most recent allocation; others stay used.
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
        if self.resize_last(ptr as usize, layout.size(), new_size) {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to
        // `layout.align()`, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (the caller's guarantee).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct and at least this long.
            unsafe { ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
            // SAFETY: `ptr` is ours and was allocated with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fallback that must not be reached, or hands out a fixed address.
    struct Fallback(usize);

    unsafe impl GlobalAlloc for Fallback {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            self.0 as *mut u8
        }
        unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
            assert_eq!(
                ptr as usize, self.0,
                "fallback freed a pointer it never gave"
            );
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligned_blocks_then_falls_back() {
        let a = ArenaAlloc::over(Fallback(0x9000), 0x1001, 0x1040);
        unsafe {
            assert_eq!(a.alloc(layout(8, 8)) as usize, 0x1008);
            assert_eq!(a.alloc(layout(1, 1)) as usize, 0x1010);
            assert_eq!(a.alloc(layout(16, 16)) as usize, 0x1020);
            assert_eq!(a.alloc(layout(16, 1)) as usize, 0x1030);
            // Full: the fallback serves it, and gets it back.
            let p = a.alloc(layout(1, 1));
            assert_eq!(p as usize, 0x9000);
            a.dealloc(p, layout(1, 1));
        }
    }

    #[test]
    fn the_last_block_is_freed_and_resized_in_place() {
        let a = ArenaAlloc::over(Fallback(0x9000), 0x1000, 0x1100);
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
        let mut backing = [0u8; 64];
        let mut elsewhere = [0u8; 64];
        let base = backing.as_mut_ptr() as usize;
        let fallback = elsewhere.as_mut_ptr() as usize;
        let a = ArenaAlloc::over(Fallback(fallback), base, base + 64);
        unsafe {
            let p = a.alloc(layout(4, 1));
            ptr::copy_nonoverlapping(b"abcd".as_ptr(), p, 4);
            let _pin = a.alloc(layout(4, 1));
            let moved = a.realloc(p, layout(4, 1), 8);
            assert_eq!(moved as usize, base + 8);
            assert_eq!(core::slice::from_raw_parts(moved, 4), b"abcd");
            // Too large for what is left: the fallback's block.
            let out = a.realloc(moved, layout(8, 1), 64);
            assert_eq!(out as usize, fallback);
            assert_eq!(core::slice::from_raw_parts(out, 4), b"abcd");
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let mut backing = [0xffu8; 32];
        let base = backing.as_mut_ptr() as usize;
        let a = ArenaAlloc::over(Fallback(0x9000), base, base + 32);
        unsafe {
            let p = a.alloc_zeroed(layout(16, 1));
            assert_eq!(core::slice::from_raw_parts(p, 16), [0; 16]);
        }
    }

    #[test]
    fn an_empty_arena_always_falls_back() {
        let a = ArenaAlloc::over(Fallback(0x9000), 0x1000, 0x1000);
        unsafe {
            assert_eq!(a.alloc(layout(1, 1)) as usize, 0x9000);
        }
    }
}
