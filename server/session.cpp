#include "session.hpp"

#include "log.hpp"
#include "names.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry::server {

namespace {

using Clock = std::chrono::steady_clock;

const std::vector<std::string> kCapabilities{"list", "stat", "get", "put", "resume", "stats"};

// One line per finished, failed or interrupted transfer.
void log_transfer(const std::string& peer, std::string_view op, std::string_view name, std::uint64_t bytes,
                  Clock::time_point started, std::string_view result, std::string_view message = {},
                  HashKind hash = HashKind::sha256, std::string_view digest = {})
{
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds / (1024.0 * 1024.0) : 0.0;
    // A finished transfer names its hash, a failed one says why.
    std::vector<LogField> fields{{"peer", peer},   {"op", op},           {"name", name},
                                 {"bytes", bytes}, {"seconds", seconds}, {"mib_per_s", rate}};
    if (message.empty()) {
        fields.emplace_back(hash_name(hash), digest);
        fields.emplace_back("result", result);
    } else {
        fields.emplace_back("result", result);
        fields.emplace_back("message", message);
    }
    log_event("transfer", fields);
}

std::string seconds_text(std::uint64_t milliseconds)
{
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(milliseconds) / 1000.0);
    return text;
}

} // namespace

// A get in progress: the open file, the next byte to send and the running
// hash. While a job runs, only that job touches `file` and `hash`.
struct Session::Download {
    std::uint64_t id = 0;
    // Shared with file frames still on their way to the socket.
    std::shared_ptr<const OpenFile> file;
    std::uint64_t next_offset = 0;
    std::uint64_t first_offset = 0;
    TransferHash hash;
    // The digest cache knew the file: nothing is hashed while sending.
    std::optional<std::string> known_digest;
    // Set by the job that reads the last chunk and then finds the file
    // unchanged since it was opened (Library::check_unchanged): only then
    // may a trailer vouch for the bytes, and the digest be remembered.
    bool verified = false;
    // The file changed less than a second before it was opened: a write in
    // that same timestamp tick would move neither its modification nor its
    // change time, so its bytes are read once more before the trailer.
    bool freshly_changed = false;
    Clock::time_point started = Clock::now();
};

// A put in progress. Bytes from the wire gather in `staging` up to one
// chunk, then wait in `queue` for the single write job; `backlog` counts
// both, and is what receive_high_water bounds.
struct Session::Upload {
    enum class Finish { none, commit, abort_keep, abort_discard, keep };

    std::uint64_t id = 0;
    std::string name;
    std::unique_ptr<PartialUpload> partial;
    std::uint64_t size = 0;
    std::uint64_t first_offset = 0;
    std::uint64_t accepted = 0; // bytes taken from the wire, counting from 0
    std::string staging;
    std::deque<std::string> queue;
    std::size_t backlog = 0;
    Finish finish = Finish::none;
    HashKind hash = HashKind::sha256;
    std::string expected_digest;
    Clock::time_point started = Clock::now();
};

// A job on its way through the pool for this session: its completion passes
// the session's gate before it may act.
class Session::Gated final : public PoolJob {
public:
    Gated(Session& session, std::unique_ptr<PoolJob> job) : session_(session), job_(std::move(job)) {}
    void work() override { job_->work(); }
    void done() override
    {
        if (session_.take_completion()) {
            job_->done();
        }
    }

private:
    Session& session_;
    std::unique_ptr<PoolJob> job_;
};

Session::Session(SessionIo& io, const Library& library, const Config& config, Counters& counters)
    : io_(io), library_(library), config_(config), counters_(counters), decoder_(config.max_control_frame)
{
    touch();
}

Session::~Session()
{
    try {
        log_unlogged_errors();
    } catch (...) {
        // Out of memory while saying so: the count is in stats anyway.
    }
}

void Session::log_unlogged_errors()
{
    if (errors_not_logged_ > 0) {
        log_event("errors_not_logged", {{"peer", io_.peer()}, {"count", errors_not_logged_}});
        errors_not_logged_ = 0;
    }
}

// ---- Input -----------------------------------------------------------------

void Session::on_bytes(std::span<const char> bytes)
{
    if (state_ == State::closing || state_ == State::closed) {
        return;
    }
    touch();
    received_bytes_ += bytes.size();
    inbox_.append(bytes.data(), bytes.size());
    pump();
}

void Session::on_sent()
{
    touch();
    if (state_ == State::sending_file) {
        continue_sending();
        return;
    }
    if (state_ == State::sending_list) {
        continue_listing();
        return;
    }
    // Requests held back by the reply high-water may go on now.
    if (reading_paused_ && can_consume()) {
        pump();
    }
}

// Whether the next frame may be handled now. Whatever the state, nothing is
// taken while the peer leaves more than reply_high_water of our output
// unread: that bounds what replies (list, stat, stats, errors, hello_required
// before a token) can pile up to one high-water plus one reply.
bool Session::can_consume() const
{
    if (io_.unsent_bytes() >= config_.reply_high_water) {
        return false;
    }
    switch (state_) {
    case State::awaiting_request:
    case State::reading_request:
        return true;
    case State::receiving_file:
        return upload_->backlog < config_.receive_high_water;
    case State::working:
    case State::sending_list:
    case State::sending_file:
    case State::finishing_upload:
    case State::refusing:
    case State::closing:
    case State::closed:
        return false;
    }
    return false;
}

