// The client's tree primitives (remote_tree.hpp, and put_file/get_file with
// a path, parents and a modification time) against a real ferryd: the calls
// sync and the folder commands are built on.
#include "support.hpp"

#include "connection.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "remote_tree.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <string>
#include <vector>

using namespace ferry::test;
using namespace ferry::client;

namespace {

std::int64_t mtime_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mtim.tv_sec;
}

} // namespace

TEST_CASE("tree primitives: mkdir -p, put with parents and mtime, list a tree page by page, get keeping the time")
{
    Fixture f;
    auto opened = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
    REQUIRE(opened.ok());
    Connection& connection = opened.value();
    CHECK(connection.protocol_version() == 2);
    CHECK_FALSE(require_folders(connection));

    auto made = make_remote_folder(connection, "a/b/c", true);
    REQUIRE(made.ok());
    CHECK(made->created);
    made = make_remote_folder(connection, "a/b", true);
    REQUIRE(made.ok());
    CHECK_FALSE(made->created);
    CHECK(make_remote_folder(connection, "a/b", false).error().code == ferry::ErrorCode::exists);

    write_random_file(f.local_file("up.bin"), 200000, 7);
    PutOptions put;
    put.local_path = f.local_file("up.bin");
    put.name = "x/y/up.bin";
    put.parents = true;
    put.mtime = 1234567890;
    auto sent = put_file(connection, put);
    REQUIRE(sent.ok());
    CHECK(sent->file.mtime == 1234567890);
    CHECK(mtime_of(f.root_file("x/y/up.bin")) == 1234567890);
    CHECK(files_equal(f.local_file("up.bin"), f.root_file("x/y/up.bin")));
    // Without parents a missing folder is the server's not_found.
    put.name = "nowhere/up.bin";
    put.parents = false;
    put.mtime.reset();
    CHECK(put_file(connection, put).error().code == ferry::ErrorCode::not_found);

    std::vector<std::string> seen;
    auto walked = list_tree(connection, "", true, [&seen](ferry::FileInfo&& file) -> Status {
        seen.push_back(file.name + (is_folder(file) ? "/" : ""));
        return success();
    });
    REQUIRE(walked.ok());
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{"a/", "a/b/", "a/b/c/", "x/", "x/y/", "x/y/up.bin"});
    // A callback's error stops the listing and comes back.
    auto stopped = list_tree(connection, "", true, [](ferry::FileInfo&&) -> Status {
        return ferry::Error{ferry::ErrorCode::aborted, "enough"};
    });
    CHECK(stopped.error().message == "enough");
    if (!connection.is_open()) {
        REQUIRE(connection.reconnect().ok());
    }
    auto listed = list_folder(connection, "x", false);
    REQUIRE(listed.ok());
    REQUIRE(listed->files.size() == 1);
    CHECK(listed->files.front().name == "y");

    GetOptions get;
    get.name = "x/y/up.bin";
    get.dest = f.local_file("down.bin");
    get.preserve_mtime = true;
    auto got = get_file(connection, get);
    REQUIRE(got.ok());
    CHECK(files_equal(f.local_file("down.bin"), f.local_file("up.bin")));
    CHECK(mtime_of(f.local_file("down.bin")) == 1234567890);

    auto digest = remote_digest(connection, "x/y/up.bin", ferry::HashKind::sha256);
    REQUIRE(digest.ok());
    CHECK(digest->digest == sha256_of_file(f.local_file("up.bin")));

    auto renamed = rename_remote(connection, "x/y/up.bin", "a/b/moved.bin", false);
    REQUIRE(renamed.ok());
    CHECK(exists(f.root_file("a/b/moved.bin")));
    CHECK(rename_remote(connection, "a", "a/b/c/a", false).error().code == ferry::ErrorCode::invalid_move);

    CHECK(delete_remote(connection, "a", false).error().code == ferry::ErrorCode::not_empty);
    auto removed = delete_remote(connection, "a", true);
    REQUIRE(removed.ok());
    CHECK(removed->files == 1);
    CHECK(removed->folders == 3);
    CHECK_FALSE(exists(f.root_file("a")));
}
