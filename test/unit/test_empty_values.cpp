// "--name=" reaches CLI11 as the option and an empty value, as GNU
// getopt_long(3) reads it, never as the option alone (which takes the next
// word): options/empty_values.hpp.
#include "empty_values.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using ferry::option_values::with_empty_values_spelled_out;
using Words = std::vector<std::string>;

TEST_CASE("a long option written with '=' and nothing after it has an empty value")
{
    CHECK(with_empty_values_spelled_out({"--token=", "list"}) == Words{"--token", "", "list"});
    CHECK(with_empty_values_spelled_out({"get", "--output=", "a"}) == Words{"get", "--output", "", "a"});
    CHECK(with_empty_values_spelled_out({"--a=", "--b="}) == Words{"--a", "", "--b", ""});
}

TEST_CASE("every other word is left as it is")
{
    const Words kept{"--token=x", "--token", "x", "--t=a=", "--=", "-o=", "-", "list", "=", "--x==", ""};
    CHECK(with_empty_values_spelled_out(kept) == kept);
    CHECK(with_empty_values_spelled_out({}) == Words{});
}

TEST_CASE("after a bare -- every word is an operand")
{
    CHECK(with_empty_values_spelled_out({"--hash=", "put", "--", "--x=", "--"}) ==
          Words{"--hash", "", "put", "--", "--x=", "--"});
}
