// One client's conversation with the server: an explicit state machine over
// the frames it receives. It keeps the input pump, the dispatch of requests,
// the small operations (hello, list, stat, stats), the lifecycle and the
// timeouts; a get or put is a Download or an Upload (download.hpp,
// upload.hpp), of which it holds at most one. It does no IO itself: bytes come in through
// on_bytes(), and everything it does goes out through SessionIo (send bytes,
// run a file job off the loop, pause or resume reading, close). That keeps
// every transition testable without sockets (test/server/).
//
// Memory is bounded whatever the file size, the folder's size or the peer's
// speed: a download reads the next chunk only while less than
// Config::send_high_water is queued on the socket; a paged list reads the
// next page only while less than Config::reply_high_water is; an upload
// stops reading the socket while more than Config::receive_high_water waits
// for the disk; and no request is taken while reply_high_water is unsent.
#pragma once

#include "access.hpp"
#include "config.hpp"
#include "counters.hpp"
#include "download.hpp"
#include "frame.hpp"
#include "library.hpp"
#include "messages.hpp"
#include "pool_job.hpp"
#include "session_io.hpp"
#include "transfer_host.hpp"
#include "upload.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace ferry::server {

// Holds one of Config::max_transfers (already taken) while a get or put runs.
class TransferSlot {
public:
    TransferSlot(Counters& counters, std::shared_ptr<TransferTicket> ticket)
        : counters_(&counters), ticket_(std::move(ticket))
    {
    }
    TransferSlot(const TransferSlot&) = delete;
    TransferSlot& operator=(const TransferSlot&) = delete;
    ~TransferSlot() { counters_->give_back_transfer(ticket_); }

    TransferTicket& ticket() { return *ticket_; }

private:
    Counters* counters_;
    std::shared_ptr<TransferTicket> ticket_;
};

class Session final : private TransferHost {
public:
    // Error lines one connection may write to the log; the rest are counted
    // and summed up in one "errors_not_logged" line when it ends.
    static constexpr std::uint64_t kLoggedErrorsPerConnection = 20;

    enum class State {
        awaiting_request, // between requests (part of the next may have arrived)
        working,          // a list/stat/open job runs on the thread pool
        sending_list,     // a paged list sends its pages as the peer reads them
        sending_file,     // a get streams data frames
        receiving_file,   // a put takes data frames
        finishing_upload, // commit or abort waits for the disk
        waiting_for_space, // a put the disk refused waits for slow uploads to give theirs back
        refusing,         // a wrong token waits out its delay, then closes
        closing,          // waiting for the last job, then closes
        closed,
    };

    // What a session keeps between requests, all that an idle connection
    // needs to hold (see park()): who said hello, as what, when the peer
    // last did something, and the error counts that bound it.
    // Packed: a parked connection holds nothing else of its session.
    struct Standing {
        // Who said hello: the token's label and, for a put, its owner
        // (upload_owner()); null without a token nor a label. One
        // allocation, so that a parked connection stays this small.
        struct Who {
            std::string label;
            std::optional<UploadOwner> owner;
        };
        std::unique_ptr<Who> who;
        std::uint64_t last_activity_ms = 0;
        std::uint32_t errors_not_logged = 0;
        std::uint32_t protocol_errors = 0; // closes past Config::max_protocol_errors
        std::uint16_t errors_logged = 0;   // at most kLoggedErrorsPerConnection
        std::uint8_t protocol_version = 0; // at most kMaxProtocolVersion
        bool read_only = false;
        bool hello_done = false;

        // Moves the idle clock by `unwatched_ms` (see check_timeouts) and
        // says whether the idle timeout has run out, so that a sweep can
        // judge a parked session without waking it.
        // Before hello, the hello deadline instead (Session::waiting_limit_ms).
        bool idle_expired(std::uint64_t now_ms, std::uint64_t unwatched_ms, const Config& config);
    };

