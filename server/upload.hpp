// A put in progress, from its staging file to the commit, abort or keep:
// bytes from the wire gather in `staging_` up to one chunk, then wait in
// `queue_` for the single write job (a chunk goes as soon as it holds
// chunk_size while that job is idle, else once it is full). The connection reads a data frame's
// payload straight into the staging chunk (receive_area()), so on plain TCP
// the bytes reach pwrite without a copy in user space; bytes that arrive
// elsewhere (TLS, a read that held a frame header) are copied in. The
// finish (commit, abort, or keep for
// a resume when the connection ends) runs once the queue is empty. Owns
// its log line.
//
// Memory is bounded whatever the peer's speed: the session stops reading
// the socket while can_take_data() is false, that is while more than
// Config::receive_high_water waits for the disk.
#pragma once

#include "config.hpp"
#include "counters.hpp"
#include "library.hpp"
#include "messages.hpp"
#include "page_buffer.hpp"
#include "partial_upload.hpp"
#include "session_io.hpp"
#include "transfer_host.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ferry::server {

class Upload {
public:
    // What the start's pool job finds: the staging file, new or resumed.
    struct Begun {
        Result<std::unique_ptr<PartialUpload>> partial;
        std::string prefix_digest; // of the bytes kept, when resumed
        // Refused no_space: the bytes the put lacks past the free space
        // (its size less what the file system gives now); 0 where the free
        // space would hold it (a quota, the server's own files refused).
        std::uint64_t space_shortfall = 0;
    };
    // On the pool: begins (or resumes) the upload `put` asks for.
    // `owner`: who puts (upload_owner() of the hello's token, or kAnonymousOwner).
    static Begun begin(const Library& library, const PutRequest& put, std::string_view owner);

    // `token_label` names who acted in the log line.
    Upload(TransferHost& host, SessionIo& io, const Config& config, Counters& counters, const std::string& token_label,
           std::uint64_t id, const PutRequest& put, Begun begun);
    Upload(const Upload&) = delete;
    Upload& operator=(const Upload&) = delete;
    // Writes the transfer line if nothing did: the connection was cut.
    ~Upload();

    std::uint64_t id() const { return id_; }
    HashKind hash() const { return hash_; }

    // Sends the put's reply (where to resume from).
    void send_reply();
    // Whether more frames may be taken now (backpressure). Once every byte
    // arrived only the commit or abort is owed, which the last chunk waits
    // for (continue_receiving()).
    bool can_take_data() const { return backlog_ < config_.receive_high_water || accepted_ == size_; }
    // Where up to `most` bytes of data frame payload (the rest of one
    // frame) may be read so that take_data() need not copy them: the free
    // end of the staging chunk (allocated here if none is). Empty when the
    // frame overflows the declared size.
    std::span<char> receive_area(std::size_t most);
    // File bytes the peer has yet to send (the declared size less what was taken).
    std::uint64_t bytes_to_come() const { return size_ - accepted_; }
    // Bytes of a data frame; `frame_left` is what of that frame has not been
    // taken yet, these bytes included (the whole payload at its first piece).
    // A frame that would pass the declared size is refused whole, whatever
    // pieces it arrives in (PROTOCOL.md 4.5: the bytes before it are kept for
    // resume, none of it): size_mismatch ends the upload, kept, and the
    // session must close. Bytes that lie at the start of receive_area() are
    // taken where they are.
    std::optional<Error> take_data(std::span<const std::uint8_t> bytes, std::uint64_t frame_left);
    // The client's commit or abort; runs once what arrived is written.
    // `replace` false: publish only where nothing stands at the name (PROTOCOL.md 4.5).
    // `defer_sync`: the session allows a deferred folder sync (the commit
    // asked for one and the connection has room to hold it).
    void commit(std::string expected_digest, bool replace = true, bool defer_sync = false);
    void abort(bool discard);
    // The connection ends: keep what arrived for a resume, saying `why`.
    void keep(std::string why);
    // The chunk that completes the file waits no longer for the finish: it
    // is written now (the commit has not come; a write failure is then told
    // while data arrives, as PROTOCOL.md 4.5 says).
    void stop_waiting_for_finish();
    // Whether the upload still holds its file: it has writes or a finish
    // to run before it may be dropped.
    bool has_work() const { return partial_ != nullptr; }
    // Writes queued chunks one job at a time, but for the one that completes
    // the file: that one waits for the finish (commit, abort or keep), whose
    // job writes what is left and then finishes.
    void continue_receiving();

private:
    enum class Finish { none, commit, abort_keep, abort_discard, keep, fail };

    // One chunk on its way to the file; allocated without zeroing, since
    // the socket fills it.
    struct Chunk {
        sys::PageBuffer<char> bytes;
        std::size_t size = 0;
    };

    Chunk new_chunk();
    void recycle(sys::PageBuffer<char> bytes);
    void flush_staging();
    bool writer_idle() const { return !host_.job_in_flight() && queue_.empty(); }
    void finish_job();
    void fail(const Error& error);
    std::uint64_t moved() const { return accepted_ - first_offset_; }

    TransferHost& host_;
    const Config& config_;
    Counters& counters_;
    std::uint64_t id_;
    HashKind hash_;
    std::unique_ptr<PartialUpload> partial_;
    std::uint64_t size_;
    std::uint64_t first_offset_;
    std::uint64_t accepted_; // bytes taken from the wire, counting from 0
    std::string prefix_digest_;
    std::size_t staging_capacity_;
    Chunk staging_;
    std::deque<Chunk> queue_;
    std::vector<sys::PageBuffer<char>> spare_; // written chunks' buffers, for the next ones
    std::size_t backlog_ = 0; // staging and queue
    Finish finish_ = Finish::none;
    bool last_waits_for_finish_ = true;
    std::string expected_digest_;
    bool replace_ = true; // the commit's `replace`
    bool defer_sync_ = false; // the commit's `defer_sync`, where the session allows it
    std::string keep_why_;
    TransferLine line_;
};

} // namespace ferry::server
