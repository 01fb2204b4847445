#include "partial_upload.hpp"

#include "digest.hpp"
#include "estale.hpp"
#include "hex.hpp"
#include "log.hpp"
#include "posix_io.hpp"
#include "resume_state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace ferry::server {

namespace {

// An upload's token: a hash of its path, declared size and maker, so that
// a put finds the kept upload it may resume (or must wait for) with one
// open of its name, whatever else the root holds. 128 bits of SHA-256: two
// uploads in the root never share one by chance (and a resume checks the
// state's path, size and owner anyway). The maker is part of it so that
// another access identity's put of that path and size neither learns of
// that upload (`busy`) nor drops its kept bytes: it works on a partial of
// its own (PROTOCOL.md 4.7). Without tokens every client is `anonymous`,
// whose tokens are those of the builds before owners (size and path only),
// so their kept uploads still resume. A path holds no newline (5.1), so
// the fields cannot run into each other.
std::string upload_token(const std::string& name, std::uint64_t size, std::string_view owner)
{
    std::string key = std::to_string(size) + '\n' + name;
    if (owner != kAnonymousOwner) {
        key += '\n';
        key += owner;
    }
    Sha256 hash;
    hash.update(key.data(), key.size());
    return hash.hex_digest().substr(0, 32);
}

struct SavedState {
    std::string name;
    std::uint64_t size = 0;
    std::uint64_t durable = 0;
    std::string hash_state;
    std::optional<std::string> owner;
    std::optional<PartIdentity> part;
};

PartIdentity identity_of(const struct ::stat& st)
{
    return PartIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::uint64_t>(st.st_size),
                        sys::nanoseconds_since_epoch(st.st_mtim),
                        sys::nanoseconds_since_epoch(st.st_ctim)};
}

// Whether `owner` may resume the kept upload of this state. A state of an
// older build names nobody: anyone who could reach it may have made it, so
// it is taken as made by everyone alike, which holds only where every client
// is one identity (no tokens); with tokens it is started over.
bool may_resume(const SavedState& state, std::string_view owner)
{
    return state.owner.value_or(std::string(kAnonymousOwner)) == owner;
}

// Whether an entry at one of the server's names in the root (lstat'ed,
// never followed) is a file this server made: a regular file of its user
// with one name. Anything else there (another user's file, a second name of
// some file, a link, a FIFO, a socket, a device, a folder) was put there by
// someone else, the names being predictable, or is a published file whose
// old name a crash kept: the sweep never removes it.
bool made_by_server(const struct ::stat& st)
{
    static const uid_t server_user = ::geteuid(); // ferryd never changes its user
    return S_ISREG(st.st_mode) && st.st_uid == server_user && st.st_nlink == 1;
}

// Reads a whole small file relative to the root; refuses anything odd.
std::optional<std::string> read_small_file(const Library& library, const std::string& name)
{
    // Not even opened unless a regular file: the open of a device can act.
    struct ::stat found {};
    if (library.stat_entry(name, found) != 0 || !S_ISREG(found.st_mode)) {
        return std::nullopt;
    }
    const int fd = library.open_entry(name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        return std::nullopt;
    }
    struct ::stat st {};
    // A state is one the server wrote (PROTOCOL.md 4.7): a second name of
    // another file, or another user's file, vouches for nothing.
    if (::fstat(fd, &st) != 0 || !made_by_server(st) || st.st_size > 64 * 1024) {
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

std::string data_name(std::string_view token)
{
    return partial_entry(token, PartialFile::data);
}

std::string state_name(std::string_view token)
{
    return partial_entry(token, PartialFile::state);
}

std::string spare_name(std::string_view token)
{
    return partial_entry(token, PartialFile::spare);
}

// Whether an upload of `size` bytes takes its state files' room at the put
// (reserve_state_files). Below 1 MiB it does not: two more files and two
// fallocates at every put doubled ferryd's CPU on a push of many small
// files (2,000 files of 1 KiB, ext4: 1.8x), to protect at most 1 MiB of a
// transfer. Such an upload cut while its file system is full may find no
// room for its state, and is then sent again from its start; the file at
// its name is never touched either way (PROTOCOL.md 4.5).
bool takes_state_room(std::uint64_t size)
{
    return size >= kStateRoomFrom;
}

// The state of one kept upload (in protocol/resume_state's format), read
// under its lock: none, or one that is not of this path and size, means no
// bytes to resume.
std::optional<SavedState> saved_state(const Library& library, const std::string& token, const std::string& name,
                                      std::uint64_t size)
{
    const auto text = read_small_file(library, state_name(token));
    if (!text) {
        return std::nullopt;
    }
    auto decoded = decode_resume_state(*text);
    if (!decoded || decoded->name != name || decoded->size != size) {
        return std::nullopt;
    }
    return SavedState{std::move(decoded->name),  decoded->size, decoded->bytes_held, std::move(decoded->hash_state),
                      std::move(decoded->owner), decoded->part};
}

// One fallocate(2) of [offset, offset + length), FALLOC_FL_KEEP_SIZE so that
// the file's size (which a resume reads as the bytes received) stays: 0 or
// the errno.
int allocate(int fd, std::uint64_t offset, std::uint64_t length)
{
    int result = 0;
    do {
        result = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(length));
    } while (result != 0 && errno == EINTR);
    return result == 0 ? 0 : errno;
}

// The refusal of `length` bytes, its figures taken at one moment (under the
// reservation's lock): where the file system reports the room but would
// not give it, the message says so rather than contradict itself.
Error space_refused(std::uint64_t length, std::optional<std::uint64_t> free, const std::string& name,
                    std::string_view what)
{
    std::string message = "the upload of \"" + name + "\" needs " + std::to_string(length) + " more bytes";
    message += what;
    if (!free) {
        message += ", which the disk cannot give";
    } else if (*free < length) {
        message += "; the disk has " + std::to_string(*free) + " free";
    } else {
        message += ", which the file system refused although it reports " + std::to_string(*free) +
                   " free (held by other writers, or needed for its own records)";
    }
    return Error{ErrorCode::no_space, message};
}

constexpr std::string_view kForState = " for its state file";
constexpr std::string_view kWithState = ", its state files included";

bool out_of_space(int error)
{
    return error == ENOSPC || error == EDQUOT || error == EFBIG;
}

// The bytes of [offset, offset + length) that a file of status `st` may
// still have to take from the file system: its blocks past `offset`
// (st_blocks counts 512-byte units, stat(2)) are taken already. An estimate
// from above for a file with holes; exact for the files reserved here, which
// hold data only below `offset` (a part cut back to its durable bytes), or
// none past it.
std::uint64_t still_needed(const struct ::stat& st, std::uint64_t offset, std::uint64_t length)
{
    const auto allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
    const std::uint64_t past_offset = allocated > offset ? allocated - offset : 0;
    return length > past_offset ? length - past_offset : 0;
}

std::uint64_t still_needed(int fd, std::uint64_t offset, std::uint64_t length)
{
    struct ::stat st {};
    return ::fstat(fd, &st) == 0 ? still_needed(st, offset, length) : length;
}

// Gives back what a failed fallocate(2) of [offset, offset + length) took:
// ext4 and XFS keep the blocks they had allocated before ENOSPC, which would
// leave the file system full until the upload's file goes. A truncate to the
// file's own size frees blocks past its end there (ext4_setattr truncates
// preallocated blocks even when the size does not change); a hole punched
// past the end does on the others. Nothing below the end is touched: a
// state file reserved in place keeps its record.
void give_back(int fd, std::uint64_t offset, std::uint64_t length)
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return;
    }
    // Only where blocks lie past the end (a file system that gave back what
    // it took has none): a truncate moves the file's mtime and ctime, which
    // a kept upload's state records, and its next resume would then read
    // and hash its kept bytes again.
    const auto block = static_cast<std::uint64_t>(st.st_blksize > 0 ? st.st_blksize : 512);
    const auto end = static_cast<std::uint64_t>(st.st_size);
    if (static_cast<std::uint64_t>(st.st_blocks) * 512 <= (end + block - 1) / block * block) {
        return;
    }
    (void)::ftruncate(fd, st.st_size);
    const std::uint64_t from = std::max(offset, end);
    if (from < offset + length) {
        (void)::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                          static_cast<off_t>(offset + length - from));
    }
}

// Sets aside the disk space for bytes [offset, offset + length) of an
// upload (or of its state files), so that what cannot fit is refused at the
// put rather than after gigabytes, and a concurrent upload cannot take the
// space meanwhile. A file system without fallocate gets a check of its free
// space instead, which reserves nothing.
//
// What the file system says it cannot hold (statvfs(2)'s f_bavail) is
// refused before any fallocate: ext4 and XFS fill every free block before
// failing, and for that moment every other writer on the file system
// (another upload's checkpoint, a mkdir, the log, other programs) meets
// ENOSPC. A fallocate that fails anyway (the file system's own records,
// another writer meanwhile) gives back what it took before the free space is
// measured for the message, and one that fails while the file system reports
// the room is tried once more (another process's writer may have let go).
// One reservation at a time in this process, so that two at once cannot
// both fail where either alone fits. `what`: what the bytes are for, where
// not the data (" for its state"). `beside`: bytes the upload reserves next
// (its state files' room), which the first check counts too, so that an
// upload that fits only without them is refused before it fills the disk.
std::optional<Error> reserve_space(int fd, std::uint64_t offset, std::uint64_t length, const std::string& name,
                                   std::string_view what = {}, std::uint64_t beside = 0)
{
    if (length == 0) {
        return std::nullopt;
    }
    static std::mutex reserving;
    const std::lock_guard<std::mutex> held(reserving);
    auto free = sys::free_bytes(fd);
    if (const std::uint64_t needed = still_needed(fd, offset, length) + beside; free && *free < needed) {
        return space_refused(needed, free, name, beside > 0 ? kWithState : what);
    }
    int failure = allocate(fd, offset, length);
    if (failure == 0) {
        return std::nullopt;
    }
    if (out_of_space(failure)) {
        give_back(fd, offset, length);
    }
    free = sys::free_bytes(fd);
    if (out_of_space(failure) && free && *free >= length) {
        failure = allocate(fd, offset, length);
        if (failure == 0) {
            return std::nullopt;
        }
        if (out_of_space(failure)) {
            give_back(fd, offset, length);
        }
        free = sys::free_bytes(fd);
    }
    if (out_of_space(failure)) {
        return space_refused(length, free, name, what);
    }
    if (failure == EOPNOTSUPP || failure == ENOSYS) {
        if (free && *free < length) {
            return space_refused(length, free, name, what);
        }
        return std::nullopt;
    }
    return file_error(failure, "cannot reserve space for the upload of", name);
}

