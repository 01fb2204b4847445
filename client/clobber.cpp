#include "clobber.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "page_buffer.hpp"
#include "remote_tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <vector>

namespace ferry::client {

namespace {

constexpr std::size_t kReadChunk = 1024 * 1024;

struct RemoteFile {
    FileInfo info;
    std::string digest;
};

// The server's file and its digest, or nullopt when it has no such file.
Result<std::optional<RemoteFile>> remote_file(Connection& connection, const std::string& name, HashKind hash,
                                              bool with_digest)
{
    auto stat = ask(connection, Request{connection.next_id(), StatRequest{name}}, parse_stat_reply);
    if (!stat) {
        if (stat.error().code == ErrorCode::not_found) {
            return std::optional<RemoteFile>();
        }
        return stat.error();
    }
    if (!with_digest) {
        return std::optional<RemoteFile>(RemoteFile{stat->file, {}});
    }
    auto digest = digest_by_get(connection, name, stat->file.size, hash);
    if (!digest) {
        if (digest.error().code == ErrorCode::not_found || digest.error().code == ErrorCode::bad_offset) {
            return std::optional<RemoteFile>(); // gone or shrunk since the stat: not identical
        }
        return digest.error();
    }
    return std::optional<RemoteFile>(RemoteFile{std::move(digest->file), std::move(digest->digest)});
}

// An open file's size and digest, read from its start (read_at).
Result<std::optional<RemoteFile>> digest_of(const LocalFile& file, HashKind hash)
{
    TransferHash digest(hash);
    const auto buffer = sys::make_page_buffer<std::uint8_t>(kReadChunk); // pread copies into it
    std::uint64_t position = 0;
    for (;;) {
        if (interrupted()) {
            return Error{ErrorCode::aborted, "interrupted"};
        }
        auto got = file.read_at(position, std::span(buffer.get(), kReadChunk));
        if (!got) {
            return got.error();
        }
        if (got.value() == 0) {
            break;
        }
        digest.update(buffer.get(), got.value());
        position += got.value();
    }
    RemoteFile local;
    local.info.size = position;
    local.digest = digest.hex_digest();
    return std::optional<RemoteFile>(std::move(local));
}

// The local regular file's size and digest, or nullopt when there is none.
// With `in` (a download's held folder): its last name there, no link followed.
Result<std::optional<RemoteFile>> local_file(const std::string& path, HashKind hash, const LocalFolder* in = nullptr)
{
    struct stat st {};
    const int looked = in != nullptr ? ::fstatat(in->fd(), base_name(path).c_str(), &st, AT_SYMLINK_NOFOLLOW)
                                     : ::stat(path.c_str(), &st);
    if (looked != 0 || !S_ISREG(st.st_mode)) {
        return std::optional<RemoteFile>();
    }
    auto file = LocalFile::open(path, O_RDONLY | (in != nullptr ? O_NOFOLLOW | O_NONBLOCK : 0), 0, in);
    if (!file) {
        return file.error();
    }
    return digest_of(file.value(), hash);
}

bool exists(const std::string& path, const LocalFolder* in)
{
    struct stat st {};
    if (in != nullptr) {
        return ::fstatat(in->fd(), base_name(path).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    }
    return ::lstat(path.c_str(), &st) == 0;
}

} // namespace

namespace {

Result<SkipReason> decide_get(Connection& connection, const std::string& name, const std::string& dest,
                              Clobber clobber, HashKind hash, const LocalFolder* in)
{
    if (clobber == Clobber::replace || dest == "-") {
        return SkipReason();
    }
    if (clobber == Clobber::keep_existing) {
        return exists(dest, in) ? SkipReason("exists") : SkipReason();
    }
    auto local = local_file(dest, hash, in);
    if (!local) {
        return local.error();
    }
    if (!local.value()) {
        return SkipReason();
    }
    auto remote = remote_file(connection, name, hash, true);
    if (!remote) {
        return remote.error();
    }
    if (remote.value() && remote.value()->info.size == local.value()->info.size &&
        remote.value()->digest == local.value()->digest) {
        return SkipReason("identical");
    }
    return SkipReason();
}

} // namespace

Result<SkipReason> skip_get(Connection& connection, const std::string& name, const std::string& dest,
                            Clobber clobber, HashKind hash, const LocalFolder* in)
{
    auto skip = decide_get(connection, name, dest, clobber, hash, in);
    // A get skipped is still "the next download of that name": what a
    // killed one left goes (ferry.1).
    if (skip && skip.value()) {
        remove_download_leftovers(dest, in);
    }
    return skip;
}

Result<std::optional<Error>> not_on_server(Connection& connection, const std::string& name)
{
    auto stat = ask(connection, Request{connection.next_id(), StatRequest{name}}, parse_stat_reply);
    // What a get of it would meet first: no such file, a path through a
    // file, a name the server's rules refuse.
    if (!stat && (stat.error().code == ErrorCode::not_found || stat.error().code == ErrorCode::not_a_folder ||
                  stat.error().code == ErrorCode::invalid_name)) {
        return std::optional<Error>(stat.error());
    }
    if (!stat && !connection.is_open()) {
        return stat.error();
    }
    if (stat && stat->file.type == EntryType::folder) {
        // As the get would fail: a folder comes with get -r (which names files only).
        return std::optional<Error>(
            Error{ErrorCode::not_regular_file, "\"" + name + "\" is a folder (a folder comes with get -r)"});
    }
    return std::optional<Error>();
}

Result<SkipReason> skip_put(Connection& connection, const std::string& local_path, const std::string& name,
                            Clobber clobber, HashKind hash, const LocalFile* spool)
{
    if (clobber == Clobber::replace) {
        return SkipReason();
    }
    auto remote = remote_file(connection, name, hash, clobber == Clobber::skip_identical);
    if (!remote) {
        return remote.error();
    }
    if (!remote.value()) {
        return SkipReason();
    }
    if (clobber == Clobber::keep_existing) {
        return SkipReason("exists");
    }
    auto local = spool != nullptr ? digest_of(*spool, hash) : local_file(local_path, hash);
    if (!local) {
        return local.error();
    }
    if (local.value() && local.value()->info.size == remote.value()->info.size &&
        local.value()->digest == remote.value()->digest) {
        return SkipReason("identical");
    }
    return SkipReason();
}

} // namespace ferry::client
