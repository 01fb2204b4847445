#include "connection.hpp"

#include "interrupt.hpp"
#include "names.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>
#include <variant>

namespace ferry::client {

namespace {

// The server's replies are not bound by the max_control_frame it announces
// (that caps what it accepts); a list of a large folder can be big. This
// only keeps a broken server from making us buffer without end.
constexpr std::uint32_t kMaxIncomingControlFrame = 64 * 1024 * 1024;
// In lent memory, a read goes on where the last one ended while this much
// room is left; less, and the connection asks for fresh memory.
constexpr std::size_t kMinLentRead = 128 * 1024;
// How often a wait wakes to look at the interrupt flag.
constexpr std::chrono::milliseconds kWakeInterval{200};

std::string seconds_text(std::chrono::milliseconds ms)
{
    const auto whole = ms.count() / 1000;
    const auto tenths = (ms.count() % 1000) / 100;
    return std::to_string(whole) + (tenths != 0 ? "." + std::to_string(tenths) : "") + " s";
}

Error interrupted_error()
{
    return Error{ErrorCode::aborted, "interrupted"};
}

// Connects one resolved address, waiting up to `deadline`. Returns the
// socket, or -1 with errno set.
int connect_one(const addrinfo& info, std::chrono::steady_clock::time_point deadline, bool& timed_out,
                bool& was_interrupted)
{
    const int fd = ::socket(info.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, info.ai_protocol);
    if (fd < 0) {
        return -1;
    }
    if (::connect(fd, info.ai_addr, info.ai_addrlen) == 0) {
        return fd;
    }
    if (errno != EINPROGRESS) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::close(fd);
            timed_out = true;
            errno = ETIMEDOUT;
            return -1;
        }
        if (interrupted()) {
            ::close(fd);
            was_interrupted = true;
            errno = EINTR;
            return -1;
        }
        pollfd pfd{fd, POLLOUT, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(std::min(left, kWakeInterval).count()));
        if (ready < 0 && errno != EINTR) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            return -1;
        }
        if (ready > 0) {
            break;
        }
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    if (err != 0) {
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

} // namespace

Error unexpected_message(std::string_view json_text)
{
    // Every server error has the same shape, which any reply parser reads;
    // an ok:true message here fails the abort reply's fields instead.
    const auto parsed = parse_abort_reply(json_text);
    if (!parsed.ok() && parsed.error().code != ErrorCode::bad_json && parsed.error().code != ErrorCode::bad_request) {
        return parsed.error();
    }
    constexpr std::size_t kShown = 200;
    std::string shown(json_text.substr(0, kShown));
    if (json_text.size() > kShown) {
        shown += "...";
    }
    return protocol_error("unexpected message " + shown);
}

Connection::Connection(Endpoint endpoint, ConnectOptions options, Transport transport)
    : endpoint_(std::move(endpoint)), options_(std::move(options)), transport_(std::move(transport)),
      decoder_(kMaxIncomingControlFrame), buffer_(sys::make_page_buffer<std::uint8_t>(kReceiveBuffer))
{
}

Connection::Connection(Connection&& other) noexcept
    : endpoint_(std::move(other.endpoint_)), options_(std::move(other.options_)),
      transport_(std::move(other.transport_)), hello_(std::move(other.hello_)), next_id_(other.next_id_),
      decoder_(std::move(other.decoder_)), buffer_(std::move(other.buffer_)), begin_(other.begin_), end_(other.end_),
      lender_(std::exchange(other.lender_, nullptr)), lent_(std::exchange(other.lent_, {})),
      held_(std::move(other.held_)), stalled_(other.stalled_)
{
}

Connection& Connection::operator=(Connection&& other) noexcept
{
    if (this != &other) {
        close();
        endpoint_ = std::move(other.endpoint_);
        options_ = std::move(other.options_);
        transport_ = std::move(other.transport_);
        hello_ = std::move(other.hello_);
        next_id_ = other.next_id_;
        decoder_ = std::move(other.decoder_);
        buffer_ = std::move(other.buffer_);
        begin_ = other.begin_;
        end_ = other.end_;
        lender_ = std::exchange(other.lender_, nullptr);
        lent_ = std::exchange(other.lent_, {});
        held_ = std::move(other.held_);
        stalled_ = other.stalled_;
    }
    return *this;
}

Connection::~Connection()
{
    close();
}

void Connection::close()
{
    transport_.close();
    held_.clear(); // for the connection that is gone
    begin_ = end_ = 0;
    lent_ = {}; // a later read asks the lender for memory again
}

void Connection::lend_buffers(ReceiveBuffers* lender)
{
    if (lender == nullptr && !lent_.empty()) {
        // What is not decoded yet (the start of the next reply) comes along.
        const std::size_t left = end_ - begin_;
        std::copy_n(lent_.begin() + static_cast<std::ptrdiff_t>(begin_), left, buffer_.get());
        begin_ = 0;
        end_ = left;
        lent_ = {};
    }
    lender_ = lender;
}

Result<Connection> Connection::open(const Endpoint& endpoint, Timeouts timeouts)
{
    ConnectOptions options;
    options.timeouts = timeouts;
    return open(endpoint, options);
}

Result<Connection> Connection::open(const Endpoint& endpoint, const ConnectOptions& options)
{
    auto connection = open_at(endpoint, options, kMaxProtocolVersion);
    if (!connection && connection.error().code == ErrorCode::unsupported_version) {
        // An older server closed after its error; it speaks version 1 only.
        return open_at(endpoint, options, kMinProtocolVersion);
    }
    return connection;
}

Result<Connection> Connection::open_at(const Endpoint& endpoint, const ConnectOptions& options, std::uint32_t version)
{
    const Timeouts& timeouts = options.timeouts;
    const std::string address = endpoint.to_string();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(endpoint.port);
    const int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
    if (rc == EAI_NONAME) {
        // The resolver's final answer that no such host exists (NXDOMAIN, or
        // no entry in /etc/hosts): a bad address, as a typo in -s NAME is,
        // not a transient failure that --retry would try again. A resolver
        // that could not be asked says EAI_AGAIN (getaddrinfo(3)), which is.
        return Error{ErrorCode::bad_request, "cannot connect to " + address + ": no host is named \"" + endpoint.host +
                                                 "\" (" + ::gai_strerror(rc) +
                                                 "): check the address, or the [servers.NAME] of -s NAME"};
    }
    if (rc != 0) {
        return Error{ErrorCode::connection_lost, "cannot connect to " + address + ": cannot resolve \"" +
                                                     endpoint.host + "\": " + ::gai_strerror(rc)};
    }
    const auto deadline = std::chrono::steady_clock::now() + timeouts.connect;
    int fd = -1;
    int last_error = ECONNREFUSED;
    bool timed_out = false;
    bool was_interrupted = false;
    for (const addrinfo* info = found; info != nullptr && fd < 0 && !timed_out && !was_interrupted;
         info = info->ai_next) {
        fd = connect_one(*info, deadline, timed_out, was_interrupted);
        if (fd < 0) {
            last_error = errno;
        }
    }
    ::freeaddrinfo(found);
    if (was_interrupted) {
        return interrupted_error();
    }
    if (fd < 0) {
        const std::string why =
            timed_out ? "no answer within " + seconds_text(timeouts.connect) : std::string(std::strerror(last_error));
        return Error{ErrorCode::connection_lost, "cannot connect to " + address + ": " + why};
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    Transport transport(fd);
    if (options.tls) {
        auto tls = TlsSession::connect(fd, endpoint.host, address, *options.tls, deadline);
        if (!tls) {
            return tls.error();
        }
        transport.adopt_tls(std::move(tls.value()));
    }
    Connection connection(endpoint, options, std::move(transport));
    auto hello = connection.say_hello(version);
    if (!hello) {
        connection.close();
        return hello.error();
    }
    connection.hello_ = std::move(hello.value());
    return connection;
}

Result<HelloReply> Connection::say_hello(std::uint32_t version)
{
    const std::uint64_t id = next_id();
    HelloRequest hello;
    hello.version = version;
    hello.client = std::string("ferry/") + FERRY_VERSION;
    hello.token = options_.token;
    auto sent = send_request(Request{id, hello});
    if (!sent) {
        return sent.error();
    }
    // Within the hello timeout, not the (long) io one.
    const auto saved_io = options_.timeouts.io;
    options_.timeouts.io = std::min(options_.timeouts.hello, saved_io);
    const auto asked = Clock::now();
    Status first = check_first_bytes();
    Result<std::string> text = first ? receive_control() : Result<std::string>(first.error());
    options_.timeouts.io = saved_io;
    if (!text) {
        if (text.error().code == ErrorCode::connection_lost && Clock::now() - asked + kWakeInterval >= std::min(options_.timeouts.hello, saved_io)) {
            return Error{ErrorCode::connection_lost, "no answer to hello from " + endpoint_.to_string() + " within " +
                                                         seconds_text(options_.timeouts.hello) +
                                                         ": is it a Ferry server? (see --hello-timeout)"};
        }
        return text.error();
    }
    auto reply = parse_hello_reply(text.value());
    if (!reply) {
        // The server's own error (unauthorized, server_full...) as it sent
        // it; a hello reply we cannot read is its protocol error, not ours.
        if (read_reply_head(text.value()).server_error) {
            return reply.error();
        }
        return protocol_error("its hello reply is malformed: " + reply.error().message);
    }
    made_progress(); // the io timeout starts afresh after hello's own
    // The server answers with the version it will speak: one we know, no
    // higher than the one we offered.
    if (reply->id != id || reply->body.version < kMinProtocolVersion || reply->body.version > version) {
        return protocol_error("hello reply with id " + std::to_string(reply->id) + " and version " +
                              std::to_string(reply->body.version));
    }
    return reply->body;
}

Status Connection::check_first_bytes()
{
    while (end_ == begin_) {
        if (auto filled = fill(); !filled) {
            return filled;
        }
    }
    const std::uint8_t first = window()[begin_];
    if (first == static_cast<std::uint8_t>(FrameKind::control)) {
        return success();
    }
    const std::string_view seen(reinterpret_cast<const char*>(window().data() + begin_), end_ - begin_);
    std::string like;
    if (seen.starts_with("HTTP/") || seen.starts_with("<")) {
        like = " (it answered like an HTTP server)";
    } else if (seen.starts_with("SSH-")) {
        like = " (it answered like an SSH server)";
    } else if (first == 0x15 || first == 0x16) {
        like = " (it answered in TLS: try --tls)";
    } else {
        std::string shown;
        for (const char c : seen.substr(0, 16)) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte >= 0x20 && byte < 0x7f) {
                shown.push_back(c);
            } else {
                static constexpr char kHex[] = "0123456789abcdef";
                shown += std::string("\\x") + kHex[byte >> 4] + kHex[byte & 15];
            }
        }
        like = " (it answered \"" + shown + "\")";
    }
    close();
    return Error{ErrorCode::not_ferry, "the server at " + endpoint_.to_string() +
                                           " does not speak the Ferry protocol" + like};
}