// An error about one of the server's own files in the root: it names that
// file, which is what an administrator must look at, and the upload.
Error bookkeeping_error(int errno_value, std::string_view what, const std::string& entry, const std::string& name)
{
    const std::string message = std::string(what) + " \"" + entry + "\" in the served folder (the upload of \"" +
                                name + "\"): " + std::strerror(errno_value);
    if (errno_value == ENOSPC || errno_value == EDQUOT || errno_value == EFBIG) {
        return Error{ErrorCode::no_space, message};
    }
    if (errno_value == EACCES || errno_value == EPERM) {
        return Error{ErrorCode::forbidden, message}; // a refusal, as file_error
    }
    return Error{ErrorCode::io_error, message};
}

// Clears the name of one of the server's own files in the root (a partial,
// a state, a state's temporary) of whatever stands there. Tokens are
// predictable, so anyone who may write in the root may have put there a
// FIFO (whose open would block a pool thread for good), a hard link to a
// file outside the root (which a write would change), a symlink, a device
// or a folder. Dropping the name changes neither what a link leads to nor
// the file a hard link shares. A folder goes only when empty: what a full
// one holds may matter to someone, and only its owner can tell.
std::optional<Error> drop_entry(const Library& library, const std::string& entry, const std::string& name)
{
    if (library.unlink_entry(entry) == 0 || errno == ENOENT) {
        return std::nullopt;
    }
    if (errno == EISDIR) {
        if (library.unlink_entry(entry, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            return std::nullopt;
        }
        if (errno == ENOTEMPTY || errno == EEXIST) {
            return Error{ErrorCode::not_regular_file,
                         "\"" + entry + "\" in the served folder, where ferryd keeps the upload of \"" + name +
                             "\", is a folder that is not empty, so ferryd leaves it; move it away (or remove "
                             "it if nothing in it is needed) and put again"};
        }
    }
    return bookkeeping_error(errno, "cannot remove", entry, name);
}

// A new file of the server's own at `entry`, open for writing: whatever
// stood at the name is dropped first (see drop_entry), and O_EXCL makes
// sure the file written is the one just made, never one put there in
// between. O_NONBLOCK: nothing this open can meet makes it wait.
Result<int> create_fresh(const Library& library, const std::string& entry, const std::string& name)
{
    for (int attempt = 0; attempt < 10; ++attempt) {
        if (auto refused = drop_entry(library, entry, name)) {
            return *refused;
        }
        const int fd = library.open_entry(entry, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK, 0600);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EEXIST) {
            return bookkeeping_error(errno, "cannot create", entry, name);
        }
    }
    return Error{ErrorCode::busy, "\"" + entry + "\" in the served folder (the upload of \"" + name +
                                      "\") keeps being made again by someone else; try again"};
}

bool try_lock(int fd)
{
    return ::flock(fd, LOCK_EX | LOCK_NB) == 0;
}

// The hash, of the kind asked for, of the kept bytes that `state` describes,
// or nothing when they are not those bytes (the upload then starts over).
// The saved hash state is trusted only while the data file is the very file
// the state recorded (`held`: same inode, size, mtime and ctime, which a
// write always moves and no user can set back). Anything else (a write
// since, bytes written past the last checkpoint before a crash, a state of
// an older build that recorded no identity, another server's view of the
// file) costs one read of the prefix, which must give the state's digest.
// A state whose hash cannot be restored cannot vouch for anything.
std::optional<TransferHash> verified_prefix(int fd, const struct ::stat& held, const SavedState& state, HashKind kind)
{
    auto saved = TransferHash::restore_state(state.hash_state);
    if (!saved || static_cast<std::uint64_t>(held.st_size) < state.durable) {
        return std::nullopt;
    }
    const bool unchanged = state.part && *state.part == identity_of(held) && state.part->size == state.durable;
    if (!unchanged) {
        TransferHash again(saved->kind());
        if (hash_prefix(fd, state.durable, again, state.name) || again.hex_digest() != saved->hex_digest()) {
            return std::nullopt;
        }
    }
    if (saved->kind() == kind) {
        return saved;
    }
    // A resume that switched hashes: one more read of the prefix.
    TransferHash hash(kind);
    if (hash_prefix(fd, state.durable, hash, state.name)) {
        return std::nullopt;
    }
    return hash;
}

// Gives the file `fd` the attributes a commit recorded for it: owner and
// group first (while it is still the partial's 0600), then the ACL, which
// sets the permission bits at once (acl(5)), then the mode; as the commit
// does, an ACL that cannot be set leaves the file at 0600, never wider, and
// an owner that cannot be set keeps the group where it may.
void apply_intent(int fd, const PublishIntent& intent)
{
    if (::fchown(fd, intent.uid, intent.gid) != 0) {
        (void)::fchown(fd, static_cast<uid_t>(-1), intent.gid);
    }
    if (sys::set_acl_text(fd, intent.acl) == 0) {
        (void)::fchmod(fd, static_cast<mode_t>(intent.mode));
    }
}

// How long a commit waits for a live commit of the same path that is
// setting the attributes of the file it published (take_final_attributes):
// at most 50 looks, 2 ms apart.
constexpr int kInFlightLooks = 50;
constexpr useconds_t kInFlightPauseUs = 2000;

// Whether `st` is the file a record or an intent names, beneath the root
// whose device number is `root_device`: a regular file with that device
// and the recorded inode number. The device is this server's own root's,
// never the recorded one: each mount of a network file system has a device
// number of its own (GlusterFS's FUSE mounts: 40 on one, 41 on the other),
// while the inode number is the file's on every mount; so a commit killed
// on one server of a shared folder is settled by another, and an intent
// written through one mount is read through the other. A file on another
// file system or btrfs subvolume beneath the root, whose inode numbers
// restart, never matches.
bool same_inode(const struct ::stat& st, const PublishIntent& intent, dev_t root_device)
{
    return S_ISREG(st.st_mode) && st.st_dev == root_device && static_cast<std::uint64_t>(st.st_ino) == intent.inode;
}

