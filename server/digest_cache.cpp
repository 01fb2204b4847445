#include "digest_cache.hpp"

namespace ferry::server {

namespace {

// Longer than any kernel's timestamp tick.
constexpr std::chrono::seconds kSettleTime{1};

std::int64_t nanoseconds(const struct timespec& time)
{
    return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

} // namespace

FileIdentity FileIdentity::of(const struct ::stat& st)
{
    return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::uint64_t>(st.st_size), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)};
}

std::optional<std::string> DigestCache::find(const FileIdentity& file, HashKind kind)
{
    const std::lock_guard lock(mutex_);
    const auto found = index_.find(Key{file, kind});
    if (found == index_.end()) {
        return std::nullopt;
    }
    recent_.splice(recent_.begin(), recent_, found->second);
    return found->second->digest;
}

void DigestCache::remember(const FileIdentity& file, HashKind kind, std::string digest,
                           std::chrono::system_clock::time_point now)
{
    const auto changed = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(file.changed_ns)));
    if (capacity_ == 0 || now - changed < kSettleTime) {
        return;
    }
    const std::lock_guard lock(mutex_);
    const Key key{file, kind};
    if (const auto found = index_.find(key); found != index_.end()) {
        found->second->digest = std::move(digest);
        recent_.splice(recent_.begin(), recent_, found->second);
        return;
    }
    recent_.push_front(Entry{key, std::move(digest)});
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
