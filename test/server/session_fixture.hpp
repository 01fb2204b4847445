// What the Session tests share: a FakeIo that records what the Session sends
// and holds its thread-pool jobs until the test runs them, a Fixture that
// serves a fresh folder, and helpers to build frames and read the replies.
#pragma once

#include "digest.hpp"
#include "frame.hpp"
#include "library.hpp"
#include "messages.hpp"
#include "session.hpp"
#include "session_io.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace ferry::server::session_test {

// Everything the session sent, split into control texts and data bytes.
struct Sent {
    std::vector<std::string> controls;
    std::string data;
};

class FakeIo final : public SessionIo {
public:
    void send(std::string bytes) override
    {
        if (on_send) {
            on_send();
        }
        outbox.append(bytes);
        if (hold_writes) {
            unsent += bytes.size();
        }
    }
    std::size_t unsent_bytes() const override { return unsent; }
    std::uint64_t acknowledged_bytes() const override { return acknowledged; }
    std::uint64_t unacknowledged_bytes() const override { return unacknowledged; }
    // Tests then clear `unacknowledged` and call on_sent(), as the connection would.
    void await_acknowledgement() override { ++acknowledgement_waits; }
    bool peer_on_this_host() const override { return on_this_host; }
    // Like the socket's sendfile: the file's bytes at the time of sending.
    bool supports_file_frames() const override { return file_frames; }
    void send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length) override
    {
        std::string payload(length, '\0');
        REQUIRE(::pread(file->fd(), payload.data(), length, static_cast<off_t>(offset)) ==
                static_cast<ssize_t>(length));
        const auto header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(length));
        outbox.append(reinterpret_cast<const char*>(header.data()), header.size());
        outbox.append(payload);
        ++file_frames_sent;
        largest_file_frame = std::max(largest_file_frame, length);
        if (hold_writes) {
            unsent += header.size() + length;
        }
    }
    void submit(std::unique_ptr<PoolJob> job) override { jobs.push_back(std::move(job)); }
    bool torn_down() const override { return torn; }
    void pause_reading() override { reading = false; }
    void resume_reading() override { reading = true; }
    void close() override { closed = true; }
    const std::string& peer() const override { return name; }
    std::string address() const override { return client_address; }
    std::uint64_t now_ms() const override { return clock_ms; }

    // Runs queued jobs (and the jobs their completions queue) to the end.
    void run_jobs()
    {
        while (!jobs.empty()) {
            auto job = std::move(jobs.front());
            jobs.pop_front();
            job->work();
            job->done();
        }
    }

    void run_one_job()
    {
        REQUIRE_FALSE(jobs.empty());
        auto job = std::move(jobs.front());
        jobs.pop_front();
        job->work();
        job->done();
    }

    // Splits everything sent so far into control texts and data bytes.
    void drain(std::vector<std::string>& controls, std::string& data)
    {
        FrameDecoder decoder(16 * 1024 * 1024);
        std::size_t at = 0;
        while (at < outbox.size()) {
            auto event =
                decoder.next(std::span(reinterpret_cast<const std::uint8_t*>(outbox.data()) + at, outbox.size() - at));
            REQUIRE(event.kind != DecodeEvent::Kind::error);
            at += event.consumed;
            if (event.kind == DecodeEvent::Kind::control) {
                controls.push_back(event.text);
            } else if (event.kind == DecodeEvent::Kind::data) {
                data.append(reinterpret_cast<const char*>(event.bytes.data()), event.bytes.size());
            } else {
                break;
            }
        }
        outbox.clear();
    }

    Sent drain()
    {
        Sent sent;
        drain(sent.controls, sent.data);
        return sent;
    }

    std::vector<std::string> controls()
    {
        std::vector<std::string> texts;
        std::string ignored;
        drain(texts, ignored);
        return texts;
    }

    // The control texts sent so far, which must be exactly `expected` many.
    std::vector<std::string> replies(std::size_t expected)
    {
        auto texts = controls();
        REQUIRE(texts.size() == expected);
        return texts;
    }

    std::string outbox;
    // Called as each send begins: what the server's state is when a reply
    // can first reach the peer.
    std::function<void()> on_send;
    bool file_frames = false;
    int file_frames_sent = 0;
    std::size_t largest_file_frame = 0;
    std::size_t unsent = 0;
    bool hold_writes = false;
    std::deque<std::unique_ptr<PoolJob>> jobs;
    // The connection closed under the session (a forced close).
    bool torn = false;
    bool reading = true;
    bool closed = false;
    std::string name = "test-peer";
    std::string client_address = "192.0.2.1";
    // What the peer's TCP stack acknowledged: tests move it by hand.
    std::uint64_t acknowledged = 0;
    // Written and not yet acknowledged: tests set it by hand.
    std::uint64_t unacknowledged = 0;
    int acknowledgement_waits = 0;
    bool on_this_host = false;
    std::uint64_t clock_ms = 1000;
};

std::string control(const Request& request);
std::string data_frame(std::string_view bytes);
std::string sha256_of(std::string_view bytes);
std::string xxh3_of(std::string_view bytes);
// `size` bytes that differ with `seed`, the same every run.
std::string pattern(std::size_t size, unsigned seed);

struct Fixture {
    Fixture() : Fixture(std::string()) {}
    // With a path, serves that folder instead of a fresh one.
    explicit Fixture(const std::string& served)
        : library(std::move(Library::open(served.empty() ? root.path() : served).value())),
          session(io, *library, config, counters)
    {
        // The tests of read chunks and file frames send small files: they
        // keep those paths; the tests of a whole read ask for it.
        config.whole_read_max = 0;
    }

    void feed(std::string_view bytes) { session.on_bytes(std::span(bytes.data(), bytes.size())); }

    void hello(std::uint32_t version = kMaxProtocolVersion)
    {
        feed(control(Request{0, HelloRequest{version, "", ""}}));
        const auto replies = io.replies(1);
        REQUIRE(parse_hello_reply(replies[0]));
    }

    TempRoot root;
    Config config;
    Counters counters;
    FakeIo io;
    std::unique_ptr<Library> library;
    Session session;
};

// A put of `content` whose connection drops after `sent` bytes: what it
// leaves in `served` is a kept upload to resume.
void interrupt_upload(const TempRoot& served, const std::string& name, const std::string& content, std::size_t sent);

} // namespace ferry::server::session_test
