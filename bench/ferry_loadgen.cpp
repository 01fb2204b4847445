// ferry-loadgen: the C, D and E load generators of bench/compare.sh in C++,
// so that the clients cost little beside the server they measure (the Python
// asyncio clients of ferry_load.py shared the machine's two cores with
// ferryd and bounded what C and D could show).
//
// One libuv loop per thread (one thread, except burst --threads), every
// connection non-blocking. It speaks the
// real wire format through the protocol library (frame encoder and decoder,
// the request encoder and the reply parsers), so a reply the server gets
// wrong fails here as it would in the client.
//
//   ferry-loadgen burst PORT NAME N [--deadline S] [--verify sha256|xxh3-128|none] [--threads T]
//       C: N connections at once (every connect issued before the loop
//       runs), each pipelines hello + get NAME, reads the data frames and
//       checks the size and digest of what it got against the trailer.
//       --threads spreads them over T loops, one thread each (1), so that
//       a many-core server is not measured through one client core.
//   ferry-loadgen list PORT [--conns K] [--duration S] [--expect N]
//       D: K persistent sessions, each with one list request in flight at a
//       time (like wrk's keep-alive connections), back to back for S
//       seconds; every reply must name N files.
//   ferry-loadgen idle PORT N --pid PID [--hold S] [--deadline S]
//       E: N connections, at most --window connecting at once, each sends
//       hello and must get its reply; held for S seconds, then the
//       server's Pss/Rss (smaps_rollup) per connection.
//   Common: --host (127.0.0.1), --sources K (spread the connections over
//   the source addresses 127.0.0.1 .. 127.0.0.K: each has its own
//   ephemeral ports, which 50,000 connections to one port need).
//
// Each prints one JSON object on stdout, with the same fields as
// ferry_load.py's subcommand of the same name. Every wait is bounded.
#include "frame.hpp"
#include "messages.hpp"
#include "transfer_hash.hpp"

#include <nlohmann/json.hpp>
#include <uv.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using ferry::DecodeEvent;
using ferry::FrameDecoder;
using Json = nlohmann::json;

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    int sources = 1;
    double deadline = 60;
    double duration = 10;
    double hold = 3;
    int conns = 8;
    int window = 512;
    std::size_t expect = 100;
    long pid = 0;
    std::string verify = "sha256";
    int threads = 1; // burst: loop threads the connections are spread over
};

double now_s()
{
    return static_cast<double>(uv_hrtime()) / 1e9;
}

double cpu_self_s()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void raise_fd_limit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

rlim_t fd_limit()
{
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_cur;
}

std::string control_frame(const ferry::RequestBody& body, std::uint64_t id)
{
    return ferry::encode_control_frame(ferry::encode_request(ferry::Request{id, body}));
}

std::string hello_frame()
{
    ferry::HelloRequest hello;
    hello.version = 1;
    hello.client = "ferry-loadgen/1";
    return control_frame(hello, 0);
}

// One read buffer per loop thread: libuv calls read_cb right after alloc_cb,
// and every handler consumes what it is given.
thread_local char g_read_buffer[256 * 1024];

void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf)
{
    *buf = uv_buf_init(g_read_buffer, sizeof g_read_buffer);
}

// A connection of any of the three loads. `on_message` gets each control
// frame's JSON, `on_data` each piece of a data frame; either returns false
// to end the connection (then `finish` has been called).
class Client {
public:
    virtual ~Client() = default;

    uv_tcp_t tcp{};
    uv_connect_t connect{};
    FrameDecoder decoder{16 * 1024 * 1024};
    bool open = false;
    bool closing = false;

