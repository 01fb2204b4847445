// Several files in one command over one connection: the JSON summary, a
// missing name that fails alone, put of several files, -o - on standard
// output, and `ferry stats` counting exactly what these commands did.
#include "support.hpp"

#include "descriptors.hpp"
#include "local_files.hpp"
#include "publish_batch.hpp"
#include "transfers.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace ferry::test;

TEST_CASE("get of several files: each arrives, one summary object counts them")
{
    Fixture f;
    const std::vector<std::uint64_t> sizes{0, 1, 300'000, 5 * 1024 * 1024 + 3, 70'000};
    std::vector<std::string> args{"--json", "get", "-C", f.local};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::string name = "file-" + std::to_string(i) + ".bin";
        write_random_file(f.root_file(name), sizes[i], 100 + i);
        args.push_back(name);
        total += sizes[i];
    }
    const auto get = run_ferry(f.server.address(), args);
    const auto json = parse_output(get);
    REQUIRE(get.exit_code == 0);
    CHECK(json["summary"]["ok"] == sizes.size());
    CHECK(json["summary"]["failed"] == 0);
    CHECK(json["summary"]["bytes"] == total);
    CHECK(json["summary"]["seconds"].is_number());
    CHECK(json["summary"]["bytes_per_second"].is_number());
    REQUIRE(json["files"].size() == sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const std::string name = "file-" + std::to_string(i) + ".bin";
        CAPTURE(name);
        const auto& entry = json["files"][i]; // in the order asked
        CHECK(entry["name"] == name);
        CHECK(entry["local"] == f.local + "/" + name);
        CHECK(entry["size"] == sizes[i]);
        CHECK(entry["digest"]["value"] == sha256_of_file(f.root_file(name)));
        CHECK(files_equal(f.root_file(name), f.local_file(name)));
    }
    // One connection for the whole command (and one for the question).
    const auto stats = parse_output(run_ferry(f.server.address(), {"--json", "stats"}));
    CHECK(stats["connections"]["total"] == 2);
}

