// The token file: its format, and what each token grants.
#include "access.hpp"
#include "temp_root.hpp"

#include <fcntl.h>
#include <sys/acl.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

using namespace ferry;
using namespace ferry::server;

TEST_CASE("a token file grants read-write or read-only access per token")
{
    auto list = AccessList::parse("# operators\n"
                                  "alice-0123456789abcdef rw\n"
                                  "\n"
                                  "reader-0123456789abcdef ro  # the dashboard\n");
    REQUIRE(list);
    CHECK(list->size() == 2);
    CHECK(list->check("alice-0123456789abcdef") == Access::read_write);
    CHECK(list->check("reader-0123456789abcdef") == Access::read_only);
    CHECK_FALSE(list->check("alice-0123456789abcde").has_value());
    CHECK_FALSE(list->check("").has_value());
    CHECK_FALSE(list->check("ALICE-0123456789ABCDEF").has_value());
}

TEST_CASE("a malformed token file is refused with the line that is wrong")
{
    for (const char* text : {"short rw\n", "a-long-enough-token-here\n", "a-long-enough-token-here admin\n",
                             "a-long-enough-token-here rw label extra\n", "# nothing but comments\n", ""}) {
        CAPTURE(std::string(text));
        auto list = AccessList::parse(text);
        REQUIRE_FALSE(list);
        CHECK(list.error().code == ErrorCode::bad_request);
    }
    CHECK(AccessList::parse("\n\nshort rw\n").error().message.find("line 3") != std::string::npos);
}

TEST_CASE("a token's entry may name its holder with a label, which is all the log may show of it")
{
    auto list = AccessList::parse("alice-0123456789abcdef rw alice@laptop  # Alice's laptop\n"
                                  "reader-0123456789abcdef ro dashboard.prod_2\n"
                                  "anon-0123456789abcdef ro # no label\n");
    REQUIRE(list);
    auto alice = list->grant("alice-0123456789abcdef");
    REQUIRE(alice);
    CHECK(alice->access == Access::read_write);
    CHECK(alice->label == "alice@laptop");
    CHECK(list->grant("reader-0123456789abcdef")->label == "dashboard.prod_2");
    CHECK(list->grant("reader-0123456789abcdef")->access == Access::read_only);
    CHECK(list->grant("anon-0123456789abcdef")->label.empty());
    CHECK_FALSE(list->grant("nobody-0123456789abcdef").has_value());
    CHECK(AccessList::parse("bob-0123456789abcdef ro bob # c\n")->grant("bob-0123456789abcdef")->label == "bob");
}

TEST_CASE("a label that is not one plain word, or is a token, is refused without being echoed")
{
    const std::string too_long(65, 'x');
    for (const std::string& label : {std::string("secret-9876543210fedcba!"), std::string("a\"b"), std::string("x=y"),
                                     std::string("ü-label"), too_long}) {
        CAPTURE(label);
        auto list = AccessList::parse("alice-0123456789abcdef rw " + label + "\n");
        REQUIRE_FALSE(list);
        CHECK(list.error().message.find("line 1") != std::string::npos);
        CHECK(list.error().message.find(label) == std::string::npos);
    }
    // Two tokens on one line: the second would be logged as a label.
    auto pasted = AccessList::parse("alice-0123456789abcdef rw\nbob-0123456789abcdef ro alice-0123456789abcdef\n");
    REQUIRE_FALSE(pasted);
    CHECK(pasted.error().message.find("line 2") != std::string::npos);
    CHECK(pasted.error().message.find("alice-0123456789abcdef") == std::string::npos);
    CHECK(AccessList::parse(std::string("alice-0123456789abcdef rw ") + std::string(64, 'x') + "\n"));
    // Part of a token is as bad as all of it: the token with a suffix, its
    // long prefix, or a run of 8 of its characters, of the same line or
    // another's.
    for (const std::string& label : {std::string("alice-0123456789abcdef-x"), std::string("alice-0123456789abcde"),
                                     std::string("x01234567y"), std::string("bob-0123456789")}) {
        CAPTURE(label);
        auto partial = AccessList::parse("alice-0123456789abcdef rw " + label + "\nbob-0123456789abcdef-zz ro\n");
        REQUIRE_FALSE(partial);
        CHECK(partial.error().message.find("line 1") != std::string::npos);
        CHECK(partial.error().message.find(label) == std::string::npos);
    }
    CHECK(AccessList::parse("alice-0123456789abcdef rw alice@laptop\n"));
}

