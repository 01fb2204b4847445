// Interrupted transfers continue where they stopped. Downloads are cut
// deterministically with the client library's byte limit (GetOptions::
// stop_after), which leaves the part file and its sidecar exactly as an
// interrupted `ferry get` does; uploads are cut by closing a raw protocol
// connection halfway through the data frames.
#include "support.hpp"

#include "../acl_values.hpp"

#include "connection.hpp"
#include "digest.hpp"
#include "local_files.hpp"
#include "operations.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;
using ferry::test::access_acl_text;
using ferry::test::set_default_acl;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

Connection connect_to(const ServerProcess& server)
{
    auto connection = Connection::open(Endpoint{"127.0.0.1", server.port()});
    REQUIRE_MESSAGE(connection.ok(), (connection.ok() ? "" : connection.error().message));
    return std::move(connection.value());
}

// Downloads `name` into `dest` but stops once `limit` bytes are held.
void partial_download(const ServerProcess& server, const std::string& name, const std::string& dest,
                      std::uint64_t limit)
{
    Connection connection = connect_to(server);
    ferry::client::GetOptions options;
    options.name = name;
    options.dest = dest;
    options.stop_after = limit;
    options.checkpoint_interval = kMiB; // exercise the periodic sidecar too
    const auto result = ferry::client::get_file(connection, options);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == ErrorCode::aborted);
    REQUIRE(file_size(ferry::client::part_path(dest)) == limit);
    const auto state = ferry::client::read_download_state(ferry::client::state_path(dest));
    REQUIRE(state.ok());
    CHECK(state->bytes_held == limit);
    CHECK(state->name == name);
}

// `ferry put --resume`, retried while the server still holds the cut
// upload on its old connection (busy); bounded by a deadline.
ProcessResult put_resume(const ServerProcess& server, const std::string& local, const std::string& name)
{
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
        auto result = run_ferry(server.address(), {"--json", "put", "--resume", local, "--as", name});
        const auto json = parse_output(result);
        if (error_code(json) != "busy" || std::chrono::steady_clock::now() > deadline) {
            return result;
        }
        std::this_thread::sleep_for(100ms);
    }
}

// Sends hello, put and the first `frames` data frames of `local`, and
// returns the connection still holding the upload (the server says `busy`
// to anyone resuming it until it is closed).
Connection held_upload(const ServerProcess& server, const std::string& local, const std::string& name,
                       std::size_t frames)
{
    Connection connection = connect_to(server);
    const std::string content = read_file(local);
    const std::uint64_t id = connection.next_id();
    ferry::PutRequest put;
    put.name = name;
    put.size = content.size();
    REQUIRE(connection.send_request(ferry::Request{id, put}).ok());
    const auto text = connection.receive_control();
    REQUIRE(text.ok());
    const auto reply = ferry::parse_put_reply(text.value());
    REQUIRE(reply.ok());
    CHECK(reply->body.offset == 0);
    for (std::size_t i = 0; i < frames; ++i) {
        const std::size_t at = i * ferry::kPreferredDataChunk;
        const std::size_t n = std::min<std::size_t>(ferry::kPreferredDataChunk, content.size() - at);
        REQUIRE(connection.send_data(std::span(reinterpret_cast<const std::uint8_t*>(content.data()) + at, n)).ok());
    }
    return connection;
}

// The same, then drops the connection: an interrupted upload.
void cut_upload(const ServerProcess& server, const std::string& local, const std::string& name, std::size_t frames)
{
    held_upload(server, local, name, frames).close();
}

} // namespace