    bool start(uv_loop_t* loop, const sockaddr_in& to, const std::optional<sockaddr_in>& from)
    {
        uv_tcp_init(loop, &tcp);
        tcp.data = this;
        if (from) {
            if (const int rc = uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&*from), 0); rc != 0) {
                failed(std::string("bind: ") + uv_strerror(rc));
                return false;
            }
        }
        connect.data = this;
        const int rc = uv_tcp_connect(&connect, &tcp, reinterpret_cast<const sockaddr*>(&to), on_connect);
        if (rc != 0) {
            failed(std::string("connect: ") + uv_strerror(rc));
            return false;
        }
        return true;
    }

    void write(std::string bytes)
    {
        struct Write {
            uv_write_t request{};
            std::string bytes;
        };
        auto* request = new Write;
        request->bytes = std::move(bytes);
        request->request.data = request;
        uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned int>(request->bytes.size()));
        const int rc = uv_write(&request->request, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                                [](uv_write_t* done, int) { delete static_cast<Write*>(done->data); });
        if (rc != 0) {
            delete request;
            failed(std::string("write: ") + uv_strerror(rc));
        }
    }

    void close()
    {
        if (!closing) {
            closing = true;
            uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* handle) {
                static_cast<Client*>(handle->data)->closed();
            });
        }
    }

    // The connection ended badly: `why` is counted and the socket closed.
    virtual void failed(const std::string& why) = 0;

protected:
    virtual void connected() = 0;
    virtual bool on_message(const std::string& json) = 0;
    virtual bool on_data(std::span<const std::uint8_t>, bool) { return true; }
    virtual void closed() {}

private:
    static void on_connect(uv_connect_t* request, int status)
    {
        auto* self = static_cast<Client*>(request->data);
        if (status != 0) {
            self->failed(std::string("connect: ") + uv_strerror(status));
            return;
        }
        self->open = true;
        uv_tcp_nodelay(&self->tcp, 1);
        self->connected();
        if (!self->closing) {
            uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp), on_alloc, on_read);
        }
    }

    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
    {
        auto* self = static_cast<Client*>(stream->data);
        if (nread < 0) {
            self->failed(nread == UV_EOF ? "closed by server" : std::string("read: ") + uv_strerror(static_cast<int>(nread)));
            return;
        }
        auto input = std::span(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(nread));
        while (!input.empty() && !self->closing) {
            DecodeEvent event = self->decoder.next(input);
            input = input.subspan(event.consumed);
            switch (event.kind) {
            case DecodeEvent::Kind::need_more:
                break;
            case DecodeEvent::Kind::control:
                if (!self->on_message(event.text)) {
                    return;
                }
                break;
            case DecodeEvent::Kind::data:
                if (!self->on_data(event.bytes, event.frame_end)) {
                    return;
                }
                break;
            case DecodeEvent::Kind::error:
                self->failed("frame: " + event.error.message);
                return;
            }
        }
    }
};

sockaddr_in address_of(const std::string& host, int port)
{
    sockaddr_in to{};
    if (uv_ip4_addr(host.c_str(), port, &to) != 0) {
        std::fprintf(stderr, "ferry-loadgen: not an IPv4 address: %s\n", host.c_str());
        std::exit(2);
    }
    return to;
}

// The i-th connection's source address: 127.0.0.(1 + i % sources), or none
// (the kernel's choice) with one source.
std::optional<sockaddr_in> source_of(const Options& options, std::size_t i)
{
    if (options.sources <= 1) {
        return std::nullopt;
    }
    const std::string ip = "127.0.0." + std::to_string(1 + i % static_cast<std::size_t>(options.sources));
    return address_of(ip, 0);
}

void count_error(std::map<std::string, std::uint64_t>& errors, std::string& first, const std::string& why)
{
    ++errors[why];
    if (first.empty()) {
        first = why;
    }
}

// ---- C: burst -------------------------------------------------------------------

struct BurstTotals {
    double t0 = 0;
    std::uint64_t ok = 0;
    std::uint64_t bytes = 0;
    std::vector<double> ok_secs;
    std::vector<double> connect_secs;
    std::map<std::string, std::uint64_t> errors;
    std::string first;
    std::size_t open = 0; // connections not finished yet
};

class GetClient final : public Client {
public:
    GetClient(BurstTotals& totals, std::string name, std::optional<ferry::HashKind> verify)
        : totals_(totals), name_(std::move(name)), verify_(verify)
    {
        if (verify_) {
            hash_.emplace(*verify_);
        }
    }

