#include "partial_upload.hpp"

#include "digest.hpp"
#include "posix_io.hpp"
#include "resume_state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <tuple>
#include <utility>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <vector>

namespace ferry::server {

namespace {

constexpr std::string_view kStateSuffix = ".state";

std::string new_token()
{
    std::array<unsigned char, 16> random{};
    std::size_t filled = 0;
    while (filled < random.size()) {
        const ssize_t got = ::getrandom(random.data() + filled, random.size() - filled, 0);
        if (got > 0) {
            filled += static_cast<std::size_t>(got);
        }
    }
    return to_hex(random);
}

struct SavedState {
    std::string token;
    std::string name;
    std::uint64_t size = 0;
    std::uint64_t durable = 0;
    std::string hash_state;
    // When the state was written (CLOCK_REALTIME, nanoseconds), as recorded
    // in it; a state of an older build falls back to its file's mtime.
    std::int64_t written_ns = 0;
};

// Which of two kept uploads is the more recent: the later written state,
// then (written in the same nanosecond) the one holding more bytes, then
// the token, so that every server sharing the folder picks the same.
bool more_recent(const SavedState& a, const SavedState& b)
{
    return std::tie(a.written_ns, a.durable, a.token) > std::tie(b.written_ns, b.durable, b.token);
}

std::int64_t nanoseconds(const struct timespec& time)
{
    return static_cast<std::int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

// Reads a whole small file relative to the root; refuses anything odd.
std::optional<std::string> read_small_file(const Library& library, const std::string& name)
{
    const int fd = library.open_entry(name, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        return std::nullopt;
    }
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 64 * 1024) {
        ::close(fd);
        return std::nullopt;
    }
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    const ssize_t got = ::pread(fd, text.data(), text.size(), 0);
    ::close(fd);
    if (got != static_cast<ssize_t>(text.size())) {
        return std::nullopt;
    }
    return text;
}

// Reads a state file in protocol/resume_state's format (or the
// "ferry-partial-state v1" lines of older builds, which its decoder still reads).
std::optional<SavedState> parse_state(std::string_view token, const std::string& text, std::int64_t written_ns)
{
    auto decoded = decode_resume_state(text);
    if (!decoded) {
        return std::nullopt;
    }
    SavedState state;
    state.token = token;
    state.name = std::move(decoded->name);
    state.size = decoded->size;
    state.durable = decoded->bytes_held;
    state.hash_state = std::move(decoded->hash_state);
    state.written_ns = decoded->written_ns.value_or(written_ns);
    return state;
}

std::string data_name(std::string_view token)
{
    return std::string(kPartialPrefix) + std::string(token);
}

std::string state_name(std::string_view token)
{
    return data_name(token) + std::string(kStateSuffix);
}

// The state of one kept upload, read again (under its lock).
std::optional<SavedState> saved_state(const Library& library, const std::string& token)
{
    const std::string name = state_name(token);
    struct ::stat st {};
    if (library.stat_entry(name, st) != 0 || !S_ISREG(st.st_mode)) {
        return std::nullopt;
    }
    const auto text = read_small_file(library, name);
    if (!text) {
        return std::nullopt;
    }
    return parse_state(token, *text, nanoseconds(st.st_mtim));
}

// Every kept upload in the root, by token.
std::vector<SavedState> saved_states(const Library& library)
{
    std::vector<SavedState> states;
    for (const std::string& entry : library.entries_with_prefix(kPartialPrefix)) {
        const std::string_view name = entry;
        if (!name.ends_with(kStateSuffix)) {
            continue;
        }
        const std::string_view token =
            name.substr(kPartialPrefix.size(), name.size() - kPartialPrefix.size() - kStateSuffix.size());
        struct ::stat st {};
        if (library.stat_entry(entry, st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        const auto text = read_small_file(library, entry);
        if (!text) {
            continue;
        }
        if (auto state = parse_state(token, *text, nanoseconds(st.st_mtim))) {
            states.push_back(std::move(*state));
        }
    }
    return states;
}

// Sets aside the disk space for bytes [offset, offset + length) of an
// upload, so that what cannot fit is refused at the put rather than after
// gigabytes, and a concurrent upload cannot take the space meanwhile.
// fallocate(2) with FALLOC_FL_KEEP_SIZE allocates without changing the
// file's size (which a resume reads as the bytes received). A file system
// without fallocate gets a check of its free space instead, which reserves
// nothing.
std::optional<Error> reserve_space(int fd, std::uint64_t offset, std::uint64_t length, const std::string& name)
{
    if (length == 0) {
        return std::nullopt;
    }
    int result = 0;
    do {
        result = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(length));
    } while (result != 0 && errno == EINTR);
    if (result == 0) {
        return std::nullopt;
    }
    const int failure = errno;
    struct ::statvfs fs {};
    const bool known_free = ::fstatvfs(fd, &fs) == 0;
    const std::uint64_t free_bytes = known_free ? static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
    const auto refused = [&] {
        return Error{ErrorCode::no_space, "the upload of \"" + name + "\" needs " + std::to_string(length) +
                                              " more bytes; the disk has " + std::to_string(free_bytes) + " free"};
    };
    if (failure == ENOSPC || failure == EDQUOT || failure == EFBIG) {
        return refused();
    }
    if (failure == EOPNOTSUPP || failure == ENOSYS) {
        if (known_free && free_bytes < length) {
            return refused();
        }
        return std::nullopt;
    }
    return file_error(failure, "cannot reserve space for the upload of", name);
}

bool try_lock(int fd)
{
    return ::flock(fd, LOCK_EX | LOCK_NB) == 0;
}

// Serializes the start of uploads of one name across connections and
// servers sharing the folder: an flock on `.ferry-partial-name-<hash of the
// name>`, held while a put looks for uploads of that name and creates its
// own. Released when destroyed, and its file removed then (a put that
// waited on the removed file notices and takes a fresh one), so that no
// lock file outlives the puts.
class NameLock {
public:
    static Result<NameLock> take(const Library& library, const std::string& name)
    {
        Sha256 hash;
        hash.update(name.data(), name.size());
        const std::string file = std::string(kPartialPrefix) + "name-" + hash.hex_digest().substr(0, 32);
        // The holder before us removes the file as it lets go: then our lock
        // is on a file nobody else will see, so take a fresh one.
        for (int attempt = 0; attempt < 10; ++attempt) {
            const int fd = library.open_entry(file, O_RDWR | O_CREAT, 0600);
            if (fd < 0) {
                return file_error(errno, "cannot lock uploads of", name);
            }
            int locked = 0;
            do {
                locked = ::flock(fd, LOCK_EX);
            } while (locked != 0 && errno == EINTR);
            struct ::stat held {};
            struct ::stat named {};
            if (locked == 0 && ::fstat(fd, &held) == 0 && library.stat_entry(file, named) == 0 &&
                held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
                return NameLock(library, file, fd);
            }
            ::close(fd);
        }
        return Error{ErrorCode::busy, "cannot lock uploads of \"" + name + "\"; try again"};
    }
    NameLock(NameLock&& other) noexcept
        : library_(other.library_), file_(std::move(other.file_)), fd_(std::exchange(other.fd_, -1))
    {
    }
    NameLock(const NameLock&) = delete;
    NameLock& operator=(const NameLock&) = delete;
    NameLock& operator=(NameLock&&) = delete;
    ~NameLock()
    {
        if (fd_ >= 0) {
            library_->unlink_entry(file_);
            ::close(fd_);
        }
    }

private:
    NameLock(const Library& library, std::string file, int fd) : library_(&library), file_(std::move(file)), fd_(fd)
    {
    }
    const Library* library_;
    std::string file_;
    int fd_;
};

// The saved hash state when it is of the kind asked for; otherwise the kept
// bytes are hashed again (a resume that switched hashes, or a state from
// another build), which costs one read of the prefix.
std::optional<TransferHash> prefix_hash(int fd, const SavedState& state, HashKind kind)
{
    if (auto restored = TransferHash::restore_state(state.hash_state); restored && restored->kind() == kind) {
        return restored;
    }
    TransferHash hash(kind);
    if (hash_prefix(fd, state.durable, hash, state.name)) {
        return std::nullopt;
    }
    return hash;
}

} // namespace

Result<std::unique_ptr<PartialUpload>> PartialUpload::begin(const Library& library, const std::string& name,
                                                            std::uint64_t size, bool resume, HashKind hash,
                                                            bool parents, std::optional<std::int64_t> mtime)
{
    // Missing folders are made now, before any data: a put that will fail
    // to publish should fail now.
    if (auto refused = library.prepare_upload(name, parents)) {
        return *refused;
    }
    auto begun = begin_upload(library, name, size, resume, hash);
    if (begun) {
        begun.value()->mtime_ = mtime;
    }
    return begun;
}

Result<std::unique_ptr<PartialUpload>> PartialUpload::begin_upload(const Library& library, const std::string& name,
                                                                   std::uint64_t size, bool resume, HashKind hash)
{
    auto name_lock = NameLock::take(library, name);
    if (!name_lock) {
        return name_lock.error();
    }
    // An upload in use holds an flock on its data file (here or on another
    // server); under the name lock, no other put of the name looks meanwhile.
    const auto in_use = [&] {
        return Error{ErrorCode::busy, "an upload of \"" + name + "\" (" + std::to_string(size) +
                                          " bytes) is in progress on another connection"};
    };
    if (!resume) {
        for (const auto& state : saved_states(library)) {
            if (state.name != name || state.size != size) {
                continue;
            }
            const int fd = library.open_entry(data_name(state.token), O_RDONLY);
            const bool busy = fd >= 0 && !try_lock(fd);
            if (fd >= 0) {
                ::close(fd);
            }
            if (busy) {
                return in_use();
            }
        }
    }
    for (int attempt = 0; resume && attempt < 10; ++attempt) {
        std::optional<SavedState> newest;
        for (auto& state : saved_states(library)) {
            if (state.name == name && state.size == size && (!newest || more_recent(state, *newest))) {
                newest = std::move(state);
            }
        }
        if (!newest) {
            break;
        }
        const std::string data = data_name(newest->token);
        const int fd = library.open_entry(data, O_RDWR);
        if (fd >= 0 && !try_lock(fd)) {
            ::close(fd);
            return in_use();
        }
        // The state read before the lock may be older than the one its last
        // holder wrote before letting go: only the one read now counts.
        auto current = fd >= 0 ? saved_state(library, newest->token) : std::nullopt;
        if (fd >= 0 && (!current || current->name != name || current->size != size)) {
            ::close(fd); // finished or discarded meanwhile: look again
            continue;
        }
        struct ::stat st {};
        std::optional<TransferHash> restored;
        // A data file with a second link is a published file whose old name
        // survived a crash where the rename did not clear it (see
        // Library::publish_entry): resuming would truncate the published file.
        if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
            static_cast<std::uint64_t>(st.st_size) >= current->durable &&
            ::ftruncate(fd, static_cast<off_t>(current->durable)) == 0) {
            restored = prefix_hash(fd, *current, hash);
        }
        if (restored) {
            std::unique_ptr<PartialUpload> upload(new PartialUpload(library, fd, current->token, name, size));
            upload->received_ = current->durable;
            upload->durable_ = current->durable;
            upload->hash_ = *restored;
            // Refused for space, the kept bytes stay: they are what lets
            // the client resume once space returns (PROTOCOL.md 4.7).
            if (auto refused = reserve_space(fd, current->durable, size - current->durable, name)) {
                return *refused;
            }
            upload->reserved_ = true;
            return upload;
        }
        // Unusable leftovers (data shorter than recorded, unreadable):
        // drop them and start over.
        if (fd >= 0) {
            ::close(fd);
        }
        library.unlink_entry(data);
        library.unlink_entry(state_name(newest->token));
        break;
    }
    const std::string token = new_token();
    const std::string data = data_name(token);
    // Private until the commit gives it its final mode: nobody else reads an
    // upload in progress (nor a replacement of a private file).
    const int fd = library.open_entry(data, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return file_error(errno, "cannot create upload file for", name);
    }
    if (!try_lock(fd)) {
        ::close(fd);
        library.unlink_entry(data);
        return Error{ErrorCode::io_error, "cannot lock upload file for \"" + name + "\""};
    }
    std::unique_ptr<PartialUpload> upload(new PartialUpload(library, fd, token, name, size));
    upload->hash_ = TransferHash(hash);
    if (auto refused = reserve_space(fd, 0, size, name)) {
        upload->discard();
        return *refused;
    }
    upload->reserved_ = true;
    if (auto error = upload->write_first_state()) {
        upload->discard();
        return *error;
    }
    return upload;
}

PartialUpload::~PartialUpload()
{
    // A kept upload gives back the space set aside for the bytes it has not
    // received: others may use it until the client resumes (and reserves it
    // again). Truncating frees space allocated beyond the end on most file
    // systems (ext4, XFS); punching a hole there does on the others (tmpfs).
    if (reserved_ && !discarded_ && received_ < size_) {
        (void)::ftruncate(fd_, static_cast<off_t>(received_));
        (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(received_),
                          static_cast<off_t>(size_ - received_));
    }
    ::close(fd_);
}

std::string PartialUpload::data_file() const
{
    return data_name(token_);
}

std::string PartialUpload::state_file() const
{
    return state_name(token_);
}

std::optional<Error> PartialUpload::append(std::span<const char> bytes)
{
    if (bytes.size() > size_ - received_) {
        return Error{ErrorCode::size_mismatch, "more data than the declared size of " + std::to_string(size_)};
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t wrote =
            ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(received_ + done));
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            return file_error(errno, "cannot write upload of", name_);
        }
        done += static_cast<std::size_t>(wrote);
    }
    // Start writing these pages to the disk now, without waiting: the
    // fdatasync of the next checkpoint (and of the commit) then finds little
    // left to do, instead of stalling the upload while it flushes 64 MiB.
    ::sync_file_range(fd_, static_cast<off_t>(received_), static_cast<off_t>(bytes.size()), SYNC_FILE_RANGE_WRITE);
    hash_.update(bytes.data(), bytes.size());
    const std::uint64_t before = received_;
    received_ += bytes.size();
    if (before / kCheckpointInterval != received_ / kCheckpointInterval) {
        return checkpoint();
    }
    return std::nullopt;
}

