// The client's pure parts for folders, without a server: remote paths typed
// in the shell's current folder, wildcards matched against a made-up
// listing, and the local tree walk that put -r sends.
#include "support.hpp"

#include "local_tree.hpp"
#include "local_wildcards.hpp"
#include "remote_paths.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

using namespace ferry::client;

TEST_CASE("remote paths: the folders a '..' climbs out of, each to be checked on the server")
{
    // Round 36: "rm -r f/../d" with f a file removed d. POSIX.1-2017 4.13
    // resolves "f/.." only when f is a folder: these are what must be one.
    const auto climbed = [](std::string_view current, std::string_view typed) {
        auto folders = climbed_folders(current, typed);
        REQUIRE(folders.ok());
        return folders.value();
    };
    using Paths = std::vector<std::string>;
    CHECK(climbed("", "f/../d") == Paths{"f"});
    CHECK(climbed("ab", "f/../d") == Paths{"ab/f"});
    CHECK(climbed("ab", "/f/..") == Paths{"f"});
    CHECK(climbed("", "a/b/../../c") == Paths{"a/b"}); // a/b a folder, a is one
    CHECK(climbed("", "a/b/../c/../d") == Paths{"a/b", "a/c"});
    CHECK(climbed("", "a/./b/..") == Paths{"a/b"});
    CHECK(climbed("", "nosuch/../x") == Paths{"nosuch"});
    // The current folder's own components were checked by cd: none here.
    CHECK(climbed("a/b", "../x").empty());
    CHECK(climbed("a/b", "../../x").empty());
    CHECK(climbed("a", "x/../../y") == Paths{"a/x"});
    CHECK(climbed("d", "../f/..") == Paths{"f"}); // out of current's d, then out of the typed f
    CHECK(climbed("a/b", "../c/../../e/..") == Paths{"a/c", "e"});
    CHECK(climbed("", "a/b/c").empty());
    CHECK(climbed("", "a/..b/c").empty()); // "..b" is a name
    // Wildcards stay live (a pattern before '..' is refused by the caller);
    // the current folder's characters come back escaped.
    CHECK(climbed("", "x*/../d") == Paths{"x*"});
    CHECK(climbed("k/d?r", "f/..") == Paths{"k/d\\?r/f"});
    CHECK_FALSE(climbed_folders("", "../x").ok()); // above the root, as resolve_remote_path says
}

TEST_CASE("remote paths: relative to the current folder, '.' and '..' settled on the client")
{
    const auto resolved = [](std::string_view current, std::string_view typed) {
        auto path = resolve_remote_path(current, typed);
        REQUIRE(path.ok());
        return path.value();
    };
    CHECK(resolved("", "a.txt") == "a.txt");
    CHECK(resolved("logs", "a.txt") == "logs/a.txt");
    CHECK(resolved("logs/2026", "..") == "logs");
    CHECK(resolved("logs/2026", "../..") == "");
    CHECK(resolved("logs/2026", "../other/./x") == "logs/other/x");
    CHECK(resolved("logs", "/etc/x") == "etc/x");
    CHECK(resolved("logs", "/") == "");
    CHECK(resolved("logs", "a//b/") == "logs/a/b");
    CHECK(resolved("logs", ".") == "logs");
    CHECK(resolved("a/b", "c/../../d") == "a/d");
    for (const auto& current_and_typed : std::vector<std::pair<std::string, std::string>>{
             {"", ".."}, {"a", "../.."}, {"a/b", "/../x"}, {"", "x/../../y"}}) {
        // Not a structured binding: clang 14 cannot capture one (CAPTURE).
        const std::string& current = current_and_typed.first;
        const std::string& typed = current_and_typed.second;
        CAPTURE(typed);
        const auto path = resolve_remote_path(current, typed);
        REQUIRE_FALSE(path.ok());
        CHECK(path.error().code == ferry::ErrorCode::invalid_name);
        CHECK(path.error().message.find("above the server's root") != std::string::npos);
    }
    // The current folder is a real path: its wildcard characters come back
    // escaped, so the result names that folder, never a pattern (round 33).
    CHECK(resolved("k/d?r", "x.txt") == "k/d\\?r/x.txt");
    CHECK(resolved("k/d*r/[a]", "../x") == "k/d\\*r/x");
    CHECK(resolved("k/d?r", "*.txt") == "k/d\\?r/*.txt");
    CHECK(resolved("k/d?r", "/a?") == "a?");
    CHECK(unescape_wildcards(resolved("k/d?r", "x.txt")) == "k/d?r/x.txt");
    CHECK_FALSE(has_wildcard(resolved("k/d[a]r", "x.txt")));
    CHECK(split_wildcard(resolved("k/d?r", "*.txt")).folder == "k/d?r");
    CHECK(escape_wildcards("m[1]*?\\") == "m\\[1\\]\\*\\?\\\\");
    CHECK(unescape_wildcards(escape_wildcards("m[1]*?\\")) == "m[1]*?\\");
    CHECK(join_remote("", "a") == "a");
    CHECK(join_remote("a/b", "c") == "a/b/c");
    CHECK(remote_parent("a/b/c") == "a/b");
    CHECK(remote_parent("c") == "");
    CHECK(remote_base_name("a/b/c") == "c");
    CHECK(remote_base_name("c") == "c");
}

