#include "remote_paths.hpp"

#include "names.hpp"
#include "shell_words.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace ferry::client {

namespace {

std::vector<std::string_view> components_of(std::string_view path)
{
    std::vector<std::string_view> parts;
    std::size_t at = 0;
    while (at <= path.size()) {
        auto end = path.find('/', at);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        if (end > at) {
            parts.push_back(path.substr(at, end - at));
        }
        at = end + 1;
    }
    return parts;
}

bool is_wildcard_char(char c)
{
    return c == '*' || c == '?' || c == '[';
}

std::string joined(const std::vector<std::string_view>& parts)
{
    std::string path;
    for (const auto part : parts) {
        path += (path.empty() ? "" : "/") + std::string(part);
    }
    return path;
}

// `typed` settled against `escaped_current` (views into both): the
// components left, and each typed folder a '..' climbed out of.
struct Settled {
    std::vector<std::string_view> parts;
    std::vector<std::string> climbed;
};

Result<Settled> settle(std::string_view escaped_current, std::string_view typed)
{
    Settled settled;
    if (!typed.starts_with('/')) {
        settled.parts = components_of(escaped_current);
    }
    // The current folder's components were folders when cd checked them;
    // only what the user typed now is taken on trust by a '..'. The first
    // `from_current` parts are current's ("../f/.." climbs out of one, then
    // out of the typed f).
    std::size_t from_current = settled.parts.size();
    for (const auto part : components_of(typed)) {
        if (part == ".") {
            continue;
        }
        if (part == "..") {
            if (settled.parts.empty()) {
                return Error{ErrorCode::invalid_name,
                             "\"" + std::string(typed) + "\" climbs above the server's root"};
            }
            if (settled.parts.size() > from_current) {
                std::string left = joined(settled.parts);
                // "a/b/../..": a/b being a folder, so is a.
                const bool below_last = !settled.climbed.empty() && settled.climbed.back().starts_with(left + "/");
                if (!below_last) {
                    settled.climbed.push_back(std::move(left));
                }
            } else {
                --from_current;
            }
            settled.parts.pop_back();
            continue;
        }
        settled.parts.push_back(part);
    }
    return settled;
}

} // namespace

bool typed_as_folder(std::string_view typed)
{
    return typed.ends_with('/') || typed.ends_with("/.") || typed.ends_with("/..") || typed == "." || typed == "..";
}

std::string_view last_typed_component(std::string_view typed)
{
    while (typed.size() > 1 && typed.ends_with('/')) {
        typed.remove_suffix(1);
    }
    const auto slash = typed.rfind('/');
    return slash == std::string_view::npos || typed.size() == 1 ? typed : typed.substr(slash + 1);
}

bool climbs_out(std::string_view typed)
{
    const auto parts = components_of(typed);
    return std::find(parts.begin(), parts.end(), "..") != parts.end();
}

std::string tidied_typed_path(std::string_view typed)
{
    auto parts = components_of(typed);
    std::erase(parts, ".");
    return unescape_wildcards((typed.starts_with('/') ? "/" : "") + joined(parts));
}

bool ends_in_dot_or_dot_dot(std::string_view typed)
{
    const std::string_view last = last_typed_component(typed);
    return last == "." || last == "..";
}

Result<std::string> resolve_remote_path(std::string_view current, std::string_view typed)
{
    // The current folder's names are real ones: escaped, they stay
    // themselves when the result is expanded or unescaped.
    const std::string escaped_current = escape_wildcards(current);
    auto settled = settle(escaped_current, typed);
    if (!settled) {
        return settled.error();
    }
    return joined(settled->parts);
}

Result<std::vector<std::string>> climbed_folders(std::string_view current, std::string_view typed)
{
    const std::string escaped_current = escape_wildcards(current);
    auto settled = settle(escaped_current, typed);
    if (!settled) {
        return settled.error();
    }
    return std::move(settled->climbed);
}