    void failed(const std::string& why) override
    {
        if (!done_) {
            done_ = true;
            --totals_.open;
            count_error(totals_.errors, totals_.first, why);
        }
        close();
    }

protected:
    void connected() override
    {
        totals_.connect_secs.push_back(now_s() - totals_.t0);
        ferry::GetRequest get;
        get.name = name_;
        get.hash = verify_.value_or(ferry::HashKind::sha256);
        write(hello_frame() + control_frame(get, 1)); // pipelined, like the Python client
    }

    bool on_message(const std::string& json) override
    {
        switch (stage_) {
        case Stage::hello: {
            auto reply = ferry::parse_hello_reply(json);
            if (!reply) {
                failed("hello: " + std::string(ferry::to_string(reply.error().code)));
                return false;
            }
            stage_ = Stage::get;
            return true;
        }
        case Stage::get: {
            auto reply = ferry::parse_get_reply(json);
            if (!reply) {
                failed("get: " + std::string(ferry::to_string(reply.error().code)));
                return false;
            }
            size_ = reply->body.file.size;
            stage_ = Stage::data;
            return true;
        }
        case Stage::data: {
            auto trailer = ferry::parse_trailer(json);
            if (!trailer) {
                failed("trailer: " + std::string(ferry::to_string(trailer.error().code)));
                return false;
            }
            if (trailer->body.size != received_ || received_ != size_) {
                failed("size differs from the trailer");
                return false;
            }
            if (hash_ && trailer->body.digest != hash_->hex_digest()) {
                failed("digest differs from the trailer");
                return false;
            }
            done_ = true;
            --totals_.open;
            ++totals_.ok;
            totals_.bytes += received_;
            totals_.ok_secs.push_back(now_s() - totals_.t0);
            close();
            return false;
        }
        }
        return false;
    }

    bool on_data(std::span<const std::uint8_t> bytes, bool) override
    {
        if (stage_ != Stage::data) {
            failed("data before the get reply");
            return false;
        }
        received_ += bytes.size();
        if (hash_) {
            hash_->update(bytes.data(), bytes.size());
        }
        return true;
    }

private:
    enum class Stage { hello, get, data };
    BurstTotals& totals_;
    std::string name_;
    std::optional<ferry::HashKind> verify_;
    std::optional<ferry::TransferHash> hash_;
    Stage stage_ = Stage::hello;
    std::uint64_t size_ = 0;
    std::uint64_t received_ = 0;
    bool done_ = false;
};

// Ends the loop once `open` reaches 0 or the deadline passes (then every
// unfinished connection fails with "timeout").
struct Watchdog {
    uv_timer_t timer{};
    std::function<bool()> finished;
    std::function<void()> expire;
    double end = 0;
    bool expired = false;
};

void run_until(uv_loop_t* loop, double end, std::function<bool()> finished, std::function<void()> expire)
{
    Watchdog dog;
    dog.finished = std::move(finished);
    dog.expire = std::move(expire);
    dog.end = end;
    uv_timer_init(loop, &dog.timer);
    dog.timer.data = &dog;
    uv_timer_start(
        &dog.timer,
        [](uv_timer_t* timer) {
            auto* self = static_cast<Watchdog*>(timer->data);
            if (self->finished()) {
                uv_timer_stop(timer);
                uv_stop(timer->loop);
            } else if (!self->expired && now_s() >= self->end) {
                // once; the check above then ends the loop when the
                // expired connections have failed
                self->expired = true;
                self->expire();
            }
        },
        10, 10);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&dog.timer), nullptr);
    uv_run(loop, UV_RUN_NOWAIT); // its close (connections may stay open)
}

