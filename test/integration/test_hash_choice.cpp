// --hash xxh3-128: both directions checked with XXH3 (the digest equals
// what the protocol library computes, i.e. xxh128sum), resume that switches
// hash, and the choice reported in --json under the hash's name.
#include "support.hpp"
#include "transfer_hash.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

using namespace ferry::test;

namespace {

std::string xxh3_of_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ferry::TransferHash hash(ferry::HashKind::xxh3_128);
    hash.update(bytes.data(), bytes.size());
    return hash.hex_digest();
}

} // namespace

TEST_CASE("put and get with --hash xxh3-128 are verified with XXH3 and say so")
{
    Fixture f;
    write_random_file(f.local_file("data.bin"), 3 * 1024 * 1024 + 17, 41);
    const std::string expected = xxh3_of_file(f.local_file("data.bin"));

    const auto put = run_ferry(f.server.address(), {"--json", "--hash", "xxh3-128", "put", f.local_file("data.bin")});
    REQUIRE(put.exit_code == 0);
    const auto put_json = only_file(parse_output(put));
    CHECK(put_json["digest"]["value"] == expected);
    CHECK(put_json["digest"]["algorithm"] == "xxh3-128");
    CHECK(files_equal(f.local_file("data.bin"), f.root_file("data.bin")));

    const auto get = run_ferry(f.server.address(),
                               {"--json", "--hash", "xxh3-128", "get", "data.bin", "-o", f.local_file("back.bin")});
    REQUIRE(get.exit_code == 0);
    CHECK(only_file(parse_output(get))["digest"] == nlohmann::json{{"algorithm", "xxh3-128"}, {"value", expected}});
    CHECK(files_equal(f.root_file("data.bin"), f.local_file("back.bin")));

    // The default stays SHA-256.
    const auto plain = run_ferry(f.server.address(), {"--json", "get", "data.bin", "-o", f.local_file("again.bin")});
    REQUIRE(plain.exit_code == 0);
    CHECK(only_file(parse_output(plain))["digest"] ==
          nlohmann::json{{"algorithm", "sha256"}, {"value", sha256_of_file(f.root_file("data.bin"))}});
}

TEST_CASE("FERRY_HASH picks the hash; an unknown one is a usage error")
{
    Fixture f;
    write_random_file(f.root_file("a.bin"), 100'000, 42);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "a.bin", "-o", f.local_file("a.bin")},
                               kFerryTimeout, {"FERRY_HASH=xxh3-128"});
    REQUIRE(get.exit_code == 0);
    CHECK(only_file(parse_output(get))["digest"]["value"] == xxh3_of_file(f.root_file("a.bin")));
    const auto bad = run_ferry(f.server.address(), {"--json", "--hash", "md5", "list"});
    CHECK(bad.exit_code == 2);
}
