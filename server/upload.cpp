#include "upload.hpp"

#include "chunk_cache.hpp"

#include <algorithm>
#include <cstring>

namespace ferry::server {

namespace {

// Staging chunks of up to 1 MiB: while the writer is busy, a quarter of
// the pool hand-offs (and write jobs) that chunks of one 256 KiB frame
// would take, while two of them still fit under the default
// receive_high_water (one being written, one filling). A smaller
// high-water gets smaller chunks, never under a frame.
constexpr std::size_t kStagingChunk = 1024 * 1024;

std::size_t staging_capacity(const Config& config)
{
    return std::max(config.chunk_size, std::min(kStagingChunk, config.receive_high_water / 2));
}

} // namespace

Upload::Begun Upload::begin(const Library& library, const PutRequest& put, std::string_view owner)
{
    Begun begun{PartialUpload::begin(library, put.name, put.size, put.resume, put.hash, put.parents, put.mtime, owner,
                                     put.folder_modes),
                {}};
    if (begun.partial) {
        begun.partial.value()->create_as(put.mode);
    }
    if (begun.partial && begun.partial.value()->received() > 0) {
        begun.prefix_digest = begun.partial.value()->received_digest();
    }
    if (!begun.partial && begun.partial.error().code == ErrorCode::no_space) {
        if (const auto free = library.free_space(); free && put.size > *free) {
            begun.space_shortfall = put.size - *free;
        }
    }
    return begun;
}

Upload::Upload(TransferHost& host, SessionIo& io, const Config& config, Counters& counters,
               const std::string& token_label, std::uint64_t id, const PutRequest& put, Begun begun)
    : host_(host), config_(config), counters_(counters), id_(id), hash_(put.hash),
      partial_(std::move(begun.partial.value())), size_(put.size), first_offset_(partial_->received()),
      accepted_(first_offset_), prefix_digest_(std::move(begun.prefix_digest)),
      staging_capacity_(staging_capacity(config)),
      line_(io.peer(), "put", partial_->name(), token_label)
{
    ++counters_.transfers_total;
}

Upload::~Upload()
{
    // The next uploads on this loop take these rather than fresh memory.
    auto& cache = ChunkCache::of_this_thread();
    for (auto& bytes : spare_) {
        cache.give(std::move(bytes), staging_capacity_);
    }
    try {
        line_.ended(moved(), "interrupted", "the connection was closed");
    } catch (...) {
        // Out of memory while logging: the upload is kept either way.
    }
}

void Upload::send_reply()
{
    PutReply reply;
    reply.offset = first_offset_;
    reply.token = partial_->token();
    reply.hash = hash_;
    if (reply.offset > 0) {
        reply.prefix_digest = prefix_digest_;
    }
    host_.send_json(encode_reply(id_, reply));
}

std::span<char> Upload::receive_area(std::size_t most)
{
    // A frame longer than what the put still expects overflows it: read as
    // any other input, so that take_data() refuses it as it arrives rather
    // than taking its first bytes in place.
    if (!partial_ || finish_ != Finish::none || most > size_ - accepted_) {
        return {};
    }
    if (!staging_.bytes) {
        staging_ = new_chunk();
    }
    return {staging_.bytes.get() + staging_.size, std::min(staging_capacity_ - staging_.size, most)};
}

std::optional<Error> Upload::take_data(std::span<const std::uint8_t> bytes, std::uint64_t frame_left)
{
    if (std::max<std::uint64_t>(bytes.size(), frame_left) > size_ - accepted_) {
        Error error{ErrorCode::size_mismatch,
                    "more data than the declared size of " + std::to_string(size_) + " bytes"};
        finish_ = Finish::keep;
        line_.ended(moved(), to_string(error.code), error.message);
        return error;
    }
    accepted_ += bytes.size();
    backlog_ += bytes.size();
    counters_.bytes_in += bytes.size();
    bool flushed = false;
    while (!bytes.empty()) {
        if (!staging_.bytes) {
            staging_ = new_chunk();
        }
        char* end = staging_.bytes.get() + staging_.size;
        const std::size_t take = std::min(bytes.size(), staging_capacity_ - staging_.size);
        // Read straight into the chunk by the connection: already in place.
        if (reinterpret_cast<const char*>(bytes.data()) != end) {
            std::memcpy(end, bytes.data(), take);
        }
        staging_.size += take;
        bytes = bytes.subspan(take);
        if (staging_.size == staging_capacity_) {
            flush_staging();
            flushed = true;
        }
    }
    // An idle writer gets a frame's worth at once (chunk_size), so that
    // bytes that arrived reach the file while the peer pauses; a busy one
    // lets the chunk grow to its capacity, fewer and larger writes.
    if (accepted_ == size_ || (staging_.size >= config_.chunk_size && writer_idle())) {
        flush_staging();
        flushed = true;
    }
    if (flushed) {
        continue_receiving();
    }
    return std::nullopt;
}

void Upload::commit(std::string expected_digest, bool replace, bool defer_sync)
{
    finish_ = Finish::commit;
    expected_digest_ = std::move(expected_digest);
    replace_ = replace;
    defer_sync_ = defer_sync;
    flush_staging();
    continue_receiving();
}

void Upload::abort(bool discard)
{
    finish_ = discard ? Finish::abort_discard : Finish::abort_keep;
    flush_staging();
    continue_receiving();
}

void Upload::keep(std::string why)
{
    if (finish_ == Finish::none) {
        finish_ = Finish::keep;
        keep_why_ = std::move(why);
    }
    if (partial_) {
        flush_staging(); // bytes that arrived are kept, even mid-chunk
    }
}

// A written chunk's buffer is used again rather than freed: a fresh one
// costs a page fault per page as the socket fills it (and glibc gives freed
// megabytes back to the system with madvise, so that the next ones fault
// again), which on a disk, where chunks wait longer and more of them live,
// cost ferryd more CPU than the writes themselves. No more buffers are kept
// than the backpressure lets live at once, so the bound on memory is the same.
// A finished upload leaves its buffers to the next ones (ChunkCache).
Upload::Chunk Upload::new_chunk()
{
    Chunk chunk;
    if (!spare_.empty()) {
        chunk.bytes = std::move(spare_.back());
        spare_.pop_back();
    } else {
        chunk.bytes = ChunkCache::of_this_thread().take(staging_capacity_);
    }
    return chunk;
}

void Upload::recycle(sys::PageBuffer<char> bytes)
{
    if (bytes && spare_.size() < config_.receive_high_water / staging_capacity_ + 1) {
        spare_.push_back(std::move(bytes));
    }
}

void Upload::flush_staging()
{
    if (staging_.size > 0) {
        queue_.push_back(std::move(staging_));
        staging_ = Chunk{};
    }
}

void Upload::continue_receiving()
{
    if (host_.job_in_flight() || !partial_) {
        return;
    }
    if (finish_ != Finish::none) {
        finish_job(); // with whatever is left to write
        return;
    }
    if (staging_.size >= config_.chunk_size && queue_.empty()) {
        flush_staging(); // what gathered while the last chunk was written
    }
    // The chunk that completes the file waits for the client's commit (or
    // abort), which follows it on the wire: written by the finish's own job,
    // a small upload costs one pool round trip less (its bytes are promised
    // durable only by the commit anyway).
    const bool last_waits =
        last_waits_for_finish_ && accepted_ == size_ && queue_.size() == 1 && staging_.size == 0;
    if (!queue_.empty() && !last_waits) {
        Chunk chunk = std::move(queue_.front());
        queue_.pop_front();
        const std::size_t size = chunk.size;
        struct Written {
            std::optional<Error> failure;
            sys::PageBuffer<char> bytes; // back to the loop, to be used again
        };
        host_.submit(make_job([partial = partial_.get(), chunk = std::move(chunk)]() mutable {
                                  Written written;
                                  written.failure =
                                      partial->append(std::span<const char>(chunk.bytes.get(), chunk.size));
                                  written.bytes = std::move(chunk.bytes);
                                  return written;
                              },
                              [this, size](Written written) {
                                  backlog_ -= size;
                                  if (written.failure) {
                                      fail(*written.failure);
                                      return;
                                  }
                                  recycle(std::move(written.bytes));
                                  // continue_receiving() may end this upload (its finish
                                  // job's completion can run before it returns, as the
                                  // fuzzer's inline pool does), and the session then
                                  // frees it: only the host, which outlives it, is used after.
                                  TransferHost& host = host_;
                                  continue_receiving();
                                  host.input_room();
                              }));
        return;
    }
}

void Upload::stop_waiting_for_finish()
{
    if (last_waits_for_finish_ && accepted_ == size_ && finish_ == Finish::none) {
        last_waits_for_finish_ = false;
        continue_receiving();
    }
}

void Upload::finish_job()
{
    struct Finished {
        std::optional<Result<FileInfo>> committed;
        // A committed upload's folder sync, left for the connection's next
        // sync request (the commit's defer_sync).
        std::optional<PendingFolderSync> pending_sync;
        std::optional<Error> kept_error;
        std::uint64_t kept_bytes = 0;
        // A write of the last chunks failed: the upload comes back to be
        // discarded as any failed write is (fail()).
        std::optional<Error> write_failure;
        std::unique_ptr<PartialUpload> failed;
        // The written chunks' buffers, back to the loop for the next uploads.
        std::vector<sys::PageBuffer<char>> buffers;
    };
    flush_staging();
    // The chunks not written yet go with the finish, in the same job: the
    // PartialUpload moves into it so that its descriptor is closed (and, on
    // network file systems, flushed) off the loop.
    std::deque<Chunk> chunks;
    if (finish_ != Finish::fail && finish_ != Finish::abort_discard) {
        chunks = std::move(queue_);
    }
    queue_.clear();
    host_.submit_finish(make_job(
        [partial = std::move(partial_), chunks = std::move(chunks), finish = finish_, expected = expected_digest_,
         replace = replace_, defer_sync = defer_sync_]() mutable {
            Finished finished;
            for (Chunk& chunk : chunks) {
                auto failure = partial->append(std::span<const char>(chunk.bytes.get(), chunk.size));
                finished.buffers.push_back(std::move(chunk.bytes));
                if (failure) {
                    finished.write_failure = std::move(failure);
                    finished.failed = std::move(partial);
                    return finished;
                }
            }
            switch (finish) {
            case Finish::commit:
                finished.committed = partial->commit(expected, replace, defer_sync);
                finished.pending_sync = partial->take_pending_sync();
                break;
            case Finish::abort_discard:
                partial->discard();
                break;
            case Finish::fail:
                partial->drop_after_failure();
                break;
            case Finish::abort_keep:
            case Finish::keep:
                // A state that cannot be written leaves the last one
                // standing, and a resume starts from it: the bytes stay
                // (PROTOCOL.md 4.5).
                finished.kept_error = partial->keep();
                finished.kept_bytes = partial->received();
                break;
            case Finish::none:
                break;
            }
            partial.reset();
            return finished;
        },
        [this](Finished finished) {
            for (auto& bytes : finished.buffers) {
                recycle(std::move(bytes));
            }
            if (finished.write_failure) {
                partial_ = std::move(finished.failed);
                fail(*finished.write_failure);
                return;
            }
            host_.release_slot();
            switch (finish_) {
            case Finish::commit: {
                auto& result = *finished.committed;
                if (result) {
                    line_.ok(moved(), hash_, expected_digest_);
                    CommitReply reply{result.value(), expected_digest_, hash_};
                    fit_to_version(reply.file, host_.protocol_version());
                    if (finished.pending_sync) {
                        reply.synced = false;
                        host_.defer_folder_sync(std::move(*finished.pending_sync));
                    }
                    host_.send_json(encode_reply(id_, reply));
                } else {
                    line_.ended(moved(), to_string(result.error().code), result.error().message);
                    host_.send_error(id_, result.error());
                }
                break;
            }
            case Finish::abort_discard:
                line_.ended(moved(), "aborted", "discarded");
                host_.send_json(encode_reply(id_, AbortReply{false, 0}));
                break;
            case Finish::abort_keep:
                line_.ended(moved(), "aborted", std::to_string(finished.kept_bytes) + " bytes kept for resume");
                if (finished.kept_error) {
                    host_.send_error(id_, *finished.kept_error);
                } else {
                    host_.send_json(encode_reply(id_, AbortReply{true, finished.kept_bytes}));
                }
                break;
            case Finish::keep:
                line_.ended(moved(), "interrupted",
                            finished.kept_error ? finished.kept_error->message
                                                : keep_why_ + (keep_why_.empty() ? "" : "; ") +
                                                      std::to_string(finished.kept_bytes) + " bytes kept for resume");
                break;
            case Finish::fail:
            case Finish::none:
                break;
            }
            host_.transfer_ended(); // destroys this
        }));
}

// A write failed (disk full, IO error): the partial is deleted, since the
// old file must stay intact and a broken partial is worth nothing (but
// where only a checkpoint's state could not be written, its bytes stay for
// a resume from the last state: PartialUpload::drop_after_failure); the
// error goes to the client and the connection closes (PROTOCOL.md 4.5).
void Upload::fail(const Error& error)
{
    line_.ended(moved(), to_string(error.code), error.message);
    finish_ = Finish::fail;
    queue_.clear();
    staging_ = Chunk{};
    host_.release_slot();
    host_.send_error(id_, error);
    if (host_.closing()) {
        // The connection's end was under way already (the failed write was
        // of the bytes it keeps): nothing else runs the discard.
        continue_receiving();
        return;
    }
    host_.end_connection(); // runs the discard, then closes
}

} // namespace ferry::server
