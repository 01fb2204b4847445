// The served folder as a tree: paths in stat, get, list (recursive too),
// mkdir, delete, rename, digest and uploads into folders. Every case runs
// with openat2 and with the forced component walk.
#include "library.hpp"
#include "names.hpp"
#include "partial_upload.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

constexpr ResolveMode kModes[] = {ResolveMode::automatic, ResolveMode::walk};

std::unique_ptr<Library> open_library(const TempRoot& root, ResolveMode mode)
{
    auto library = Library::open(root.path(), mode);
    REQUIRE(library);
    return std::move(library.value());
}

void make(const TempRoot& root, const std::string& path)
{
    REQUIRE(::mkdir((root.path() + "/" + path).c_str(), 0755) == 0);
}

bool is_folder(const std::string& path)
{
    struct ::stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> names_of(const ListReply& reply)
{
    std::vector<std::string> names;
    for (const auto& file : reply.files) {
        names.push_back(file.name + (file.type == EntryType::folder ? "/" : ""));
    }
    return names;
}

// sha256("hello")
constexpr const char* kHelloSha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

} // namespace

TEST_CASE("stat and get take paths; folders, files and symlinks on the way are told apart")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "a");
        make(root, "a/b");
        root.write("a/b/c.txt", "hello");
        root.write("top", "x");
        const TempRoot outside;
        std::ofstream(outside.path() + "/secret") << "secret";
        ::symlink(outside.path().c_str(), (root.path() + "/a/out").c_str());
        auto library = open_library(root, mode);

        auto file = library->stat("a/b/c.txt");
        REQUIRE(file);
        CHECK(file->name == "a/b/c.txt");
        CHECK(file->size == 5);
        CHECK(file->type != EntryType::folder);
        CHECK(library->stat("a/b").error().code == ErrorCode::not_regular_file);
        auto folder = library->stat_entry_or_folder("a/b");
        REQUIRE(folder);
        CHECK(folder->type == EntryType::folder);
        CHECK(folder->size == 0);

        auto opened = library->open_for_read("a/b/c.txt");
        REQUIRE(opened);
        CHECK(opened.value()->info().name == "a/b/c.txt");
        CHECK_FALSE(library->check_unchanged(*opened.value()).has_value());
        REQUIRE(::rename((root.path() + "/a/b").c_str(), (root.path() + "/a/moved").c_str()) == 0);
        auto changed = library->check_unchanged(*opened.value());
        REQUIRE(changed);
        CHECK(changed->code == ErrorCode::file_changed);

        CHECK(library->stat("a/out/secret").error().code == ErrorCode::not_a_folder);
        CHECK(library->open_for_read("a/out/secret").error().code == ErrorCode::not_a_folder);
        CHECK(library->stat("top/x").error().code == ErrorCode::not_a_folder);
        CHECK(library->stat("a/missing/x").error().code == ErrorCode::not_found);
        CHECK(library->stat("a/moved/none").error().code == ErrorCode::not_found);
        for (const char* bad : {"a/../top", "../top", "a//b", "a/", "/top", "a\\b", ".", "a/./b", ""}) {
            CAPTURE(bad);
            CHECK(library->stat(bad).error().code == ErrorCode::invalid_name);
            CHECK(library->open_for_read(bad).error().code == ErrorCode::invalid_name);
            if (*bad != '\0') {
                CHECK(library->stat_entry_or_folder(bad).error().code == ErrorCode::invalid_name);
            }
        }
        // The root is the one path stat_entry_or_folder takes empty.
        const auto root_info = library->stat_entry_or_folder("");
        REQUIRE(root_info);
        CHECK(root_info->name.empty());
        CHECK(root_info->type == EntryType::folder);
    }
}

