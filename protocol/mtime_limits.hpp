// What one file system can hold of a modification time, in the protocol's
// unit (whole seconds since the Unix epoch, PROTOCOL.md 3.3): the range it
// clamps to and the step it rounds down to. ext4 holds 1901 to 2446, XFS
// without bigtime and ext3 to 2038, FAT 1980 to 2107 in steps of 2 s; tmpfs
// and btrfs hold all of int64. A sync compares the sending side's time as
// the receiving side would hold it (`held`), so a time that no transfer can
// give the copy is not taken for a difference on every run.
//
// Learned by asking the file system itself (`kMtimeProbes`, set on a
// scratch file and read back: sys/mtime_probe.hpp), never from a table of
// file system names: the kernel's own clamping is what counts.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>

namespace ferry {

struct MtimeLimits {
    std::int64_t min = std::numeric_limits<std::int64_t>::min();
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::int64_t step = 1; // seconds, at least 1; a held time is a multiple of it

    // What such a file system holds once given `mtime`: clamped into
    // [min, max], then rounded down to a multiple of `step` (FAT's 2 s
    // truncate so; the kernel clamps ext4's and XFS's range so).
    std::int64_t held(std::int64_t mtime) const;

    bool operator==(const MtimeLimits&) const = default;
};

// The times a probe sets, in this order, on one scratch file: the extremes
// (read back: the range) and two times inside every file system's range
// (1980 to 2038): one a second before a day's end, which a file system
// keeping steps of `step` seconds holds as `step - 1` seconds less, and one
// on a day's start, which it must hold exactly (steps that divide a day).
inline constexpr std::array<std::int64_t, 4> kMtimeProbes = {
    std::numeric_limits<std::int64_t>::min(),
    std::numeric_limits<std::int64_t>::max(),
    993599999, // 2001-06-26 23:59:59 UTC, 11500 days less a second
    993513600, // 2001-06-26 00:00:00 UTC
};

// The limits that explain what the file system held of kMtimeProbes
// (`held`, in the same order), or none where no clamp and downward step
// does (a file system that rounds otherwise, or keeps another time than
// any asked): then a sync compares times exactly, as before.
std::optional<MtimeLimits> mtime_limits_from(std::span<const std::int64_t> held);

} // namespace ferry
