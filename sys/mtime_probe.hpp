// Asks a folder's file system what it holds of given modification times:
// each set on one scratch file there and read back (fstat). The kernel
// clamps a time to what the file system can store (ext4: 1901 to 2446) and
// the file system may round it (FAT: 2 s), so this is what a copy made
// there would get; protocol/mtime_limits.hpp turns the answers into limits.
//
// Contract (as posix_io): nothing here allocates, throws or logs; a
// failure is an errno value.
#pragma once

#include <cstdint>
#include <span>

namespace ferry::sys {

// Sets each of `asked` (whole seconds) as the scratch file's modification
// time and stores what fstat then shows in `held` (same length). The
// scratch file is unnamed where the file system can (O_TMPFILE), else a
// fresh name made with O_EXCL and removed before the return; nothing of it
// stays either way. `named_fallback` false: only the unnamed file, never a
// name in the folder (ENOTSUP where the file system has no O_TMPFILE; a
// read-only ferryd makes nothing in its folder). 0, or the errno that
// stopped the probe (a folder the caller cannot write, a read-only file
// system, a time refused).
int probe_held_mtimes(int folder_fd, std::span<const std::int64_t> asked, std::span<std::int64_t> held,
                      bool named_fallback = true);

} // namespace ferry::sys