// One thread's share of a burst: the connections i with i % threads == t,
// on a loop of its own, all timed from the burst's common start t0.
BurstTotals burst_share(const Options& options, const std::string& name, std::optional<ferry::HashKind> verify,
                        std::size_t n, std::size_t threads, std::size_t t, double t0)
{
    uv_loop_t loop{};
    uv_loop_init(&loop);
    const sockaddr_in to = address_of(options.host, options.port);
    BurstTotals totals;
    totals.t0 = t0;
    std::vector<std::unique_ptr<GetClient>> clients;
    // Every connect of this share goes out before its loop runs: one burst.
    for (std::size_t i = t; i < n; i += threads) {
        clients.push_back(std::make_unique<GetClient>(totals, name, verify));
        ++totals.open;
        clients.back()->start(&loop, to, source_of(options, i));
    }
    run_until(
        &loop, t0 + options.deadline, [&] { return totals.open == 0; },
        [&] {
            for (auto& client : clients) {
                client->failed("timeout"); // a finished one ignores it
            }
        });
    for (auto& client : clients) {
        client->close(); // an already closed one ignores it
    }
    uv_run(&loop, UV_RUN_DEFAULT); // the close callbacks, before the clients go
    uv_loop_close(&loop);
    return totals;
}

int burst(const Options& options, const std::string& name, std::size_t n)
{
    std::optional<ferry::HashKind> verify;
    if (options.verify != "none") {
        verify = ferry::hash_from_name(options.verify);
        if (!verify) {
            std::fprintf(stderr, "ferry-loadgen: --verify sha256, xxh3-128 or none\n");
            return 2;
        }
    }
    // One loop thread receives (and hashes) at about one core's speed: past a
    // few server workers, a single-threaded client would measure itself.
    const std::size_t threads = std::clamp<std::size_t>(static_cast<std::size_t>(options.threads), 1, std::max<std::size_t>(n, 1));
    std::vector<BurstTotals> shares(threads);
    const double c0 = cpu_self_s();
    const double t0 = now_s();
    {
        std::vector<std::jthread> others;
        for (std::size_t t = 1; t < threads; ++t) {
            others.emplace_back([&, t] { shares[t] = burst_share(options, name, verify, n, threads, t, t0); });
        }
        shares[0] = burst_share(options, name, verify, n, threads, 0, t0);
    } // joins the others
    const double wall = now_s() - t0;
    BurstTotals totals;
    for (auto& share : shares) {
        totals.ok += share.ok;
        totals.bytes += share.bytes;
        totals.ok_secs.insert(totals.ok_secs.end(), share.ok_secs.begin(), share.ok_secs.end());
        totals.connect_secs.insert(totals.connect_secs.end(), share.connect_secs.begin(), share.connect_secs.end());
        for (const auto& [why, count] : share.errors) {
            totals.errors[why] += count;
        }
        if (totals.first.empty()) {
            totals.first = share.first;
        }
    }
    std::sort(totals.ok_secs.begin(), totals.ok_secs.end());
    Json errors = Json::object();
    for (const auto& [why, count] : totals.errors) {
        errors[why] = count;
    }
    Json out{{"clients", n},
             {"threads", threads},
             {"ok", totals.ok},
             {"failed", n - totals.ok},
             {"bytes", totals.bytes},
             {"wall_s", wall},
             {"slowest_ok_s", totals.ok_secs.empty() ? Json() : Json(totals.ok_secs.back())},
             {"median_ok_s", totals.ok_secs.empty() ? Json() : Json(totals.ok_secs[totals.ok_secs.size() / 2])},
             {"last_connect_s", totals.connect_secs.empty()
                                    ? Json()
                                    : Json(*std::max_element(totals.connect_secs.begin(), totals.connect_secs.end()))},
             // a connect that took a second or more had its SYN dropped and resent
             {"slow_connects", std::count_if(totals.connect_secs.begin(), totals.connect_secs.end(),
                                             [](double s) { return s >= 0.9; })},
             {"client_cpu_s", cpu_self_s() - c0},
             {"client", "ferry-loadgen"},
             {"errors", errors}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

// ---- D: list ---------------------------------------------------------------------

struct ListTotals {
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    std::string first;
    std::map<std::string, std::uint64_t> why;
    bool stopping = false;
    std::size_t open = 0;
};

class ListClient final : public Client {
public:
    ListClient(ListTotals& totals, std::size_t expect) : totals_(totals), expect_(expect) {}

    void failed(const std::string& why) override
    {
        ++totals_.errors;
        count_error(totals_.why, totals_.first, why);
        end();
    }

    void end()
    {
        if (!ended_) {
            ended_ = true;
            --totals_.open;
        }
        close();
    }

protected:
    void connected() override { write(hello_frame()); }

    bool on_message(const std::string& json) override
    {
        if (!hello_done_) {
            if (auto reply = ferry::parse_hello_reply(json); !reply) {
                failed("hello: " + std::string(ferry::to_string(reply.error().code)));
                return false;
            }
            hello_done_ = true;
        } else {
            auto reply = ferry::parse_list_reply(json);
            if (!reply) {
                failed("list: " + std::string(ferry::to_string(reply.error().code)));
                return false;
            }
            if (reply->body.files.size() == expect_) {
                ++totals_.ok;
            } else {
                ++totals_.errors;
                count_error(totals_.why, totals_.first,
                            "listed " + std::to_string(reply->body.files.size()) + " files, expected " +
                                std::to_string(expect_));
            }
        }
        if (totals_.stopping) {
            end();
            return false;
        }
        write(control_frame(ferry::ListRequest{}, ++id_)); // the next one, back to back
        return true;
    }

private:
    ListTotals& totals_;
    std::size_t expect_;
    std::uint64_t id_ = 0;
    bool hello_done_ = false;
    bool ended_ = false;
};

int list(const Options& options)
{
    uv_loop_t* loop = uv_default_loop();
    const sockaddr_in to = address_of(options.host, options.port);
    ListTotals totals;
    std::vector<std::unique_ptr<ListClient>> clients;
    const double c0 = cpu_self_s();
    const double t0 = now_s();
    for (int i = 0; i < options.conns; ++i) {
        clients.push_back(std::make_unique<ListClient>(totals, options.expect));
        ++totals.open;
        clients.back()->start(loop, to, source_of(options, static_cast<std::size_t>(i)));
    }
    // At the end of the duration no new request is sent; the ones in
    // flight are answered and counted (they were asked within the time).
    double secs = 0;
    run_until(
        loop, t0 + options.duration + 30,
        [&] {
            if (!totals.stopping && now_s() - t0 >= options.duration) {
                totals.stopping = true;
                secs = now_s() - t0;
            }
            return totals.open == 0;
        },
        [&] {
            for (auto& client : clients) {
                client->failed("timeout");
            }
        });
    if (secs == 0) {
        secs = now_s() - t0;
    }
    Json out{{"workers", options.conns},
             {"ok", totals.ok},
             {"errors", totals.errors},
             {"secs", secs},
             {"rps", static_cast<double>(totals.ok) / secs},
             {"client_cpu_s", cpu_self_s() - c0},
             {"client", "ferry-loadgen"},
             {"first_error", totals.first}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

// ---- E: idle ---------------------------------------------------------------------

std::map<std::string, long> proc_memory(long pid)
{
    std::map<std::string, long> out{{"rss_kb", 0}, {"pss_kb", 0}};
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            out["rss_kb"] = std::atol(line.c_str() + 6);
        }
    }
    std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
    while (std::getline(rollup, line)) {
        if (line.rfind("Pss:", 0) == 0) {
            out["pss_kb"] = std::atol(line.c_str() + 4);
        }
    }
    return out;
}

// ESTABLISHED sockets on local PORT that PID holds as descriptors:
// connections the server really accepted, not just the kernel's queue.
std::size_t established_held(long pid, int port)
{
    std::set<std::string> established;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
            fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
            const auto colon = local.rfind(':');
            if (state == "01" && colon != std::string::npos &&
                std::strtol(local.c_str() + colon + 1, nullptr, 16) == port) {
                established.insert(inode);
            }
        }
    }
    std::size_t held = 0;
    const std::string folder = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR* dir = opendir(folder.c_str())) {
        while (const dirent* entry = readdir(dir)) {
            char target[64];
            const std::string link = folder + "/" + entry->d_name;
            const ssize_t length = readlink(link.c_str(), target, sizeof target - 1);
            if (length <= 9) {
                continue;
            }
            target[length] = '\0';
            const std::string text(target);
            if (text.rfind("socket:[", 0) == 0 && established.contains(text.substr(8, text.size() - 9))) {
                ++held;
            }
        }
        closedir(dir);
    }
    return held;
}

