#include "local_files.hpp"

#include "digest.hpp"
#include "interrupt.hpp"
#include "posix_acl.hpp"
#include "posix_io.hpp"
#include "remote_paths.hpp"

#include <climits>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>

#include <linux/magic.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

namespace ferry::client {

namespace {

std::string in_quotes(const std::string& path)
{
    return "\"" + path + "\"";
}

// Where a path-taking call works: in `in` by the path's last name, or,
// for a path the user typed, by its last name in the folder
// resolve_typed_path reaches, held while the call runs. A walk that
// reaches no folder (a link of anyone else's swapped in on the way, a
// folder gone) leaves its Error here, naming the path and what stood
// there: every caller returns it (reached()) before any call on dir(),
// which would otherwise fail with a bare EBADF.
class Where {
public:
    Where(const LocalFolder* in, const std::string& path)
    {
        if (in == nullptr) {
            auto place = resolve_typed_path(path, false);
            if (!place) {
                error_ = std::move(place.error());
                return;
            }
            held_ = std::move(place->folder);
            in = held_.get();
            name_ = place->leaf.empty() ? "." : place->leaf;
        } else {
            name_ = base_name(path);
        }
        dir_ = in->fd();
    }
    Status reached() const
    {
        if (error_) {
            return *error_;
        }
        return success();
    }
    int dir() const { return dir_; }
    const char* name() const { return name_.c_str(); }

private:
    std::shared_ptr<const LocalFolder> held_;
    std::optional<Error> error_;
    int dir_ = -1;
    std::string name_;
};

// The umask, read once before main (and so before any thread): reading it
// means setting it, which another thread's file creation could see.
const mode_t process_umask = [] {
    const mode_t mask = ::umask(022);
    ::umask(mask);
    return mask;
}();

// `count` letters and digits from the kernel's random source.
std::string random_letters(std::size_t count)
{
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::vector<unsigned char> bytes(count);
    std::size_t got = 0;
    while (got < count) {
        const ssize_t n = ::getrandom(bytes.data() + got, count - got, 0);
        if (n > 0) {
            got += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EINTR) {
            break; // then the bytes left are zero: the O_EXCL retry still finds a free name
        }
    }
    std::string letters;
    for (const unsigned char byte : bytes) {
        letters += kAlphabet[byte % kAlphabet.size()];
    }
    return letters;
}

// Whether `text` is made of random_letters' alphabet exactly: ASCII
// letters and digits.
bool of_random_letters(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    });
}

} // namespace

bool is_own_private_file(unsigned mode, unsigned owner, std::uint64_t links)
{
    return S_ISREG(static_cast<mode_t>(mode)) && owner == ::geteuid() && links == 1;
}

PublishedMode published_mode_of(const struct ::stat* target, std::optional<std::uint32_t> source_mode)
{
    if (target == nullptr || !S_ISREG(target->st_mode)) {
        return PublishedMode{create_mode_of(source_mode) & ~static_cast<unsigned>(process_umask), std::nullopt, 0,
                             false};
    }
    PublishedMode published{static_cast<unsigned>(target->st_mode) & 0777U, std::nullopt, 0, true};
    if (::geteuid() == 0) {
        published.owner = static_cast<unsigned>(target->st_uid);
        published.group = static_cast<unsigned>(target->st_gid);
    }
    return published;
}

PublishedMode published_mode(const std::string& dest, const LocalFolder* in, std::optional<std::uint32_t> source_mode)
{
    struct stat st {};
    const Where at(in, dest);
    // A folder not reached: as a new file's (the publish, which needs the
    // folder too, then reports why).
    if (!at.reached() || ::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return published_mode_of(nullptr, source_mode);
    }
    return published_mode_of(&st, source_mode);
}

namespace {

// The replaced file's access ACL onto the part, exactly (sys/posix_acl.hpp).
Status take_access_acl(const LocalFile& part, const std::string& dest, const LocalFolder* in)
{
    const auto acl = std::make_unique<sys::AccessAcl>(); // 64 KiB: not on the stack
    const Where at(in, dest);
    if (auto reached = at.reached(); !reached) {
        return reached;
    }
    int error = sys::read_access_acl(at.dir(), at.name(), *acl);
    if (error == 0) {
        error = sys::set_access_acl(part.fd(), *acl);
    }
    if (error == ENOTSUP) {
        return about_local_files(ErrorCode::local_io,
                                 in_quotes(dest) +
                                     " has an access ACL that cannot be set on the new file (the file system "
                                     "refuses it): it was not replaced, since that would widen who may read it; "
                                     "the verified file is kept as " +
                                     in_quotes(part.path()));
    }
    if (error != 0) {
        return local_error("cannot copy the access ACL of " + in_quotes(dest) + " to " + in_quotes(part.path()) +
                               " (nothing was replaced)",
                           error);
    }
    return success();
}

// A new file's access ACL: what the folder's default ACL gives a file
// created there with the create mode (the server's bits, or 0666), as the
// kernel computes it (acl(5), "OBJECT CREATION AND DEFAULT ACLs"; the
// umask is not applied then). The part was made there with kPartMode, so
// it inherited that ACL ANDed with 0600 as it stood then; it takes the one
// the folder gives now. True where the folder has a default ACL (then set,
// with the bits that follow from it), false where it has none (then the
// part's is removed, and the caller's chmod gives the create mode less the
// umask).
Result<bool> take_inherited_acl(const LocalFile& part, const std::string& dest, const LocalFolder* in,
                                std::optional<std::uint32_t> source_mode, BatchFolderLooks* looks)
{
    const Where at(in, dest);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    sys::InheritedAcl inherited;
    // A held folder this batch found without a default ACL is not asked
    // again: `inherited` stays empty, as that read would leave it.
    auto* without = looks != nullptr && in != nullptr ? &looks->without_default_acl : nullptr;
    int error = 0;
    if (without == nullptr || !without->contains(in)) {
        error = sys::read_inherited_acl(at.dir(), static_cast<mode_t>(create_mode_of(source_mode)), inherited);
        if (error == 0 && !inherited.present() && without != nullptr) {
            without->insert(in);
        }
    }
    if (error == 0) {
        // None now: whatever the part inherited when it was made goes too (a
        // default ACL removed since, setfacl -k, would otherwise stay).
        error = sys::set_inherited_acl(part.fd(), inherited);
    }
    if (error != 0) {
        return local_error("cannot give " + in_quotes(part.path()) + " what the default ACL of its folder gives a "
                           "new file (nothing was published; the verified file is kept there)",
                           error);
    }
    return inherited.present();
}

} // namespace

Status take_replaced_attributes(const LocalFile& part, const std::string& dest, const LocalFolder* in,
                                std::optional<std::uint32_t> source_mode)
{
    return take_replaced_attributes(part, dest, in, source_mode, published_mode(dest, in, source_mode), nullptr);
}

Status take_replaced_attributes(const LocalFile& part, const std::string& dest, const LocalFolder* in,
                                std::optional<std::uint32_t> source_mode, const PublishedMode& published,
                                BatchFolderLooks* looks)
{
    // The owner first: chown clears set-ID bits, and the part is private
    // to us until the ACL and mode below.
    if (published.owner &&
        ::fchown(part.fd(), static_cast<uid_t>(*published.owner), static_cast<gid_t>(published.group)) != 0) {
        return local_error("cannot give " + in_quotes(part.path()) + " the owner of the file it replaces", errno);
    }
    if (published.replaces) {
        if (auto taken = take_access_acl(part, dest, in); !taken) {
            return taken;
        }
    } else {
        auto inherited = take_inherited_acl(part, dest, in, source_mode, looks);
        if (!inherited) {
            return inherited.error();
        }
        if (inherited.value()) {
            return success(); // the ACL set the permission bits: a chmod would widen them to the umask's
        }
    }
    if (::fchmod(part.fd(), static_cast<mode_t>(published.mode)) != 0) {
        return local_error("cannot set the mode of " + in_quotes(part.path()), errno);
    }
    return success();
}

LocalFolder::~LocalFolder()
{
    ::close(fd_);
}

namespace {

// The folder `name` in `parent`, shown as `shown` in messages: one step of a
// tree walk, where nothing is followed (a symbolic link or a file there is
// an error naming it).
Result<std::shared_ptr<const LocalFolder>> open_child_folder(const LocalFolder& parent, const std::string& name,
                                                             std::string shown)
{
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(parent.fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        if (err == ELOOP || err == ENOTDIR) {
            Error error = about_local_files(ErrorCode::local_io,
                                            in_quotes(shown) + " is not a folder (a symbolic link is not followed)");
            error.local_errno = err; // a change (failed_without_change)
            return error;
        }
        return local_error("cannot open the folder " + in_quotes(shown), err);
    }
    return std::make_shared<const LocalFolder>(std::move(shown), fd);
}

} // namespace