// Decodes and handles frames for as long as the current state takes them.
void Session::pump()
{
    while (can_consume() && inbox_pos_ < inbox_.size()) {
        const auto input =
            std::span(reinterpret_cast<const std::uint8_t*>(inbox_.data()) + inbox_pos_, inbox_.size() - inbox_pos_);
        DecodeEvent event = decoder_.next(input);
        inbox_pos_ += event.consumed;
        switch (event.kind) {
        case DecodeEvent::Kind::need_more:
            if (state_ == State::awaiting_request && decoder_.mid_frame()) {
                state_ = State::reading_request;
            }
            break;
        case DecodeEvent::Kind::control:
            if (state_ == State::reading_request) {
                state_ = State::awaiting_request;
            }
            handle_control(event.text);
            break;
        case DecodeEvent::Kind::data:
            if (state_ == State::reading_request) {
                state_ = State::awaiting_request;
            }
            handle_data(event.bytes, event.frame_end);
            break;
        case DecodeEvent::Kind::error:
            fail_connection(std::nullopt, event.error);
            return;
        }
    }
    if (inbox_pos_ == inbox_.size()) {
        inbox_pos_ = 0;
        // Idle connections keep no buffer (a hello's bytes would stay
        // allocated in each of thousands); busy ones keep a small one.
        if (state_ == State::awaiting_request || inbox_.capacity() > 4096) {
            std::string().swap(inbox_);
        } else {
            inbox_.clear();
        }
    }
    update_reading();
}

// Reads stop while unconsumed input waits; that bounds the inbox to about
// one socket read beyond what the state machine is willing to take.
void Session::update_reading()
{
    if (state_ == State::closing || state_ == State::closed) {
        return;
    }
    const bool waiting_input = inbox_pos_ < inbox_.size();
    const bool should_pause = waiting_input && !can_consume();
    if (should_pause && !reading_paused_) {
        reading_paused_ = true;
        io_.pause_reading();
    } else if (!should_pause && reading_paused_) {
        reading_paused_ = false;
        io_.resume_reading();
    }
}

void Session::handle_control(const std::string& text)
{
    ParsedRequest parsed = parse_request(text);
    if (!parsed.request) {
        protocol_error(parsed.id, parsed.request.error());
        return;
    }
    const Request& request = *parsed.request;
    if (state_ == State::receiving_file) {
        handle_upload_control(request);
        return;
    }
    handle_request(request);
}

void Session::handle_data(std::span<const std::uint8_t> bytes, bool frame_end)
{
    if (state_ == State::receiving_file) {
        stage_upload_bytes(bytes);
        return;
    }
    // A data frame outside an upload is read to its end (then refused), and
    // until then it is a frame in progress, which the stall timeout watches.
    if (frame_end) {
        if (state_ == State::reading_request) {
            state_ = State::awaiting_request;
        }
        protocol_error(std::nullopt, Error{ErrorCode::unexpected_frame, "data frame outside an upload"});
    } else if (state_ == State::awaiting_request) {
        state_ = State::reading_request;
    }
}

void Session::handle_request(const Request& request)
{
    if (!hello_done_ && !std::holds_alternative<HelloRequest>(request.body)) {
        protocol_error(request.id, Error{ErrorCode::hello_required, "the first request must be hello"});
        return;
    }
    struct Dispatcher {
        Session& session;
        std::uint64_t id;
        void operator()(const HelloRequest& hello) const { session.start_hello(id, hello); }
        void operator()(const ListRequest& list) const { session.start_list(id, list.paged); }
        void operator()(const StatRequest& stat) const { session.start_stat(id, stat); }
        void operator()(const GetRequest& get) const { session.start_get(id, get); }
        void operator()(const PutRequest& put) const { session.start_put(id, put); }
        void operator()(const CommitRequest&) const
        {
            session.protocol_error(id, Error{ErrorCode::unexpected_frame, "commit outside an upload"});
        }
        void operator()(const AbortRequest&) const
        {
            session.protocol_error(id, Error{ErrorCode::unexpected_frame, "abort outside an upload"});
        }
        void operator()(const StatsRequest&) const { session.send_stats(id); }
    };
    std::visit(Dispatcher{*this, request.id}, request.body);
}

// ---- Simple operations ------------------------------------------------------

void Session::start_hello(std::uint64_t id, const HelloRequest& hello)
{
    if (hello.version != kProtocolVersion) {
        fail_connection(id, Error{ErrorCode::unsupported_version, "this server speaks protocol version " +
                                                                      std::to_string(kProtocolVersion) + ", not " +
                                                                      std::to_string(hello.version)});
        return;
    }
    if (config_.tokens) {
        const auto granted = config_.tokens->current()->grant(hello.token);
        if (!granted) {
            // Wait before saying no, so guessing tokens is slow; the
            // connection reads nothing meanwhile.
            state_ = State::refusing;
            refuse_at_ms_ = io_.now_ms() + static_cast<std::uint64_t>(config_.auth_failure_delay.count());
            refused_id_ = id;
            log_event("auth_failed", {{"peer", io_.peer()}, {"token", hello.token.empty() ? "missing" : "wrong"}});
            return;
        }
        access_ = granted->access;
        token_label_ = granted->label;
    }
    if (config_.read_only) {
        access_ = Access::read_only;
    }
    hello_done_ = true;
    HelloReply reply;
    reply.access = std::string(to_string(access_));
    reply.server = std::string("ferryd/") + FERRY_VERSION;
    reply.capabilities = kCapabilities;
    reply.hashes = offered_hash_names();
    reply.max_control_frame = config_.max_control_frame;
    reply.max_data_frame = kMaxDataFrame;
    send_json(encode_reply(id, reply));
}

