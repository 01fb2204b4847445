// Whether a file an operator names (--token-file, --config, --tls-key,
// --log-file) could have been written, or could be replaced, by someone
// other than ferryd's user and root: whoever can do either decides who gets
// access (a token file), what ferryd serves and how (a config file), who
// ferryd is to its clients (a TLS key), or what its log says.
//
// The rule is sshd's StrictModes (sshd_config(5); secure_filename in
// OpenSSH's auth.c): the file and every folder on the way to it belong to
// ferryd's user or root; the file may be written by its owner only, and a
// folder by its owner only unless it is sticky (/tmp: others may add names
// there, not rename or remove ours). The way is the path as given, each
// symbolic link on it followed and the folder that holds the link checked
// too: a link in a folder others may write can be pointed anywhere (round
// 76, F3). With a POSIX ACL, the group bits are the ACL's mask, the most
// any named user or group gets, so the same test covers ACL entries.
#pragma once

#include "error.hpp"

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

namespace ferry::server {

// Root's and ferryd's own user's: the owners a file an operator names may have.
bool trusted_owner(uid_t owner);

// The file itself (opened as `fd`, its stat `st`): a forbidden Error naming
// `what` ("token file") at `path`, its owner or mode and the way out
// (chown, chmod), when its owner is not trusted or others may write it.
std::optional<Error> file_writers_problem(std::string_view what, const std::string& path, int fd,
                                          const struct ::stat& st);

// Every folder on the way to `path` (see above): a forbidden Error naming
// the folder, or io_error where the way cannot be read (a missing folder, a
// loop of links).
std::optional<Error> folder_writers_problem(std::string_view what, const std::string& path);

// Both of the above: the file, then the folders on its way.
std::optional<Error> writers_problem(std::string_view what, const std::string& path, int fd, const struct ::stat& st);

// "640": the permission bits of a mode, as chmod takes them.
std::string mode_text(mode_t mode);

} // namespace ferry::server
