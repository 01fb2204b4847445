#include "digest.hpp"

#include <array>
#include <cstring>

namespace ferry {

namespace {

// Bumped if the saved layout ever changes; the struct size guards against a
// different OpenSSL or architecture reading it.
constexpr std::string_view kStatePrefix = "sha256-ctx-v1:";

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
    // Saved states are written in lowercase; anything else was not written by us.
    if (!is_lower_hex(saved, 2 * sizeof(SHA256_CTX))) {
        return std::nullopt;
    }
    const auto raw = from_hex(saved);
    if (!raw || raw->size() != sizeof(SHA256_CTX)) {
        return std::nullopt;
    }
    Sha256 restored;
    std::memcpy(&restored.ctx_, raw->data(), raw->size());
    // A context whose buffered byte count is out of range was not written by us.
    if (restored.ctx_.num >= SHA256_CBLOCK || restored.ctx_.md_len != SHA256_DIGEST_LENGTH) {
        return std::nullopt;
    }
    return restored;
}

bool is_lower_hex(std::string_view text, std::size_t digits)
{
    return text.size() == digits && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool is_sha256_hex(std::string_view text)
{
    return is_lower_hex(text, 2 * SHA256_DIGEST_LENGTH);
}

} // namespace ferry
