// The rules every listing from a server is held to (PROTOCOL.md 4.2 and 5),
// checked once per entry by the client whatever the command: the table of
// what passes and what is the server's protocol error.
#include "listing_check.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using ferry::EntryType;
using ferry::FileInfo;
using ferry::ListingCheck;

namespace {

FileInfo file(std::string name)
{
    return FileInfo{std::move(name), 3, 1764370000, EntryType::file};
}

FileInfo folder(std::string name)
{
    return FileInfo{std::move(name), 0, 1764370000, EntryType::folder};
}

// The message of the first entry refused, or "" when all pass.
std::string first_refusal(ListingCheck check, const std::vector<FileInfo>& entries)
{
    for (const auto& entry : entries) {
        if (auto refused = check.entry(entry)) {
            return refused->message;
        }
    }
    return "";
}

} // namespace

TEST_CASE("a one-folder listing holds names, each once")
{
    const ListingCheck flat("d", false);
    CHECK(first_refusal(flat, {file("a"), folder("b"), file("café.txt")}).empty());
    const std::vector<std::string> refused_names{"",       ".",         "..",      "../x",       "/tmp/x",
                                                 "a/b",    "a\\b",     ".hidden", "a\x1b[31m", std::string(256, 'x'),
                                                 "rtl\u202etxt"};
    for (const auto& bad : refused_names) {
        CAPTURE(bad);
        const auto refused = first_refusal(flat, {file("ok"), file(bad)});
        CHECK(refused.starts_with("the entry "));
    }
    CHECK(first_refusal(flat, {file("x"), file("x")}) == "the entry \"x\": it was listed twice");
    CHECK(first_refusal(flat, {folder("y"), file("y")}) == "the entry \"y\": it was listed twice");
}

TEST_CASE("a recursive listing holds paths, each below a folder listed before it")
{
    const ListingCheck deep("d", true);
    CHECK(first_refusal(deep, {folder("a"), file("a/x"), folder("a/b"), file("a/b/y"), file("z")}).empty());
    CHECK(first_refusal(deep, {file("f"), file("f/g")}) ==
          "the entry \"f/g\": its folder \"f\" was not listed as a folder before it");
    CHECK(first_refusal(deep, {file("n/o/p")}).find("\"n/o\" was not listed") != std::string::npos);
    CHECK(first_refusal(deep, {file("late/x"), folder("late")}).find("\"late/x\"") != std::string::npos);
    for (const std::string& bad : std::vector<std::string>{"", "a/../../x", "a//b", "a/", "/a", "a/.h", "./a"}) {
        CAPTURE(bad);
        CHECK(first_refusal(deep, {folder("a"), file(bad)}).starts_with("the entry "));
    }
    CHECK(first_refusal(deep, {folder("a"), file("a/x"), file("a/x")}) == "the entry \"a/x\": it was listed twice");
}

TEST_CASE("an entry's path from the root keeps within 5.1's bounds")
{
    std::string deep_path = "p";
    for (int i = 1; i < 64; ++i) {
        deep_path += "/p";
    }
    // 64 components below the root are fine; below "d" they are 65.
    CHECK_FALSE(ListingCheck("", false).entry(file("ok")));
    ListingCheck at_root("", true);
    ListingCheck below("d", true);
    std::string path;
    for (int i = 0; i < 63; ++i) {
        path += (i == 0 ? "p" : "/p");
        REQUIRE_FALSE(at_root.entry(folder(path)));
        REQUIRE_FALSE(below.entry(folder(path)));
    }
    CHECK_FALSE(at_root.entry(file(deep_path)));
    CHECK(below.entry(file(deep_path)));
}

TEST_CASE("holding_unlisted names the listed folder or a folder the listing gave")
{
    ListingCheck deep("d", true);
    REQUIRE_FALSE(deep.entry(folder("a")));
    REQUIRE_FALSE(deep.entry(file("f")));
    CHECK_FALSE(deep.holding(""));
    CHECK_FALSE(deep.holding("a"));
    CHECK(deep.holding("f"));
    CHECK(deep.holding("never"));
    CHECK(deep.holding("../up"));
    ListingCheck flat("d", false);
    REQUIRE_FALSE(flat.entry(folder("a")));
    CHECK_FALSE(flat.holding(""));
}

TEST_CASE("unreadable_folders names the listed folder or a folder the listing gave, and counts as an entry")
{
    ListingCheck deep("d", true);
    REQUIRE_FALSE(deep.entry(folder("a")));
    REQUIRE_FALSE(deep.entry(file("f")));
    CHECK(deep.unreadable("f"));
    CHECK(deep.unreadable("never"));
    CHECK(deep.unreadable("../up"));
    const auto named = deep.unreadable("nope");
    REQUIRE(named);
    CHECK(named->message.find("\"unreadable_folders\" names \"nope\"") != std::string::npos);
    ListingCheck counted("d", true, ferry::ListingLimits{3, 1000});
    REQUIRE_FALSE(counted.entry(folder("a")));
    CHECK_FALSE(counted.unreadable(""));
    CHECK_FALSE(counted.unreadable("a"));
    CHECK(counted.unreadable("a")); // the fourth item
}

TEST_CASE("a listing past the client's limits is refused, however valid its entries")
{
    // A server sending endless pages of new names (each page progress) would
    // otherwise grow the client's memory without bound.
    ListingCheck counted("d", false, ferry::ListingLimits{3, 1000});
    CHECK(first_refusal(counted, {file("a"), file("b"), file("c")}).empty());
    CHECK(first_refusal(counted, {file("a"), file("b"), file("c"), file("e")}).find("more than 3 entries") !=
          std::string::npos);

    ListingCheck holding("d", true, ferry::ListingLimits{3, 1000});
    CHECK_FALSE(holding.entry(folder("a")));
    CHECK_FALSE(holding.holding(""));
    CHECK_FALSE(holding.holding("a"));
    CHECK(holding.holding("")); // the fourth item: "holding_unlisted" counts too

    ListingCheck bytes("d", false, ferry::ListingLimits{100, 5});
    CHECK(first_refusal(bytes, {file("abc"), file("de")}).empty());
    CHECK(first_refusal(bytes, {file("abc"), file("def")}).find("more than 5 bytes") != std::string::npos);

    // The defaults let a real tree of millions of files list.
    CHECK(ferry::ListingLimits{}.entries >= 5'000'000);
}
