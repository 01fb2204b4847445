#include "hex.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <algorithm>

namespace ferry {

std::string to_hex(std::span<const unsigned char> bytes)
{
    if (bytes.empty()) {
        return {};
    }
    // Room for the digits and OpenSSL's terminating NUL.
    std::string text(2 * bytes.size() + 1, '\0');
    std::size_t length = 0;
    if (OPENSSL_buf2hexstr_ex(text.data(), text.size(), &length, bytes.data(), bytes.size(), '\0') != 1) {
        // Only a too-small buffer fails, and the size above is exact.
        return {};
    }
    text.resize(2 * bytes.size());
    // OpenSSL writes uppercase; digests on the wire and in files are lowercase.
    std::transform(text.begin(), text.end(), text.begin(),
                   [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c; });
    return text;
}

std::optional<std::string> from_hex(std::string_view text)
{
    if (text.empty()) {
        return std::string();
    }
    // OpenSSL reads a C string: an embedded NUL would silently end it early.
    if (text.size() % 2 != 0 || text.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    const std::string digits(text);
    std::string raw(text.size() / 2, '\0');
    std::size_t length = 0;
    // A refusal leaves an entry on the thread's OpenSSL error queue, where the
    // TLS code would later take it for a TLS failure; the mark drops it.
    ERR_set_mark();
    const int decoded = OPENSSL_hexstr2buf_ex(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), &length,
                                              digits.c_str(), '\0');
    ERR_pop_to_mark();
    if (decoded != 1 || length != raw.size()) {
        return std::nullopt;
    }
    return raw;
}

} // namespace ferry
