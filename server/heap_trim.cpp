#include "heap_trim.hpp"

#include <malloc.h>

#include <mutex>

namespace ferry::server {

void trim_heap()
{
    static std::mutex one_at_a_time;
    const std::lock_guard lock(one_at_a_time);
    ::malloc_trim(0);
}

} // namespace ferry::server