TEST_CASE("get --resume continues a partial download from its sidecar")
{
    Fixture f;
    const std::uint64_t size = 8 * kMiB + 5;
    write_random_file(f.root_file("big.bin"), size, 11);
    const std::string dest = f.local_file("big.bin");
    const std::uint64_t half = 3 * kMiB + 7;
    partial_download(f.server, "big.bin", dest, half);
    CHECK_FALSE(exists(dest));

    const auto get = run_ferry(f.server.address(), {"--json", "get", "--resume", "big.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == half);
    CHECK(json["size"] == size);
    CHECK(json["digest"]["value"] == sha256_of_file(f.root_file("big.bin")));
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK_FALSE(exists(dest + ".ferry-part"));
    CHECK_FALSE(exists(dest + ".ferry-part.state"));
}

TEST_CASE("get --resume starts over when the remote file changed")
{
    Fixture f;
    write_random_file(f.root_file("moving.bin"), 4 * kMiB, 12);
    const std::string dest = f.local_file("moving.bin");
    partial_download(f.server, "moving.bin", dest, kMiB + 3);

    // A new file of another size: the partial is of something else.
    write_random_file(f.root_file("moving.bin"), 3 * kMiB + 1, 13);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "--resume", "moving.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("moving.bin"), dest));
    CHECK_FALSE(exists(dest + ".ferry-part.state"));
}

TEST_CASE("get --resume starts over when the sidecar is gone, and get --no-resume discards a part")
{
    Fixture f;
    write_random_file(f.root_file("data.bin"), 2 * kMiB, 14);
    const std::string dest = f.local_file("data.bin");

    partial_download(f.server, "data.bin", dest, kMiB);
    // What stands at the sidecar's name is no sidecar (ferry writes one
    // whole, by rename, or not at all): not ferry's to drop, so the get is
    // refused before anything is sent and the file is left as it is.
    write_file(dest + ".ferry-part.state", "{ not json");
    auto get = run_ferry(f.server.address(), {"--json", "get", "--resume", "data.bin", "-o", dest});
    auto json = only_file(parse_output(get));
    CHECK(get.exit_code == 3);
    CHECK(json["error"]["code"] == "local_io");
    CHECK(read_file(dest + ".ferry-part.state") == "{ not json");
    // Moved away, the marked part has no record of its bytes: the get
    // starts over.
    REQUIRE(::unlink((dest + ".ferry-part.state").c_str()) == 0);
    get = run_ferry(f.server.address(), {"--json", "get", "--resume", "data.bin", "-o", dest});
    json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("data.bin"), dest));

    partial_download(f.server, "data.bin", dest, kMiB);
    get = run_ferry(f.server.address(), {"--json", "get", "--no-resume", "data.bin", "-o", dest});
    json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("data.bin"), dest));
    CHECK_FALSE(exists(dest + ".ferry-part"));
    CHECK_FALSE(exists(dest + ".ferry-part.state"));
}

