// The one file format for resuming a transfer, written beside its partial
// data by the client (a download's `.ferry-part.state` sidecar) and by the
// server (an upload's `.ferry-partial-<token>.state`): which file the data
// is the beginning of, how many of its bytes are durable, and the transfer
// hash's state of exactly those bytes, so that hashing carries on instead of
// re-reading them. Pure text in, text out; each side does its own atomic
// write (beside, synced, renamed over) and its own checks of what it needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

// Which file a partial file was when its state was written: if any of this
// differs on resume, the data was touched since (or written past the
// checkpoint before a crash), and its bytes must be read again.
struct PartIdentity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0; // no user can set it: a change that kept mtime still shows

    bool operator==(const PartIdentity&) const = default;
};

// An upload being published (ferryd's commit, PROTOCOL.md 4.7): written into
// its state just before the rename of the partial onto `ResumeState::name`,
// removed once the file has these attributes. A ferryd that finds it (the
// commit was killed in between) sets them on the file at that name if it is
// still the partial (this device and inode), and drops the record.
struct PublishIntent {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t mode = 0;  // permission bits
    std::string acl;         // sys::access_acl_text's form, or "none"

    bool operator==(const PublishIntent&) const = default;
};

struct ResumeState {
    std::string name;            // the file's name in the served folder (valid UTF-8)
    std::uint64_t size = 0;      // the whole file's size
    std::uint64_t bytes_held = 0; // durable bytes at the checkpoint; never more than size
    std::string hash_state;      // TransferHash::save_state() of those bytes
    // Downloads: the remote file's mtime (a changed file is not resumed),
    // the digest of the bytes held and the part file's identity.
    std::optional<std::int64_t> mtime;
    std::optional<std::string> prefix_digest;
    std::optional<PartIdentity> part;
    // Uploads: when the state was written (CLOCK_REALTIME, nanoseconds), which
    // orders kept uploads of one name between servers sharing a folder;
    // who made the upload (the server's upload_owner(): never a token), as
    // only they may resume it; and `part` as for downloads.
    std::optional<std::int64_t> written_ns;
    std::optional<std::string> owner;
    // Uploads: set only between a commit's record and its final attributes.
    std::optional<PublishIntent> publishing;

    bool operator==(const ResumeState&) const = default;
};

// A commit's intent as it rides on the published file itself, in an
// extended attribute, between the rename and the final attributes
// (PROTOCOL.md 4.5): a JSON array [inode, uid, gid, mode, acl, written_s]. No device:
// each mount of a network file system numbers it differently, so a reader
// compares its own root's. Short, so that ext4 keeps it inside a 256-byte
// inode where the file has no other attribute (no block of its own to
// allocate and free at every commit).
// `written_s`: when it was written (CLOCK_REALTIME, seconds), appended as
// a sixth element: a reader believes only a recent one.
std::string encode_publish_intent(const PublishIntent& intent, std::int64_t written_s);
// Nothing for anything else (another shape, an id past 32 bits, a mode past
// 07777, more than kMaxResumeStateSize bytes). The device read back is 0.
struct WrittenIntent {
    PublishIntent intent;
    std::int64_t written_s = 0;
};
std::optional<WrittenIntent> decode_publish_intent(std::string_view text);

// Larger state files are refused unread: a real one is well under 1 KiB.
inline constexpr std::size_t kMaxResumeStateSize = 64 * 1024;

// One line of JSON, version 3, ending in a newline.
std::string encode_resume_state(const ResumeState& state);

// Reads version 3 and the two formats it replaced, so that partial data
// left by an older build is still resumed: the client's JSON sidecar of
// version 2 (the same fields; the hash state was called "sha256_state") and
// the server's "ferry-partial-state v1" lines. Anything else (older
// versions, a missing or mistyped field, bytes_held > size, too large) is
// nothing, and the caller starts the transfer over.
std::optional<ResumeState> decode_resume_state(std::string_view text);

} // namespace ferry