// A listing in progress. Paged: one page per job, each sent as soon as it
// is read, the next read only while the peer keeps up. Whole: every entry
// gathers in `whole`, up to Config::max_list_reply.
struct Session::Listing {
    std::uint64_t id = 0;
    bool paged = false;
    std::unique_ptr<DirectoryReader> reader;
    ListReply whole;
    std::uint64_t skipped = 0; // paged: invalid names so far
};

void Session::start_list(std::uint64_t id, bool paged)
{
    state_ = State::working;
    listing_ = std::make_unique<Listing>();
    listing_->id = id;
    listing_->paged = paged;
    submit(make_job([&library = library_] { return library.open_listing(); },
                    [this](Result<std::unique_ptr<DirectoryReader>> result) {
                if (!result) {
                    finish_list(result.error());
                    return;
                }
                listing_->reader = std::move(result.value());
                if (!listing_->paged) {
                    list_whole();
                    return;
                }
                state_ = State::sending_list;
                continue_listing();
            }));
}

// The next page, once the peer has read enough of the previous ones: the
// read is what the socket's queue throttles, so a slow reader costs no
// memory however large the folder.
void Session::continue_listing()
{
    if (state_ != State::sending_list || job_in_flight_) {
        return;
    }
    if (io_.unsent_bytes() >= config_.reply_high_water) {
        return; // on_sent() brings us back
    }
    struct Page {
        Result<bool> ended;
        ListReply reply;
    };
    submit(make_job(
        [reader = listing_->reader.get(), bytes = config_.list_page_bytes] {
            ListReply reply;
            Result<bool> ended = reader->read_page(bytes, reply);
            return Page{std::move(ended), std::move(reply)};
        },
        [this](Page page) {
            if (!page.ended) {
                finish_list(page.ended.error());
                return;
            }
            listing_->skipped += page.reply.skipped_invalid_names;
            if (page.ended.value()) {
                page.reply.skipped_invalid_names = listing_->skipped;
                send_json(encode_reply(listing_->id, page.reply));
                finish_list(std::nullopt);
                return;
            }
            page.reply.more = true;
            page.reply.skipped_invalid_names = 0;
            send_json(encode_reply(listing_->id, page.reply));
            continue_listing();
        }));
}

// One reply for a client that did not ask for pages: bounded by
// max_list_reply, beyond which reading stops and the client is told to page.
void Session::list_whole()
{
    // The job fills the listing's reply; the listing outlives the job
    // (advance_close waits for it).
    submit(make_job(
        [listing = listing_.get(), limit = config_.max_list_reply] {
            Result<bool> ended = false;
            while (true) {
                ended = listing->reader->read_page(std::min<std::size_t>(std::size_t{1} << 20, limit + 1),
                                                   listing->whole);
                if (!ended || ended.value() || listing->reader->bytes_read() > limit) {
                    break;
                }
            }
            if (ended && ended.value() && listing->reader->bytes_read() <= limit) {
                std::sort(listing->whole.files.begin(), listing->whole.files.end(),
                          [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
            }
            return ended;
        },
        [this](Result<bool> ended) {
            if (!ended) {
                finish_list(ended.error());
                return;
            }
            if (listing_->reader->bytes_read() > config_.max_list_reply) {
                finish_list(Error{ErrorCode::list_too_large,
                                  "the folder's list is longer than " + std::to_string(config_.max_list_reply) +
                                      " bytes, the most sent as one reply; ask for it in pages (\"paged\": true)"});
                return;
            }
            send_json(encode_reply(listing_->id, listing_->whole));
            finish_list(std::nullopt);
        }));
}

void Session::finish_list(std::optional<Error> error)
{
    if (error) {
        send_error(listing_->id, *error);
    }
    listing_.reset();
    back_to_idle();
}

void Session::start_stat(std::uint64_t id, const StatRequest& stat)
{
    if (auto refused = check_file_name(stat.name)) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job([&library = library_, name = stat.name] { return library.stat(name); },
                    [this, id](Result<FileInfo> result) {
                        if (result) {
                            send_json(encode_reply(id, StatReply{result.value()}));
                        } else {
                            send_error(id, result.error());
                        }
                        back_to_idle();
                    }));
}

void Session::send_stats(std::uint64_t id)
{
    StatsReply stats;
    stats.uptime_seconds = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - counters_.started).count());
    stats.connections_now = counters_.connections_now;
    stats.connections_total = counters_.connections_total;
    stats.transfers_now = counters_.active_transfers;
    stats.transfers_total = counters_.transfers_total;
    stats.bytes_in = counters_.bytes_in;
    stats.bytes_out = counters_.bytes_out;
    stats.errors = counters_.errors();
    send_json(encode_reply(id, stats));
}

// ---- get ---------------------------------------------------------------------