TEST_CASE("a folder as typed where no wildcard is expanded: settled, unescaped, held to the name rule")
{
    const auto settled = [](std::string_view current, std::string_view typed) {
        auto path = settle_remote_folder(current, typed);
        REQUIRE(path.ok());
        return path.value();
    };
    CHECK(settled("", "t/..") == "");
    CHECK(settled("", "t/d/..") == "t");
    CHECK(settled("", "/t/d/../") == "t");
    CHECK(settled("logs", "..") == "");
    CHECK(settled("logs", "") == "logs");
    CHECK(settled("", "a\\*b") == "a*b");
    const auto climbs = settle_remote_folder("", "t/../..");
    REQUIRE_FALSE(climbs.ok());
    CHECK(climbs.error().code == ferry::ErrorCode::invalid_name);
    const auto hidden = settle_remote_folder("", "t/.hidden");
    REQUIRE_FALSE(hidden.ok());
    CHECK(hidden.error().code == ferry::ErrorCode::invalid_name);
    CHECK(hidden.error().message.starts_with("\"t/.hidden\": "));
}

TEST_CASE("wildcards: split at the first component holding one, escapes undone")
{
    CHECK(has_wildcard("logs/*.gz"));
    CHECK(has_wildcard("a?"));
    CHECK(has_wildcard("[ab].txt"));
    CHECK_FALSE(has_wildcard("plain/name.txt"));
    CHECK_FALSE(has_wildcard("a\\*b"));
    CHECK(unescape_wildcards("a\\*b\\?") == "a*b?");
    CHECK(unescape_wildcards("a\\b") == "a\\b");

    auto split = split_wildcard("logs/2026/*.gz");
    CHECK(split.folder == "logs/2026");
    CHECK(split.pattern == "*.gz");
    CHECK_FALSE(split.recursive);
    split = split_wildcard("logs/*/x.gz");
    CHECK(split.folder == "logs");
    CHECK(split.pattern == "*/x.gz");
    CHECK(split.recursive);
    split = split_wildcard("*.txt");
    CHECK(split.folder == "");
    CHECK(split.pattern == "*.txt");

    // FNM_PATHNAME: '*' stays within one component.
    CHECK(wildcard_match("*.gz", "a.gz"));
    CHECK_FALSE(wildcard_match("*.gz", "sub/a.gz"));
    CHECK(wildcard_match("*/*.gz", "sub/a.gz"));
    CHECK(wildcard_match("[ab]?.txt", "b1.txt"));
    CHECK_FALSE(wildcard_match("[ab]?.txt", "c1.txt"));
}

namespace {

// A server's tree, listed as list (non-recursive or recursive) would.
class FakeTree {
public:
    explicit FakeTree(std::vector<std::string> paths) : paths_(std::move(paths)) {}

