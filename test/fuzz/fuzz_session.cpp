// libFuzzer target: the connection state machine fed arbitrary bytes after
// a valid hello, over a real (temporary) served folder. Jobs run inline, as
// if the disk were instant; the peer then hangs up. Nothing may crash, and
// nothing outside the folder may be touched (ASan/UBSan watch the rest).
#include "config.hpp"
#include "library.hpp"
#include "messages.hpp"
#include "session.hpp"
#include "session_io.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

class InlineIo final : public ferry::server::SessionIo {
public:
    void send(std::string bytes) override { sent += bytes.size(); }
    std::size_t unsent_bytes() const override { return 0; }
    std::uint64_t acknowledged_bytes() const override { return sent; }
    std::uint64_t unacknowledged_bytes() const override { return 0; }
    void await_acknowledgement() override {}
    bool peer_on_this_host() const override { return false; }
    // File frames are only counted: the fuzzer drives the session's paths,
    // and the bytes of a file are not input it chooses.
    bool supports_file_frames() const override { return true; }
    void send_file_frame(std::shared_ptr<const ferry::server::OpenFile>, std::uint64_t, std::size_t length) override
    {
        sent += length;
    }
    void submit(std::unique_ptr<ferry::server::PoolJob> job) override
    {
        job->work();
        job->done();
    }
    bool torn_down() const override { return false; }
    void pause_reading() override {}
    void resume_reading() override {}
    void close() override { closed = true; }
    const std::string& peer() const override { return name; }
    std::string address() const override { return name; }
    std::uint64_t now_ms() const override { return 0; }

    std::size_t sent = 0;
    bool closed = false;
    std::string name = "fuzz";
};

const std::string& served_folder()
{
    static const std::string path = [] {
        std::string pattern = (std::filesystem::temp_directory_path() / "ferry-fuzz-XXXXXX").string();
        std::string made = ::mkdtemp(pattern.data());
        std::ofstream(made + "/a.txt") << "hello";
        std::ofstream(made + "/b.bin") << std::string(3000, 'b');
        return made;
    }();
    return path;
}

// Uploads the fuzzer starts are kept as partials; clear them so the folder
// does not grow over millions of runs.
void remove_partials()
{
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(served_folder(), ignored)) {
        const std::string name = entry.path().filename().string();
        if (name != "a.txt" && name != "b.bin") {
            std::filesystem::remove_all(entry.path(), ignored);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size)
{
    static auto library = std::move(ferry::server::Library::open(served_folder()).value());
    ferry::server::Config config;
    config.chunk_size = 512;
    config.max_upload_size = 1 << 20;
    ferry::server::Counters counters;
    InlineIo io;
    {
        ferry::server::Session session(io, *library, config, counters);
        const std::string hello =
            ferry::encode_control_frame(ferry::encode_request(ferry::Request{0, ferry::HelloRequest{}}));
        session.on_bytes(std::span(hello.data(), hello.size()));
        // Feed in a few slices so that partial frames are exercised too.
        const auto* text = reinterpret_cast<const char*>(bytes);
        const std::size_t third = size / 3;
        session.on_bytes(std::span(text, third));
        session.on_bytes(std::span(text + third, size - third));
        session.on_peer_closed();
        if (!io.closed || counters.active_transfers != 0) {
            std::abort();
        }
    }
    remove_partials();
    return 0;
}