    Session(SessionIo& io, const Library& library, const Config& config, Counters& counters);
    // Wakes a parked session: it goes on as if it had never been freed.
    Session(SessionIo& io, const Library& library, const Config& config, Counters& counters, Standing standing);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session();

    // IO events. Each one runs the transitions it triggers and returns.
    void on_bytes(std::span<const char> bytes);
    // Where the connection should read next, so that a data frame's payload
    // lands in the upload's staging chunk (no copy before the write): that
    // chunk's free end, or the first bytes of `scratch` (just a frame
    // header, whose payload then lands in place), or all of `scratch`.
    // The bytes read go to on_bytes() right after.
    std::span<char> receive_area(std::span<char> scratch);
    void on_sent();
    void on_peer_closed();
    // The server stops: idle now, or once the running transfer is done.
    void shutdown();
    // The drain time is over: cut whatever runs (uploads stay resumable).
    void abandon();
    // Closes an idle connection or a stalled frame or transfer, measures the
    // running transfer's rate and ends it if it lost its slot; called by the
    // server's periodic sweep with the loop's clock. `unwatched_ms` is time
    // in which the server itself did not run (it was stopped or frozen): it
    // is not held against the peer, so every clock moves forward by it.
    void check_timeouts(std::uint64_t now_ms, std::uint64_t unwatched_ms = 0);

    State state() const { return state_; }
    bool job_in_flight() const override { return job_in_flight_; }
    // Who acted, for the log: the label of the hello's token, "" if none.
    const std::string& token_label() const { return token_label_; }
    // The protocol version hello settled on (PROTOCOL.md 8); 0 before hello.
    // Paths, folders and the tree operations need version 2.
    std::uint32_t protocol_version() const override { return protocol_version_; }
    // Heap bytes the session holds beyond its own object: the inbox, the
    // running transfer and its slot, a listing, long strings. A server
    // holds thousands of idle sessions, so between requests this is 0.
    std::size_t held_bytes() const;
    // Whether the session is between requests with nothing in hand: no
    // partial frame or waiting input, no job, transfer, listing or slot, not
    // closing, not draining, reading not paused. Only then may it be parked.
    bool parkable() const;
    // Takes what the session keeps between requests (parkable() must hold);
    // the connection then frees the session and its output queue, and makes
    // them again from the Standing when bytes arrive. An idle connection so
    // holds a few dozen bytes of session instead of a few hundred.
    Standing park();
    // Idle with part of a frame received: what the stall timeout watches.
    bool reading_request() const { return state_ == State::awaiting_request && decoder_.mid_frame(); }
    // Reading a frame, part of which was received, that is not file data of
    // the running upload: a request (its header or JSON), a data frame's
    // header, or a data frame outside an upload. It must be whole within the
    // stall timeout of its first byte, however the peer spaces the bytes
    // (see check_timeouts). The decoder stops between frames in every other
    // state, and a closing session reads nothing. While an upload's chunk is
    // written the peer may be held back by us (receive_high_water), so the
    // deadline is not judged then.
    bool frame_pending() const
    {
        return decoder_.mid_frame() &&
               (state_ == State::awaiting_request ||
                (state_ == State::receiving_file && decoder_.data_remaining() == 0 && !job_in_flight_));
    }

private:
    struct Listing;
    class Gated;
    class Chained;
    struct ChainedPut;
    struct WaitingPut;

    // Input side.
    void pump();
    bool can_consume() const;
    void update_reading();
    void handle_control(const std::string& text);
    void handle_data(std::span<const std::uint8_t> bytes, bool frame_end);
    void handle_request(const Request& request);
    void handle_upload_control(Upload& upload, const Request& request);

