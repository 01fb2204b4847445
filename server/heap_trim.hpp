// Gives the free pages at the top of malloc's arenas back to the kernel
// (glibc's malloc_trim(3)), so that a server whose last client left stays
// small. Called on any worker's loop thread.
//
// One caller at a time, process-wide, and a caller that finds another
// trimming returns at once (the event loop never waits on it): glibc's malloc_trim runs its
// allocator's first-time set-up (ptmalloc_init) when nothing has allocated
// through it yet, and that set-up is not safe from two threads at once (two
// threads attach to the main arena as its only user; the second to exit
// fails glibc's assertion `a->attached_threads > 0`, or malloc_trim reads
// an arena half set up and crashes). That is the case whenever glibc's
// malloc is not the allocator in use: under AddressSanitizer (whose
// allocator does not replace malloc_trim), or with another allocator
// preloaded that leaves malloc_trim to glibc. ferryd's workers met it when
// the last clients of two workers left together (test_heap_trim.cpp).
#pragma once

namespace ferry::server {

void trim_heap();

} // namespace ferry::server
