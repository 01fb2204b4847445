// "--name=" with nothing after the '=', for an option that takes a value,
// is refused before CLI11 takes the next word as its value
// (options/empty_values.hpp); a flag written so is left to CLI11.
#include "empty_values.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

using namespace ferry::option_values;
using Words = std::vector<std::string>;

namespace {

// A command line like ferry's: valued options and flags, at the top and in a command.
struct Grammar {
    CLI::App app{"test"};
    std::string token, output;
    bool json = false, quiet = false;
    Grammar()
    {
        app.add_option("-t,--token", token);
        app.add_flag("--json", json);
        auto* get = app.add_subcommand("get");
        get->add_option("-o,--output", output);
        get->add_flag("-q,--quiet", quiet);
    }
};

} // namespace

TEST_CASE("the options with values are found at the top and in every command, flags are not")
{
    Grammar g;
    CHECK(options_with_values(g.app) == std::set<std::string>{"--output", "--token"});
}

TEST_CASE("a valued option written with '=' and nothing after it is the word refused")
{
    Grammar g;
    const auto valued = options_with_values(g.app);
    CHECK(empty_value_after_equals({"--token=", "list"}, valued) == "--token=");
    CHECK(empty_value_after_equals({"get", "x", "--output="}, valued) == "--output=");
    CHECK(empty_value_after_equals({"--token=a", "get", "--output=", "--token="}, valued) == "--output=");
    CHECK_THROWS_AS(refuse_empty_value_after_equals({"--token=", "list"}, valued), CLI::ValidationError);
    try {
        refuse_empty_value_after_equals({"get", "--output=", "x"}, valued);
        FAIL("not refused");
    } catch (const CLI::ValidationError& error) {
        CHECK(std::string(error.what()).starts_with("--output: nothing follows the '='"));
        CHECK(std::string(error.what()).find("--output \"\"") != std::string::npos);
    }
}

TEST_CASE("flags, values, unknown names and operands after -- pass")
{
    Grammar g;
    const auto valued = options_with_values(g.app);
    for (const Words& words : {Words{"--json=", "get", "--quiet="}, Words{"--token=x", "--token", "", "--t=a="},
                               Words{"--=", "-o=", "-", "=", "--output==", ""}, Words{"--nope="},
                               Words{"get", "--", "--output=", "--token="}, Words{}}) {
        CAPTURE(words.size());
        CHECK(empty_value_after_equals(words, valued).empty());
        CHECK_NOTHROW(refuse_empty_value_after_equals(words, valued));
    }
}