void Session::start_get(std::uint64_t id, const GetRequest& get)
{
    if (auto refused = check_file_name(get.name)) {
        send_error(id, *refused);
        return;
    }
    if (!take_transfer_slot(id)) {
        return;
    }
    state_ = State::working;
    struct Opened {
        Result<std::unique_ptr<OpenFile>> file;
        std::optional<std::string> cached_digest;
        bool fresh = false;
    };
    submit(make_job(
        [&library = library_, name = get.name, hash = get.hash] {
            Opened opened{library.open_for_read(name), std::nullopt, false};
            if (opened.file) {
                const FileIdentity& identity = opened.file.value()->identity();
                opened.cached_digest = library.digests().find(identity, hash);
                const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch());
                opened.fresh = now.count() - identity.changed_ns < 1'000'000'000;
            }
            return opened;
        },
        [this, id, offset = get.offset, hash = get.hash](Opened opened) {
            if (!opened.file) {
                send_error(id, opened.file.error());
                back_to_idle();
                return;
            }
            const FileInfo info = opened.file.value()->info();
            if (offset > info.size) {
                send_error(id, Error{ErrorCode::bad_offset, "offset " + std::to_string(offset) +
                                                                " is past the end of \"" + info.name + "\" (" +
                                                                std::to_string(info.size) + " bytes)"});
                back_to_idle();
                return;
            }
            ++counters_.transfers_total;
            download_ = std::make_unique<Download>();
            download_->id = id;
            download_->hash = TransferHash(hash);
            download_->known_digest = std::move(opened.cached_digest);
            download_->freshly_changed = opened.fresh;
            download_->file = std::move(opened.file.value());
            download_->next_offset = offset;
            download_->first_offset = offset;
            state_ = State::sending_file;
            send_json(encode_reply(id, GetReply{info, offset}));
            if (offset == 0 || download_->known_digest) {
                continue_sending();
                return;
            }
            hash_resumed_prefix();
        }));
}

// The trailer hashes the whole file, so the prefix the client already holds
// is hashed first (the client saved its own state of those bytes and never
// re-reads them). A step of its own, started by the open's completion.
void Session::hash_resumed_prefix()
{
    submit(make_job(
        [&library = library_, file = download_->file, &hash = download_->hash, offset = download_->first_offset] {
            std::optional<Error> failure = hash_prefix(file->fd(), offset, hash, file->info().name);
            // A file that shrank fails the read: say why.
            if (auto changed = library.check_unchanged(*file)) {
                failure = std::move(changed);
            }
            return failure;
        },
        [this](std::optional<Error> failure) {
            if (failure) {
                finish_download(failure);
                return;
            }
            download_->verified = download_->first_offset == download_->file->info().size;
            continue_sending();
        }));
}

// Reads the next chunk when the socket has room: the read is what the
// socket's write queue throttles, so a slow reader costs no memory.
void Session::continue_sending()
{
    if (state_ != State::sending_file || job_in_flight_) {
        return;
    }
    const std::uint64_t end = download_->file->info().size;
    if (download_->next_offset == end) {
        if (download_->verified && download_->freshly_changed && !download_->known_digest) {
            reread_fresh_file();
            return;
        }
        if (download_->verified) {
            finish_download(std::nullopt);
            return;
        }
        // No read has looked at the file since its last bytes left: they
        // went as file frames (the kernel copies them when the socket takes
        // them, so the check waits until it has) or there were none.
        if (io_.unsent_bytes() > 0) {
            return; // on_sent() brings us back
        }
        submit(make_job([&library = library_, file = download_->file] { return library.check_unchanged(*file); },
                        [this](std::optional<Error> failure) {
                            download_->verified = !failure;
                            finish_download(failure);
                        }));
        return;
    }
    if (io_.unsent_bytes() >= config_.send_high_water) {
        return; // on_sent() brings us back
    }
    // With the digest known nothing needs the bytes in memory: the kernel
    // moves them from the page cache to the socket.
    if (download_->known_digest && io_.supports_file_frames()) {
        send_file_frame(end);
        return;
    }
    const std::size_t size = std::min<std::uint64_t>(config_.chunk_size, end - download_->next_offset);
    struct Chunk {
        std::optional<Error> failure;
        std::string frame; // header and payload
    };
    submit(make_job(
        [&library = library_, file = download_->file, &hash = download_->hash,
         hashing = !download_->known_digest, offset = download_->next_offset, size] {
            Chunk chunk{std::nullopt, std::string(kFrameHeaderSize + size, '\0')};
            const FrameHeader header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(size));
            std::memcpy(chunk.frame.data(), header.data(), header.size());
            char* payload = chunk.frame.data() + kFrameHeaderSize;
            chunk.failure = read_exactly(file->fd(), payload, size, offset, file->info().name);
            if (!chunk.failure && hashing) {
                hash.update(payload, size);
            }
            // After the read, so that a change before or during it is seen
            // (a shrink, which fails the read, included); every chunk, so
            // that a changed file stops early.
            if (auto changed = library.check_unchanged(*file)) {
                chunk.failure = std::move(changed);
            }
            return chunk;
        },
        [this, size](Chunk chunk) {
            if (chunk.failure) {
                finish_download(chunk.failure);
                return;
            }
            download_->next_offset += size;
            download_->verified = download_->next_offset == download_->file->info().size;
            counters_.bytes_out += size;
            io_.send(std::move(chunk.frame));
            continue_sending();
        }));
}