TEST_CASE("a listing of a folder shows its files and folders; a recursive one each folder before its contents")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "docs");
        make(root, "docs/sub");
        make(root, "docs/sub/deeper");
        root.write("docs/a.txt", "a");
        root.write("docs/sub/b.txt", "bb");
        root.write("docs/sub/deeper/c.txt", "ccc");
        root.write("docs/.hidden", "h");
        root.write("docs/sub/bad\xff", "x");
        root.write("top.txt", "t");
        const TempRoot outside;
        std::ofstream(outside.path() + "/secret") << "secret";
        ::symlink(outside.path().c_str(), (root.path() + "/docs/sub/out").c_str());
        ::mkfifo((root.path() + "/docs/pipe").c_str(), 0644);
        auto library = open_library(root, mode);

        // Version 1's listing: the root's regular files only.
        auto v1 = library->list();
        REQUIRE(v1);
        CHECK(names_of(*v1) == std::vector<std::string>{"top.txt"});

        auto flat = library->list("docs", ListingOptions{true, false});
        REQUIRE(flat);
        CHECK(names_of(*flat) == std::vector<std::string>{"a.txt", "sub/"});

        auto reader = library->open_listing("docs", ListingOptions{true, true});
        REQUIRE(reader);
        ListReply all;
        // Tiny pages: the walk resumes across pages without losing its place.
        for (int pages = 0; pages < 100; ++pages) {
            auto ended = reader.value()->read_page(1, all);
            REQUIRE(ended);
            if (ended.value()) {
                break;
            }
        }
        std::map<std::string, std::size_t> position;
        for (std::size_t i = 0; i < all.files.size(); ++i) {
            position[all.files[i].name] = i;
        }
        CHECK(position.size() == 5);
        for (const char* name : {"a.txt", "sub", "sub/b.txt", "sub/deeper", "sub/deeper/c.txt"}) {
            CAPTURE(name);
            CHECK(position.count(name) == 1);
        }
        CHECK(position["sub"] < position["sub/b.txt"]);
        CHECK(position["sub/deeper"] < position["sub/deeper/c.txt"]);
        CHECK(all.skipped_invalid_names == 1);
        CHECK(all.files[position["sub/deeper/c.txt"]].size == 3);

        CHECK(library->list("docs/a.txt", ListingOptions{true, false}).error().code == ErrorCode::not_a_folder);
        CHECK(library->list("docs/sub/out", ListingOptions{true, true}).error().code == ErrorCode::not_a_folder);
        CHECK(library->list("nothing", ListingOptions{true, true}).error().code == ErrorCode::not_found);
        CHECK(library->list("docs/../..", ListingOptions{true, true}).error().code == ErrorCode::invalid_name);
    }
}

TEST_CASE("a recursive listing names only what can be asked for: folders past the depth bound are skipped and counted")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        std::string path;
        for (std::size_t depth = 1; depth <= kMaxPathDepth + 3; ++depth) {
            path += (path.empty() ? "" : "/") + std::string("d");
            make(root, path);
        }
        auto library = open_library(root, mode);
        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        CHECK(listed->files.size() == kMaxPathDepth);
        CHECK(listed->skipped_too_deep == 1); // counted apart: the name itself is fine
        CHECK(listed->skipped_invalid_names == 0);
        for (const auto& file : listed->files) {
            CHECK_FALSE(check_path(file.name).has_value());
        }
    }
}

TEST_CASE("a mount point inside the tree is neither listed nor entered nor deleted")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "mnt");
        root.write("file", "x");
        const std::string target = root.path() + "/mnt";
        if (::mount("ferry-test", target.c_str(), "tmpfs", 0, "size=1m") != 0) {
            MESSAGE("cannot mount a tmpfs here (" << std::strerror(errno) << "); skipped");
            return;
        }
        std::ofstream(target + "/inside") << "mounted";
        auto library = open_library(root, mode);
        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        CHECK(names_of(*listed) == std::vector<std::string>{"file"});
        CHECK(library->stat_entry_or_folder("mnt").error().code == ErrorCode::forbidden);
        CHECK(library->stat("mnt/inside").error().code == ErrorCode::forbidden);
        CHECK(library->remove("mnt", true).error().code == ErrorCode::forbidden);
        CHECK(library->make_folder("mnt/new", true).error().code == ErrorCode::forbidden);
        CHECK(root.read("mnt/inside") == "mounted");
        ::umount2(target.c_str(), MNT_DETACH);
    }
}

TEST_CASE("a mount point is never renamed, and a folder holding one takes it along, still out of reach")
{
    // rename(2) moves a folder with whatever is mounted below it (attack
    // round 67, R5); PROTOCOL 4.12 says so. The mount itself is refused.
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "x");
        make(root, "x/y");
        make(root, "x/y/mnt");
        const std::string target = root.path() + "/x/y/mnt";
        if (::mount("ferry-test", target.c_str(), "tmpfs", 0, "size=1m") != 0) {
            MESSAGE("cannot mount a tmpfs here (" << std::strerror(errno) << "); skipped");
            return;
        }
        std::ofstream(target + "/inside") << "mounted";
        auto library = open_library(root, mode);
        const auto refused = library->rename("x/y/mnt", "x/moved", false);
        REQUIRE(refused.has_value());
        CHECK(refused->code == ErrorCode::forbidden);
        REQUIRE_FALSE(library->rename("x", "x2", false).has_value());
        CHECK(library->stat("x2/y/mnt/inside").error().code == ErrorCode::forbidden);
        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        CHECK(names_of(*listed) == std::vector<std::string>{"x2/", "x2/y/"});
        CHECK(root.read("x2/y/mnt/inside") == "mounted");
        ::umount2((root.path() + "/x2/y/mnt").c_str(), MNT_DETACH);
    }
}

