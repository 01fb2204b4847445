#include "access.hpp"

#include "posix_io.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::server {

namespace {

constexpr std::size_t kMinTokenLength = 16;
constexpr std::size_t kMaxLabelLength = 64;

// How many characters in a row a label may share with a token: fewer than
// any token's minimum length, and a run a reader would notice.
constexpr std::size_t kLabelTokenOverlap = 8;

// Whether `a` and `b` have a common run of `run` characters.
bool shares_run(const std::string& a, const std::string& b, std::size_t run)
{
    if (a.size() < run || b.size() < run) {
        return false;
    }
    for (std::size_t at = 0; at + run <= a.size(); ++at) {
        if (b.find(std::string_view(a).substr(at, run)) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// A label goes into log lines as one plain word (text and JSON alike).
bool is_label(const std::string& word)
{
    return !word.empty() && word.size() <= kMaxLabelLength &&
           std::all_of(word.begin(), word.end(), [](unsigned char c) {
               return std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_' || c == '@';
           });
}

std::array<unsigned char, 32> digest_of(std::string_view token)
{
    std::array<unsigned char, 32> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
    return digest;
}

bool is_mode(const std::string& word)
{
    return word == "rw" || word == "ro";
}

// "#0123456789abcdef rw" is a comment by the rules, but most likely meant
// as a token: its holder would be refused with no word why.
bool reads_like_hashed_token(const std::string& comment)
{
    std::istringstream words(comment);
    std::string token;
    std::string mode;
    std::string extra;
    words >> token >> mode >> extra;
    if (is_label(extra)) {
        words >> extra;
        if (!words) {
            extra.clear();
        }
    }
    return token.size() >= kMinTokenLength && is_mode(mode) && (extra.empty() || extra.front() == '#');
}

} // namespace

std::string_view to_string(Access access)
{
    return access == Access::read_only ? "ro" : "rw";
}

Result<AccessList> AccessList::parse(std::string_view text)
{
    AccessList list;
    // The tokens in plain text, only while parsing: a label must share no
    // part of one (below). The list itself keeps digests only.
    std::vector<std::pair<std::string, int>> tokens_seen;
    std::istringstream lines{std::string(text)};
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
        ++number;
        std::istringstream words(line);
        std::string token;
        std::string mode;
        std::string label;
        std::string extra;
        if (!(words >> token)) {
            continue;
        }
        const auto where = "token file line " + std::to_string(number);
        if (token.front() == '#') {
            if (reads_like_hashed_token(line)) {
                list.warnings_.push_back(where +
                                         " is a comment, yet reads like the entry of a token beginning with '#': "
                                         "tokens may not begin with '#' (write \"# \" to comment an entry out)");
            }
            continue;
        }
        words >> mode >> label;
        const auto bad = [&](const std::string& why) { return Error{ErrorCode::bad_request, where + ": " + why}; };
        if (!is_mode(mode)) {
            return bad("expected \"TOKEN rw\" or \"TOKEN ro\", optionally followed by a label");
        }
        if (!label.empty() && label.front() == '#') {
            label.clear(); // a comment, no label
        } else if (!label.empty()) {
            if (!is_label(label)) {
                // The word is not echoed: a token pasted in the wrong place must not reach the log.
                return bad("a label is one word of at most " + std::to_string(kMaxLabelLength) +
                           " letters, digits, '.', '-', '_' or '@'");
            }
            words >> extra;
        }
        if (!extra.empty() && extra.front() != '#') {
            return bad("unexpected text after the label (a comment begins with \"#\")");
        }
        if (token.size() < kMinTokenLength) {
            return bad("a token needs at least " + std::to_string(kMinTokenLength) + " characters");
        }
        const auto digest = digest_of(token);
        for (const auto& entry : list.entries_) {
            if (entry.digest == digest) {
                return bad("the same token as on line " + std::to_string(entry.line) +
                           " (each token is listed once, with one access)");
            }
        }
        tokens_seen.emplace_back(token, number);
        list.entries_.push_back(
            Entry{digest, mode == "ro" ? Access::read_only : Access::read_write, std::move(label), number});
    }
    if (list.entries_.empty()) {
        return Error{ErrorCode::bad_request, "the token file holds no token"};
    }
    // A label is logged; no part of a token may be. A label holding a token
    // (pasted with a suffix), a token's long prefix, or any run of
    // kLabelTokenOverlap characters of one is refused, so the log never
    // carries enough of a token to shorten a guess at it.
    for (const auto& entry : list.entries_) {
        for (const auto& [token, line] : tokens_seen) {
            if (shares_run(entry.label, token, kLabelTokenOverlap)) {
                return Error{ErrorCode::bad_request, "token file line " + std::to_string(entry.line) +
                                                         ": the label repeats part of the token of line " +
                                                         std::to_string(line) +
                                                         " (labels are logged, tokens never are)"};
            }
        }
    }
    return list;
}

Result<AccessList> AccessList::load(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return Error{ErrorCode::io_error, "cannot read token file \"" + path + "\": " + std::strerror(errno)};
    }
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Error{ErrorCode::io_error, "token file \"" + path + "\" is not a regular file"};
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    // Anyone who may write the file may grant themselves access.
    if ((st.st_mode & S_IWOTH) != 0) {
        ::close(fd);
        return Error{ErrorCode::forbidden, "token file \"" + path + "\" has mode " + mode +
                                               ": anyone may write it and so grant themselves access "
                                               "(chmod 600 it)"};
    }
    std::string text;
    std::array<char, 4096> buffer;
    for (;;) {
        const auto got = sys::read_full(fd, std::span(buffer));
        if (!got.ok()) {
            ::close(fd);
            return Error{ErrorCode::io_error, "cannot read token file \"" + path + "\": " + std::strerror(got.error)};
        }
        text.append(buffer.data(), got.done);
        if (got.done < buffer.size()) {
            break;
        }
    }
    ::close(fd);
    auto list = parse(text);
    if (list && (st.st_mode & (S_IRWXG | S_IROTH | S_IXOTH)) != 0) {
        list->warnings_.insert(list->warnings_.begin(), "token file \"" + path + "\" has mode " + mode +
                                                            ": others than its owner may read the tokens "
                                                            "(chmod 600 it)");
    }
    return list;
}

std::optional<Access> AccessList::check(std::string_view token) const
{
    const auto granted = grant(token);
    return granted ? std::optional<Access>(granted->access) : std::nullopt;
}

std::optional<Grant> AccessList::grant(std::string_view token) const
{
    const auto digest = digest_of(token);
    const Entry* found = nullptr;
    for (const auto& entry : entries_) {
        if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) {
            found = &entry; // no early exit: every entry costs the same
        }
    }
    if (found == nullptr) {
        return std::nullopt;
    }
    return Grant{found->access, found->label};
}

TokenTable::TokenTable(std::string path, AccessList list)
    : path_(std::move(path)), current_(std::make_shared<const AccessList>(std::move(list)))
{
}

Result<std::shared_ptr<const AccessList>> TokenTable::reload()
{
    auto list = AccessList::load(path_);
    if (!list) {
        return list.error();
    }
    auto fresh = std::make_shared<const AccessList>(std::move(list.value()));
    current_.store(fresh);
    return fresh;
}

} // namespace ferry::server
