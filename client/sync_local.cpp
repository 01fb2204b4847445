#include "sync_local.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "local_tree.hpp"
#include "mtime_limits.hpp"
#include "mtime_probe.hpp"
#include "names.hpp"
#include "page_buffer.hpp"
#include "posix_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::client {

namespace {

// A descriptor that closes itself.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    explicit operator bool() const { return fd_ >= 0; }

private:
    void reset()
    {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    int fd_ = -1;
};

int open_folder_at(int at, const char* name)
{
    return sys::retry_on_eintr(
        [&] { return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
}

// The folder holding root/path, reached one component at a time with
// O_NOFOLLOW: a symbolic link on the way is an error, never followed.
Result<Fd> open_parent(const std::string& root, const std::string& path)
{
    // The root is the user's: its links are followed by the owner rule
    // (local_files.hpp's resolve_typed_path); nothing below it is.
    auto opened = open_typed_folder(root);
    if (!opened) {
        return opened.error();
    }
    Fd at(opened.value());
    std::size_t begin = 0;
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', begin)) {
        const std::string component = path.substr(begin, slash - begin);
        Fd next(open_folder_at(at.get(), component.c_str()));
        if (!next) {
            const int err = errno;
            if (err == ELOOP || err == ENOTDIR) {
                return about_local_files(ErrorCode::local_io,
                                         "\"" + local_join(root, path.substr(0, slash)) +
                                             "\" is not a folder (a symbolic link is not followed)");
            }
            return local_error("cannot open the folder \"" + local_join(root, path.substr(0, slash)) + "\"", err);
        }
        at = std::move(next);
        begin = slash + 1;
    }
    return at;
}

std::string leaf_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* special_kind(mode_t mode)
{
    if (S_ISREG(mode)) {
        return "a file";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode) || S_ISBLK(mode)) {
        return "a device";
    }
    return "not a regular file or folder";
}

} // namespace

Result<LocalScan> scan_local_tree(const std::string& root, ScanSide side, TreeBounds bounds)
{
    auto walked = walk_local_tree(root, bounds);
    if (!walked) {
        return walked.error();
    }
    LocalScan scan;
    scan.entries.reserve(walked->entries.size() + walked->skipped.size());
    // A folder entered but then not read (or not read to its end) is
    // unknown, not a folder: as a folder the plan would place the server's
    // files beneath it, which report_unreadable says it does not.
    std::set<std::string> unread_paths;
    for (const auto& unread : walked->unreadable) {
        unread_paths.insert(unread.path);
    }
    for (auto& entry : walked->entries) {
        if (entry.folder && unread_paths.contains(entry.path)) {
            continue;
        }
        (entry.folder ? scan.folders : scan.listed)
            .emplace(entry.path, ListedFile{root, entry.path, entry.device, entry.inode, entry.size, entry.mtime_ns,
                                            entry.ctime_ns});
        scan.entries.push_back({std::move(entry.path),
                                entry.folder ? EntryKind::folder : EntryKind::file,
                                entry.size,
                                entry.mtime,
                                {},
                                entry.folder ? std::optional<std::uint32_t>(entry.mode) : std::nullopt});
    }
    // What the walk left out stays in the listing as `other`: never sent,
    // never replaced, never removed, nothing placed beneath it.
    for (auto& skipped : walked->skipped) {
        if (side == ScanSide::sending) {
            scan.notes.push_back(printable(local_join(root, skipped.path)) + ": " + skipped.why + ", not sent");
        }
        scan.entries.push_back({std::move(skipped.path), EntryKind::other, 0, 0, std::move(skipped.why)});
    }
    // Unknown is not absent: the server's copy of what could not be read
    // is neither replaced nor, with --delete, removed, at or below it.
    for (auto& unread : walked->unreadable) {
        scan.entries.push_back({unread.path, EntryKind::other, 0, 0, unread.why});
        if (side == ScanSide::sending) {
            scan.entries.push_back({unread.path + "/", EntryKind::other, 0, 0, "what this side could not read"});
        }
        scan.unreadable.push_back(std::move(unread));
    }
    return scan;
}

