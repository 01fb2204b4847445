// What a resumed download may build on: only files ferry made, never
// followed through a link standing at one of its names.
#include "support.hpp"

#include "connection.hpp"
#include "frame.hpp"
#include "local_files.hpp"
#include "messages.hpp"
#include "operations.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

} // namespace

TEST_CASE("a link at the sidecar's temporary name is neither followed nor written through")
{
    Fixture f;
    write_random_file(f.root_file("big.bin"), 3 * kMiB, 43);
    const std::string dest = f.local_file("big.bin");
    const std::string victim = f.dir / "victim";
    write_file(victim, "ORIGINAL");
    const std::string temporary = ferry::client::state_path(dest) + ".tmp";
    REQUIRE(::symlink(victim.c_str(), temporary.c_str()) == 0);

    auto connection = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
    REQUIRE(connection.ok());
    ferry::client::GetOptions options;
    options.name = "big.bin";
    options.dest = dest;
    options.stop_after = 2 * kMiB;
    options.checkpoint_interval = kMiB;
    const auto result = ferry::client::get_file(connection.value(), options);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == ErrorCode::aborted);
    CHECK(read_file(victim) == "ORIGINAL");
    const auto state = ferry::client::read_download_state(ferry::client::state_path(dest));
    REQUIRE(state.ok());
    CHECK(state->bytes_held == 2 * kMiB);

    // And a link standing at the sidecar's own name is no sidecar: the
    // get starts over, leaving what it leads to alone.
    REQUIRE(::unlink(ferry::client::state_path(dest).c_str()) == 0);
    REQUIRE(::symlink(victim.c_str(), ferry::client::state_path(dest).c_str()) == 0);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK(read_file(victim) == "ORIGINAL");
}