Result<std::shared_ptr<const LocalFolder>> open_tree_folder(const std::string& root, const std::string& path)
{
    // The root is the user's (typed, or below what they typed): its links
    // are followed by the owner rule; nothing below it is.
    auto opened = open_typed_folder(root);
    if (!opened) {
        return opened.error();
    }
    const int at = opened.value();
    auto folder = std::make_shared<const LocalFolder>(root, at);
    std::string reached = root;
    std::size_t begin = 0;
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', begin)) {
        const std::string name = path.substr(begin, slash - begin);
        begin = slash + 1;
        if (name.empty() || name == ".") {
            continue;
        }
        reached += (reached.ends_with('/') ? "" : "/") + name;
        auto next = open_child_folder(*folder, name, reached);
        if (!next) {
            return next.error();
        }
        folder = std::move(next.value());
    }
    return folder;
}

Result<std::shared_ptr<const LocalFolder>> HeldFolders::folder_of(const std::string& root, const std::string& dest)
{
    const auto below = path_below(root, dest);
    if (!below) {
        return about_local_files(ErrorCode::local_io, in_quotes(dest) + " is not below " + in_quotes(root));
    }
    return folder_holding(root, *below);
}

Result<std::shared_ptr<const LocalFolder>> HeldFolders::folder_holding(const std::string& root,
                                                                       const std::string& below)
{
    // The folder part of `below`, its names joined by single slashes.
    std::string folder_path;
    std::size_t begin = 0;
    for (auto slash = below.find('/'); slash != std::string::npos; slash = below.find('/', begin)) {
        const std::string name = below.substr(begin, slash - begin);
        begin = slash + 1;
        if (!name.empty() && name != ".") {
            folder_path += (folder_path.empty() ? "" : "/") + name;
        }
    }
    const std::lock_guard lock(mutex_);
    return folder(root, folder_path);
}

Result<std::shared_ptr<const LocalFolder>> HeldFolders::folder(const std::string& root, const std::string& below)
{
    if (auto found = held_.find({root, below}); found != held_.end()) {
        return found->second;
    }
    std::shared_ptr<const LocalFolder> opened;
    if (below.empty()) {
        // The root is the user's: its links are followed by the owner rule.
        auto fd = open_typed_folder(root);
        if (!fd) {
            return fd.error();
        }
        opened = std::make_shared<const LocalFolder>(root, fd.value());
    } else {
        // Below it nothing is followed: one name opened in its folder, held.
        const auto slash = below.rfind('/');
        auto parent = folder(root, slash == std::string::npos ? std::string() : below.substr(0, slash));
        if (!parent) {
            return parent.error();
        }
        const std::string name = slash == std::string::npos ? below : below.substr(slash + 1);
        auto child = open_child_folder(*parent.value(), name, root + (root.ends_with('/') ? "" : "/") + below);
        if (!child) {
            return child.error();
        }
        opened = std::move(child.value());
    }
    if (held_.size() >= most_) {
        held_.clear(); // the downloads that took them still hold theirs
    }
    held_.emplace(std::make_pair(root, below), opened);
    return opened;
}

std::optional<std::string> path_below(const std::string& root, const std::string& path)
{
    if (root == "." && !path.starts_with('/') && !path.starts_with("./") && path != ".." &&
        !path.starts_with("../")) {
        return path; // relative to the working folder, as "." is
    }
    if (root.empty() || !path.starts_with(root)) {
        return std::nullopt;
    }
    if (root.ends_with('/')) {
        return path.substr(root.size());
    }
    if (path.size() == root.size()) {
        return std::string();
    }
    if (path[root.size()] != '/') {
        return std::nullopt; // "copy2/a" is not below "copy"
    }
    return path.substr(root.size() + 1);
}

LocalFile::LocalFile(LocalFile&& other) noexcept : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

LocalFile& LocalFile::operator=(LocalFile&& other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

LocalFile::~LocalFile()
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

namespace {

// A path the user typed, opened through resolve_typed_path: its last name
// followed only as a link of the user's or root's (and not at all with
// O_NOFOLLOW), then opened in the folder reached with O_NOFOLLOW.
Result<LocalFile> open_typed(const std::string& path, int flags, unsigned mode)
{
    auto place = resolve_typed_path(path, (flags & O_NOFOLLOW) == 0);
    if (!place) {
        return place.error();
    }
    if (place->object.fd() >= 0) {
        // What the walk found there, reopened through its descriptor: that
        // very file (a FIFO, /dev/stdout's pipe, a file a link led to),
        // whatever has happened to its name since.
        const std::string via = "/proc/self/fd/" + std::to_string(place->object.fd());
        const int fd = sys::retry_on_eintr(
            [&] { return ::open(via.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode)); }, interrupted);
        if (fd < 0) {
            return local_error("cannot open " + in_quotes(path), errno);
        }
        return LocalFile(path, fd);
    }
    const std::string leaf = place->leaf.empty() ? "." : place->leaf; // empty: the folder itself
    const int fd = sys::retry_on_eintr([&] {
        return ::openat(place->folder->fd(), leaf.c_str(), flags | O_NOFOLLOW | O_CLOEXEC,
                        static_cast<mode_t>(mode));
    });
    if (fd < 0) {
        return local_error("cannot open " + in_quotes(path), errno);
    }
    return LocalFile(path, fd);
}

} // namespace

Result<LocalFile> LocalFile::open(const std::string& path, int flags, unsigned mode, const LocalFolder* in)
{
    if (in == nullptr) {
        return open_typed(path, flags, mode);
    }
    const std::string name = base_name(path);
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(in->fd(), name.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode)); });
    if (fd < 0) {
        return local_error("cannot open " + in_quotes(path), errno);
    }
    return LocalFile(path, fd);
}

Result<std::size_t> LocalFile::read_at(std::uint64_t offset, std::span<std::uint8_t> buffer) const
{
    const ssize_t got =
        sys::retry_on_eintr([&] { return ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset)); });
    if (got < 0) {
        return local_error("cannot read " + in_quotes(path_), errno);
    }
    return static_cast<std::size_t>(got);
}

Status LocalFile::write_all(std::span<const std::uint8_t> bytes)
{
    if (const auto wrote = sys::write_all(fd_, bytes); !wrote.ok()) {
        return local_error("cannot write " + in_quotes(path_), wrote.error);
    }
    return success();
}

Status LocalFile::sync()
{
    if (::fsync(fd_) != 0) {
        return local_error("cannot sync " + in_quotes(path_), errno);
    }
    return success();
}

void LocalFile::start_writeback()
{
    (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

Status LocalFile::truncate(std::uint64_t size)
{
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        return local_error("cannot truncate " + in_quotes(path_), errno);
    }
    return success();
}

Status LocalFile::seek(std::uint64_t offset)
{
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
        return local_error("cannot seek in " + in_quotes(path_), errno);
    }
    return success();
}

Result<std::uint64_t> LocalFile::size() const
{
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        return local_error("cannot stat " + in_quotes(path_), errno);
    }
    return static_cast<std::uint64_t>(st.st_size);
}

Status LocalFile::close()
{
    const int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) {
        return local_error("cannot close " + in_quotes(path_), errno);
    }
    return success();
}

Result<PartIdentity> identity_of(const LocalFile& file)
{
    struct stat st {};
    if (::fstat(file.fd(), &st) != 0) {
        return local_error("cannot stat " + in_quotes(file.path()), errno);
    }
    return identity_of(st);
}

PartIdentity identity_of(const struct stat& st)
{
    return PartIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                        static_cast<std::uint64_t>(st.st_size),
                        sys::nanoseconds_since_epoch(st.st_mtim),
                        sys::nanoseconds_since_epoch(st.st_ctim)};
}

std::string part_path(const std::string& dest)
{
    const auto slash = dest.rfind('/');
    const std::size_t base_start = slash == std::string::npos ? 0 : slash + 1;
    const std::size_t base_size = dest.size() - base_start;
    // The longest name made from the part's is the sidecar's temporary
    // copy: with it, NAME.ferry-part must fit NAME_MAX, or no checkpoint
    // could ever be written.
    constexpr std::size_t kLongestSuffix =
        kPartSuffix.size() + kStateSuffix.size() + kStateTemporarySuffix.size() + kStateTemporaryRandom;
    if (base_size + kLongestSuffix <= NAME_MAX) {
        return dest + std::string(kPartSuffix);
    }
    // Too long for the suffixes (valid names go up to 255 bytes): a hidden
    // name fixed by the file's name, in the same folder, so that a resume
    // finds it again and the rename that publishes it stays in one folder.
    Sha256 digest;
    digest.update(dest.data() + base_start, base_size);
    return dest.substr(0, base_start) + "." + digest.hex_digest() + std::string(kPartSuffix);
}