Status make_local_folder(const std::string& root, const std::string& path, std::optional<std::uint32_t> mode)
{
    if (auto made = make_or_find_local_folder(root, path, mode); !made) {
        return made.error();
    }
    return success();
}

Result<FolderMade> make_or_find_local_folder(const std::string& root, const std::string& path,
                                             std::optional<std::uint32_t> mode)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    const std::string leaf = leaf_of(path);
    if (::mkdirat(parent->get(), leaf.c_str(), static_cast<mode_t>(folder_create_mode_of(mode))) == 0) {
        let_owner_fill(parent->get(), leaf.c_str());
        return FolderMade::made;
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return FolderMade::found;
        }
        return about_local_files(ErrorCode::local_io,
                                 "\"" + local_join(root, path) + "\" is " + special_kind(st.st_mode) +
                                     ": no folder is made there, and nothing is written through it");
    }
    return local_error("cannot make the folder \"" + local_join(root, path) + "\"", err);
}

namespace {

bool is_listed(const struct stat& st, const ListedFile& listed)
{
    return static_cast<std::uint64_t>(st.st_dev) == listed.device &&
           static_cast<std::uint64_t>(st.st_ino) == listed.inode;
}

// Removes the folder `leaf` of `parent` if it is still the one listed,
// looked at through `parent` right before its rmdir.
Result<LocalRemoved> remove_local_folder(int parent, const std::string& leaf, const std::string& shown,
                                         const ListedFile* listed)
{
    struct stat st {};
    if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return LocalRemoved::absent;
        }
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return about_local_files(ErrorCode::local_io, "\"" + shown + "\" is no longer a folder: left");
    }
    if (listed != nullptr && !is_listed(st, *listed)) {
        return LocalRemoved::changed;
    }
    if (::unlinkat(parent, leaf.c_str(), AT_REMOVEDIR) == 0) {
        return LocalRemoved::removed;
    }
    if (errno == ENOENT) {
        return LocalRemoved::absent;
    }
    if (errno == ENOTEMPTY || errno == EEXIST) {
        return LocalRemoved::not_empty;
    }
    if (errno == ENOTDIR) {
        return about_local_files(ErrorCode::local_io, "\"" + shown + "\" is no longer a folder: left");
    }
    return local_error("cannot remove the folder \"" + shown + "\"", errno);
}

} // namespace

Result<LocalRemoved> remove_local(const std::string& root, const std::string& path, EntryKind kind,
                                  const ListedFile* listed, const ListedFile* holder)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    // The folder reached by name may be another one renamed into the
    // listed one's place since the scan: what it holds was never listed,
    // hard links to the listed files included.
    if (holder != nullptr) {
        struct stat at {};
        if (::fstat(parent->get(), &at) != 0) {
            return local_error("cannot stat the folder of \"" + local_join(root, path) + "\"", errno);
        }
        if (!is_listed(at, *holder)) {
            return LocalRemoved::holder_changed;
        }
    }
    const std::string leaf = leaf_of(path);
    if (kind == EntryKind::folder) {
        return remove_local_folder(parent->get(), leaf, local_join(root, path), listed);
    }
    struct stat st {};
    if (::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return LocalRemoved::absent;
        }
        return local_error("cannot stat \"" + local_join(root, path) + "\"", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return about_local_files(ErrorCode::local_io,
                                 "\"" + local_join(root, path) + "\" is no longer a regular file: left");
    }
    // Another file at the listed name (written there since the scan) was
    // never listed: left. So is the listed file written, truncated,
    // chmod'ed or linked since: what it holds now is not what the listing
    // showed (as a push's `expect` leaves a server file changed since).
    if (listed != nullptr && !is_listed(st, *listed)) {
        return about_local_files(ErrorCode::local_io,
                                 "\"" + local_join(root, path) +
                                     "\" changed since it was listed: another file stands at its name; left");
    }
    if (listed != nullptr && listed->ctime_ns != 0 &&
        (static_cast<std::uint64_t>(st.st_size) != listed->size || nanoseconds(st.st_mtim) != listed->mtime_ns ||
         nanoseconds(st.st_ctim) != listed->ctime_ns)) {
        return about_local_files(ErrorCode::local_io,
                                 "\"" + local_join(root, path) +
                                     "\" changed since it was listed: written or changed since; left");
    }
    // Not unlinked by name: a file the user renames onto that name between
    // this look and an unlink would be the one removed. Set aside under a
    // fresh name first, what unlink_if_still removes is the file looked at.
    auto removed = unlink_if_still(parent->get(), leaf, st, local_join(root, path), RefusedRename::is_an_error);
    if (!removed) {
        return removed.error();
    }
    if (removed.value()) {
        return LocalRemoved::removed;
    }
    struct stat now {};
    if (::fstatat(parent->get(), leaf.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
        return LocalRemoved::absent;
    }
    return about_local_files(ErrorCode::local_io,
                             "\"" + local_join(root, path) +
                                 "\" changed since it was listed: another file was put at its name; left");
}

