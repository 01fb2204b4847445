// The served folder's rules: what list shows, what may be opened, and how
// kept uploads are found, resumed and expired.
#include "digest.hpp"
#include "library.hpp"
#include "partial_upload.hpp"
#include "resume_state.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <optional>
#include <string>
#include <thread>
#include <utime.h>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

std::unique_ptr<Library> open_library(const TempRoot& root)
{
    auto library = Library::open(root.path());
    REQUIRE(library);
    return std::move(library.value());
}

} // namespace

TEST_CASE("list shows regular, non-hidden, validly named files only, sorted")
{
    TempRoot root;
    root.write("b.txt", "bb");
    root.write("a.txt", "a");
    root.write(".hidden", "secret");
    root.write("bad\xff", "x");
    ::mkdir((root.path() + "/folder").c_str(), 0755);
    ::symlink("a.txt", (root.path() + "/link").c_str());
    ::symlink("/etc/passwd", (root.path() + "/escape").c_str());
    ::mkfifo((root.path() + "/pipe").c_str(), 0644);
    auto library = open_library(root);

    auto listed = library->list();
    REQUIRE(listed);
    REQUIRE(listed->files.size() == 2);
    CHECK(listed->files[0].name == "a.txt");
    CHECK(listed->files[0].size == 1);
    CHECK(listed->files[1].name == "b.txt");
    CHECK(listed->skipped_invalid_names == 1);
}

TEST_CASE("links, folders, FIFOs and missing names are never opened")
{
    TempRoot root;
    root.write("real", "data");
    ::mkdir((root.path() + "/folder").c_str(), 0755);
    ::symlink("real", (root.path() + "/link").c_str());
    ::symlink("/etc/passwd", (root.path() + "/escape").c_str());
    ::mkfifo((root.path() + "/pipe").c_str(), 0644);
    auto library = open_library(root);

    for (const char* name : {"folder", "link", "escape", "pipe"}) {
        CAPTURE(name);
        auto opened = library->open_for_read(name);
        REQUIRE_FALSE(opened);
        CHECK(opened.error().code == ErrorCode::not_regular_file);
        CHECK(library->stat(name).error().code == ErrorCode::not_regular_file);
        CHECK(library->check_replaceable(name).has_value());
    }
    CHECK(library->open_for_read("nothing").error().code == ErrorCode::not_found);
    CHECK(library->open_for_read("../real").error().code == ErrorCode::invalid_name);
    auto opened = library->open_for_read("real");
    REQUIRE(opened);
    CHECK(opened.value()->info().size == 4);
    CHECK_FALSE(library->check_replaceable("real").has_value());
    CHECK_FALSE(library->check_replaceable("new-name").has_value());
}

TEST_CASE("an upload replaces a symlink entry itself, never the file it points to")
{
    TempRoot root;
    TempRoot outside;
    outside.write("target", "must stay");
    ::symlink((outside.path() + "/target").c_str(), (root.path() + "/escape").c_str());
    auto library = open_library(root);
    auto upload = PartialUpload::begin(*library, "escape", 3, false);
    REQUIRE_FALSE(upload);
    CHECK(upload.error().code == ErrorCode::not_regular_file);
    CHECK(outside.read("target") == "must stay");
}