TEST_CASE("a resumed download of a file changed in place fails the hash, never becomes the file, and starts over")
{
    Fixture f;
    const std::string remote = f.root_file("data.bin");
    write_random_file(remote, 3 * kMiB, 15);
    struct stat before {};
    REQUIRE(::stat(remote.c_str(), &before) == 0);
    const std::string dest = f.local_file("data.bin");
    write_file(dest, "the old local copy");
    partial_download(f.server, "data.bin", dest, 2 * kMiB);
    CHECK(read_file(dest) == "the old local copy");

    // New bytes, same size, and the old mtime put back: the get reply
    // matches the sidecar, so only the trailer's hash can tell.
    write_random_file(remote, 3 * kMiB, 115);
    const timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, remote.c_str(), times, 0) == 0);

    // The mismatch refutes the part: the same get downloads the file again
    // from its start (once: a fresh download's mismatch would be final).
    const auto get = run_ferry(f.server.address(), {"--json", "get", "--resume", "data.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(remote, dest));
    CHECK_FALSE(exists(dest + ".ferry-part"));
    CHECK_FALSE(exists(dest + ".ferry-part.state"));
}

TEST_CASE("put --resume completes an interrupted upload; until then nothing is published")
{
    Fixture f;
    write_random_file(f.root_file("doc.bin"), 1000, 16); // the old file
    const std::string old_copy = f.local_file("old.bin");
    write_random_file(old_copy, 1000, 16);
    const std::string source = f.local_file("doc.bin");
    const std::uint64_t size = 8 * kMiB + 123;
    write_random_file(source, size, 17);

    const std::size_t frames = 16; // half of the 33 frames
    cut_upload(f.server, source, "doc.bin", frames);

    const auto list = run_ferry(f.server.address(), {"--json", "list"});
    const auto listed = parse_output(list);
    REQUIRE(list.exit_code == 0);
    REQUIRE(listed["files"].size() == 1);
    CHECK(listed["files"][0]["name"] == "doc.bin");
    CHECK(listed["files"][0]["size"] == 1000);
    CHECK(files_equal(old_copy, f.root_file("doc.bin")));

    const auto put = put_resume(f.server, source, "doc.bin");
    const auto json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"].get<std::uint64_t>() > 0);
    CHECK(json["resumed_from"].get<std::uint64_t>() <= frames * ferry::kPreferredDataChunk);
    CHECK(json["size"] == size);
    CHECK(json["digest"]["value"] == sha256_of_file(source));
    CHECK(files_equal(source, f.root_file("doc.bin")));
    CHECK(partial_uploads(f.root).empty());
}

TEST_CASE("a resumed upload of a new file takes its folder's default ACL, as a fresh one does")
{
    Fixture f;
    const std::string shared = f.root + "/shared";
    REQUIRE(::mkdir(shared.c_str(), 0755) == 0);
    if (!set_default_acl(shared, "u::rwx,u:1234:r--,g::r-x,m::rwx,o::---")) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    const std::string source = f.local_file("doc.bin");
    write_random_file(source, 4 * kMiB + 9, 18);
    REQUIRE(::chmod(source.c_str(), 0664) == 0); // the mode it is created with (PROTOCOL.md 4.5)
    cut_upload(f.server, source, "shared/doc.bin", 8);

    const auto put = put_resume(f.server, source, "shared/doc.bin");
    const auto json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"].get<std::uint64_t>() > 0);
    CHECK(files_equal(source, shared + "/doc.bin"));
    CHECK(access_acl_text(shared + "/doc.bin") == "user::rw-,user:1234:r--,group::r-x,mask::rw-,other::---");
    struct stat st {};
    REQUIRE(::stat((shared + "/doc.bin").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0660);
}

TEST_CASE("put --resume of a different file with the same name and size starts over")
{
    Fixture f;
    const std::uint64_t size = 2 * kMiB;
    const std::string first = f.local_file("first.bin");
    const std::string second = f.local_file("second.bin");
    write_random_file(first, size, 18);
    write_random_file(second, size, 19);
    cut_upload(f.server, first, "same.bin", 4);

    const auto put = put_resume(f.server, second, "same.bin");
    const auto json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(second, f.root_file("same.bin")));
    CHECK(partial_uploads(f.root).empty());
}

TEST_CASE("put --resume with xxh3-128 starts over cleanly when the kept upload is of another file")
{
    Fixture f;
    const std::uint64_t size = 2 * kMiB;
    const std::string first = f.local_file("first.bin");
    const std::string second = f.local_file("second.bin");
    write_random_file(first, size, 20);
    write_random_file(second, size, 21);
    cut_upload(f.server, first, "same.bin", 4);

    const auto deadline = std::chrono::steady_clock::now() + 60s;
    ProcessResult put;
    for (;;) {
        put = run_ferry(f.server.address(), {"--json", "--hash", "xxh3-128", "put", "--resume", second, "--as",
                                             "same.bin"});
        if (error_code(parse_output(put)) != "busy" || std::chrono::steady_clock::now() > deadline) {
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    const auto json = only_file(parse_output(put));
    CAPTURE(put.out);
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(second, f.root_file("same.bin")));
    CHECK(partial_uploads(f.root).empty());
}

TEST_CASE("put --resume with xxh3-128 that meets a busy upload resumes it once it is free")
{
    Fixture f;
    const std::string source = f.local_file("doc.bin");
    const std::uint64_t size = 4 * kMiB + 9;
    write_random_file(source, size, 22);
    Connection holder = held_upload(f.server, source, "doc.bin", 8);

    // The client finds the upload busy and retries for a few seconds;
    // the holder lets go meanwhile: once the server has told the client
    // so (its log says it), so that the retry is what is tried, and a
    // loaded machine's slow start does not eat the client's patience.
    auto child = start_ferry(f.server.address(),
                             {"--json", "--hash", "xxh3-128", "put", "--resume", source, "--as", "doc.bin"});
    const auto told_busy_by = std::chrono::steady_clock::now() + 60s;
    while (read_file(f.log).find("code=busy") == std::string::npos && std::chrono::steady_clock::now() < told_busy_by) {
        std::this_thread::sleep_for(20ms);
    }
    CHECK(read_file(f.log).find("code=busy") != std::string::npos);
    holder.close();
    const auto put = child.wait(kFerryTimeout);
    const auto json = only_file(parse_output(put));
    CAPTURE(put.out);
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"].get<std::uint64_t>() > 0);
    CHECK(json["digest"]["algorithm"] == "xxh3-128");
    CHECK(files_equal(source, f.root_file("doc.bin")));
    CHECK(partial_uploads(f.root).empty());
}

TEST_CASE("every valid name can be downloaded and resumed, up to 255 bytes")
{
    Fixture f;
    // 227 bytes still take NAME.ferry-part; from 228 the sidecar's
    // temporary copy (.tmp-XXXXXX) would pass NAME_MAX; 239 and more even
    // the sidecar.
    for (const std::size_t length : {227, 228, 235, 238, 239, 254, 255}) {
        CAPTURE(length);
        const std::string name = std::to_string(length) + std::string(length - 3, 'n');
        REQUIRE(name.size() == length);
        write_random_file(f.root_file(name), 2 * kMiB + 1, length);
        const std::string dest = f.local_file(name);

        auto get = run_ferry(f.server.address(), {"--json", "get", name, "-o", dest});
        CAPTURE(get.out);
        REQUIRE(get.exit_code == 0);
        CHECK(files_equal(f.root_file(name), dest));
        REQUIRE(::unlink(dest.c_str()) == 0);

        // Cut after a checkpoint, then resumed from the part found again.
        partial_download(f.server, name, dest, kMiB + 5);
        get = run_ferry(f.server.address(), {"--json", "get", "--resume", name, "-o", dest});
        const auto json = only_file(parse_output(get));
        REQUIRE(get.exit_code == 0);
        CHECK(json["resumed_from"] == kMiB + 5);
        CHECK(files_equal(f.root_file(name), dest));
        CHECK(folder_entries(f.local) == std::vector<std::string>{name});
        REQUIRE(::unlink(dest.c_str()) == 0);
    }
}

TEST_CASE("get --resume never publishes a part whose bytes changed since the checkpoint")
{
    Fixture f;
    const std::uint64_t size = 4 * kMiB + 11;
    write_random_file(f.root_file("data.bin"), size, 23);
    const std::string dest = f.local_file("data.bin");
    const std::string part = ferry::client::part_path(dest);

    // A byte changed inside the part, its mtime put back: only the
    // content (and the ctime no one can set) tells.
    partial_download(f.server, "data.bin", dest, 2 * kMiB + 1);
    struct stat before {};
    REQUIRE(::stat(part.c_str(), &before) == 0);
    {
        const int fd = ::open(part.c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        char byte = 0;
        REQUIRE(::pread(fd, &byte, 1, 1000) == 1);
        byte = static_cast<char>(byte ^ 0x5a);
        REQUIRE(::pwrite(fd, &byte, 1, 1000) == 1);
        ::close(fd);
    }
    const timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, part.c_str(), times, 0) == 0);

    auto get = run_ferry(f.server.address(), {"--json", "get", "--resume", "data.bin", "-o", dest});
    auto json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 0); // detected: started over
    CHECK(json["digest"]["value"] == sha256_of_file(f.root_file("data.bin")));
    CHECK(files_equal(f.root_file("data.bin"), dest));
    REQUIRE(::unlink(dest.c_str()) == 0);

    // Bytes written past the checkpoint (a crash before the next one)
    // change the part's identity but not its vouched-for prefix: resumed.
    partial_download(f.server, "data.bin", dest, 2 * kMiB + 1);
    {
        const int fd = ::open(part.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "tail", 4) == 4);
        ::close(fd);
    }
    get = run_ferry(f.server.address(), {"--json", "get", "--resume", "data.bin", "-o", dest});
    json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 2 * kMiB + 1);
    CHECK(files_equal(f.root_file("data.bin"), dest));
}