TEST_CASE("a bind mount of the tree's own file system is a mount point too: neither listed nor entered nor deleted")
{
    // It has the root's device number: only its mount id tells it apart
    // (attack round 66: a recursive list showed, and a recursive delete
    // removed, what the mounted outside folder held).
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        const TempRoot outside;
        make(root, "d");
        make(root, "d/bo");
        root.write("d/file", "x");
        std::ofstream(outside.path() + "/secret") << "outside";
        ::mkdir((outside.path() + "/sub").c_str(), 0755);
        const std::string target = root.path() + "/d/bo";
        if (::mount(outside.path().c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            MESSAGE("cannot bind-mount here (" << std::strerror(errno) << "); skipped");
            return;
        }
        auto library = open_library(root, mode);
        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        auto names = names_of(*listed);
        std::sort(names.begin(), names.end());
        CHECK(names == std::vector<std::string>{"d/", "d/file"});
        CHECK(library->list("d/bo", ListingOptions{true, false}).error().code == ErrorCode::forbidden);
        CHECK(library->stat_entry_or_folder("d/bo").error().code == ErrorCode::forbidden);
        CHECK(library->stat("d/bo/secret").error().code == ErrorCode::forbidden);
        CHECK(library->digest("d/bo/secret", HashKind::sha256).error().code == ErrorCode::forbidden);
        CHECK(library->make_folder("d/bo/new", true).error().code == ErrorCode::forbidden);
        CHECK(library->make_folder("d/bo/sub", true).error().code == ErrorCode::forbidden);
        CHECK(library->set_mtime("d/bo/secret", 1000).error().code == ErrorCode::forbidden);
        CHECK(library->set_mtime("d/bo", 1000).error().code == ErrorCode::forbidden);
        CHECK(library->remove("d/bo/secret", false).error().code == ErrorCode::forbidden);
        CHECK(library->remove("d/bo", true).error().code == ErrorCode::forbidden);
        CHECK(library->rename("d/bo", "moved", false).has_value());
        // A recursive delete of the folder holding it leaves it, and what it holds.
        auto removed = library->remove("d", true);
        REQUIRE_FALSE(removed);
        CHECK(removed.error().code == ErrorCode::not_empty);
        CHECK(removed.error().message.find("another file system") != std::string::npos);
        std::ifstream kept(outside.path() + "/secret");
        std::string content;
        std::getline(kept, content);
        CHECK(content == "outside");
        struct ::stat sub {};
        CHECK(::stat((outside.path() + "/sub").c_str(), &sub) == 0);
        ::umount2(target.c_str(), MNT_DETACH);
    }
}

TEST_CASE("a file bind-mounted over a name in the tree is neither listed nor read nor retimed nor replaced")
{
    // A mount point too (attack round 67): an outside file of the same file
    // system, its device the root's, was read, digested and retimed.
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        const TempRoot outside;
        make(root, "d");
        root.write("d/bf", "under");
        root.write("d/file", "x");
        std::ofstream(outside.path() + "/secret") << "outside";
        const std::string target = root.path() + "/d/bf";
        if (::mount((outside.path() + "/secret").c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            MESSAGE("cannot bind-mount here (" << std::strerror(errno) << "); skipped");
            return;
        }
        struct ::stat before {};
        REQUIRE(::stat((outside.path() + "/secret").c_str(), &before) == 0);
        auto library = open_library(root, mode);
        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        auto names = names_of(*listed);
        std::sort(names.begin(), names.end());
        CHECK(names == std::vector<std::string>{"d/", "d/file"});
        CHECK(library->stat("d/bf").error().code == ErrorCode::forbidden);
        CHECK(library->digest("d/bf", HashKind::sha256).error().code == ErrorCode::forbidden);
        CHECK(library->open_for_read("d/bf").error().code == ErrorCode::forbidden);
        CHECK(library->set_mtime("d/bf", 1000).error().code == ErrorCode::forbidden);
        const ExpectedEntry expect{EntryType::file, static_cast<std::uint64_t>(before.st_size),
                                   static_cast<std::int64_t>(before.st_mtime)};
        CHECK(library->set_mtime("d/bf", 1000, expect).error().code == ErrorCode::forbidden);
        CHECK(library->check_replaceable("d/bf", false).value().code == ErrorCode::forbidden);
        // A recursive delete leaves it, and says so.
        auto removed = library->remove("d", true);
        REQUIRE_FALSE(removed);
        CHECK(removed.error().code == ErrorCode::not_empty);
        CHECK(removed.error().message.find("another file system") != std::string::npos);
        struct ::stat after {};
        REQUIRE(::stat((outside.path() + "/secret").c_str(), &after) == 0);
        CHECK(after.st_mtime == before.st_mtime);
        ::umount2(target.c_str(), MNT_DETACH);
        CHECK(root.read("d/bf") == "under");
    }
}

