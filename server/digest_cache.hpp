// Digests of files the server has already hashed, so that a repeated
// download of an unchanged file costs no hashing (and can be sent without
// the server touching its bytes at all).
//
// A file is "unchanged" while its device, inode, size, modification and
// change time are. The change time cannot be set by users and moves on every
// write, rename or chmod, but only at the kernel's clock tick, so a digest is
// remembered only for files whose last change is over a second old (a write
// landing in the same tick as the one before could otherwise go unseen; git
// calls this the racy-clean problem). Even then the client checks every
// byte it receives against the digest, so a stale entry could only fail a
// download, never pass a wrong one.
//
// Thread-safe: pool jobs of every loop share one cache.
#pragma once

#include "transfer_hash.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

namespace ferry::server {

struct FileIdentity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t modified_ns = 0;
    std::int64_t changed_ns = 0;

    static FileIdentity of(const struct ::stat& st);
    auto operator<=>(const FileIdentity&) const = default;
};

class DigestCache {
public:
    explicit DigestCache(std::size_t capacity = 4096) : capacity_(capacity) {}
    DigestCache(const DigestCache&) = delete;
    DigestCache& operator=(const DigestCache&) = delete;

    std::optional<std::string> find(const FileIdentity& file, HashKind kind);
    // Keeps `digest` unless the file changed too recently to be sure of it.
    void remember(const FileIdentity& file, HashKind kind, std::string digest,
                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
    std::size_t size() const;

private:
    using Key = std::tuple<FileIdentity, HashKind>;
    struct Entry {
        Key key;
        std::string digest;
    };

    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::list<Entry> recent_; // most recently used first
    std::map<Key, std::list<Entry>::iterator> index_;
};

} // namespace ferry::server