TEST_CASE("a get run again without --resume continues the partial download instead of deleting it")
{
    Fixture f;
    const std::uint64_t size = 4 * kMiB + 3;
    write_random_file(f.root_file("big.bin"), size, 24);
    const std::string dest = f.local_file("big.bin");
    partial_download(f.server, "big.bin", dest, 3 * kMiB);

    const auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE(get.exit_code == 0);
    CHECK(json["resumed_from"] == 3 * kMiB);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK(folder_entries(f.local) == std::vector<std::string>{"big.bin"});

    // Without a flag on the terminal too: the line says it resumed.
    REQUIRE(::unlink(dest.c_str()) == 0);
    partial_download(f.server, "big.bin", dest, kMiB);
    const auto plain = run_ferry(f.server.address(), {"get", "big.bin", "-o", dest});
    CHECK(plain.exit_code == 0);
    CHECK(plain.out.find("resumed at") != std::string::npos);
}

TEST_CASE("a put run again without --resume continues the kept upload; --no-resume discards it")
{
    Fixture f;
    const std::string source = f.local_file("doc.bin");
    const std::uint64_t size = 4 * kMiB + 5;
    write_random_file(source, size, 25);
    const auto put_again = [&](const std::vector<std::string>& flags) {
        std::vector<std::string> args{"--json", "put"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.insert(args.end(), {source, "--as", "doc.bin"});
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        for (;;) {
            auto result = run_ferry(f.server.address(), args);
            if (error_code(parse_output(result)) != "busy" || std::chrono::steady_clock::now() > deadline) {
                return result;
            }
            std::this_thread::sleep_for(100ms);
        }
    };

    cut_upload(f.server, source, "doc.bin", 8);
    auto put = put_again({});
    auto json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"].get<std::uint64_t>() > 0);
    CHECK(files_equal(source, f.root_file("doc.bin")));
    CHECK(partial_uploads(f.root).empty());

    // --no-resume sends it all again and leaves no kept upload behind.
    cut_upload(f.server, source, "doc.bin", 8);
    put = put_again({"--no-resume"});
    json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(source, f.root_file("doc.bin")));
    CHECK(partial_uploads(f.root).empty());
}