TEST_CASE("a token beginning with '#' is a comment, and a line that reads like one is warned about")
{
    auto list = AccessList::parse("#hash-0123456789abcdef rw\n"
                                  "  # plain comment rw\n"
                                  "# alice-0123456789abcdef rw\n"
                                  "bob-0123456789abcdef ro\n");
    REQUIRE(list);
    CHECK(list->size() == 1);
    CHECK_FALSE(list->check("#hash-0123456789abcdef").has_value());
    // "# TOKEN rw" is the documented way to comment an entry out: no warning.
    REQUIRE(list->warnings().size() == 1);
    CHECK(list->warnings()[0].find("line 1") != std::string::npos);
    CHECK(list->warnings()[0].find("may not begin with '#'") != std::string::npos);
    CHECK(AccessList::parse("bob-0123456789abcdef ro\n")->warnings().empty());
}

TEST_CASE("a token listed twice is refused, naming both lines")
{
    for (const char* text : {"alice-0123456789abcdef rw\n# c\nalice-0123456789abcdef ro\n",
                             "alice-0123456789abcdef rw\n# c\nalice-0123456789abcdef rw\n"}) {
        CAPTURE(std::string(text));
        auto list = AccessList::parse(text);
        REQUIRE_FALSE(list);
        CHECK(list.error().message.find("line 3") != std::string::npos);
        CHECK(list.error().message.find("line 1") != std::string::npos);
    }
}

namespace {

std::string write_token_file(const TempRoot& root, const std::string& text, mode_t mode)
{
    const std::string path = root.path() + "/tokens";
    ::unlink(path.c_str());
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
}

} // namespace

TEST_CASE("a token file anyone may write is refused; one others may read is warned about")
{
    TempRoot root;
    const std::string text = "alice-0123456789abcdef rw\n";
    auto private_file = AccessList::load(write_token_file(root, text, 0600));
    REQUIRE(private_file);
    CHECK(private_file->warnings().empty());

    auto readable = AccessList::load(write_token_file(root, text, 0644));
    REQUIRE(readable);
    REQUIRE(readable->warnings().size() == 1);
    CHECK(readable->warnings()[0].find("mode 644") != std::string::npos);
    for (mode_t mode : {0602, 0666}) {
        auto writable = AccessList::load(write_token_file(root, text, mode));
        REQUIRE_FALSE(writable);
        CHECK(writable.error().message.find("anyone may write") != std::string::npos);
    }
    CHECK_FALSE(AccessList::load(root.path() + "/missing"));
}

TEST_CASE("reloading the token table swaps the list whole, and a bad file keeps the old one")
{
    TempRoot root;
    const std::string path = write_token_file(root, "alice-0123456789abcdef rw\n", 0600);
    TokenTable table(path, AccessList::load(path).value());
    auto before = table.current();
    CHECK(before->check("alice-0123456789abcdef") == Access::read_write);

    write_token_file(root, "bob-0123456789abcdef ro\n", 0600);
    REQUIRE(table.reload());
    CHECK_FALSE(table.current()->check("alice-0123456789abcdef").has_value());
    CHECK(table.current()->check("bob-0123456789abcdef") == Access::read_only);
    // A list handed out before stays whole for whoever holds it.
    CHECK(before->check("alice-0123456789abcdef") == Access::read_write);

    write_token_file(root, "bob-0123456789abcdef ro\nbob-0123456789abcdef rw\n", 0600);
    auto bad = table.reload();
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("line 1") != std::string::npos);
    CHECK(table.current()->check("bob-0123456789abcdef") == Access::read_only);
}

