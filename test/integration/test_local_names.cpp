// A local name that is not valid UTF-8 cannot travel as a JSON string: the
// client refuses it (invalid_name, with a hint to rename it with --as)
// before any byte is sent, instead of replacing its bytes with U+FFFD and
// so merging distinct files under one server name.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace ferry::test;

TEST_CASE("put of a local name that is not UTF-8 is refused before anything is sent; --as sends it")
{
    Fixture f;
    const std::string latin1_e_acute = f.local_file("caf\xe9.txt");
    const std::string latin1_e_grave = f.local_file("caf\xe8.txt");
    write_file(latin1_e_acute, "first");
    write_file(latin1_e_grave, "second");

    for (const auto& local : {latin1_e_acute, latin1_e_grave}) {
        const auto put = run_ferry(f.server.address(), {"--json", "put", local});
        CHECK(put.exit_code == 4); // invalid_name: a usage-class failure (exit status table)
        const auto json = parse_output(put);
        CHECK(error_code(json) == "invalid_name");
        CHECK(json.dump().find("--as NAME") != std::string::npos);
    }
    CHECK(folder_entries(f.root).empty());

    // Several at once: each refused alone, the valid one still sent.
    write_file(f.local_file("plain.txt"), "plain");
    const auto several =
        run_ferry(f.server.address(), {"--json", "put", latin1_e_acute, f.local_file("plain.txt"), latin1_e_grave});
    CHECK(several.exit_code != 0);
    CHECK(folder_entries(f.root) == std::vector<std::string>{"plain.txt"});

    const auto renamed = run_ferry(f.server.address(), {"--json", "put", latin1_e_acute, "--as", "caf\xc3\xa9.txt"});
    CHECK(renamed.exit_code == 0);
    CHECK(read_file(f.root_file("caf\xc3\xa9.txt")) == "first");
}

TEST_CASE("no request carries a name whose bytes would have to be replaced")
{
    Fixture f;
    write_file(f.root_file("caf\xef\xbf\xbd.txt"), "the replacement character is a valid name");
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--json", "stat", "caf\xe9.txt"},
          std::vector<std::string>{"--json", "get", "caf\xe9.txt", "-o", f.local_file("out.txt")}}) {
        const auto result = run_ferry(f.server.address(), args);
        CHECK(result.exit_code == 4);
        CHECK(error_code(parse_output(result)) == "invalid_name");
    }
    CHECK_FALSE(exists(f.local_file("out.txt")));
}
