// What an upload's durability costs, counted at the system call: this test
// binary defines fsync and fdatasync itself (the server's code, linked in
// statically, calls these; they count, then make the real system call), so
// the counts are those of the real code path, not of a counter it keeps.
#include "folder_sync.hpp"
#include "library.hpp"
#include "partial_upload.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

thread_local int t_syncs = 0; // this thread's fsync and fdatasync calls
std::atomic<int> g_folder_syncs{0};
// Armed by a test: the next folder fsync waits (at most 30 s) until this
// many callers are inside the process's FolderSyncs, as if the disk were
// slow while they all arrived.
std::atomic<std::size_t> g_hold_next_folder_sync_for{0};

void hold_if_asked()
{
    const std::size_t callers = g_hold_next_folder_sync_for.exchange(0);
    if (callers == 0) {
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (FolderSyncs::process().callers() < callers && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

} // namespace

extern "C" int fsync(int fd)
{
    ++t_syncs;
    struct ::stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ++g_folder_syncs;
        hold_if_asked();
    }
    return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int fdatasync(int fd)
{
    ++t_syncs;
    return static_cast<int>(::syscall(SYS_fdatasync, fd));
}

namespace {

std::unique_ptr<Library> open_library(const TempRoot& root)
{
    auto library = Library::open(root.path());
    REQUIRE(library);
    return std::move(library.value());
}

// sha256("hello")
constexpr std::string_view kHelloSha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

// The fsyncs (and fdatasyncs) this thread made to upload "hello" as `name`.
int syncs_to_upload_hello(const Library& library, const std::string& name, bool parents = false)
{
    t_syncs = 0;
    auto upload = PartialUpload::begin(library, name, 5, false, HashKind::sha256, parents);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    REQUIRE(upload.value()->commit(kHelloSha256));
    return t_syncs;
}

} // namespace

TEST_CASE("an upload that reaches no checkpoint costs two fsyncs: its data and its folder's new entry")
{
    TempRoot root;
    std::filesystem::create_directories(root.path() + "/sub/deeper");
    auto library = open_library(root);
    // Not the state of a new upload (it holds no bytes), nor the root after
    // an upload into a folder (the rename's removal of the partial's name).
    CHECK(syncs_to_upload_hello(*library, "top.bin") == 2);
    CHECK(syncs_to_upload_hello(*library, "sub/in.bin") == 2);
    CHECK(syncs_to_upload_hello(*library, "sub/deeper/in.bin", true) == 2);
    // Each folder a put makes adds one fsync of the folder that gained it.
    CHECK(syncs_to_upload_hello(*library, "made/here/in.bin", true) == 4);
    CHECK(root.read("top.bin") == "hello");
    CHECK(root.read("sub/in.bin") == "hello");
    CHECK(root.read("made/here/in.bin") == "hello");
    CHECK(root.hidden_entries() == 0);
}

TEST_CASE("a checkpoint and a kept upload still make their bytes and state durable")
{
    TempRoot root;
    auto library = open_library(root);
    auto upload = PartialUpload::begin(*library, "f.bin", 10, false);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    t_syncs = 0;
    REQUIRE_FALSE(upload.value()->checkpoint());
    // The data, the state that records it, and the root holding the state's
    // name: after a power cut the resume starts from these bytes.
    CHECK(t_syncs == 3);
}

TEST_CASE("commits into one folder at the same time share the folder's fsyncs")
{
    TempRoot root;
    std::filesystem::create_directory(root.path() + "/box");
    auto library = open_library(root);
    constexpr std::size_t kUploads = 8;
    std::vector<std::unique_ptr<PartialUpload>> uploads;
    for (std::size_t i = 0; i < kUploads; ++i) {
        auto upload = PartialUpload::begin(*library, "box/f" + std::to_string(i), 5, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        uploads.push_back(std::move(upload.value()));
    }
    // The first folder fsync lasts until every commit waits for one: the
    // others arrived after it started, so one more fsync covers them all.
    g_folder_syncs = 0;
    g_hold_next_folder_sync_for = kUploads;
    std::atomic<int> published{0};
    std::vector<std::thread> commits;
    for (auto& upload : uploads) {
        commits.emplace_back([&published, upload = upload.get()] {
            if (upload->commit(kHelloSha256)) {
                ++published;
            }
        });
    }
    for (auto& thread : commits) {
        thread.join();
    }
    CHECK(published == static_cast<int>(kUploads));
    CHECK(g_folder_syncs < static_cast<int>(kUploads));
    CHECK(g_folder_syncs == 2);
    for (std::size_t i = 0; i < kUploads; ++i) {
        CHECK(root.read("box/f" + std::to_string(i)) == "hello");
    }
}

TEST_CASE("a kept upload whose data file has a second link is not resumed: the published file stays whole")
{
    // Where a crash kept the partial's old name beside the published one
    // (the root is not synced after the rename), the two names are one
    // file: resuming it would cut the published file to the kept bytes.
    TempRoot root;
    auto library = open_library(root);
    std::string token;
    {
        auto upload = PartialUpload::begin(*library, "f.bin", 10, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        REQUIRE_FALSE(upload.value()->checkpoint());
        token = upload.value()->token();
    }
    const std::string data = root.path() + "/" + std::string(kPartialPrefix) + token;
    {
        const int fd = ::open(data.c_str(), O_WRONLY | O_APPEND);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "world", 5) == 5);
        ::close(fd);
    }
    REQUIRE(::link(data.c_str(), (root.path() + "/f.bin").c_str()) == 0);

    auto resumed = PartialUpload::begin(*library, "f.bin", 10, true);
    REQUIRE(resumed);
    CHECK(resumed.value()->received() == 0);
    CHECK(root.read("f.bin") == "helloworld");
    resumed.value()->discard();
    CHECK(root.read("f.bin") == "helloworld");
    CHECK(root.hidden_entries() == 0);
}
