// A long option written "--name=" with nothing after the '=' is refused
// before CLI11 reads it (options/empty_values.hpp): one that takes a value
// would take the next word as its value, a flag would be given.
#include "empty_values.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace ferry::option_values;
using Words = std::vector<std::string>;

namespace {

// A command line like ferry's: valued options and flags, at the top and in a command.
struct Grammar {
    CLI::App app{"test"};
    std::string token, output;
    bool json = false, quiet = false, remove = false;
    Grammar()
    {
        app.add_option("-t,--token", token);
        app.add_flag("--json", json);
        auto* get = app.add_subcommand("get");
        get->add_option("-o,--output", output);
        get->add_flag("-q,--quiet", quiet);
        auto* sync = app.add_subcommand("sync");
        sync->add_flag("--delete", remove);
    }
};

std::string refusal(const Words& words, const std::map<std::string, OptionKind>& options)
{
    try {
        refuse_empty_value_after_equals(words, options);
    } catch (const CLI::ValidationError& error) {
        return error.what();
    }
    return {};
}

} // namespace

TEST_CASE("the options of the program and of every command, long and short, each flag or valued")
{
    Grammar g;
    CHECK(options_of(g.app) == std::map<std::string, OptionKind>{{"--delete", OptionKind::flag},
                                                                 {"--help", OptionKind::flag}, // CLI11's
                                                                 {"--json", OptionKind::flag},
                                                                 {"--output", OptionKind::valued},
                                                                 {"--quiet", OptionKind::flag},
                                                                 {"--token", OptionKind::valued},
                                                                 {"-h", OptionKind::flag},
                                                                 {"-o", OptionKind::valued},
                                                                 {"-q", OptionKind::flag},
                                                                 {"-t", OptionKind::valued}});
}

TEST_CASE("a known long option written with '=' and nothing after it is the word refused")
{
    Grammar g;
    const auto options = options_of(g.app);
    CHECK(empty_value_after_equals({"--token=", "list"}, options) == "--token=");
    CHECK(empty_value_after_equals({"get", "x", "--output="}, options) == "--output=");
    CHECK(empty_value_after_equals({"sync", "--delete=", "a", ":b"}, options) == "--delete=");
    CHECK(empty_value_after_equals({"--token=a", "get", "-q", "--quiet=", "--token="}, options) == "--quiet=");
    // "--" as an option's value is no end of the options, as CLI11 reads it.
    CHECK(empty_value_after_equals({"--token", "--", "--output=", "list"}, options) == "--output=");
    CHECK(empty_value_after_equals({"get", "-o", "--", "--token="}, options) == "--token=");
    CHECK(refusal({"--token=", "list"}, options) ==
          "--token: nothing follows the '=' (a variable left unset?): give it a value");
    CHECK(refusal({"sync", "--delete="}, options) == "--delete: nothing follows the '=' (a variable left unset?): "
                                                     "write the flag alone, or --delete=true or --delete=false");
}

TEST_CASE("values, flags given a value, unknown names and operands after -- pass")
{
    Grammar g;
    const auto options = options_of(g.app);
    for (const Words& words :
         {Words{"--json=true", "sync", "--delete=false"}, Words{"--token=x", "--token", "", "--token=a="},
          Words{"--=", "-o=", "-", "=", "--output==", ""}, Words{"--nope="},
          Words{"get", "--", "--output=", "--token="}, Words{"--json", "--", "--token="},
          Words{"get", "-o", "x", "--", "--output="}, Words{}}) {
        CAPTURE(words.size());
        CHECK(empty_value_after_equals(words, options).empty());
        CHECK(refusal(words, options).empty());
    }
}