// Opens the entry at a name (the partial's in the root, or the target's
// beneath it) only if it is a regular file with the recorded identity, by
// `open`; looked at first, so that nothing else is ever opened. -1: not so.
template <class Stat, class Open>
int open_recorded(const PublishIntent& intent, dev_t root_device, Stat&& stat, Open&& open)
{
    struct ::stat named {};
    if (stat(named) != 0 || !same_inode(named, intent, root_device)) {
        return -1;
    }
    const int fd = open();
    struct ::stat held {};
    if (fd >= 0 && (::fstat(fd, &held) != 0 || !same_inode(held, intent, root_device))) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Removes the state that held a record, if it is still the one read
// (`read_at`): a put since may have written one of its own. True: gone.
bool drop_record(const Library& library, const std::string& state, const struct ::stat& read_at)
{
    struct ::stat now {};
    if (library.stat_entry(state, now) == 0 && now.st_ino == read_at.st_ino && now.st_dev == read_at.st_dev) {
        library.unlink_entry(state);
    }
    return true;
}

// Whether the file a record names is still as its commit left it after the
// rename: the partial's size and modification time (the state's `part`,
// taken when the record was written; a rename keeps both), one link, and
// on the way from the partial's attributes (0600, the server's user) to the
// recorded ones. Device and inode alone name a file only while it lives: one
// deleted since, and its inode number given to another file renamed to the
// same name, must never be handed to the recorded owner.
bool left_by_the_commit(const struct ::stat& st, const PublishIntent& intent, const std::optional<PartIdentity>& part)
{
    const auto mode = static_cast<std::uint32_t>(st.st_mode & 07777);
    const std::int64_t mtime_ns = sys::nanoseconds_since_epoch(st.st_mtim);
    return part && static_cast<std::uint64_t>(st.st_size) == part->size && mtime_ns == part->mtime_ns &&
           st.st_nlink == 1 && (st.st_uid == ::geteuid() || st.st_uid == intent.uid) &&
           (mode == 0600 || mode == intent.mode);
}

// Unlinks `entry` if it is still a file of the server's: looked at again
// just before, so that what took the name since the listing stays.
bool remove_own(const Library& library, const std::string& entry)
{
    struct ::stat st {};
    return library.stat_entry(entry, st) == 0 && made_by_server(st) && library.unlink_entry(entry) == 0;
}

// The name of the publish record of the upload of `path` in the root.
std::string record_name(const std::string& path)
{
    return partial_entry(publish_record_key(path), PartialFile::record);
}

// The extended attribute in which a commit leaves its intent on the file it
// publishes, from just before the rename until its owner is set, the ACL
// and mode following at once (PROTOCOL.md 4.5): a commit of the same name
// that finds that file still held then reads what it will have, however
// long its holder takes. A root ferryd writes it in the trusted namespace, which only a
// process with CAP_SYS_ADMIN may read or write (xattr(7)), so no user can
// plant one on a file of theirs; another ferryd in the user namespace, on
// its own files only (their owner alone may write it).
const char* intent_attribute()
{
    static const char* const name = ::geteuid() == 0 ? "trusted.ferry.publishing" : "user.ferry.publishing";
    return name;
}

// Removes the intent from `fd`, whoever left it; none there (ENODATA), or
// no attributes on this file system, is the same outcome, so no error.
void clear_intent(int fd)
{
    (void)::fremovexattr(fd, intent_attribute());
}

// How long after it was written an intent is believed (seconds): a commit
// at work sets its file's attributes within moments of its rename, while a
// killed commit's intent may stay on a file that something else holds later.
constexpr std::int64_t kIntentTrustSeconds = 60;

// Writes the intent on the partial `fd` (of identity `partial`); false where
// the file system keeps no such attribute (then a commit that meets the file
// held waits for it as before) or refused it: then one a killed commit left
// on this partial (resumed since) goes, so that none stays to be believed.
bool mark_intent(int fd, const struct ::stat& partial, std::uint32_t uid, std::uint32_t gid, std::uint32_t mode,
                 const std::string& acl)
{
    const std::string value = encode_publish_intent(
        PublishIntent{0, static_cast<std::uint64_t>(partial.st_ino), uid, gid, mode, acl}, std::time(nullptr));
    if (::fsetxattr(fd, intent_attribute(), value.data(), value.size(), 0) == 0) {
        return true;
    }
    clear_intent(fd); // ENOSPC (a long ACL), EDQUOT, E2BIG...
    return false;
}

// The intent written on `fd` (intent_attribute()), as it was written; none
// where there is none, or where it cannot be read or decoded.
std::optional<WrittenIntent> written_intent(int fd)
{
    std::string value(128, '\0');
    ssize_t got = ::fgetxattr(fd, intent_attribute(), value.data(), value.size());
    if (got < 0 && errno == ERANGE) { // a long ACL: ask its size
        got = ::fgetxattr(fd, intent_attribute(), nullptr, 0);
        if (got > 0 && static_cast<std::size_t>(got) <= kMaxResumeStateSize) {
            value.resize(static_cast<std::size_t>(got));
            got = ::fgetxattr(fd, intent_attribute(), value.data(), value.size());
        } else {
            got = -1;
        }
    }
    if (got <= 0) {
        return std::nullopt;
    }
    value.resize(static_cast<std::size_t>(got));
    return decode_publish_intent(value);
}

// The intent a live commit left on the 0600 file `fd` (`st`: its fstat) that
// it holds, where the file is still as that commit left it: the inode the
// intent names beneath this root (not a copy that took the attribute along),
// one link (no second name a user made), and owned by the server's user or
// the intent's (the owner comes first: take_final_attributes). Nothing
// otherwise, or where a non-root server's file is not its own (its user
// namespace attribute, which that owner alone may write).
std::optional<PublishIntent> intent_on(int fd, const struct ::stat& st, dev_t root_device)
{
    static const uid_t server_user = ::geteuid();
    if (st.st_nlink != 1 || (server_user != 0 && st.st_uid != server_user)) {
        return std::nullopt;
    }
    const auto written = written_intent(fd);
    if (!written) {
        return std::nullopt;
    }
    const PublishIntent& intent = written->intent;
    // A live commit gives its file the attributes within moments; one
    // written longer ago than kIntentTrustSeconds either way (the servers
    // of a shared folder keep their clocks near) is a killed commit's,
    // however the file is held now.
    const std::int64_t age = static_cast<std::int64_t>(std::time(nullptr)) - written->written_s;
    if (age > kIntentTrustSeconds || age < -kIntentTrustSeconds || !same_inode(st, intent, root_device) ||
        (st.st_uid != server_user && st.st_uid != intent.uid)) {
        return std::nullopt;
    }
    return intent;
}

// Whether `fd` still carries the intent its killed commit wrote on it
// before the rename, the very one the record holds (the device aside: the
// attribute names none). The inode number, size and mtime that
// left_by_the_commit checks do not tell the published file from another
// that took its freed inode number since (ext4 hands it out again at once)
// with the size and mtime a client chose alike, renamed onto the name: that
// file was given the record's owner and mode (attack round 74, F1: another
// identity's 0600 upload became 0666 and another user's). A file without
// the attribute (the commit could not write it, or was killed after its
// last step but the mode) keeps what it has: narrower, never wider. Where
// the file system keeps no such attribute at all (ENOTSUP: no commit could
// write one), the identity is all there is to go by, as before.
bool carries_the_intent(int fd, const PublishIntent& recorded)
{
    if (::fgetxattr(fd, intent_attribute(), nullptr, 0) < 0 && errno == ENOTSUP) {
        return true;
    }
    const auto written = written_intent(fd);
    if (!written) {
        return false;
    }
    PublishIntent found = written->intent;
    found.device = recorded.device;
    return found == recorded;
}

// What a look at a publish record found.
enum class Settled {
    nothing,            // no record at that name
    done,               // the record is gone (its file settled, or nothing left to mend)
    partial_in_flight,  // its partial is still in the root, in use: a commit before its rename
    publish_in_flight,  // its published file is locked: a live commit sets the attributes itself
};

// Settles a record of a publish (PublishIntent), left by a commit killed
// between its rename and the final attributes (PROTOCOL.md 4.7): `entry` is
// a record (`.ferry-partial-<key>.publish`, named by the target's path
// alone, so that a commit of that path of any size and maker finds it), or
// the state of an upload that holds one (as builds before the record files
// wrote it; only the expiry sweep looks at those). The target's path is
// resolved beneath the root as every path is (never through a link); only a
// regular file there with the recorded device and inode, which no one holds
// locked, gets the recorded owner, ACL and mode, through a descriptor of
// that inode. Then the record goes, whatever was found (another file or
// none: the publish never happened or was replaced since, and there is
// nothing to mend), and with a state's record that upload's spare, unless
// a new upload of its token stands. Left alone while the upload's own
// commit may still be running: its partial still in the root, or the
// published file, locked by its holder. Idempotent, so that two ferryd
// sharing the root may both do it.
Settled settle_record(const Library& library, const std::string& entry, const PartialEntry& parsed)
{
    struct ::stat read_at {};
    if (library.stat_entry(entry, read_at) != 0) {
        return Settled::nothing;
    }
    const auto text = read_small_file(library, entry);
    const auto decoded = text ? decode_resume_state(*text) : std::nullopt;
    if (!decoded || !decoded->publishing) {
        return Settled::nothing;
    }
    std::string token = parsed.token;
    if (parsed.file == PartialFile::record) {
        if (publish_record_key(decoded->name) != parsed.token) {
            // Not the record of the path its name stands for: not written
            // by a commit (which names it so), so it vouches for nothing.
            drop_record(library, entry, read_at);
            return Settled::done;
        }
        token = upload_token(decoded->name, decoded->size, decoded->owner.value_or(std::string(kAnonymousOwner)));
    }
    const PublishIntent& intent = *decoded->publishing;
    const std::string data = data_name(token);
    // Not renamed yet: a commit at work (its lock), or one killed before the
    // rename, which leaves the verified data without a state, as ever.
    const int partial = open_recorded(
        intent, library.root_device(), [&](struct ::stat& st) { return library.stat_entry(data, st); },
        [&] { return library.open_entry(data, O_RDONLY | O_NONBLOCK | O_NOCTTY); });
    if (partial >= 0) {
        const bool in_use = !try_lock(partial);
        ::close(partial);
        if (in_use) {
            return Settled::partial_in_flight;
        }
    } else if (auto destination = library.publish_destination(decoded->name)) {
        const int fd = open_recorded(
            intent, library.root_device(), [&](struct ::stat& st) { return destination->stat(st); },
            [&] { return destination->open(O_RDONLY); });
        if (fd >= 0) {
            // Its commit, at work, holds it exclusively and sets them
            // itself. Shared holders only (a commit's look at the file it
            // replaces, a reader's lock) are no commit: settled.
            if (!try_lock(fd) && ::flock(fd, LOCK_SH | LOCK_NB) != 0) {
                ::close(fd);
                return Settled::publish_in_flight;
            }
            struct ::stat held {};
            if (::fstat(fd, &held) != 0 || !left_by_the_commit(held, intent, decoded->part) ||
                !carries_the_intent(fd, intent)) {
                ::close(fd);
                log_event("publish_record_dropped",
                          {{"path", decoded->name}, {"why", "the file at its name is no longer the one published"}});
                drop_record(library, entry, read_at);
                return Settled::done;
            }
            // What the killed commit left on it goes first: a mode without
            // the owner's write bit would keep a user namespace one there.
            clear_intent(fd);
            apply_intent(fd, intent);
            (void)::fsync(fd); // the inode's changes, before the record goes
            ::close(fd);
            log_event("publish_completed", {{"path", decoded->name}});
        }
    }
    drop_record(library, entry, read_at);
    struct ::stat upload {};
    if (parsed.file == PartialFile::state && library.stat_entry(data, upload) != 0 && errno == ENOENT) {
        // The state's spare, which no upload of that token uses any more.
        remove_own(library, spare_name(token));
    }
    return Settled::done;
}

// Settles the record of a publish to `path`, if one stands: one look at a
// name in the root where there is none (see settle_record).
Settled settle_record_of(const Library& library, const std::string& path)
{
    const std::string key = publish_record_key(path);
    return settle_record(library, partial_entry(key, PartialFile::record), PartialEntry{key, PartialFile::record});
}

// The access ACL a published upload takes, read before the rename and set
// first thing after it: setting one gives the file the ACL's permission
// bits at once (acl(5)), equal to the mode chmod'ed after it, so that chmod
// changes nothing; one that cannot be read (a new file's) or set leaves the
// file at 0600 (never wider) and the chmod is skipped.
class FinalAcl {
public:
    // A replaced file's exactly: dropped, a user it denied could read the
    // new file; none where it has none, for the partial was made in the
    // root and inherited the root's default ACL, which a chmod would open.
    // 0, or the errno that refuses the publish.
    int keep_replaced(const Library::Destination& destination)
    {
        replaced_ = std::make_unique<sys::AccessAcl>(); // 64 KiB: not on a pool thread's stack
        return destination.read_access_acl(*replaced_);
    }
    // The same through a descriptor of the replaced file (look_at_replaced).
    int keep_replaced(int fd)
    {
        replaced_ = std::make_unique<sys::AccessAcl>();
        return sys::read_access_acl(fd, *replaced_);
    }
    // The ACL a live commit records on the file it published, still to be
    // set (intent_on): that file's final one, as the commit will leave it.
    void keep_intended(std::string text) { intended_ = std::move(text); }
    // A new file's: what its folder's default ACL gives a file created there
    // with `create_mode` (0666, or the bits the put carried), as the kernel
    // would had it been created in that folder (sys::read_inherited_acl;
    // acl(5)); none where the folder has no default ACL (the root's,
    // inherited by the partial, goes). One that cannot be read does not
    // refuse the publish: the file stays 0600.
    void for_new_file(const Library::Destination& destination, mode_t create_mode)
    {
        unreadable_ = destination.read_inherited_acl(create_mode, inherited_);
    }
    // A new file's permission bits: the default ACL's where there is one (the
    // umask is not applied then, acl(5)), else `plain` (the create mode less
    // the umask).
    mode_t new_file_mode(mode_t plain) const { return inherited_.present() ? inherited_.mode() : plain; }

    // Sets it on the published file `fd`: 0, or the errno (then the caller
    // leaves the file at 0600; a new file whose folder's default ACL could
    // not be read sheds the root's, which the partial inherited).
    int set(int fd) const
    {
        if (intended_) {
            return sys::set_acl_text(fd, *intended_);
        }
        if (replaced_) {
            return sys::set_access_acl(fd, *replaced_);
        }
        if (unreadable_ != 0) {
            (void)sys::set_inherited_acl(fd, sys::InheritedAcl()); // none: never the root's
            return unreadable_;
        }
        return sys::set_inherited_acl(fd, inherited_);
    }
    // set()'s ACL as sys::access_acl_text writes it, for the commit's record:
    // "none" where set() leaves none (or cannot be described, which the
    // record then narrows to 0600 with no ACL).
    int text(std::string& text) const
    {
        if (intended_) {
            text = *intended_;
            return 0;
        }
        if (replaced_) {
            return sys::access_acl_text(*replaced_, text);
        }
        if (unreadable_ != 0) {
            text = sys::kNoAclText;
            return unreadable_; // set() leaves the file at 0600
        }
        return sys::inherited_acl_text(inherited_, text);
    }
    // What failed, for the log's warning.
    std::string what() const
    {
        if (replaced_ || intended_) {
            return "the replaced file's access ACL cannot be set";
        }
        return unreadable_ != 0 ? "its folder's default ACL cannot be read"
                                : "the access ACL from its folder's default ACL cannot be set";
    }

private:
    std::unique_ptr<sys::AccessAcl> replaced_;
    std::optional<std::string> intended_;
    sys::InheritedAcl inherited_;
    int unreadable_ = 0;
};

// How many looks a commit takes in all at what stands at the name it
// replaces (look_at_replaced): each file there is waited for
// kInFlightLooks times at most, and a name that keeps changing is read as
// it stands after this many (about 1 s of pauses at most).
constexpr int kReplacedLooks = 500;

// Whether `st` may be a file a commit published a moment ago and is still
// giving its final attributes: until then it is the partial's 0600 (its
// owner is set first, then the ACL, which sets the final permission bits at
// once, then the mode: take_final_attributes). Any other mode is final.
bool may_await_attributes(const struct ::stat& st)
{
    return (st.st_mode & 07777) == 0600;
}

// Looks at what stands at `destination`'s name before a commit replaces it.
// True: a regular file (`old`: its stat; its access ACL read into `acl`);
// false: nothing (a new file) or something else, never opened (a FIFO, a
// device: the publish refuses it). `error`: nonzero when what stands there
// cannot be read (its errno, or the ACL's), which refuses the publish: a
// file is never taken for none.
//
// Read as its last commit left it. Every upload's file is held with an
// exclusive flock by its connection from the put to after its commit,
// across the publish rename, so a 0600 file may be one a commit of this
// name (any size, any server of a shared folder) renamed there a moment
// ago, still to get its attributes. Such a file is read under a shared
// flock once no one holds it exclusively, and only after `settle` (the
// publish record a holder killed meanwhile left, PROTOCOL.md 4.7) found no
// commit at work on it; each file is waited for kInFlightLooks times,
// kInFlightPauseUs apart, at most (a program's own exclusive lock of a 0600
// file delays its replacement so long); files of other modes never wait.
// A file gone with its handle once opened (a network file system's ESTALE
// or ENOENT: replaced through another mount) is looked up again after the
// folder is read through. One this server may not open (a non-root
// ferryd, another user's file) is read by name, and looked at again when
// the name meanwhile holds another file.
bool look_at_replaced(const Library::Destination& destination, dev_t root_device, struct ::stat& old, FinalAcl& acl,
                      int& error, const std::function<Settled()>& settle)
{
    static const uid_t server_user = ::geteuid(); // ferryd never changes its user
    using Identity = std::pair<dev_t, ino_t>;
    std::map<Identity, int> waits; // pauses spent on each file
    std::set<Identity> settled;    // 0600 files found free, whose name's record was settled since
    for (int look = 1;; ++look) {
        error = 0;
        const bool last_look = look >= kReplacedLooks;
        // GlusterFS may answer a lookup of a name that another mount is
        // renaming a file over with ENOENT, once (tester round 27): taken
        // for a new file, the upload would get a new file's attributes over
        // the file there. So "nothing" must be said twice.
        if (destination.stat(old) != 0 && (errno != ENOENT || destination.stat(old) != 0)) {
            if (errno == ENOENT) {
                return false; // a new file
            }
            error = errno;
            return true;
        }
        if (!S_ISREG(old.st_mode)) {
            return false;
        }
        const Identity named{old.st_dev, old.st_ino};
        // One more look at this file after a pause, while it has pauses left.
        const auto wait_for = [&](const Identity& file) {
            if (last_look || ++waits[file] >= kInFlightLooks) {
                return false;
            }
            ::usleep(kInFlightPauseUs);
            return true;
        };
        const int fd = destination.open(O_RDONLY);
        if (fd < 0) {
            const int failed = errno;
            if (handle_gone(failed) && !last_look) {
                destination.refresh(); // replaced since the look
                continue;
            }
            // A 0600 file of the server's user is one it may open: not now
            // (out of descriptors, say), so it is waited for as if held.
            if (may_await_attributes(old) && old.st_uid == server_user && wait_for(named)) {
                continue;
            }
            error = acl.keep_replaced(destination);
            struct ::stat still {};
            if (!last_look && (destination.stat(still) != 0 || Identity{still.st_dev, still.st_ino} != named)) {
                continue; // the ACL read may be another file's
            }
            return true;
        }
        // 0: the file opened is the one looked at (`old` its fstat now);
        // else, with `fd` closed, kLookAgain, or the errno that refuses the
        // publish.
        constexpr int kLookAgain = -1;
        const auto check_opened = [&] {
            struct ::stat held {};
            const int failed = ::fstat(fd, &held) == 0 ? 0 : errno;
            if (failed == 0 && Identity{held.st_dev, held.st_ino} == named) {
                old = held;
                return 0;
            }
            ::close(fd);
            if ((failed == 0 || handle_gone(failed)) && !last_look) {
                destination.refresh();
                return kLookAgain;
            }
            return failed == 0 ? EAGAIN : failed; // EAGAIN: replaced at every look
        };
        if (const int checked = check_opened(); checked != 0) {
            if (checked == kLookAgain) {
                continue;
            }
            error = checked;
            return true;
        }
        if (may_await_attributes(old)) {
            if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
                const int refused = errno;
                if (refused == EWOULDBLOCK) {
                    // A live commit's file says what it will have, however
                    // long that commit takes to give it (an attribute not
                    // kept by this file system: waited for, as before).
                    if (const auto intent = intent_on(fd, old, root_device)) {
                        ::close(fd);
                        old.st_uid = intent->uid;
                        old.st_gid = intent->gid;
                        old.st_mode = (old.st_mode & S_IFMT) | intent->mode;
                        acl.keep_intended(intent->acl);
                        return true;
                    }
                    if (wait_for(named)) {
                        ::close(fd);
                        settled.erase(named);
                        continue;
                    }
                    // Held longer than a commit holds it: as it stands.
                } else if (handle_gone(refused) && !last_look) {
                    ::close(fd);
                    destination.refresh();
                    continue;
                }
            } else if (!settled.contains(named) && !last_look) {
                // Free: its commit is done, or was killed before the
                // attributes; a record it left is settled first (settle
                // takes an exclusive lock: this one goes).
                ::close(fd);
                if (settle() == Settled::publish_in_flight) {
                    (void)wait_for(named);
                } else {
                    settled.insert(named);
                }
                continue;
            }
            if (const int checked = check_opened(); checked != 0) { // under the lock: as its commit left it
                if (checked == kLookAgain) {
                    continue;
                }
                error = checked;
                return true;
            }
            if (settled.contains(named)) {
                // Free and settled: an intent still on it is a killed
                // commit's (below 1 MiB, no record settles it). It goes, so
                // that no later lock of the file makes it believed.
                clear_intent(fd);
            }
        }
        error = acl.keep_replaced(fd);
        ::close(fd); // and its lock
        if (handle_gone(error) && !last_look) {
            destination.refresh();
            continue;
        }
        return true;
    }
}

