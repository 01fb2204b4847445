// The project's one hex codec, for digests, saved hash states, TLS pins and
// percent-encoded names. The work is OpenSSL's (libcrypto is linked anyway);
// this pair only fixes the conventions Ferry wants on either side of it.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ferry {

// Lowercase hex, two digits a byte, no separators.
std::string to_hex(std::span<const unsigned char> bytes);

// The bytes written by an even number of hex digits of either case; nothing
// for an odd count, a separator or any other character (a NUL included).
std::optional<std::string> from_hex(std::string_view text);

} // namespace ferry
