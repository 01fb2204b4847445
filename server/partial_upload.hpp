// An upload in progress, kept on the file system so that it survives the
// connection and the server: a hidden data file `.ferry-partial-<token>` in
// the root and its state file `.ferry-partial-<token>.state` (the target's
// path, declared size, how many bytes are durable, the hash state of those
// bytes). Partials of files in any folder stay in the root (one file system
// with the whole tree, so the commit's rename works across folders), and the
// expiry sweep reads only the root, whatever the size of the tree. Any
// ferryd sharing the folder can resume it. The token is a hash of the path
// and the declared size, so a put finds the one upload of its path and size
// by name, whatever else the root holds. An flock on the data file marks it
// as in use by one connection, across processes too. Only the access
// identity that made a kept upload resumes it (upload_owner()), and only
// over bytes that are still those its state describes.
//
// Every method blocks on the file system: run them on the thread pool, one
// at a time per upload. They never throw.
#pragma once

#include "error.hpp"
#include "library.hpp"
#include "partial_names.hpp"
#include "resume_state.hpp"
#include "transfer_hash.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <sys/types.h>

namespace ferry::server {

// Durability points while data streams in: what a server crash can lose.
inline constexpr std::uint64_t kCheckpointInterval = 64 * 1024 * 1024;
// Uploads of at least this many bytes take the room of their state files at
// the put (takes_state_room in partial_upload.cpp).
inline constexpr std::uint64_t kStateRoomFrom = 1024 * 1024;
// Who makes an upload on a server without tokens: every client alike.
inline constexpr std::string_view kAnonymousOwner = "anonymous";

// Who a client that said hello with `token` is, as a kept upload records
// it: a hash of the token (never the token itself, which the state file
// must not hold), the same on every ferryd reading the same token file.
using UploadOwner = std::array<unsigned char, 32>;
UploadOwner upload_owner(std::string_view token);
// The owner as a state file records it; nothing (no tokens) is kAnonymousOwner.
std::string owner_text(const std::optional<UploadOwner>& owner);

class PartialUpload {
public:
    // A new upload, or with `resume` the kept one of the same path and size
    // (none kept: a new one). `busy` if an upload of that path and size is
    // in use; a kept one is replaced by a put without `resume`.
    // The data is checked with `hash`. The disk space the rest of the upload
    // needs is reserved now: `no_space` if it cannot be. `name` is a path:
    // with `parents` its missing folders are created now; the partial stays
    // in the root whatever the folder, and `folder_modes` gives those it
    // makes their modes (Library::make_folder). With `mtime`, the published file gets
    // that modification time. `owner` is who puts (owner_text()): a kept upload of someone else is never resumed, nor
    // is anything of it told; the put starts over and replaces it. Nor is one
    // whose data changed since its state was written (the state records the
    // file's identity): its kept bytes are hashed again, and resumed only if
    // they are still the bytes the state's hash describes.
    static Result<std::unique_ptr<PartialUpload>>
    begin(const Library& library, const std::string& name, std::uint64_t size, bool resume,
          HashKind hash = HashKind::sha256, bool parents = false, std::optional<std::int64_t> mtime = std::nullopt,
          std::string_view owner = kAnonymousOwner, const FolderModes& folder_modes = {});
    PartialUpload(const PartialUpload&) = delete;
    PartialUpload& operator=(const PartialUpload&) = delete;
    // Releases the descriptor and its lock; the files stay for a resume.
    ~PartialUpload();

    // The source's permission bits a put carried (PROTOCOL.md 4.5's
    // "mode"): the mode a new file is published as if created with, in
    // place of 0666, ANDed with 0777. A replaced file keeps its own.
    void create_as(std::optional<std::uint32_t> mode) { create_mode_ = mode; }

    const std::string& token() const { return token_; }
    const std::string& name() const { return name_; }
    std::uint64_t size() const { return size_; }
    std::uint64_t received() const { return received_; }
    std::string received_digest() const { return hash_.hex_digest(); }