struct IdleTotals {
    std::size_t connected = 0;
    std::size_t connect_failed = 0;
    std::size_t greeted = 0;
    std::size_t bad_greeting = 0;
    std::size_t closed_by_server = 0;
    std::size_t in_flight = 0; // connecting or waiting for the hello reply
    std::string first;
    std::map<std::string, std::uint64_t> why;
    bool holding = false;
};

class IdleClient final : public Client {
public:
    explicit IdleClient(IdleTotals& totals) : totals_(totals) {}

    // The deadline passed: one that has not been greeted yet fails.
    void expire()
    {
        if (stage_ == Stage::connecting || stage_ == Stage::greeting) {
            failed("timeout");
        }
    }

    void failed(const std::string& why) override
    {
        if (stage_ == Stage::connecting) {
            ++totals_.connect_failed;
            --totals_.in_flight;
        } else if (stage_ == Stage::greeting) {
            ++totals_.bad_greeting;
            --totals_.in_flight;
        } else if (stage_ == Stage::held) {
            ++totals_.closed_by_server;
        }
        if (stage_ != Stage::over) {
            count_error(totals_.why, totals_.first, why);
        }
        stage_ = Stage::over;
        close();
    }

protected:
    void connected() override
    {
        ++totals_.connected;
        stage_ = Stage::greeting;
        write(hello_frame());
    }

