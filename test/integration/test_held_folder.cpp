// A step that walks a path the user typed and loses a race (another
// user's link swapped in on the way) says what it found there, with a
// stable code, never a bare errno such as EBADF.
#include "support.hpp"

#include "connection.hpp"
#include "local_files.hpp"
#include "operations.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ferry::test;
using ferry::ErrorCode;

namespace {

constexpr uid_t kOtherUser = 1234;

} // namespace

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
