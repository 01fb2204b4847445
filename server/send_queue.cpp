#include "send_queue.hpp"

#include "library.hpp"
#include "posix_io.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>

namespace ferry::server {

struct SendQueue::WriteRequest {
    uv_write_t request{};
    std::vector<std::string> pieces; // written in order, as one writev
    std::size_t size = 0;            // their bytes in all
    SendQueue* queue = nullptr;
};

// The poll handle and the descriptor it watches end together, in the
// handle's close callback (see the header for why not sooner).
struct SendQueue::WritableWatch {
    uv_poll_t handle{};
    int fd = -1;

    WritableWatch() = default;
    WritableWatch(const WritableWatch&) = delete;
    WritableWatch& operator=(const WritableWatch&) = delete;
    ~WritableWatch()
    {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

// Looks for room again while no descriptor can watch the socket: sooner at
// first, at most kRoomRetryMs apart.
struct SendQueue::RoomRetry {
    uv_timer_t handle{};
    std::uint64_t next_delay_ms = 1;
    std::uint64_t written_at_last_look = 0; // a look that moved bytes starts the waits again from 1 ms
};

// Runs once, on the loop turn after a failure, to report it.
struct SendQueue::FailureReport {
    uv_idle_t handle{};
    SendFailure failure;
};

// Looks for the peer's acknowledgement, sooner at first (see
// await_acknowledgement()).
struct SendQueue::AcknowledgementWatch {
    uv_timer_t handle{};
    std::uint64_t next_delay_ms = 1;
};

std::string SendFailure::message() const
{
    std::string text = reason;
    if (error_number > 0) {
        text += std::string(": ") + std::strerror(error_number);
    } else if (error_number < 0) {
        text += std::string(": ") + uv_strerror(error_number);
    }
    return text;
}

SendQueue::SendQueue(uv_stream_t* stream, Owner& owner) : stream_(stream), owner_(owner) {}

SendQueue::~SendQueue()
{
    close();
}

void SendQueue::send(std::string bytes)
{
    if (state_ != State::open) {
        return;
    }
    if (files_ && (files_->range || !files_->waiting.empty())) {
        unsent_ += bytes.size();
        files_->waiting.emplace_back(std::move(bytes));
        return;
    }
    if (holds_ > 0) {
        unsent_ += bytes.size();
        if (!held_.empty() && held_.back().size() + bytes.size() <= kJoinedPieceMax) {
            held_.back().append(bytes);
        } else {
            held_.push_back(std::move(bytes));
        }
        return;
    }
    // Behind a write in flight, bytes join one buffer instead of a write
    // request each: thousands of small replies to a peer that does not read
    // would otherwise cost a request (~250 bytes) apiece beyond their bytes,
    // memory that unsent_bytes() and so the owner's high-water do not see.
    if (pending_writes_ > 0) {
        unsent_ += bytes.size();
        join_behind(std::move(bytes));
        return;
    }
    start_write(std::move(bytes));
}

void SendQueue::join_behind(std::string bytes)
{
    if (behind_.empty()) {
        // Taken, not copied: a get's first data frame (a small file read
        // whole, up to a chunk) follows its reply here, still in flight.
        behind_ = std::move(bytes);
    } else {
        behind_.append(bytes);
    }
}

void SendQueue::release() noexcept
{
    if (holds_ == 0) {
        return;
    }
    if (--holds_ == 0) {
        flush_held();
    }
}

void SendQueue::flush_held() noexcept
{
    try {
        send_held();
    } catch (...) {
        fail({ErrorCode::internal, "unexpected exception while sending"});
    }
}

void SendQueue::send_held()
{
    if (held_.empty() || state_ != State::open) {
        return;
    }
    std::vector<std::string> pieces;
    pieces.swap(held_);
    if (pending_writes_ > 0) {
        for (auto& piece : pieces) {
            join_behind(std::move(piece)); // still counted in unsent_
        }
        return;
    }
    for (const auto& piece : pieces) {
        unsent_ -= piece.size(); // start_write counts them again
    }
    start_write(std::move(pieces));
}

void SendQueue::send_file(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length)
{
    if (state_ != State::open) {
        return;
    }
    // What was held goes first (the range waits for its write).
    send_held();
    if (state_ != State::open) {
        return; // that write failed: the queue takes nothing more
    }
    FileRange range{std::move(file), offset, length};
    Files& files = this->files();
    unsent_ += length;
    if (files.range || !files.waiting.empty()) {
        files.waiting.emplace_back(std::move(range));
        return;
    }
    files.range = std::move(range);
    // A write ahead of the range (its frame header, usually) starts it from
    // its callback. With none, writability does, on a later loop turn: the
    // range's progress is an event, and events never come from inside a
    // call the owner made.
    if (pending_writes_ == 0) {
        watch_writable();
    }
}

void SendQueue::start_write(std::string bytes)
{
    std::vector<std::string> pieces;
    pieces.push_back(std::move(bytes));
    start_write(std::move(pieces));
}

void SendQueue::start_write(std::vector<std::string> pieces)
{
    auto write = std::make_unique<WriteRequest>();
    write->pieces = std::move(pieces);
    write->queue = this;
    write->request.data = write.get();
    // libuv copies the buffer array (not the bytes) into the request: the
    // usual few buffers live on the stack, not in an allocation per write.
    std::array<uv_buf_t, 4> few{};
    std::vector<uv_buf_t> many;
    uv_buf_t* bufs = few.data();
    if (write->pieces.size() > few.size()) {
        many.resize(write->pieces.size());
        bufs = many.data();
    }
    for (std::size_t i = 0; i < write->pieces.size(); ++i) {
        std::string& piece = write->pieces[i];
        bufs[i] = uv_buf_init(piece.data(), static_cast<unsigned int>(piece.size()));
        write->size += piece.size();
    }
    const int status =
        uv_write(&write->request, stream_, bufs, static_cast<unsigned int>(write->pieces.size()), on_write);
    if (status != 0) {
        fail({ErrorCode::connection_lost, "write", status});
        return;
    }
    const std::size_t size = write->size;
    write.release(); // on_write frees it
    unsent_ += size;
    written_ += size;
    ++pending_writes_;
}

void SendQueue::on_write(uv_write_t* request, int status)
{
    std::unique_ptr<WriteRequest> write(static_cast<WriteRequest*>(request->data));
    SendQueue& self = *write->queue;
    self.unsent_ -= write->size;
    --self.pending_writes_;
    write.reset();
    if (self.state_ != State::open) {
        return; // failed (already reported) or closed: nothing to say
    }
    try {
        if (status < 0) {
            self.fail({ErrorCode::connection_lost, "write", status});
            return;
        }
        if (self.pending_writes_ == 0 && !self.behind_.empty()) {
            std::string next;
            next.swap(self.behind_);
            self.unsent_ -= next.size(); // start_write counts them again
            self.start_write(std::move(next));
        }
        self.owner_.on_queue_sent();
        if (self.stopped()) {
            return;
        }
        self.pump_file_ranges();
        if (!self.stopped() && self.idle()) {
            self.drained();
        }
    } catch (...) {
        self.fail({ErrorCode::internal, "unexpected exception while sending"});
    }
}

SendQueue::Files& SendQueue::files()
{
    if (!files_) {
        files_ = std::make_unique<Files>();
    }
    return *files_;
}

void SendQueue::drained()
{
    // Nothing is queued: the watch (a poll handle and a descriptor) and the
    // rest of Files go until the next range needs them.
    files_.reset();
    owner_.on_queue_drained();
}

void SendQueue::on_writable(uv_poll_t* poll, int, int)
{
    // An error on the socket shows again in sendfile's result, which says
    // what it means.
    static_cast<SendQueue*>(poll->data)->on_room();
}

void SendQueue::on_room_retry(uv_timer_t* timer)
{
    static_cast<SendQueue*>(timer->data)->on_room();
}

void SendQueue::on_room()
{
    if (state_ != State::open) {
        return;
    }
    try {
        pump_file_ranges();
        if (!stopped() && idle()) {
            drained();
        }
    } catch (...) {
        fail({ErrorCode::internal, "unexpected exception while sending"});
    }
}

void SendQueue::pump_file_ranges()
{
    bool moved = false;
    // The range's header (and anything before it) must have left libuv's
    // write queue, or the file's bytes would overtake it.
    while (files_ && files_->range && pending_writes_ == 0 && state_ == State::open) {
        uv_os_fd_t socket_fd = -1;
        if (uv_fileno(reinterpret_cast<const uv_handle_t*>(stream_), &socket_fd) != 0) {
            fail({ErrorCode::internal, "the socket has no descriptor"});
            return;
        }
        if (!send_current_range(socket_fd, moved)) {
            break; // waits for room, or failed
        }
        files_->range.reset();
        stop_watching_writable();
        flush_waiting();
    }
    if (moved && state_ == State::open) {
        owner_.on_queue_sent();
    }
}

// True once the range is sent whole; false while it waits for room (the
// watch is on) or when it failed.
bool SendQueue::send_current_range(int socket_fd, bool& moved)
{
    FileRange& range = *files_->range;
    while (range.length > 0) {
        auto offset = static_cast<off_t>(range.offset);
        const ssize_t sent =
            sys::retry_on_eintr([&] { return ::sendfile(socket_fd, range.file->fd(), &offset, range.length); });
        if (sent > 0) {
            range.offset += static_cast<std::uint64_t>(sent);
            range.length -= static_cast<std::size_t>(sent);
            unsent_ -= static_cast<std::size_t>(sent);
            written_ += static_cast<std::uint64_t>(sent);
            moved = true;
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch_writable();
            return false;
        }
        if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            fail({ErrorCode::connection_lost, "sendfile", errno});
            return false;
        }
        if (sent == 0) {
            // The file shrank under a frame whose size is on the wire. Its
            // bytes already taken are no proof of anything: sendfile hands
            // the socket the page cache's pages, not copies, and the
            // truncation zeroed them in place. Cutting the connection would
            // leave the peer those zeros as a resumable prefix; zeros in
            // place of the missing bytes finish the announced frames
            // instead, so the stream stays whole and the owner's check
            // after the last byte (which sees the new size) can end the
            // transfer with file_changed, which tells the peer to drop it.
            std::string padding(range.length, '\0');
            unsent_ -= range.length;
            range.length = 0;
            start_write(std::move(padding));
            moved = true;
            return state_ == State::open;
        }
        // The file could not be read under a frame whose size is on the
        // wire: the frame cannot be finished, so neither can the output.
        fail({ErrorCode::io_error, "sendfile", errno});
        return false;
    }
    return true;
}

void SendQueue::flush_waiting()
{
    auto& waiting = files_->waiting;
    while (!waiting.empty() && !files_->range) {
        auto next = std::move(waiting.front());
        waiting.pop_front();
        if (auto* bytes = std::get_if<std::string>(&next)) {
            if (pending_writes_ > 0) {
                join_behind(std::move(*bytes)); // still counted in unsent_
            } else {
                unsent_ -= bytes->size(); // start_write counts them
                start_write(std::move(*bytes));
            }
        } else {
            files_->range = std::move(std::get<FileRange>(next)); // still counted in unsent_
        }
    }
}

void SendQueue::watch_writable()
{
    Files& files = this->files();
    if (!files.watch) {
        uv_os_fd_t socket_fd = -1;
        if (uv_fileno(reinterpret_cast<const uv_handle_t*>(stream_), &socket_fd) != 0) {
            fail({ErrorCode::internal, "the socket has no descriptor"});
            return;
        }
        auto watch = std::make_unique<WritableWatch>();
        watch->fd = ::fcntl(socket_fd, F_DUPFD_CLOEXEC, 0);
        if (watch->fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            retry_for_room(); // descriptors are short for now, not the socket
            return;
        }
        if (watch->fd < 0) {
            fail({ErrorCode::internal, "dup of the socket", errno});
            return;
        }
        const int status = uv_poll_init(stream_->loop, &watch->handle, watch->fd);
        if (status != 0) {
            fail({ErrorCode::internal, "watching the socket", status});
            return; // not a handle yet: the unique_ptr frees it
        }
        watch->handle.data = this;
        files.watch = HandleOwner<WritableWatch>(std::move(watch));
        files.retry.reset(); // watched from here on
    }
    if (!files.watching) {
        const int status = uv_poll_start(&files.watch->handle, UV_WRITABLE, on_writable);
        if (status != 0) {
            fail({ErrorCode::internal, "watching the socket", status});
            return;
        }
        files.watching = true;
    }
}

void SendQueue::retry_for_room()
{
    Files& files = this->files();
    if (!files.retry) {
        auto retry = std::make_unique<RoomRetry>();
        uv_timer_init(stream_->loop, &retry->handle); // cannot fail
        retry->handle.data = this;
        retry->written_at_last_look = written_;
        files.retry = HandleOwner<RoomRetry>(std::move(retry));
    }
    RoomRetry& retry = *files.retry.get();
    if (written_ != retry.written_at_last_look) {
        retry.written_at_last_look = written_;
        retry.next_delay_ms = 1; // a reader that keeps up is not made to wait 16 ms a time
    }
    // Never a look from inside this call: a delay of at least 1 ms.
    uv_timer_start(&retry.handle, on_room_retry, retry.next_delay_ms, 0);
    retry.next_delay_ms = std::min(retry.next_delay_ms * 2, kRoomRetryMs);
}

void SendQueue::stop_watching_writable()
{
    if (files_ && files_->watching) {
        uv_poll_stop(&files_->watch->handle);
        files_->watching = false;
    }
}

void SendQueue::fail(const SendFailure& failure) noexcept
{
    if (state_ != State::open) {
        return;
    }
    state_ = State::failed;
    drop_output();
    files_.reset(); // closes the watch, if any
    acknowledgement_watch_.reset();
    std::unique_ptr<FailureReport> report(new (std::nothrow) FailureReport);
    if (!report) {
        // Out of memory: the report is lost, and the owner's timeouts end
        // the connection, which is better than changing the owner's state
        // inside whatever call found the failure.
        return;
    }
    report->failure = failure;
    uv_idle_init(stream_->loop, &report->handle); // cannot fail
    report->handle.data = this;
    uv_idle_start(&report->handle, on_report);
    report_ = HandleOwner<FailureReport>(std::move(report));
}

void SendQueue::on_report(uv_idle_t* idle)
{
    SendQueue& self = *static_cast<SendQueue*>(idle->data);
    const SendFailure failure = self.report_->failure;
    self.report_.reset(); // once
    try {
        self.owner_.on_queue_failed(failure);
    } catch (...) {
        // The owner guards its own transitions; nothing may unwind into
        // libuv's frames regardless.
    }
}

void SendQueue::drop_output() noexcept
{
    unsent_ -= behind_.size();
    std::string().swap(behind_);
    for (const auto& piece : held_) {
        unsent_ -= piece.size();
    }
    std::vector<std::string>().swap(held_);
    if (!files_) {
        return;
    }
    if (files_->range) {
        unsent_ -= files_->range->length;
        files_->range.reset();
    }
    for (const auto& item : files_->waiting) {
        if (const auto* bytes = std::get_if<std::string>(&item)) {
            unsent_ -= bytes->size();
        } else {
            unsent_ -= std::get<FileRange>(item).length;
        }
    }
    files_->waiting.clear();
}

void SendQueue::close()
{
    if (state_ == State::closed) {
        return;
    }
    state_ = State::closed;
    drop_output();
    files_.reset(); // closes the watch, if any
    report_.reset();
    acknowledgement_watch_.reset();
}

void SendQueue::await_acknowledgement()
{
    if (state_ != State::open || acknowledgement_watch_) {
        return;
    }
    auto watch = std::make_unique<AcknowledgementWatch>();
    uv_timer_init(stream_->loop, &watch->handle); // cannot fail
    watch->handle.data = this;
    // First look on the next loop turn: events never come from inside a
    // call the owner made.
    uv_timer_start(&watch->handle, on_acknowledgement_timer, 0, 0);
    acknowledgement_watch_ = HandleOwner<AcknowledgementWatch>(std::move(watch));
}

void SendQueue::on_acknowledgement_timer(uv_timer_t* timer)
{
    SendQueue& self = *static_cast<SendQueue*>(timer->data);
    if (self.state_ != State::open) {
        return;
    }
    AcknowledgementWatch& watch = *self.acknowledgement_watch_.get();
    if (self.acknowledged_bytes() < self.written_) {
        uv_timer_start(timer, on_acknowledgement_timer, watch.next_delay_ms, 0);
        watch.next_delay_ms = std::min(watch.next_delay_ms * 2, kAcknowledgementPollMs);
        return;
    }
    self.acknowledgement_watch_.reset(); // freed in its close callback, after this one
    try {
        self.owner_.on_queue_sent();
    } catch (...) {
        self.fail({ErrorCode::internal, "unexpected exception while sending"});
    }
}

// SIOCOUTQ counts both the unsent and the unacknowledged bytes in the
// kernel's send queue.
std::uint64_t SendQueue::acknowledged_bytes() const
{
    uv_os_fd_t fd = -1;
    int queued = 0;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(stream_), &fd) != 0 || ::ioctl(fd, SIOCOUTQ, &queued) != 0) {
        return acknowledged_;
    }
    const std::uint64_t waiting = uv_stream_get_write_queue_size(stream_) + static_cast<std::uint64_t>(queued);
    // Acknowledgements never go back; the figure must not either.
    if (written_ > waiting) {
        acknowledged_ = std::max(acknowledged_, written_ - waiting);
    }
    return acknowledged_;
}

} // namespace ferry::server
