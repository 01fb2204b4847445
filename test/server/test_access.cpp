// The token file: its format, and what each token grants.
#include "access.hpp"
#include "temp_root.hpp"

#include <unistd.h>

#include <doctest/doctest.h>

#include <fstream>

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

TEST_CASE("a token file others may write is refused; one others may read is warned about")
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
    auto group_writable = AccessList::load(write_token_file(root, text, 0660));
    REQUIRE(group_writable);
    CHECK(group_writable->warnings().size() == 1);

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
