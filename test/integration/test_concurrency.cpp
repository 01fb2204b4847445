// Fifty ferry processes at once against one server: half download, half
// upload, each a different file; every one succeeds byte for byte.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace ferry::test;

TEST_CASE("50 clients at once, half get and half put")
{
    Fixture f;
    constexpr int kClients = 50;
    constexpr std::uint64_t kBase = 1024 * 1024;
    for (int i = 0; i < kClients / 2; ++i) {
        write_random_file(f.root_file("served-" + std::to_string(i) + ".bin"), kBase + 4099ULL * i, 100 + i);
        write_random_file(f.local_file("upload-" + std::to_string(i) + ".bin"), kBase + 7001ULL * i, 200 + i);
    }

    std::vector<ChildProcess> clients;
    clients.reserve(kClients);
    for (int i = 0; i < kClients / 2; ++i) {
        const std::string n = std::to_string(i);
        clients.push_back(start_ferry(
            f.server.address(), {"--json", "get", "served-" + n + ".bin", "-o", f.local_file("got-" + n + ".bin")}));
        clients.push_back(start_ferry(
            f.server.address(), {"--json", "put", f.local_file("upload-" + n + ".bin"), "--as", "put-" + n + ".bin"}));
    }
    for (auto& client : clients) {
        const auto result = client.wait(kFerryTimeout);
        CHECK_FALSE(result.timed_out);
        const auto output = parse_output(result);
        CHECK_MESSAGE(result.exit_code == 0, result.out << result.err);
    }
    for (int i = 0; i < kClients / 2; ++i) {
        const std::string n = std::to_string(i);
        CHECK(files_equal(f.root_file("served-" + n + ".bin"), f.local_file("got-" + n + ".bin")));
        CHECK(files_equal(f.local_file("upload-" + n + ".bin"), f.root_file("put-" + n + ".bin")));
    }
    CHECK(partial_uploads(f.root).empty());
}