    bool on_message(const std::string& json) override
    {
        if (stage_ != Stage::greeting) {
            failed("unexpected message while idle");
            return false;
        }
        if (auto reply = ferry::parse_hello_reply(json); !reply) {
            failed("hello: " + std::string(ferry::to_string(reply.error().code)));
            return false;
        }
        ++totals_.greeted;
        --totals_.in_flight;
        stage_ = Stage::held;
        return true;
    }

private:
    enum class Stage { connecting, greeting, held, over };
    IdleTotals& totals_;
    Stage stage_ = Stage::connecting;
};

int idle(const Options& options, std::size_t n)
{
    if (fd_limit() < n + 64) {
        std::fprintf(stderr, "ferry-loadgen: ulimit -n is %llu, too low for %zu connections\n",
                     static_cast<unsigned long long>(fd_limit()), n);
        return 2;
    }
    uv_loop_t* loop = uv_default_loop();
    const sockaddr_in to = address_of(options.host, options.port);
    IdleTotals totals;
    const auto before = proc_memory(options.pid);
    std::vector<std::unique_ptr<IdleClient>> clients;
    clients.reserve(n);
    const double t0 = now_s();
    // At most `window` connections connect or wait for their hello at
    // once: a burst of 50,000 SYNs would overflow any listen queue, and E
    // measures what is held, not how fast it is opened.
    struct Opener {
        uv_idle_t idle{};
        std::size_t next = 0;
    } opener;
    double t_open = 0;
    auto open_more = [&] {
        while (opener.next < n && totals.in_flight < static_cast<std::size_t>(options.window) &&
               now_s() - t0 < options.deadline) {
            clients.push_back(std::make_unique<IdleClient>(totals));
            ++totals.in_flight;
            clients.back()->start(loop, to, source_of(options, opener.next));
            ++opener.next;
        }
    };
    open_more();
    run_until(
        loop, t0 + options.deadline,
        [&] {
            open_more();
            if ((opener.next == n || now_s() - t0 >= options.deadline) && totals.in_flight == 0) {
                if (t_open == 0) {
                    t_open = now_s() - t0;
                }
                return true;
            }
            return false;
        },
        [&] {
            for (auto& client : clients) {
                client->expire();
            }
        });
    if (t_open == 0) {
        t_open = now_s() - t0;
    }
    // Hold: the loop runs (a close by the server is noticed) for `hold` s.
    totals.holding = true;
    const double hold_end = now_s() + options.hold;
    run_until(loop, hold_end + 1, [&] { return now_s() >= hold_end; }, [] {});
    const auto after = proc_memory(options.pid);
    const std::size_t held = established_held(options.pid, options.port);
    const double k = static_cast<double>(std::max<std::size_t>(totals.connected, 1));
    auto per = [&](const char* key) {
        return std::round((static_cast<double>(after.at(key) - before.at(key)) / k) * 1000.0) / 1000.0;
    };
    Json out{{"asked", n},
             {"connected", totals.connected},
             {"connect_failed", totals.connect_failed},
             {"greeted", totals.greeted},
             {"no_or_bad_greeting", totals.connected - totals.greeted},
             {"closed_by_server", totals.closed_by_server},
             {"server_held_estab", held},
             {"open_secs", std::round(t_open * 100) / 100},
             {"open_and_hello_secs", std::round(t_open * 100) / 100},
             {"rss_kb_before", before.at("rss_kb")},
             {"rss_kb_after", after.at("rss_kb")},
             {"pss_kb_before", before.at("pss_kb")},
             {"pss_kb_after", after.at("pss_kb")},
             {"nproc_before", 1},
             {"nproc_after", 1},
             {"rss_kb_per_conn", per("rss_kb")},
             {"pss_kb_per_conn", per("pss_kb")},
             {"client", "ferry-loadgen"},
             {"first_error", totals.first}};
    for (auto& client : clients) {
        client->close();
    }
    uv_run(loop, UV_RUN_DEFAULT);
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

[[noreturn]] void usage()
{
    std::fprintf(stderr,
                 "usage: ferry-loadgen burst PORT NAME N [--deadline S] [--verify sha256|xxh3-128|none] [--threads T]\n"
                 "       ferry-loadgen list PORT [--conns K] [--duration S] [--expect N]\n"
                 "       ferry-loadgen idle PORT N --pid PID [--hold S] [--deadline S] [--window W]\n"
                 "       common: [--host IPV4] [--sources K]\n");
    std::exit(2);
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> positional;
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) {
            positional.push_back(arg);
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        const std::string value = argv[++i];
        if (arg == "--host") {
            options.host = value;
        } else if (arg == "--sources") {
            options.sources = std::max(1, std::atoi(value.c_str()));
        } else if (arg == "--deadline") {
            options.deadline = std::atof(value.c_str());
        } else if (arg == "--duration") {
            options.duration = std::atof(value.c_str());
        } else if (arg == "--hold") {
            options.hold = std::atof(value.c_str());
        } else if (arg == "--conns" || arg == "--workers") {
            options.conns = std::max(1, std::atoi(value.c_str()));
        } else if (arg == "--window") {
            options.window = std::max(1, std::atoi(value.c_str()));
        } else if (arg == "--expect") {
            options.expect = static_cast<std::size_t>(std::atol(value.c_str()));
        } else if (arg == "--pid") {
            options.pid = std::atol(value.c_str());
        } else if (arg == "--verify") {
            options.verify = value;
        } else if (arg == "--threads") {
            options.threads = std::max(1, std::atoi(value.c_str()));
        } else {
            usage();
        }
    }
    if (positional.size() < 2) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    const std::string& command = positional[0];
    options.port = std::atoi(positional[1].c_str());
    if (command == "burst" && positional.size() == 4) {
        return burst(options, positional[2], static_cast<std::size_t>(std::atol(positional[3].c_str())));
    }
    if (command == "list" && positional.size() == 2) {
        return list(options);
    }
    if (command == "idle" && positional.size() == 3 && options.pid > 0) {
        return idle(options, static_cast<std::size_t>(std::atol(positional[2].c_str())));
    }
    usage();
}
