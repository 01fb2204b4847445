#include "partial_names.hpp"

#include "digest.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace ferry::server {

namespace {

constexpr std::string_view kLegacyLockPrefix = "name-";

constexpr std::array<std::pair<std::string_view, PartialFile>, 4> kSuffixes{{
    {"", PartialFile::data},
    {".state", PartialFile::state},
    {".state.tmp", PartialFile::spare},
    {".publish", PartialFile::record},
}};

bool is_token(std::string_view text)
{
    return text.size() == kTokenLength && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

} // namespace

std::string partial_entry(std::string_view token, PartialFile file)
{
    std::string entry = std::string(kPartialPrefix) + std::string(token);
    for (const auto& [suffix, kind] : kSuffixes) {
        if (kind == file) {
            entry += suffix;
        }
    }
    return entry;
}

std::string publish_record_key(std::string_view path)
{
    // Domain-separated from upload tokens (size and path), so that no
    // record's name is ever an upload's.
    const std::string key = "ferry publish record\n" + std::string(path);
    Sha256 hash;
    hash.update(key.data(), key.size());
    return hash.hex_digest().substr(0, kTokenLength);
}

std::optional<PartialEntry> parse_partial_entry(std::string_view entry)
{
    if (!entry.starts_with(kPartialPrefix)) {
        return std::nullopt;
    }
    const std::string_view rest = entry.substr(kPartialPrefix.size());
    if (rest.starts_with(kLegacyLockPrefix) && is_token(rest.substr(kLegacyLockPrefix.size()))) {
        return PartialEntry{std::string(rest), PartialFile::data};
    }
    if (rest.size() < kTokenLength || !is_token(rest.substr(0, kTokenLength))) {
        return std::nullopt;
    }
    const std::string_view suffix = rest.substr(kTokenLength);
    for (const auto& [known, kind] : kSuffixes) {
        if (suffix == known) {
            return PartialEntry{std::string(rest.substr(0, kTokenLength)), kind};
        }
    }
    return std::nullopt;
}

} // namespace ferry::server
