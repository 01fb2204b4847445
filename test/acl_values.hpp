// POSIX access ACLs (acl(5)) in the form the kernel keeps them as the
// value of the extended attribute system.posix_acl_access, for the tests of
// sys/posix_acl and of the transfers that keep a replaced file's ACL; and
// default ACLs set and access ACLs read through libacl, as text.
#pragma once

#include <acl/libacl.h>
#include <sys/acl.h>
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

// Sets `text` (acl_from_text(3): "u::rwx,u:1234:r--,g::r-x,m::rwx,o::---")
// as the default ACL of the folder `folder`: false where its file system
// keeps no ACLs (or the text is not an ACL).
inline bool set_default_acl(const std::string& folder, const char* text)
{
    acl_t acl = ::acl_from_text(text);
    if (acl == nullptr) {
        return false;
    }
    const bool set = ::acl_set_file(folder.c_str(), ACL_TYPE_DEFAULT, acl) == 0;
    ::acl_free(acl);
    return set;
}

// The access ACL of `path` as one line with numeric ids
// ("user::rw-,user:1234:r--,group::r-x,mask::rw-,other::---"), or "" when
// it has none beyond its permission bits.
inline std::string access_acl_text(const std::string& path)
{
    if (::acl_extended_file_nofollow(path.c_str()) != 1) {
        return "";
    }
    acl_t acl = ::acl_get_file(path.c_str(), ACL_TYPE_ACCESS);
    if (acl == nullptr) {
        return "";
    }
    char* text = ::acl_to_any_text(acl, nullptr, ',', TEXT_NUMERIC_IDS);
    std::string line = text == nullptr ? std::string() : std::string(text);
    ::acl_free(text);
    ::acl_free(acl);
    return line;
}

} // namespace ferry::test