TEST_CASE("a file bind-mounted inside the tree is not deleted, and the refusal is forbidden, not io_error")
{
    // unlink(2) and rename(2) of a mount point fail with EBUSY, which stays
    // so until it is unmounted: no retry helps (attack round 20).
    TempRoot root;
    root.write("mounted.txt", "under");
    root.write("over.txt", "over");
    const std::string target = root.path() + "/mounted.txt";
    if (::mount((root.path() + "/over.txt").c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        MESSAGE("cannot bind-mount here (" << std::strerror(errno) << "); skipped");
        return;
    }
    auto library = open_library(root, ResolveMode::walk);
    struct ::stat st {};
    REQUIRE(::lstat(target.c_str(), &st) == 0);
    const ExpectedEntry expect{EntryType::file, static_cast<std::uint64_t>(st.st_size),
                               static_cast<std::int64_t>(st.st_mtime)};
    CHECK(library->remove("mounted.txt", false).error().code == ErrorCode::forbidden);
    CHECK(library->remove("mounted.txt", false, expect).error().code == ErrorCode::forbidden);
    auto renamed = library->rename("mounted.txt", "moved.txt", false);
    REQUIRE(renamed);
    CHECK(renamed->code == ErrorCode::forbidden);
    ::umount2(target.c_str(), MNT_DETACH);
    CHECK(root.read("mounted.txt") == "under");
    CHECK(root.hidden_entries() == 0);
}

TEST_CASE("make_folder creates one folder, or with parents every missing one; existing names are refused")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        root.write("file", "x");
        auto library = open_library(root, mode);

        auto made = library->make_folder("a", false);
        REQUIRE(made);
        CHECK(made.value());
        CHECK(is_folder(root.path() + "/a"));
        CHECK(library->make_folder("a", false).error().code == ErrorCode::exists);
        CHECK(library->make_folder("x/y", false).error().code == ErrorCode::not_found);
        CHECK_FALSE(root.exists("x"));

        made = library->make_folder("a/b/c/d", true);
        REQUIRE(made);
        CHECK(made.value());
        CHECK(is_folder(root.path() + "/a/b/c/d"));
        made = library->make_folder("a/b", true);
        REQUIRE(made);
        CHECK_FALSE(made.value());

        CHECK(library->make_folder("file", false).error().code == ErrorCode::exists);
        CHECK(library->make_folder("file", true).error().code == ErrorCode::exists);
        CHECK(library->make_folder("file/sub", true).error().code == ErrorCode::not_a_folder);
        CHECK(library->make_folder("file/sub", false).error().code == ErrorCode::not_a_folder);

        const TempRoot outside;
        ::symlink(outside.path().c_str(), (root.path() + "/link").c_str());
        CHECK(library->make_folder("link/new", true).error().code == ErrorCode::not_a_folder);
        CHECK(library->make_folder("link/new", false).error().code == ErrorCode::not_a_folder);
        CHECK(library->make_folder("link", true).error().code == ErrorCode::exists);
        CHECK_FALSE(std::filesystem::exists(outside.path() + "/new"));

        CHECK(library->make_folder("", true).error().code == ErrorCode::invalid_name);
        CHECK(library->make_folder("a/../b", true).error().code == ErrorCode::invalid_name);
    }
}

// The permission bits of root/path, with the set-ID and sticky bits.
unsigned folder_mode(const TempRoot& root, const std::string& path)
{
    struct ::stat st {};
    REQUIRE(::lstat((root.path() + "/" + path).c_str(), &st) == 0);
    return static_cast<unsigned>(st.st_mode & 07777);
}