    // Operations.
    void start_hello(std::uint64_t id, const HelloRequest& hello);
    void start_list(std::uint64_t id, const ListRequest& list);
    void continue_listing();
    void list_whole();
    void finish_list(std::optional<Error> error);
    void start_stat(std::uint64_t id, const StatRequest& stat);
    void start_get(std::uint64_t id, const GetRequest& get);
    void start_put(std::uint64_t id, const PutRequest& put);
    // The put's start on the pool, then its reply (or refusal).
    void begin_put(std::uint64_t id, const PutRequest& put);
    // A put refused for space while uploads too slow for --min-rate hold
    // reserved space: those are ended (as a waiting transfer takes a slow
    // one's slot) and the put waits to be tried again. False: refuse it.
    // `shortfall`: Upload::Begun::space_shortfall.
    bool wait_for_space(std::uint64_t id, const PutRequest& put, const Error& refusal, std::uint64_t shortfall);
    // A put right behind a commit in the input: taken now when it would
    // start (no refusal to say), so that its start runs in the commit's job.
    void take_chained_put();
    // The commit's job has run and its transfer ended: the chained put
    // starts as start_put's job would have started it.
    void start_chained_put();
    // The connection ends before a chained put started: its begun upload
    // is discarded on the pool. True when a job was submitted for it.
    bool drop_chained_put();
    // What start_put checks before any job, silently; and the request as
    // the connection's version reads it.
    bool put_would_start(const PutRequest& put) const;
    PutRequest versioned_put(const PutRequest& request) const;
    void send_stats(std::uint64_t id);
    void start_sync(std::uint64_t id);
    // Version 2's tree operations: one pool job each over the Library.
    void start_digest(std::uint64_t id, const DigestRequest& digest);
    void start_mkdir(std::uint64_t id, const MkdirRequest& mkdir);
    void start_delete(std::uint64_t id, const DeleteRequest& remove);
    void start_rename(std::uint64_t id, const RenameRequest& rename);
    void start_set_mtime(std::uint64_t id, const SetMtimeRequest& set);
    // What this connection takes as a name: a path on version 2, a plain
    // file name on version 1 (where a '/' is invalid_name, as it always was).
    std::optional<Error> check_name(std::string_view name) const;
    // forbidden on a read-only server or with a read-only token.
    std::optional<Error> check_writable() const;
    // Version 2 names what each entry is and gives its mode; version 1's
    // replies stay byte for byte as they were (no type, no mode).
    void describe_for_version(FileInfo& file) const;
    // Sends `result`'s reply or its error, and goes back to idle.
    template <typename T>
    void finish_simple(std::uint64_t id, const Result<T>& result);

    // Output and endings.
    // TransferHost
    void submit(std::unique_ptr<PoolJob> job) override;
    void submit_finish(std::unique_ptr<PoolJob> job) override;
    void send_json(std::string json_text) override;
    void send_error(std::optional<std::uint64_t> id, const Error& error) override;
    void input_room() override;
    void end_connection() override { begin_close(); }
    bool closing() const override { return ending(); }
    void transfer_ended() override;
    void release_slot() override { slot_.reset(); }
    void defer_folder_sync(PendingFolderSync pending) override;

    void protocol_error(std::optional<std::uint64_t> id, const Error& error);
    // An operation this connection's protocol version does not have.
    void refuse_unknown_op(std::uint64_t id, std::string_view op);
    void log_unlogged_errors();
    void back_to_idle();
    void fail_connection(std::optional<std::uint64_t> id, const Error& error);
    // Closing or closed: no more input, no new work. The one closing guard.
    bool ending() const { return state_ == State::closing || state_ == State::closed; }
    void begin_close();
    void advance_close();
    // Every job's completion comes back through here, the one place that
    // may drop it.
    bool take_completion();
    // Before hello nothing is activity: the hello deadline counts from the
    // connection's start (waiting_limit_ms), so that requests refused with
    // hello_required cannot hold a slot any longer than silence can.
    void touch()
    {
        if (hello_done_) {
            last_activity_ms_ = io_.now_ms();
        }
    }
    // How long the peer may be quiet between requests: the idle timeout, and
    // before hello no longer than the handshake timeout (a peer that knows
    // no token must not hold an address's slot for the idle timeout).
    std::uint64_t waiting_limit_ms() const;
    // The same for a parked session's Standing, which keeps no Session.
    static std::uint64_t waiting_limit_ms(bool hello_done, const Config& config);
    // What the peer has taken so far: bytes received from it plus bytes of
    // ours its TCP stack acknowledged; a transfer's rate is measured on it.
    std::uint64_t progress_bytes() const { return received_bytes_ + io_.acknowledged_bytes(); }
    void measure_rate(std::uint64_t now_ms);
    void refuse_transfer(std::uint64_t id, const Error& error);
    bool take_transfer_slot(std::uint64_t id);
    std::optional<std::uint64_t> transfer_id() const;
    Download* download() { return transfer_ ? std::get_if<Download>(transfer_.get()) : nullptr; }
    Upload* upload() { return transfer_ ? std::get_if<Upload>(transfer_.get()) : nullptr; }

