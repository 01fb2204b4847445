// The token file: its format, and what each token grants.
#include "access.hpp"

#include <doctest/doctest.h>

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
                             "a-long-enough-token-here rw extra\n", "# nothing but comments\n", ""}) {
        CAPTURE(std::string(text));
        auto list = AccessList::parse(text);
        REQUIRE_FALSE(list);
        CHECK(list.error().code == ErrorCode::bad_request);
    }
    CHECK(AccessList::parse("\n\nshort rw\n").error().message.find("line 3") != std::string::npos);
}
