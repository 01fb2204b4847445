// put then get of files of every interesting size: the bytes and SHA-256
// that come back are the ones that went out, and nothing is left behind.
#include "support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace ferry::test;

namespace {

void round_trip(std::uint64_t size, std::uint64_t seed)
{
    Fixture f;
    const std::string source = f.local_file("source.bin");
    write_random_file(source, size, seed);
    const std::string expected = sha256_of_file(source);

    const auto put = run_ferry(f.server.address(), {"--json", "put", source, "--as", "file.bin"});
    const auto put_json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(put_json["name"] == "file.bin");
    CHECK(put_json["size"] == size);
    CHECK(put_json["digest"]["value"] == expected);
    CHECK(put_json["resumed_from"] == 0);
    CHECK(files_equal(source, f.root_file("file.bin")));
    CHECK(partial_uploads(f.root).empty());

    const std::string dest = f.local_file("copy.bin");
    const auto get = run_ferry(f.server.address(), {"--json", "get", "file.bin", "-o", dest});
    const auto get_json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(get_json["name"] == "file.bin");
    CHECK(get_json["local"] == dest);
    CHECK(get_json["size"] == size);
    CHECK(get_json["digest"]["value"] == expected);
    CHECK(get_json["resumed_from"] == 0);
    CHECK(files_equal(source, dest));
    CHECK(sha256_of_file(dest) == expected);
    CHECK_FALSE(exists(dest + ".ferry-part"));
    CHECK_FALSE(exists(dest + ".ferry-part.state"));
}

} // namespace

TEST_CASE("round trip of an empty file")
{
    round_trip(0, 1);
}

TEST_CASE("round trip of a 1-byte file")
{
    round_trip(1, 2);
}

TEST_CASE("round trip of 1 MiB + 1 bytes")
{
    round_trip(1024 * 1024 + 1, 3);
}

TEST_CASE("round trip of 200 MiB")
{
    round_trip(200ULL * 1024 * 1024, 4);
}

TEST_CASE("get writes ./NAME by default, NAME inside a folder given as -o, and into -C DIR")
{
    Fixture f;
    write_random_file(f.root_file("data.bin"), 12345, 5);

    ChildProcess::Options in_local;
    in_local.cwd = f.local;
    const auto plain = run_ferry_with({"--server", f.server.address(), "--json", "get", "data.bin"}, in_local);
    const auto plain_json = only_file(parse_output(plain));
    CHECK(plain.exit_code == 0);
    CHECK(plain_json["local"] == "data.bin");
    CHECK(files_equal(f.root_file("data.bin"), f.local_file("data.bin")));

    const auto into = run_ferry(f.server.address(), {"--json", "get", "data.bin", "-o", f.dir / ""});
    const auto into_json = parse_output(into);
    CHECK(into.exit_code == 0);
    CHECK(files_equal(f.root_file("data.bin"), f.dir / "data.bin"));

    const std::string folder = f.dir / "elsewhere";
    REQUIRE(::mkdir(folder.c_str(), 0755) == 0);
    const auto into_folder = run_ferry(f.server.address(), {"--json", "get", "-C", folder, "data.bin"});
    const auto into_folder_json = only_file(parse_output(into_folder));
    CHECK(into_folder.exit_code == 0);
    CHECK(into_folder_json["local"] == folder + "/data.bin");
    CHECK(files_equal(f.root_file("data.bin"), folder + "/data.bin"));

    // put's NAME defaults to the local file's last component.
    write_random_file(f.local_file("upload.bin"), 777, 6);
    const auto put = run_ferry(f.server.address(), {"--json", "put", f.local_file("upload.bin")});
    const auto put_json = only_file(parse_output(put));
    CHECK(put.exit_code == 0);
    CHECK(put_json["name"] == "upload.bin");
    CHECK(files_equal(f.local_file("upload.bin"), f.root_file("upload.bin")));
}

TEST_CASE("put replaces an existing file")
{
    Fixture f;
    write_random_file(f.root_file("doc.bin"), 5000, 7);
    write_random_file(f.local_file("doc.bin"), 3000, 8);
    const auto put = run_ferry(f.server.address(), {"--json", "put", f.local_file("doc.bin")});
    parse_output(put);
    CHECK(put.exit_code == 0);
    CHECK(files_equal(f.local_file("doc.bin"), f.root_file("doc.bin")));
}