// The last check cannot see a write within the timestamp tick of the change
// just before the open; hashing the file again can, when it altered bytes
// already sent. (A cached digest never belongs to such a file: the cache
// keeps only files settled for a second.)
void Session::reread_fresh_file()
{
    download_->freshly_changed = false;
    submit(make_job(
        [&library = library_, file = download_->file, sent = download_->hash.hex_digest(),
         kind = download_->hash.kind()] {
            TransferHash again(kind);
            std::optional<Error> failure = hash_prefix(file->fd(), file->info().size, again, file->info().name);
            if (auto changed = library.check_unchanged(*file)) {
                failure = std::move(changed);
            }
            if (!failure && again.hex_digest() != sent) {
                failure = Error{ErrorCode::file_changed,
                                "\"" + file->info().name +
                                    "\" was rewritten while it was being sent (its size and times did not move); "
                                    "the bytes sent are not one version of it"};
            }
            return failure;
        },
        [this](std::optional<Error> failure) { finish_download(failure); }));
}

void Session::send_file_frame(std::uint64_t end)
{
    const std::uint64_t offset = download_->next_offset;
    const std::size_t size = std::min<std::uint64_t>(config_.file_frame_size, end - offset);
    submit(make_job(
        [&library = library_, file = download_->file, offset, size] {
            // The frame's size goes on the wire before its bytes and cannot be
            // taken back, so they must still exist (and a changed file is cut
            // short anyway); and the copy runs on the loop, so the pages are
            // brought into memory here, off the loop.
            std::optional<Error> failure = library.check_unchanged(*file);
            if (!failure) {
                ::readahead(file->fd(), static_cast<off_t>(offset), size); // a failure only costs speed
            }
            return failure;
        },
        [this, offset, size](std::optional<Error> failure) {
            if (failure) {
                finish_download(failure);
                return;
            }
            // One job checks and reads ahead a large range, but it goes out
            // as data frames of chunk_size, as PROTOCOL.md 2 says senders
            // do; the frames are queued together, so sendfile still moves
            // the whole range without a trip through the loop per frame.
            for (std::size_t sent = 0; sent < size;) {
                const std::size_t frame = std::min(config_.chunk_size, size - sent);
                io_.send_file_frame(download_->file, offset + sent, frame);
                sent += frame;
            }
            download_->next_offset += size;
            counters_.bytes_out += size;
            continue_sending();
        }));
}

void Session::finish_download(std::optional<Error> error)
{
    const std::uint64_t sent = download_->next_offset - download_->first_offset;
    const auto& info = download_->file->info();
    if (error) {
        log_transfer(io_.peer(), "get", info.name, sent, download_->started, to_string(error->code), error->message);
        send_error(download_->id, *error);
    } else {
        const std::string digest = download_->known_digest.value_or(download_->hash.hex_digest());
        if (!download_->known_digest) {
            library_.digests().remember(download_->file->identity(), download_->hash.kind(), digest);
        }
        log_transfer(io_.peer(), "get", info.name, sent, download_->started, "ok", {}, download_->hash.kind(), digest);
        send_json(encode_reply(download_->id, Trailer{info.size, digest, download_->hash.kind()}));
    }
    download_.reset();
    back_to_idle();
}

// ---- put ---------------------------------------------------------------------

void Session::start_put(std::uint64_t id, const PutRequest& put)
{
    if (auto refused = check_file_name(put.name)) {
        send_error(id, *refused);
        return;
    }
    if (access_ == Access::read_only) {
        send_error(id, Error{ErrorCode::forbidden,
                             config_.read_only ? "this server is read-only" : "this token may only read"});
        return;
    }
    if (put.size > config_.max_upload_size) {
        fail_connection(id, Error{ErrorCode::upload_too_large,
                                  "uploads are limited to " + std::to_string(config_.max_upload_size) + " bytes"});
        return;
    }
    if (!take_transfer_slot(id)) {
        return;
    }
    state_ = State::working;
    struct Begun {
        Result<std::unique_ptr<PartialUpload>> partial;
        std::string prefix_digest; // of the bytes kept, when resumed
    };
    submit(make_job(
        [&library = library_, put] {
            Begun begun{PartialUpload::begin(library, put.name, put.size, put.resume, put.hash), {}};
            if (begun.partial && begun.partial.value()->received() > 0) {
                begun.prefix_digest = begun.partial.value()->received_digest();
            }
            return begun;
        },
        [this, id, size = put.size, hash = put.hash](Begun begun) {
            auto& result = begun.partial;
            if (!result) {
                send_error(id, result.error());
                back_to_idle();
                return;
            }
            ++counters_.transfers_total;
            upload_ = std::make_unique<Upload>();
            upload_->id = id;
            upload_->hash = hash;
            upload_->partial = std::move(result.value());
            upload_->name = upload_->partial->name();
            upload_->size = size;
            upload_->first_offset = upload_->partial->received();
            upload_->accepted = upload_->first_offset;
            state_ = State::receiving_file;
            PutReply reply;
            reply.offset = upload_->first_offset;
            reply.token = upload_->partial->token();
            reply.hash = hash;
            if (reply.offset > 0) {
                reply.prefix_digest = std::move(begun.prefix_digest);
            }
            send_json(encode_reply(id, reply));
            pump();
        }));
}