TEST_CASE("folder_modes give the folders made their source's modes, aligned to the path's end, under the umask")
{
    const mode_t before = ::umask(022);
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        auto library = open_library(root, mode);

        // mkdir -p of a/b/c where only b and c have a source: a gets 0777
        // less the umask, as mkdir -p gives the folders on the way.
        REQUIRE(library->make_folder("a/b/c", true, {0700, 0750}));
        CHECK(folder_mode(root, "a") == 0755U);
        CHECK(folder_mode(root, "a/b") == 0700U);
        CHECK(folder_mode(root, "a/b/c") == 0750U);
        // The owner's rwx always, no set-ID or sticky bit, and the umask
        // still narrows what was asked for.
        REQUIRE(library->make_folder("a/locked", false, {07577}));
        CHECK(folder_mode(root, "a/locked") == 0755U);
        // A folder that exists keeps its mode.
        REQUIRE(library->make_folder("a/b", true, {0777, 0777}));
        CHECK(folder_mode(root, "a/b") == 0700U);
        // More modes than folders: bad_request, nothing made.
        CHECK(library->make_folder("n/m", true, {0700, 0700, 0700}).error().code == ErrorCode::bad_request);
        CHECK_FALSE(root.exists("n"));

        // A put with parents: its file's folder is the last one.
        {
            auto upload = PartialUpload::begin(*library, "p/q/f", 5, false, HashKind::sha256, true, std::nullopt,
                                               kAnonymousOwner, {0710, 0700});
            REQUIRE(upload);
        }
        CHECK(folder_mode(root, "p") == 0710U);
        CHECK(folder_mode(root, "p/q") == 0700U);
        auto refused = PartialUpload::begin(*library, "r/f", 5, false, HashKind::sha256, true, std::nullopt,
                                            kAnonymousOwner, {0700, 0700});
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ErrorCode::bad_request);
        CHECK(refused.error().message == "field \"folder_modes\" has 2 entries, but the path has 1 folder");
        CHECK_FALSE(root.exists("r"));
        // Round 54: one entry is "1 entry", not "1 entries".
        auto at_root = PartialUpload::begin(*library, "f", 5, false, HashKind::sha256, true, std::nullopt,
                                            kAnonymousOwner, {0700});
        REQUIRE_FALSE(at_root);
        CHECK(at_root.error().message == "field \"folder_modes\" has 1 entry, but the path has 0 folders");
    }
    ::umask(before);
}

TEST_CASE("remove takes a file, an empty folder, or with recursive a tree; it never follows a symlink out")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "empty");
        make(root, "full");
        make(root, "full/sub");
        root.write("full/a", "a");
        root.write("full/sub/b", "b");
        root.write("file", "x");
        const TempRoot outside;
        std::ofstream(outside.path() + "/secret") << "secret";
        ::symlink(outside.path().c_str(), (root.path() + "/link").c_str());
        auto library = open_library(root, mode);

        auto removed = library->remove("file", false);
        REQUIRE(removed);
        CHECK(removed->type == EntryType::file);
        CHECK(removed->files == 1);
        CHECK_FALSE(root.exists("file"));

        removed = library->remove("empty", false);
        REQUIRE(removed);
        CHECK(removed->type == EntryType::folder);
        CHECK(removed->folders == 1);
        CHECK_FALSE(root.exists("empty"));

        CHECK(library->remove("full", false).error().code == ErrorCode::not_empty);
        removed = library->remove("full", true);
        REQUIRE(removed);
        CHECK(removed->files == 2);
        CHECK(removed->folders == 2);
        CHECK_FALSE(root.exists("full"));

        CHECK(library->remove("link", true).error().code == ErrorCode::not_regular_file);
        CHECK(library->remove("link/secret", false).error().code == ErrorCode::not_a_folder);
        CHECK(library->remove("nothing", false).error().code == ErrorCode::not_found);
        CHECK(library->remove("", true).error().code == ErrorCode::invalid_name);
        CHECK(library->remove("a/..", true).error().code == ErrorCode::invalid_name);
        CHECK(std::filesystem::exists(outside.path() + "/secret"));
    }
}

TEST_CASE("a recursive remove leaves what a listing would not show, and the folders holding it: not_empty")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "t");
        make(root, "t/keep");
        make(root, "t/gone");
        root.write("t/keep/.hidden", "h");
        root.write("t/keep/x", "x");
        root.write("t/gone/y", "y");
        root.write("t/z", "z");
        const TempRoot outside;
        std::ofstream(outside.path() + "/secret") << "secret";
        ::symlink(outside.path().c_str(), (root.path() + "/t/gone2").c_str());
        auto library = open_library(root, mode);

        auto removed = library->remove("t", true);
        REQUIRE_FALSE(removed);
        CHECK(removed.error().code == ErrorCode::not_empty);
        CHECK(removed.error().message.find("t/") != std::string::npos);
        CHECK(root.exists("t/keep/.hidden"));
        CHECK_FALSE(root.exists("t/keep/x"));
        CHECK_FALSE(root.exists("t/gone"));
        CHECK_FALSE(root.exists("t/z"));
        CHECK(root.exists("t/gone2"));
        CHECK(std::filesystem::exists(outside.path() + "/secret"));
    }
}

TEST_CASE("a message naming what was read from the disk escapes its controls and bytes that are not UTF-8")
{
    TempRoot root;
    make(root, "t");
    root.write("t/evil\x1b]0;x\x07\xc2\x9b\xe2\x80\xae\xff", "x");
    auto library = open_library(root, ResolveMode::automatic);
    auto removed = library->remove("t", true);
    REQUIRE_FALSE(removed);
    CHECK(removed.error().code == ErrorCode::not_empty);
    const std::string& message = removed.error().message;
    CAPTURE(message);
    CHECK(message.find("evil\\u{001B}]0;x\\u{0007}\\u{009B}\\u{202E}\\xFF") != std::string::npos);
    CHECK(std::none_of(message.begin(), message.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }));
}

