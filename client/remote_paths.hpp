// Paths on the server as the user types them: the shell's remote current
// folder, '.' and '..' settled here (the server never sees them: a path on
// the wire has only plain components, PROTOCOL.md 5), and wildcards (*, ?
// and [...], fnmatch(3) with FNM_PATHNAME) expanded against the server's
// listing. Pure: listing goes through a function the caller gives, so the
// expansion is tested against a made-up listing.
#pragma once

#include "messages.hpp"
#include "status.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// `typed` made a path from the server's root ("" is the root itself):
// relative to `current`, or from the root when it starts with '/';
// repeated and trailing slashes are dropped, '.' is skipped and '..' takes
// back the component before it. A '..' above the root is invalid_name: the
// server's root is as far up as ferry goes.
// `current` is a real path (its names as they are, as cd keeps it); the
// result is a path as typed, wildcards live: current's part comes back with
// its wildcard characters escaped, so a folder named "d?r" is that folder
// and never a pattern matching "dar". Callers expand the result, or undo
// its escapes with unescape_wildcards, before it names anything.
Result<std::string> resolve_remote_path(std::string_view current, std::string_view typed);

// The folders, from the root and wildcards live as in resolve_remote_path,
// that a '..' in `typed` climbs out of and that the user typed: "f/../d"
// in "ab" gives "ab/f"; of "a/b/../.." only "a/b" (a folder's parent is
// one); "../x" gives none (the current folder was checked by cd). POSIX.1-2017
// 4.13 resolves "f/.." only when f is a folder, so each of these must be
// one before the path names anything (resolve_remote_path_checked, commands.hpp).
// Refused as resolve_remote_path refuses.
Result<std::vector<std::string>> climbed_folders(std::string_view current, std::string_view typed);

// A folder as typed where no wildcard is expanded (sync's :REMOTE_DIR, in
// the shell and on the command line alike): settled as resolve_remote_path
// settles it, so '..' means there what it means to ls and get, its
// wildcard escapes undone, and held to the name rule (the root's "" passes).
// Refused: invalid_name, for a '..' above the root or a name the rule refuses.
Result<std::string> settle_remote_folder(std::string_view current, std::string_view typed);

// Whether `typed` (a path as the user typed it, on the server or on this
// machine) names a folder by its spelling alone: it ends in '/' or '/.',
// or is '.', '..' or ends in '/..'. POSIX.1-2017 4.13 (pathname
// resolution): a path with a trailing slash resolves only to a folder, so
// "f/" of a file is an error (ENOTDIR), never the file f. resolve_remote_path
// drops the slash; the commands keep this rule with it.
bool typed_as_folder(std::string_view typed);

// Whether the last component of `typed` (trailing slashes aside) is '.' or
// '..' ("d/..", "./"). POSIX rm refuses such an operand (the rm utility,
// POSIX.1-2017: "If either of the files dot or dot-dot are specified as
// the basename portion of an operand ... do nothing more with such
// operands"), and rename(2) such a source (EINVAL, EBUSY): a folder is
// removed or moved by its own name, never by a way up to it.
bool ends_in_dot_or_dot_dot(std::string_view typed);
// The last component of `typed`, trailing slashes aside ("d/../" -> "..",
// "a/b" -> "b", "/" -> "/").
std::string_view last_typed_component(std::string_view typed);
// Whether `typed` has a '..' component ("d/../f", "..", "../x/").
bool climbs_out(std::string_view typed);
// `typed` as an error names a path the user typed with '..' (named_as_typed,
// commands.hpp): its '..' kept, its empty and "." components dropped as they
// are from a path without one ("./a/..//b/." -> "a/../b"; "/a/../b" keeps
// its '/'), its wildcard escapes undone ("m\\[1]" names the file "m[1]").
std::string tidied_typed_path(std::string_view typed);

// "a/b" and "c" -> "a/b/c"; "" (the root) and "c" -> "c".
std::string join_remote(std::string_view folder, std::string_view name);
// The folder holding `path` ("a/b/c" -> "a/b", "c" -> "").
std::string remote_parent(std::string_view path);
// The last component ("a/b/c" -> "c").
std::string remote_base_name(std::string_view path);

// Whether `path` holds a wildcard that is not escaped by a backslash.
bool has_wildcard(std::string_view path);
// `name` (a real name or path) as typed: each wildcard character and
// backslash escaped ("m[1]" -> "m\[1]"), so that expanding it names
// `name` alone. unescape_wildcards undoes it.
std::string escape_wildcards(std::string_view name);
// A path without wildcards, its backslash escapes of the wildcard characters
// (and of a backslash) undone: "a\*b" -> "a*b", so a name that holds a
// wildcard character is typed that way. Another backslash is left, for the
// name rule to refuse.
std::string unescape_wildcards(std::string_view path);

// Where a pattern is matched: the folder named by its components before the
// first one holding a wildcard, the rest (matched against paths relative to
// that folder), and whether the rest spans several components (then the
// folder's listing must be recursive).
struct WildcardSplit {
    std::string folder;
    std::string pattern;
    bool recursive = false;
};
WildcardSplit split_wildcard(std::string_view path);

// Whether `relative` (a path below the pattern's folder) matches `pattern`:
// fnmatch(3) with FNM_PATHNAME, so '*' and '?' never match a '/'.
bool wildcard_match(std::string_view pattern, std::string_view relative);

// Lists `folder` (a path from the root), recursively when asked: entries
// named by their paths relative to `folder` (list's reply).
using FolderLister = std::function<Result<std::vector<FileInfo>>(const std::string& folder, bool recursive)>;

// The paths `path` (resolved, from the root) names, each with what the
// listing said of it and `name` the path from the root: `path` itself when
// it holds no wildcard (escapes undone; not looked up, so only its name is
// set), else every entry of the listing that matches, sorted; of a
// pattern typed as a folder ("logs*/", typed_as_folder), only the folders,
// as a shell's glob "*/" matches folders alone. No match is not_found
// "no match for 'TYPED'" (`typed`: the argument as the user gave it).
Result<std::vector<FileInfo>> expand_remote(std::string_view path, std::string_view typed, const FolderLister& list);

} // namespace ferry::client
