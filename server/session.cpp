#include "session.hpp"

#include "log.hpp"
#include "names.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry::server {

namespace {

using Clock = std::chrono::steady_clock;

// How long the chunk that completes an upload waits for the commit before
// it is written without it (see Upload::continue_receiving): a client sends
// its commit right behind its data, and one that does not is told of a
// failing write at the next sweep after this.
constexpr std::uint64_t kLastChunkPatienceMs = 100;

// The most folders one connection's deferred commits may leave for its sync
// request (each pins a descriptor in FolderSyncs).
constexpr std::size_t kMaxDeferredFolders = 256;

const std::vector<std::string> kCapabilities{"list", "stat", "get", "put", "resume", "stats"};
// What a version-2 connection gets on top (PROTOCOL.md 4.1).
const std::vector<std::string> kVersion2Capabilities{// The tree and its operations (4.2, 4.9 to 4.13).
                                                     "folders", "mkdir", "delete", "rename", "digest", "mtime",
                                                     "set_mtime",
                                                     // Fields an older version-2 server lacks or ignores (8).
                                                     "holding_unlisted", "delete_expect", "set_mtime_expect",
                                                     "commit_replace", "unreadable_folders", "mode", "folder_modes",
                                                     // A commit's defer_sync and the sync request (4.5, 4.14).
                                                     "deferred_sync"};

// Syncs each folder of `pending` (FolderSyncs::sync, which unpins it),
// every one even after a failure; the first failure, if any.
std::optional<Error> sync_folders(std::vector<PendingFolderSync>& pending)
{
    std::optional<Error> first_failure;
    for (auto& folder : pending) {
        if (auto failed = FolderSyncs::process().sync(folder); failed && !first_failure) {
            failed->message += "; what was published there since the last sync may not survive a crash";
            first_failure = std::move(failed);
        }
    }
    return first_failure;
}

std::string seconds_text(std::uint64_t milliseconds)
{
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(milliseconds) / 1000.0);
    return text;
}

} // namespace

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

// A put taken right behind a commit: from then until its start ran in the
// commit's job (begun), and that start became the running upload.
struct Session::ChainedPut {
    std::uint64_t id;
    PutRequest put;
    bool submitted = false;
    std::optional<Upload::Begun> begun;
};

// A put the disk refused while slow uploads held reserved space: tried again
// at retry_at_ms, at most kSpaceTries times, while those end and give it back.
struct Session::WaitingPut {
    std::uint64_t id;
    PutRequest put;
    unsigned tries = 0;
    std::uint64_t retry_at_ms = 0;
};

namespace {

// A slow upload is cut at its loop's next sweep (at most a second apart),
// and its keep gives the space back on the pool at once: a refused put is
// tried again each second, up to four times, before no_space is its answer.
constexpr unsigned kSpaceTries = 4;
constexpr std::uint64_t kSpaceRetryMs = 1000;

} // namespace

// An upload's finish job followed, on the same pool thread, by the start of
// the put that came right behind its commit: a client sending its files one
// after another on one connection pays one pool round trip per file instead
// of two. The start is handed to the session before the finish's completion
// runs, which ends the transfer and so starts the chained put
// (back_to_idle()).
class Session::Chained final : public PoolJob {
public:
    Chained(Session& session, std::unique_ptr<PoolJob> finish, PutRequest put)
        : session_(session), finish_(std::move(finish)), put_(std::move(put)), owner_(owner_text(session.upload_owner_))
    {
    }
    void work() override
    {
        finish_->work();
        try {
            begun_.emplace(Upload::begin(session_.library_, put_, owner_));
        } catch (...) {
            failure_ = std::current_exception();
        }
    }
    void done() override
    {
        if (failure_) {
            std::rethrow_exception(failure_);
        }
        session_.chained_->begun = std::move(begun_);
        finish_->done();
    }

private:
    Session& session_;
    std::unique_ptr<PoolJob> finish_;
    PutRequest put_;
    std::string owner_; // made here: work() runs on the pool
    std::optional<Upload::Begun> begun_;
    std::exception_ptr failure_;
};

Session::Session(SessionIo& io, const Library& library, const Config& config, Counters& counters)
    : io_(io), library_(library), config_(config), counters_(counters), last_activity_ms_(io.now_ms()),
      decoder_(config.max_control_frame)
{
}

Session::Session(SessionIo& io, const Library& library, const Config& config, Counters& counters, Standing standing)
    : io_(io), library_(library), config_(config), counters_(counters), last_activity_ms_(standing.last_activity_ms),
      protocol_version_(standing.protocol_version),
      access_(standing.read_only ? Access::read_only : Access::read_write), hello_done_(standing.hello_done),
      token_label_(standing.who ? std::move(standing.who->label) : std::string()),
      upload_owner_(standing.who ? standing.who->owner : std::nullopt), protocol_errors_(standing.protocol_errors),
      errors_logged_(standing.errors_logged), errors_not_logged_(standing.errors_not_logged),
      decoder_(config.max_control_frame)
{
}

bool Session::parkable() const
{
    return state_ == State::awaiting_request && !job_in_flight_ && !reading_paused_ && !draining_ &&
           !decoder_.mid_frame() && inbox_pos_ >= inbox_.size() && direct_.empty() && !transfer_ && !listing_ &&
           !slot_ && !close_reason_ && !chained_ && deferred_syncs_.empty();
}