TEST_CASE("a kept upload resumes with its bytes and hash state; a wrong size starts afresh")
{
    TempRoot root;
    auto library = open_library(root);
    {
        auto upload = PartialUpload::begin(*library, "f.bin", 10, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        REQUIRE_FALSE(upload.value()->checkpoint());
    }
    {
        auto other_size = PartialUpload::begin(*library, "f.bin", 11, true);
        REQUIRE(other_size);
        CHECK(other_size.value()->received() == 0);
        other_size.value()->discard();
    }
    auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
    REQUIRE(resumed);
    CHECK(resumed.value()->received() == 5);

    SUBCASE("a second connection cannot take it while in use")
    {
        auto second = PartialUpload::begin(*library, "f.bin", 10, true);
        REQUIRE_FALSE(second);
        CHECK(second.error().code == ErrorCode::busy);
    }
    SUBCASE("completing it publishes the whole file")
    {
        REQUIRE_FALSE(resumed.value()->append(std::span("world", 5)));
        // sha256("helloworld")
        auto committed = resumed.value()->commit("936a185caaa266bb9cbe981e9e05cb78cd732b0b3280eb944412bb6f8f8f07af");
        REQUIRE(committed);
        CHECK(root.read("f.bin") == "helloworld");
        CHECK(root.hidden_entries() == 0);
    }
}

namespace {

// Uploads "hello" as `name` through a PartialUpload and returns the
// published file's status, checking on the way that the partial is private.
struct ::stat upload_hello(const TempRoot& root, const Library& library, const std::string& name)
{
    auto upload = PartialUpload::begin(library, name, 5, false);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    REQUIRE_FALSE(upload.value()->checkpoint()); // its first state
    struct ::stat partial {};
    REQUIRE(::stat((root.path() + "/" + std::string(kPartialPrefix) + upload.value()->token()).c_str(), &partial) ==
            0);
    CHECK((partial.st_mode & 0777) == 0600); // nobody reads an upload in progress
    struct ::stat state {};
    REQUIRE(::stat((root.path() + "/" + std::string(kPartialPrefix) + upload.value()->token() + ".state").c_str(),
                   &state) == 0);
    CHECK((state.st_mode & 0777) == 0600);
    // sha256("hello")
    REQUIRE(upload.value()->commit("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
    CHECK(root.read(name) == "hello");
    struct ::stat published {};
    REQUIRE(::stat((root.path() + "/" + name).c_str(), &published) == 0);
    return published;
}

} // namespace

TEST_CASE("a replaced file keeps its mode and owner; a new file gets 0666 less the umask")
{
    TempRoot root;
    const mode_t old_mask = ::umask(027);
    auto library = open_library(root);
    ::umask(old_mask);
    CHECK(library->new_file_mode() == 0640);

    SUBCASE("a private file stays private, with its owner and group")
    {
        root.write("secret.txt", "old");
        REQUIRE(::chmod((root.path() + "/secret.txt").c_str(), 0600) == 0);
        REQUIRE(::chown((root.path() + "/secret.txt").c_str(), 4321, 8765) == 0); // tests run as root
        const auto st = upload_hello(root, *library, "secret.txt");
        CHECK((st.st_mode & 07777) == 0600);
        CHECK(st.st_uid == 4321);
        CHECK(st.st_gid == 8765);
    }
    SUBCASE("set-user-ID and set-group-ID bits are never carried over")
    {
        root.write("tool", "old");
        REQUIRE(::chmod((root.path() + "/tool").c_str(), 06755) == 0);
        const auto st = upload_hello(root, *library, "tool");
        CHECK((st.st_mode & 07777) == 0755);
    }
    SUBCASE("a new file")
    {
        const auto st = upload_hello(root, *library, "new.txt");
        CHECK((st.st_mode & 07777) == 0640);
        CHECK(st.st_uid == ::geteuid());
    }
}

TEST_CASE("stale kept uploads are removed, fresh and in-use ones stay")
{
    TempRoot root;
    auto library = open_library(root);
    {
        auto old = PartialUpload::begin(*library, "old", 10, false);
        REQUIRE(old);
        REQUIRE_FALSE(old.value()->append(std::span("x", 1)));
        REQUIRE_FALSE(old.value()->checkpoint());
    }
    // Age every file of that upload by two hours.
    const std::time_t past = std::time(nullptr) - 2 * 60 * 60;
    for (const auto& entry : std::filesystem::directory_iterator(root.path())) {
        const utimbuf times{past, past};
        ::utime(entry.path().c_str(), &times);
    }
    auto fresh = PartialUpload::begin(*library, "fresh", 10, false);
    REQUIRE(fresh);
    // A small new upload's state comes with its first checkpoint (no room
    // is taken for it at the put: kStateRoomFrom).
    CHECK(root.hidden_entries() == 3);
    CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 1);
    CHECK(root.hidden_entries() == 1);
    // Even an expired one is kept while a connection holds it.
    CHECK(remove_stale_partials(*library, std::chrono::seconds(0)) == 0);
    CHECK(root.hidden_entries() == 1);
    // A larger one's state and spare are made, empty, at the put, their
    // room reserved: the sweep leaves them while it runs.
    auto larger = PartialUpload::begin(*library, "larger", kStateRoomFrom, false);
    REQUIRE(larger);
    CHECK(root.hidden_entries() == 4);
    CHECK(remove_stale_partials(*library, std::chrono::seconds(0)) == 0);
    CHECK(root.hidden_entries() == 4);
}

TEST_CASE("a plain put of a name and size being uploaded elsewhere is busy")
{
    TempRoot root;
    auto library = open_library(root);
    auto first = PartialUpload::begin(*library, "f.bin", 10, false);
    REQUIRE(first);
    auto second = PartialUpload::begin(*library, "f.bin", 10, false);
    REQUIRE_FALSE(second);
    CHECK(second.error().code == ErrorCode::busy);
    // Another size is another upload; once the first is kept, a new one may start.
    CHECK(PartialUpload::begin(*library, "f.bin", 11, false));
    first.value().reset();
    CHECK(PartialUpload::begin(*library, "f.bin", 10, false));
}

TEST_CASE("a plain put replaces the kept upload of its path and size: a resume finds the last one")
{
    for (int round = 0; round < 6; ++round) {
        TempRoot root;
        auto library = open_library(root);
        for (const std::size_t kept : {3, 5}) {
            auto upload = PartialUpload::begin(*library, "f.bin", 10, false);
            REQUIRE(upload);
            REQUIRE_FALSE(upload.value()->append(std::span("abcdefghij", kept)));
            REQUIRE_FALSE(upload.value()->checkpoint());
        }
        CHECK(root.hidden_entries() == 2); // one data file, one state
        auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
        REQUIRE(resumed);
        CHECK(resumed.value()->received() == 5);
    }
}

TEST_CASE("a resume racing the keep of a cut upload gets busy or the kept offset, never 0")
{
    TempRoot root;
    auto library = open_library(root);
    const std::string bytes(1000, 'x');
    int offsets_zero = 0;
    for (int round = 0; round < 200; ++round) {
        auto cut = PartialUpload::begin(*library, "f.bin", 4000, true);
        REQUIRE(cut);
        const std::uint64_t before = cut.value()->received();
        REQUIRE_FALSE(cut.value()->append(std::span(bytes.data(), bytes.size())));
        // The cut connection records what it received and lets go, while
        // the client's resume arrives.
        bool kept = false;
        std::thread keeper([&] {
            kept = !cut.value()->checkpoint();
            cut.value().reset();
        });
        std::optional<std::uint64_t> offset;
        while (!offset) {
            auto resumed = PartialUpload::begin(*library, "f.bin", 4000, true);
            if (resumed) {
                offset = resumed.value()->received();
            } else {
                REQUIRE(resumed.error().code == ErrorCode::busy);
            }
        }
        keeper.join();
        REQUIRE(kept);
        offsets_zero += *offset != before + 1000 ? 1 : 0;
        // Start the next round from nothing.
        auto fresh = PartialUpload::begin(*library, "f.bin", 4000, true);
        REQUIRE(fresh);
        fresh.value()->discard();
    }
    CHECK(offsets_zero == 0);
}

TEST_CASE("the root's entries by name: one component, never a link, never outside")
{
    TempRoot outside;
    outside.write("secret", "outside the root");
    TempRoot root;
    root.write(".ferry-partial-a", "kept");
    root.write("visible", "v");
    REQUIRE(::symlink((outside.path() + "/secret").c_str(), (root.path() + "/link").c_str()) == 0);
    REQUIRE(::mkdir((root.path() + "/sub").c_str(), 0700) == 0);
    root.write("sub/inner", "i");
    auto library = open_library(root);

    for (const std::string name : {"", ".", "..", "sub/inner", "../secret", "/etc/passwd"}) {
        CAPTURE(name);
        struct ::stat st {};
        errno = 0;
        CHECK(library->open_entry(name, O_RDONLY) == -1);
        CHECK(errno == EINVAL);
        CHECK(library->stat_entry(name, st) == -1);
        CHECK(library->unlink_entry(name) == -1);
        CHECK(library->rename_entry("visible", name) == -1);
        CHECK(library->rename_entry(name, "moved") == -1);
    }
    CHECK(root.exists("sub/inner"));
    CHECK(root.exists("visible"));

    // A symlink is the entry itself: never opened through, only seen or removed.
    errno = 0;
    CHECK(library->open_entry("link", O_RDONLY) == -1);
    CHECK(errno == ELOOP);
    struct ::stat st {};
    REQUIRE(library->stat_entry("link", st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(library->unlink_entry("link") == 0);
    CHECK(outside.read("secret") == "outside the root");

    const int fd = library->open_entry(".ferry-partial-a", O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    ::close(fd);
    CHECK(library->rename_entry(".ferry-partial-a", ".ferry-partial-b") == 0);
    CHECK(library->entries_with_prefix(".ferry-partial-") == std::vector<std::string>{".ferry-partial-b"});
    CHECK(library->entries_with_prefix("nothing").empty());
}

TEST_CASE("an open file reads, hashes and reads ahead through its own descriptor")
{
    TempRoot root;
    root.write("f.bin", "0123456789");
    auto library = open_library(root);
    auto file = library->open_for_read("f.bin");
    REQUIRE(file);
    std::string into(4, '\0');
    CHECK_FALSE(file.value()->read_at(into.data(), 4, 3));
    CHECK(into == "3456");
    // Shorter than its size said: it shrank since it was measured, a change
    // (PROTOCOL.md 4.9), not a failing disk.
    auto past = file.value()->read_at(into.data(), 4, 8);
    REQUIRE(past);
    CHECK(past->code == ErrorCode::file_changed);

    TransferHash prefix;
    CHECK_FALSE(file.value()->hash_prefix(5, prefix));
    TransferHash expected;
    expected.update("01234", 5);
    CHECK(prefix.hex_digest() == expected.hex_digest());
    file.value()->read_ahead(0, 10); // only a hint; must not fail or move anything
    CHECK_FALSE(library->check_unchanged(*file.value()));
}

TEST_CASE("puts of one path and size racing commits never write into a published file")
{
    // A put may open the data file just as its holder renames it into
    // place; once it holds the lock it must see that the file is no longer
    // the upload's and look again, never truncate or write the published one.
    TempRoot root;
    auto library = open_library(root);
    root.write("f.bin", "hello");
    std::atomic<bool> stop{false};
    std::atomic<int> published{0};
    const auto uploader = [&](std::string_view content) {
        // sha256("hello"), sha256("HELLO")
        const std::string digest = content == "hello"
                                       ? "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
                                       : "3733cd977ff8eb18b987357e22ced99f46097f31ecb239e878ae63760e83e4d5";
        for (int round = 0; round < 300; ++round) {
            auto upload = PartialUpload::begin(*library, "f.bin", 5, round % 2 == 0);
            if (!upload) {
                CHECK(upload.error().code == ErrorCode::busy);
                continue;
            }
            CHECK_FALSE(upload.value()->append(std::span(content.data() + upload.value()->received(),
                                                         5 - upload.value()->received())));
            if (upload.value()->commit(digest)) {
                ++published;
            }
        }
    };
    std::thread reader([&] {
        while (!stop) {
            const std::string now = root.read("f.bin");
            CHECK((now == "hello" || now == "HELLO"));
        }
    });
    std::thread first(uploader, "hello");
    std::thread second(uploader, "HELLO");
    first.join();
    second.join();
    stop = true;
    reader.join();
    CHECK(published > 0);
    CHECK(root.hidden_entries() == 0);
}

namespace {

const std::string kAlice = owner_text(upload_owner("tokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
const std::string kBob = owner_text(upload_owner("tokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"));

// An upload of "f.bin" (10 bytes) by `owner`, cut after "hello" and kept as
// a closed connection keeps it; returns its token.
std::string keep_hello(Library& library, const std::string& owner)
{
    auto upload = PartialUpload::begin(library, "f.bin", 10, false, HashKind::sha256, false, std::nullopt, owner);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    REQUIRE_FALSE(upload.value()->keep());
    return upload.value()->token();
}

std::uint64_t resumed_offset(Library& library, const std::string& owner)
{
    auto resumed = PartialUpload::begin(library, "f.bin", 10, true, HashKind::sha256, false, std::nullopt, owner);
    REQUIRE(resumed);
    return resumed.value()->received();
}

std::string sha256_of(std::string_view text)
{
    Sha256 hash;
    hash.update(text.data(), text.size());
    return hash.hex_digest();
}

} // namespace

TEST_CASE("a kept upload resumes only for the identity that made it; anyone else starts over and learns nothing")
{
    TempRoot root;
    auto library = open_library(root);
    CHECK(kAlice != kBob);
    CHECK(kAlice.find("tokenA") == std::string::npos); // a hash, never the token
    const std::string token = keep_hello(*library, kAlice);
    CHECK(root.read(".ferry-partial-" + token + ".state").find("tokenA") == std::string::npos);

    SUBCASE("its maker resumes it")
    {
        CHECK(resumed_offset(*library, kAlice) == 5);
    }
    SUBCASE("another token, or none, gets a fresh upload of its own; the kept bytes stay for their maker")
    {
        for (const std::string& other : {kBob, std::string(kAnonymousOwner)}) {
            for (const bool resume : {true, false}) {
                auto put =
                    PartialUpload::begin(*library, "f.bin", 10, resume, HashKind::sha256, false, std::nullopt, other);
                REQUIRE(put);
                CHECK(put.value()->received() == 0);
                CHECK(put.value()->received_digest() == sha256_of(""));
                CHECK(put.value()->token() != token);
                put.value()->discard();
            }
        }
        CHECK(resumed_offset(*library, kAlice) == 5);
    }
    SUBCASE("while its maker uploads, another token's put of that path and size is not told so (no busy)")
    {
        auto held = PartialUpload::begin(*library, "f.bin", 10, true, HashKind::sha256, false, std::nullopt, kAlice);
        REQUIRE(held);
        CHECK(held.value()->received() == 5);
        auto other = PartialUpload::begin(*library, "f.bin", 10, true, HashKind::sha256, false, std::nullopt, kBob);
        REQUIRE(other);
        CHECK(other.value()->received() == 0);
        // Both publish; the last commit's file stands, as with any two puts.
        REQUIRE_FALSE(other.value()->append(std::span("0123456789", 10)));
        REQUIRE(other.value()->commit(sha256_of("0123456789")));
        REQUIRE_FALSE(held.value()->append(std::span("world", 5)));
        REQUIRE(held.value()->commit(sha256_of("helloworld")));
        CHECK(root.read("f.bin") == "helloworld");
        CHECK(root.hidden_entries() == 0);
    }
}

TEST_CASE("a state of an older build, which names nobody, resumes only where everyone is anonymous")
{
    TempRoot root;
    auto library = open_library(root);
    // Older builds named a kept upload by its path and size alone, as
    // `anonymous` still does.
    const std::string token = keep_hello(*library, std::string(kAnonymousOwner));
    const std::string state_path = ".ferry-partial-" + token + ".state";
    auto state = decode_resume_state(root.read(state_path));
    REQUIRE(state);
    state->owner.reset();
    state->part.reset();
    root.write(state_path, encode_resume_state(*state));
    SUBCASE("not for a token, even the one that made it")
    {
        CHECK(resumed_offset(*library, kAlice) == 0);
    }
    SUBCASE("for a client of a server without tokens, over bytes read again")
    {
        CHECK(resumed_offset(*library, std::string(kAnonymousOwner)) == 5);
    }
}

TEST_CASE("a resume trusts a kept upload's hash state only over the very file the state recorded")
{
    TempRoot root;
    auto library = open_library(root);
    const std::string token = keep_hello(*library, std::string(kAnonymousOwner));
    const std::string data = root.path() + "/.ferry-partial-" + token;

    SUBCASE("keep() records the data file as it leaves it, so an untouched resume reads nothing")
    {
        const auto state = decode_resume_state(root.read(".ferry-partial-" + token + ".state"));
        REQUIRE(state);
        REQUIRE(state->part);
        struct ::stat st {};
        REQUIRE(::stat(data.c_str(), &st) == 0);
        CHECK(state->part->inode == st.st_ino);
        CHECK(state->part->size == 5);
        CHECK(state->part->ctime_ns == st.st_ctim.tv_sec * 1'000'000'000 + st.st_ctim.tv_nsec);
        CHECK(state->bytes_held == 5);
    }
    SUBCASE("bytes overwritten, the time set back: the kept bytes are read again and differ, so it starts over")
    {
        struct ::stat before {};
        REQUIRE(::stat(data.c_str(), &before) == 0);
        const int fd = ::open(data.c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "J", 1, 0) == 1);
        const struct timespec times[2] = {before.st_atim, before.st_mtim};
        REQUIRE(::futimens(fd, times) == 0);
        ::close(fd);
        auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
        REQUIRE(resumed);
        CHECK(resumed.value()->received() == 0);
        REQUIRE_FALSE(resumed.value()->append(std::span("helloworld", 10)));
        REQUIRE(resumed.value()->commit(sha256_of("helloworld")));
        CHECK(root.read("f.bin") == "helloworld");
    }
    SUBCASE("a state with a second name is not one the server wrote: it vouches for nothing, it starts over")
    {
        const std::string state = root.path() + "/.ferry-partial-" + token + ".state";
        const std::string other = root.path() + "/elsewhere.state";
        REQUIRE(::link(state.c_str(), other.c_str()) == 0);
        auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
        REQUIRE(resumed);
        CHECK(resumed.value()->received() == 0);
        ::unlink(other.c_str());
    }
    SUBCASE("touched but the same bytes: read again, they match, it resumes")
    {
        REQUIRE(::utime(data.c_str(), nullptr) == 0);
        auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
        REQUIRE(resumed);
        CHECK(resumed.value()->received() == 5);
        CHECK(resumed.value()->received_digest() == sha256_of("hello"));
    }
    SUBCASE("bytes past the checkpoint (a crash): the checkpointed prefix is checked, then resumed")
    {
        const int fd = ::open(data.c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "wor", 3, 5) == 3);
        ::close(fd);
        CHECK(resumed_offset(*library, std::string(kAnonymousOwner)) == 5);
        CHECK(root.read(".ferry-partial-" + token) == "hello");
    }
    SUBCASE("the checkpointed prefix changed as well as grown: it starts over")
    {
        const int fd = ::open(data.c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "Jelloworl", 9, 0) == 9);
        ::close(fd);
        CHECK(resumed_offset(*library, std::string(kAnonymousOwner)) == 0);
    }
}

TEST_CASE("an open that meets no regular file names what it met, where its errno says")
{
    // A lookup's stat saw a regular file; the open met a link swapped in
    // (attack round 70, F2: the client then hinted "a folder comes with get -r").
    CHECK(file_error(ELOOP, "cannot open", "d/f").message ==
          "\"d/f\" is not a regular file: a symbolic link (never followed)");
    CHECK(file_error(ELOOP, "cannot open", "d/f").code == ErrorCode::not_regular_file);
    CHECK(file_error(ENXIO, "cannot open", "d/f").message == "\"d/f\" is not a regular file: a socket, FIFO or device");
    CHECK(file_error(EISDIR, "cannot publish", "d/f").message == "\"d/f\" is not a regular file");
}
