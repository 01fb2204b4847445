#include "local_wildcards.hpp"

#include "local_files.hpp"
#include "remote_paths.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace ferry::client {

namespace {

// glob_t freed on every path out (globfree(3)).
class GlobMatches {
public:
    GlobMatches() = default;
    GlobMatches(const GlobMatches&) = delete;
    GlobMatches& operator=(const GlobMatches&) = delete;
    ~GlobMatches() { ::globfree(&matches_); }
    glob_t* get() { return &matches_; }

private:
    glob_t matches_{};
};

// The first unreadable folder glob(3) met, for its error: errfunc is the
// only place that knows which and why (a C callback, hence not a value).
thread_local std::string g_unreadable;

int note_unreadable(const char* path, int error)
{
    if (error == ENOENT || error == ENOTDIR) {
        return 0; // a pattern's folder that is not there matches nothing, as in sh
    }
    g_unreadable = std::string(path) + ": " + std::strerror(error);
    return 1; // stop: matches with a folder left out are not what was asked
}

Error no_match(const std::string& pattern)
{
    return Error{ErrorCode::local_io, "no match for '" + pattern + "' on this machine"};
}

} // namespace

Result<std::vector<std::string>> expand_local_wildcards(const std::vector<std::string>& typed)
{
    std::vector<std::string> expanded;
    for (const std::string& word : typed) {
        if (!has_wildcard(word)) {
            expanded.push_back(unescape_wildcards(word));
            continue;
        }
        // The shell's quotes are gone by now ('[x]' and [x] read alike), so
        // a word that names a file as typed is that file: put '[x]' sends
        // "[x]", never the "x" its pattern would match instead.
        if (struct stat st{}; ::lstat(word.c_str(), &st) == 0) {
            expanded.push_back(word);
            continue;
        }
        GlobMatches matches;
        g_unreadable.clear();
        const int result = ::glob(word.c_str(), 0, note_unreadable, matches.get());
        if (result == GLOB_NOMATCH) {
            return no_match(word);
        }
        if (result == GLOB_ABORTED) {
            return Error{ErrorCode::local_io, "cannot expand '" + word + "': cannot read " + g_unreadable};
        }
        if (result != 0) { // GLOB_NOSPACE
            return Error{ErrorCode::local_io, "cannot expand '" + word + "': out of memory"};
        }
        std::size_t taken = 0;
        for (std::size_t i = 0; i < matches.get()->gl_pathc; ++i) {
            const std::string match = matches.get()->gl_pathv[i];
            // ".*" matches "." and "..", which name no file of the folder
            // (put -r .* would send the folder and its parent): left out,
            // as bash 5.2's globskipdots and zsh leave them.
            if (const std::string last = base_name(match); last == "." || last == "..") {
                continue;
            }
            // A match is a file's name, never an option or put's "-"
            // (standard input): "-" and "-x" go as "./-" and "./-x".
            expanded.push_back(match.starts_with('-') ? "./" + match : match);
            ++taken;
        }
        if (taken == 0) {
            return no_match(word);
        }
    }
    return expanded;
}

} // namespace ferry::client
