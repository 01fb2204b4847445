// A connection's output on its way to the socket: bytes and ranges of open
// files, sent in the order they were queued. Bytes go through libuv's
// stream writes; file ranges go from the page cache straight to the socket
// with sendfile(2) (zero-copy), which libuv has no request for.
//
// Contracts:
// - Order: nothing overtakes what was queued before it. A file range starts
//   only once every earlier write has left libuv's queue, and bytes queued
//   behind a range wait until the range is sent.
// - Memory: every write owns its bytes until its callback. While a write is
//   in flight, further bytes join one buffer (`behind_`) rather than a write
//   request each, so a peer that does not read costs its bytes and no more.
// - Writability: libuv's stream owns the socket's write readiness, so while
//   a range waits for room a poll handle watches a second descriptor of the
//   same socket (dup). That descriptor is closed in the poll handle's close
//   callback, after libuv has taken it off epoll: closed earlier, epoll would
//   keep the registration (the socket itself is still open) under a number
//   the process may reuse. A process out of descriptors (EMFILE, ENFILE)
//   cannot make that second one: the range then looks for room on a timer
//   instead (after 1, 2, 4 ... ms, at most kRoomRetryMs apart), and watches
//   again once a descriptor is free, so a transfer under way is never cut
//   for want of one (its frame is on the wire already; the owner's stall
//   timeout still ends a peer that never reads).
// - Events reach the Owner only from the queue's own libuv callbacks, never
//   from inside a call the owner made, so the owner's state is never changed
//   under its feet. A failure in particular is reported once, from a later
//   turn of the loop, whatever found it.
// - No exception leaves a libuv callback: one thrown inside the queue
//   becomes an `internal` failure.
#pragma once