std::string state_path(const std::string& dest)
{
    return part_path(dest) + std::string(kStateSuffix);
}

namespace {

// A file in the sidecar's format (any version protocol/resume_state's
// decoder reads), whoever owns it, and its fstat: what stands at a sidecar's
// name and was written by a ferry (this user's or another's).
struct Sidecar {
    ResumeState state;
    struct stat st {};
};

Result<Sidecar> read_sidecar(const std::string& path, const LocalFolder* in)
{
    // O_NONBLOCK: a FIFO under the sidecar's name must not hang the get;
    // whatever is not a regular file is no sidecar (the get starts over).
    auto file = LocalFile::open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, in);
    if (!file) {
        return file.error();
    }
    Sidecar sidecar;
    if (::fstat(file->fd(), &sidecar.st) != 0 || !S_ISREG(sidecar.st.st_mode)) {
        return about_local_files(ErrorCode::local_io, in_quotes(path) + " is not a regular file: not a download state");
    }
    std::string text;
    std::vector<std::uint8_t> buffer(4096);
    for (;;) {
        auto got = file->read_at(text.size(), buffer);
        if (!got) {
            return got.error();
        }
        if (got.value() == 0) {
            break;
        }
        text.append(reinterpret_cast<const char*>(buffer.data()), got.value());
        if (text.size() > kMaxResumeStateSize) {
            return about_local_files(ErrorCode::local_io, in_quotes(path) + " is too large to be a download state");
        }
    }
    auto decoded = decode_resume_state(text);
    if (!decoded) {
        return about_local_files(ErrorCode::local_io, in_quotes(path) + " is not a download state");
    }
    sidecar.state = std::move(*decoded);
    return sidecar;
}

std::string kind_of(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "a folder";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(mode) || S_ISBLK(mode)) {
        return "a device";
    }
    return "not a regular file";
}

} // namespace

Result<DownloadState> read_download_state(const std::string& path, const LocalFolder* in)
{
    auto sidecar = read_sidecar(path, in);
    if (!sidecar) {
        return sidecar.error();
    }
    const struct stat& st = sidecar->st;
    if (!is_own_private_file(st.st_mode, st.st_uid, st.st_nlink)) {
        return about_local_files(ErrorCode::local_io,
                                 in_quotes(path) + " is another user's or has another name: not trusted");
    }
    ResumeState& decoded = sidecar->state;
    if (!decoded.mtime || !decoded.prefix_digest || !decoded.part) {
        return about_local_files(ErrorCode::local_io, in_quotes(path) + " is not a download state");
    }
    return DownloadState{std::move(decoded.name),       decoded.size,
                         *decoded.mtime,                decoded.bytes_held,
                         std::move(decoded.hash_state), std::move(*decoded.prefix_digest),
                         *decoded.part};
}

namespace {

// A sidecar's temporary, exactly 0600 whatever the umask took from the mode
// it was created with.
Status set_private_mode(const LocalFile& file)
{
    if (::fchmod(file.fd(), 0600) != 0) {
        return local_error("cannot set the mode of " + in_quotes(file.path()), errno);
    }
    return success();
}

// What a kill can leave of a checkpoint is what has a name. The sidecar's
// new text is therefore first written into an unnamed file of the folder
// (O_TMPFILE), synced, and only then given a fresh temporary name (linkat)
// and renamed over the sidecar: a kill before the link leaves nothing (the
// kernel frees an unnamed file with its last descriptor), and only one
// between the link and the rename leaves a temporary, a complete sidecar,
// for the next download of the name or a sync pull to remove
// (remove_state_temporaries, remove_state_temporary). linkat cannot replace
// a name, so the rename stays. nullopt where the folder's file system or
// the kernel makes no unnamed file, or /proc is not there to link it
// through: the caller writes a named temporary instead.
Result<std::optional<std::string>> link_unnamed_temporary(const std::string& path, const std::string& text,
                                                          const LocalFolder* in)
{
    const Where folder(in, path);
    if (auto reached = folder.reached(); !reached) {
        return reached.error();
    }
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(folder.dir(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600); });
    if (fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOSYS) {
            return std::optional<std::string>();
        }
        return local_error("cannot create a temporary file beside " + in_quotes(path), errno);
    }
    LocalFile file(path, fd);
    // Exactly 0600 whatever the umask took: a sidecar's mode, and the shape
    // by which a leftover is known (is_leftover_shape).
    Status done = set_private_mode(file);
    if (done) {
        done = file.write_all(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }
    if (done) {
        done = file.sync();
    }
    if (!done) {
        return done.error();
    }
    // Linked through /proc (open(2)'s way for an unprivileged process:
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH), under a fresh name each
    // time: linkat never replaces what stands at a name.
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    const std::string leaf = base_name(path);
    constexpr int kTries = 64;
    for (int attempt = 0; attempt < kTries; ++attempt) {
        std::string temporary =
            path + std::string(kStateTemporarySuffix) + random_letters(kStateTemporaryRandom);
        const std::string name = leaf + temporary.substr(path.size());
        if (::linkat(AT_FDCWD, self.c_str(), folder.dir(), name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            return std::optional<std::string>(std::move(temporary));
        }
        if (errno == ENOENT || errno == EPERM || errno == EXDEV) {
            return std::optional<std::string>(); // no /proc, or a file system that links no unnamed file
        }
        if (errno != EEXIST) {
            return local_error("cannot name a temporary file beside " + in_quotes(path), errno);
        }
    }
    return local_error("cannot name a temporary file beside " + in_quotes(path), EEXIST);
}

