#include "access.hpp"

#include "file_trust.hpp"

#include "operator_file.hpp"
#include "posix_io.hpp"

#include <utf8proc.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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

std::string code_point_text(utf8proc_int32_t code_point)
{
    char text[16];
    std::snprintf(text, sizeof text, "U+%04X", static_cast<unsigned>(code_point));
    return text;
}

// A line is UTF-8 text (PROTOCOL.md 4.1): a token is compared with the one
// in a hello, which JSON carries as UTF-8, so a line that is not could never
// match. NUL is valid UTF-8 yet no text editor's character.
std::optional<std::string> text_problem(std::string_view line)
{
    for (std::size_t at = 0; at < line.size();) {
        utf8proc_int32_t code_point = 0;
        const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(line.data() + at),
                                             static_cast<utf8proc_ssize_t>(line.size() - at), &code_point);
        if (length <= 0 || code_point < 0) {
            return "byte " + std::to_string(at + 1) + " is not UTF-8 (the file must be UTF-8 text)";
        }
        if (code_point == 0) {
            return "byte " + std::to_string(at + 1) + " is a NUL character (U+0000)";
        }
        // Words are separated by spaces and tabs; a line may end in CR
        // (CRLF). Any other control (VT and FF split words as well, ESC
        // rewrites a terminal) is refused wherever it stands.
        const bool final_cr = code_point == '\r' && at + 1 == line.size();
        if (code_point != '\t' && !final_cr && utf8proc_category(code_point) == UTF8PROC_CATEGORY_CC) {
            return "byte " + std::to_string(at + 1) + " is the control character " + code_point_text(code_point) +
                   " (words are separated by spaces or tabs)";
        }
        at += static_cast<std::size_t>(length);
    }
    return std::nullopt;
}

// Why a Unicode general category may not be in a token, or nothing: a token
// is visible text (letters, marks, digits, punctuation, symbols), so that
// what an operator sees in the file is the whole token. Spaces of every
// kind (U+00A0 too) and controls would be invisible or split it; format
// characters (U+200B, U+FEFF, bidirectional controls) are invisible;
// surrogates, private use and unassigned code points have no agreed look.
std::optional<std::string_view> refused_category(utf8proc_category_t category)
{
    switch (category) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return "a space or separator";
    case UTF8PROC_CATEGORY_CC:
        return "a control character";
    case UTF8PROC_CATEGORY_CF:
        return "an invisible format character";
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return "a surrogate or private-use code point";
    case UTF8PROC_CATEGORY_CN:
        return "a code point Unicode leaves unassigned";
    default:
        break;
    }
    return std::nullopt;
}

// The length of a token in characters (Unicode code points), as the
// documents count it; the token is valid UTF-8 by then (text_problem).
std::size_t character_count(std::string_view token)
{
    return static_cast<std::size_t>(std::count_if(
        token.begin(), token.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Why `token` (valid UTF-8) is not one, without echoing it: a token in the
// log would be a token leaked.
std::optional<std::string> token_problem(std::string_view token)
{
    std::size_t position = 0;
    for (std::size_t at = 0; at < token.size();) {
        utf8proc_int32_t code_point = 0;
        at += static_cast<std::size_t>(utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(token.data() + at),
                                                        static_cast<utf8proc_ssize_t>(token.size() - at),
                                                        &code_point));
        ++position;
        if (const auto why = refused_category(utf8proc_category(code_point))) {
            return "a token holds only visible characters (letters, marks, digits, punctuation, symbols): its "
                   "character " + std::to_string(position) + " is " + code_point_text(code_point) + ", " +
                   std::string(*why);
        }
    }
    if (position < kMinTokenLength) {
        return "a token needs at least " + std::to_string(kMinTokenLength) + " characters; this one has " +
               std::to_string(position);
    }
    return std::nullopt;
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
    return character_count(token) >= kMinTokenLength && is_mode(mode) && (extra.empty() || extra.front() == '#');
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
    // Editors on Windows may begin UTF-8 with a byte order mark; it would
    // become the first token's first character, a token no client sends.
    if (text.starts_with("\xEF\xBB\xBF")) {
        return Error{ErrorCode::bad_request, "token file line 1 begins with a byte order mark (U+FEFF): save the "
                                             "file as UTF-8 without one"};
    }
    std::istringstream lines{std::string(text)};
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
        ++number;
        if (const auto why = text_problem(line)) {
            return Error{ErrorCode::bad_request, "token file line " + std::to_string(number) + ": " + *why};
        }
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
        if (const auto why = token_problem(token)) {
            return bad(*why);
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
    auto opened = open_operator_file(path, O_RDONLY, "token file");
    if (!opened) {
        return opened.error();
    }
    const int fd = opened->fd;
    const struct ::stat& st = opened->st;
    // Whoever may change the file may grant themselves access (file_trust.hpp).
    if (auto problem = writers_problem("token file", path, fd, st)) {
        ::close(fd);
        return *problem;
    }
    auto text = read_to_end(fd, path, "token file");
    ::close(fd);
    if (!text) {
        return text.error();
    }
    auto list = parse(*text);
    // Reading is a leak, not a grant: a warning, as the file may be meant
    // for a group (a service's and a backup's user). With an ACL, the group
    // bits are its mask.
    if (list && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
        list->warnings_.insert(list->warnings_.begin(),
                               "token file \"" + path + "\" has mode " + mode_text(st.st_mode) +
                                   ": users other than its owner may read it and learn the tokens (chmod 600 it)");
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