Result<std::string> settle_remote_folder(std::string_view current, std::string_view typed)
{
    auto path = resolve_remote_path(current, typed);
    if (!path) {
        return path.error();
    }
    std::string folder = unescape_wildcards(path.value());
    if (folder.empty()) {
        return folder; // the root, which has no name to check
    }
    if (auto bad = check_path(folder)) {
        return Error{bad->code, "\"" + printable(folder) + "\": " + bad->message};
    }
    return folder;
}

std::string join_remote(std::string_view folder, std::string_view name)
{
    if (folder.empty()) {
        return std::string(name);
    }
    if (name.empty()) {
        return std::string(folder);
    }
    return std::string(folder) + "/" + std::string(name);
}

std::string remote_parent(std::string_view path)
{
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

std::string remote_base_name(std::string_view path)
{
    const auto slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool has_wildcard(std::string_view path)
{
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '\\') {
            ++i; // the next character is itself
        } else if (is_wildcard_char(path[i])) {
            return true;
        }
    }
    return false;
}

std::string escape_wildcards(std::string_view name)
{
    std::string escaped;
    for (const char c : name) {
        if (is_wildcard_char(c) || c == ']' || c == '\\') {
            escaped += '\\';
        }
        escaped += c;
    }
    return escaped;
}

std::string unescape_wildcards(std::string_view path)
{
    std::string plain;
    for (std::size_t i = 0; i < path.size(); ++i) {
        // Only the escapes of wildcard characters: any other backslash stays,
        // for the name rule to refuse it as typed.
        if (path[i] == '\\' && i + 1 < path.size() &&
            (is_wildcard_char(path[i + 1]) || path[i + 1] == ']' || path[i + 1] == '\\')) {
            ++i;
        }
        plain += path[i];
    }
    return plain;
}

WildcardSplit split_wildcard(std::string_view path)
{
    const auto parts = components_of(path);
    WildcardSplit split;
    std::size_t first = 0;
    while (first < parts.size() && !has_wildcard(parts[first])) {
        split.folder = join_remote(split.folder, unescape_wildcards(parts[first]));
        ++first;
    }
    for (std::size_t i = first; i < parts.size(); ++i) {
        split.pattern = join_remote(split.pattern, parts[i]);
    }
    split.recursive = parts.size() > first + 1;
    return split;
}

bool wildcard_match(std::string_view pattern, std::string_view relative)
{
    return ::fnmatch(std::string(pattern).c_str(), std::string(relative).c_str(), FNM_PATHNAME) == 0;
}

Result<std::vector<FileInfo>> expand_remote(std::string_view path, std::string_view typed, const FolderLister& list)
{
    if (!has_wildcard(path)) {
        FileInfo itself;
        itself.name = unescape_wildcards(path);
        return std::vector<FileInfo>{itself};
    }
    const WildcardSplit split = split_wildcard(path);
    auto listed = list(split.folder, split.recursive);
    if (!listed) {
        return listed.error();
    }
    const bool folders_only = typed_as_folder(typed);
    // The pattern read as a plain name, for the hint below: report[1].txt
    // is a pattern that matches report1.txt, never a file of that name.
    const std::string literal = unescape_wildcards(split.pattern);
    bool literal_listed = false;
    std::vector<FileInfo> matches;
    for (auto& entry : listed.value()) {
        if (folders_only && entry.type != EntryType::folder) {
            continue;
        }
        literal_listed = literal_listed || entry.name == literal;
        if (wildcard_match(split.pattern, entry.name)) {
            entry.name = join_remote(split.folder, entry.name);
            matches.push_back(std::move(entry));
        }
    }
    if (matches.empty()) {
        std::string message = "no match for '" + std::string(typed) + "'";
        if (literal_listed) {
            // A name just put there with --as, or listed by ls, as typed:
            // the word that names it, single-quoted so that a shell (ours or
            // a POSIX one) leaves its backslashes to the pattern (attack
            // round 73: unquoted, the shell took them first).
            message += " (\"" + printable(join_remote(split.folder, literal)) + "\" is there: * ? [ make a pattern; " +
                       single_quoted(escape_wildcards(unescape_wildcards(typed))) + " names that very one)";
        }
        return Error{ErrorCode::not_found, std::move(message)};
    }
    std::sort(matches.begin(), matches.end(), [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
    return matches;
}

} // namespace ferry::client