std::optional<Error> PartialUpload::checkpoint()
{
    if (durable_ == received_) {
        return std::nullopt;
    }
    if (::fdatasync(fd_) != 0) {
        return file_error(errno, "cannot sync upload of", name_);
    }
    durable_ = received_;
    return write_state();
}

std::string PartialUpload::state_text() const
{
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    ResumeState state;
    state.name = name_;
    state.size = size_;
    state.bytes_held = durable_;
    state.hash_state = hash_.save_state();
    state.written_ns = nanoseconds(now);
    return encode_resume_state(state);
}

// The state of a new upload holds no bytes, so it is not synced: lost in a
// crash, a resume starts at 0, just as it would have said. Until then it
// names the upload in progress, so that another put of the name and size
// finds it (busy) and a keep or checkpoint replaces it with a durable one.
// Created under the name lock, so no put of this name reads it half written
// (a put of another name skips a state it cannot parse, which is not its
// own anyway), and the token is fresh, so nothing is replaced.
std::optional<Error> PartialUpload::write_first_state()
{
    const std::string text = state_text();
    const int fd = library_.open_entry(state_file(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return file_error(errno, "cannot write upload state of", name_);
    }
    const auto written = sys::write_all(fd, std::span<const char>(text));
    ::close(fd);
    if (!written.ok()) {
        library_.unlink_entry(state_file());
        return file_error(written.error, "cannot write upload state of", name_);
    }
    return std::nullopt;
}

std::optional<Error> PartialUpload::write_state()
{
    const std::string text = state_text();
    // Written beside and renamed over, so a crash leaves the old state or the
    // new one, never half of one.
    const std::string temp = state_file() + ".tmp";
    const int fd = library_.open_entry(temp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return file_error(errno, "cannot write upload state of", name_);
    }
    const auto written = sys::write_all(fd, std::span<const char>(text));
    const bool synced = written.ok() && ::fdatasync(fd) == 0;
    const int saved_errno = written.ok() ? errno : written.error;
    ::close(fd);
    if (!synced || library_.rename_entry(temp, state_file()) != 0) {
        const int failure = synced ? errno : saved_errno;
        library_.unlink_entry(temp);
        return file_error(failure == 0 ? EIO : failure, "cannot write upload state of", name_);
    }
    // The state's name too (the first state, made without a sync, may not
    // be on the disk yet): once per checkpoint or keep, so cheap.
    return library_.sync_root();
}

Result<FileInfo> PartialUpload::commit(std::string_view expected_digest)
{
    if (received_ != size_) {
        if (auto error = checkpoint()) {
            if (error->code == ErrorCode::no_space) {
                discard(); // see Session::finish_upload_job
            }
            return *error;
        }
        return Error{ErrorCode::size_mismatch, "received " + std::to_string(received_) + " of " +
                                                   std::to_string(size_) + " bytes; the rest can be resumed"};
    }
    const std::string digest = hash_.hex_digest();
    if (digest != expected_digest) {
        discard();
        return Error{ErrorCode::hash_mismatch, "the data received hashes to " + digest + ", not " +
                                                   std::string(expected_digest) + "; nothing was published"};
    }
    // Published into a folder that --root no longer names, the file would
    // be lost to every client while the uploader is told "ok".
    if (auto gone = library_.check_root()) {
        return *gone;
    }
    if (auto error = take_final_attributes()) {
        discard();
        return *error;
    }
    // The time the client asked for, set once no write can move it again;
    // the fsync below makes it durable with the data, before the publish.
    if (mtime_) {
        const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(*mtime_), 0}};
        if (::futimens(fd_, times) != 0) {
            const int saved = errno;
            discard();
            return file_error(saved, "cannot set the modification time of", name_);
        }
    }
    if (::fsync(fd_) != 0) {
        const int saved = errno;
        discard();
        return file_error(saved, "cannot sync upload of", name_);
    }
    struct ::stat st {};
    ::fstat(fd_, &st);
    // Into the target's folder, resolved afresh: it may have been renamed
    // or swapped since the put began.
    if (library_.publish_entry(data_file(), name_) != 0) {
        const int saved = errno;
        discard();
        if (saved == ENOTDIR || saved == ELOOP) {
            return Error{ErrorCode::not_a_folder, "the folder of \"" + name_ + "\" is no longer a folder"};
        }
        return file_error(saved, "cannot publish", name_);
    }
    // The state's removal needs no sync: a state that outlives its data
    // file names nothing to resume (the resume drops it) and expires.
    library_.unlink_entry(state_file());
    discarded_ = true;
    return file_info(name_, st);
}