Status Connection::reconnect()
{
    close();
    auto fresh = open(endpoint_, options_);
    if (!fresh) {
        return fresh.error();
    }
    *this = std::move(fresh.value());
    return success();
}

Error Connection::lost(const std::string& what)
{
    close();
    return Error{ErrorCode::connection_lost, "connection to " + endpoint_.to_string() + " lost: " + what};
}

Result<short> Connection::wait_for(short events)
{
    // Only the time spent here, waiting on the server, counts toward the
    // io timeout: time the client spends on its own work (hashing, the
    // disk) is not the server's stall.
    const auto start = Clock::now();
    const auto settle = [&] { stalled_ += Clock::now() - start; };
    for (;;) {
        if (interrupted()) {
            close();
            return interrupted_error();
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeouts.io - stalled_ - (Clock::now() - start));
        if (left.count() <= 0) {
            settle();
            return lost("no progress for " + seconds_text(options_.timeouts.io));
        }
        if ((events & POLLIN) != 0 && transport_.has_pending()) {
            settle();
            return static_cast<short>(POLLIN);
        }
        pollfd pfd{transport_.fd(), events, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(std::min(left, kWakeInterval).count()));
        if (ready > 0) {
            settle();
            return pfd.revents; // readable, writable, or an error the next call reports
        }
        if (ready < 0 && errno != EINTR) {
            settle();
            return lost(std::strerror(errno));
        }
    }
}