Session::Standing Session::park()
{
    static_assert(kMaxProtocolVersion <= UINT8_MAX && kLoggedErrorsPerConnection <= UINT16_MAX);
    Standing standing;
    if (!token_label_.empty() || upload_owner_) {
        standing.who = std::make_unique<Standing::Who>(Standing::Who{std::move(token_label_), upload_owner_});
    }
    standing.last_activity_ms = last_activity_ms_;
    standing.errors_not_logged = static_cast<std::uint32_t>(std::min<std::uint64_t>(errors_not_logged_, UINT32_MAX));
    // Bounded in practice: the connection closes past max_protocol_errors,
    // errors_logged stops at its limit, hello caps the version; four
    // billion unlogged errors would be said as four billion.
    standing.protocol_errors = static_cast<std::uint32_t>(std::min<std::uint64_t>(protocol_errors_, UINT32_MAX));
    standing.errors_logged = static_cast<std::uint16_t>(std::min<std::uint64_t>(errors_logged_, UINT16_MAX));
    standing.protocol_version = static_cast<std::uint8_t>(protocol_version_);
    standing.read_only = access_ == Access::read_only;
    standing.hello_done = hello_done_;
    // Carried in the Standing, not said by this object's destructor.
    errors_not_logged_ = 0;
    return standing;
}

bool Session::Standing::idle_expired(std::uint64_t now_ms, std::uint64_t unwatched_ms, const Config& config)
{
    // The same clock as check_timeouts' awaiting_request case, which the
    // woken session then runs to say why it closes.
    last_activity_ms = std::min(now_ms, last_activity_ms + unwatched_ms);
    const std::uint64_t quiet = now_ms > last_activity_ms ? now_ms - last_activity_ms : 0;
    return quiet >= waiting_limit_ms(hello_done, config);
}

std::uint64_t Session::waiting_limit_ms(bool hello_done, const Config& config)
{
    const auto limit = hello_done ? config.idle_timeout : std::min(config.idle_timeout, config.handshake_timeout);
    return static_cast<std::uint64_t>(limit.count());
}