namespace {

// What the file system of the folder root/`folder_path` holds ("" the
// synced folder; "a/" the folder a), or none where it cannot be asked.
std::optional<MtimeLimits> probe_folder(const std::string& root, const std::string& folder_path)
{
    auto folder = open_parent(root, folder_path);
    if (!folder) {
        return std::nullopt;
    }
    std::array<std::int64_t, kMtimeProbes.size()> held{};
    if (sys::probe_held_mtimes(folder->get(), kMtimeProbes, held) != 0) {
        return std::nullopt;
    }
    return mtime_limits_from(held);
}

} // namespace

HeldTime probe_local_held_times(const std::string& root, const LocalScan& scan)
{
    // Each device once, in the first folder of it met: a file's folder
    // (its parent), or a folder itself (the root of a mount inside).
    std::map<std::uint64_t, std::optional<MtimeLimits>> by_device;
    struct stat top {};
    if (::stat(root.c_str(), &top) == 0) {
        by_device.emplace(static_cast<std::uint64_t>(top.st_dev), probe_folder(root, ""));
    }
    for (const auto& [path, folder] : scan.folders) {
        if (!by_device.contains(folder.device)) {
            by_device.emplace(folder.device, probe_folder(root, path + "/"));
        }
    }
    for (const auto& [path, file] : scan.listed) {
        if (!by_device.contains(file.device)) {
            by_device.emplace(file.device, probe_folder(root, path));
        }
    }
    const std::uint64_t top_device = static_cast<std::uint64_t>(top.st_dev);
    return [&scan, by_device = std::move(by_device), top_device](const std::string& path, std::int64_t mtime) {
        std::uint64_t device = top_device;
        if (const auto file = scan.listed.find(path); file != scan.listed.end()) {
            device = file->second.device;
        } else if (const auto folder = scan.folders.find(path); folder != scan.folders.end()) {
            device = folder->second.device;
        }
        const auto limits = by_device.find(device);
        return limits != by_device.end() && limits->second ? limits->second->held(mtime) : mtime;
    };
}

Status set_local_mtime(const std::string& root, const std::string& path, std::int64_t mtime)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    // "" is the synced folder itself: the descriptor open_parent opened.
    const int set = path.empty() ? ::futimens(parent->get(), times)
                                 : ::utimensat(parent->get(), leaf_of(path).c_str(), times, AT_SYMLINK_NOFOLLOW);
    if (set != 0) {
        return local_error("cannot set the time of \"" + local_join(root, path) + "\"", errno);
    }
    return success();
}

