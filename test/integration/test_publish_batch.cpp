// PublishBatch (client/publish_batch.hpp): verified parts are held until
// the batch is full, then every part is synced before any is renamed, and
// each folder that received a file is synced once, after its renames.
#include "publish_batch.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

using namespace ferry::client;
using namespace ferry::test;

namespace {

// A verified part of `dest` holding `text`, as finish_get leaves it.
VerifiedPart part_of(const std::string& dest, const std::string& text)
{
    auto file = LocalFile::open(part_path(dest), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(file);
    REQUIRE(file->write_all(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
    return VerifiedPart{std::move(file.value()), dest, state_path(dest)};
}

struct Step {
    PublishStep step;
    std::string path;
};

} // namespace

TEST_CASE("publish batch: held until full; every part synced before any rename; one sync per folder, after")
{
    TempDir dir;
    const std::string a = dir.path() + "/a";
    const std::string b = dir.path() + "/b";
    std::filesystem::create_directories(a);
    std::filesystem::create_directories(b);
    const std::vector<std::string> dests = {a + "/1", a + "/2", b + "/3", a + "/4"};
    // A sidecar from a resumed download (ferry's own: the publish removes it).
    ferry::client::DownloadState resumed;
    resumed.name = "1";
    resumed.remote_size = 6;
    REQUIRE(ferry::client::write_download_state(state_path(dests[0]), resumed));

    PublishBatch batch(4, 1 << 20);
    std::vector<Step> steps;
    batch.observe([&](PublishStep step, const std::string& path) { steps.push_back({step, path}); });
    std::map<std::string, int> done;
    for (std::size_t i = 0; i < dests.size(); ++i) {
        const std::string dest = dests[i];
        batch.add(part_of(dest, "file " + std::to_string(i)), 6, [&, dest](const Status& status) {
            CHECK(status);
            CHECK(exists(dest)); // reported once published
            ++done[dest];
        });
        if (i + 1 < dests.size()) {
            // Not full yet: nothing renamed, nothing synced, nothing reported.
            CHECK_FALSE(exists(dest));
            CHECK(exists(part_path(dest)));
            CHECK(steps.empty());
            CHECK(done.empty());
        }
    }
    for (std::size_t i = 0; i < dests.size(); ++i) {
        CHECK(read_file(dests[i]) == "file " + std::to_string(i));
        CHECK_FALSE(exists(part_path(dests[i])));
        CHECK(done[dests[i]] == 1);
    }
    CHECK_FALSE(exists(state_path(dests[0])));

    REQUIRE(steps.size() == 4 + 4 + 2);
    const auto first_rename = std::find_if(steps.begin(), steps.end(),
                                           [](const Step& s) { return s.step == PublishStep::rename; });
    const auto parts_synced = std::count_if(steps.begin(), first_rename,
                                            [](const Step& s) { return s.step == PublishStep::sync_part; });
    CHECK(parts_synced == 4); // all of them, before the first rename
    const auto last_rename = std::find_if(steps.rbegin(), steps.rend(),
                                          [](const Step& s) { return s.step == PublishStep::rename; });
    std::vector<std::string> folders;
    for (auto it = steps.rbegin(); it != last_rename; ++it) {
        CHECK(it->step == PublishStep::sync_folder);
        folders.push_back(it->path);
    }
    std::sort(folders.begin(), folders.end());
    CHECK(folders == std::vector<std::string>{a, b}); // each once, after every rename
}

TEST_CASE("publish batch: flush publishes what is held; a target that became a folder fails alone, its part kept")
{
    TempDir dir;
    const std::string good = dir.path() + "/good";
    const std::string taken = dir.path() + "/taken";
    PublishBatch batch(64, 1 << 20);
    std::map<std::string, Status> outcome;
    batch.add(part_of(good, "good"), 4, [&](const Status& status) { outcome.emplace(good, status); });
    batch.add(part_of(taken, "bad"), 3, [&](const Status& status) { outcome.emplace(taken, status); });
    std::filesystem::create_directories(taken); // appeared after the verification
    CHECK(outcome.empty());
    batch.flush();
    REQUIRE(outcome.size() == 2);
    CHECK(outcome.at(good));
    CHECK(read_file(good) == "good");
    REQUIRE_FALSE(outcome.at(taken));
    CHECK(outcome.at(taken).error().code == ferry::ErrorCode::local_io);
    CHECK(read_file(part_path(taken)) == "bad");
    batch.flush(); // nothing held: nothing happens
    CHECK(outcome.size() == 2);
}

TEST_CASE("publish batch: the byte bound publishes early; adds from many threads publish each file once")
{
    TempDir dir;
    {
        PublishBatch batch(64, 10);
        int published = 0;
        batch.add(part_of(dir.path() + "/big", "0123456789"), 10, [&](const Status& status) {
            CHECK(status);
            ++published;
        });
        CHECK(published == 1);
        CHECK(exists(dir.path() + "/big"));
    }

    constexpr int kThreads = 6;
    constexpr int kEach = 40;
    for (int t = 0; t < kThreads; ++t) {
        std::filesystem::create_directories(dir.path() + "/t" + std::to_string(t));
    }
    std::atomic<int> published{0};
    std::atomic<int> failed{0};
    {
        PublishBatch batch(7, 1 << 20);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kEach; ++i) {
                    const std::string dest = dir.path() + "/t" + std::to_string(t) + "/" + std::to_string(i);
                    batch.add(part_of(dest, dest), 1, [&, dest](const Status& status) {
                        (status && exists(dest) ? published : failed)++;
                    });
                }
            });
        }
        for (auto& thread : threads) {
            thread.join();
        }
        batch.flush();
    }
    CHECK(failed == 0);
    CHECK(published == kThreads * kEach);
    for (int t = 0; t < kThreads; ++t) {
        for (int i = 0; i < kEach; ++i) {
            const std::string dest = dir.path() + "/t" + std::to_string(t) + "/" + std::to_string(i);
            CHECK(read_file(dest) == dest);
        }
    }
}
