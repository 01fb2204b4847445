// The served folder ("library") and the only code that touches it by name:
// the jail a reviewer checks in one place. Nothing else holds the root's
// descriptor; partial uploads reach their hidden files through the *_entry
// wrappers below, and a get reads its OpenFile through its methods.
// Every access goes through a descriptor of the root and check_file_name(), so
// nothing outside the root is reachable: no '/' in names, no symlink is ever
// followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW), nothing but regular files is
// opened, and FIFOs/devices are refused before open (and opened O_NONBLOCK in
// case one appears in between, so a FIFO can never hang a worker thread).
//
// All methods block on the file system: call them from libuv's thread pool,
// never from the loop. They never throw.
#pragma once

#include "digest_cache.hpp"
#include "error.hpp"
#include "messages.hpp"
#include "transfer_hash.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

// An open regular file; closes its descriptor when destroyed.
class OpenFile {
public:
    OpenFile(int fd, FileInfo info, FileIdentity identity) : fd_(fd), info_(std::move(info)), identity_(identity) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile();

    int fd() const { return fd_; }
    const FileInfo& info() const { return info_; }
    // What the file was when opened; the digest cache's key.
    const FileIdentity& identity() const { return identity_; }
    // What it is now (fstat), to tell whether it changed while it was read.
    std::optional<FileIdentity> current_identity() const;

    // Reads exactly `size` bytes at `offset`, or says why not (a short
    // file is io_error).
    std::optional<Error> read_at(char* into, std::size_t size, std::uint64_t offset) const;
    // Feeds the first `length` bytes to `hash` (a resumed download's prefix).
    std::optional<Error> hash_prefix(std::uint64_t length, TransferHash& hash) const;
    // Brings bytes [offset, offset + length) into the page cache, so that a
    // later sendfile on the loop does not wait for the disk. A failure only
    // costs speed.
    void read_ahead(std::uint64_t offset, std::size_t length) const;

private:
    int fd_;
    FileInfo info_;
    FileIdentity identity_;
};

// One listing of the served folder, read a bounded page at a time: a folder
// may hold millions of files, and neither a job nor a reply may hold them
// all. Entries come in the directory's own order. One job at a time uses it.
class DirectoryReader {
public:
    DirectoryReader(int root_fd, DIR* dir) : root_fd_(root_fd), dir_(dir) {}
    DirectoryReader(const DirectoryReader&) = delete;
    DirectoryReader& operator=(const DirectoryReader&) = delete;
    ~DirectoryReader();

    // Adds entries to `page` (files, and invalid names to its
    // skipped_invalid_names) until their encoded size reaches `page_bytes`
    // or the folder ends; true once it has ended.
    Result<bool> read_page(std::size_t page_bytes, ListReply& page);
    // Encoded bytes added to pages so far.
    std::size_t bytes_read() const { return bytes_read_; }

private:
    int root_fd_;
    DIR* dir_;
    std::size_t bytes_read_ = 0;
};

// About the bytes `file` takes in a list reply (never less).
std::size_t listed_size(const FileInfo& file);

class Library {
public:
    // Opens the folder to serve; it must exist and be a directory.
    static Result<std::unique_ptr<Library>> open(const std::string& path);
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    ~Library();

    const std::string& path() const { return path_; }

    // The whole listing, sorted by name (for tests and small folders).
    Result<ListReply> list() const;
    // A listing to read page by page.
    Result<std::unique_ptr<DirectoryReader>> open_listing() const;
    Result<FileInfo> stat(std::string_view name) const;
    Result<std::unique_ptr<OpenFile>> open_for_read(std::string_view name) const;

    // `file_changed` when the open file is no longer what was opened: its
    // size, modification or change time, or the file its name refers to
    // (replaced, renamed, removed). A get vouches for its bytes only after
    // this found nothing (PROTOCOL.md 4.4).
    std::optional<Error> check_unchanged(const OpenFile& file) const;

    // Refuses a name that exists as anything but a regular file, so that an
    // upload never replaces a folder, link or device.
    std::optional<Error> check_replaceable(std::string_view name) const;

    // Whether --root still names the folder opened at start (same st_dev and
    // st_ino). Deleted, replaced (`mv share share.old; mkdir share`) or no
    // longer a folder: root_unavailable, so that a client is never told "ok"
    // about a folder nobody can see, nor uploads into an orphan. list, stat,
    // get and put check it once per request (a stat and an fstat), never per
    // chunk. The identity, not the descriptor, is what is compared, so several
    // ferryd serving one folder on a network file system agree. The first
    // failure and the recovery are logged once, not per request.
    std::optional<Error> check_root() const;

    // Makes a rename or unlink in the root durable.
    std::optional<Error> sync_root() const;

    // The folder by name for the server's own files (uploads in progress,
    // their states and locks) and the publishing of an upload: with the
    // methods above, the only calls that name anything in the root. Each
    // resolves the name in the root only: a name that is empty, "." or
    // "..", or holds a '/', fails with EINVAL; a symlink is never followed
    // (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW) and descriptors are close-on-exec.
    // Like the system calls they wrap, they return -1 and set errno.
    int open_entry(const std::string& name, int flags, mode_t mode = 0) const;
    int stat_entry(const std::string& name, struct ::stat& st) const;
    int unlink_entry(const std::string& name) const;
    int rename_entry(const std::string& from, const std::string& to) const;
    // The names in the root that begin with `prefix`, hidden ones included.
    std::vector<std::string> entries_with_prefix(std::string_view prefix) const;

    // Digests of the files served, shared by every connection.
    DigestCache& digests() const { return digests_; }

    // The mode a newly uploaded file gets: 0666 less the process's umask at
    // open() (read once there: umask() cannot be read without setting it,
    // which would race with files created by other threads).
    mode_t new_file_mode() const { return new_file_mode_; }

private:
    Library(int root_fd, std::string path, mode_t new_file_mode)
        : root_fd_(root_fd), path_(std::move(path)), new_file_mode_(new_file_mode)
    {
    }

    int root_fd_;
    std::string path_;
    mode_t new_file_mode_;
    mutable DigestCache digests_;
    // Whether the last check_root() found the folder gone; only to log changes.
    mutable std::atomic<bool> root_missing_{false};
};

// Maps an errno from a file operation to the wire's error vocabulary.
Error file_error(int errno_value, std::string_view what, std::string_view name);

FileInfo file_info(std::string name, const struct ::stat& st);

// Reads exactly `size` bytes at `offset` of `name`'s descriptor, or says why
// not (a short file is io_error).
std::optional<Error> read_exactly(int fd, char* into, std::size_t size, std::uint64_t offset, const std::string& name);
// Feeds the first `length` bytes of the file to `hash`: a resumed download's
// prefix, or a kept upload resumed with another hash.
std::optional<Error> hash_prefix(int fd, std::uint64_t length, TransferHash& hash, const std::string& name);

} // namespace ferry::server