// The log's line for a published file whose final mode could not be set
// (`why`): it stays 0600, with a warning; or, where the name no longer
// holds it (`published`: its stat before the rename, null where it could
// not be taken; replaced or removed meanwhile, by hand or through another
// mount, where the refusal is often ESTALE), nothing of it stays to be
// 0600, and the line says so.
void log_unset_mode(const Library::Destination& destination, const struct ::stat* published,
                    const std::string& name, const std::string& why)
{
    struct ::stat now {};
    const bool gone = published != nullptr &&
                      (destination.stat(now) != 0 ? errno == ENOENT
                                                  : now.st_ino != published->st_ino || now.st_dev != published->st_dev);
    if (gone) {
        log_event("publish_superseded", {{"path", name},
                                         {"message", "\"" + name + "\" was replaced or removed before it took its " +
                                                         "final mode (" + why + "): what stands there is another file"}});
        return;
    }
    log_event("warning", {{"message", "\"" + name + "\" was published, but its mode stays 0600: " + why}});
}

} // namespace

UploadOwner upload_owner(std::string_view token)
{
    // Domain-separated, so that this hash of a token is good for nothing
    // but telling kept uploads apart.
    const std::string key = "ferry upload owner\n" + std::string(token);
    Sha256 hash;
    hash.update(key.data(), key.size());
    const auto bytes = from_hex(hash.hex_digest());
    UploadOwner owner{};
    if (bytes && bytes->size() == owner.size()) {
        std::copy(bytes->begin(), bytes->end(), owner.begin());
    }
    return owner;
}