// A replacement keeps what the replaced file had: its permission bits and,
// where this process may set them, its owner and group (as root, or a group
// the server's user belongs to). A new file gets Library::new_file_mode().
std::optional<Error> PartialUpload::take_final_attributes()
{
    struct ::stat old {};
    if (library_.stat_path(name_, old) != 0 || !S_ISREG(old.st_mode)) {
        if (::fchmod(fd_, library_.new_file_mode()) != 0) {
            return file_error(errno, "cannot set the mode of the upload of", name_);
        }
        return std::nullopt;
    }
    struct ::stat own {};
    if (::fstat(fd_, &own) == 0 && (own.st_uid != old.st_uid || own.st_gid != old.st_gid)) {
        // Failing to keep the owner is no reason to refuse the upload: a
        // non-root server could never replace another user's file otherwise.
        if (::fchown(fd_, old.st_uid, old.st_gid) != 0) {
            (void)::fchown(fd_, static_cast<uid_t>(-1), old.st_gid);
        }
    }
    // Only the permission bits: new content from a peer must never become a
    // set-user-ID or set-group-ID program because the old one was.
    if (::fchmod(fd_, old.st_mode & 0777) != 0) {
        return file_error(errno, "cannot set the mode of the upload of", name_);
    }
    return std::nullopt;
}