TEST_CASE("a recursive remove leaves what no path can name, file or folder, as the listing skips it")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        // A file at component kMaxPathDepth + 1, beside a listable one.
        std::string deep = "deep";
        make(root, deep);
        for (std::size_t depth = 2; depth < kMaxPathDepth; ++depth) {
            deep += "/d";
            make(root, deep);
        }
        root.write(deep + "/named", "64 components");
        deep += "/d";
        make(root, deep);
        root.write(deep + "/unnamed", "65 components");
        // Files and a folder whose paths pass kMaxPathBytes, in folders that
        // can be named: made and checked relative to the last folder, as
        // their absolute paths pass PATH_MAX.
        make(root, "wide");
        int wide_fd = ::open((root.path() + "/wide").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(wide_fd >= 0);
        const std::string long_name(250, 'n');
        for (std::size_t bytes = 4; bytes + 1 + long_name.size() <= kMaxPathBytes; bytes += 1 + long_name.size()) {
            REQUIRE(::mkdirat(wide_fd, long_name.c_str(), 0755) == 0);
            const int inner = ::openat(wide_fd, long_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            REQUIRE(inner >= 0);
            ::close(wide_fd);
            wide_fd = inner;
        }
        const auto write_at = [&](const std::string& name) {
            const int fd = ::openat(wide_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            REQUIRE(fd >= 0);
            ::close(fd);
        };
        const auto exists_at = [&](const std::string& name) {
            struct ::stat st {};
            return ::fstatat(wide_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        };
        write_at(long_name);
        REQUIRE(::mkdirat(wide_fd, (long_name + "x").c_str(), 0755) == 0);
        write_at("short");
        auto library = open_library(root, mode);

        auto listed = library->list("", ListingOptions{true, true});
        REQUIRE(listed);
        CHECK(listed->skipped_too_deep == 3);

        for (const std::string top : {"deep", "wide"}) {
            auto removed = library->remove(top, true);
            REQUIRE_FALSE(removed);
            CHECK(removed.error().code == ErrorCode::not_empty);
            CAPTURE(removed.error().message);
        }
        CHECK(root.exists(deep + "/unnamed"));
        CHECK_FALSE(root.exists(deep.substr(0, deep.size() - 2) + "/named"));
        CHECK(exists_at(long_name));
        CHECK(exists_at(long_name + "x"));
        CHECK_FALSE(exists_at("short"));
        ::close(wide_fd);
    }
}

TEST_CASE("rename moves atomically, replaces only when asked, and never moves a folder into itself")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "a");
        make(root, "a/b");
        make(root, "dest");
        make(root, "full");
        root.write("full/x", "x");
        root.write("f1", "one");
        root.write("f2", "two");
        root.write("f3", "three");
        const TempRoot outside;
        ::symlink(outside.path().c_str(), (root.path() + "/link").c_str());
        auto library = open_library(root, mode);

        REQUIRE_FALSE(library->rename("f1", "dest/g1", false));
        CHECK(root.read("dest/g1") == "one");
        CHECK(library->rename("f2", "dest/g1", false)->code == ErrorCode::exists);
        REQUIRE_FALSE(library->rename("f2", "dest/g1", true));
        CHECK(root.read("dest/g1") == "two");
        CHECK_FALSE(root.exists("f2"));

        CHECK(library->rename("a", "a/b/c", false)->code == ErrorCode::invalid_move);
        CHECK(library->rename("a", "a", false)->code == ErrorCode::invalid_move);
        // Only what is there is renamed onto itself: a missing path is
        // not_found first, as mv(1)'s "cannot stat" (round 51b).
        CHECK(library->rename("nope", "nope", false)->code == ErrorCode::not_found);
        CHECK(library->rename("nope/x", "nope/x", true)->code == ErrorCode::not_found);
        CHECK(library->rename("dest/nope", "dest/nope", true)->code == ErrorCode::not_found);
        // A file onto itself: the message says so, not "into itself".
        const auto same = library->rename("dest/g1", "dest/g1", true);
        REQUIRE(same);
        CHECK(same->code == ErrorCode::invalid_move);
        CHECK(same->message == "\"dest/g1\" would be renamed onto itself: nothing to move");
        CHECK(library->rename("a", "a/b", true)->code == ErrorCode::invalid_move);
        // Two hard links of one file: rename(2) would answer success and keep
        // both names; refused, both names stay.
        REQUIRE(::link((root.path() + "/dest/g1").c_str(), (root.path() + "/a/hard").c_str()) == 0);
        const auto linked = library->rename("dest/g1", "a/hard", true);
        REQUIRE(linked);
        CHECK(linked->code == ErrorCode::invalid_move);
        CHECK(linked->message.find("hard links to one file") != std::string::npos);
        CHECK(library->rename("a/hard", "dest/g1", false)->code == ErrorCode::exists);
        CHECK(root.exists("dest/g1"));
        REQUIRE(::unlink((root.path() + "/a/hard").c_str()) == 0);
        // A path beneath a FILE puts a file where a folder should be: not_a_folder,
        // however deep, replacing or not; "into itself" is for folders only.
        for (const bool replace : {false, true}) {
            const auto beneath = library->rename("f3", "f3/x", replace);
            REQUIRE(beneath);
            CHECK(beneath->code == ErrorCode::not_a_folder);
            CHECK(beneath->message == "\"f3\" is not a folder");
            CHECK(library->rename("dest/g1", "dest/g1/y/z", replace)->code == ErrorCode::not_a_folder);
        }
        CHECK(library->rename("a", "full", true)->code == ErrorCode::not_empty);
        CHECK(library->rename("dest/g1", "a", true)->code == ErrorCode::exists);
        CHECK(library->rename("a", "dest/g1", true)->code == ErrorCode::not_a_folder);
        CHECK(library->rename("a", "dest", false)->code == ErrorCode::exists);
        CHECK(library->rename("nothing", "x", false)->code == ErrorCode::not_found);
        CHECK(library->rename("dest/g1", "missing/x", false)->code == ErrorCode::not_found);
        CHECK(library->rename("link", "x", false)->code == ErrorCode::not_regular_file);
        CHECK(library->rename("dest/g1", "link/x", false)->code == ErrorCode::not_a_folder);
        CHECK(library->rename("", "x", false)->code == ErrorCode::invalid_name);
        CHECK(library->rename("a", "", false)->code == ErrorCode::invalid_name);
        CHECK(library->rename("a", "../x", false)->code == ErrorCode::invalid_name);
        CHECK(std::filesystem::is_empty(outside.path()));

        make(root, "empty");
        REQUIRE_FALSE(library->rename("a", "empty", true));
        CHECK(is_folder(root.path() + "/empty/b"));
        REQUIRE_FALSE(library->rename("empty", "dest/moved", false));
        CHECK(is_folder(root.path() + "/dest/moved/b"));
    }
}