std::string owner_text(const std::optional<UploadOwner>& owner)
{
    return owner ? "token-sha256:" + to_hex(*owner) : std::string(kAnonymousOwner);
}

Result<std::unique_ptr<PartialUpload>> PartialUpload::begin(const Library& library, const std::string& name,
                                                            std::uint64_t size, bool resume, HashKind hash,
                                                            bool parents, std::optional<std::int64_t> mtime,
                                                            std::string_view owner, const FolderModes& folder_modes)
{
    // Missing folders are made now, before any data: a put that will fail
    // to publish should fail now.
    if (auto refused = library.prepare_upload(name, parents, folder_modes)) {
        return *refused;
    }
    auto begun = begin_upload(library, name, size, resume, hash, owner);
    if (begun) {
        begun.value()->mtime_ = mtime;
    }
    return begun;
}

Result<std::unique_ptr<PartialUpload>> PartialUpload::begin_upload(const Library& library, const std::string& name,
                                                                   std::uint64_t size, bool resume, HashKind hash,
                                                                   std::string_view owner)
{
    // Every upload of this path and size by this identity, kept or in
    // progress, on this server or another sharing the folder, is this one
    // data file: a connection using it holds its flock.
    const std::string token = upload_token(name, size, owner);
    const std::string data = data_name(token);
    // A commit of this path (of any size, by anyone) killed before its file
    // had its final attributes: they are set now. The commit looks again,
    // for a kill while this upload runs (take_final_attributes).
    settle_record_of(library, name);
    const auto in_use = [&] {
        return Error{ErrorCode::busy, "an upload of \"" + name + "\" (" + std::to_string(size) +
                                          " bytes) is in progress on another connection"};
    };
    for (int attempt = 0; attempt < 10; ++attempt) {
        bool created = true;
        // Private until the commit gives it its final mode: nobody else
        // reads an upload in progress (nor a replacement of a private file).
        int fd = library.open_entry(data, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600);
        if (fd < 0 && errno == EEXIST) {
            created = false;
            // Only a regular file at that name can be an upload of ours.
            // Anything else (a symlink, a folder, a FIFO, a socket, a
            // device) was put there by someone else, the token being
            // predictable: its name is dropped without opening it (an open
            // may block, or act on a device), and the next turn makes the
            // upload's own file (PROTOCOL.md 4.7).
            struct ::stat found {};
            if (library.stat_entry(data, found) == 0 && !S_ISREG(found.st_mode)) {
                library.unlink_entry(state_name(token));
                if (auto refused = drop_entry(library, data, name)) {
                    return *refused;
                }
                continue;
            }
            fd = library.open_entry(data, O_RDWR | O_NONBLOCK | O_NOCTTY);
            if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == EISDIR || errno == ENXIO)) {
                // Committed or removed meanwhile: make it anew. Or swapped
                // for something else since the look above: look again.
                continue;
            }
        }
        if (fd < 0) {
            return bookkeeping_error(errno, created ? "cannot create" : "cannot open", data, name);
        }
        if (!try_lock(fd)) {
            // Uploading, resuming, just cut and recording its bytes, or
            // (having found this file the moment we made it) starting.
            ::close(fd);
            return in_use();
        }
        // Locked, but perhaps no longer the file at that name: its holder
        // may have published it (the commit renames it away under the
        // lock), discarded it, or the expiry sweep removed it, between our
        // open and our lock. Only the file still named so is the upload.
        struct ::stat held {};
        struct ::stat named {};
        if (::fstat(fd, &held) != 0) {
            const int saved = errno;
            ::close(fd);
            return file_error(saved, "cannot open upload file for", name);
        }
        if (!S_ISREG(held.st_mode)) {
            ::close(fd); // swapped in since the look above: the next turn drops it
            continue;
        }
        if (library.stat_entry(data, named) != 0 || named.st_ino != held.st_ino || named.st_dev != held.st_dev) {
            ::close(fd);
            continue;
        }
        // A second link is a published file whose old name survived a crash
        // where the rename did not clear it (see Library::publish_entry):
        // writing here would change the published file. Drop the old name.
        // A file of another owner was not made by a ferryd of ours (the
        // token is predictable): whoever made it may hold it open to read
        // or change what is uploaded. Drop the name; the next turn makes
        // the upload's own file, which that descriptor does not reach.
        static const uid_t server_user = ::geteuid(); // ferryd never changes its user
        if (held.st_nlink != 1 || held.st_uid != server_user) {
            library.unlink_entry(state_name(token));
            library.unlink_entry(data);
            ::close(fd);
            continue;
        }
        // Private until the commit, whatever mode it was left with (by an
        // older build that gave the partial its final mode before the rename
        // and then crashed; the commit does so only after it, PROTOCOL.md 4.7).
        if ((held.st_mode & 07777) != 0600 && ::fchmod(fd, 0600) != 0) {
            const int saved = errno;
            ::close(fd);
            return file_error(saved, "cannot make private the upload file of", name);
        }
        std::unique_ptr<PartialUpload> upload(new PartialUpload(library, fd, token, name, size));
        upload->hash_ = TransferHash(hash);
        upload->owner_ = owner;
        // A file just made holds nothing (a state without its data, left
        // by a crash, is removed before its data everywhere, see discard()).
        // An existing one is resumed when asked, by the one who made it, and
        // its state says how much is durable and vouches for those bytes;
        // otherwise its bytes are dropped: a put without resume replaces
        // the kept upload of its path and size (and so does one whose state
        // names another maker: a state of no owner, or a planted one).
        auto state = !created && resume ? saved_state(library, token, name, size) : std::nullopt;
        if (state && !may_resume(*state, owner)) {
            state.reset();
        }
        if (state) {
            upload->has_state_ = true;
        }
        auto restored = state ? verified_prefix(fd, held, *state, hash) : std::nullopt;
        if (restored && (static_cast<std::uint64_t>(held.st_size) == state->durable ||
                         ::ftruncate(fd, static_cast<off_t>(state->durable)) == 0)) {
            upload->received_ = state->durable;
            upload->durable_ = state->durable;
            upload->hash_ = *restored;
            // Refused for space, the kept bytes stay: they are what lets
            // the client resume once space returns (PROTOCOL.md 4.7).
            if (auto refused =
                    reserve_space(fd, state->durable, size - state->durable, name, {}, upload->state_files_room(true))) {
                return *refused;
            }
            upload->reserved_ = true;
            if (takes_state_room(size)) {
                if (auto refused = upload->reserve_state_files(true)) {
                    return *refused;
                }
            }
            return upload;
        }
        if (!created) {
            // The old state first: a crash in between leaves data without a
            // state (nothing to resume), never a state describing bytes
            // that are gone.
            library.unlink_entry(state_name(token));
            if (held.st_size != 0 && ::ftruncate(fd, 0) != 0) {
                const int saved = errno;
                upload->discard();
                return file_error(saved, "cannot reuse upload file for", name);
            }
        }
        if (auto refused = reserve_space(fd, 0, size, name, {}, upload->state_files_room(false))) {
            upload->discard();
            return *refused;
        }
        upload->reserved_ = true;
        if (takes_state_room(size)) {
            if (auto refused = upload->reserve_state_files(false)) {
                upload->discard();
                return *refused;
            }
        }
        return upload;
    }
    return Error{ErrorCode::busy, "the upload file of \"" + name + "\" keeps changing; try again"};
}

