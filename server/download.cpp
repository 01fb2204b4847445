#include "download.hpp"

#include "frame.hpp"
#include "messages.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

namespace ferry::server {

Download::Opened Download::open(const Library& library, const std::string& name, HashKind hash, std::uint64_t offset,
                                FirstRange first)
{
    // A get from offset 0 of a small file reads it whole with the open, as
    // a read chunk's job does (continue_sending): read, then checked
    // unchanged, so the bytes sent are one version of the file whatever
    // happens to it later. A file changed within the second before the open
    // is still read again before its trailer (reread_fresh_file), as a read
    // chunk's is.
    const Library::WholeRead whole_read{first.whole_max, kFrameHeaderSize};
    auto looked_up = library.open_for_read(name, whole_read);
    if (!looked_up) {
        return Opened{looked_up.error(), std::nullopt, false, 0, std::nullopt, {}};
    }
    Opened opened{std::move(looked_up.value().file), std::nullopt, false, 0, std::nullopt, {}};
    std::string whole_frame = std::move(looked_up.value().whole);
    const OpenFile& file = *opened.file.value();
    const FileIdentity& identity = file.identity();
    const bool sends_no_byte = offset >= file.info().size;
    opened.cached_digest = sends_no_byte ? library.digests().find(identity, hash)
                                         : library.digests().find_for_download(identity, hash);
    opened.fresh = identity.changed_lately();
    if (!whole_frame.empty()) {
        const std::size_t size = whole_frame.size() - kFrameHeaderSize;
        const FrameHeader header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(size));
        std::memcpy(whole_frame.data(), header.data(), header.size());
        if (!opened.cached_digest) {
            TransferHash hashed(hash);
            hashed.update(whole_frame.data() + kFrameHeaderSize, size);
            opened.first_hash = std::move(hashed);
        }
        opened.whole_frame = std::move(whole_frame);
        return opened;
    }
    if (whole_read.takes(file.info().size)) {
        return opened; // not read whole (a failed read, a change): the Download's own job finds that again, and says it
    }
    // What send_file_frame's job does for a range, done here for the first
    // one (continue_sending sends file frames under the same condition).
    // The open's own fstat is the check before a cached range is read
    // ahead; a hashed range is checked after its read, as there.
    const std::size_t size = std::min<std::uint64_t>(first.most, file.info().size);
    if (!first.wanted || size == 0 || (opened.fresh && !opened.cached_digest)) {
        return opened;
    }
    if (opened.cached_digest) {
        file.read_ahead(0, size);
        opened.first_range = size;
        return opened;
    }
    TransferHash hashed(hash);
    if (file.hash_range(0, size, hashed) || library.check_unchanged(file)) {
        return opened; // the range's own job finds the failure again, and says it
    }
    opened.first_hash = std::move(hashed);
    opened.first_range = size;
    return opened;
}

Download::Download(TransferHost& host, SessionIo& io, const Library& library, const Config& config, Counters& counters,
                   const std::string& token_label, std::uint64_t id, HashKind hash, Opened opened, std::uint64_t offset)
    : host_(host), io_(io), library_(library), config_(config), counters_(counters), id_(id),
      file_(std::move(opened.file.value())), next_offset_(offset), first_offset_(offset), hash_(hash),
      known_digest_(std::move(opened.cached_digest)), freshly_changed_(opened.fresh),
      first_range_(offset == 0 ? opened.first_range : 0), first_hash_(std::move(opened.first_hash)),
      whole_frame_(offset == 0 ? std::move(opened.whole_frame) : std::string()),
      line_(io.peer(), "get", file_->info().name, token_label)
{
    ++counters_.transfers_total;
}

Download::~Download()
{
    try {
        interrupt("the connection was closed");
    } catch (...) {
        // Out of memory while logging: the transfer is gone either way.
    }
}

void Download::interrupt(std::string_view why)
{
    // Bytes still in our own send queue never reached the peer.
    const std::uint64_t queued = next_offset_ - first_offset_;
    line_.ended(queued - std::min<std::uint64_t>(queued, io_.unsent_bytes()), "interrupted", why);
}