TEST_CASE("digest hashes a file in a folder once, then answers from the cache while it is unchanged")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "d");
        root.write("d/h", "hello");
        // Old enough for the cache to trust it (see DigestCache).
        const struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
        ::utimensat(AT_FDCWD, (root.path() + "/d/h").c_str(), old, 0);
        auto library = open_library(root, mode);
        auto digest = library->digest("d/h", HashKind::sha256);
        REQUIRE(digest);
        CHECK(digest->digest == kHelloSha256);
        CHECK(digest->file.name == "d/h");
        CHECK(digest->file.size == 5);
        CHECK(library->digests().size() <= 1);
        CHECK(library->digest("d/h", HashKind::sha256)->digest == kHelloSha256);
        CHECK(library->digest("d", HashKind::sha256).error().code == ErrorCode::not_regular_file);
        CHECK(library->digest("d/none", HashKind::sha256).error().code == ErrorCode::not_found);
        CHECK(library->digest("h/x", HashKind::sha256).error().code == ErrorCode::not_found);
    }
}

TEST_CASE("an upload into a folder keeps its partial in the root, creates parents when asked, sets its mtime")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        auto library = open_library(root, mode);

        auto refused = PartialUpload::begin(*library, "x/y/f", 5, false);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ErrorCode::not_found);

        {
            auto upload = PartialUpload::begin(*library, "x/y/f", 5, false, HashKind::sha256, true, 1234567890);
            REQUIRE(upload);
            CHECK(is_folder(root.path() + "/x/y"));
            REQUIRE_FALSE(upload.value()->append(std::span("he", 2)));
            REQUIRE_FALSE(upload.value()->checkpoint());
        }
        // Kept in the root, never in the folder.
        CHECK(root.hidden_entries() >= 2);
        CHECK(std::filesystem::is_empty(root.path() + "/x/y"));

        auto resumed = PartialUpload::begin(*library, "x/y/f", 5, true, HashKind::sha256, false, 1234567890);
        REQUIRE(resumed);
        CHECK(resumed.value()->received() == 2);
        REQUIRE_FALSE(resumed.value()->append(std::span("llo", 3)));
        auto committed = resumed.value()->commit(kHelloSha256);
        REQUIRE(committed);
        CHECK(committed->name == "x/y/f");
        CHECK(committed->mtime == 1234567890);
        CHECK(root.read("x/y/f") == "hello");
        struct ::stat st {};
        REQUIRE(::stat((root.path() + "/x/y/f").c_str(), &st) == 0);
        CHECK(st.st_mtime == 1234567890);
        CHECK(root.hidden_entries() == 0);
    }
}