    ferry::Result<std::vector<ferry::FileInfo>> list(const std::string& folder, bool recursive)
    {
        calls.push_back(folder + (recursive ? " -r" : ""));
        std::vector<ferry::FileInfo> entries;
        bool exists = folder.empty();
        for (const auto& path : paths_) {
            const bool is_folder = path.ends_with('/');
            const std::string clean = is_folder ? path.substr(0, path.size() - 1) : path;
            if (clean == folder) {
                exists = true;
            }
            const std::string prefix = folder.empty() ? "" : folder + "/";
            if (!clean.starts_with(prefix) || clean == folder) {
                continue;
            }
            const std::string relative = clean.substr(prefix.size());
            if (!recursive && relative.find('/') != std::string::npos) {
                continue;
            }
            ferry::FileInfo entry;
            entry.name = relative;
            entry.size = relative.size();
            entry.type = is_folder ? ferry::EntryType::folder : ferry::EntryType::file;
            entries.push_back(entry);
        }
        if (!exists) {
            return ferry::Error{ferry::ErrorCode::not_found, "no folder \"" + folder + "\""};
        }
        return entries;
    }

    std::vector<std::string> calls;

private:
    std::vector<std::string> paths_;
};

std::vector<std::string> paths_of(const std::vector<ferry::FileInfo>& matches)
{
    std::vector<std::string> paths;
    for (const auto& match : matches) {
        paths.push_back(match.name + (match.type == ferry::EntryType::folder ? "/" : ""));
    }
    return paths;
}

} // namespace

TEST_CASE("wildcards are expanded against the listing of the folder before them")
{
    FakeTree tree({"a.txt", "b.txt", "c.log", "logs/", "logs/1.gz", "logs/2.gz", "logs/keep.txt", "logs/old/",
                   "logs/old/0.gz", "logs/sub/", "logs/sub/x.gz"});
    const FolderLister lister = [&tree](const std::string& folder, bool recursive) {
        return tree.list(folder, recursive);
    };

    auto matched = expand_remote("*.txt", "*.txt", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"a.txt", "b.txt"});
    CHECK(tree.calls == std::vector<std::string>{""});

    matched = expand_remote("logs/*.gz", "logs/*.gz", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"logs/1.gz", "logs/2.gz"});
    CHECK(tree.calls.back() == "logs");
    CHECK(matched->front().size == 4); // what the listing said of it

    // A wildcard before the last component: the folder's listing is recursive.
    matched = expand_remote("logs/*/*.gz", "logs/*/*.gz", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"logs/old/0.gz", "logs/sub/x.gz"});
    CHECK(tree.calls.back() == "logs -r");

    // Folders match too, and say so.
    matched = expand_remote("l*", "l*", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"logs/"});

    // No wildcard: the path itself, not looked up.
    const auto calls = tree.calls.size();
    matched = expand_remote("missing.txt", "missing.txt", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"missing.txt"});
    CHECK(tree.calls.size() == calls);
    matched = expand_remote("star\\*.txt", "star\\*.txt", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"star*.txt"});

    // No match is not_found, naming the pattern as typed.
    for (const char* pattern : {"logs/*.zip", "*.none", "logs/?/*.gz"}) {
        CAPTURE(pattern);
        const auto none = expand_remote(pattern, std::string("typed ") + pattern, lister);
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == ferry::ErrorCode::not_found);
        CHECK(none.error().message == "no match for 'typed " + std::string(pattern) + "'");
    }
    // No match, but a file named as the pattern reads as plain text (one
    // put with --as, or listed): the message says how to name it.
    FakeTree odd({"logs/", "logs/report[1].txt", "logs/report2.txt"});
    const FolderLister odd_lister = [&odd](const std::string& folder, bool recursive) {
        return odd.list(folder, recursive);
    };
    const auto literal = expand_remote("logs/report[1].txt", "logs/report[1].txt", odd_lister);
    REQUIRE_FALSE(literal.ok());
    CHECK(literal.error().code == ferry::ErrorCode::not_found);
    CHECK(literal.error().message == "no match for 'logs/report[1].txt' (\"logs/report[1].txt\" is there: * ? [ make "
                                     "a pattern; 'logs/report\\[1\\].txt' names that very one)");
    // Asked for as a folder (a trailing '/'), the file is no such one: no hint.
    const auto as_folder = expand_remote("logs/report[1].txt/", "logs/report[1].txt/", odd_lister);
    REQUIRE_FALSE(as_folder.ok());
    CHECK(as_folder.error().message == "no match for 'logs/report[1].txt/'");
    const auto escaped = expand_remote("logs/report\\[1\\].txt", "logs/report\\[1\\].txt", odd_lister);
    REQUIRE(escaped.ok());
    CHECK(paths_of(escaped.value()) == std::vector<std::string>{"logs/report[1].txt"});

    // The folder before the wildcard is missing: the listing's error.
    const auto missing = expand_remote("nowhere/*.gz", "nowhere/*.gz", lister);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message == "no folder \"nowhere\"");
}

