// POSIX access ACLs (acl(5)) in the form the kernel keeps them as the
// value of the extended attribute system.posix_acl_access, for the tests of
// sys/posix_acl and of the transfers that keep a replaced file's ACL.
#pragma once

#include <sys/types.h>
#include <sys/xattr.h>

#include <cstdint>
#include <string>

namespace ferry::test {

// An access ACL for a file of mode 0644 that denies `uid` everything:
// user::rw- user:UID:--- group::r-- mask::r-- other::r--.
inline std::string deny_acl(std::uint32_t uid)
{
    std::string value;
    const auto put32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            value += static_cast<char>((v >> (8 * i)) & 0xffU);
        }
    };
    const auto entry = [&](std::uint32_t tag, std::uint32_t perm, std::uint32_t id) {
        put32(tag | (perm << 16));
        put32(id);
    };
    put32(2); // the format's version
    entry(0x01, 6, 0xffffffff);
    entry(0x02, 0, uid);
    entry(0x04, 4, 0xffffffff);
    entry(0x10, 4, 0xffffffff);
    entry(0x20, 4, 0xffffffff);
    return value;
}

// The access ACL of `path` (never through a link), empty when it has none.
inline std::string acl_of(const std::string& path)
{
    char buffer[1024];
    const ssize_t got = ::lgetxattr(path.c_str(), "system.posix_acl_access", buffer, sizeof buffer);
    return got < 0 ? std::string() : std::string(buffer, static_cast<std::size_t>(got));
}

} // namespace ferry::test