void Session::handle_upload_control(const Request& request)
{
    const bool commit = std::holds_alternative<CommitRequest>(request.body);
    const bool abort = std::holds_alternative<AbortRequest>(request.body);
    if (!commit && !abort) {
        protocol_error(request.id,
                       Error{ErrorCode::unexpected_frame,
                             std::string(op_name(request.body)) + " during an upload; send commit or abort"});
        return;
    }
    if (request.id != upload_->id) {
        protocol_error(request.id, Error{ErrorCode::bad_request, "commit and abort take the id of the put (" +
                                                                     std::to_string(upload_->id) + ")"});
        return;
    }
    if (commit && std::get<CommitRequest>(request.body).hash != upload_->hash) {
        protocol_error(request.id, Error{ErrorCode::bad_request, "this upload is checked with " +
                                                                     std::string(hash_name(upload_->hash)) +
                                                                     "; its commit must carry that digest"});
        return;
    }
    if (commit) {
        upload_->finish = Upload::Finish::commit;
        upload_->expected_digest = std::get<CommitRequest>(request.body).digest;
    } else {
        upload_->finish =
            std::get<AbortRequest>(request.body).discard ? Upload::Finish::abort_discard : Upload::Finish::abort_keep;
    }
    state_ = State::finishing_upload;
    flush_staging();
    continue_receiving();
}

void Session::stage_upload_bytes(std::span<const std::uint8_t> bytes)
{
    Upload& upload = *upload_;
    if (bytes.size() > upload.size - upload.accepted) {
        const Error error{ErrorCode::size_mismatch,
                          "more data than the declared size of " + std::to_string(upload.size) + " bytes"};
        upload.finish = Upload::Finish::keep;
        send_error(upload.id, error);
        log_transfer(io_.peer(), "put", upload.name, upload.accepted - upload.first_offset, upload.started,
                     to_string(error.code), error.message);
        begin_close();
        return;
    }
    upload.staging.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    upload.accepted += bytes.size();
    upload.backlog += bytes.size();
    counters_.bytes_in += bytes.size();
    if (upload.staging.size() >= config_.chunk_size || upload.accepted == upload.size) {
        flush_staging();
        continue_receiving();
    }
}

void Session::flush_staging()
{
    if (!upload_->staging.empty()) {
        upload_->queue.push_back(std::move(upload_->staging));
        upload_->staging = std::string();
        upload_->staging.reserve(config_.chunk_size);
    }
}

// Writes queued chunks one job at a time; once the queue is empty, runs the
// pending finish (commit, abort, or keep-for-resume when the peer left).
void Session::continue_receiving()
{
    if (job_in_flight_ || !upload_) {
        return;
    }
    Upload& upload = *upload_;
    if (!upload.queue.empty()) {
        std::string chunk = std::move(upload.queue.front());
        upload.queue.pop_front();
        const std::size_t size = chunk.size();
        submit(make_job([partial = upload.partial.get(), chunk = std::move(chunk)] { return partial->append(chunk); },
                        [this, size](std::optional<Error> failure) {
                            upload_->backlog -= size;
                            if (failure) {
                                fail_upload(*failure);
                                return;
                            }
                            continue_receiving();
                            if (state_ == State::receiving_file) {
                                pump();
                            }
                        }));
        return;
    }
    if (upload.finish != Upload::Finish::none) {
        finish_upload_job();
    }
}

void Session::finish_upload_job()
{
    struct Finished {
        std::optional<Result<FileInfo>> committed;
        std::optional<Error> kept_error;
        std::uint64_t kept_bytes = 0;
    };
    const auto finish = upload_->finish;
    // The PartialUpload moves into the job so that its descriptor is closed
    // (and, on network file systems, flushed) off the loop.
    submit(make_job(
        [partial = std::move(upload_->partial), finish, expected = upload_->expected_digest]() mutable {
            Finished finished;
            switch (finish) {
            case Upload::Finish::commit:
                finished.committed = partial->commit(expected);
                break;
            case Upload::Finish::abort_discard:
                partial->discard();
                break;
            case Upload::Finish::abort_keep:
            case Upload::Finish::keep:
                finished.kept_error = partial->checkpoint();
                finished.kept_bytes = partial->received();
                // A partial that cannot be made durable for lack of space
                // would only keep the disk full until it expires.
                if (finished.kept_error && finished.kept_error->code == ErrorCode::no_space) {
                    partial->discard();
                    finished.kept_bytes = 0;
                }
                break;
            case Upload::Finish::none:
                break;
            }
            partial.reset();
            return finished;
        },
        [this, finish](Finished finished) {
            Upload& upload = *upload_;
            const std::uint64_t bytes = upload.accepted - upload.first_offset;
            switch (finish) {
            case Upload::Finish::commit: {
                auto& result = *finished.committed;
                if (result) {
                    log_transfer(io_.peer(), "put", upload.name, bytes, upload.started, "ok", {}, upload.hash,
                                 upload.expected_digest);
                    send_json(
                        encode_reply(upload.id, CommitReply{result.value(), upload.expected_digest, upload.hash}));
                } else {
                    log_transfer(io_.peer(), "put", upload.name, bytes, upload.started, to_string(result.error().code),
                                 result.error().message);
                    send_error(upload.id, result.error());
                }
                break;
            }
            case Upload::Finish::abort_discard:
                log_transfer(io_.peer(), "put", upload.name, bytes, upload.started, "aborted", "discarded");
                send_json(encode_reply(upload.id, AbortReply{false, 0}));
                break;
            case Upload::Finish::abort_keep:
                log_transfer(io_.peer(), "put", upload.name, bytes, upload.started, "aborted",
                             std::to_string(finished.kept_bytes) + " bytes kept for resume");
                if (finished.kept_error) {
                    send_error(upload.id, *finished.kept_error);
                } else {
                    send_json(encode_reply(upload.id, AbortReply{true, finished.kept_bytes}));
                }
                break;
            case Upload::Finish::keep:
                log_transfer(io_.peer(), "put", upload.name, bytes, upload.started, "interrupted",
                             finished.kept_error ? finished.kept_error->message
                                                 : std::to_string(finished.kept_bytes) + " bytes kept for resume");
                break;
            case Upload::Finish::none:
                break;
            }
            upload_.reset();
            back_to_idle();
        }));
}