#include "error.hpp"
#include "uv_handle.hpp"

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::server {

class OpenFile;

// Why queued output cannot be delivered. No allocation, so it can be made
// anywhere, a failed allocation included.
struct SendFailure {
    // connection_lost: the peer is gone (reset, broken pipe, a failed write);
    // io_error: a file range could not be read; internal: the server's own.
    ErrorCode code = ErrorCode::internal;
    const char* reason = "";
    int error_number = 0; // errno or a negative libuv status; 0 if none

    std::string message() const;
};

class SendQueue {
public:
    class Owner {
    public:
        // Some queued output left: a write completed, or sendfile moved bytes.
        virtual void on_queue_sent() = 0;
        // Everything queued has been written; nothing waits or is in flight.
        virtual void on_queue_drained() = 0;
        // The queue cannot deliver its output and has dropped what waited;
        // it takes no more. Called once.
        virtual void on_queue_failed(const SendFailure& failure) = 0;

    protected:
        ~Owner() = default;
    };

    // `stream` must outlive the queue's use of it: the owner closes the
    // queue (close()) no later than it closes the stream.
    SendQueue(uv_stream_t* stream, Owner& owner);
    SendQueue(const SendQueue&) = delete;
    SendQueue& operator=(const SendQueue&) = delete;
    ~SendQueue();

    // Queues bytes after everything queued before.
    void send(std::string bytes);
    // Between hold() and its release(), bytes sent wait in the queue and then
    // go out together, as one write of several buffers (writev): what one
    // turn of the loop says to the peer, a small get's reply, data frame and
    // trailer for one, costs one system call and reaches the peer at once,
    // where the first write would otherwise leave alone and the rest follow
    // on the next turn. Holds nest; the last release sends. A file range
    // queued while held sends what was held first (its place in the order).
    void hold() { ++holds_; }
    // Never throws: a failure to send is the queue's failure, reported as any.
    void release() noexcept;
    // Sends what is held now, the holds staying on: before the owner
    // half-closes the socket (uv_shutdown), which libuv orders after the
    // writes already in its queue only. Never throws, as release().
    void flush_held() noexcept;
    // Small pieces sent while held join the one before them (a copy of a
    // few KiB at most), so a transition answering many pipelined requests
    // costs its bytes, not a buffer apiece; larger ones (a data frame) are
    // kept whole and written in place.
    static constexpr std::size_t kJoinedPieceMax = 4096;
    // Queues `length` bytes of `file` from `offset`, after everything queued
    // before; they are sent with sendfile. Bytes a file that shrank no
    // longer holds go as zeros (the frame's size is on the wire already):
    // the owner must check the file once the range has left. The pages should be in the page cache already
    // (sendfile runs on the loop).
    void send_file(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length);

    // Bytes queued and not yet handed to the kernel (waiting, in libuv's
    // write queue, or left of a file range): the backpressure figure.
    std::size_t unsent_bytes() const { return unsent_; }
    // Bytes handed to the kernel's socket or to libuv's write queue for it.
    std::uint64_t written_bytes() const { return written_; }
    // What was written minus what still waits in libuv's queue or in the
    // kernel's send queue, unacknowledged. Never goes back.
    std::uint64_t acknowledged_bytes() const;
    // Reports on_queue_sent() once the peer has acknowledged every byte
    // written so far (from a later loop turn, even if it already has). The
    // kernel raises no event for acknowledgements, so a timer looks again
    // after 1, 2, 4 ... ms, at most kAcknowledgementPollMs apart: cheap for a
    // peer that acknowledges at once (the usual case), a few dozen wakeups a
    // second for one that never does, whose wait the owner's own timeouts
    // end. A second call while waiting changes nothing.
    void await_acknowledgement();
    static constexpr std::uint64_t kAcknowledgementPollMs = 16;
    // The longest wait between two looks for room without a descriptor to
    // watch the socket with (see Writability above).
    static constexpr std::uint64_t kRoomRetryMs = 16;
    // Nothing waits and nothing is in flight.
    bool idle() const
    {
        return pending_writes_ == 0 && held_.empty() && (!files_ || (!files_->range && files_->waiting.empty()));
    }
    bool failed() const { return state_ == State::failed; }

    // Stops for good: drops what waits and closes the queue's own handles
    // (they free themselves). Writes in flight end with the stream: their
    // callbacks then only free them. No event is reported any more.
    void close();

private:
    struct WriteRequest;
    // Part of a file being sent with sendfile(2).
    struct FileRange {
        std::shared_ptr<const OpenFile> file;
        std::uint64_t offset = 0;
        std::size_t length = 0;
    };
    struct WritableWatch;
    struct RoomRetry;
    struct FailureReport;
    struct AcknowledgementWatch;
    // What only file ranges need. Made by the first range and freed once
    // the queue drains, so a connection between downloads (and every one
    // that never downloads) pays one pointer for it.
    struct Files {
        // The range being sent; it starts once no write is in flight.
        std::optional<FileRange> range;
        // Queued behind `range`, in order. A list, not a deque: an empty
        // deque already holds ~600 bytes.
        std::list<std::variant<std::string, FileRange>> waiting;
        // Exists only while a range waits for room (or has waited).
        HandleOwner<WritableWatch> watch;
        bool watching = false;
        // Exists only while the watch could not be made for want of a
        // descriptor (or until the next watch is made).
        HandleOwner<RoomRetry> retry;
    };

    enum class State {
        open,   // sending
        failed, // output dropped, the failure reported or about to be
        closed, // the owner closed the queue: nothing more happens
    };

    static void on_write(uv_write_t* request, int status);
    static void on_writable(uv_poll_t* poll, int status, int events);
    static void on_room_retry(uv_timer_t* timer);
    static void on_report(uv_idle_t* idle);
    static void on_acknowledgement_timer(uv_timer_t* timer);

    void start_write(std::string bytes);
    // One write of several buffers, in order (uv_write's writev).
    void start_write(std::vector<std::string> pieces);
    // Sends what hold() kept: behind a write in flight, or as a write now.
    void send_held();
    // Adds bytes to `behind_` (the caller counts them in unsent_).
    void join_behind(std::string bytes);
    // Sends file ranges while the socket takes them and no write is ahead;
    // waits for writability (the poll handle) when it does not.
    void pump_file_ranges();
    bool send_current_range(int socket_fd, bool& moved);
    // Moves queued items out of `Files::waiting` up to the next file range.
    void flush_waiting();
    void watch_writable();
    // Out of descriptors: the next look for room comes from a timer.
    void retry_for_room();
    // A look for room, by the watch or the timer.
    void on_room();
    void stop_watching_writable();
    // Drops the output and reports `failure` from a later loop turn.
    void fail(const SendFailure& failure) noexcept;
    void drop_output() noexcept;
    // The queue drained: frees what file ranges used, then tells the owner.
    void drained();
    Files& files();
    // After an event went out: whether the owner's reaction closed or
    // failed the queue (then the caller stops).
    bool stopped() const { return state_ != State::open; }

    uv_stream_t* stream_;
    Owner& owner_;
    State state_ = State::open;
    std::size_t unsent_ = 0;
    std::uint64_t written_ = 0;
    mutable std::uint64_t acknowledged_ = 0;
    std::size_t pending_writes_ = 0;
    // Bytes queued while a write was in flight; they go out as one write
    // when it completes. Never non-empty without a write in flight.
    std::string behind_;
    // Bytes sent while held (see hold()), counted in unsent_.
    std::vector<std::string> held_;
    unsigned holds_ = 0;
    // Only while file ranges are queued or being sent (see Files).
    std::unique_ptr<Files> files_;
    // Exists only between a failure and its report, and holds the failure.
    HandleOwner<FailureReport> report_;
    // Exists only while await_acknowledgement() waits.
    HandleOwner<AcknowledgementWatch> acknowledgement_watch_;
};

} // namespace ferry::server