    SessionIo& io_;
    const Library& library_;
    const Config& config_;
    Counters& counters_;
    // Held only while a get or put runs (on the heap, like the transfer:
    // the thousands of idle sessions a server may hold pay a pointer each).
    std::unique_ptr<TransferSlot> slot_;
    std::uint64_t last_activity_ms_ = 0;
    // When the first byte of the frame the decoder is in was decoded; read
    // only while frame_pending().
    std::uint64_t frame_started_ms_ = 0;
    std::uint64_t received_bytes_ = 0;
    // acknowledged_bytes() at the last sweep; progress_bytes() at the start
    // of the current rate window of a running transfer.
    std::uint64_t acknowledged_seen_ = 0;
    std::uint64_t window_start_ms_ = 0;
    std::uint64_t window_start_bytes_ = 0;
    // The small fields side by side, so that padding does not multiply by
    // the thousands of sessions a server holds.
    State state_ = State::awaiting_request;
    std::uint32_t protocol_version_ = 0;
    Access access_ = Access::read_write;
    bool draining_ = false;
    bool hello_done_ = false;
    bool job_in_flight_ = false;
    bool reading_paused_ = false;
    // The label of the token that said hello (--token-file); empty without one.
    std::string token_label_;
    // The folders this connection's deferred commits published into, one
    // entry each, for its next sync request (PROTOCOL.md 4.14). A session
    // holding any is not parked: the promise its sync will make needs them.
    std::vector<PendingFolderSync> deferred_syncs_;
    // Whose uploads this connection may resume (PartialUpload::begin):
    // nothing on a server without tokens, where every client is one.
    std::optional<UploadOwner> upload_owner_;
    std::uint64_t refuse_at_ms_ = 0;
    std::uint64_t refused_id_ = 0;
    std::uint64_t protocol_errors_ = 0;
    std::uint64_t errors_logged_ = 0;
    std::uint64_t errors_not_logged_ = 0;
    // Why the connection is closing, for a transfer it cuts short; set only
    // then, so an open session pays a pointer for it.
    std::unique_ptr<std::string> close_reason_;
    FrameDecoder decoder_;
    std::string inbox_;
    std::size_t inbox_pos_ = 0;
    // During on_bytes() only: its bytes not yet decoded, taken in place
    // while the inbox is empty.
    std::span<const std::uint8_t> direct_;
    // The running get or put, if any: one at a time. On the heap, made when
    // one starts and freed when it ends: a Download or an Upload is a few
    // hundred bytes, which every idle session would otherwise carry.
    std::unique_ptr<std::variant<Download, Upload>> transfer_;
    std::unique_ptr<Listing> listing_;
    // A put taken right behind a commit (take_chained_put), from then until
    // it starts or is dropped.
    std::unique_ptr<ChainedPut> chained_;
    // A put waiting for space (wait_for_space), from its first refusal
    // until it starts or is refused for good.
    std::unique_ptr<WaitingPut> waiting_put_;
};

} // namespace ferry::server