// A write failed (disk full, IO error): the partial is deleted, since the
// old file must stay intact and a broken partial is worth nothing; the
// error goes to the client and the connection closes (PROTOCOL.md 4.5).
void Session::fail_upload(const Error& error)
{
    log_transfer(io_.peer(), "put", upload_->name, upload_->accepted - upload_->first_offset, upload_->started,
                 to_string(error.code), error.message);
    std::unique_ptr<PartialUpload> partial = std::move(upload_->partial);
    const std::uint64_t id = upload_->id;
    upload_.reset();
    send_error(id, error);
    state_ = State::closing;
    // Closing without an upload: take_completion() goes on with the close.
    submit(make_job(
        [partial = std::move(partial)]() mutable {
            partial->discard();
            partial.reset();
            return true;
        },
        [](bool) {}));
}

// ---- Output and endings ----------------------------------------------------------

void Session::send_json(std::string json_text)
{
    io_.send(encode_control_frame(json_text));
}

// Every error is answered and counted in stats, but only the first
// kLoggedErrorsPerConnection reach the log: a peer that sends a million
// bad requests must not fill the disk with a million lines. The rest are
// summed up in one line when the session ends.
void Session::send_error(std::optional<std::uint64_t> id, const Error& error)
{
    if (errors_logged_ < kLoggedErrorsPerConnection) {
        ++errors_logged_;
        log_event("error", {{"peer", io_.peer()}, {"code", to_string(error.code)}, {"message", error.message}});
    } else {
        ++errors_not_logged_;
    }
    counters_.count_error(to_string(error.code));
    send_json(encode_error(id, error));
}

// A request the peer should never have sent (not a failed operation): past
// Config::max_protocol_errors of them the peer is broken or hostile, and
// answering more only costs us; the connection closes.
void Session::protocol_error(std::optional<std::uint64_t> id, const Error& error)
{
    if (++protocol_errors_ > config_.max_protocol_errors) {
        fail_connection(std::nullopt, Error{ErrorCode::too_many_errors,
                                            "more than " + std::to_string(config_.max_protocol_errors) +
                                                " protocol errors on this connection; the last: " + error.message});
        return;
    }
    send_error(id, error);
}

bool Session::take_transfer_slot(std::uint64_t id)
{
    auto ticket = counters_.take_transfer(io_.address(), config_);
    if (!ticket) {
        fail_connection(id, ticket.error());
        return false;
    }
    slot_.emplace(counters_, std::move(ticket.value()));
    // The rate is judged over whole windows of the transfer itself.
    window_start_ms_ = io_.now_ms();
    window_start_bytes_ = progress_bytes();
    return true;
}

std::optional<std::uint64_t> Session::transfer_id() const
{
    if (download_) {
        return download_->id;
    }
    if (upload_) {
        return upload_->id;
    }
    return std::nullopt;
}

void Session::back_to_idle()
{
    if (!download_ && !upload_) {
        slot_.reset();
    }
    if (state_ == State::closing) {
        advance_close();
        return;
    }
    if (draining_) {
        send_error(std::nullopt, Error{ErrorCode::shutting_down, "the server is shutting down"});
        begin_close();
        return;
    }
    state_ = State::awaiting_request;
    pump();
}

void Session::fail_connection(std::optional<std::uint64_t> id, const Error& error)
{
    send_error(id, error);
    log_event("close", {{"peer", io_.peer()}, {"code", to_string(error.code)}});
    begin_close();
}

void Session::on_peer_closed()
{
    begin_close();
}

void Session::shutdown()
{
    draining_ = true;
    if (state_ == State::awaiting_request || state_ == State::reading_request) {
        send_error(std::nullopt, Error{ErrorCode::shutting_down, "the server is shutting down"});
        begin_close();
    }
}

void Session::abandon()
{
    if (state_ == State::closing || state_ == State::closed) {
        return;
    }
    send_error(transfer_id(), Error{ErrorCode::shutting_down, "the server is shutting down"});
    begin_close();
}

