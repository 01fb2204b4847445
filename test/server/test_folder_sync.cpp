// FolderSyncs, the group commit of folder fsyncs: a caller returns only
// after an fsync that started after it arrived; callers arriving together
// share one; folders never share; a failure reaches every caller it covers.
#include "folder_sync.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

using namespace std::chrono_literals;

// A folder descriptor for the duration of a test.
class Folder {
public:
    explicit Folder(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
    {
        REQUIRE(fd_ >= 0);
    }
    Folder(const Folder&) = delete;
    Folder& operator=(const Folder&) = delete;
    ~Folder() { ::close(fd_); }
    int fd() const { return fd_; }

private:
    int fd_;
};

// A stand-in for fsync that lets calls end only as the test releases them,
// one per release, and records how many began.
class Gate {
public:
    FolderSyncs::SyncFolder sync_folder()
    {
        return [this](int) {
            std::unique_lock lock(mutex_);
            ++entered_;
            changed_.notify_all();
            changed_.wait(lock, [&] { return released_ > finished_; });
            ++finished_;
            return 0;
        };
    }
    void release(int count)
    {
        std::lock_guard lock(mutex_);
        released_ += count;
        changed_.notify_all();
    }
    // Waits (at most 30 s) until `count` calls have entered.
    bool wait_entered(int count)
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 30s, [&] { return entered_ >= count; });
    }
    int entered()
    {
        std::lock_guard lock(mutex_);
        return entered_;
    }
private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int released_ = 0;
    int entered_ = 0;
    int finished_ = 0;
};

// Polls `done` for at most 30 s (generous: the machine may be loaded).
template <typename Done>
bool eventually(Done done)
{
    for (auto deadline = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < deadline;) {
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(1ms);
    }
    return done();
}

} // namespace

TEST_CASE("a caller arriving during a folder's fsync waits for the next one, which it shares with the others")
{
    TempRoot root;
    Folder folder(root.path());
    Gate gate;
    FolderSyncs syncs(gate.sync_folder());

    std::atomic<bool> first_returned{false};
    std::thread first([&] {
        CHECK_FALSE(syncs.sync(folder.fd(), "."));
        first_returned = true;
    });
    REQUIRE(gate.wait_entered(1));

    // Three callers arrive while the first fsync runs: it may have begun
    // before their entries, so none of them may return when it ends.
    constexpr int kLate = 3;
    std::atomic<int> late_returned{0};
    std::vector<std::thread> late;
    for (int i = 0; i < kLate; ++i) {
        late.emplace_back([&] {
            CHECK_FALSE(syncs.sync(folder.fd(), "."));
            ++late_returned;
        });
    }
    REQUIRE(eventually([&] { return syncs.callers() == 1 + kLate; }));
    gate.release(1);
    first.join();
    CHECK(first_returned);
    REQUIRE(gate.wait_entered(2));
    std::this_thread::sleep_for(50ms);
    CHECK(late_returned == 0); // the first fsync ended, theirs has not
    gate.release(1);
    for (auto& thread : late) {
        thread.join();
    }
    CHECK(late_returned == kLate);
    // Four callers, two fsyncs: the one running when the others came, and
    // one for all of them.
    CHECK(gate.entered() == 2);
    CHECK(syncs.fsyncs() == 2);
    CHECK(syncs.callers() == 0);
}

TEST_CASE("a caller alone gets an fsync of its own; callers one after another get one each")
{
    TempRoot root;
    Folder folder(root.path());
    Gate gate;
    gate.release(3);
    FolderSyncs syncs(gate.sync_folder());
    for (int i = 1; i <= 3; ++i) {
        CHECK_FALSE(syncs.sync(folder.fd(), "."));
        CHECK(syncs.fsyncs() == static_cast<std::uint64_t>(i));
    }
}