namespace {

// JSON can only carry UTF-8, and the encoder would replace any other byte
// with U+FFFD: two different local names would then reach the server as
// one. Such a name is refused instead, whatever sent it (sent or held).
std::optional<Error> refuse_non_utf8_name(const Request& request)
{
    const std::string* name = std::visit(
        [](const auto& body) -> const std::string* {
            if constexpr (requires { body.name; }) {
                return &body.name;
            } else {
                return nullptr;
            }
        },
        request.body);
    if (name != nullptr && !is_valid_utf8(*name)) {
        return Error{ErrorCode::invalid_name, "file name is not valid UTF-8"};
    }
    return std::nullopt;
}

} // namespace

Status Connection::hold_request(const Request& request)
{
    if (!transport_.is_open()) {
        return Error{ErrorCode::connection_lost, "not connected to " + endpoint_.to_string()};
    }
    if (auto refused = refuse_non_utf8_name(request)) {
        return *refused;
    }
    held_ += encode_control_frame(encode_request(request));
    return success();
}

Status Connection::flush_held()
{
    if (held_.empty()) {
        return success();
    }
    return send_vectors({}, {});
}

Status Connection::send_request(const Request& request)
{
    if (auto refused = refuse_non_utf8_name(request)) {
        return *refused;
    }
    return send_control(encode_request(request));
}