TEST_CASE("a pattern typed as a folder matches folders only, as a shell's \"*/\" does")
{
    FakeTree tree({"a.txt", "l.txt", "logs/", "logs/1.gz", "logs/old/", "logs/old.gz", "lib/"});
    const FolderLister lister = [&tree](const std::string& folder, bool recursive) {
        return tree.list(folder, recursive);
    };
    auto matched = expand_remote("l*", "l*/", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"lib/", "logs/"});
    matched = expand_remote("logs/old*", "logs/old*/.", lister);
    REQUIRE(matched.ok());
    CHECK(paths_of(matched.value()) == std::vector<std::string>{"logs/old/"});
    const auto none = expand_remote("*.txt", "*.txt/", lister);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == ferry::ErrorCode::not_found);
}

TEST_CASE("a path's spelling: typed as a folder, or ending in '.' or '..'")
{
    for (const char* folder : {"d/", "d//", "d/.", "d/..", ".", "..", "/", "./", "a/b/../"}) {
        CAPTURE(folder);
        CHECK(typed_as_folder(folder));
    }
    for (const char* other : {"d", "", "d/.x", "d/..x", "d.", "..d", "a/b"}) {
        CAPTURE(other);
        CHECK_FALSE(typed_as_folder(other));
    }
    for (const char* dotted : {".", "..", "./", "../", "d/.", "d/..", "d/../", "d/.//", "/.."}) {
        CAPTURE(dotted);
        CHECK(ends_in_dot_or_dot_dot(dotted));
    }
    for (const char* named : {"d", "d/", "/", "", ".d", "d/...", "d/.x/", "a/../b"}) {
        CAPTURE(named);
        CHECK_FALSE(ends_in_dot_or_dot_dot(named));
    }
    CHECK(last_typed_component("d/../") == "..");
    CHECK(last_typed_component("a/b") == "b");
    CHECK(last_typed_component("./") == ".");
    CHECK(last_typed_component("/") == "/");
}

namespace {

void write_text(const std::string& path, const std::string& text)
{
    FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
}

} // namespace

TEST_CASE("the local tree walk: folders before their contents, no symlink followed, what cannot go is said")
{
    ferry::test::TempDir dir;
    const std::string root = dir / "tree";
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    REQUIRE(::mkdir((root + "/sub").c_str(), 0755) == 0);
    REQUIRE(::mkdir((root + "/sub/deeper").c_str(), 0755) == 0);
    REQUIRE(::mkdir((root + "/empty").c_str(), 0755) == 0);
    REQUIRE(::mkdir((dir / "outside").c_str(), 0755) == 0);
    write_text(dir / "outside/secret.txt", "secret");
    write_text(root + "/a.txt", "hello");
    write_text(root + "/sub/b.txt", "bb");
    write_text(root + "/sub/deeper/c.txt", "c");
    write_text(root + "/.hidden", "h");
    write_text(root + "/x.bin.ferry-part", "part");
    REQUIRE(::symlink((dir / "outside").c_str(), (root + "/link-dir").c_str()) == 0);
    REQUIRE(::symlink((dir / "outside/secret.txt").c_str(), (root + "/sub/link-file").c_str()) == 0);
    REQUIRE(::mkfifo((root + "/fifo").c_str(), 0600) == 0);

    auto walked = walk_local_tree(root);
    REQUIRE(walked.ok());
    std::vector<std::string> entries;
    for (const auto& entry : walked->entries) {
        entries.push_back(entry.path + (entry.folder ? "/" : "") + (entry.folder ? "" : " " + std::to_string(entry.size)));
    }
    CHECK(entries == std::vector<std::string>{"a.txt 5", "empty/", "sub/", "sub/b.txt 2", "sub/deeper/",
                                              "sub/deeper/c.txt 1"});
    std::map<std::string, std::string> skipped;
    for (const auto& entry : walked->skipped) {
        skipped[entry.path] = entry.why;
    }
    CHECK(skipped.size() == 5);
    CHECK(skipped[".hidden"].find("refuses") != std::string::npos);
    CHECK(skipped["x.bin.ferry-part"] == "a partial download");
    CHECK(skipped["link-dir"] == "a symbolic link (not followed)");
    CHECK(skipped["sub/link-file"] == "a symbolic link (not followed)");
    CHECK(skipped["fifo"] == "not a regular file or folder");
    struct stat st {};
    REQUIRE(::stat((root + "/a.txt").c_str(), &st) == 0);
    CHECK(walked->entries.front().mtime == st.st_mtim.tv_sec);

    // Not a folder, or missing: an error, not an empty tree.
    CHECK_FALSE(walk_local_tree(root + "/a.txt").ok());
    CHECK(walk_local_tree(root + "/nothing").error().code == ferry::ErrorCode::local_io);
}

