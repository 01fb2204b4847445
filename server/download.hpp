// A get in progress, from the open file to its trailer: the next range is
// moved by the kernel (file frames, sendfile) once a pool job has hashed it
// (or at once, the digest being cached), and only while the socket has
// room; a file changed just before the open, or a connection that cannot
// send file frames (TLS), gets chunks read and hashed into memory instead,
// and a small file is read whole by the job that opens it (one job per get;
// Config::whole_read_max). The file is checked unchanged before the trailer
// vouches for it. Owns its log line.
//
// Memory is bounded whatever the file size or the peer's speed: the next
// chunk is read only while less than Config::send_high_water is queued.
#pragma once

#include "config.hpp"
#include "counters.hpp"
#include "library.hpp"
#include "session_io.hpp"
#include "transfer_hash.hpp"
#include "transfer_host.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace ferry::server {

class Download {
public:
    // What the start's pool job finds: the file, and what is known of it.
    struct Opened {
        Result<std::unique_ptr<OpenFile>> file;
        // The digest cache knew the file: nothing is hashed while sending.
        std::optional<std::string> cached_digest;
        // Changed less than a second before it was opened (see below).
        bool fresh = false;
        // The bytes [0, first_range) were made ready by the open's job as a
        // file frame's job would (read ahead when the digest is cached, else
        // hashed into first_hash while the file stayed unchanged), so they
        // go out at once: a file's get takes two pool round trips (open,
        // and the check after its last byte left), not three. (A small
        // file is read whole instead: whole_frame, one round trip.)
        std::uint64_t first_range = 0;
        std::optional<TransferHash> first_hash;
        // A small file read whole (FirstRange::whole_max): one data frame,
        // header included, read while the file stayed unchanged, hashed into
        // first_hash unless the digest is cached. Empty: not read.
        std::string whole_frame;
    };
    // What the open's job may also do for the first range (see Opened).
    struct FirstRange {
        bool wanted = false;         // a get from offset 0 on a connection that sends file frames
        std::size_t most = 0;        // Config::file_frame_size
        // A get from offset 0 of a file of at most this many bytes (not 0)
        // reads it whole instead (Config::whole_read_max).
        std::size_t whole_max = 0;
    };
    // On the pool: opens `name`, looks its digest up and, when `first`
    // asks, makes the first range ready. `offset`: where the get starts;
    // a get from the file's end sends no byte for its client to check the
    // trailer's digest against (a version-1 client's digest request,
    // PROTOCOL.md 4.9), so it is answered from settled entries only, as a
    // digest request is (digest_cache.hpp).
    static Opened open(const Library& library, const std::string& name, HashKind hash, std::uint64_t offset,
                       FirstRange first);

    // `file` opened, `offset` checked against its size.
    // `token_label` names who acted in the log line.
    Download(TransferHost& host, SessionIo& io, const Library& library, const Config& config, Counters& counters,
             const std::string& token_label, std::uint64_t id, HashKind hash, Opened opened, std::uint64_t offset);
    Download(const Download&) = delete;
    Download& operator=(const Download&) = delete;
    // Writes the transfer line if nothing did: the connection was cut.
    ~Download();

    std::uint64_t id() const { return id_; }

    // Sends the get's reply and starts sending data.
    void begin();
    // The socket took bytes: the next chunk, or the trailer.
    void continue_sending();
    // The connection closes before the trailer: says why in the log line.
    void interrupt(std::string_view why);

private:
    void hash_resumed_prefix();
    void send_file_frame(std::uint64_t end);
    // Queues [offset, offset + size) as data frames that the kernel fills.
    void queue_file_frames(std::uint64_t offset, std::size_t size);
    void reread_fresh_file();
    void finish(std::optional<Error> error);

    TransferHost& host_;
    SessionIo& io_;
    const Library& library_;
    const Config& config_;
    Counters& counters_;
    std::uint64_t id_;
    // Shared with file frames still on their way to the socket.
    std::shared_ptr<const OpenFile> file_;
    std::uint64_t next_offset_;
    std::uint64_t first_offset_;
    // While a job runs, only that job touches the hash.
    TransferHash hash_;
    std::optional<std::string> known_digest_;
    // Set once the read of the last chunk, or a check after the last file
    // frame, found the file unchanged since it was opened
    // (Library::check_unchanged): only then may a trailer vouch for the
    // bytes, and the digest be remembered.
    bool verified_ = false;
    // The file changed less than a second before it was opened: a write in
    // that same timestamp tick would move neither its modification nor its
    // change time, so its bytes are read once more before the trailer.
    bool freshly_changed_ = false;
    // Opened::first_range and first_hash, used only if the first range goes
    // out as soon as the get starts: a wait for room drops them, so that
    // the range's own job checks the file again just before its frames.
    std::uint64_t first_range_ = 0;
    std::optional<TransferHash> first_hash_;
    // Opened::whole_frame, sent as the get starts.
    std::string whole_frame_;
    TransferLine line_;
};

} // namespace ferry::server
