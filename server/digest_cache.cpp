#include "digest_cache.hpp"
#include "posix_io.hpp"

namespace ferry::server {

namespace {

// Longer than any kernel's timestamp tick.
constexpr std::chrono::seconds kSettleTime{1};

std::int64_t nanoseconds(const struct timespec& time)
{
    return sys::nanoseconds_since_epoch(time);
}

} // namespace

FileIdentity FileIdentity::of(const struct ::stat& st)
{
    return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::uint64_t>(st.st_size), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)};
}

std::optional<std::string> DigestCache::find(const FileIdentity& file, HashKind kind)
{
    return find(Key{file, kind}, true);
}

std::optional<std::string> DigestCache::find_for_download(const FileIdentity& file, HashKind kind)
{
    return find(Key{file, kind}, false);
}

std::optional<std::string> DigestCache::find(const Key& key, bool settled_only)
{
    const std::lock_guard lock(mutex_);
    const auto found = index_.find(key);
    if (found == index_.end() || (settled_only && !found->second->settled)) {
        return std::nullopt;
    }
    recent_.splice(recent_.begin(), recent_, found->second);
    return found->second->digest;
}

bool FileIdentity::changed_lately() const
{
    const auto now =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
    return now.count() - changed_ns < 1'000'000'000;
}

void DigestCache::remember(const FileIdentity& file, HashKind kind, std::string digest,
                           std::chrono::system_clock::time_point now)
{
    const auto changed = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(file.changed_ns)));
    if (now - changed < kSettleTime) {
        return;
    }
    keep(Key{file, kind}, std::move(digest), true);
}

void DigestCache::remember_published(const FileIdentity& file, HashKind kind, std::string digest)
{
    if (file.changed_ns - file.modified_ns < std::chrono::nanoseconds(kSettleTime).count()) {
        return;
    }
    keep(Key{file, kind}, std::move(digest), false);
}

void DigestCache::keep(const Key& key, std::string digest, bool settled)
{
    if (capacity_ == 0) {
        return;
    }
    const std::lock_guard lock(mutex_);
    if (const auto found = index_.find(key); found != index_.end()) {
        if (settled || !found->second->settled) {
            found->second->digest = std::move(digest);
            found->second->settled = settled;
        }
        recent_.splice(recent_.begin(), recent_, found->second);
        return;
    }
    recent_.push_front(Entry{key, std::move(digest), settled});
    index_.emplace(key, recent_.begin());
    if (recent_.size() > capacity_) {
        index_.erase(recent_.back().key);
        recent_.pop_back();
    }
}

std::size_t DigestCache::size() const
{
    const std::lock_guard lock(mutex_);
    return recent_.size();
}

} // namespace ferry::server