PartialUpload::~PartialUpload()
{
    release_reservation();
    release_spare();
    ::close(fd_);
    for (const int fd : {state_fd_, spare_fd_}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

// Room for one state file: its text now, with room for its numbers to grow
// (bytes held, the part's size), in whole pages. States are padded, never
// truncated (write_state), so the room once taken stays the file's.
std::uint64_t PartialUpload::state_room() const
{
    constexpr std::uint64_t kPage = 4096;
    constexpr std::uint64_t kGrowth = 256;
    return (state_text().size() + kGrowth + kPage - 1) / kPage * kPage;
}

// What reserve_state_files will take from the file system: its spare's
// room, and the state file's less what a kept state file holds already,
// for an upload that takes state room at all.
std::uint64_t PartialUpload::state_files_room(bool state_kept) const
{
    if (!takes_state_room(size_)) {
        return 0;
    }
    const std::uint64_t room = state_room();
    struct ::stat st {};
    if (state_kept && library_.stat_entry(state_file(), st) == 0) {
        return room + still_needed(st, 0, room);
    }
    return 2 * room;
}

// The upload's state file and its spare, with their disk space and inodes,
// taken at the put like the data's: a checkpoint or the keep of a cut
// connection then needs nothing the reservation did not cover, whatever
// other uploads or writers took since (PROTOCOL.md 4.5). `state_kept`: the
// state of the resumed upload stands and is reopened (under the upload's
// lock, so still the one read); otherwise an empty file is made at its
// name, which a resume reads as no state.
std::optional<Error> PartialUpload::reserve_state_files(bool state_kept)
{
    const std::uint64_t room = state_room();
    if (state_kept) {
        state_fd_ = library_.open_entry(state_file(), O_WRONLY | O_NONBLOCK | O_NOCTTY);
        if (state_fd_ < 0) {
            return bookkeeping_error(errno, "cannot open", state_file(), name_);
        }
    } else {
        auto created = create_fresh(library_, state_file(), name_);
        if (!created) {
            return created.error();
        }
        state_fd_ = created.value();
    }
    if (auto refused = reserve_space(state_fd_, 0, room, name_, kForState)) {
        return refused;
    }
    return make_spare(room);
}

// A new spare of `room` bytes, made afresh whatever stood at its name.
std::optional<Error> PartialUpload::make_spare(std::uint64_t room)
{
    auto created = create_fresh(library_, spare_file(), name_);
    if (!created) {
        return created.error();
    }
    spare_fd_ = created.value();
    if (auto refused = reserve_space(spare_fd_, 0, room, name_, kForState)) {
        ::close(spare_fd_);
        spare_fd_ = -1;
        library_.unlink_entry(spare_file());
        return refused;
    }
    return std::nullopt;
}

// The state files go before the data's name (see commit()). A small
// upload has a spare only while a state is being written (write_state),
// so its commit spends no call on a name that holds nothing.
void PartialUpload::remove_state_files()
{
    library_.unlink_entry(state_file());
    if (takes_state_room(size_) || spare_fd_ >= 0) {
        library_.unlink_entry(spare_file());
    }
}

// A kept upload gives back the space set aside for the bytes it has not
// received: others may use it until the client resumes (and reserves it
// again). Truncating frees space allocated beyond the end on most file
// systems (ext4, XFS); punching a hole there does on the others (tmpfs).
// Both move the file's ctime: keep() does this before its state records
// the file, so that the resume finds the file as recorded.
void PartialUpload::release_reservation()
{
    if (reserved_ && !discarded_ && received_ < size_) {
        (void)::ftruncate(fd_, static_cast<off_t>(received_));
        (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(received_),
                          static_cast<off_t>(size_ - received_));
    }
    reserved_ = false;
}

std::optional<Error> PartialUpload::keep()
{
    release_reservation();
    if (received_ == 0 && !has_state_) {
        remove_state_files(); // nothing to resume: only their reservation
        return std::nullopt;
    }
    if (durable_ != received_ && ::fdatasync(fd_) != 0) {
        return file_error(errno, "cannot sync upload of", name_);
    }
    durable_ = received_;
    auto failed = write_state();
    release_spare();
    return failed;
}

// A kept upload gives back its spare's room too: a resume takes it again.
// Only while the upload is still its token's (under its lock, not yet
// published or discarded): the name may be another upload's after that.
void PartialUpload::release_spare()
{
    if (spare_fd_ < 0) {
        return; // none made, or given back already
    }
    ::close(spare_fd_);
    spare_fd_ = -1;
    if (!discarded_) {
        library_.unlink_entry(spare_file());
    }
}

std::string PartialUpload::data_file() const
{
    return data_name(token_);
}

std::string PartialUpload::state_file() const
{
    return state_name(token_);
}

std::string PartialUpload::spare_file() const
{
    return spare_name(token_);
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
    // Not the file's last bytes: the commit's (or the checkpoint's) sync
    // follows them at once, and a small upload's one call less counts.
    if (received_ + bytes.size() < size_) {
        ::sync_file_range(fd_, static_cast<off_t>(received_), static_cast<off_t>(bytes.size()),
                          SYNC_FILE_RANGE_WRITE);
    }
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
    auto failed = write_state();
    keep_after_failure_ = failed.has_value();
    return failed;
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
    state.written_ns = static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
    state.owner = owner_;
    // The data file as it is now, its bytes synced: a resume that finds it
    // so may trust the hash state without reading them (verified_prefix).
    struct ::stat st {};
    if (::fstat(fd_, &st) == 0) {
        state.part = identity_of(st);
    }
    state.publishing = publishing_;
    return encode_resume_state(state);
}

// Writes the state text into the spare (which stands), padded with JSON's
// white space to the spare's size, so that no file ever shrinks and gives
// back its room. 0, or the errno of the failure.
int PartialUpload::write_spare()
{
    std::string text = state_text();
    struct ::stat spare {};
    if (::fstat(spare_fd_, &spare) == 0 && static_cast<std::uint64_t>(spare.st_size) > text.size()) {
        text.append(static_cast<std::size_t>(spare.st_size) - text.size(), ' ');
    }
    const auto written = sys::pwrite_all(spare_fd_, std::span<const char>(text), 0);
    return written.ok() ? 0 : (written.error == 0 ? EIO : written.error);
}

// Writes the state into the spare (write_spare), syncs it and puts it in
// the state's place: a crash leaves the old state or the new one, never
// half of one, and a failure leaves the old one standing.
std::optional<Error> PartialUpload::write_state()
{
    if (spare_fd_ < 0) {
        // Only after a file system without RENAME_EXCHANGE (publish_spare):
        // this spare's room is taken now, not at the put.
        if (auto refused = make_spare(state_room())) {
            return refused;
        }
    }
    if (const int failure = write_spare(); failure != 0 || ::fdatasync(spare_fd_) != 0) {
        return file_error(failure != 0 ? failure : (errno == 0 ? EIO : errno), "cannot write upload state of", name_);
    }
    if (!publish_spare()) {
        return file_error(errno == 0 ? EIO : errno, "cannot write upload state of", name_);
    }
    has_state_ = true;
    // The state's name too (the first checkpoint makes it), and with it the
    // data file's, never synced since the put made it: once per checkpoint
    // or keep, so cheap.
    return library_.sync_root();
}

// Puts the written spare at the state's name. RENAME_EXCHANGE keeps the old
// state's file (and its room) as the next spare; where the file system has
// no exchange, or the state's name is empty, a plain rename replaces the
// old state, and the next write makes a new spare. false with errno.
bool PartialUpload::publish_spare()
{
    if (library_.rename_entry(spare_file(), state_file(), RENAME_EXCHANGE) == 0) {
        std::swap(state_fd_, spare_fd_);
        if (spare_fd_ < 0) {
            // The old state was not held open (an upload under
            // kStateRoomFrom keeps no spare): no room to keep, so it goes,
            // and a spare stands only while spare_fd_ holds it.
            library_.unlink_entry(spare_file());
        }
        return true;
    }
    if (!sys::lacks_rename_flags(errno) && errno != ENOENT) {
        return false;
    }
    const auto renamed = [&] {
        if (library_.rename_entry(spare_file(), state_file()) == 0) {
            return true;
        }
        // A folder at the state's name is not ours (see drop_entry); a
        // rename replaces anything else there.
        if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST) {
            return false;
        }
        if (auto refused = drop_entry(library_, state_file(), name_)) {
            errno = EISDIR;
            return false;
        }
        return library_.rename_entry(spare_file(), state_file()) == 0;
    };
    if (!renamed()) {
        return false;
    }
    if (state_fd_ >= 0) {
        ::close(state_fd_);
    }
    state_fd_ = spare_fd_;
    spare_fd_ = -1;
    return true;
}

Result<FileInfo> PartialUpload::commit(std::string_view expected_digest, bool replace, bool defer_sync)
{
    if (received_ != size_) {
        // Kept for a resume as a cut upload is (keep(): its state records
        // the file as left, so the resume need not read the bytes again).
        // A state that cannot be written leaves the last one standing,
        // which a resume trusts (PROTOCOL.md 4.5): the bytes stay.
        if (auto error = keep()) {
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
    // The time the client asked for, set once no write can move it again;
    // the fsync below makes it durable with the data, before the publish.
    // Both come before the target's folder is looked up: the slow steps
    // (the fsync takes milliseconds) stay out of the moment between that
    // lookup and the publish rename, in which a move of the folder would
    // send the file into the folder moved away (checked after the rename:
    // take_final_attributes).
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
    // Published into a folder that --root no longer names, the file would
    // be lost to every client while the uploader is told "ok".
    if (auto gone = library_.check_root()) {
        return *gone;
    }
    // The target's folder, resolved afresh (it may have been renamed or
    // swapped since the put began) and held to the rename: one lookup
    // serves the replaced file's attributes and the publish.
    auto destination = library_.publish_destination(name_);
    if (!destination) {
        discard();
        if (destination.error().code == ErrorCode::not_a_folder) {
            return Error{ErrorCode::not_a_folder, "the folder of \"" + name_ + "\" is no longer a folder"};
        }
        return destination.error();
    }
    struct ::stat st {};
    const bool identified = ::fstat(fd_, &st) == 0; // its identity, which the rename keeps
    std::optional<struct ::stat> published;
    std::optional<Error> moved;
    if (take_final_attributes(*destination, identified ? &st : nullptr, published, moved, replace, defer_sync) != 0) {
        const int saved = errno;
        if (saved == EEXIST && !replace) {
            discard();
            return Error{ErrorCode::exists, "\"" + name_ + "\" exists at the commit, which asked not to replace " +
                                                "it: it was left alone, nothing was published"};
        }
        if (saved == ENOTDIR || saved == ELOOP) {
            discard();
            return Error{ErrorCode::not_a_folder, "the folder of \"" + name_ + "\" is no longer a folder"};
        }
        if (saved == ENOENT) {
            // The rename into a folder removed since its lookup: a put never
            // needs the file itself to exist, so "no file named" would
            // point at the wrong thing.
            discard();
            return Error{ErrorCode::not_found, "the folder of \"" + name_ +
                                                   "\" was removed during the upload; nothing was published"};
        }
        return refused_publish(file_error(saved, "cannot publish", name_));
    }
    discarded_ = true;
    // The rename moved the change time, and so did the final mode and
    // owner: the identity a download will see is the one taken after them.
    if (published) {
        library_.digests().remember_published(FileIdentity::of(*published), hash_.kind(), digest);
    }
    if (moved) {
        // Published, but not at name_: the folder (or the root) moved away
        // between its lookup and the rename. The file stays where it went,
        // as if committed just before the move (it may be someone's now);
        // the answer says so instead of "ok" naming a path it never had.
        log_event("warning", {{"message", moved->message}});
        if (pending_sync_) {
            // Synced now, as an undeferred commit's folder is: no sync
            // request will answer for a commit that was not ok.
            (void)FolderSyncs::process().sync(*pending_sync_);
            pending_sync_.reset();
        }
        return *moved;
    }
    return file_info(name_, published ? *published : st);
}

// A publish that failed: the partial is deleted, unless the file system
// refused it (forbidden: the target's folder made read-only for ferryd, or
// another user's file in a sticky folder, since the put's check): then the
// verified bytes are kept with a state that vouches for all of them, as a
// cut upload is kept, so that a rerun once the permissions are fixed resumes
// at the end instead of sending them all again (PROTOCOL.md 4.5).
Error PartialUpload::refused_publish(Error error)
{
    if (error.code == ErrorCode::forbidden && !discarded_ && make_private() && !keep()) {
        error.message += "; the upload is kept: a resume sends no byte again";
        return error;
    }
    discard();
    return error;
}

// Publishes the upload (Library::publish_entry) with what the replaced file
// had: its permission bits and, where this process may set them, its owner
// and group (as root, or a group the server's user belongs to). A new file
// gets what a file created in its folder would: the ACL and mode of
// FinalAcl::for_new_file, and the folder's group where it is set-group-ID.
//
// Read before the rename (the replaced file is gone after it), recorded in
// the upload's state (record_publish), applied to the descriptor after it:
// until the rename the partial sits in the root, which every local user may
// search whatever the target's folder, so it stays 0600 and the server's
// own (nobody opens it in flight, at the commit, or after a crash) and takes
// its final owner, ACL and mode only inside its target's folder. A kill
// between the rename and those leaves the new content at 0600 and the
// server's, with the record, which the next ferryd on the folder settles
// (settle_publish) before a put could take those for the old file's. The
// folder's fsync that follows carries the inode changes (ext4, XFS, btrfs
// commit them with the rename); then the state goes. Without a journal a
// crash may leave the published file at 0600 and the server's: narrower
// than asked, never wider (PROTOCOL.md 4.5). A mode or owner that cannot be
// applied after the rename cannot undo the publish either: the file keeps
// what it has (0600, or the old owner with 0600: never wider), a warning is
// logged, and the commit is still answered ok, since its content is
// published. `published`: the file's fstat after all that (the identity the
// digest cache keeps), when it could be taken. `moved`: set right after the
// rename when the folder it went into is no longer the one the name leads
// to, or the root no longer the served folder (Library::check_published_at):
// the file is published there all the same (attributes, sync, state gone),
// and the caller answers that error instead of ok. 0, or -1 with errno as
// publish_entry (then nothing was published, and the partial is still
// 0600: the caller keeps or deletes it).
int PartialUpload::take_final_attributes(const Library::Destination& destination, const struct ::stat* partial,
                                         std::optional<struct ::stat>& published, std::optional<Error>& moved,
                                         bool replace, bool defer_sync)
{
    // What stands at the name may be a file a killed commit published and
    // left at 0600 and ferryd's, its record in the root: settled first, so
    // that those are never taken for the old file's (PROTOCOL.md 4.7). A
    // live commit of that path in the same moment is waited for a little,
    // as it sets them itself.
    for (int look = 0; look < kInFlightLooks && settle_record_of(library_, name_) == Settled::publish_in_flight;
         ++look) {
        ::usleep(kInFlightPauseUs);
    }
    struct ::stat old {};
    FinalAcl acl;
    int unreadable = 0;
    const bool replaces =
        look_at_replaced(destination, library_.root_device(), old, acl, unreadable,
                         [&] { return settle_record_of(library_, name_); });
    if (unreadable != 0) {
        errno = unreadable;
        return -1;
    }
    // A new file is made as open(2) with this mode would make it in its
    // folder: 0666 (as vsftpd, sftp-server and rsync's receiver create), or
    // the source's bits the put carried, as sftp-server and scp take them.
    const auto create_mode = static_cast<mode_t>(create_mode_of(create_mode_));
    if (!replaces) {
        acl.for_new_file(destination, create_mode);
    }
    // Only the permission bits: new content from a peer must never become a
    // set-user-ID or set-group-ID program because the old one was (nor
    // because the put asked).
    const mode_t mode = replaces ? (old.st_mode & 0777) : acl.new_file_mode(library_.new_file_mode(create_mode));
    // A new file's group is its folder's where that folder is set-group-ID,
    // as for a file created there (the partial took the root's rule).
    const gid_t new_group = replaces ? old.st_gid : destination.new_file_group(::getegid());
    bool marked = false; // the intent on the file (below)
    const auto unmark = [&] {
        if (marked) {
            clear_intent(fd_);
            marked = false;
        }
    };
    const auto apply = [&] {
        set_final_owner(replaces ? std::optional<struct ::stat>(old) : std::nullopt, new_group);
        // Before the ACL and mode, which may take the owner's write bit that
        // a non-root server needs to remove a user namespace attribute. A
        // commit that meets the file from here on waits for its last steps.
        unmark();
        if (const int error = acl.set(fd_); error != 0) {
            log_unset_mode(destination, partial, name_, acl.what() + ": " + std::strerror(error));
        } else if (::fchmod(fd_, mode) != 0) {
            const int saved = errno;
            log_unset_mode(destination, partial, name_, std::strerror(saved));
        }
    };
    // What the record says the ACL is: one that cannot be written down is
    // recorded as what set() then leaves, none and 0600 (never wider).
    std::string acl_text;
    const bool described = acl.text(acl_text) == 0;
    const uid_t final_owner = replaces ? old.st_uid : ::geteuid();
    const mode_t final_mode = described ? mode : 0600;
    const std::string final_acl = described ? acl_text : std::string(sys::kNoAclText);
    const auto record = [&] { record_publish(final_owner, new_group, final_mode, final_acl); };
    // The same intent rides on the file, from before the rename until its
    // owner is set (the ACL and mode follow at once), for a commit of this
    // name that meets it held meanwhile (look_at_replaced): the record is
    // written for large uploads only, and only a killed commit's is read.
    if (partial != nullptr) {
        marked = mark_intent(fd_, *partial, final_owner, new_group, final_mode, final_acl);
    } else {
        clear_intent(fd_); // a killed commit's, on this resumed partial
    }
    const auto after_rename = [&] {
        // First, as close to the rename as it can be: whether the folder
        // the file went into is still the one name_ leads to.
        moved = library_.check_published_at(destination, name_);
        apply(); // the intent goes there, before the fstat: it moves the change time the digest cache keeps
        struct ::stat now {};
        if (::fstat(fd_, &now) == 0) {
            published = now;
        }
    };
    // A deferred folder sync only where no record is written (under 1 MiB):
    // a record goes once the folder's sync made the publish durable.
    const bool defer = defer_sync && !takes_state_room(size_);
    const int result = library_.publish_entry(data_file(), destination, name_, record, after_rename, replace,
                                              defer ? &pending_sync_ : nullptr);
    const int publish_errno = errno; // what the caller reads of a failure; the record's removal would clobber it
    unmark(); // not published: the partial stays, without it
    // Published, the file has its attributes and the folder's fsync made
    // them durable; refused before or at the rename, the partial is still
    // the upload (its state, written anew by a keep, records no publish):
    // either way the record goes. (The state and spare went at the record.)
    drop_own_record();
    publishing_.reset();
    errno = publish_errno;
    return result;
}

// The intent record (PROTOCOL.md 4.7): a file in the root named by the
// target's path alone (`.ferry-partial-<key>.publish`, record_name), in the
// state's format, says that the partial (this device and inode) is being
// published under its name with these attributes, so that a ferryd that
// finds it after a kill between the rename and the attributes sets them
// (settle_record), and so does any commit of that path, whatever its size
// or maker, before it reads what stands there as the old file's. It is the
// upload's spare, written and renamed to that name (RENAME_NOREPLACE: the
// record of another commit of that path stays, and is settled first if its
// ferryd is gone); then the upload's state goes, which describes bytes that
// are about to be published: a kill leaves the record alone, no spare. Not
// synced of its own, which would double a small upload's fsyncs: a kill
// cannot lose it (the page cache outlives the process), and a journalling
// file system logs the renames in order, so the partial's is never durable
// without it; the folder's fsync after the attributes makes both durable.
// One that cannot be written does not hold the publish back: it goes on
// as without one (a kill in that moment then leaves the file at 0600 and
// the server's: narrower, never wider), with a warning.
//
// Only an upload of kStateRoomFrom or more writes one: its spare stands
// already, so the record costs a write and a rename. For a smaller one it
// would cost a new file in the root at every commit (ferryd's CPU on a push
// of 2,000 files of 1 KiB: 1.7x); its state, if any, goes before the
// rename instead, and a kill in that moment leaves it at 0600 and the
// server's (narrower, never wider), as PROTOCOL.md 4.7 says.
void PartialUpload::record_publish(uid_t uid, gid_t gid, mode_t mode, std::string acl)
{
    if (!takes_state_room(size_)) {
        remove_state_files();
        has_state_ = false;
        return;
    }
    struct ::stat st {};
    if (::fstat(fd_, &st) == 0) {
        publishing_ = PublishIntent{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                                    uid, gid, static_cast<std::uint32_t>(mode & 0777), std::move(acl)};
        if (auto refused = write_record()) {
            publishing_.reset();
            log_event("warning",
                      {{"message", "\"" + name_ + "\" is published without its record: " + refused->message}});
        }
    }
    remove_state_files(); // the spare too, where it did not become the record
    if (state_fd_ >= 0) {
        ::close(state_fd_);
        state_fd_ = -1;
    }
    if (spare_fd_ >= 0) {
        ::close(spare_fd_);
        spare_fd_ = -1;
    }
    has_state_ = false;
}

// Writes the state text (with publishing_) into the spare and renames it to
// the record's name; see record_publish.
std::optional<Error> PartialUpload::write_record()
{
    if (spare_fd_ < 0) {
        if (auto refused = make_spare(state_room())) {
            return refused;
        }
    }
    if (const int failure = write_spare(); failure != 0) {
        return file_error(failure, "cannot write the publish record of", name_);
    }
    const std::string record = record_name(name_);
    const auto place = [&] {
        if (library_.rename_entry(spare_file(), record, RENAME_NOREPLACE) == 0) {
            return true;
        }
        const int refused = errno;
        if (!sys::lacks_rename_flags(refused)) {
            return false;
        }
        // A file system without RENAME_NOREPLACE: a look, then a rename.
        struct ::stat there {};
        if (library_.stat_entry(record, there) == 0) {
            errno = EEXIST;
            return false;
        }
        return errno == ENOENT && library_.rename_entry(spare_file(), record) == 0;
    };
    bool placed = place();
    int failure = placed ? 0 : errno;
    if (failure == EEXIST && settle_record_of(library_, name_) == Settled::done) {
        placed = place(); // a killed commit's record of this path, settled just now
        failure = placed ? 0 : errno;
    }
    if (!placed) {
        if (failure == EEXIST) {
            return Error{ErrorCode::busy, "another commit of \"" + name_ + "\" is publishing it"};
        }
        return bookkeeping_error(failure, "cannot make", record, name_);
    }
    struct ::stat made {};
    if (::fstat(spare_fd_, &made) == 0) {
        record_ = std::make_pair(made.st_dev, made.st_ino);
    }
    ::close(spare_fd_);
    spare_fd_ = -1;
    return std::nullopt;
}

// Removes this commit's record, if it is still the file at its name.
void PartialUpload::drop_own_record()
{
    if (!record_) {
        return;
    }
    const std::string record = record_name(name_);
    struct ::stat now {};
    if (library_.stat_entry(record, now) == 0 && now.st_dev == record_->first && now.st_ino == record_->second) {
        library_.unlink_entry(record);
    }
    record_.reset();
}

// The replaced file's owner and group (`old`), or for a new file `new_group`.
void PartialUpload::set_final_owner(const std::optional<struct ::stat>& old, gid_t new_group)
{
    struct ::stat own {};
    if (::fstat(fd_, &own) != 0) {
        return;
    }
    if (old) {
        if (own.st_uid != old->st_uid || own.st_gid != old->st_gid) {
            // Failing to keep the owner is no reason to refuse the upload: a
            // non-root server could never replace another user's file otherwise.
            if (::fchown(fd_, old->st_uid, old->st_gid) != 0) {
                (void)::fchown(fd_, static_cast<uid_t>(-1), old->st_gid);
            }
        }
        return;
    }
    if (own.st_gid != new_group && ::fchown(fd_, static_cast<uid_t>(-1), new_group) != 0) {
        // The kernel gives a set-group-ID folder's group to a file created
        // there whoever creates it; a chown to it needs membership. The
        // file keeps its partial's group, readable by no one else (0600).
        const int saved = errno;
        log_event("warning", {{"message", "\"" + name_ + "\" was published with the server's group, not its " +
                                              "set-group-ID folder's (" + std::to_string(new_group) +
                                              "): " + std::strerror(saved)}});
    }
}

// Back to what an upload in progress is (0600, no ACL, the server's user and
// group) after a publish refused once the partial had its final attributes:
// it stays in the root, kept or deleted. Narrowest first: the mode (with an
// ACL, chmod sets its mask, so named entries lose their permissions at once),
// then the ACL, then the owner. Whether it is private again: only then may it
// be kept (a partial of another owner is dropped by a resume, never used).
bool PartialUpload::make_private()
{
    (void)::fchmod(fd_, 0600);
    (void)sys::set_inherited_acl(fd_, sys::InheritedAcl()); // none
    (void)::fchown(fd_, ::geteuid(), ::getegid());
    struct ::stat st {};
    return ::fstat(fd_, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == ::geteuid();
}

void PartialUpload::discard()
{
    if (discarded_) {
        return;
    }
    discarded_ = true;
    // The state first (see commit()).
    remove_state_files();
    library_.unlink_entry(data_file());
}

void PartialUpload::drop_after_failure()
{
    if (keep_after_failure_) {
        release_reservation();
        return;
    }
    discard();
}

namespace {

// Whether a state's name holds one in the state's format (any version
// protocol/resume_state reads): a file of the server's user that is not
// one, even at that name, was not written by a ferryd (states are written
// beside and renamed over, so never half), and stays. An empty one is the
// put's reservation of the state (reserve_state_files), which the caller
// takes as ours: removing it loses nothing.
bool is_resume_state(const Library& library, const std::string& entry)
{
    const auto text = read_small_file(library, entry);
    return text && decode_resume_state(*text);
}

// Whether a file modified at `modified_ns` is at least `ttl` old at
// `now_ns` (nanoseconds since the epoch), without overflow: a TTL near the
// largest count of seconds means never, and a time stamp far in the past
// (or the future) is no wrap-around. In nanoseconds, not whole seconds: an
// upload kept at x.95 s was "a second old" 50 ms later, so a TTL of N s
// removed uploads from N - 1 s of age on (attack round 74, F2).
bool older_than(std::int64_t modified_ns, std::int64_t now_ns, std::chrono::seconds ttl)
{
    std::int64_t age_ns = 0;
    if (__builtin_sub_overflow(now_ns, modified_ns, &age_ns)) {
        return modified_ns < now_ns; // too far apart to subtract: as old as can be, or from the future
    }
    std::int64_t ttl_ns = 0;
    if (__builtin_mul_overflow(ttl.count(), std::int64_t{1'000'000'000}, &ttl_ns)) {
        return false; // a TTL past what the clock can reach: never
    }
    return age_ns >= ttl_ns;
}

std::int64_t now_ns()
{
    struct ::timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now); // the clock the kernel stamps file times with
    return sys::nanoseconds_since_epoch(now);
}

} // namespace

std::size_t remove_stale_partials(const Library& library, std::chrono::seconds ttl)
{
    const std::int64_t now = now_ns();
    // The server's own files, grouped by token, with the newest modification
    // time of each group. What is not the server's is left out here, and so
    // neither removed nor counted, on this sweep or any other: skipped
    // without a log line (ferryd.8), since the same entries would be named
    // again every half TTL.
    struct Kept {
        std::int64_t newest = std::numeric_limits<std::int64_t>::min(); // nanoseconds
        std::vector<std::string> names;
    };
    std::map<std::string, Kept> by_token;
    for (std::string& entry : library.entries_with_prefix(kPartialPrefix)) {
        const auto parsed = parse_partial_entry(entry);
        // A publish record, whatever its age: settled now (at the start,
        // before any connection, and on every sweep), its state then gone.
        const bool may_record = parsed && (parsed->file == PartialFile::state || parsed->file == PartialFile::record);
        if (may_record) {
            // Settled, or in use by a live commit (its partial, or the file
            // it published, locked): either way not this sweep's to expire.
            const Settled settled = settle_record(library, entry, *parsed);
            if (settled == Settled::done || settled == Settled::partial_in_flight ||
                settled == Settled::publish_in_flight) {
                continue;
            }
        }
        struct ::stat st {};
        if (!parsed || library.stat_entry(entry, st) != 0 || !made_by_server(st) ||
            (may_record && st.st_size != 0 && !is_resume_state(library, entry))) {
            continue;
        }
        auto& kept = by_token[parsed->token];
        kept.newest = std::max(kept.newest, sys::nanoseconds_since_epoch(st.st_mtim));
        kept.names.push_back(std::move(entry));
    }

    std::size_t removed = 0;
    for (const auto& [token, kept] : by_token) {
        if (!older_than(kept.newest, now, ttl)) {
            continue;
        }
        const std::string data = data_name(token);
        const bool has_data = std::find(kept.names.begin(), kept.names.end(), data) != kept.names.end();
        int fd = -1;
        if (has_data) {
            fd = library.open_entry(data, O_RDONLY | O_NONBLOCK | O_NOCTTY);
            if (fd < 0) {
                continue; // gone or swapped since the listing: the next sweep looks again
            }
            if (!try_lock(fd)) {
                ::close(fd); // in use by a connection, here or on another server
                continue;
            }
            // Tokens name a path and size, so the name may hold a newer
            // upload than the one listed (made since, by a put that has let
            // go): only a file of ours still at that name and unmodified for
            // the whole TTL goes.
            struct ::stat held {};
            struct ::stat named {};
            if (::fstat(fd, &held) != 0 || !made_by_server(held) || library.stat_entry(data, named) != 0 ||
                named.st_ino != held.st_ino || named.st_dev != held.st_dev ||
                !older_than(sys::nanoseconds_since_epoch(held.st_mtim), now, ttl)) {
                ::close(fd);
                continue;
            }
        }
        // States before the data (see PartialUpload::commit). Counted once
        // per upload, and only when something of it was removed.
        bool any = false;
        for (const bool state : {true, false}) {
            for (const auto& name : kept.names) {
                if ((name != data) == state && remove_own(library, name)) {
                    any = true;
                }
            }
        }
        if (fd >= 0) {
            ::close(fd);
        }
        if (any) {
            ++removed;
        }
    }
    return removed;
}

} // namespace ferry::server
