// A download walks to its local folder once, when it is planned, and holds
// that folder until its file is published in it (GetOptions::folder): a
// folder on the way swapped afterwards (for another user's own folder, or
// a link) changes nothing, since no later step names the folder by a path.
// And a step that does walk a typed path and loses a race says what it
// found there, never a bare errno such as EBADF.
#include "support.hpp"

#include "connection.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "publish_batch.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr uid_t kOtherUser = 1234;

Connection connect_to(const ServerProcess& server)
{
    auto connection = Connection::open(Endpoint{"127.0.0.1", server.port()});
    REQUIRE_MESSAGE(connection.ok(), (connection.ok() ? "" : connection.error().message));
    return std::move(connection.value());
}

// Between two steps of a download: `folder` moved aside to `aside`, and a
// folder of another user's own (no link in it) put under its name.
void swap_folder(const std::string& folder, const std::string& aside)
{
    REQUIRE(::rename(folder.c_str(), aside.c_str()) == 0);
    REQUIRE(::mkdir(folder.c_str(), 0777) == 0);
    REQUIRE(::chown(folder.c_str(), kOtherUser, kOtherUser) == 0);
}

// A get of a.txt into `dest` (`tree_root` as get -r and sync's pull set
// it, or empty: a path the user typed), with the folder swapped between
// the plan and the transfer: the file lands in the folder planned.
void get_across_a_swap(const std::string& tree_root, bool deferred)
{
    Fixture f;
    write_file(f.root_file("a.txt"), "THE-FILE\n");
    const std::string sub = f.local_file("sub");
    const std::string aside = f.local_file("sub.planned");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);

    ferry::client::GetOptions options;
    options.name = "a.txt";
    options.dest = sub + "/a.txt";
    options.tree_root = tree_root;
    options.defer_publish = deferred;
    Connection connection = connect_to(f.server);
    auto pending = ferry::client::prepare_get(options);
    REQUIRE_MESSAGE(pending.ok(), (pending.ok() ? "" : pending.error().message));

    swap_folder(sub, aside);
    REQUIRE(ferry::client::send_get(connection, pending.value()).ok());
    const auto got = ferry::client::finish_get(connection, pending.value());
    REQUIRE_MESSAGE(got.ok(), (got.ok() ? "" : got.error().message));
    if (deferred) {
        REQUIRE(pending->verified);
        ferry::client::PublishBatch batch;
        std::string failure = "not published";
        batch.add(std::move(*pending->verified), 9, [&](const ferry::client::Status& done) {
            failure = done.ok() ? "" : done.error().message;
        });
        batch.flush();
        CHECK_MESSAGE(failure.empty(), failure);
    }
    CHECK(read_file(aside + "/a.txt") == "THE-FILE\n");
    // Nothing was written into the other user's folder: no file, no part,
    // no sidecar.
    CHECK(folder_entries(sub).empty());
}

} // namespace

TEST_CASE("a get holds its folder from the plan to the publish: a folder swapped in between receives nothing")
{
    SUBCASE("a path the user typed, published at once") { get_across_a_swap("", false); }
    SUBCASE("a path the user typed, published with a batch") { get_across_a_swap("", true); }
}

TEST_CASE("a tree's file lands in the folder planned when its tree's folder is swapped before the transfer")
{
    Fixture f;
    write_file(f.root_file("a.txt"), "TREE-FILE\n");
    const std::string sub = f.local_file("sub");
    const std::string aside = f.local_file("sub.planned");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);

    ferry::client::GetOptions options;
    options.name = "a.txt";
    options.dest = sub + "/a.txt";
    options.tree_root = f.local;
    options.defer_publish = true;
    Connection connection = connect_to(f.server);
    auto pending = ferry::client::prepare_get(options);
    REQUIRE_MESSAGE(pending.ok(), (pending.ok() ? "" : pending.error().message));
    swap_folder(sub, aside);
    REQUIRE(ferry::client::send_get(connection, pending.value()).ok());
    const auto got = ferry::client::finish_get(connection, pending.value());
    REQUIRE_MESSAGE(got.ok(), (got.ok() ? "" : got.error().message));
    REQUIRE(pending->verified);
    ferry::client::PublishBatch batch;
    std::string failure = "not published";
    batch.add(std::move(*pending->verified), 10,
              [&](const ferry::client::Status& done) { failure = done.ok() ? "" : done.error().message; });
    batch.flush();
    CHECK_MESSAGE(failure.empty(), failure);
    CHECK(read_file(aside + "/a.txt") == "TREE-FILE\n");
    CHECK(folder_entries(sub).empty());
}

TEST_CASE("a step that walks a typed path and meets another user's link names it, never a bare errno")
{
    // The walk of a typed path (local_files.cpp's Where) that reaches no
    // folder: each call returns the walk's own error (the link and its
    // owner), where it once went on with no descriptor (EBADF).
    Fixture f;
    const std::string real = f.local_file("real");
    const std::string link = f.local_file("d");
    REQUIRE(::mkdir(real.c_str(), 0755) == 0);
    REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
    REQUIRE(::lchown(link.c_str(), kOtherUser, kOtherUser) == 0);
    const std::string dest = link + "/x";
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);

    const auto names_the_link = [&](const ferry::client::Status& status) {
        REQUIRE_FALSE(status.ok());
        CHECK(status.error().code == ErrorCode::local_io);
        const std::string& message = status.error().message;
        CHECK_MESSAGE(message.find("uid 1234") != std::string::npos, message);
        CHECK_MESSAGE(message.find("\"" + link + "\"") != std::string::npos, message);
        CHECK_MESSAGE(message.find("Bad file descriptor") == std::string::npos, message);
    };
    const auto as_status = [](const auto& result) -> ferry::client::Status {
        if (result) {
            return ferry::client::success();
        }
        return result.error();
    };
    names_the_link(as_status(ferry::client::look_at_part(part, state)));
    names_the_link(as_status(ferry::client::create_part_file(part, state)));
    names_the_link(as_status(ferry::client::look_at_state(state)));
    names_the_link(ferry::client::remove_file(part));
    names_the_link(ferry::client::remove_download_state(state));
    names_the_link(ferry::client::rename_file(part, dest));
    names_the_link(ferry::client::write_download_state(state, ferry::client::DownloadState{}));
    CHECK(folder_entries(real).empty());
}
