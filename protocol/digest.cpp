#include "digest.hpp"

#include <array>
#include <cstring>

namespace ferry {

namespace {

// Bumped if the saved layout ever changes; the struct size guards against a
// different OpenSSL or architecture reading it.
constexpr std::string_view kStatePrefix = "sha256-ctx-v1:";

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

} // namespace

Sha256::Sha256()
{
    SHA256_Init(&ctx_);
}

void Sha256::update(std::span<const std::byte> bytes)
{
    update(bytes.data(), bytes.size());
}

void Sha256::update(const void* data, std::size_t size)
{
    SHA256_Update(&ctx_, data, size);
}

std::string Sha256::hex_digest() const
{
    SHA256_CTX copy = ctx_;
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256_Final(digest.data(), &copy);
    return to_hex(digest);
}

std::string Sha256::save_state() const
{
    std::string saved(kStatePrefix);
    saved += std::to_string(sizeof(SHA256_CTX));
    saved += ':';
    saved += to_hex(std::span(reinterpret_cast<const unsigned char*>(&ctx_), sizeof(ctx_)));
    return saved;
}

std::optional<Sha256> Sha256::restore_state(std::string_view saved)
{
    if (!saved.starts_with(kStatePrefix)) {
        return std::nullopt;
    }
    saved.remove_prefix(kStatePrefix.size());
    const std::string expected_size = std::to_string(sizeof(SHA256_CTX)) + ":";
    if (!saved.starts_with(expected_size)) {
        return std::nullopt;
    }
    saved.remove_prefix(expected_size.size());
    if (saved.size() != 2 * sizeof(SHA256_CTX)) {
        return std::nullopt;
    }
    std::array<unsigned char, sizeof(SHA256_CTX)> raw{};
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const int high = hex_value(saved[2 * i]);
        const int low = hex_value(saved[2 * i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        raw[i] = static_cast<unsigned char>(high * 16 + low);
    }
    Sha256 restored;
    std::memcpy(&restored.ctx_, raw.data(), raw.size());
    // A context whose buffered byte count is out of range was not written by us.
    if (restored.ctx_.num >= SHA256_CBLOCK || restored.ctx_.md_len != SHA256_DIGEST_LENGTH) {
        return std::nullopt;
    }
    return restored;
}

std::string to_hex(std::span<const unsigned char> bytes)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    text.reserve(bytes.size() * 2);
    for (const unsigned char b : bytes) {
        text += kDigits[b >> 4];
        text += kDigits[b & 0x0F];
    }
    return text;
}

std::optional<std::string> from_hex(std::string_view text)
{
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    std::string raw(text.size() / 2, '\0');
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const int high = hex_value(text[2 * i]);
        const int low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        raw[i] = static_cast<char>(high * 16 + low);
    }
    return raw;
}

bool is_lower_hex(std::string_view text, std::size_t digits)
{
    if (text.size() != digits) {
        return false;
    }
    for (const char c : text) {
        if (hex_value(c) < 0) {
            return false;
        }
    }
    return true;
}

bool is_sha256_hex(std::string_view text)
{
    return is_lower_hex(text, 2 * SHA256_DIGEST_LENGTH);
}

} // namespace ferry