TEST_CASE("a token file another user may write, by its group, an ACL or as its owner, is refused")
{
    TempRoot root;
    const std::string text = "alice-0123456789abcdef rw\n";
    // Group write, with or without read: the group could add a token of its own.
    for (mode_t mode : {0620, 0660, 0670}) {
        CAPTURE(mode);
        auto loaded = AccessList::load(write_token_file(root, text, mode));
        REQUIRE_FALSE(loaded);
        CHECK(loaded.error().message.find("its group may write it") != std::string::npos);
        CHECK(loaded.error().message.find("read") == std::string::npos);
    }
    // An ACL entry that gives another user write (the mode then shows the mask).
    const std::string acl_file = write_token_file(root, text, 0600);
    acl_t acl = acl_from_text("u::rw-,u:1234:rw-,g::---,m::rw-,o::---");
    REQUIRE(acl != nullptr);
    REQUIRE(acl_set_file(acl_file.c_str(), ACL_TYPE_ACCESS, acl) == 0);
    acl_free(acl);
    auto with_acl = AccessList::load(acl_file);
    REQUIRE_FALSE(with_acl);
    CHECK(with_acl.error().message.find("ACL") != std::string::npos);
    // Another user's file, mode 0600: its owner may rewrite it.
    const std::string owned = write_token_file(root, text, 0600);
    REQUIRE(::chown(owned.c_str(), 1234, 1234) == 0);
    auto others = AccessList::load(owned);
    REQUIRE_FALSE(others);
    CHECK(others.error().message.find("belongs to uid 1234") != std::string::npos);
}

TEST_CASE("a token file in a folder others may write is refused, unless the folder is sticky")
{
    TempRoot root;
    const std::string folder = root.path() + "/etc";
    REQUIRE(::mkdir(folder.c_str(), 0700) == 0);
    const std::string path = folder + "/tokens";
    std::ofstream(path) << "alice-0123456789abcdef rw\n";
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    REQUIRE(AccessList::load(path));

    REQUIRE(::chmod(folder.c_str(), 0770) == 0);
    auto group_folder = AccessList::load(path);
    REQUIRE_FALSE(group_folder);
    CHECK(group_folder.error().message.find("mode 770") != std::string::npos);
    // Sticky (as /tmp): others may add names, not rename or remove ours.
    REQUIRE(::chmod(folder.c_str(), 01777) == 0);
    CHECK(AccessList::load(path));

    REQUIRE(::chmod(folder.c_str(), 0755) == 0);
    REQUIRE(::chown(folder.c_str(), 1234, 1234) == 0);
    auto owned_folder = AccessList::load(path);
    REQUIRE_FALSE(owned_folder);
    CHECK(owned_folder.error().message.find("belongs to uid 1234") != std::string::npos);
}

TEST_CASE("a token file others may read is warned about as a leak, in words about reading")
{
    TempRoot root;
    for (mode_t mode : {0640, 0604}) {
        CAPTURE(mode);
        auto readable = AccessList::load(write_token_file(root, "alice-0123456789abcdef rw\n", mode));
        REQUIRE(readable);
        REQUIRE(readable->warnings().size() == 1);
        CHECK(readable->warnings()[0].find("may read it") != std::string::npos);
        CHECK(readable->warnings()[0].find("write") == std::string::npos);
    }
    // Execute bits grant nothing here.
    auto executable = AccessList::load(write_token_file(root, "alice-0123456789abcdef rw\n", 0710));
    REQUIRE(executable);
    CHECK(executable->warnings().empty());
}