    // Writes the next bytes (at offset received()) and hashes them.
    std::optional<Error> append(std::span<const char> bytes);
    // Makes what was received durable and records it in the state file.
    std::optional<Error> checkpoint();
    // The connection ended: gives back the space set aside for the bytes
    // not received, then checkpoints, so that the state records the data
    // file as it is left and a resume can trust it without reading it.
    std::optional<Error> keep();
    // Verifies size and hash and, only if both hold, publishes the file under
    // its name. A hash mismatch discards the upload; nothing is published.
    // `replace` false (the commit's field, PROTOCOL.md 4.5): a name taken
    // when the rename runs is `exists`, the upload discarded (the client
    // still has every byte), and what stands there untouched.
    // `defer_sync` (the commit's field, PROTOCOL.md 4.5): an upload that
    // writes no publish record (under 1 MiB) leaves its folder's fsync to
    // the connection's next sync request: take_pending_sync() then holds it.
    Result<FileInfo> commit(std::string_view expected_digest, bool replace = true, bool defer_sync = false);
    // The folder sync a deferred commit left, if it left one.
    std::optional<PendingFolderSync> take_pending_sync() { return std::exchange(pending_sync_, std::nullopt); }
    // Deletes the data and state files.
    void discard();
    // A write failed and the upload ends: discards it, unless the failure
    // was the recording of a checkpoint, whose data is durable and whose
    // last recorded state still vouches for it (PROTOCOL.md 4.5): then
    // the files stay for a resume from that checkpoint.
    void drop_after_failure();

private:
    PartialUpload(const Library& library, int fd, std::string token, std::string name, std::uint64_t size)
        : library_(library), fd_(fd), token_(std::move(token)), name_(std::move(name)), size_(size)
    {
    }
    static Result<std::unique_ptr<PartialUpload>> begin_upload(const Library& library, const std::string& name,
                                                               std::uint64_t size, bool resume, HashKind hash,
                                                               std::string_view owner);
    void release_reservation();
    void release_spare();
    std::optional<Error> reserve_state_files(bool state_kept);
    std::optional<Error> make_spare(std::uint64_t room);
    std::uint64_t state_room() const;
    std::uint64_t state_files_room(bool state_kept) const;
    bool publish_spare();
    void remove_state_files();
    std::string state_text() const;
    std::optional<Error> write_state();
    int write_spare();
    int take_final_attributes(const Library::Destination& destination, const struct ::stat* partial,
                              std::optional<struct ::stat>& published, std::optional<Error>& moved, bool replace,
                              bool defer_sync);
    void set_final_owner(const std::optional<struct ::stat>& old, gid_t new_group);
    void record_publish(uid_t uid, gid_t gid, mode_t mode, std::string acl);
    std::optional<Error> write_record();
    void drop_own_record();
    bool make_private();
    Error refused_publish(Error error);
    std::string data_file() const;
    std::string state_file() const;
    std::string spare_file() const;

    const Library& library_;
    int fd_;
    // The state file and its spare, made and given their disk space at the
    // put (reserve_state_files): a state is written into the spare, which
    // then changes places with the state, so no checkpoint needs a block or
    // an inode the reservation did not take. -1 where none is open.
    int state_fd_ = -1;
    int spare_fd_ = -1;
    std::string token_;
    std::string name_;
    std::uint64_t size_;
    std::uint64_t received_ = 0;
    std::uint64_t durable_ = 0;
    TransferHash hash_;
    bool discarded_ = false;
    bool reserved_ = false; // disk space set aside up to size_
    // Whether a state file of this upload may exist: found at the resume,
    // or written since. A new upload has none until its first checkpoint.
    bool has_state_ = false;
    // A checkpoint's state could not be written: its data stays (see
    // drop_after_failure).
    bool keep_after_failure_ = false;
    std::optional<std::int64_t> mtime_;
    std::optional<std::uint32_t> create_mode_;
    std::string owner_;
    // Set only while a commit publishes (record_publish to its end).
    std::optional<PublishIntent> publishing_;
    // The record file this commit made (device, inode), until it goes.
    std::optional<std::pair<dev_t, ino_t>> record_;
    // The folder sync a deferred commit left (commit's defer_sync).
    std::optional<PendingFolderSync> pending_sync_;
};

// Deletes kept uploads whose files were last modified more than `ttl` ago
// (stray partial files without a state, states without data, and partials
// of older builds, whose tokens no put looks for, alike). Only files the
// server made go: at a name parse_partial_entry() recognises, regular files
// of its user with one link (a state's name holding a state, or nothing:
// the put's reservation); anything else stays, uncounted. Uploads in use
// (locked) are left alone. Returns how many uploads lost a file.
std::size_t remove_stale_partials(const Library& library, std::chrono::seconds ttl);

} // namespace ferry::server