void Session::check_timeouts(std::uint64_t now_ms, std::uint64_t unwatched_ms)
{
    // Time in which the server did not run is nobody's fault: the clocks
    // move forward by it, so every peer keeps the time it had left.
    last_activity_ms_ = std::min(now_ms, last_activity_ms_ + unwatched_ms);
    window_start_ms_ = std::min(now_ms, window_start_ms_ + unwatched_ms);
    // Bytes received already count when they arrive; what a download's
    // peer takes shows only here, in its acknowledgements.
    const std::uint64_t acknowledged = io_.acknowledged_bytes();
    if (acknowledged != acknowledged_seen_ && state_ == State::sending_file) {
        last_activity_ms_ = std::max(last_activity_ms_, now_ms);
    }
    acknowledged_seen_ = acknowledged;
    const bool moving = state_ == State::sending_file || state_ == State::receiving_file;
    if (moving && slot_ && slot_->ticket().preempted) {
        fail_connection(transfer_id(),
                        Error{ErrorCode::too_slow, "this transfer moved " +
                                                       std::to_string(slot_->ticket().slow_rate.load()) +
                                                       " bytes/s, below the server's minimum of " +
                                                       std::to_string(config_.min_rate) +
                                                       " bytes/s, while another waited for its slot"});
        return;
    }
    measure_rate(now_ms);
    const std::uint64_t quiet = now_ms > last_activity_ms_ ? now_ms - last_activity_ms_ : 0;
    const auto idle_limit = static_cast<std::uint64_t>(config_.idle_timeout.count());
    const auto stall_limit = static_cast<std::uint64_t>(config_.stall_timeout.count());
    switch (state_) {
    case State::awaiting_request:
        if (quiet >= idle_limit) {
            fail_connection(std::nullopt, Error{ErrorCode::idle_timeout, "no request for " + seconds_text(quiet)});
        }
        break;
    case State::reading_request:
    case State::sending_file:
    case State::receiving_file:
        if (quiet >= stall_limit) {
            fail_connection(transfer_id(), Error{ErrorCode::stalled, "no progress for " + seconds_text(quiet)});
        }
        break;
    case State::sending_list:
        if (quiet >= stall_limit) {
            fail_connection(listing_->id, Error{ErrorCode::stalled, "no progress for " + seconds_text(quiet)});
        }
        break;
    case State::refusing:
        if (now_ms >= refuse_at_ms_) {
            fail_connection(refused_id_, Error{ErrorCode::unauthorized, "a valid token is required"});
        }
        break;
    case State::working:
    case State::finishing_upload:
    case State::closing:
    case State::closed:
        break; // waiting for our own disk, not for the peer
    }
}

// A running transfer's rate is judged over windows of stall_timeout; only
// one whose last whole window was below min_rate may lose its slot, and
// only to a transfer that would otherwise be refused. Time spent waiting
// for the server's own disk is never judged.
void Session::measure_rate(std::uint64_t now_ms)
{
    const bool moving = state_ == State::sending_file || state_ == State::receiving_file;
    const std::uint64_t progress = progress_bytes();
    if (!slot_ || !moving || config_.min_rate == 0) {
        window_start_ms_ = now_ms;
        window_start_bytes_ = progress;
        if (slot_) {
            slot_->ticket().slow_rate = -1;
        }
        return;
    }
    const std::uint64_t elapsed = now_ms - std::min(now_ms, window_start_ms_);
    const auto window = static_cast<std::uint64_t>(config_.stall_timeout.count());
    if (elapsed < window || elapsed == 0) {
        return;
    }
    const std::uint64_t moved = progress - std::min(progress, window_start_bytes_);
    const std::uint64_t rate = moved * 1000 / elapsed;
    slot_->ticket().slow_rate = rate < config_.min_rate ? static_cast<std::int64_t>(rate) : -1;
    window_start_ms_ = now_ms;
    window_start_bytes_ = progress;
}

// Stops taking input; whatever is in flight finishes (an upload is made
// durable for resume) before the connection closes.
void Session::begin_close()
{
    if (state_ == State::closing || state_ == State::closed) {
        return;
    }
    state_ = State::closing;
    inbox_.clear();
    inbox_pos_ = 0;
    if (upload_ && upload_->finish == Upload::Finish::none) {
        upload_->finish = Upload::Finish::keep;
    }
    if (upload_ && upload_->partial) {
        flush_staging(); // bytes that arrived are kept, even mid-chunk
    }
    advance_close();
}

void Session::advance_close()
{
    if (job_in_flight_) {
        return; // the job's completion calls back here
    }
    if (upload_ && upload_->partial) {
        flush_staging();
        continue_receiving();
        return;
    }
    download_.reset();
    upload_.reset();
    listing_.reset();
    slot_.reset();
    state_ = State::closed;
    log_unlogged_errors(); // before the connection's "disconnect" line
    io_.close();
}

void Session::submit(std::unique_ptr<PoolJob> job)
{
    job_in_flight_ = true;
    io_.submit(std::make_unique<Gated>(*this, std::move(job)));
}

// Every job's completion passes here before it acts, and this is the one
// place where one is dropped:
// - the connection was torn down under the session (a forced close): nothing
//   said would reach the peer, and the connection frees itself next;
// - the session is closing and has no upload: what the job found (a page, a
//   chunk, a stat) has nobody to go to, so the close goes on instead. An
//   upload's jobs still act while closing: they write what arrived and keep
//   it for a resume.
bool Session::take_completion()
{
    job_in_flight_ = false;
    if (io_.torn_down()) {
        return false;
    }
    touch();
    if (state_ == State::closing && !upload_) {
        advance_close();
        return false;
    }
    return true;
}

} // namespace ferry::server
