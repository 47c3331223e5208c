//! A global allocator that keeps hostile length prefixes from aborting the process.
//!
//! kafka-protocol pre-allocates a Vec for every array by its declared length. A 20-byte request
//! claiming 2^31 elements asks for hundreds of GiB; the system allocator refuses and Rust aborts
//! (an allocation failure cannot be caught). Huge requests are therefore served by an
//! `MAP_NORESERVE` anonymous mapping: address space only, no memory is touched, so the decoder
//! fails on the missing bytes and the mapping is released. Everything else goes to the system
//! allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped directly.
const HUGE: usize = 1 << 30;

pub struct AllocGuard;

unsafe fn map(size: usize) -> *mut u8 {
    let p = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

unsafe impl GlobalAlloc for AllocGuard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= 4096 {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= 4096 {
            map(layout.size()) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= 4096 {
            libc::munmap(ptr as *mut libc::c_void, layout.size());
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < HUGE && new_size < HUGE {
            return System.realloc(ptr, layout, new_size);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

/// Keeps freed I/O buffers (fetch reads, request frames: up to megabytes each) in the heap
/// instead of returning them to the kernel after every request. glibc's defaults unmap or trim
/// them, and the next request faults fresh zeroed pages in again; on VMs whose memory is backed
/// lazily by the host that first touch costs more than the copy itself. Memory stays bounded
/// by the peak of buffers in flight.
pub fn retain_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called once before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}