TEST_CASE("a missing name fails alone: the others arrive, the exit status is 1")
{
    Fixture f;
    write_random_file(f.root_file("a.bin"), 200'000, 1);
    write_random_file(f.root_file("c.bin"), 300'000, 3);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "a.bin", "b.bin", "c.bin", "-C", f.local});
    const auto json = parse_output(get);
    CHECK(get.exit_code == 4);
    CHECK(json["summary"]["ok"] == 2);
    CHECK(json["summary"]["failed"] == 1);
    CHECK(json["summary"]["bytes"] == 500'000);
    CHECK(error_code(json) == "not_found");
    REQUIRE(json["files"].size() == 3);
    CHECK(json["files"][1]["name"] == "b.bin");
    CHECK(json["files"][1]["error"]["code"] == "not_found");
    CHECK_FALSE(json["files"][0].contains("error"));
    CHECK_FALSE(json["files"][2].contains("error"));
    CHECK(files_equal(f.root_file("a.bin"), f.local_file("a.bin")));
    CHECK(files_equal(f.root_file("c.bin"), f.local_file("c.bin")));
    CHECK_FALSE(exists(f.local_file("b.bin")));
    CHECK_FALSE(exists(f.local_file("b.bin.ferry-part")));

    // For people: a line per file, the error naming its file once, and a summary.
    const auto human = run_ferry(f.server.address(), {"get", "a.bin", "b.bin", "c.bin", "-C", f.dir.path()});
    CHECK(human.exit_code == 4);
    CHECK(human.err.find("ferry: not_found: no file named \"b.bin\"\n") != std::string::npos);
    CHECK(human.out.find("3 files: 2 received, 1 failed") != std::string::npos);
}

TEST_CASE("put of several files keeps their names; one unreadable file fails alone")
{
    Fixture f;
    std::vector<std::string> args{"--json", "put"};
    for (int i = 0; i < 4; ++i) {
        const std::string local = f.local_file("day-" + std::to_string(i) + ".log");
        write_random_file(local, 100'000 * static_cast<std::uint64_t>(i) + 5, 200 + static_cast<std::uint64_t>(i));
        args.push_back(local);
    }
    args.insert(args.begin() + 3, f.local_file("missing.log"));
    const auto put = run_ferry(f.server.address(), args);
    const auto json = parse_output(put);
    CHECK(put.exit_code == 3);
    CHECK(json["summary"]["ok"] == 4);
    CHECK(json["summary"]["failed"] == 1);
    REQUIRE(json["files"].size() == 5);
    CHECK(json["files"][1]["error"]["code"] == "local_io");
    for (int i = 0; i < 4; ++i) {
        const std::string name = "day-" + std::to_string(i) + ".log";
        CAPTURE(name);
        CHECK(files_equal(f.local_file(name), f.root_file(name)));
    }
    CHECK(partial_uploads(f.root).empty());

    const auto again =
        run_ferry(f.server.address(), {"--json", "put", f.local_file("day-1.log"), f.local_file("day-2.log")});
    const auto again_json = parse_output(again);
    CHECK(again.exit_code == 0);
    CHECK(again_json["summary"]["ok"] == 2);
    CHECK(again_json["files"][0]["local"] == f.local_file("day-1.log"));
}

TEST_CASE("get -o - writes the file to standard output, byte-exact and verified")
{
    Fixture f;
    write_random_file(f.root_file("stream.bin"), 4 * 1024 * 1024 + 11, 77);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "stream.bin", "-o", "-"});
    CHECK(get.exit_code == 0);
    CHECK(get.out == read_file(f.root_file("stream.bin")));
    // The result goes to stderr, out of the data's way.
    CHECK(get.err.find(sha256_of_file(f.root_file("stream.bin"))) != std::string::npos);
    CHECK(folder_entries(f.local).empty());

    const auto missing = run_ferry(f.server.address(), {"get", "nope.bin", "-o", "-"});
    CHECK(missing.exit_code == 4);
    CHECK(missing.out.empty());
    CHECK(missing.err.starts_with("ferry: not_found: "));
}

TEST_CASE("ferry stats counts what was done")
{
    Fixture f;
    write_random_file(f.root_file("one.bin"), 123'456, 1);
    write_random_file(f.local_file("up.bin"), 65'432, 2);
    parse_output(run_ferry(f.server.address(), {"--json", "put", f.local_file("up.bin")}));
    parse_output(run_ferry(f.server.address(), {"--json", "get", "one.bin", "nope.bin", "up.bin", "-C", f.local}));
    const auto stats = run_ferry(f.server.address(), {"--json", "stats"});
    const auto json = parse_output(stats);
    REQUIRE(stats.exit_code == 0);
    CHECK(json["connections"]["total"] == 3);
    CHECK(json["connections"]["now"] >= 1);
    CHECK(json["transfers"]["total"] == 3); // the missing name never started
    CHECK(json["transfers"]["now"] == 0);
    CHECK(json["bytes"]["in"] == 65'432);
    CHECK(json["bytes"]["out"] == 123'456 + 65'432);
    CHECK(json["errors"] == nlohmann::json{{"not_found", 1}});
    CHECK(json["uptime_seconds"].is_number_unsigned());

    const auto human = run_ferry(f.server.address(), {"stats"});
    CHECK(human.exit_code == 0);
    CHECK(human.out.find("connections:  ") != std::string::npos);
    CHECK(human.out.find("not_found 1") != std::string::npos);
}

TEST_CASE("a command's descriptor shares fit its limit, and keep the usual bounds where it is roomy")
{
    using ferry::client::descriptor_shares;
    using ferry::client::kReservedDescriptors;
    // What the shares may hold at once (descriptors.cpp's costs): each
    // connection 4 and its gets' folders, each batch file 4, each kept folder 1.
    for (std::size_t limit = 12; limit <= 4096; ++limit) {
        for (const std::size_t jobs : {1, 8, 64}) {
            const auto shares = descriptor_shares(limit, jobs);
            CAPTURE(limit);
            CAPTURE(jobs);
            CHECK(shares.connections >= 1);
            CHECK(shares.connections <= jobs);
            CHECK(shares.gets_in_flight >= 1);
            CHECK(shares.publish_files >= 1);
            CHECK(shares.held_folders >= 1);
            const std::size_t held = shares.connections * (4 + shares.gets_in_flight) + 4 * shares.publish_files +
                                     shares.held_folders;
            if (limit >= 16) {
                CHECK(held <= limit - kReservedDescriptors);
            }
            // A local walk runs before the transfers, beside the connections:
            // its folders (and the one it reads through a dup) whatever the depth.
            CHECK(shares.walk_folders >= 3);
            if (limit >= 16) {
                CHECK(shares.connections * (4 + shares.gets_in_flight) + shares.walk_folders + 1 <=
                      limit - kReservedDescriptors);
            }
        }
    }
    const auto roomy = descriptor_shares(1 << 20, 8);
    CHECK(roomy.connections == 8);
    CHECK(roomy.gets_in_flight == ferry::client::kGetsInFlight);
    CHECK(roomy.publish_files == ferry::client::kPublishBatchFiles);
    CHECK(roomy.held_folders == ferry::client::HeldFolders::kMaxHeldFolders);
}
