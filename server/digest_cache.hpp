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
// An upload's digest is known when it is published, but its file changed
// that very moment. remember_published() keeps it for downloads alone, and
// only when the file's modification time lies a second or more before its
// change time (a sync or `put -p` gives the file the sender's older time):
// a write moves the modification time to the present, so any later write
// changes the identity, unless the writer also sets the old time back within
// the same tick. That case can only fail downloads, which check every byte;
// a digest request is believed without the bytes (a sync --checksum skips on
// it), so it takes settled entries only (find()), as does the trailer of a
// get from the file's end, which sends no byte (a version-1 client's digest,
// PROTOCOL.md 4.9).
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
    // Whether it changed in the last second: a write within the file
    // system's timestamp tick after that change would move neither the size
    // nor the times, so such a file is read twice before its digest is
    // believed (a get before its trailer, a digest request).
    bool changed_lately() const;
};

class DigestCache {
public:
    // The default holds a 16,384-file tree (a sync's pull after its push):
    // about 4.7 MB when full (an entry with a SHA-256 digest and its index
    // takes 288 bytes of heap, measured with mallinfo2).
    explicit DigestCache(std::size_t capacity = 16384) : capacity_(capacity) {}
    DigestCache(const DigestCache&) = delete;
    DigestCache& operator=(const DigestCache&) = delete;

    // A settled entry: safe to answer a digest request with.
    std::optional<std::string> find(const FileIdentity& file, HashKind kind);
    // Any entry, a published upload's included: for a download, whose
    // client checks every byte against the digest.
    std::optional<std::string> find_for_download(const FileIdentity& file, HashKind kind);
    // Keeps `digest` unless the file changed too recently to be sure of it.
    void remember(const FileIdentity& file, HashKind kind, std::string digest,
                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
    // Keeps the digest of an upload just published (`file`: its fstat after
    // the rename) for downloads, if its modification time is at least a
    // second older than its change time (see the top of this file). Never
    // replaces a settled entry.
    void remember_published(const FileIdentity& file, HashKind kind, std::string digest);
    std::size_t size() const;

private:
    using Key = std::tuple<FileIdentity, HashKind>;
    struct Entry {
        Key key;
        std::string digest;
        bool settled; // false: remembered at publish, for downloads only
    };
    std::optional<std::string> find(const Key& key, bool settled_only);
    void keep(const Key& key, std::string digest, bool settled);

    mutable std::mutex mutex_;
    std::size_t capacity_;
    std::list<Entry> recent_; // most recently used first
    std::map<Key, std::list<Entry>::iterator> index_;
};

} // namespace ferry::server