std::uint64_t Session::waiting_limit_ms() const
{
    return waiting_limit_ms(hello_done_, config_);
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
    if (ending()) {
        return;
    }
    // Bytes alone are no progress (pump() says what is): a peer that
    // trickles them must not keep its connection by that.
    received_bytes_ += bytes.size();
    if (inbox_pos_ < inbox_.size()) {
        inbox_.append(bytes.data(), bytes.size()); // behind the bytes that wait
    } else {
        // Decoded where they lie (the loop's read buffer, or an upload's
        // staging chunk that receive_area() handed out); pump() copies into
        // the inbox only what the state machine cannot take now.
        direct_ = std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    pump();
    direct_ = {}; // the bytes are the caller's: never kept past this call
}

std::span<char> Session::receive_area(std::span<char> scratch)
{
    if (ending() || inbox_pos_ < inbox_.size() || !can_consume()) {
        return scratch;
    }
    if (state_ == State::receiving_file) {
        if (const std::uint32_t payload = decoder_.data_remaining(); payload > 0) {
            if (auto area = upload()->receive_area(payload); !area.empty()) {
                return area;
            }
        } else if (const std::size_t header = decoder_.header_missing(); header > 0) {
            // Just the header: the payload after it then lands in place. Not
            // when the rest of the file fits the scratch buffer: one read then
            // brings it with the commit behind it (and often the next put),
            // and copying that little costs less than the two or three more
            // reads the header-first way makes per small file.
            if (upload()->bytes_to_come() > scratch.size()) {
                return scratch.first(std::min(header, scratch.size()));
            }
        }
    }
    return scratch;
}

void Session::on_sent()
{
    touch();
    if (state_ == State::sending_file) {
        download()->continue_sending();
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
        return true;
    case State::receiving_file:
        return std::get<Upload>(*transfer_).can_take_data();
    case State::working:
    case State::waiting_for_space:
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
    // Handlers re-enter pump() (a reply that goes back to idle): each pass
    // takes its input from the members, moved past an event before it is
    // handled, so no frame is decoded twice.
    while (can_consume()) {
        std::span<const std::uint8_t> input = direct_;
        if (input.empty()) {
            if (inbox_pos_ == inbox_.size()) {
                break;
            }
            input = std::span(reinterpret_cast<const std::uint8_t*>(inbox_.data()) + inbox_pos_,
                              inbox_.size() - inbox_pos_);
        }
        if (!decoder_.mid_frame()) {
            // A frame's deadline runs from its first byte decoded (bytes
            // that waited in the inbox waited for us, not for the peer).
            frame_started_ms_ = io_.now_ms();
        }
        DecodeEvent event = decoder_.next(input);
        if (!direct_.empty()) {
            direct_ = direct_.subspan(event.consumed);
        } else {
            inbox_pos_ += event.consumed;
        }
        switch (event.kind) {
        case DecodeEvent::Kind::need_more:
            break;
        case DecodeEvent::Kind::control:
            touch(); // a whole request
            handle_control(event.text);
            break;
        case DecodeEvent::Kind::data:
            // File bytes are an upload's progress; an empty data frame
            // (legal, and a few bytes of header) is none.
            if (!event.bytes.empty()) {
                touch();
            }
            handle_data(event.bytes, event.frame_end);
            break;
        case DecodeEvent::Kind::error:
            direct_ = {};
            fail_connection(std::nullopt, event.error);
            return;
        }
    }
    if (!direct_.empty()) {
        // What the state machine cannot take now waits in the inbox (the
        // bytes on_bytes() was given are not ours to keep).
        if (!ending()) {
            inbox_.assign(reinterpret_cast<const char*>(direct_.data()), direct_.size());
            inbox_pos_ = 0;
        }
        direct_ = {};
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
// one socket read beyond what the state machine is willing to take. An
// upload at its high-water stops them at once, before that read: its data
// should land in the staging chunk (receive_area), not be copied through
// the inbox.
void Session::update_reading()
{
    if (ending()) {
        return;
    }
    const bool waiting_input = inbox_pos_ < inbox_.size() || state_ == State::receiving_file;
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
    // Before hello the version is not settled: a request is read as the
    // highest version has it, so that a well-formed one gets hello_required.
    ParsedRequest parsed = parse_request(text, hello_done_ ? protocol_version_ : kMaxProtocolVersion);
    if (!parsed.request) {
        protocol_error(parsed.id, parsed.request.error());
        return;
    }
    const Request& request = *parsed.request;
    if (state_ == State::receiving_file) {
        handle_upload_control(*upload(), request);
        return;
    }
    handle_request(request);
}

void Session::handle_data(std::span<const std::uint8_t> bytes, bool frame_end)
{
    if (state_ == State::receiving_file) {
        // What is left of this frame: this piece and what the decoder still
        // expects of its payload (so an overflowing frame is refused at its
        // first piece, not at the piece that crosses the size).
        const std::uint64_t frame_left = bytes.size() + decoder_.data_remaining();
        if (auto error = upload()->take_data(bytes, frame_left)) {
            send_error(upload()->id(), *error);
            begin_close();
        }
        return;
    }
    // A data frame outside an upload is read to its end (then refused), and
    // until then it is a frame in progress (the decoder is mid-frame), which
    // the stall timeout watches.
    if (frame_end) {
        protocol_error(std::nullopt, Error{ErrorCode::unexpected_frame, "data frame outside an upload"});
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
        void operator()(const ListRequest& list) const { session.start_list(id, list); }
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
        void operator()(const MkdirRequest& mkdir) const { session.start_mkdir(id, mkdir); }
        void operator()(const DeleteRequest& remove) const { session.start_delete(id, remove); }
        void operator()(const RenameRequest& rename) const { session.start_rename(id, rename); }
        void operator()(const DigestRequest& digest) const { session.start_digest(id, digest); }
        void operator()(const SetMtimeRequest& set) const { session.start_set_mtime(id, set); }
        void operator()(const SyncRequest&) const { session.start_sync(id); }
    };
    // Version 1 has no tree operations: parse_request already refused them
    // as unknown_op there; this keeps the rule in one place if it changes.
    if (protocol_version_ < 2 && needs_version_2(request.body)) {
        refuse_unknown_op(request.id, op_name(request.body));
        return;
    }
    std::visit(Dispatcher{*this, request.id}, request.body);
}

// ---- Simple operations ------------------------------------------------------

void Session::start_hello(std::uint64_t id, const HelloRequest& hello)
{
    // A client offers the highest version it speaks; any version from the
    // lowest we speak up serves, at the highest both sides know.
    if (hello.version < kMinProtocolVersion) {
        fail_connection(id,
                        Error{ErrorCode::unsupported_version,
                              "this server speaks protocol versions " + std::to_string(kMinProtocolVersion) + " to " +
                                  std::to_string(kMaxProtocolVersion) + ", not " + std::to_string(hello.version)});
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
        upload_owner_ = upload_owner(hello.token);
    }
    if (config_.read_only) {
        access_ = Access::read_only;
    }
    hello_done_ = true;
    touch(); // the idle clock starts here (touch() ignores what came before)
    protocol_version_ = std::min(hello.version, kMaxProtocolVersion);
    HelloReply reply;
    reply.version = protocol_version_;
    reply.access = std::string(to_string(access_));
    reply.server = std::string("ferryd/") + FERRY_VERSION;
    reply.capabilities = kCapabilities;
    if (protocol_version_ >= 2) {
        reply.capabilities.insert(reply.capabilities.end(), kVersion2Capabilities.begin(), kVersion2Capabilities.end());
        reply.mtime_limits = library_.mtime_limits();
    }
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
    std::uint64_t skipped = 0;          // paged: invalid names so far
    std::uint64_t skipped_too_deep = 0; // paged: entries past the path bounds so far
};

std::optional<Error> Session::check_name(std::string_view name) const
{
    return protocol_version_ >= 2 ? check_path(name) : check_file_name(name);
}

std::optional<Error> Session::check_writable() const
{
    if (access_ == Access::read_only) {
        return Error{ErrorCode::forbidden, config_.read_only ? "this server is read-only" : "this token may only read"};
    }
    return std::nullopt;
}

void Session::describe_for_version(FileInfo& file) const
{
    fit_to_version(file, protocol_version_);
    if (protocol_version_ >= 2 && !file.type) {
        file.type = EntryType::file;
    }
}

void Session::start_list(std::uint64_t id, const ListRequest& list)
{
    // Version 1 lists the root's regular files, whatever else the request
    // holds; version 2 any folder, with its folders, and recursively when
    // asked (always in pages: a tree has no useful bound on one reply).
    ListingOptions options;
    std::string path;
    bool paged = list.paged;
    if (protocol_version_ >= 2) {
        path = list.path;
        if (!path.empty()) {
            if (auto refused = check_path(path)) {
                send_error(id, *refused);
                return;
            }
        }
        options.folders = true;
        options.recursive = list.recursive;
        paged = paged || list.recursive;
    }
    state_ = State::working;
    listing_ = std::make_unique<Listing>();
    listing_->id = id;
    listing_->paged = paged;
    submit(make_job([&library = library_, path, options] { return library.open_listing(path, options); },
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
            listing_->skipped_too_deep += page.reply.skipped_too_deep;
            for (FileInfo& file : page.reply.files) {
                describe_for_version(file);
            }
            if (page.ended.value()) {
                page.reply.skipped_invalid_names = listing_->skipped;
                page.reply.skipped_too_deep = listing_->skipped_too_deep;
                send_json(encode_reply(listing_->id, page.reply));
                finish_list(std::nullopt);
                return;
            }
            page.reply.more = true;
            page.reply.skipped_invalid_names = 0;
            page.reply.skipped_too_deep = 0;
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
                ended =
                    listing->reader->read_page(std::min<std::size_t>(std::size_t{1} << 20, limit + 1), listing->whole);
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
            for (FileInfo& file : listing_->whole.files) {
                describe_for_version(file);
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
    // Version 2 describes the root too (""): a client copying the whole
    // tree needs its time.
    const bool root = protocol_version_ >= 2 && stat.name.empty();
    if (auto refused = root ? std::nullopt : check_name(stat.name)) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    // Version 1 knows regular files only: a folder is not_regular_file there.
    submit(make_job(
        [&library = library_, name = stat.name, folders = protocol_version_ >= 2] {
            return folders ? library.stat_entry_or_folder(name) : library.stat(name);
        },
        [this, id](Result<FileInfo> result) {
            if (result) {
                describe_for_version(result.value());
                send_json(encode_reply(id, StatReply{result.value()}));
            } else {
                send_error(id, result.error());
            }
            back_to_idle();
        }));
}

template <typename T>
void Session::finish_simple(std::uint64_t id, const Result<T>& result)
{
    if (result) {
        send_json(encode_reply(id, result.value()));
    } else {
        send_error(id, result.error());
    }
    back_to_idle();
}

void Session::start_digest(std::uint64_t id, const DigestRequest& digest)
{
    if (auto refused = check_name(digest.name)) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job(
        [&library = library_, name = digest.name, hash = digest.hash]() -> Result<DigestReply> {
            auto found = library.digest(name, hash);
            if (!found) {
                return found.error();
            }
            return DigestReply{std::move(found->file), std::move(found->digest), found->hash};
        },
        [this, id](Result<DigestReply> result) {
            if (result) {
                describe_for_version(result->file);
            }
            finish_simple(id, result);
        }));
}

void Session::start_mkdir(std::uint64_t id, const MkdirRequest& mkdir)
{
    if (auto refused = check_writable()) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job(
        [&library = library_, mkdir]() -> Result<MkdirReply> {
            auto created = library.make_folder(mkdir.path, mkdir.parents, mkdir.folder_modes);
            if (!created) {
                return created.error();
            }
            return MkdirReply{mkdir.path, created.value()};
        },
        [this, id](Result<MkdirReply> result) { finish_simple(id, result); }));
}

void Session::start_delete(std::uint64_t id, const DeleteRequest& remove)
{
    if (auto refused = check_writable()) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job(
        [&library = library_, remove]() -> Result<DeleteReply> {
            auto removed = library.remove(remove.path, remove.recursive, remove.expect);
            if (!removed) {
                return removed.error();
            }
            return DeleteReply{remove.path, removed->type, removed->files, removed->folders};
        },
        [this, id](Result<DeleteReply> result) { finish_simple(id, result); }));
}

void Session::start_rename(std::uint64_t id, const RenameRequest& rename)
{
    if (auto refused = check_writable()) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job(
        [&library = library_, rename]() -> Result<RenameReply> {
            if (auto failed = library.rename(rename.from, rename.to, rename.replace)) {
                return *failed;
            }
            return RenameReply{rename.from, rename.to};
        },
        [this, id](Result<RenameReply> result) { finish_simple(id, result); }));
}

void Session::start_set_mtime(std::uint64_t id, const SetMtimeRequest& set)
{
    if (auto refused = check_writable()) {
        send_error(id, *refused);
        return;
    }
    state_ = State::working;
    submit(make_job(
        [&library = library_, set]() -> Result<StatReply> {
            auto retimed = library.set_mtime(set.path, set.mtime, set.expect);
            if (!retimed) {
                return retimed.error();
            }
            return StatReply{std::move(retimed.value())};
        },
        [this, id](Result<StatReply> result) {
            if (result) {
                describe_for_version(result.value().file);
            }
            finish_simple(id, result);
        }));
}

// Makes durable the folders this connection's deferred commits published
// into (PROTOCOL.md 4.14): each one's fsync is shared with any other caller
// syncing that folder (FolderSyncs), and every folder is tried even after
// one fails; the first failure is the answer.
void Session::start_sync(std::uint64_t id)
{
    state_ = State::working;
    submit(make_job(
        [pending = std::exchange(deferred_syncs_, {})]() mutable -> Result<SyncReply> {
            if (auto failed = sync_folders(pending)) {
                return *failed;
            }
            return SyncReply{pending.size()};
        },
        [this, id](Result<SyncReply> result) { finish_simple(id, result); }));
}

void Session::defer_folder_sync(PendingFolderSync pending)
{
    for (auto& held : deferred_syncs_) {
        if (held.same_folder(pending)) {
            held.absorb(std::move(pending));
            return;
        }
    }
    deferred_syncs_.push_back(std::move(pending));
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

// ---- Transfers ----------------------------------------------------------------

void Session::start_get(std::uint64_t id, const GetRequest& get)
{
    if (auto refused = check_name(get.name)) {
        send_error(id, *refused);
        return;
    }
    if (!take_transfer_slot(id)) {
        return;
    }
    state_ = State::working;
    const Download::FirstRange first{get.offset == 0 && io_.supports_file_frames(), config_.file_frame_size,
                                     get.offset == 0 ? std::min(config_.whole_read_max, config_.chunk_size) : 0};
    submit(make_job([&library = library_, name = get.name, hash = get.hash, offset = get.offset,
                     first] { return Download::open(library, name, hash, offset, first); },
                    [this, id, offset = get.offset, hash = get.hash](Download::Opened opened) {
                        if (!opened.file) {
                            refuse_transfer(id, opened.file.error());
                            return;
                        }
                        const FileInfo& info = opened.file.value()->info();
                        if (offset > info.size) {
                            refuse_transfer(id, Error{ErrorCode::bad_offset,
                                                      "offset " + std::to_string(offset) + " is past the end of \"" +
                                                          info.name + "\" (" + std::to_string(info.size) + " bytes)"});
                            return;
                        }
                        state_ = State::sending_file;
                        transfer_ = std::make_unique<std::variant<Download, Upload>>(
                            std::in_place_type<Download>, static_cast<TransferHost&>(*this), io_, library_, config_,
                            counters_, token_label_, id, hash, std::move(opened), offset);
                        download()->begin();
                    }));
}

void Session::start_put(std::uint64_t id, const PutRequest& request)
{
    if (auto refused = check_name(request.name)) {
        send_error(id, *refused);
        return;
    }
    if (auto refused = check_writable()) {
        send_error(id, *refused);
        return;
    }
    const PutRequest put = versioned_put(request);
    if (put.size > config_.max_upload_size) {
        fail_connection(id, Error{ErrorCode::upload_too_large,
                                  "uploads are limited to " + std::to_string(config_.max_upload_size) + " bytes"});
        return;
    }
    if (!take_transfer_slot(id)) {
        return;
    }
    begin_put(id, put);
}

void Session::begin_put(std::uint64_t id, const PutRequest& put)
{
    state_ = State::working;
    submit(make_job(
        [&library = library_, put, owner = owner_text(upload_owner_)] { return Upload::begin(library, put, owner); },
        [this, id, put](Upload::Begun begun) {
            if (!begun.partial) {
                if (wait_for_space(id, put, begun.partial.error(), begun.space_shortfall)) {
                    return;
                }
                refuse_transfer(id, begun.partial.error());
                return;
            }
            waiting_put_.reset();
            state_ = State::receiving_file;
            transfer_ = std::make_unique<std::variant<Download, Upload>>(
                std::in_place_type<Upload>, static_cast<TransferHost&>(*this), io_, config_, counters_, token_label_,
                id, put, std::move(begun));
            upload()->send_reply();
            pump();
        }));
}

bool Session::wait_for_space(std::uint64_t id, const PutRequest& put, const Error& refusal, std::uint64_t shortfall)
{
    if (refusal.code != ErrorCode::no_space || config_.min_rate == 0 || draining_ || ending()) {
        waiting_put_.reset();
        return false;
    }
    if (!waiting_put_) {
        // The first refusal alone takes uploads, and only where they hold
        // what the put lacks: the later ones wait for those to give it back.
        const std::uint64_t taken = shortfall == 0 ? 0 : counters_.take_slow_reservations(shortfall);
        if (taken == 0) {
            return false;
        }
        // An operator sees why the slow uploads ended, and for whom.
        log_event("space_taken",
                  {{"peer", io_.peer()}, {"path", put.name}, {"short", shortfall}, {"coming_back", taken}});
        waiting_put_ = std::make_unique<WaitingPut>(WaitingPut{id, put});
    }
    if (waiting_put_->tries >= kSpaceTries) {
        waiting_put_.reset();
        return false;
    }
    ++waiting_put_->tries;
    waiting_put_->retry_at_ms = io_.now_ms() + kSpaceRetryMs;
    state_ = State::waiting_for_space;
    return true;
}

PutRequest Session::versioned_put(const PutRequest& request) const
{
    PutRequest put = request;
    if (protocol_version_ < 2) {
        // Fields version 1 does not have change nothing there.
        put.parents = false;
        put.folder_modes.clear();
        put.mtime.reset();
    }
    return put;
}

bool Session::put_would_start(const PutRequest& put) const
{
    return !check_name(put.name) && !check_writable() && put.size <= config_.max_upload_size;
}

// A client that sends its next put right behind a commit (ferry does, in
// the same write) has it in the input already: taken here, its start runs
// in the commit's job, and its reply follows the commit's as it would have.
// Only a put that start_put would send to the pool is taken; anything else
// waits to be read as usual, once the commit has been answered.
void Session::take_chained_put()
{
    if (draining_ || chained_) {
        return;
    }
    std::span<const std::uint8_t> input = direct_;
    if (input.empty()) {
        input =
            std::span(reinterpret_cast<const std::uint8_t*>(inbox_.data()) + inbox_pos_, inbox_.size() - inbox_pos_);
    }
    const std::size_t length = whole_control_frame(input, config_.max_control_frame);
    if (length == 0 || decoder_.mid_frame()) {
        return;
    }
    // A whole control frame leaves the decoder as it found it, between
    // frames: decoded here and not taken, it is decoded again later.
    DecodeEvent event = decoder_.next(input.first(length));
    if (event.kind != DecodeEvent::Kind::control || event.consumed != length) {
        return;
    }
    ParsedRequest parsed = parse_request(event.text, protocol_version_);
    if (!parsed.request) {
        return;
    }
    const auto* put = std::get_if<PutRequest>(&parsed.request->body);
    if (put == nullptr) {
        return;
    }
    PutRequest versioned = versioned_put(*put);
    if (!put_would_start(versioned)) {
        return;
    }
    if (!direct_.empty()) {
        direct_ = direct_.subspan(length);
    } else {
        inbox_pos_ += length;
    }
    chained_ = std::make_unique<ChainedPut>(ChainedPut{parsed.request->id, std::move(versioned), false, std::nullopt});
}

void Session::start_chained_put()
{
    const std::uint64_t id = chained_->id;
    if (!chained_->begun->partial) {
        const Error refusal = chained_->begun->partial.error();
        const std::uint64_t shortfall = chained_->begun->space_shortfall;
        const PutRequest put = chained_->put;
        chained_.reset();
        state_ = State::awaiting_request;
        if (wait_for_space(id, put, refusal, shortfall)) {
            return; // the retry takes a slot, as start_put would have
        }
        send_error(id, refusal);
        pump();
        return;
    }
    // Refused, the connection closes, and the close discards the begun
    // upload (drop_chained_put()).
    if (!take_transfer_slot(id)) {
        return;
    }
    auto chained = std::move(chained_);
    state_ = State::receiving_file;
    transfer_ = std::make_unique<std::variant<Download, Upload>>(
        std::in_place_type<Upload>, static_cast<TransferHost&>(*this), io_, config_, counters_, token_label_, id,
        chained->put, std::move(*chained->begun));
    upload()->send_reply();
    pump();
}

bool Session::drop_chained_put()
{
    auto chained = std::move(chained_);
    if (!chained || !chained->begun || !chained->begun->partial) {
        return false;
    }
    submit(make_job(
        [partial = std::move(chained->begun->partial.value())] {
            partial->discard();
            return true;
        },
        [](bool) {}));
    return true;
}

void Session::handle_upload_control(Upload& upload, const Request& request)
{
    const bool commit = std::holds_alternative<CommitRequest>(request.body);
    const bool abort = std::holds_alternative<AbortRequest>(request.body);
    if (!commit && !abort) {
        protocol_error(request.id, Error{ErrorCode::unexpected_frame, std::string(op_name(request.body)) +
                                                                          " during an upload; send commit or abort"});
        return;
    }
    if (request.id != upload.id()) {
        protocol_error(request.id, Error{ErrorCode::bad_request, "commit and abort take the id of the put (" +
                                                                     std::to_string(upload.id()) + ")"});
        return;
    }
    // The digest of the upload's own hash counts; another hash's beside it
    // is ignored, as unknown fields are (PROTOCOL.md 4.5).
    std::optional<std::string> digest;
    if (commit) {
        const std::string hash(hash_name(upload.hash()));
        digest = commit_digest(std::get<CommitRequest>(request.body), upload.hash());
        if (!digest) {
            protocol_error(request.id, Error{ErrorCode::bad_request, "this upload is checked with " + hash +
                                                                         "; its commit must carry that digest"});
            return;
        }
        if (auto malformed = check_digest_form(upload.hash(), *digest)) {
            protocol_error(request.id, *malformed);
            return;
        }
    }
    state_ = State::finishing_upload;
    if (commit) {
        take_chained_put();
        const auto& asked = std::get<CommitRequest>(request.body);
        // A connection holds a bounded number of folders for its sync; past
        // that, a commit syncs its folder as if it had not asked to defer.
        upload.commit(*digest, asked.replace, asked.defer_sync && deferred_syncs_.size() < kMaxDeferredFolders);
    } else {
        upload.abort(std::get<AbortRequest>(request.body).discard);
    }
}

// An upload's chunk reached the disk: frames held back may go on.
void Session::input_room()
{
    if (state_ == State::receiving_file) {
        pump();
    }
}

// The transfer has replied its last word (or failed and been told).
void Session::transfer_ended()
{
    transfer_.reset();
    back_to_idle();
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
void Session::refuse_unknown_op(std::uint64_t id, std::string_view op)
{
    protocol_error(id, Error{ErrorCode::unknown_op, "unknown operation \"" + std::string(op) + "\""});
}

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

// A get or put refused before its bytes began gives its slot back before
// the refusal goes out: a client that reads the refusal and then asks for
// stats, on any connection and any worker, sees the transfer ended.
void Session::refuse_transfer(std::uint64_t id, const Error& error)
{
    slot_.reset();
    send_error(id, error);
    back_to_idle();
}

bool Session::take_transfer_slot(std::uint64_t id)
{
    auto ticket = counters_.take_transfer(io_.address(), config_);
    if (!ticket) {
        fail_connection(id, ticket.error());
        return false;
    }
    slot_ = std::make_unique<TransferSlot>(counters_, std::move(ticket.value()));
    // The rate is judged over whole windows of the transfer itself.
    window_start_ms_ = io_.now_ms();
    window_start_bytes_ = progress_bytes();
    return true;
}

std::optional<std::uint64_t> Session::transfer_id() const
{
    if (!transfer_) {
        return std::nullopt;
    }
    if (const auto* download = std::get_if<Download>(transfer_.get())) {
        return download->id();
    }
    if (const auto* upload = std::get_if<Upload>(transfer_.get())) {
        return upload->id();
    }
    return std::nullopt;
}

void Session::back_to_idle()
{
    if (!transfer_) {
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
    if (chained_ && chained_->begun) {
        start_chained_put();
        return;
    }
    chained_.reset(); // taken, but its commit's job did not run it
    state_ = State::awaiting_request;
    pump();
}

void Session::fail_connection(std::optional<std::uint64_t> id, const Error& error)
{
    if (!close_reason_) {
        close_reason_ = std::make_unique<std::string>(std::string(to_string(error.code)) + ": " + error.message);
    }
    send_error(id, error);
    log_event("close", {{"peer", io_.peer()}, {"code", to_string(error.code)}});
    begin_close();
}

void Session::on_peer_closed()
{
    if (!close_reason_) {
        close_reason_ = std::make_unique<std::string>("the peer closed the connection");
    }
    begin_close();
}

void Session::shutdown()
{
    draining_ = true;
    if (state_ == State::awaiting_request) {
        send_error(std::nullopt, Error{ErrorCode::shutting_down, "the server is shutting down"});
        begin_close();
    }
}

void Session::abandon()
{
    if (ending()) {
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
    frame_started_ms_ = std::min(now_ms, frame_started_ms_ + unwatched_ms);
    // Bytes received already count when they arrive; what a download's
    // peer takes shows only here, in its acknowledgements.
    const std::uint64_t acknowledged = io_.acknowledged_bytes();
    if (acknowledged != acknowledged_seen_ && state_ == State::sending_file) {
        last_activity_ms_ = std::max(last_activity_ms_, now_ms);
    }
    acknowledged_seen_ = acknowledged;
    const bool moving = state_ == State::sending_file || state_ == State::receiving_file;
    if (moving && slot_ && (slot_->ticket().space_taken || slot_->ticket().preempted)) {
        // What it gave up: its disk space to a put refused for it, or its slot.
        const bool space = slot_->ticket().space_taken;
        fail_connection(transfer_id(),
                        Error{ErrorCode::too_slow, std::string(space ? "this upload" : "this transfer") + " moved " +
                                                       std::to_string(slot_->ticket().slow_rate.load()) +
                                                       " bytes/s, below the server's minimum of " +
                                                       std::to_string(config_.min_rate) +
                                                       " bytes/s, while another waited for " +
                                                       (space ? "the disk space it held" : "its slot")});
        return;
    }
    measure_rate(now_ms);
    const std::uint64_t quiet = now_ms > last_activity_ms_ ? now_ms - last_activity_ms_ : 0;
    const auto idle_limit = static_cast<std::uint64_t>(config_.idle_timeout.count());
    const auto stall_limit = static_cast<std::uint64_t>(config_.stall_timeout.count());
    // A frame other than an upload's file data must be whole within the
    // stall timeout of its first byte: counted from the last byte instead,
    // a peer sending one byte now and then would hold its connection (and
    // a connection slot of its address) forever. Such a frame takes a
    // fraction of a second from any client that means to send it.
    if (frame_pending()) {
        const std::uint64_t taken = now_ms > frame_started_ms_ ? now_ms - frame_started_ms_ : 0;
        if (taken >= stall_limit) {
            // During an upload it ends the upload (kept for resume): the put's id.
            fail_connection(transfer_id(),
                            Error{ErrorCode::stalled, "a frame must arrive whole within " + seconds_text(stall_limit) +
                                                          " of its first byte; " +
                                                          std::to_string(decoder_.frame_received()) +
                                                          " bytes of this one came in " + seconds_text(taken)});
            return;
        }
    }
    switch (state_) {
    case State::awaiting_request:
        if (!hello_done_ && quiet >= waiting_limit_ms()) {
            // Half a hello is no hello: the deadline holds mid-frame too.
            fail_connection(std::nullopt,
                            Error{ErrorCode::idle_timeout,
                                  "no hello within " + seconds_text(waiting_limit_ms()) + " of connecting"});
        } else if (!reading_request() && quiet >= idle_limit) {
            fail_connection(std::nullopt, Error{ErrorCode::idle_timeout, "no request for " + seconds_text(quiet)});
        }
        break;
    case State::sending_file:
    case State::receiving_file:
        if (quiet >= stall_limit) {
            fail_connection(transfer_id(), Error{ErrorCode::stalled, "no progress for " + seconds_text(quiet)});
        } else if (state_ == State::receiving_file && quiet >= kLastChunkPatienceMs) {
            // Every byte came but no commit: the last chunk goes to the
            // disk without it, so that a failing write is told now.
            upload()->stop_waiting_for_finish();
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
    case State::waiting_for_space:
        if (draining_) {
            // Not started: the put gets the stop, with its own id.
            const std::uint64_t id = waiting_put_->id;
            waiting_put_.reset();
            slot_.reset();
            send_error(id, Error{ErrorCode::shutting_down, "the server is shutting down"});
            begin_close();
            break;
        }
        if (now_ms >= waiting_put_->retry_at_ms) {
            if (!slot_ && !take_transfer_slot(waiting_put_->id)) {
                return; // refused (and closing): no slot for it now
            }
            begin_put(waiting_put_->id, waiting_put_->put);
        }
        break;
    case State::working:
    case State::finishing_upload:
    case State::closing:
    case State::closed:
        break; // waiting for our own disk, not for the peer
    }
    // Acknowledgements raise no event: a download whose last check waits
    // for them (Download::continue_sending) is woken by the connection
    // (SessionIo::await_acknowledgement), and looks again here too.
    if (state_ == State::sending_file) {
        download()->continue_sending();
    }
}

// A running transfer's rate is judged over windows of stall_timeout; only
// one whose last whole window was below min_rate may lose its slot, and
// only to a transfer that would otherwise be refused. Time spent waiting
// for the server's own disk is never judged.
void Session::measure_rate(std::uint64_t now_ms)
{
    if (slot_ && state_ == State::receiving_file) {
        slot_->ticket().reserved = upload()->bytes_to_come(); // what a put refused for space may take
    }
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
    if (ending()) {
        return;
    }
    state_ = State::closing;
    inbox_.clear();
    inbox_pos_ = 0;
    if (auto* upload = this->upload()) {
        upload->keep(close_reason_ ? *close_reason_ : std::string());
    }
    advance_close();
}

void Session::advance_close()
{
    if (job_in_flight_) {
        return; // the job's completion calls back here
    }
    if (drop_chained_put()) {
        return; // the discard's completion calls back here
    }
    if (auto* upload = this->upload(); upload && upload->has_work()) {
        upload->continue_receiving(); // its finish calls back here
        return;
    }
    if (!deferred_syncs_.empty() && !io_.torn_down()) {
        // Its client was promised nothing of these (no sync answered for
        // them), but a later run that finds the files equal skips them: so
        // what the connection published is made durable as it goes, as if
        // each commit had synced its folder (PROTOCOL.md 4.14).
        // Nobody is left to answer: a failure goes to the log (from the pool
        // thread, as a commit's warnings do), the one place it can be seen.
        submit(make_job(
            [pending = std::exchange(deferred_syncs_, {}), peer = io_.peer()]() mutable {
                const auto failed = sync_folders(pending);
                if (failed) {
                    log_event("error",
                              {{"peer", peer}, {"code", to_string(failed->code)}, {"message", failed->message}});
                }
                return failed.has_value();
            },
            [](bool) {})); // its completion goes on with the close (take_completion)
        return;
    }
    if (auto* download = this->download()) {
        download->interrupt(close_reason_ ? *close_reason_ : "the connection closed");
    }
    transfer_.reset();
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

void Session::submit_finish(std::unique_ptr<PoolJob> job)
{
    // Only a commit that is answered on a live connection: a put behind
    // anything else waits to be read as usual (or goes with the connection).
    if (chained_ && !chained_->submitted && state_ == State::finishing_upload && !draining_) {
        chained_->submitted = true;
        submit(std::make_unique<Chained>(*this, std::move(job), chained_->put));
        return;
    }
    if (chained_ && !chained_->submitted) {
        chained_.reset();
    }
    submit(std::move(job));
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
    if (state_ == State::closing && !upload()) {
        advance_close();
        return false;
    }
    return true;
}

std::size_t Session::held_bytes() const
{
    const auto heap = [](const std::string& text) {
        return text.capacity() > std::string().capacity() ? text.capacity() : 0;
    };
    return heap(inbox_) + heap(token_label_) + (close_reason_ ? sizeof(std::string) + heap(*close_reason_) : 0) +
           (transfer_ ? sizeof(*transfer_) : 0) + (slot_ ? sizeof(TransferSlot) : 0) +
           (listing_ ? sizeof(Listing) : 0) + (chained_ ? sizeof(ChainedPut) : 0) +
           (waiting_put_ ? sizeof(WaitingPut) : 0);
}

} // namespace ferry::server