Status Connection::send_control(std::string_view json_text)
{
    const std::string frame = encode_control_frame(json_text);
    return send_raw(std::span(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size()));
}

Status Connection::send_data(std::span<const std::uint8_t> payload)
{
    const auto header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(payload.size()));
    return send_vectors(header, payload);
}

Status Connection::send_raw(std::span<const std::uint8_t> bytes)
{
    return send_vectors(bytes, {});
}

Status Connection::send_vectors(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body)
{
    if (!transport_.is_open()) {
        return Error{ErrorCode::connection_lost, "not connected to " + endpoint_.to_string()};
    }
    // Held frames go first, in the same write as what follows them.
    std::string joined;
    if (!held_.empty()) {
        joined = std::move(held_);
        held_.clear();
        joined.append(reinterpret_cast<const char*>(head.data()), head.size());
        head = std::span(reinterpret_cast<const std::uint8_t*>(joined.data()), joined.size());
    }
    while (!head.empty() || !body.empty()) {
        const IoResult wrote = transport_.write(head, body);
        switch (wrote.kind) {
        case IoResult::Kind::progress: {
            std::size_t left = wrote.bytes;
            const std::size_t from_head = std::min(left, head.size());
            head = head.subspan(from_head);
            left -= from_head;
            body = body.subspan(left);
            made_progress(); // the server took bytes
            break;
        }
        case IoResult::Kind::would_block:
            if (auto waited = wait_to_send(wrote.events); !waited) {
                return waited;
            }
            break;
        case IoResult::Kind::eof:
            return lost_while_sending("the server closed the connection");
        case IoResult::Kind::failed:
            return lost_while_sending(wrote.why);
        }
    }
    return success();
}

Status Connection::wait_to_send(short events)
{
    // Nothing is expected from the server while we send; if it speaks (an
    // error in the middle of an upload) it has stopped reading, and waiting
    // for room to write would be in vain.
    auto ready = wait_for(static_cast<short>(events | POLLIN));
    if (!ready) {
        return ready.error();
    }
    if ((ready.value() & POLLOUT) != 0 || (ready.value() & POLLIN) == 0 || (events & POLLIN) != 0) {
        return success(); // room to write, an error the write reports, or TLS wanted to read
    }
    auto pending = poll_control();
    if (!pending) {
        return pending.error();
    }
    if (pending.value()) {
        const Error error = unexpected_message(*pending.value());
        close();
        return error;
    }
    return success();
}

// The server refused something and hung up (EPIPE, ECONNRESET): it normally
// said why first, in an error frame that is still waiting to be read.
Error Connection::lost_while_sending(const std::string& why)
{
    const Error plain{ErrorCode::connection_lost, "connection to " + endpoint_.to_string() + " lost: " + why};
    // A second, whatever the server sends meanwhile (data frames are no
    // answer, and must not keep us here).
    const auto saved_io = options_.timeouts.io;
    options_.timeouts.io = std::chrono::milliseconds(1000);
    const auto give_up = Clock::now() + options_.timeouts.io;
    for (;;) {
        stalled_ = {};
        if (Clock::now() >= give_up) {
            break;
        }
        auto incoming = receive();
        if (!incoming) {
            break;
        }
        if (incoming->kind == Incoming::Kind::control) {
            const Error error = unexpected_message(incoming->text);
            options_.timeouts.io = saved_io;
            close();
            return error;
        }
    }
    options_.timeouts.io = saved_io;
    close();
    return plain;
}

