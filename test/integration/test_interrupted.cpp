// Uploads that go wrong never replace a file: a client killed midway, and
// data that does not match the hash given at commit.
#include "support.hpp"

#include "connection.hpp"
#include "digest.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <thread>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// An upload's data file, ".ferry-partial-<hex token>" (not its state file
// nor the state's temporary), holding at least one byte.
bool has_growing_partial(const std::string& root)
{
    constexpr std::string_view kPrefix = ".ferry-partial-";
    for (const auto& name : partial_uploads(root)) {
        const std::string_view token = std::string_view(name).substr(kPrefix.size());
        const bool data_file = !token.empty() && token.find_first_not_of("0123456789abcdef") == std::string_view::npos;
        if (data_file && file_size(root + "/" + name) > 0) {
            return true;
        }
    }
    return false;
}

} // namespace

TEST_CASE("an upload killed midway leaves no half file and the old file intact")
{
    Fixture f;
    write_random_file(f.root_file("victim.bin"), 4096, 21);
    const std::string old_copy = f.local_file("old.bin");
    write_random_file(old_copy, 4096, 21);
    const std::string source = f.local_file("big.bin");
    write_random_file(source, 200 * kMiB, 22);

    auto client = start_ferry(f.server.address(), {"--json", "put", source, "--as", "victim.bin"});
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    bool seen = false;
    while (!seen && !client.exited() && std::chrono::steady_clock::now() < deadline) {
        seen = has_growing_partial(f.root);
        if (!seen) {
            std::this_thread::sleep_for(1ms);
        }
    }
    REQUIRE_MESSAGE(seen, "the upload's partial file never appeared (or the upload finished first)");
    client.signal(SIGKILL);
    const auto killed = client.wait(60s);
    CHECK(killed.term_signal == SIGKILL);

    // Only the old file is visible, byte for byte; the partial stays hidden.
    CHECK(files_equal(old_copy, f.root_file("victim.bin")));
    for (const auto& name : folder_entries(f.root)) {
        CHECK_MESSAGE((name == "victim.bin" || name.starts_with(".ferry-partial-")), name);
    }
    const auto list = run_ferry(f.server.address(), {"--json", "list"});
    const auto listed = parse_output(list);
    REQUIRE(listed["files"].size() == 1);
    CHECK(listed["files"][0]["size"] == 4096);

    // And the kept bytes are good for a resume.
    auto put = run_ferry(f.server.address(), {"--json", "put", "--resume", source, "--as", "victim.bin"});
    auto json = parse_output(put);
    const auto retry_deadline = std::chrono::steady_clock::now() + 60s;
    while (error_code(json) == "busy" && std::chrono::steady_clock::now() < retry_deadline) {
        std::this_thread::sleep_for(100ms);
        put = run_ferry(f.server.address(), {"--json", "put", "--resume", source, "--as", "victim.bin"});
        json = parse_output(put);
    }
    REQUIRE(put.exit_code == 0);
    CHECK(files_equal(source, f.root_file("victim.bin")));
    const auto left = partial_uploads(f.root);
    std::string shown;
    for (const auto& name : left) {
        shown += name + " (" + std::to_string(file_size(f.root_file(name))) + " bytes) ";
    }
    CHECK_MESSAGE(left.empty(), shown << "\nput: " << put.out << "\nlog:\n" << read_file(f.log));
}

TEST_CASE("a commit with the wrong hash is refused: nothing published, no partial left")
{
    Fixture f;
    write_random_file(f.root_file("target.bin"), 777, 23);
    const std::string old_copy = f.local_file("old.bin");
    write_random_file(old_copy, 777, 23);
    const std::string source = f.local_file("new.bin");
    write_random_file(source, kMiB + 1, 24);
    const std::string content = read_file(source);

    auto opened = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
    REQUIRE(opened.ok());
    Connection& connection = opened.value();
    const std::uint64_t id = connection.next_id();
    ferry::PutRequest put;
    put.name = "target.bin";
    put.size = content.size();
    REQUIRE(connection.send_request(ferry::Request{id, put}).ok());
    auto text = connection.receive_control();
    REQUIRE(text.ok());
    REQUIRE(ferry::parse_put_reply(text.value()).ok());
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(content.data());
    for (std::size_t at = 0; at < content.size(); at += ferry::kPreferredDataChunk) {
        const std::size_t n = std::min<std::size_t>(ferry::kPreferredDataChunk, content.size() - at);
        REQUIRE(connection.send_data(std::span(bytes + at, n)).ok());
    }
    ferry::Sha256 wrong;
    wrong.update("something else", 14);
    REQUIRE(connection.send_request(ferry::Request{id, ferry::CommitRequest{wrong.hex_digest()}}).ok());
    text = connection.receive_control();
    REQUIRE(text.ok());
    const auto reply = ferry::parse_commit_reply(text.value());
    REQUIRE_FALSE(reply.ok());
    CHECK(reply.error().code == ErrorCode::hash_mismatch);

    // The connection is idle again and the server unchanged.
    const std::uint64_t list_id = connection.next_id();
    REQUIRE(connection.send_request(ferry::Request{list_id, ferry::ListRequest{}}).ok());
    text = connection.receive_control();
    REQUIRE(text.ok());
    const auto listed = ferry::parse_list_reply(text.value());
    REQUIRE(listed.ok());
    CHECK(listed->id == list_id);
    REQUIRE(listed->body.files.size() == 1);
    CHECK(listed->body.files[0].size == 777);
    CHECK(files_equal(old_copy, f.root_file("target.bin")));
    CHECK(partial_uploads(f.root).empty());
    CHECK(folder_entries(f.root) == std::vector<std::string>{"target.bin"});
}