TEST_CASE("two folders never share an fsync, and the same folder by two descriptors does")
{
    TempRoot root;
    std::filesystem::create_directory(root.path() + "/a");
    std::filesystem::create_directory(root.path() + "/b");
    Folder a(root.path() + "/a");
    Folder a_again(root.path() + "/a");
    Folder b(root.path() + "/b");
    Gate gate;
    FolderSyncs syncs(gate.sync_folder());

    std::thread in_a([&] { CHECK_FALSE(syncs.sync(a.fd(), "a")); });
    REQUIRE(gate.wait_entered(1));
    // Folder b does not wait behind a's fsync: it starts its own now.
    std::thread in_b([&] { CHECK_FALSE(syncs.sync(b.fd(), "b")); });
    REQUIRE(gate.wait_entered(2));
    // a by another descriptor waits behind a's running fsync.
    std::thread in_a_again([&] { CHECK_FALSE(syncs.sync(a_again.fd(), "a")); });
    REQUIRE(eventually([&] { return syncs.callers() == 3; }));
    CHECK(gate.entered() == 2);
    gate.release(3);
    in_a.join();
    in_b.join();
    in_a_again.join();
    CHECK(gate.entered() == 3);
}

TEST_CASE("a failed folder fsync is the error of every caller it covered, not of later ones")
{
    TempRoot root;
    Folder folder(root.path());
    std::atomic<int> result{EIO};
    FolderSyncs syncs([&](int) { return result.load(); });
    auto failed = syncs.sync(folder.fd(), "box");
    REQUIRE(failed);
    CHECK(failed->code == ErrorCode::io_error);
    CHECK(failed->message.find("box") != std::string::npos);

    result = ENOSPC;
    auto full = syncs.sync(folder.fd(), "box");
    REQUIRE(full);
    CHECK(full->code == ErrorCode::no_space);

    result = 0;
    CHECK_FALSE(syncs.sync(folder.fd(), "box"));
}

