#include "access.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <optional>
#include <sstream>

namespace ferry::server {

namespace {

constexpr std::size_t kMinTokenLength = 16;

std::array<unsigned char, 32> digest_of(std::string_view token)
{
    std::array<unsigned char, 32> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
    return digest;
}

} // namespace

std::string_view to_string(Access access)
{
    return access == Access::read_only ? "ro" : "rw";
}

Result<AccessList> AccessList::parse(std::string_view text)
{
    AccessList list;
    std::istringstream lines{std::string(text)};
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
        ++number;
        std::istringstream words(line);
        std::string token;
        std::string mode;
        std::string extra;
        if (!(words >> token) || token.front() == '#') {
            continue;
        }
        words >> mode >> extra;
        const auto bad = [&](const std::string& why) {
            return Error{ErrorCode::bad_request, "token file line " + std::to_string(number) + ": " + why};
        };
        if (mode != "rw" && mode != "ro") {
            return bad("expected \"TOKEN rw\" or \"TOKEN ro\"");
        }
        if (!extra.empty() && extra.front() != '#') {
            return bad("unexpected \"" + extra + "\" after the access mode");
        }
        if (token.size() < kMinTokenLength) {
            return bad("a token needs at least " + std::to_string(kMinTokenLength) + " characters");
        }
        list.entries_.push_back(Entry{digest_of(token), mode == "ro" ? Access::read_only : Access::read_write});
    }
    if (list.entries_.empty()) {
        return Error{ErrorCode::bad_request, "the token file holds no token"};
    }
    return list;
}

Result<AccessList> AccessList::load(const std::string& path)
{
    std::ifstream file(path);
    if (!file) {
        return Error{ErrorCode::io_error, "cannot read token file \"" + path + "\""};
    }
    std::ostringstream text;
    text << file.rdbuf();
    return parse(text.str());
}

std::optional<Access> AccessList::check(std::string_view token) const
{
    const auto digest = digest_of(token);
    std::optional<Access> granted;
    for (const auto& entry : entries_) {
        if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) {
            granted = entry.access; // no early exit: every entry costs the same
        }
    }
    return granted;
}

} // namespace ferry::server
