#include "mtime_limits.hpp"

#include <algorithm>

namespace ferry {

namespace {

constexpr std::int64_t kDay = 86400;

// Rounds down (toward the past, negative times too) to a multiple of
// `step`; where none is left in int64 (near -2^63), toward zero.
std::int64_t floor_to(std::int64_t value, std::int64_t step)
{
    const std::int64_t rest = value % step;
    if (rest >= 0) {
        return value - rest;
    }
    const std::int64_t toward_zero = value - rest;
    return toward_zero >= std::numeric_limits<std::int64_t>::min() + step ? toward_zero - step : toward_zero;
}

} // namespace

std::int64_t MtimeLimits::held(std::int64_t mtime) const
{
    const std::int64_t clamped = std::clamp(mtime, min, max);
    return step <= 1 ? clamped : floor_to(clamped, step);
}

std::optional<MtimeLimits> mtime_limits_from(std::span<const std::int64_t> held)
{
    if (held.size() != kMtimeProbes.size()) {
        return std::nullopt;
    }
    const std::int64_t before_midnight = kMtimeProbes[2];
    const std::int64_t midnight = kMtimeProbes[3];
    const std::int64_t lost = before_midnight - held[2];
    if (lost < 0 || lost >= kDay || kDay % (lost + 1) != 0 || held[3] != midnight) {
        return std::nullopt; // rounded up, or by a step that does not divide a day
    }
    MtimeLimits limits{held[0], held[1], lost + 1};
    if (limits.min > midnight || limits.max < before_midnight) {
        return std::nullopt;
    }
    // The extremes must be what the model itself would hold of them.
    for (std::size_t i = 0; i < held.size(); ++i) {
        if (limits.held(kMtimeProbes[i]) != held[i]) {
            return std::nullopt;
        }
    }
    return limits;
}

} // namespace ferry