void PartialUpload::discard()
{
    if (discarded_) {
        return;
    }
    discarded_ = true;
    library_.unlink_entry(data_file());
    library_.unlink_entry(state_file());
}

std::size_t remove_stale_partials(const Library& library, std::chrono::seconds ttl)
{
    const std::time_t now = std::time(nullptr);
    // Group by token, keeping the newest modification time of its files.
    std::map<std::string, std::time_t> newest_by_token;
    std::vector<std::string> names;
    for (std::string& entry : library.entries_with_prefix(kPartialPrefix)) {
        const std::string_view name = entry;
        std::string_view token = name.substr(kPartialPrefix.size());
        token = token.substr(0, token.find('.'));
        struct ::stat st {};
        if (library.stat_entry(entry, st) != 0) {
            continue;
        }
        auto& newest = newest_by_token[std::string(token)];
        newest = std::max(newest, st.st_mtime);
        names.push_back(std::move(entry));
    }

    std::size_t removed = 0;
    for (const auto& [token, newest] : newest_by_token) {
        if (now - newest < ttl.count()) {
            continue;
        }
        const std::string data = data_name(token);
        const int fd = library.open_entry(data, O_RDONLY | O_NONBLOCK);
        if (fd >= 0 && !try_lock(fd)) {
            ::close(fd); // in use by a connection, here or on another server
            continue;
        }
        for (const auto& name : names) {
            if (name.starts_with(data)) {
                library.unlink_entry(name);
            }
        }
        if (fd >= 0) {
            ::close(fd);
        }
        ++removed;
    }
    return removed;
}

} // namespace ferry::server