// The fallback: a fresh name each time (O_EXCL), never one found standing:
// a file of that name (a user's, or one a download published) is not
// ferry's to drop. A kill while it is written leaves it, cut short.
Result<std::string> write_named_temporary(const std::string& path, const std::string& text, const LocalFolder* in)
{
    std::string temporary;
    int fd = -1;
    constexpr int kTries = 64;
    for (int attempt = 0; attempt < kTries && fd < 0; ++attempt) {
        temporary = path + std::string(kStateTemporarySuffix) + random_letters(kStateTemporaryRandom);
        const Where at(in, temporary);
        if (auto reached = at.reached(); !reached) {
            return reached.error();
        }
        fd = sys::retry_on_eintr([&] {
            return ::openat(at.dir(), at.name(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        });
        if (fd < 0 && errno != EEXIST) {
            return local_error("cannot create " + in_quotes(temporary), errno);
        }
    }
    if (fd < 0) {
        return local_error("cannot create a temporary file beside " + in_quotes(path), EEXIST);
    }
    LocalFile file(temporary, fd);
    Status done = set_private_mode(file);
    if (done) {
        done = file.write_all(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }
    if (done) {
        done = file.sync();
    }
    if (done) {
        done = file.close();
    }
    if (!done) {
        (void)remove_file(temporary, in); // the file made above, by O_EXCL
        return done.error();
    }
    return temporary;
}

} // namespace

Status write_download_state(const std::string& path, const DownloadState& state, const LocalFolder* in)
{
    ResumeState resume;
    resume.name = state.name;
    resume.size = state.remote_size;
    resume.mtime = state.remote_mtime;
    resume.bytes_held = state.bytes_held;
    resume.hash_state = state.digest_state;
    resume.prefix_digest = state.prefix_digest;
    resume.part = state.part;
    const std::string text = encode_resume_state(resume);
    auto unnamed = link_unnamed_temporary(path, text, in);
    if (!unnamed) {
        return unnamed.error();
    }
    std::string temporary;
    if (unnamed.value()) {
        temporary = std::move(*unnamed.value());
    } else {
        auto named = write_named_temporary(path, text, in);
        if (!named) {
            return named.error();
        }
        temporary = std::move(named.value());
    }
    // The sidecar's name is fixed by the download's: it can meet a file
    // of the user's own, which a rename would drop.
    Status done = success();
    if (auto found = look_at_state(path, in); !found) {
        done = found.error();
    }
    if (done) {
        done = rename_file(temporary, path, in);
    }
    if (!done) {
        (void)remove_file(temporary, in); // the name made above, fresh
    }
    return done;
}

Error foreign_state_error(const std::string& path, unsigned mode)
{
    const std::string what = S_ISREG(static_cast<mode_t>(mode)) ? std::string("a file ferry did not write")
                                                                  : kind_of(static_cast<mode_t>(mode));
    return about_local_files(ErrorCode::local_io,
                             in_quotes(path) + ", the name this download's resume state goes by, is " + what +
                                 ": it is left untouched; move it away or rename it, then get the file again");
}

namespace {

// look_at_state, and where a sidecar stands, `checked` gets the fstat of
// the very file whose text was read as one.
Result<StateFound> look_at_state_file(const std::string& path, const LocalFolder* in, struct stat& checked)
{
    struct stat st {};
    const Where at(in, path);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    if (::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return StateFound::absent;
        }
        return local_error("cannot look at " + in_quotes(path), errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return foreign_state_error(path, st.st_mode);
    }
    // Any sidecar a ferry wrote: an older build's (which may lack the fields
    // a resume needs) or another user's (never resumed from: see
    // is_own_private_file) is replaced or removed, as before.
    auto sidecar = read_sidecar(path, in);
    if (!sidecar) {
        return foreign_state_error(path, st.st_mode);
    }
    checked = sidecar->st;
    return StateFound::ferrys;
}

} // namespace

Result<StateFound> look_at_state(const std::string& path, const LocalFolder* in)
{
    struct stat checked {};
    return look_at_state_file(path, in, checked);
}

Status remove_download_state(const std::string& path, const LocalFolder* in)
{
    struct stat checked {};
    auto found = look_at_state_file(path, in, checked);
    if (!found) {
        return found.error();
    }
    if (found.value() == StateFound::absent) {
        return success();
    }
    // Only the file read as a sidecar, set aside and checked there: a file
    // renamed onto the name since stays.
    const Where at(in, path);
    if (auto reached = at.reached(); !reached) {
        return reached;
    }
    auto removed = unlink_if_still(at.dir(), at.name(), checked, path, RefusedRename::is_an_error);
    if (!removed) {
        return removed.error();
    }
    return success();
}

bool is_state_temporary_name(std::string_view name, std::string_view sidecar)
{
    const auto found = sidecar_of_temporary(name);
    return found && *found == sidecar;
}

std::optional<std::string> sidecar_of_temporary(std::string_view name)
{
    const std::string marker = std::string(kPartSuffix) + std::string(kStateSuffix) + std::string(kStateTemporarySuffix);
    if (name.size() < marker.size() + kStateTemporaryRandom) {
        return std::nullopt;
    }
    const std::size_t random_at = name.size() - kStateTemporaryRandom;
    if (name.substr(random_at - marker.size(), marker.size()) != marker) {
        return std::nullopt;
    }
    if (!of_random_letters(name.substr(random_at))) {
        return std::nullopt;
    }
    return std::string(name.substr(0, random_at - kStateTemporarySuffix.size()));
}

bool is_leftover_shape(const struct ::stat& st)
{
    return is_own_private_file(st.st_mode, st.st_uid, st.st_nlink) && (st.st_mode & 07777U) == 0600U &&
           static_cast<std::uint64_t>(st.st_size) <= kMaxResumeStateSize;
}

namespace {

// Whether the open file (`st`: its fstat) is a leftover of ferry's:
// is_leftover_shape, and its text is a sidecar that the state reader reads.
bool is_ferry_leftover(const LocalFile& file, const struct ::stat& st)
{
    if (!S_ISREG(st.st_mode) || !is_leftover_shape(st)) {
        return false;
    }
    std::string text;
    std::vector<std::uint8_t> buffer(4096);
    for (;;) {
        auto got = file.read_at(text.size(), buffer);
        if (!got) {
            return false;
        }
        if (got.value() == 0) {
            break;
        }
        text.append(reinterpret_cast<const char*>(buffer.data()), got.value());
        if (text.size() > kMaxResumeStateSize) {
            return false;
        }
    }
    return decode_resume_state(text).has_value();
}

bool same_file(const struct ::stat& a, const struct ::stat& b)
{
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// A fresh name in the folder that no one can have guessed: the file being
// removed is first renamed to it (RENAME_NOREPLACE), so that what the
// unlink then takes is what the rename moved, checked there.
constexpr std::string_view kAsidePrefix = ".ferry-removing-";
constexpr std::size_t kAsideRandom = 16;
// The extended attribute that vouches for a file set aside under such a
// name: set once the file there is checked to be the one to remove, just
// before its unlink, so that a kill between the two leaves a file that the
// next sync pull can prove ferry's. A file of the user's own that merely
// bears such a name has none, and is never removed for its name.
constexpr const char* kSetAsideMark = "user.ferry.removing";

// The file `name` in `dir`, reached without following a link, by its
// /proc/self/fd path: (get|set)xattr(2) on that path works for any file
// its owner may read or write, where an fd-based call would need the file
// opened (fgetxattr refuses an O_PATH descriptor). -1: not reached.
int open_entry_path(int dir, const char* name)
{
    return sys::retry_on_eintr([&] { return ::openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC); });
}

void mark_set_aside(int dir, const char* name)
{
    const int fd = open_entry_path(dir, name);
    if (fd < 0) {
        return;
    }
    const std::string via = "/proc/self/fd/" + std::to_string(fd);
    (void)::setxattr(via.c_str(), kSetAsideMark, "1", 1, 0); // best effort: unmarked, a residue stays
    ::close(fd);
}

} // namespace

bool is_marked_set_aside(int dir, const std::string& name)
{
    const int fd = open_entry_path(dir, name.c_str());
    if (fd < 0) {
        return false;
    }
    const std::string via = "/proc/self/fd/" + std::to_string(fd);
    char value = 0;
    const bool marked = ::getxattr(via.c_str(), kSetAsideMark, &value, 1) == 1 && value == '1';
    ::close(fd);
    return marked;
}

void remove_own_part(const LocalFile& part, const LocalFolder* in)
{
    struct stat st {};
    const Where at(in, part.path());
    if (::fstat(part.fd(), &st) != 0 || !at.reached()) {
        return;
    }
    (void)unlink_if_still(at.dir(), at.name(), st, part.path());
}

bool is_set_aside_name(std::string_view name)
{
    return name.size() == kAsidePrefix.size() + kAsideRandom && name.starts_with(kAsidePrefix) &&
           of_random_letters(name.substr(kAsidePrefix.size()));
}

Result<bool> unlink_if_still(int dir, const std::string& name, const struct ::stat& looked, const std::string& shown,
                             RefusedRename refused)
{
    std::string aside;
    bool moved = false;
    constexpr int kTries = 16;
    for (int attempt = 0; attempt < kTries && !moved; ++attempt) {
        aside = std::string(kAsidePrefix) + random_letters(kAsideRandom);
        if (sys::rename_to_fresh_name(dir, name.c_str(), aside.c_str()) == 0) {
            moved = true;
        } else if (errno == ENOENT) {
            return false; // gone since the look
        } else if (errno != EEXIST) {
            // Refused (a permission, a mount point): nothing removed.
            if (refused == RefusedRename::is_an_error) {
                return local_error("cannot remove " + in_quotes(shown), errno);
            }
            return false;
        }
    }
    if (!moved) {
        return false;
    }
    struct stat now {};
    if (::fstatat(dir, aside.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && same_file(now, looked)) {
        if (S_ISREG(now.st_mode)) {
            mark_set_aside(dir, aside.c_str());
        }
        if (::unlinkat(dir, aside.c_str(), 0) != 0) {
            const int failure = errno;
            (void)sys::rename_no_replace(dir, aside.c_str(), dir, name.c_str());
            return local_error("cannot remove " + in_quotes(shown), failure);
        }
        return true;
    }
    // Swapped since the look: what the rename moved goes back, never over
    // a name taken meanwhile.
    if (sys::rename_no_replace(dir, aside.c_str(), dir, name.c_str()) != 0) {
        const int failure = errno;
        const std::string why = failure == EEXIST || failure == ENOTEMPTY
                                    ? "its name was taken again"
                                    : std::string("it could not be put back (") + std::strerror(failure) + ")";
        return about_local_files(ErrorCode::local_io,
                                 in_quotes(shown) + " was replaced while it was being removed, and " + why +
                                     ": what stood there is left as " + in_quotes(aside) + " beside it");
    }
    return false;
}

Result<bool> remove_ferry_leftover(const std::string& path, const LocalFolder* in, bool dry_run)
{
    const Where at(in, path);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    // O_NONBLOCK: a FIFO at the name does not hang the look.
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(at.dir(), at.name(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); });
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENXIO || errno == EACCES) {
            return false; // gone, a link, a socket, or not ours to read
        }
        return local_error("cannot look at " + in_quotes(path), errno);
    }
    const LocalFile file(path, fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !is_ferry_leftover(file, st)) {
        return false;
    }
    if (dry_run) {
        struct stat now {};
        return ::fstatat(at.dir(), at.name(), &now, AT_SYMLINK_NOFOLLOW) == 0 && same_file(now, st);
    }
    return unlink_if_still(at.dir(), at.name(), st, path);
}

Result<bool> remove_state_temporary(const std::string& path, const LocalFolder* in, bool dry_run)
{
    if (!sidecar_of_temporary(base_name(path))) {
        return false;
    }
    return remove_ferry_leftover(path, in, dry_run);
}