TEST_CASE("the process's coalescer really syncs a folder, also through an O_PATH descriptor")
{
    TempRoot root;
    const int path_fd = ::open(root.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(path_fd >= 0);
    const auto before = FolderSyncs::process().fsyncs();
    CHECK_FALSE(FolderSyncs::process().sync(path_fd, "."));
    CHECK(FolderSyncs::process().fsyncs() == before + 1);
    ::close(path_fd);
    // A descriptor that is no folder at all is an error, not a crash.
    CHECK(FolderSyncs::process().sync(-1, "nothing"));
}

TEST_CASE("a readable descriptor is synced as it is; an O_PATH one passed as readable is refused, not ignored")
{
    TempRoot root;
    Folder readable(root.path());
    const auto before = FolderSyncs::process().fsyncs();
    CHECK_FALSE(FolderSyncs::process().sync(readable.fd(), ".", FolderFd::readable));
    CHECK(FolderSyncs::process().fsyncs() == before + 1);
    // The kind is the caller's promise: an O_PATH descriptor wrongly called
    // readable fails loudly (EBADF from fsync) rather than syncing nothing.
    const int path_fd = ::open(root.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(path_fd >= 0);
    const auto refused = FolderSyncs::process().sync(path_fd, "box", FolderFd::readable);
    ::close(path_fd);
    REQUIRE(refused);
    CHECK(refused->message.find("box") != std::string::npos);
}

TEST_CASE("deferred changes of one folder cost one fsync at their sync, and none once another sync covered them")
{
    TempRoot root;
    std::filesystem::create_directory(root.path() + "/a");
    Folder folder(root.path());
    Folder other(root.path() + "/a");
    std::atomic<int> calls{0};
    FolderSyncs syncs([&](int) {
        ++calls;
        return 0;
    });
    auto first = syncs.defer(folder.fd(), "box");
    auto second = syncs.defer(folder.fd(), "box");
    auto elsewhere = syncs.defer(other.fd(), "a");
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(elsewhere);
    CHECK(first->same_folder(*second));
    CHECK_FALSE(first->same_folder(*elsewhere));
    CHECK(syncs.pinned() == 2);
    first->absorb(std::move(*second));
    CHECK_FALSE(syncs.sync(*first));
    CHECK(calls == 1);
    CHECK(first->empty());
    CHECK(syncs.pinned() == 1);
    // A plain sync of `a` (another commit's) ran after the deferred change:
    // it covers it, and the deferred sync runs none of its own.
    CHECK_FALSE(syncs.sync(other.fd(), "a", FolderFd::readable));
    CHECK(calls == 2);
    CHECK_FALSE(syncs.sync(*elsewhere));
    CHECK(calls == 2);
    CHECK(syncs.pinned() == 0);
    // A change deferred after that sync is not covered by it.
    auto later = syncs.defer(other.fd(), "a");
    REQUIRE(later);
    CHECK_FALSE(syncs.sync(*later));
    CHECK(calls == 3);
}

TEST_CASE("a change deferred while its folder's fsync runs needs the next fsync")
{
    TempRoot root;
    Folder folder(root.path());
    Gate gate;
    FolderSyncs syncs(gate.sync_folder());
    std::thread running([&] { CHECK_FALSE(syncs.sync(folder.fd(), "box", FolderFd::readable)); });
    REQUIRE(gate.wait_entered(1));
    // The fsync running now may have started before this change.
    auto pending = syncs.defer(folder.fd(), "box");
    REQUIRE(pending);
    std::atomic<bool> synced{false};
    std::thread deferred([&] {
        CHECK_FALSE(syncs.sync(*pending));
        synced = true;
    });
    gate.release(1);
    running.join();
    REQUIRE(gate.wait_entered(2));
    CHECK_FALSE(synced);
    gate.release(1);
    deferred.join();
    CHECK(synced);
    CHECK(gate.entered() == 2);
}

TEST_CASE("a deferred sync reports its fsync's failure; a dropped one unpins its folder unsynced")
{
    TempRoot root;
    Folder folder(root.path());
    std::atomic<int> result{EIO};
    std::atomic<int> calls{0};
    FolderSyncs syncs([&](int) {
        ++calls;
        return result.load();
    });
    auto pending = syncs.defer(folder.fd(), "box");
    REQUIRE(pending);
    auto failed = syncs.sync(*pending);
    REQUIRE(failed);
    CHECK(failed->code == ErrorCode::io_error);
    CHECK(failed->message.find("box") != std::string::npos);
    CHECK(syncs.pinned() == 0);
    {
        auto dropped = syncs.defer(folder.fd(), "box");
        REQUIRE(dropped);
        CHECK(syncs.pinned() == 1);
    }
    CHECK(syncs.pinned() == 0);
    CHECK(calls == 1);
}

TEST_CASE("past its bound of pinned folders, defer declines and the caller syncs at once")
{
    TempRoot root;
    std::filesystem::create_directory(root.path() + "/a");
    Folder folder(root.path());
    Folder other(root.path() + "/a");
    FolderSyncs syncs([](int) { return 0; }, 1);
    auto pinned = syncs.defer(folder.fd(), "box");
    REQUIRE(pinned);
    CHECK_FALSE(syncs.defer(other.fd(), "a"));
    // The folder pinned already takes more changes: no new descriptor.
    auto again = syncs.defer(folder.fd(), "box");
    CHECK(again);
    CHECK(syncs.pinned() == 1);
}

TEST_CASE("the process's coalescer really syncs a deferred folder through its own descriptor")
{
    TempRoot root;
    const int path_fd = ::open(root.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(path_fd >= 0);
    auto pending = FolderSyncs::process().defer(path_fd, ".");
    ::close(path_fd); // the commit's descriptor goes; the pin holds its own
    REQUIRE(pending);
    const auto before = FolderSyncs::process().fsyncs();
    CHECK_FALSE(FolderSyncs::process().sync(*pending));
    CHECK(FolderSyncs::process().fsyncs() == before + 1);
}

TEST_CASE("threads deferring changes of one folder at once pin it once and leave no descriptor behind")
{
    TempRoot root;
    Folder folder(root.path());
    std::atomic<int> calls{0};
    FolderSyncs syncs([&](int) {
        ++calls;
        return 0;
    });
    const auto open_descriptors = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                             std::filesystem::directory_iterator{});
    };
    const auto before = open_descriptors();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                auto pending = syncs.defer(folder.fd(), "box");
                if (!pending || (i % 2 == 0 && syncs.sync(*pending))) {
                    ++failures;
                }
                // The odd ones are dropped unsynced.
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(failures == 0);
    CHECK(syncs.pinned() == 0);
    CHECK(open_descriptors() == before);
    CHECK(calls > 0);
}