Status Connection::fill()
{
    if (auto flushed = flush_held(); !flushed) {
        return flushed; // a reply is awaited only once its request went out
    }
    for (;;) {
        if (!transport_.is_open()) {
            return Error{ErrorCode::connection_lost, "not connected to " + endpoint_.to_string()};
        }
        if (lender_ != nullptr && begin_ == end_ && (lent_.empty() || lent_.size() - end_ < kMinLentRead)) {
            // Every byte read was decoded: on into fresh memory, leaving the
            // pieces handed out of the old to the lender.
            lent_ = lender_->next(lent_);
            begin_ = end_ = 0;
        }
        const IoResult got = transport_.read(window().subspan(end_));
        switch (got.kind) {
        case IoResult::Kind::progress:
            end_ += got.bytes;
            return success();
        case IoResult::Kind::eof:
            return lost("the server closed the connection");
        case IoResult::Kind::failed:
            return lost(got.why);
        case IoResult::Kind::would_block:
            break;
        }
        auto ready = wait_for(got.events);
        if (!ready) {
            return ready.error();
        }
    }
}
Result<std::optional<Incoming>> Connection::decode_buffered()
{
    auto event = decoder_.next(window().subspan(begin_, end_ - begin_));
    begin_ += event.consumed;
    Incoming incoming;
    switch (event.kind) {
    case DecodeEvent::Kind::control:
        incoming.kind = Incoming::Kind::control;
        incoming.text = std::move(event.text);
        return std::optional<Incoming>(std::move(incoming));
    case DecodeEvent::Kind::data:
        incoming.kind = Incoming::Kind::data;
        incoming.bytes = event.bytes;
        incoming.frame_end = event.frame_end;
        return std::optional<Incoming>(std::move(incoming));
    case DecodeEvent::Kind::error:
        close();
        return Error{event.error.code, "from the server: " + event.error.message};
    case DecodeEvent::Kind::need_more:
        break;
    }
    // need_more: the decoder took every byte it was given. Lent memory is
    // not read into again from the start: data pieces may still point there.
    if (lent_.empty()) {
        begin_ = end_ = 0;
    } else {
        begin_ = end_;
    }
    return std::optional<Incoming>();
}

Result<Incoming> Connection::receive()
{
    for (;;) {
        auto decoded = decode_buffered();
        if (!decoded) {
            return decoded.error();
        }
        if (decoded.value()) {
            if (decoded.value()->kind == Incoming::Kind::data && !decoded.value()->bytes.empty()) {
                made_progress(); // file bytes; an empty data frame moves nothing
            }
            return std::move(*decoded.value());
        }
        auto filled = fill();
        if (!filled) {
            return filled.error();
        }
    }
}

Result<std::string> Connection::receive_control()
{
    auto incoming = receive();
    if (!incoming) {
        return incoming.error();
    }
    if (incoming->kind != Incoming::Kind::control) {
        close();
        return protocol_error("a data frame where a reply was expected");
    }
    return std::move(incoming->text);
}

Result<std::optional<std::string>> Connection::poll_control()
{
    if (auto flushed = flush_held(); !flushed) {
        return flushed.error();
    }
    for (;;) {
        if (!transport_.is_open()) {
            return Error{ErrorCode::connection_lost, "not connected to " + endpoint_.to_string()};
        }
        if (begin_ < end_) {
            auto decoded = decode_buffered();
            if (!decoded) {
                return decoded.error();
            }
            if (decoded.value() && decoded.value()->kind == Incoming::Kind::data) {
                close();
                return protocol_error("a data frame during an upload");
            }
            if (decoded.value()) {
                return std::optional<std::string>(std::move(decoded.value()->text));
            }
        }
        begin_ = end_ = 0; // everything buffered was decoded
        lent_ = {};        // (never lent during an upload)
        const IoResult got = transport_.read(window().subspan(end_));
        switch (got.kind) {
        case IoResult::Kind::progress:
            end_ += got.bytes;
            continue;
        case IoResult::Kind::eof:
            return lost("the server closed the connection");
        case IoResult::Kind::failed:
            return lost(got.why);
        case IoResult::Kind::would_block:
            return std::optional<std::string>();
        }
    }
}

bool Connection::has_unsolicited_input()
{
    if (!transport_.is_open()) {
        return true;
    }
    if (!held_.empty()) {
        return false; // a request is outstanding: its reply is solicited
    }
    if (begin_ < end_ || decoder_.mid_frame()) {
        return true;
    }
    begin_ = end_ = 0;
    lent_ = {}; // (never lent between requests)
    // A read, not a poll: under TLS the socket also carries records that
    // are no message at all (session tickets), which only OpenSSL can tell.
    const IoResult got = transport_.read(window().subspan(end_));
    if (got.kind == IoResult::Kind::progress) {
        end_ += got.bytes;
    }
    return got.kind != IoResult::Kind::would_block;
}

} // namespace ferry::client