void Download::begin()
{
    GetReply reply{file_->info(), next_offset_};
    fit_to_version(reply.file, host_.protocol_version());
    host_.send_json(encode_reply(id_, reply));
    if (first_offset_ == 0 || known_digest_) {
        continue_sending();
        return;
    }
    hash_resumed_prefix();
}

// The trailer hashes the whole file, so the prefix the client already holds
// is hashed first (the client saved its own state of those bytes and never
// re-reads them). A step of its own, started by begin().
void Download::hash_resumed_prefix()
{
    host_.submit(make_job(
        [&library = library_, file = file_, &hash = hash_, offset = first_offset_] {
            std::optional<Error> failure = file->hash_prefix(offset, hash);
            // A file that shrank fails the read: say why.
            if (auto changed = library.check_unchanged(*file)) {
                failure = std::move(changed);
            }
            return failure;
        },
        [this](std::optional<Error> failure) {
            if (failure) {
                finish(failure);
                return;
            }
            verified_ = first_offset_ == file_->info().size;
            continue_sending();
        }));
}

// Reads the next chunk when the socket has room: the read is what the
// socket's write queue throttles, so a slow reader costs no memory.
void Download::continue_sending()
{
    if (host_.job_in_flight()) {
        return;
    }
    const std::uint64_t end = file_->info().size;
    if (next_offset_ == end) {
        if (verified_ && freshly_changed_ && !known_digest_) {
            reread_fresh_file();
            return;
        }
        if (verified_) {
            finish(std::nullopt);
            return;
        }
        // No read has looked at the file since its last bytes left: they
        // went as file frames or there were none. sendfile gives the socket
        // the page cache's pages, not copies, so a write to the file shows
        // in every byte not yet transmitted: the check waits until the
        // socket has taken them all and the peer has acknowledged them
        // (except on this host, where that proves nothing: see
        // SessionIo::peer_on_this_host). The wait is about a round trip,
        // plus the peer's delayed acknowledgement at worst (some 40 ms).
        if (io_.unsent_bytes() > 0) {
            return; // on_sent() brings us back
        }
        if (!io_.peer_on_this_host() && io_.unacknowledged_bytes() > 0) {
            io_.await_acknowledgement(); // on_sent() brings us back
            return;
        }
        host_.submit(make_job([&library = library_, file = file_] { return library.check_unchanged(*file); },
                              [this](std::optional<Error> failure) {
                                  verified_ = !failure;
                                  finish(failure);
                              }));
        return;
    }
    if (!whole_frame_.empty()) {
        // Read whole by the open's job (Opened::whole_frame): in memory, and
        // checked after its read, so it may wait for room and still go.
        if (first_hash_) {
            hash_ = std::move(*first_hash_);
            first_hash_.reset();
        }
        next_offset_ = end;
        verified_ = true;
        counters_.bytes_out += end;
        io_.send(std::exchange(whole_frame_, std::string()));
        continue_sending();
        return;
    }
    if (io_.unsent_bytes() >= config_.send_high_water) {
        first_range_ = 0; // made ready too long ago by now
        first_hash_.reset();
        return; // on_sent() brings us back
    }
    // The kernel moves the bytes from the page cache to the socket. With the
    // digest known nothing needs them in memory; without it the job hashes
    // the range before its frames go (see send_file_frame). A file changed
    // within the second before the open is read and sent from the same
    // memory instead: its later check cannot see a write in the same
    // timestamp tick, and only the bytes hashed are the bytes sent then.
    if (io_.supports_file_frames() && (known_digest_ || !freshly_changed_)) {
        send_file_frame(end);
        return;
    }
    const std::size_t size = std::min<std::uint64_t>(config_.chunk_size, end - next_offset_);
    struct Chunk {
        std::optional<Error> failure;
        std::string frame; // header and payload
    };
    host_.submit(make_job(
        [&library = library_, file = file_, &hash = hash_, hashing = !known_digest_, offset = next_offset_, size] {
            Chunk chunk{std::nullopt, std::string(kFrameHeaderSize + size, '\0')};
            const FrameHeader header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(size));
            std::memcpy(chunk.frame.data(), header.data(), header.size());
            char* payload = chunk.frame.data() + kFrameHeaderSize;
            chunk.failure = file->read_at(payload, size, offset);
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
                finish(chunk.failure);
                return;
            }
            next_offset_ += size;
            verified_ = next_offset_ == file_->info().size;
            counters_.bytes_out += size;
            io_.send(std::move(chunk.frame));
            continue_sending();
        }));
}