TEST_CASE("a commit resolves its folder afresh: swapped for a symlink meanwhile, nothing lands outside")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        TempRoot root;
        make(root, "sub");
        const TempRoot outside;
        auto library = open_library(root, mode);
        auto upload = PartialUpload::begin(*library, "sub/f", 5, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        REQUIRE(::rename((root.path() + "/sub").c_str(), (root.path() + "/old").c_str()) == 0);
        REQUIRE(::symlink(outside.path().c_str(), (root.path() + "/sub").c_str()) == 0);
        auto committed = upload.value()->commit(kHelloSha256);
        REQUIRE_FALSE(committed);
        CHECK(std::filesystem::is_empty(outside.path()));
        CHECK_FALSE(root.exists("old/f"));
    }
}

TEST_CASE("after a publish rename, a folder or root moved away since the lookup is told, never taken for the path")
{
    for (const ResolveMode mode : kModes) {
        CAPTURE(static_cast<int>(mode));
        const TempRoot base;
        const std::string share = base.path() + "/share";
        REQUIRE(::mkdir(share.c_str(), 0755) == 0);
        REQUIRE(::mkdir((share + "/d").c_str(), 0755) == 0);
        REQUIRE(::mkdir((share + "/d/x").c_str(), 0755) == 0);
        REQUIRE(::mkdir((share + "/moved").c_str(), 0755) == 0);
        auto opened = Library::open(share, mode);
        REQUIRE(opened);
        auto& library = *opened.value();
        const auto partial = [&](const std::string& name) {
            std::ofstream(share + "/" + name, std::ios::binary) << "hello";
        };

        // In place: nothing to say.
        partial(".ferry-partial-a");
        auto destination = library.publish_destination("d/x/a");
        REQUIRE(destination);
        REQUIRE(library.publish_entry(".ferry-partial-a", *destination, "d/x/a") == 0);
        CHECK_FALSE(library.check_published_at(*destination, "d/x/a"));

        // The folder moved away (and another took its name) between the
        // lookup and the rename: the file went with the folder.
        partial(".ferry-partial-b");
        destination = library.publish_destination("d/x/b");
        REQUIRE(destination);
        REQUIRE(::rename((share + "/d/x").c_str(), (share + "/moved/x").c_str()) == 0);
        REQUIRE(::mkdir((share + "/d/x").c_str(), 0755) == 0);
        REQUIRE(library.publish_entry(".ferry-partial-b", *destination, "d/x/b") == 0);
        auto moved = library.check_published_at(*destination, "d/x/b");
        REQUIRE(moved);
        CHECK(moved->code == ErrorCode::file_changed);
        CHECK(moved->message.find("moved away") != std::string::npos);
        CHECK(std::filesystem::exists(share + "/moved/x/b"));
        CHECK_FALSE(std::filesystem::exists(share + "/d/x/b"));

        // Removed: the same.
        REQUIRE(::rename((share + "/d").c_str(), (share + "/moved/d").c_str()) == 0);
        moved = library.check_published_at(*destination, "d/x/b");
        REQUIRE(moved);
        CHECK(moved->code == ErrorCode::file_changed);

        // The served folder replaced (README: mv share share.old; mkdir
        // share), for a name in the root and one in a folder.
        REQUIRE(::mkdir((share + "/e").c_str(), 0755) == 0);
        partial(".ferry-partial-c");
        auto in_root = library.publish_destination("c");
        auto in_folder = library.publish_destination("e/c");
        REQUIRE(in_root);
        REQUIRE(in_folder);
        REQUIRE(::rename(share.c_str(), (base.path() + "/share.old").c_str()) == 0);
        REQUIRE(::mkdir(share.c_str(), 0755) == 0);
        REQUIRE(library.publish_entry(".ferry-partial-c", *in_root, "c") == 0);
        moved = library.check_published_at(*in_root, "c");
        REQUIRE(moved);
        CHECK(moved->code == ErrorCode::root_unavailable);
        CHECK(moved->message.find("moved away") != std::string::npos);
        moved = library.check_published_at(*in_folder, "e/c");
        REQUIRE(moved);
        CHECK(moved->code == ErrorCode::root_unavailable);
        CHECK(std::filesystem::exists(base.path() + "/share.old/c"));
    }
}
