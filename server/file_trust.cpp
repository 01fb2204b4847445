#include "file_trust.hpp"

#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>

namespace ferry::server {

namespace {

// The kernel's own bound on the links one lookup follows (path_resolution(7)).
constexpr int kMaxLinks = 40;

// The components of `path` in order, "" and "." left out ("a//./b": a, b).
std::deque<std::string> components_of(std::string_view path)
{
    std::deque<std::string> components;
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto slash = path.find('/', start);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        const auto component = path.substr(start, end - start);
        if (!component.empty() && component != ".") {
            components.emplace_back(component);
        }
        if (slash == std::string_view::npos) {
            break;
        }
        start = slash + 1;
    }
    return components;
}

std::string join(const std::string& folder, const std::string& name)
{
    return folder == "/" ? "/" + name : folder + "/" + name;
}

std::string parent_of(const std::string& folder)
{
    const auto slash = folder.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : folder.substr(0, slash);
}

Error unreadable_way(std::string_view what, const std::string& path, const std::string& at, int error)
{
    return Error{ErrorCode::io_error, "cannot follow the way to " + std::string(what) + " \"" + path + "\" at \"" + at +
                                          "\": " + std::strerror(error)};
}

} // namespace

bool trusted_owner(uid_t owner)
{
    return owner == 0 || owner == ::geteuid();
}

std::string mode_text(mode_t mode)
{
    char text[8];
    std::snprintf(text, sizeof text, "%03o", static_cast<unsigned>(mode & 0777));
    return text;
}

std::optional<Error> file_writers_problem(std::string_view what, const std::string& path, int fd,
                                          const struct ::stat& st)
{
    const auto refused = [&](const std::string& why) {
        return Error{ErrorCode::forbidden, std::string(what) + " \"" + path + "\" " + why};
    };
    if (!trusted_owner(st.st_uid)) {
        return refused("belongs to uid " + std::to_string(st.st_uid) +
                       ", who may rewrite it; it must belong to ferryd's user (uid " + std::to_string(::geteuid()) +
                       ") or root (chown it)");
    }
    const std::string mode = mode_text(st.st_mode);
    if ((st.st_mode & S_IWOTH) != 0) {
        return refused("has mode " + mode + ": anyone may write it (chmod o-w it)");
    }
    if ((st.st_mode & S_IWGRP) != 0) {
        const bool acl = ::fgetxattr(fd, "system.posix_acl_access", nullptr, 0) > 0;
        return refused(acl ? "has an ACL that lets users or groups other than its owner write it (mode " + mode +
                                 "), who may so change it (setfacl -b and chmod g-w it)"
                           : "has mode " + mode + ": its group may write it (chmod g-w it)");
    }
    return std::nullopt;
}

std::optional<Error> folder_writers_problem(std::string_view what, const std::string& path)
{
    if (path.empty()) {
        return Error{ErrorCode::io_error, "no path given for the " + std::string(what)};
    }
    std::deque<std::string> rest = components_of(path);
    if (path.front() != '/') {
        char cwd[PATH_MAX];
        if (::getcwd(cwd, sizeof cwd) == nullptr) {
            return unreadable_way(what, path, ".", errno);
        }
        auto from_cwd = components_of(cwd);
        rest.insert(rest.begin(), from_cwd.begin(), from_cwd.end());
    }
    const auto folder_problem = [&](const std::string& folder, const struct ::stat& st) -> std::optional<Error> {
        const auto refused = [&](const std::string& why) {
            return Error{ErrorCode::forbidden, "folder \"" + folder + "\" on the way to " + std::string(what) + " \"" +
                                                   path + "\" " + why + ", and so replace the " + std::string(what)};
        };
        if (!trusted_owner(st.st_uid)) {
            return refused("belongs to uid " + std::to_string(st.st_uid) + ", who may rename files in it");
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
            return refused("has mode " + mode_text(st.st_mode) +
                           ": others than its owner may rename files in it (chmod go-w it)");
        }
        return std::nullopt;
    };
    // `current` is always a folder reached with no link on the way (each
    // link restarts the walk with its target), so ".." is its parent.
    std::string current = "/";
    struct ::stat st {};
    if (::stat("/", &st) != 0) {
        return unreadable_way(what, path, "/", errno);
    }
    if (auto problem = folder_problem("/", st)) {
        return problem;
    }
    int links = 0;
    while (!rest.empty()) {
        const std::string name = std::move(rest.front());
        rest.pop_front();
        if (name == "..") {
            current = parent_of(current);
            continue;
        }
        const std::string next = join(current, name);
        if (::lstat(next.c_str(), &st) != 0) {
            return unreadable_way(what, path, next, errno);
        }
        if (S_ISLNK(st.st_mode)) {
            // Its folder (current) was checked; a link in a sticky folder
            // can still be replaced by its owner, who must so be trusted.
            if (!trusted_owner(st.st_uid)) {
                return Error{ErrorCode::forbidden, "symbolic link \"" + next + "\" on the way to " + std::string(what) +
                                                       " \"" + path + "\" belongs to uid " + std::to_string(st.st_uid) +
                                                       ", who may point it elsewhere"};
            }
            if (++links > kMaxLinks) {
                return unreadable_way(what, path, next, ELOOP);
            }
            char target[PATH_MAX];
            const ssize_t length = ::readlink(next.c_str(), target, sizeof target);
            if (length < 0 || static_cast<std::size_t>(length) >= sizeof target) {
                return unreadable_way(what, path, next, length < 0 ? errno : ENAMETOOLONG);
            }
            const std::string_view way(target, static_cast<std::size_t>(length));
            auto inside = components_of(way);
            rest.insert(rest.begin(), inside.begin(), inside.end());
            if (way.starts_with('/')) {
                current = "/";
            }
            continue;
        }
        if (rest.empty()) {
            return std::nullopt; // the file itself: file_writers_problem's
        }
        if (!S_ISDIR(st.st_mode)) {
            return unreadable_way(what, path, next, ENOTDIR);
        }
        if (auto problem = folder_problem(next, st)) {
            return problem;
        }
        current = next;
    }
    return std::nullopt;
}

std::optional<Error> writers_problem(std::string_view what, const std::string& path, int fd, const struct ::stat& st)
{
    if (auto problem = file_writers_problem(what, path, fd, st)) {
        return problem;
    }
    return folder_writers_problem(what, path);
}

} // namespace ferry::server