TEST_CASE("the local tree walk stops at the depth a server path may have")
{
    ferry::test::TempDir dir;
    std::string path = dir / "deep";
    REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    const std::string root = path;
    for (std::size_t i = 0; i < kMaxTreeDepth + 2; ++i) {
        path += "/d";
        REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    }
    auto walked = walk_local_tree(root);
    REQUIRE(walked.ok());
    CHECK(walked->entries.size() == kMaxTreeDepth);
    REQUIRE(walked->skipped.size() == 1);
    CHECK(walked->skipped.front().why.find("deeper than") != std::string::npos);
}

TEST_CASE("a listed file opens only as the very file listed, never through a link swapped in since")
{
    ferry::test::TempDir dir;
    const std::string root = dir / "tree";
    const std::string outside = dir / "outside";
    const std::string moved = dir / "moved";
    for (const auto& folder : {root, root + "/sub", outside, moved}) {
        REQUIRE(::mkdir(folder.c_str(), 0755) == 0);
    }
    write_text(outside + "/f.txt", "secret");
    write_text(outside + "/other.txt", "secret");
    for (const auto& name : {"/sub/f.txt", "/top.txt", "/hard.txt", "/fifo.txt", "/socket.txt", "/device.txt", "/gone.txt"}) {
        write_text(root + name, "listed");
    }
    auto walked = walk_local_tree(root);
    REQUIRE(walked.ok());
    std::map<std::string, ListedFile> listed;
    for (const auto& entry : walked->entries) {
        listed[entry.path] = ListedFile{root, entry.path, entry.device, entry.inode};
    }
    REQUIRE(listed.size() == 8); // the folder sub/ and seven files

    // Unchanged: opened, the listed file.
    auto same = open_listed_file(listed["sub/f.txt"], root + "/sub/f.txt");
    REQUIRE(same.ok());
    CHECK(same->path() == root + "/sub/f.txt");

    // The folder swapped for a link to a folder holding a file of that name.
    REQUIRE(::rename((root + "/sub").c_str(), (moved + "/sub").c_str()) == 0);
    REQUIRE(::symlink(outside.c_str(), (root + "/sub").c_str()) == 0);
    auto through_folder = open_listed_file(listed["sub/f.txt"], root + "/sub/f.txt");
    REQUIRE_FALSE(through_folder.ok());
    CHECK(through_folder.error().code == ferry::ErrorCode::local_io);
    CHECK(through_folder.error().message.find("changed since it was listed") != std::string::npos);
    CHECK(through_folder.error().message.find("a symbolic link is not followed") != std::string::npos);

    // The file swapped for a link to a file outside.
    REQUIRE(::rename((root + "/top.txt").c_str(), (moved + "/top.txt").c_str()) == 0);
    REQUIRE(::symlink((outside + "/f.txt").c_str(), (root + "/top.txt").c_str()) == 0);
    auto through_link = open_listed_file(listed["top.txt"], root + "/top.txt");
    REQUIRE_FALSE(through_link.ok());
    CHECK(through_link.error().message.find("symbolic link now") != std::string::npos);

    // The file swapped for another file (a hard link to one outside): no
    // link to refuse, but not the file listed.
    REQUIRE(::unlink((root + "/hard.txt").c_str()) == 0);
    REQUIRE(::link((outside + "/other.txt").c_str(), (root + "/hard.txt").c_str()) == 0);
    auto other = open_listed_file(listed["hard.txt"], root + "/hard.txt");
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().message.find("another file stands at its name now") != std::string::npos);

    // A FIFO at the name is opened without waiting and refused.
    REQUIRE(::unlink((root + "/fifo.txt").c_str()) == 0);
    REQUIRE(::mkfifo((root + "/fifo.txt").c_str(), 0600) == 0);
    auto fifo = open_listed_file(listed["fifo.txt"], root + "/fifo.txt");
    REQUIRE_FALSE(fifo.ok());
    CHECK(fifo.error().message.find("no longer a regular file") != std::string::npos);

    // What open(2) refuses for its kind is a change too (attack round 84,
    // F1): a socket (ENXIO) and a device of no driver (ENXIO or ENODEV),
    // made here, never a real one.
    REQUIRE(::unlink((root + "/socket.txt").c_str()) == 0);
    const int listening = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listening >= 0);
    struct sockaddr_un address {};
    address.sun_family = AF_UNIX;
    const std::string socket_path = root + "/socket.txt";
    REQUIRE(socket_path.size() < sizeof(address.sun_path));
    socket_path.copy(address.sun_path, socket_path.size());
    REQUIRE(::bind(listening, reinterpret_cast<const struct sockaddr*>(&address), sizeof(address)) == 0);
    auto socket = open_listed_file(listed["socket.txt"], socket_path);
    ::close(listening);
    REQUIRE_FALSE(socket.ok());
    CHECK(socket.error().message.find("changed since it was listed: it is no longer a regular file") !=
          std::string::npos);
    REQUIRE(::unlink((root + "/device.txt").c_str()) == 0);
    REQUIRE(::mknod((root + "/device.txt").c_str(), S_IFCHR | 0600, ::makedev(240, 77)) == 0);
    auto device = open_listed_file(listed["device.txt"], root + "/device.txt");
    REQUIRE_FALSE(device.ok());
    CHECK(device.error().message.find("changed since it was listed: it is no longer a regular file") !=
          std::string::npos);

    // Gone since the listing: a change as well, not a plain failure to open.
    REQUIRE(::unlink((root + "/gone.txt").c_str()) == 0);
    auto gone = open_listed_file(listed["gone.txt"], root + "/gone.txt");
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().message.find("changed since it was listed: it is gone") != std::string::npos);
}

