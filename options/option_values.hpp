// Validators for the numbers an operator gives ferryd and ferry, on the
// command line or in a config file, checked as text before CLI11 converts
// them. CLI11's own conversions are too forgiving for a service's limits:
// an unsigned option is read with strtoull, which takes "-1" as
// 18446744073709551615 (a limit switched off, a TTL that wraps); a float
// with strtod, which takes "nan" (a timeout that never fires) and "1e-300"
// (one that fires at once); an empty config value converts to 0 without a
// check; and CLI::Range prints its bounds with %f, a 309-digit number for
// the largest double. Each refusal here names the range in plain figures.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <system_error>

namespace ferry::option_values {

// Shortest plain decimal that reads back as `value`: 0.001, 1000000000.
inline std::string plain_figure(double value)
{
    char text[64];
    const auto written = std::to_chars(text, text + sizeof text, value, std::chars_format::fixed);
    return std::string(text, written.ptr);
}

// A whole number from `min` to `max`, in decimal digits only: no sign, no
// blank, no exponent, no hexadecimal or octal reading.
inline CLI::Validator whole_number(std::uint64_t min, std::uint64_t max, const std::string& unit = "")
{
    const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max) +
                              (unit.empty() ? "" : " " + unit);
    return CLI::Validator(
        [range, min, max](std::string& text) -> std::string {
            std::uint64_t value = 0;
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, value);
            const bool digits = !text.empty() && stop == end && error != std::errc::invalid_argument;
            if (!digits || error == std::errc::result_out_of_range || value < min || value > max) {
                return "\"" + text + "\" is not a whole number " + range;
            }
            // CLI11 reads with base 0, where a leading 0 means octal: "010"
            // must be ten, as checked.
            text = std::to_string(value);
            return {};
        },
        range);
}

// A finite number of seconds from `min` to `max` (decimals and exponents
// allowed: 0.5, 2e3).
inline CLI::Validator seconds(double min, double max)
{
    const std::string range = "from " + plain_figure(min) + " to " + plain_figure(max) + " seconds";
    return CLI::Validator(
        [range, min, max](std::string& text) -> std::string {
            double value = 0;
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, value);
            if (text.empty() || stop != end || error != std::errc() || !std::isfinite(value) || value < min ||
                value > max) {
                return "\"" + text + "\" is not a number of seconds " + range.substr(0, range.size() - 8);
            }
            return {};
        },
        range);
}

// A value that must say something: an empty one ("", an unset variable
// expanded in a script) is refused rather than read as "not given", which
// for a TLS trust option would mean speaking without TLS.
inline CLI::Validator not_empty(const std::string& why)
{
    return CLI::Validator(
        [why](std::string& text) -> std::string { return text.empty() ? "an empty value is refused: " + why : ""; },
        "NOT EMPTY");
}

} // namespace ferry::option_values