Result<std::size_t> remove_state_temporaries(const std::string& state_file, const LocalFolder* in)
{
    const Where at(in, state_file);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    const std::string sidecar = at.name();
    // A descriptor of its own for the read: closedir closes it, and the
    // held folder's stays.
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(at.dir(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) {
        return local_error("cannot read the folder of " + in_quotes(state_file), errno);
    }
    DIR* folder = ::fdopendir(fd);
    if (folder == nullptr) {
        const int failure = errno;
        ::close(fd);
        return local_error("cannot read the folder of " + in_quotes(state_file), failure);
    }
    std::vector<std::string> found;
    while (const dirent* entry = ::readdir(folder)) {
        if (is_state_temporary_name(entry->d_name, sidecar)) {
            found.emplace_back(entry->d_name);
        }
    }
    ::closedir(folder);
    const std::size_t slash = state_file.rfind('/');
    const std::string prefix = slash == std::string::npos ? std::string() : state_file.substr(0, slash + 1);
    std::size_t removed = 0;
    for (const auto& name : found) {
        auto gone = remove_state_temporary(prefix + name, in);
        if (!gone) {
            return gone.error();
        }
        removed += gone.value() ? 1 : 0;
    }
    return removed;
}

void remove_download_leftovers(const std::string& dest, const LocalFolder* in)
{
    const std::string part = part_path(dest);
    const std::string state = state_path(dest);
    const Where at(in, part);
    if (!at.reached()) {
        return;
    }
    struct stat st {};
    if (::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        // A part stands: only its temporaries, under its lock (a live
        // download holds it: all stay). Its sidecar is its resume's.
        auto file = LocalFile::open(part, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, in);
        if (file && S_ISREG(st.st_mode) && lock_part(file.value())) {
            (void)remove_state_temporaries(state, in);
        }
        return;
    }
    if (errno != ENOENT) {
        return;
    }
    // No part: no live download checkpoints this sidecar (a checkpoint is
    // made only while its part stands, locked). What is left is one that
    // creates its part and writes a checkpoint in the instant between this
    // look and the removal below: its part stays, and it writes the next.
    (void)remove_ferry_leftover(state, in);
    (void)remove_state_temporaries(state, in);
}

std::string resolve_download_path(const std::string& name, const std::optional<std::string>& local)
{
    if (!local || local->empty()) {
        return name;
    }
    if (is_directory(*local)) {
        return local_join(folder_of_typed(*local), name); // "out/" and "out/." alike: "out/NAME"
    }
    return *local;
}

bool name_is_free(const std::string& path, const LocalFolder* in)
{
    const Where at(in, path);
    struct stat st {};
    if (!at.reached() || ::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
        return false;
    }
    // A folder removed meanwhile holds no names either, but nothing can
    // stand there again: that is not a free name.
    return ::fstat(at.dir(), &st) == 0 && st.st_nlink > 0;
}

bool held_locked(const std::string& path, const LocalFolder* in)
{
    // O_NONBLOCK: a FIFO swapped in does not hang the look; O_NOFOLLOW: a
    // link is not a file held by anyone.
    const Where at(in, path);
    if (!at.reached()) {
        return false; // no file reached: none held (the publish then reports why)
    }
    const int fd = sys::retry_on_eintr([&] {
        return ::openat(at.dir(), at.name(),
                        O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    });
    if (fd < 0) {
        return false;
    }
    LocalFile file(path, fd);
    struct stat st {};
    if (::fstat(file.fd(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return false;
    }
    // A shared lock is refused only while someone holds an exclusive one,
    // as a download does on its part (lock_part); the close below lets go
    // of the one taken here.
    return sys::retry_on_eintr([&] { return ::flock(file.fd(), LOCK_SH | LOCK_NB); }) != 0 && errno == EWOULDBLOCK;
}

// A lock another download (or program) holds is let go when it is over:
// busy, as the server's answer to one identity's two uploads of a file is,
// so that a script's retry (exit status 6, --retry) gets the file then.
Error locked_target_error(const std::string& dest)
{
    return about_local_files(ErrorCode::busy,
                             in_quotes(dest) + " is being written by another download (or held locked by another "
                                               "program): it is left as it is; get the file again once that is over");
}

namespace {

// The components of `path`, in order ("" and "." left out).
std::deque<std::string> components_of(const std::string& path)
{
    std::deque<std::string> parts;
    std::size_t begin = 0;
    while (begin <= path.size()) {
        const auto slash = std::min(path.find('/', begin), path.size());
        std::string part = path.substr(begin, slash - begin);
        if (!part.empty() && part != ".") {
            parts.push_back(std::move(part));
        }
        begin = slash + 1;
    }
    return parts;
}

Error foreign_link_error(const std::string& link, uid_t owner)
{
    return about_local_files(ErrorCode::local_io,
                             in_quotes(link) + " is a symbolic link owned by another user (uid " +
                                 std::to_string(owner) +
                                 "): ferry follows only links of its own user or root, so nothing is "
                                 "read or written through it; remove it or give another name");
}

bool on_procfs(int folder)
{
    struct statfs fs {};
    return ::fstatfs(folder, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
}

// The walk of resolve_typed_path: where it stands (an O_PATH descriptor of
// a folder, and that folder's path as walked, for messages) and the names
// still to take, the next at the front.
struct TypedWalk {
    LocalFile at;
    std::string reached;
    std::deque<std::string> left;
    int links = 0;

    Status start_at(bool root)
    {
        const int fd = sys::retry_on_eintr([&] { return ::open(root ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC); });
        if (fd < 0) {
            return local_error(root ? "cannot open the folder \"/\"" : "cannot open the working folder", errno);
        }
        at = LocalFile(root ? "/" : ".", fd);
        reached = root ? "/" : "";
        return success();
    }

    // ".." from the folder held, never from the path's text.
    Status climb()
    {
        const int fd = sys::retry_on_eintr([&] { return ::openat(at.fd(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC); });
        if (fd < 0) {
            return local_error("cannot open the folder " + in_quotes(local_join(reached, "..")), errno);
        }
        reached = local_join(reached, "..");
        at = LocalFile(reached, fd);
        return success();
    }

    // The link `link` (an O_PATH descriptor of the link itself, `name` in
    // the folder held): its owner checked on that inode, its text read from
    // it.
    Result<std::string> read_link(const LocalFile& link, const std::string& name, const struct stat& st)
    {
        const std::string shown = local_join(reached, name);
        if (st.st_uid != ::geteuid() && st.st_uid != 0) {
            return foreign_link_error(shown, st.st_uid);
        }
        if (++links > kMaxTypedLinks) {
            return local_error("cannot follow " + in_quotes(shown), ELOOP);
        }
        std::vector<char> text(PATH_MAX + 1);
        const ssize_t length = ::readlinkat(link.fd(), "", text.data(), text.size() - 1);
        if (length < 0) {
            return local_error("cannot read the link " + in_quotes(shown), errno);
        }
        return std::string(text.data(), static_cast<std::size_t>(length));
    }

    // The walk continued along a link's text, from the link's folder.
    Status go_along(const std::string& text)
    {
        if (text.starts_with('/')) {
            if (auto restarted = start_at(true); !restarted) {
                return restarted;
            }
        }
        auto more = components_of(text);
        left.insert(left.begin(), more.begin(), more.end());
        return success();
    }
};

// A link in /proc whose text is no path ("pipe:[42]", "socket:[7]",
// "anon_inode:[eventfd]": /proc/self/fd/1 when standard output is a pipe)
// names an open file that has no name to walk. The kernel follows it;
// such links are the process's own, never planted.
bool names_an_open_file(const TypedWalk& walk, const std::string& text)
{
    return !text.starts_with('/') && text.find(':') != std::string::npos && on_procfs(walk.at.fd());
}

Result<LocalFile> open_magic_link(const TypedWalk& walk, const std::string& name)
{
    const int fd = sys::retry_on_eintr([&] { return ::openat(walk.at.fd(), name.c_str(), O_PATH | O_CLOEXEC); });
    if (fd < 0) {
        return local_error("cannot follow " + in_quotes(local_join(walk.reached, name)), errno);
    }
    return LocalFile(local_join(walk.reached, name), fd);
}

} // namespace

std::string local_join(const std::string& folder, const std::string& name)
{
    if (name.empty()) {
        return folder;
    }
    if (folder.empty() || folder == ".") {
        return name.starts_with('-') ? "./" + name : name;
    }
    return folder.ends_with('/') ? folder + name : folder + "/" + name;
}

std::string folder_of_typed(std::string path)
{
    while (path.size() > 1) {
        if (path.ends_with('/')) {
            path.pop_back();
        } else if (path.ends_with("/.")) {
            path.resize(path.size() - 2);
        } else {
            break;
        }
    }
    return path.empty() ? std::string("/") : path; // "/." and "//" are the root
}

Result<TypedPlace> resolve_typed_path(const std::string& path, bool follow_leaf)
{
    TypedWalk walk;
    if (auto started = walk.start_at(path.starts_with('/')); !started) {
        return started.error();
    }
    walk.left = components_of(path);
    TypedPlace place;
    while (!walk.left.empty()) {
        std::string name = std::move(walk.left.front());
        walk.left.pop_front();
        const bool last = walk.left.empty();
        if (name == "..") {
            if (auto climbed = walk.climb(); !climbed) {
                return climbed.error();
            }
            continue;
        }
        if (last && !follow_leaf) {
            place.leaf = name;
            break;
        }
        const int fd = sys::retry_on_eintr(
            [&] { return ::openat(walk.at.fd(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC); });
        if (fd < 0 && errno == ENOENT && last) {
            place.leaf = name; // nothing there yet: what the caller creates
            break;
        }
        if (fd < 0) {
            return local_error("cannot open " + in_quotes(local_join(walk.reached, name)), errno);
        }
        LocalFile next(local_join(walk.reached, name), fd);
        struct stat st {};
        if (::fstat(next.fd(), &st) != 0) {
            return local_error("cannot look at " + in_quotes(next.path()), errno);
        }
        if (S_ISLNK(st.st_mode)) {
            auto text = walk.read_link(next, name, st);
            if (!text) {
                return text.error();
            }
            if (!names_an_open_file(walk, *text)) {
                if (auto along = walk.go_along(*text); !along) {
                    return along.error();
                }
                place.followed_leaf = place.followed_leaf || last;
                continue;
            }
            auto target = open_magic_link(walk, name);
            if (!target) {
                return target.error();
            }
            next = std::move(target.value());
            if (::fstat(next.fd(), &st) != 0) {
                return local_error("cannot look at " + in_quotes(next.path()), errno);
            }
        }
        if (S_ISDIR(st.st_mode)) {
            walk.reached = next.path();
            walk.at = std::move(next);
            continue;
        }
        if (!last || typed_as_folder(path)) {
            // "file/" too: a trailing slash names a folder (POSIX.1-2017 4.13).
            return local_error("cannot open " + in_quotes(last ? path : next.path()), ENOTDIR);
        }
        place.leaf = name;
        place.object = std::move(next);
        break;
    }
    // The folder reached, opened again for reading: an O_PATH descriptor
    // cannot be synced or listed.
    const int folder = sys::retry_on_eintr(
        [&] { return ::openat(walk.at.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (folder < 0) {
        return local_error("cannot open the folder " + in_quotes(walk.reached.empty() ? "." : walk.reached), errno);
    }
    place.folder = std::make_shared<const LocalFolder>(walk.reached.empty() ? "." : walk.reached, folder);
    return place;
}

void let_owner_fill(int parent, const char* leaf)
{
    // O_PATH: a folder the umask left without the owner's read bit (umask
    // 0577 makes 0200) cannot be opened to read, and is the one to mend.
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(parent, leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
    if (fd < 0) {
        return;
    }
    struct stat st {};
    constexpr mode_t kFill = S_IRWXU;
    if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & kFill) != kFill) {
        // fchmod(2) refuses an O_PATH descriptor (EBADF); chmod(2) of its
        // /proc/self/fd link reaches that very folder, as systemd's
        // fchmod_opath does (fchmodat2's AT_EMPTY_PATH needs Linux 6.6).
        const std::string self = "/proc/self/fd/" + std::to_string(fd);
        (void)::chmod(self.c_str(), static_cast<mode_t>((st.st_mode & 07777U) | kFill));
    }
    ::close(fd);
}

Status make_typed_folder(const std::string& path, std::optional<std::uint32_t> mode)
{
    auto place = resolve_typed_path(path, false);
    if (!place) {
        return place.error();
    }
    // "new/." names the folder that is there (POSIX.1-2017 4.13: "." is the
    // folder itself), so it is never made: as mkdir new/. says, ENOENT.
    const bool names_what_is_there = last_typed_component(path) == ".";
    if (!place->leaf.empty() && !names_what_is_there) {
        if (::mkdirat(place->folder->fd(), place->leaf.c_str(), static_cast<mode_t>(folder_create_mode_of(mode))) ==
            0) {
            let_owner_fill(place->folder->fd(), place->leaf.c_str());
        } else if (errno != EEXIST) {
            return local_error("cannot make the folder " + in_quotes(path), errno);
        }
    }
    // What stands there now (a folder, or a link of the user's to one).
    auto opened = open_typed_folder(path);
    if (!opened) {
        return opened.error();
    }
    ::close(opened.value());
    return success();
}

Result<int> open_typed_folder(const std::string& path)
{
    auto place = resolve_typed_path(path, true);
    if (!place) {
        return place.error();
    }
    if (!place->leaf.empty()) {
        return local_error("cannot open the folder " + in_quotes(path),
                           place->object.fd() >= 0 ? ENOTDIR : ENOENT);
    }
    const int fd = ::fcntl(place->folder->fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return local_error("cannot open the folder " + in_quotes(path), errno);
    }
    return fd;
}

namespace {

// A download's target the user typed, resolved by resolve_typed_path.
Result<DownloadTarget> inspect_typed_target(const std::string& dest)
{
    auto place = resolve_typed_path(dest, true);
    if (!place) {
        return place.error();
    }
    if (place->leaf.empty()) {
        return about_local_files(ErrorCode::local_io, in_quotes(dest) + " is a folder: nothing is downloaded onto it");
    }
    if (place->object.fd() < 0) {
        if (typed_as_folder(dest)) {
            // "out/" names a folder: no file is made under that name (cp's ENOTDIR).
            return about_local_files(ErrorCode::local_io, in_quotes(dest) +
                                                              " names a folder, and there is none there: nothing "
                                                              "is downloaded (-C DIR makes the folder)");
        }
        if (place->followed_leaf) {
            return about_local_files(ErrorCode::local_io,
                                     in_quotes(dest) +
                                         " is a symbolic link to nothing: ferry does not create files through links");
        }
        return DownloadTarget{TargetKind::absent, dest, {}, std::move(place->folder)};
    }
    struct stat st {};
    if (::fstat(place->object.fd(), &st) != 0) {
        return local_error("cannot stat " + in_quotes(dest), errno);
    }
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        return DownloadTarget{TargetKind::stream, dest, std::move(place->object)};
    }
    if (!S_ISREG(st.st_mode)) {
        return about_local_files(ErrorCode::local_io,
                                 in_quotes(dest) + " is " + kind_of(st.st_mode) + ": nothing is downloaded onto it");
    }
    // Through a link, the file it leads to is replaced (replacing the link
    // would cut it), with its part beside it so that the rename stays in
    // one file system: named by the folder the walk reached.
    std::string path = place->followed_leaf ? local_join(place->folder->path(), place->leaf) : dest;
    if (held_locked(path, place->folder.get())) {
        return locked_target_error(path);
    }
    return DownloadTarget{TargetKind::regular, std::move(path), {}, std::move(place->folder)};
}

} // namespace

Result<DownloadTarget> inspect_download_target(const std::string& dest, const LocalFolder* in)
{
    if (in != nullptr) {
        // A name of a tree: only what stands there itself, nothing followed.
        struct stat st {};
        if (::fstatat(in->fd(), base_name(dest).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) {
                return DownloadTarget{TargetKind::absent, dest, {}};
            }
            return local_error("cannot look at " + in_quotes(dest), errno);
        }
        if (!S_ISREG(st.st_mode)) {
            return about_local_files(ErrorCode::local_io,
                                     in_quotes(dest) + " is " + kind_of(st.st_mode) +
                                         ": nothing is downloaded onto it (a name of the tree is not followed)");
        }
        if (held_locked(dest, in)) {
            return locked_target_error(dest);
        }
        return DownloadTarget{TargetKind::regular, dest, {}};
    }
    return inspect_typed_target(dest);
}


Error foreign_part_error(const std::string& part, unsigned mode)
{
    return about_local_files(
        ErrorCode::local_io,
        in_quotes(part) + ", the name this download's partial file goes by, is " + kind_of(static_cast<mode_t>(mode)) +
            ": ferry neither follows nor replaces it; remove it or move it away, then get the file again");
}

Error unowned_part_error(const std::string& part)
{
    return about_local_files(ErrorCode::local_io,
                             in_quotes(part) +
                                 ", the name this download's partial file goes by, is a file ferry did not make "
                                 "(no mark of a ferry part, and no sidecar that vouches for it): it is left "
                                 "untouched; move it away or rename it, then get the file again");
}

Result<bool> mark_part(const LocalFile& part)
{
    // The value says nothing more than the name does; a byte keeps it
    // readable in getfattr's output.
    if (::fsetxattr(part.fd(), kPartMark, "1", 1, 0) == 0) {
        return true;
    }
    if (errno == ENOTSUP || errno == EOPNOTSUPP) {
        return false;
    }
    return local_error("cannot mark " + in_quotes(part.path()) + " as a partial download", errno);
}

void unmark_part(const LocalFile& part)
{
    if (::fremovexattr(part.fd(), kPartMark) == 0 || (errno != EACCES && errno != EPERM)) {
        return;
    }
    // Published with a mode its owner may not write (a read-only target):
    // removing a user.* attribute asks for write permission (xattr(7)), so
    // the owner's write bit is lent for that one call. Only the owner gains
    // it, and only for as long; best effort, as the mark's removal is.
    struct stat st {};
    if (::fstat(part.fd(), &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & S_IWUSR) != 0) {
        return;
    }
    if (::fchmod(part.fd(), static_cast<mode_t>((st.st_mode & 07777U) | S_IWUSR)) == 0) {
        (void)::fremovexattr(part.fd(), kPartMark);
        // Only the lent bit goes: a chmod the user made meanwhile stays.
        struct stat now {};
        if (::fstat(part.fd(), &now) == 0) {
            (void)::fchmod(part.fd(), static_cast<mode_t>(now.st_mode & 07777U & ~S_IWUSR));
        }
    }
}

bool is_ferry_part(const LocalFile& file, const struct ::stat& st, const DownloadState* state)
{
    // Only the mark's presence counts (its value is never trusted to mean
    // more); ERANGE means a value longer than the one byte ferry sets,
    // which still marks it.
    char value = 0;
    if (::fgetxattr(file.fd(), kPartMark, &value, 1) >= 0 || errno == ERANGE) {
        return true;
    }
    // An empty file: what a kill between the part's creation and its mark
    // leaves (the mark is set before the first byte, but that fsetxattr can
    // wait on the file system's journal while other parts are synced). It
    // holds no byte to lose, so it is taken for ferry's and replaced.
    if (st.st_size == 0) {
        return true;
    }
    if (state == nullptr || state->part.device != static_cast<std::uint64_t>(st.st_dev) ||
        state->part.inode != static_cast<std::uint64_t>(st.st_ino)) {
        return false;
    }
    // Ferry's part was born before its sidecar recorded its ctime; a file
    // that took the freed inode number later was born after.
    struct statx born {};
    if (::statx(file.fd(), "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BTIME, &born) == 0 &&
        (born.stx_mask & STATX_BTIME) != 0) {
        const std::int64_t birth = sys::nanoseconds_since_epoch(timespec{born.stx_btime.tv_sec, born.stx_btime.tv_nsec});
        return birth <= state->part.ctime_ns;
    }
    return true;
}

namespace {

// A part of ferry's found under the part's name, opened and locked: held so
// that its removal happens under the lock (create_part_file), never after
// letting it go, when a download that has just made it could lock it.
struct HeldPart {
    LocalFile file;
    struct stat st {};
    std::string owner; // the server file its state names, empty without one
};

// look_at_part's look, keeping what it found: nothing, or the part held.
Result<std::optional<HeldPart>> look_at_and_hold_part(const std::string& part, const std::string& state_file,
                                                      const LocalFolder* in)
{
    const Where at(in, part);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    struct stat st {};
    if (::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return std::optional<HeldPart>();
        }
        return local_error("cannot look at " + in_quotes(part), errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return foreign_part_error(part, st.st_mode);
    }
    // O_NONBLOCK: should a FIFO take the name since the look, the open
    // does not wait for a writer (and the fstat below refuses it).
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(at.dir(), at.name(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); });
    if (fd < 0) {
        // Lost a race with whoever changed the name since the look: said
        // as what stands there now, not as the open's errno.
        if (errno == ENOENT) {
            return std::optional<HeldPart>();
        }
        if (errno == ELOOP) {
            return foreign_part_error(part, S_IFLNK);
        }
        return local_error("cannot open " + in_quotes(part), errno);
    }
    HeldPart held{LocalFile(part, fd), {}, {}};
    if (::fstat(held.file.fd(), &held.st) != 0) {
        return local_error("cannot stat " + in_quotes(part), errno);
    }
    if (!S_ISREG(held.st.st_mode)) {
        return foreign_part_error(part, held.st.st_mode);
    }
    const auto state = read_download_state(state_file, in);
    if (!is_ferry_part(held.file, held.st, state ? &state.value() : nullptr)) {
        return unowned_part_error(part);
    }
    if (state) {
        held.owner = state->name;
    }
    // A part another download is writing is not replaced from under it
    // (nor its sidecar dropped).
    if (auto locked = lock_part(held.file); !locked) {
        return locked.error();
    }
    return std::optional<HeldPart>(std::move(held));
}

} // namespace

Result<FoundPart> look_at_part(const std::string& part, const std::string& state_file, const LocalFolder* in)
{
    auto held = look_at_and_hold_part(part, state_file, in);
    if (!held) {
        return held.error();
    }
    if (!held->has_value()) {
        return FoundPart{};
    }
    return FoundPart{PartFound::ferrys, std::move(held->value().owner)};
}

Result<CreatedPart> create_part_file(const std::string& part, const std::string& state_file, const LocalFolder* in,
                                     unsigned mode)
{
    const Where at(in, part);
    if (auto reached = at.reached(); !reached) {
        return reached.error();
    }
    // O_EXCL: a new file, never one found there (nor a link's target). The
    // name is free in the common case; what holds it is looked at only
    // then, and replaced only when it is a part of ferry's.
    for (int attempt = 0;; ++attempt) {
        const int fd = sys::retry_on_eintr([&] {
            return ::openat(at.dir(), at.name(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            static_cast<mode_t>(mode));
        });
        if (fd >= 0) {
            LocalFile file(part, fd);
            // Locked first, marked after: one download writes a part. Until
            // the lock, another download that meets this empty part takes it
            // for a leftover of ferry's, and may lock and remove it: then
            // the name no longer holds this file, and it is that download's
            // turn (busy), never a download into a file with no name.
            if (auto locked = lock_part(file); !locked) {
                return locked.error(); // locked by the other download at once: left to it
            }
            struct stat made {};
            struct stat named {};
            if (::fstat(file.fd(), &made) != 0 || ::fstatat(at.dir(), at.name(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
                !same_file(made, named)) {
                return about_local_files(
                    ErrorCode::busy, in_quotes(part) + " is being written by another download (another ferry, or "
                                                       "another file of this command, saved under the same name), "
                                                       "which took the name as this one made it: nothing was written "
                                                       "to it; get the file again once that download is over");
            }
            // The umask may have taken the owner's bits from `mode`: given
            // back before the mark, which needs write permission.
            if ((made.st_mode & 07777U) != mode && ::fchmod(file.fd(), static_cast<mode_t>(mode)) != 0) {
                const int failure = errno;
                (void)unlink_if_still(at.dir(), at.name(), made, part);
                return local_error("cannot set the mode of " + in_quotes(part), failure);
            }
            auto marked = mark_part(file);
            if (!marked) {
                (void)unlink_if_still(at.dir(), at.name(), made, part);
                return marked.error();
            }
            return CreatedPart{std::move(file), marked.value(), attempt > 0};
        }
        const int error = errno;
        if (error == EEXIST && attempt > 0) {
            // Something took the name again between the removal of the
            // leftover part and this open: another download of the same
            // name, most likely, racing this one. That race is not run
            // after; said as the other races with a download are (busy).
            return about_local_files(ErrorCode::busy, in_quotes(part) +
                                                          " was taken again as this download made its part there (by "
                                                          "another download saved under the same name, most "
                                                          "likely): nothing was written to it; get the file again "
                                                          "once that download is over");
        }
        if (error != EEXIST) {
            return local_error("cannot create " + in_quotes(part), error);
        }
        auto found = look_at_and_hold_part(part, state_file, in);
        if (!found) {
            return found.error();
        }
        if (found->has_value()) {
            // Removed while this download holds its lock, and only while the
            // name still holds the file looked at.
            auto removed = unlink_if_still(at.dir(), at.name(), found.value()->st, part, RefusedRename::is_an_error);
            if (!removed) {
                return removed.error();
            }
        }
    }
}

Status lock_part(const LocalFile& part)
{
    if (sys::retry_on_eintr([&] { return ::flock(part.fd(), LOCK_EX | LOCK_NB); }) == 0) {
        return success();
    }
    if (errno == EWOULDBLOCK) {
        return about_local_files(ErrorCode::busy,
                                 in_quotes(part.path()) +
                                     " is being written by another download (another ferry, or another "
                                     "file of this command, saved under the same name): nothing was "
                                     "written to it; get the file again once that download is over");
    }
    return local_error("cannot lock " + in_quotes(part.path()), errno);
}

Result<LocalFile> open_stream_target(const DownloadTarget& target)
{
    // Reopening the inspected descriptor through /proc opens that very
    // FIFO or device, whatever has happened to the name since.
    const std::string via = "/proc/self/fd/" + std::to_string(target.handle.fd());
    // Opening a FIFO waits for a reader: Ctrl-C ends the wait.
    int fd = sys::retry_on_eintr([&] { return ::open(via.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC); }, interrupted);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        // No /proc: open by name, then make sure it is the same file.
        fd = sys::retry_on_eintr([&] { return ::open(target.path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC); },
                                 interrupted);
        if (fd >= 0) {
            struct stat inspected {};
            struct stat opened {};
            if (::fstat(target.handle.fd(), &inspected) != 0 || ::fstat(fd, &opened) != 0 ||
                inspected.st_dev != opened.st_dev || inspected.st_ino != opened.st_ino) {
                ::close(fd);
                return about_local_files(ErrorCode::local_io,
                                         in_quotes(target.path) + " changed while it was being opened");
            }
        }
    }
    if (fd < 0) {
        if (errno == EINTR) {
            return about_local_files(ErrorCode::aborted,
                                     "interrupted while waiting for a reader of " + in_quotes(target.path));
        }
        return local_error("cannot open " + in_quotes(target.path), errno);
    }
    return LocalFile(target.path, fd);
}

namespace {

// Puts a part that took its target's attributes (take_replaced_attributes)
// back to what it had while it downloaded (`before`: its fstat then):
// private, mode at most 0600, no access ACL (one from the target, or from
// the folder's default, would say more than 0600), its owner again. The
// mode narrows first, so that no step leaves it wider than it was. Called
// on every failure after the attributes were taken, so that a part left on
// disk is never readable or writable by more than its owner. Best effort:
// what cannot be undone here is no reason to hide the failure that led here.
void make_private_again(const LocalFile& part, const struct stat& before)
{
    const auto mode = static_cast<mode_t>(before.st_mode & 0600U);
    (void)::fchmod(part.fd(), mode);
    const auto none = std::make_unique<sys::AccessAcl>(); // size 0: none; 64 KiB, not on the stack
    (void)sys::set_access_acl(part.fd(), *none);
    (void)::fchmod(part.fd(), mode);
    struct stat now {};
    if (::fstat(part.fd(), &now) == 0 && (now.st_uid != before.st_uid || now.st_gid != before.st_gid)) {
        (void)::fchown(part.fd(), before.st_uid, before.st_gid);
    }
}

// --no-clobber's publish: the verified part takes `dest`'s name only if
// nothing stands there when the rename itself runs (sys::rename_no_replace).
// Whatever appeared since the look before the download (a file, a folder,
// a link, a FIFO...) is left alone, and the part and its sidecar go, as if
// it had been there at the start: the `exists` error returned here is then
// answered as that look answers what stands there (get -n's skip, or its
// refusal of a link or FIFO in a tree, transfers.cpp).
Status publish_without_replacing(const LocalFile& part, const std::string& dest, const LocalFolder* in)
{
    const Where at(in, part.path());
    if (auto reached = at.reached(); !reached) {
        return reached;
    }
    if (sys::rename_no_replace(at.dir(), at.name(), at.dir(), base_name(dest).c_str()) == 0) {
        return success();
    }
    const int saved = errno;
    if (saved != EEXIST) {
        return local_error("cannot rename " + in_quotes(part.path()) + " to " + in_quotes(dest) +
                               " without replacing what may appear there",
                           saved);
    }
    // Still this download's names: the part is open and locked, and
    // publish_download just checked that its name holds this very file.
    remove_own_part(part, in);
    (void)remove_download_state(state_path(dest), in);
    return about_local_files(ErrorCode::exists, in_quotes(dest) + " appeared during the download: it was left alone "
                                                                  "(--no-clobber), and the downloaded copy removed");
}

} // namespace

Status publish_download(const LocalFile& part, const std::string& dest, const LocalFolder* in, bool replace,
                        std::optional<std::uint32_t> source_mode, BatchFolderLooks* looks)
{
    // The target was inspected before the transfer; look again just before
    // the rename, the one step that works by name.
    struct stat st {};
    const Where at(in, dest);
    if (auto reached = at.reached(); !reached) {
        Error error = reached.error();
        error.message += "; the verified file is kept as " + in_quotes(part.path());
        return error;
    }
    // Under --no-clobber whatever stands there (a folder, a link, a FIFO as
    // well as a file) is refused by the rename itself, and answered as the
    // look before the download answers it (the caller's part).
    bool target_absent = false;
    bool target_seen = false; // a regular file, in `st`
    if (replace) {
        if (::fstatat(at.dir(), at.name(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
            target_seen = true;
            if (!S_ISREG(st.st_mode)) {
                return about_local_files(ErrorCode::local_io,
                                         in_quotes(dest) + " became " + kind_of(st.st_mode) +
                                             " during the download; the verified file is kept as " +
                                             in_quotes(part.path()));
            }
        } else {
            target_absent = errno == ENOENT;
        }
    }
    // Nor a file another download began writing meanwhile (its part, when
    // this download's target is named like one). Not looked for where the
    // look above found no file: one made since is as one made after this.
    if (!target_absent && held_locked(dest, in)) {
        Error error = locked_target_error(dest);
        error.message += "; the verified file is kept as " + in_quotes(part.path());
        return error;
    }
    // The rename works by the part's name: it must still be the file this
    // download wrote and verified, not one put there since (by another
    // download or anyone else), or bytes never verified would be published.
    struct stat written {};
    struct stat named {};
    if (::fstat(part.fd(), &written) != 0) {
        return local_error("cannot stat " + in_quotes(part.path()), errno);
    }
    const Where part_at(in, part.path());
    if (auto reached = part_at.reached(); !reached) {
        Error error = reached.error();
        error.message += "; nothing was published to " + in_quotes(dest);
        return error;
    }
    if (::fstatat(part_at.dir(), part_at.name(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
        named.st_dev != written.st_dev || named.st_ino != written.st_ino) {
        return about_local_files(ErrorCode::local_io,
                                 in_quotes(part.path()) +
                                     " no longer holds the file this download wrote and verified (it was "
                                     "replaced or removed meanwhile): nothing was published to " +
                                     in_quotes(dest) + "; get the file again");
    }
    // Last, right before the rename: the replaced file's mode, owner and
    // ACL, as the look above found them (the part stayed private until
    // here; a look that failed otherwise than ENOENT, or none under
    // --no-clobber, is taken again). Any failure from here on leaves the
    // part on disk: private again first.
    const PublishedMode published = target_seen     ? published_mode_of(&st, source_mode)
                                    : target_absent ? published_mode_of(nullptr, source_mode)
                                                    : published_mode(dest, in, source_mode);
    Status done = take_replaced_attributes(part, dest, in, source_mode, published, looks);
    if (done) {
        done = replace ? rename_file(part.path(), dest, in) : publish_without_replacing(part, dest, in);
    }
    if (!done) {
        make_private_again(part, written);
    }
    return done;
}

bool is_directory(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string base_name(std::string_view path)
{
    while (path.size() > 1 && path.back() == '/') {
        path.remove_suffix(1);
    }
    const auto slash = path.rfind('/');
    if (slash != std::string_view::npos && path.size() > 1) {
        path.remove_prefix(slash + 1);
    }
    return std::string(path);
}

Status remove_file(const std::string& path, const LocalFolder* in)
{
    const Where at(in, path);
    if (auto reached = at.reached(); !reached) {
        return reached;
    }
    if (::unlinkat(at.dir(), at.name(), 0) != 0 && errno != ENOENT) {
        return local_error("cannot remove " + in_quotes(path), errno);
    }
    return success();
}

Status rename_file(const std::string& from, const std::string& to, const LocalFolder* in)
{
    // Both names in one folder (a part and its file, a sidecar's temporary
    // and the sidecar): the folder `from` is reached in.
    const Where at(in, from);
    if (auto reached = at.reached(); !reached) {
        return reached;
    }
    if (::renameat(at.dir(), at.name(), at.dir(), base_name(to).c_str()) != 0) {
        return local_error("cannot rename " + in_quotes(from) + " to " + in_quotes(to), errno);
    }
    return success();
}

Status sync_parent_folder(const std::string& path, const LocalFolder* in)
{
    if (in != nullptr) {
        if (::fsync(in->fd()) != 0) {
            return local_error("cannot sync " + in_quotes(in->path()), errno);
        }
        return success();
    }
    const auto slash = path.rfind('/');
    const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    auto dir = LocalFile::open(folder, O_RDONLY | O_DIRECTORY);
    if (!dir) {
        return dir.error();
    }
    return dir->sync();
}

} // namespace ferry::client