TEST_CASE("listed files opened through a command's held folders: each folder walked to once, never through a link")
{
    ferry::test::TempDir dir;
    const std::string root = dir / "tree";
    const std::string outside = dir / "outside";
    const std::string moved = dir / "moved";
    for (const auto& folder : {root, root + "/sub", root + "/later", outside, moved}) {
        REQUIRE(::mkdir(folder.c_str(), 0755) == 0);
    }
    for (const auto& name : {"/f.txt", "/g.txt", "/h.txt"}) {
        write_text(root + "/sub" + name, "listed");
        write_text(outside + name, "secret");
    }
    write_text(root + "/later/f.txt", "listed");
    auto walked = walk_local_tree(root);
    REQUIRE(walked.ok());
    std::map<std::string, ListedFile> listed;
    for (const auto& entry : walked->entries) {
        listed[entry.path] = ListedFile{root, entry.path, entry.device, entry.inode};
    }
    HeldFolders folders;
    const auto read_all = [](const LocalFile& file) {
        std::string text(64, '\0');
        auto got = file.read_at(0, std::span(reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
        REQUIRE(got.ok());
        text.resize(got.value());
        return text;
    };

    // The first file of sub/ walks to it; the folder is held from then on.
    auto first = open_listed_file(listed["sub/f.txt"], root + "/sub/f.txt", &folders);
    REQUIRE(first.ok());
    CHECK(read_all(first.value()) == "listed");
    auto held = folders.folder_holding(root, "sub/g.txt");
    REQUIRE(held.ok());
    auto again = folders.folder_holding(root, "sub/h.txt");
    REQUIRE(again.ok());
    CHECK(held.value() == again.value()); // one descriptor for the folder, not one walk per file

    // sub/ swapped for a link to a folder outside holding files of the same
    // names: the next file of sub/ is not walked to again, so it is opened
    // in the folder held, the one listed, and is the very file listed.
    REQUIRE(::rename((root + "/sub").c_str(), (moved + "/sub").c_str()) == 0);
    REQUIRE(::symlink(outside.c_str(), (root + "/sub").c_str()) == 0);
    auto second = open_listed_file(listed["sub/g.txt"], root + "/sub/g.txt", &folders);
    REQUIRE(second.ok());
    CHECK(read_all(second.value()) == "listed");
    // Without held folders the same file is walked to afresh: refused at the link.
    auto walked_again = open_listed_file(listed["sub/g.txt"], root + "/sub/g.txt");
    REQUIRE_FALSE(walked_again.ok());
    CHECK(walked_again.error().message.find("a symbolic link is not followed") != std::string::npos);

    // In the folder held, a file swapped for another is still refused.
    REQUIRE(::unlink((moved + "/sub/h.txt").c_str()) == 0);
    REQUIRE(::link((outside + "/h.txt").c_str(), (moved + "/sub/h.txt").c_str()) == 0);
    auto swapped = open_listed_file(listed["sub/h.txt"], root + "/sub/h.txt", &folders);
    REQUIRE_FALSE(swapped.ok());
    CHECK(swapped.error().message.find("another file stands at its name now") != std::string::npos);

    // A folder not walked to yet, swapped for a link, is refused as without them.
    REQUIRE(::rename((root + "/later").c_str(), (moved + "/later").c_str()) == 0);
    REQUIRE(::symlink(outside.c_str(), (root + "/later").c_str()) == 0);
    auto later = open_listed_file(listed["later/f.txt"], root + "/later/f.txt", &folders);
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().message.find("changed since it was listed") != std::string::npos);
    CHECK(later.error().message.find("a symbolic link is not followed") != std::string::npos);
}

TEST_CASE("the shell's local wildcards: put's operands as sh expands them, a pattern matching nothing refused")
{
    ferry::test::TempDir dir;
    for (const char* name : {"b.log", "a.log", ".hidden.log", "note.txt", "m[1]", "m1", "d1/x", "d2/y", "e/f"}) {
        const std::string path = dir / name;
        ::mkdir(path.substr(0, path.rfind('/')).c_str(), 0755);
        ferry::test::write_file(path, name);
    }
    const auto expanded = [&](std::vector<std::string> typed) {
        for (auto& word : typed) {
            word = dir.path() + "/" + word;
        }
        auto result = expand_local_wildcards(typed);
        REQUIRE(result.ok());
        std::vector<std::string> relative;
        for (const auto& path : result.value()) {
            relative.push_back(path.substr(dir.path().size() + 1));
        }
        return relative;
    };
    using Paths = std::vector<std::string>;
    // Sorted, in the place of the pattern, and hidden names left out of '*'.
    CHECK(expanded({"note.txt", "*.log", "m1"}) == Paths{"note.txt", "a.log", "b.log", "m1"});
    CHECK(expanded({".*.log"}) == Paths{".hidden.log"});
    CHECK(expanded({".*"}) == Paths{".hidden.log"}); // never "." or "..", which name no file here
    CHECK(expanded({"d?", "*/[xy]"}) == Paths{"d1", "d2", "d1/x", "d2/y"});
    // A name holding a wildcard character, escaped as a remote one is.
    CHECK(expanded({"m\\[1]"}) == Paths{"m[1]"});
    CHECK(expanded({"m[1]"}) == Paths{"m[1]"}); // a file named as typed is that file, never its pattern's match
    ferry::test::write_file(dir / "n1", "n1");
    CHECK(expanded({"n[1]"}) == Paths{"n1"});
    CHECK(expanded({"m\\[1"}) == Paths{"m[1"}); // no wildcard left: only the escape undone, not checked
    // Matching nothing, below a missing folder or a file too: refused, as zsh refuses it.
    for (const char* none : {"*.gz", "nowhere/*", "note.txt/*", "d1/.*"}) {
        const auto refused = expand_local_wildcards({dir / none});
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().code == ferry::ErrorCode::local_io);
        CHECK(refused.error().message == "no match for '" + (dir / none) + "' on this machine");
    }
}