TEST_CASE("a FIFO or a folder at the token file's path is refused at once, not waited on")
{
    TempRoot root;
    const std::string fifo = root.path() + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // A load that waits for a writer (as before) is freed after 3 s by one,
    // so that the test ends either way; the load must not have waited.
    std::atomic<bool> done{false};
    std::thread writer([&] {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (!done && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        while (!done) { // ENXIO until a reader waits in open
            const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
            if (fd >= 0) {
                ::close(fd);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    const auto started = std::chrono::steady_clock::now();
    auto loaded = AccessList::load(fifo);
    const auto waited = std::chrono::steady_clock::now() - started;
    done = true;
    writer.join();
    // Below the writer's 3 s, with room for a loaded machine: a load that
    // opened the FIFO would have waited for the writer.
    CHECK(waited < std::chrono::milliseconds(2500));
    REQUIRE_FALSE(loaded);
    CHECK(loaded.error().message.find("not a regular file (it is a FIFO)") != std::string::npos);
    auto folder = AccessList::load(root.path());
    REQUIRE_FALSE(folder);
    CHECK(folder.error().message.find("it is a folder") != std::string::npos);
}

TEST_CASE("a token is counted in characters and holds only visible ones; anything else names its line")
{
    // Sixteen characters of two bytes each: a token. Eight (16 bytes): not.
    std::string e16;
    for (int i = 0; i < 16; ++i) {
        e16 += "\xC3\xA9";
    }
    CHECK(AccessList::parse(e16 + " rw\n"));
    CHECK(AccessList::parse("\xD0\xBF\xD0\xB0\xD1\x80\xD0\xBE\xD0\xBB\xD1\x8C-0123456789 ro # Cyrillic\n"));
    const auto refused = [](const std::string& text, const std::string& line, const std::string& why) {
        CAPTURE(text);
        auto list = AccessList::parse(text);
        REQUIRE_FALSE(list);
        CHECK(list.error().code == ErrorCode::bad_request);
        CHECK(list.error().message.find(line) != std::string::npos);
        CHECK(list.error().message.find(why) != std::string::npos);
    };
    refused("ok-0123456789abcdef rw\n" + e16.substr(0, 16) + " rw\n", "line 2", "this one has 8");
    // A byte order mark would become part of the first token.
    refused("\xEF\xBB\xBF" "alice-0123456789abcdef rw\n", "line 1", "byte order mark");
    refused("\xEF\xBB\xBF# tokens\nalice-0123456789abcdef rw\n", "line 1", "byte order mark");
    // Not UTF-8, or a NUL: no hello could ever carry it.
    refused("ok-0123456789abcdef rw\nTTTTTTTT\xFFTTTTTTTTTT rw\n", "line 2", "byte 9 is not UTF-8");
    refused("ok-0123456789abcdef rw # caf\xE9\n", "line 1", "not UTF-8");
    refused(std::string("TTTTTTTT\0TTTTTTTTTT rw\n", 23), "line 1", "NUL");
    // Invisible or blank characters inside a token.
    refused("TTTTTTTT\xC2\xA0TTTTTTTTTT rw\n", "line 1", "character 9 is U+00A0, a space or separator");
    refused("TTTTTTTT\x1BTTTTTTTTTT rw\n", "line 1", "byte 9 is the control character U+001B");
    refused("TTTTTTTT\vTTTTTTTTTT rw\n", "line 1", "U+000B");
    refused("ok-0123456789abcdef rw # a \x1B[2J comment\n", "line 1", "U+001B");
    // Tabs separate words, and CRLF lines are read as lines.
    CHECK(AccessList::parse("\tok-0123456789abcdef\trw\tlabel\r\nok2-0123456789abcdef ro\r\n"));
    refused("TTTTTTTT\xE2\x80\x8BTTTTTTTTTT rw\n", "line 1", "U+200B, an invisible format character");
    refused("TTTTTTTT\xE2\x80\xAETTTTTTTTTT rw\n", "line 1", "U+202E");
    refused("TTTTTTTT\xEE\x80\x80TTTTTTTTTT rw\n", "line 1", "private-use");
    // The token itself is never echoed.
    auto quiet = AccessList::parse("secret-secret-secret\x7F rw\n");
    REQUIRE_FALSE(quiet);
    CHECK(quiet.error().message.find("secret") == std::string::npos);
}
