// Reproducible pseudo-random bytes for the unit tests: the same seed gives
// the same bytes on every run and machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace ferry::test {

inline std::string random_bytes(std::size_t size, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::string out(size, '\0');
    for (auto& c : out) {
        c = static_cast<char>(byte(rng));
    }
    return out;
}

} // namespace ferry::test
