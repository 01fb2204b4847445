#include "heap_trim.hpp"

#include <malloc.h>

#include <mutex>

namespace ferry::server {

void trim_heap()
{
    // A loop never waits here: while another thread trims, that trim walks
    // every arena, this thread's too, and this call has nothing to add.
    static std::mutex one_at_a_time;
    const std::unique_lock lock(one_at_a_time, std::try_to_lock);
    if (lock.owns_lock()) {
        ::malloc_trim(0);
    }
}

} // namespace ferry::server
