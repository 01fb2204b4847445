// list, stat and the errors about names: what the server shows, what it
// refuses, and how the client reports it.
#include "support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace ferry::test;

TEST_CASE("list shows only regular files and folders with valid names, sorted")
{
    Fixture f;
    write_file(f.root_file("b.txt"), "bee");
    write_file(f.root_file("a.txt"), "a");
    write_file(f.root_file("c d.txt"), "sea dee");
    write_file(f.root_file(".dot"), "hidden");
    REQUIRE(::mkdir(f.root_file("sub").c_str(), 0755) == 0);
    write_file(f.root_file("sub/inner.txt"), "inner");
    REQUIRE(::symlink("a.txt", f.root_file("link.txt").c_str()) == 0);
    REQUIRE(::mkfifo(f.root_file("pipe").c_str(), 0644) == 0);
    write_file(f.root_file("bad\xff"), "not utf-8");

    const auto list = run_ferry(f.server.address(), {"--json", "list"});
    const auto json = parse_output(list);
    REQUIRE(list.exit_code == 0);
    REQUIRE(json["files"].is_array());
    std::vector<std::string> names;
    for (const auto& file : json["files"]) {
        names.push_back(file["name"].get<std::string>());
    }
    // Protocol version 2: the root's folders too, with their type.
    CHECK(names == std::vector<std::string>{"a.txt", "b.txt", "c d.txt", "sub"});
    CHECK(json["files"][0]["size"] == 1);
    CHECK(json["files"][1]["size"] == 3);
    CHECK(json["files"][3]["type"] == "folder");
    CHECK(json["skipped_invalid_names"] == 1);

    // People get one line per entry and a note about what was skipped.
    const auto human = run_ferry(f.server.address(), {"list"});
    CHECK(human.exit_code == 0);
    CHECK(std::count(human.out.begin(), human.out.end(), '\n') == 4);
    CHECK(human.out.find("c d.txt") != std::string::npos);
    CHECK(human.out.find("link.txt") == std::string::npos);
    CHECK(human.err.find("1 entry not shown") != std::string::npos);

    // Folders, links and FIFOs exist but are never served as files (the
    // FIFO is never opened, so this cannot hang); a folder can be described.
    for (const char* name : {"sub", "link.txt", "pipe"}) {
        const auto stat = run_ferry(f.server.address(), {"--json", "stat", name});
        if (std::string(name) != "sub") {
            CHECK(error_code(parse_output(stat)) == "not_regular_file");
            CHECK(stat.exit_code == 4);
        }
        const auto get = run_ferry(f.server.address(), {"--json", "get", name, "-o", f.local_file("x")});
        CHECK(error_code(parse_output(get)) == "not_regular_file");
        CHECK_FALSE(exists(f.local_file("x")));
    }
}

TEST_CASE("stat reports size and modification time")
{
    Fixture f;
    write_random_file(f.root_file("report.pdf"), 5120, 9);
    struct stat st {};
    REQUIRE(::stat(f.root_file("report.pdf").c_str(), &st) == 0);

    const auto stat = run_ferry(f.server.address(), {"--json", "stat", "report.pdf"});
    const auto json = parse_output(stat);
    REQUIRE(stat.exit_code == 0);
    CHECK(json["name"] == "report.pdf");
    CHECK(json["size"] == 5120);
    CHECK(json["mtime"] == static_cast<std::int64_t>(st.st_mtime));

    const auto human = run_ferry(f.server.address(), {"stat", "report.pdf"});
    CHECK(human.exit_code == 0);
    CHECK(human.out.find("5120") != std::string::npos);
}

TEST_CASE("get of a missing name fails with not_found and creates nothing")
{
    Fixture f;
    const auto get = run_ferry(f.server.address(), {"--json", "get", "missing.txt", "-o", f.local_file("missing.txt")});
    CHECK(get.exit_code == 4);
    CHECK(error_code(parse_output(get)) == "not_found");
    CHECK(folder_entries(f.local).empty());

    // People read it on stderr, in the one error format.
    const auto human = run_ferry(f.server.address(), {"get", "missing.txt", "-o", f.local_file("missing.txt")});
    CHECK(human.exit_code == 4);
    CHECK(human.out.empty());
    CHECK(human.err.starts_with("ferry: not_found: "));

    const auto stat = run_ferry(f.server.address(), {"--json", "stat", "missing.txt"});
    CHECK(stat.exit_code == 4);
    CHECK(error_code(parse_output(stat)) == "not_found");
}

TEST_CASE("invalid names are refused with invalid_name")
{
    Fixture f;
    write_file(f.local_file("some.txt"), "content");
    // ("a/b" is a path since protocol version 2. The client reads a path
    // the way POSIX does, so "a//b" is "a/b" to it, a missing folder here;
    // the server's refusal of "a//b" on the wire is conformance's test.)
    const auto doubled = run_ferry(f.server.address(), {"--json", "stat", "a//b"});
    CHECK(error_code(parse_output(doubled)) == "not_found");
    for (const std::string name : {".hidden", "..", "back\\slash"}) {
        CAPTURE(name);
        const auto get = run_ferry(f.server.address(), {"--json", "get", name, "-o", f.local_file("out")});
        CHECK(get.exit_code == 4);
        CHECK(error_code(parse_output(get)) == "invalid_name");
        const auto stat = run_ferry(f.server.address(), {"--json", "stat", name});
        CHECK(stat.exit_code == 4);
        CHECK(error_code(parse_output(stat)) == "invalid_name");
        const auto put = run_ferry(f.server.address(), {"--json", "put", f.local_file("some.txt"), "--as", name});
        CHECK(put.exit_code == 4);
        CHECK(error_code(parse_output(put)) == "invalid_name");
    }
    // "a/.." climbs out of a, which is not there (POSIX's ENOENT), so it
    // names nothing, not even the root.
    for (const std::vector<std::string>& words :
         {std::vector<std::string>{"--json", "get", "a/..", "-o", f.local_file("out")},
          std::vector<std::string>{"--json", "stat", "a/.."},
          std::vector<std::string>{"--json", "put", f.local_file("some.txt"), "--as", "a/.."}}) {
        CAPTURE(words[1]);
        const auto refused = run_ferry(f.server.address(), words);
        CHECK(refused.exit_code == 4);
        CHECK(error_code(parse_output(refused)) == "not_found");
    }
    CHECK_FALSE(exists(f.local_file("out")));
    CHECK(folder_entries(f.root).empty());
}