namespace {

// The part a part name belongs to: NAME.ferry-part for itself, its sidecar
// NAME.ferry-part.state and the sidecar's temporaries.
std::string part_of(const std::string& path)
{
    if (path.ends_with(kPartSuffix)) {
        return path;
    }
    const std::string sidecar = std::string(kPartSuffix) + std::string(kStateSuffix);
    const auto at = path.rfind(sidecar);
    return at == std::string::npos ? path : path.substr(0, at + kPartSuffix.size());
}

// What stands at the orphan's part name, looked at through `folder`: the
// part's end, or nullopt when no part stands there (a sidecar alone).
Result<std::optional<OrphanEnd>> look_at_orphan(const LocalFolder& folder, const std::string& shown, bool dry_run,
                                                std::optional<LocalFile>& held)
{
    const std::string leaf = leaf_of(shown);
    struct stat st {};
    if (::fstatat(folder.fd(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return std::optional<OrphanEnd>();
        }
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return std::optional<OrphanEnd>(OrphanEnd::not_ferrys); // a link, a FIFO...: never ferry's part
    }
    auto file = LocalFile::open(shown, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, &folder);
    if (!file) {
        return file.error();
    }
    if (::fstat(file->fd(), &st) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    auto state = read_download_state(shown + std::string(kStateSuffix), &folder);
    if (!S_ISREG(st.st_mode) || !is_ferry_part(file.value(), st, state ? &state.value() : nullptr)) {
        return std::optional<OrphanEnd>(OrphanEnd::not_ferrys);
    }
    if (!lock_part(file.value())) {
        return std::optional<OrphanEnd>(OrphanEnd::locked);
    }
    if (!dry_run) {
        // Removed only while it is still the file looked at, held locked.
        auto removed = unlink_if_still(folder.fd(), leaf, st, shown);
        if (!removed) {
            return removed.error();
        }
        if (!removed.value()) {
            return about_local_files(ErrorCode::local_io, "\"" + shown + "\" changed since it was looked at: left");
        }
    }
    held = std::move(file.value()); // the lock lasts until the sidecars are gone too
    return std::optional<OrphanEnd>(OrphanEnd::removed);
}

} // namespace

std::vector<OrphanPart> orphan_parts(const TreeListing& local, const TreeListing& remote)
{
    std::set<std::string> resumed;   // the parts the server's files would resume
    std::set<std::string> unlisting; // folders holding what the server does not list
    for (const auto& entry : remote) {
        if (entry.kind == EntryKind::file) {
            resumed.insert(part_path(entry.path));
        } else if (entry.kind == EntryKind::other && entry.path.ends_with('/')) {
            unlisting.insert(entry.path == "/" ? std::string() : entry.path.substr(0, entry.path.size() - 1));
        }
    }
    std::map<std::string, OrphanPart> orphans;
    for (const auto& entry : local) {
        if (entry.kind == EntryKind::folder || entry.path.ends_with('/') || !is_part_name(leaf_of(entry.path))) {
            continue;
        }
        const std::string part = part_of(entry.path);
        if (resumed.contains(part) || unlisting.contains(parent_path(entry.path))) {
            continue;
        }
        auto& orphan = orphans[part];
        orphan.part = part;
        orphan.found.push_back(entry.path);
    }
    std::vector<OrphanPart> listed;
    for (auto& [part, orphan] : orphans) {
        listed.push_back(std::move(orphan));
    }
    return listed;
}

Result<OrphanEnd> remove_orphan_part(const std::string& root, const OrphanPart& orphan, bool dry_run)
{
    auto folder = open_tree_folder(root, orphan.part);
    if (!folder) {
        return folder.error();
    }
    const LocalFolder& in = *folder.value();
    // Its sidecar first: a file under that name that remove_ferry_leftover
    // would not remove (another user's, another name's, not private, not in
    // the sidecar's format) is not ferry's, and so, for all we know, is the
    // part beside it: both stay.
    // The same for a temporary the rule refuses (one cut short by a kill
    // while it was written, on a file system without unnamed files, too):
    // the dry run and the notes then name only what goes.
    const std::string sidecar = orphan.part + std::string(kStateSuffix);
    for (const auto& path : orphan.found) {
        if (path == orphan.part) {
            continue;
        }
        auto ferrys = remove_ferry_leftover(local_join(root, path), &in, true);
        if (!ferrys) {
            return ferrys.error();
        }
        if (!ferrys.value()) {
            return OrphanEnd::not_ferrys;
        }
    }
    std::optional<LocalFile> held;
    auto part = look_at_orphan(in, local_join(root, orphan.part), dry_run, held);
    if (!part) {
        return part.error();
    }
    if (part.value() && *part.value() != OrphanEnd::removed) {
        return *part.value(); // left, with its sidecars
    }
    if (dry_run) {
        return OrphanEnd::removed;
    }
    // The sidecars, under the one rule: a temporary it refuses (cut short
    // by a kill while written, say) is left unsaid.
    for (const auto& path : orphan.found) {
        if (path == orphan.part) {
            continue;
        }
        if (auto removed = remove_ferry_leftover(local_join(root, path), &in); !removed && path == sidecar) {
            return removed.error();
        }
    }
    return OrphanEnd::removed;
}

std::vector<std::string> stray_leftovers(const TreeListing& local)
{
    std::set<std::string> parts;
    for (const auto& entry : local) {
        if (entry.kind != EntryKind::folder && !entry.path.ends_with('/') && entry.path.ends_with(kPartSuffix)) {
            parts.insert(entry.path);
        }
    }
    const std::string sidecar_suffix = std::string(kPartSuffix) + std::string(kStateSuffix);
    std::vector<std::string> stray;
    for (const auto& entry : local) {
        if (entry.kind == EntryKind::folder || entry.path.ends_with('/')) {
            continue;
        }
        const std::string leaf = leaf_of(entry.path);
        if (sidecar_of_temporary(leaf) || is_set_aside_name(leaf) ||
            (leaf.ends_with(sidecar_suffix) && !parts.contains(part_of(entry.path)))) {
            stray.push_back(entry.path);
        }
    }
    return stray;
}

namespace {

// A stray sidecar (no part in the scan): removed only while still no part
// stands, and only under remove_ferry_leftover's rule. A part
// that stands again is a download begun since the scan, which may have
// written this sidecar: both stay. What is left between this look and the
// unlink is a download that creates its part and renames a new sidecar in
// that very instant: its part stays, vouched for by its mark (where the
// file system keeps none, the next get refuses it as not provably ferry's
// and names it: a lost resume, never a lost file).
Result<LeftoverEnd> remove_stray_sidecar(const LocalFolder& in, const std::string& shown, const std::string& part,
                                         bool dry_run)
{
    struct stat st {};
    if (::fstatat(in.fd(), leaf_of(part).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
        return LeftoverEnd::kept;
    }
    auto removed = remove_ferry_leftover(shown, &in, dry_run);
    if (!removed) {
        return removed.error();
    }
    return removed.value() ? LeftoverEnd::removed : LeftoverEnd::kept;
}

// A temporary: its part, if one stands, is locked here (held until the
// temporary is gone), so that no download writes that sidecar meanwhile.
Result<LeftoverEnd> remove_stray_temporary(const LocalFolder& in, const std::string& shown, const std::string& part,
                                           bool dry_run)
{
    std::optional<LocalFile> held;
    struct stat st {};
    if (::fstatat(in.fd(), leaf_of(part).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        auto file = LocalFile::open(part, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, &in);
        if (!file) {
            return LeftoverEnd::kept; // no lock to take: no proof
        }
        if (!lock_part(file.value())) {
            return LeftoverEnd::locked;
        }
        held = std::move(file.value());
    }
    auto removed = remove_state_temporary(shown, &in, dry_run);
    if (!removed) {
        return removed.error();
    }
    return removed.value() ? LeftoverEnd::removed : LeftoverEnd::kept;
}

// What a kill between unlink_if_still's rename and its unlink left under
// the fresh name: a file that a removal of ferry's (a stale part or
// sidecar, an extra under --delete) had set aside and checked, or in the
// same instant was putting back. Removed when it is this user's regular
// file with one name that carries the mark unlink_if_still sets before its
// unlink (is_marked_set_aside), the removal finished; anything else there
// (a file of the user's that only bears such a name, one the kill left
// before its mark, a link, a folder, another user's file, one with a
// second name) stays.
Result<LeftoverEnd> remove_set_aside(const LocalFolder& in, const std::string& leaf, const std::string& shown,
                                     bool dry_run)
{
    struct stat st {};
    if (::fstatat(in.fd(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !is_own_private_file(st.st_mode, st.st_uid, st.st_nlink) || !is_marked_set_aside(in.fd(), leaf)) {
        return LeftoverEnd::kept;
    }
    if (dry_run) {
        return LeftoverEnd::removed;
    }
    auto removed = unlink_if_still(in.fd(), leaf, st, shown);
    if (!removed) {
        return removed.error();
    }
    return removed.value() ? LeftoverEnd::removed : LeftoverEnd::kept;
}

} // namespace

Result<LeftoverEnd> remove_stray_leftover(const std::string& root, const std::string& path, bool dry_run)
{
    auto folder = open_tree_folder(root, path);
    if (!folder) {
        return folder.error();
    }
    const std::string shown = local_join(root, path);
    const std::string part = local_join(root, part_of(path));
    if (is_set_aside_name(leaf_of(path))) {
        return remove_set_aside(*folder.value(), leaf_of(path), shown, dry_run);
    }
    if (sidecar_of_temporary(leaf_of(path))) {
        return remove_stray_temporary(*folder.value(), shown, part, dry_run);
    }
    return remove_stray_sidecar(*folder.value(), shown, part, dry_run);
}

namespace {

bool same_time(const timespec& a, const timespec& b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

constexpr std::string_view kLeftForTheNextSync = "left as it is, for the next sync to look at again";

Error changed_since_hashed(const std::string& shown, const std::string& how)
{
    return changed_since_listed(shown, how, kLeftForTheNextSync);
}

} // namespace

Result<HashedFile> hash_local_file(const ListedFile& listed, const std::string& shown, HashKind kind,
                                   HeldFolders* folders)
{
    auto file = open_listed_file(listed, shown, folders);
    if (!file) {
        return file.error();
    }
    struct stat before {};
    if (::fstat(file->fd(), &before) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    TransferHash hash(kind);
    constexpr std::size_t kReadChunk = 1024 * 1024;
    const auto buffer = sys::make_page_buffer<std::uint8_t>(kReadChunk); // pread copies into it
    std::uint64_t offset = 0;
    for (;;) {
        if (interrupted()) {
            return about_local_files(ErrorCode::aborted, "interrupted while hashing \"" + shown + "\"");
        }
        auto got = file->read_at(offset, std::span(buffer.get(), kReadChunk));
        if (!got) {
            return got.error();
        }
        if (got.value() == 0) {
            break;
        }
        hash.update(buffer.get(), got.value());
        offset += got.value();
    }
    // Written while read, the digest is of no one content.
    struct stat after {};
    if (::fstat(file->fd(), &after) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (!same_time(before.st_mtim, after.st_mtim) || !same_time(before.st_ctim, after.st_ctim)) {
        return changed_since_hashed(shown, "written while it was hashed");
    }
    return HashedFile{hash.hex_digest(), static_cast<std::uint64_t>(after.st_dev),
                      static_cast<std::uint64_t>(after.st_ino), after.st_mtim, after.st_ctim};
}

Status set_hashed_mtime(const ListedFile& listed, const HashedFile& hashed, const std::string& shown,
                        std::int64_t mtime, HeldFolders* folders)
{
    // Opened again rather than held since the hashing: a sync may find
    // thousands of files equal, more than a process may hold open. The
    // device, inode, mtime and ctime checked below make this descriptor's
    // file the very one hashed, with the very content hashed.
    // How it changed, or why it could not be opened, as a push says it.
    auto file = open_listed_file(listed, shown, folders, kLeftForTheNextSync);
    if (!file) {
        return file.error();
    }
    struct stat now {};
    if (::fstat(file->fd(), &now) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (static_cast<std::uint64_t>(now.st_dev) != hashed.device ||
        static_cast<std::uint64_t>(now.st_ino) != hashed.inode) {
        return changed_since_hashed(shown, "another file stands at its name");
    }
    if (!same_time(now.st_mtim, hashed.mtime) || !same_time(now.st_ctim, hashed.ctime)) {
        return changed_since_hashed(shown, "written since it was hashed");
    }
    const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    if (::futimens(file->fd(), times) != 0) {
        return local_error("cannot set the time of \"" + shown + "\"", errno);
    }
    return success();
}

} // namespace ferry::client