// The last check cannot see a write within the timestamp tick of the change
// just before the open; hashing the file again can, when it altered bytes
// already sent. (A cached digest never belongs to such a file: the cache
// keeps only files settled for a second.)
void Download::reread_fresh_file()
{
    freshly_changed_ = false;
    host_.submit(make_job(
        [&library = library_, file = file_, sent = hash_.hex_digest(), kind = hash_.kind()] {
            TransferHash again(kind);
            std::optional<Error> failure = file->hash_prefix(file->info().size, again);
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
        [this](std::optional<Error> failure) { finish(failure); }));
}

void Download::send_file_frame(std::uint64_t end)
{
    const std::uint64_t offset = next_offset_;
    if (offset == 0 && first_range_ > 0) {
        // Made ready by the open's job (Opened::first_range).
        const auto size = static_cast<std::size_t>(std::exchange(first_range_, 0));
        if (first_hash_) {
            hash_ = std::move(*first_hash_);
            first_hash_.reset();
        }
        queue_file_frames(offset, size);
        return;
    }
    first_range_ = 0;
    first_hash_.reset();
    const std::size_t size = std::min<std::uint64_t>(config_.file_frame_size, end - offset);
    host_.submit(make_job(
        [&library = library_, file = file_, &hash = hash_, hashing = !known_digest_, offset, size] {
            // The frame's size goes on the wire before its bytes and cannot be
            // taken back, so they must still exist (and a changed file is cut
            // short anyway); and the copy runs on the loop, so the pages are
            // brought into memory here, off the loop.
            if (!hashing) {
                std::optional<Error> failure = library.check_unchanged(*file);
                if (!failure) {
                    file->read_ahead(offset, size);
                }
                return failure;
            }
            // Hashing the range reads it into the page cache as well. The
            // kernel copies it to the socket later, as it does a range whose
            // digest was cached: the bytes sent are the bytes hashed while
            // the file is unchanged, which the check after the read and the
            // last one after the final byte left (continue_sending) vouch
            // for, as they do for the cached digest.
            std::optional<Error> failure = file->hash_range(offset, size, hash);
            if (auto changed = library.check_unchanged(*file)) {
                failure = std::move(changed);
            }
            return failure;
        },
        [this, offset, size](std::optional<Error> failure) {
            if (failure) {
                finish(failure);
                return;
            }
            queue_file_frames(offset, size);
        }));
}

void Download::queue_file_frames(std::uint64_t offset, std::size_t size)
{
    // One job checks and reads ahead a large range, but it goes out as data
    // frames of chunk_size, as PROTOCOL.md 2 says senders do; the frames are
    // queued together, so sendfile still moves the whole range without a
    // trip through the loop per frame.
    for (std::size_t sent = 0; sent < size;) {
        const std::size_t frame = std::min(config_.chunk_size, size - sent);
        io_.send_file_frame(file_, offset + sent, frame);
        sent += frame;
    }
    next_offset_ += size;
    counters_.bytes_out += size;
    continue_sending();
}

void Download::finish(std::optional<Error> error)
{
    const std::uint64_t sent = next_offset_ - first_offset_;
    const auto& info = file_->info();
    host_.release_slot();
    if (error) {
        line_.ended(sent, to_string(error->code), error->message);
        host_.send_error(id_, *error);
    } else {
        const std::string digest = known_digest_.value_or(hash_.hex_digest());
        if (!known_digest_) {
            library_.digests().remember(file_->identity(), hash_.kind(), digest);
        }
        line_.ok(sent, hash_.kind(), digest);
        host_.send_json(encode_reply(id_, Trailer{info.size, digest, hash_.kind()}));
    }
    host_.transfer_ended(); // destroys this
}

} // namespace ferry::server
