#include "operations.hpp"

#include "hash_pipeline.hpp"

#include "digest.hpp"
#include "interrupt.hpp"
#include "listing_check.hpp"
#include "local_files.hpp"
#include "names.hpp"
#include "page_buffer.hpp"
#include "part_file.hpp"
#include "posix_io.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"
#include "stream_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

namespace ferry::client {

namespace {

constexpr std::size_t kPrefixReadChunk = 1024 * 1024;
constexpr std::chrono::milliseconds kBusyPatience{5000};
constexpr std::chrono::milliseconds kBusyRetryInterval{200};
// Uploads from this size on are hashed on a second thread (HashPipeline).
constexpr std::uint64_t kHashThreadFrom = 4 * 1024 * 1024;
// A file changed this shortly before a put opened it may change again
// within the same timestamp tick, unseen by its mtime and ctime (the
// kernel's clock is coarse; some file systems keep whole seconds or two).
constexpr std::chrono::nanoseconds kFreshWindow = std::chrono::seconds(2);

// An error reply ends the request. The connection stays in step unless the
// server closes after this code, or the "reply" was one we could not read
// (bad_json / bad_request from the parser mean the stream is suspect).
Error settle(Connection& connection, Error error)
{
    if (closes_connection(error.code) || error.code == ErrorCode::bad_json || error.code == ErrorCode::bad_request) {
        connection.close();
    }
    return error;
}

Error wrong_id(Connection& connection, std::uint64_t got, std::uint64_t expected)
{
    connection.close();
    return protocol_error("a reply for request " + std::to_string(got) + " where one for request " +
                          std::to_string(expected) + " was expected");
}

} // namespace

namespace {

// Whether a reply moves the conversation on (Connection::made_progress):
// every reply answers its request, except a listing's page that holds no
// entry and promises more, which a server could send forever.
template <class Body>
bool makes_progress(const Body&)
{
    return true;
}

bool makes_progress(const ListReply& page)
{
    return !page.files.empty() || !page.more;
}

} // namespace

template <class Body>
Result<Reply<Body>> parse_server_reply(Connection& connection, std::string_view text, std::uint64_t id,
                                       ReplyParser<Body> parse)
{
    auto reply = parse(text);
    if (reply) {
        if (reply->id != id) {
            return wrong_id(connection, reply->id, id);
        }
        return reply;
    }
    const ReplyHead head = read_reply_head(text);
    if (head.id && *head.id != id) {
        return wrong_id(connection, *head.id, id);
    }
    if (head.server_error) {
        return settle(connection, reply.error());
    }
    connection.close();
    return protocol_error("its reply to request " + std::to_string(id) + " is malformed: " + reply.error().message);
}

// clobber.cpp reads a trailer with it.
template Result<Reply<Trailer>> parse_server_reply(Connection&, std::string_view, std::uint64_t,
                                                   ReplyParser<Trailer>);

// Every request's reply is read the same way; only the parser differs.
template <class Body>
Result<Body> read_reply(Connection& connection, std::uint64_t id, ReplyParser<Body> parse)
{
    auto text = connection.receive_control();
    if (!text) {
        return text.error();
    }
    auto reply = parse_server_reply(connection, text.value(), id, parse);
    if (!reply) {
        return reply.error();
    }
    if (makes_progress(reply->body)) {
        connection.made_progress();
    }
    return std::move(reply->body);
}

std::optional<Error> unlike_asked(std::string_view what, std::string_view answered, std::string_view asked)
{
    if (answered == asked) {
        return std::nullopt;
    }
    return protocol_error(std::string(what) + " is " + quoted(answered) + ", not the " + quoted(asked) + " asked for");
}

std::optional<Error> unlike_request(const RequestBody& body, const StatReply& reply)
{
    if (const auto* stat = std::get_if<StatRequest>(&body)) {
        return unlike_asked("the stat reply's name", reply.file.name, stat->name);
    }
    if (const auto* set = std::get_if<SetMtimeRequest>(&body)) {
        return unlike_asked("the set_mtime reply's name", reply.file.name, set->path);
    }
    return std::nullopt;
}

std::optional<Error> unlike_request(const RequestBody& body, const GetReply& reply)
{
    const auto* get = std::get_if<GetRequest>(&body);
    return get == nullptr ? std::nullopt : unlike_asked("the get reply's name", reply.file.name, get->name);
}

std::optional<Error> unlike_request(const RequestBody& body, const DigestReply& reply)
{
    const auto* digest = std::get_if<DigestRequest>(&body);
    return digest == nullptr ? std::nullopt
                             : unlike_asked("the digest reply's name", reply.file.name, digest->name);
}

std::optional<Error> unlike_request(const RequestBody& body, const MkdirReply& reply)
{
    const auto* mkdir = std::get_if<MkdirRequest>(&body);
    return mkdir == nullptr ? std::nullopt : unlike_asked("the mkdir reply's path", reply.path, mkdir->path);
}

std::optional<Error> unlike_request(const RequestBody& body, const DeleteReply& reply)
{
    const auto* remove = std::get_if<DeleteRequest>(&body);
    return remove == nullptr ? std::nullopt : unlike_asked("the delete reply's path", reply.path, remove->path);
}

std::optional<Error> unlike_request(const RequestBody& body, const RenameReply& reply)
{
    const auto* rename = std::get_if<RenameRequest>(&body);
    if (rename == nullptr) {
        return std::nullopt;
    }
    if (auto other = unlike_asked("the rename reply's from", reply.from, rename->from)) {
        return other;
    }
    return unlike_asked("the rename reply's to", reply.to, rename->to);
}

template <class Body>
Result<Body> ask(Connection& connection, const Request& request, ReplyParser<Body> parse)
{
    if (auto sent = connection.send_request(request); !sent) {
        return sent.error();
    }
    auto reply = read_reply(connection, request.id, parse);
    if constexpr (requires { unlike_request(request.body, *reply); }) {
        if (reply) {
            if (auto other = unlike_request(request.body, *reply)) {
                // What follows it (a get's data) is of no request: the
                // connection is out of step with this server.
                connection.close();
                return *other;
            }
        }
    }
    return reply;
}

// clobber.cpp and remote_tree.cpp ask with these.
template Result<StatReply> ask(Connection&, const Request&, ReplyParser<StatReply>);
template Result<GetReply> ask(Connection&, const Request&, ReplyParser<GetReply>);
template Result<MkdirReply> ask(Connection&, const Request&, ReplyParser<MkdirReply>);
template Result<DeleteReply> ask(Connection&, const Request&, ReplyParser<DeleteReply>);
template Result<RenameReply> ask(Connection&, const Request&, ReplyParser<RenameReply>);
template Result<DigestReply> ask(Connection&, const Request&, ReplyParser<DigestReply>);
template Result<SyncReply> ask(Connection&, const Request&, ReplyParser<SyncReply>);
template Result<ListReply> read_reply(Connection&, std::uint64_t, ReplyParser<ListReply>);

namespace {

std::string bytes_text(std::uint64_t n)
{
    return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

// ---- get --------------------------------------------------------------------------------

// Hashes the first `length` bytes of the local file; false if it is shorter.
Result<bool> hash_prefix(const LocalFile& file, std::uint64_t length, TransferHash& hash)
{
    const auto buffer = sys::make_page_buffer<std::uint8_t>(kPrefixReadChunk);
    std::uint64_t position = 0;
    while (position < length) {
        if (interrupted()) {
            return Error{ErrorCode::aborted, "interrupted"};
        }
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kPrefixReadChunk, length - position));
        auto got = file.read_at(position, std::span(buffer.get(), want));
        if (!got) {
            return got.error();
        }
        if (got.value() == 0) {
            return false;
        }
        hash.update(buffer.get(), got.value());
        position += got.value();
    }
    return true;
}

// A part is resumed only from bytes known to be the ones the sidecar
// vouches for. While the part is the very file the last checkpoint saw
// (same device, inode, size, mtime and ctime), the saved hash state is
// trusted and nothing is read. Otherwise (touched since, or written past
// the checkpoint before a crash) its first bytes_held bytes are read again
// and must hash to the checkpoint's digest, else the download starts over.
std::optional<Resumable> load_resumable(const std::string& name, const std::string& part, Result<DownloadState> state,
                                        HashKind kind, const LocalFolder* in)
{
    if (!state || state->name != name) {
        return std::nullopt;
    }
    auto file = LocalFile::open(part, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, in);
    if (!file) {
        return std::nullopt;
    }
    // Another user's part (or one with a second name) is never built on:
    // whoever planted it could rewrite the file after it is verified and
    // published, or have a resume write through to the file it links to.
    struct stat st {};
    if (::fstat(file->fd(), &st) != 0 || !is_own_private_file(st.st_mode, st.st_uid, st.st_nlink) ||
        static_cast<std::uint64_t>(st.st_size) < state->bytes_held) {
        return std::nullopt;
    }
    // Nor a file ferry did not make, whatever its bytes: a user's own file
    // under the part's name, beside a sidecar of some other part, is not
    // truncated and appended to (prepare_get then refuses it).
    if (!is_ferry_part(file.value(), st, &state.value())) {
        return std::nullopt;
    }
    auto identity = identity_of(file.value());
    auto saved = TransferHash::restore_state(state->digest_state);
    if (!identity || !saved) {
        return std::nullopt;
    }
    if (identity.value() != state->part) {
        TransferHash reread(saved->kind());
        auto whole = hash_prefix(file.value(), state->bytes_held, reread);
        if (!whole || !whole.value() || reread.hex_digest() != state->prefix_digest) {
            return std::nullopt;
        }
    } else if (saved->hex_digest() != state->prefix_digest) {
        return std::nullopt;
    }
    if (saved->kind() == kind) {
        return Resumable{std::move(state.value()), std::move(*saved), identity.value()};
    }
    // Resumed with another hash: the part is hashed again, which costs a
    // read of it but no download.
    TransferHash fresh(kind);
    auto whole = hash_prefix(file.value(), state->bytes_held, fresh);
    if (!whole || !whole.value()) {
        return std::nullopt;
    }
    return Resumable{std::move(state.value()), std::move(fresh), identity.value()};
}

// A part found standing means a download of this name was cut short, and
// a kill in its checkpoint may have left a temporary of its sidecar: they
// go now, while this download holds the part's lock, which no other live
// download can (lock_part), so none of them is another's being written.
// Only then: the common download, with no part before it, reads no folder.
// A failure to remove one is no reason to fail the download: the next
// download or sync pull tries again.
void remove_leftover_temporaries(const std::string& state_file, const LocalFolder* in)
{
    (void)remove_state_temporaries(state_file, in);
}

// A resume's part that is no longer the one load_resumable checked, said
// before a byte is written to it (`what`: what befell it since). The
// server already sends from the part's offset, so this try cannot go on.
Error left_unwritten(ErrorCode code, const std::string& part, const std::string& what)
{
    return about_local_files(code, "\"" + part + "\" " + what + "; nothing was written to it: get the file again");
}

Result<PartFile> open_part(const GetOptions& options, const FileInfo& remote, std::optional<Resumable> resumable)
{
    const std::string part = part_path(options.dest);
    const std::string state_file = state_path(options.dest);
    const LocalFolder* in = options.folder.get();
    const unsigned part_mode = kPartMode;
    if (resumable) {
        auto file = LocalFile::open(part, O_WRONLY | O_NOFOLLOW | O_NONBLOCK, 0, in);
        if (!file && name_is_free(part, in)) {
            // Gone since load_resumable looked, most often published by
            // another download of this name (another ferry) that held it
            // then. The next try finds no part and starts over: busy (exit
            // status 6), which --retry and a script's retry get past, where
            // a permanent error would leave the file unfetched.
            return left_unwritten(ErrorCode::busy, part,
                                  "was removed since it was checked (another download of this name may have "
                                  "finished it)");
        }
        if (!file) {
            // Swapped (for a link: ELOOP), or its folder removed, since
            // load_resumable looked: said as that, with a stable code, not
            // as the errno.
            return left_unwritten(ErrorCode::local_io, part,
                                  "was removed or replaced since it was checked (" + file.error().message + ")");
        }
        struct stat st {};
        if (::fstat(file->fd(), &st) != 0 || !S_ISREG(st.st_mode)) {
            return foreign_part_error(part, st.st_mode); // swapped since load_resumable looked
        }
        if (!is_own_private_file(st.st_mode, st.st_uid, st.st_nlink)) {
            // Swapped since load_resumable looked: the next get starts over
            // in a new file.
            return left_unwritten(ErrorCode::local_io, part,
                                  "became another user's file or gained another name since it was checked");
        }
        // Before anything is written: a part another download is writing
        // is not truncated or written through.
        if (auto locked = lock_part(file.value()); !locked) {
            return locked.error();
        }
        // Locked, so no other download writes it now; but it must be the
        // very file load_resumable checked. The hash goes on from the saved
        // state and never reads the bytes before the offset again, so any
        // other file at the name (a part another download left when it
        // stopped, a file the user put there), or this one written since,
        // would be published with a wrong beginning as verified. busy, as
        // for a part gone: the next try looks at whatever stands there now.
        if (auto now = identity_of(file.value()); !now || now.value() != resumable->checked) {
            return left_unwritten(ErrorCode::busy, part,
                                  "was changed or replaced since it was checked (by another download of this name, "
                                  "or by hand)");
        }
        remove_leftover_temporaries(state_file, in);
        if (::fchmod(file->fd(), static_cast<mode_t>(part_mode)) != 0) {
            return local_error("cannot set the mode of \"" + part + "\"", errno);
        }
        const std::uint64_t held = resumable->state.bytes_held;
        if (auto cut = file->truncate(held); !cut) {
            return cut.error();
        }
        if (auto moved = file->seek(held); !moved) {
            return moved.error();
        }
        return PartFile(std::move(file.value()), state_file, std::move(resumable->state), std::move(resumable->hash),
                        true, options.folder);
    }
    // Whatever else stands under the part's name is refused, unopened. The
    // sidecar stays until then: it may be what names an old part as ferry's.
    auto created = create_part_file(part, state_file, in, part_mode);
    if (!created) {
        return created.error();
    }
    // A sidecar must never describe bytes it no longer matches: dropped
    // before the first byte is written. Where no part stood when the get
    // was prepared, a sidecar there describes no file (a part that had
    // gone): the first checkpoint replaces it, the publish removes it, and
    // a resume from it would first check the new part against its digest.
    // A part found under the name at its creation (one cut short since the
    // get was planned, options.no_part notwithstanding) counts as one found
    // then: its sidecar goes too, whatever the plan saw (options.no_state).
    if (!options.no_part || created->replaced) {
        if (auto removed = remove_download_state(state_file, in); !removed) {
            // Removed while still locked: once the lock goes, another
            // download may take the name for a part of its own.
            remove_own_part(created->file, in);
            (void)created->file.close();
            return removed.error();
        }
        remove_leftover_temporaries(state_file, in);
    } else if (options.no_state) {
        // Nothing stood under the sidecar's name when the get was prepared,
        // nor under the part's since (created->replaced): no download was
        // cut short here. A sidecar left by one that published and was
        // killed in between is the next pull's to remove, as leftovers are.
    } else if (auto found = look_at_state(state_file, in); found && found.value() == StateFound::ferrys) {
        // A sidecar without its part (a kill right after a publish, or a
        // part removed by hand): a download was cut short here, so its
        // temporaries go too, while the part just made (O_EXCL) is held
        // locked. One fstatat and a read only here: the common download,
        // with nothing before it, reads no folder.
        remove_leftover_temporaries(state_file, in);
    }
    DownloadState state{options.name, remote.size, remote.mtime, 0, {}, {}, {}};
    PartFile file(std::move(created->file), state_file, std::move(state), TransferHash(options.hash), false,
                  options.folder);
    if (!created->marked) {
        // No mark where the file system keeps no user extended attributes:
        // a sidecar written now, before the first byte, names the part
        // instead, so that a download killed before its first checkpoint
        // still leaves a part known to be ferry's (is_ferry_part). It costs
        // a small synced file per download, only on such file systems; the
        // other way, taking any unvouched file there for ferry's, would
        // destroy a user's file of that name.
        if (auto recorded = file.checkpoint(); !recorded) {
            file.leave_for_resume(false);
            return recorded.error();
        }
    }
    return file;
}

Error unexpected_hash(const GetOptions& options, HashKind sent)
{
    return Error{ErrorCode::hash_mismatch, "the server checked \"" + options.name + "\" with " +
                                               std::string(hash_name(sent)) + ", not the " +
                                               std::string(hash_name(options.hash)) +
                                               " asked for (an older ferryd?): the bytes cannot be verified"};
}

// Reads the data frames and the trailer of an accepted get into the part
// file, then verifies and publishes it.
//
// A resumed download (offset > 0) whose whole hash differs from the
// trailer's sets `prefix_refuted`: its part, already removed, was not the
// server's file (see finish_get).
Result<TransferResult> receive_file(Connection& connection, const GetOptions& options, std::uint64_t id,
                               const FileInfo& remote, std::uint64_t offset, std::optional<Resumable> resumable,
                               std::optional<VerifiedPart>& verified, bool& prefix_refuted)
{
    if (!options.folder) {
        // prepare_get holds the folder of every file it lets through.
        connection.close(); // the server is already sending
        return about_local_files(ErrorCode::local_io,
                                 "\"" + options.dest + "\": its folder is not held; nothing was written");
    }
    auto opened = open_part(options, remote, std::move(resumable));
    if (!opened) {
        connection.close(); // the server is already sending
        return opened.error();
    }
    PartFile& part = opened.value();
    // Data frames are received straight into the blocks the part file's
    // threads hash and write from.
    const LentBuffers lent(connection, part.receiving());
    const std::uint64_t total = remote.size;
    if (options.progress) {
        options.progress(part.held(), total);
    }

    // Ends the transfer early; the bytes so far stay for a resume.
    const auto stop = [&](Error error, bool record_now) {
        connection.close();
        part.leave_for_resume(record_now);
        return error;
    };

    for (;;) {
        auto incoming = connection.receive();
        if (!incoming) {
            // Lost server, timeout or Ctrl-C: what arrived is genuine, keep it.
            const Error& error = incoming.error();
            if (error.code == ErrorCode::aborted) {
                return stop(Error{ErrorCode::aborted, "interrupted after " + std::to_string(part.held()) + " of " +
                                                          bytes_text(total) + "; get it again to continue"},
                            true);
            }
            return stop(error, true);
        }
        if (incoming->kind == Incoming::Kind::data) {
            auto bytes = incoming->bytes;
            if (bytes.size() > total - part.held()) {
                return stop(protocol_error("more than the " + bytes_text(total) + " of \"" + options.name + "\""),
                            false);
            }
            bool limit_reached = false;
            if (options.stop_after && part.held() + bytes.size() >= *options.stop_after) {
                bytes = bytes.first(
                    static_cast<std::size_t>(*options.stop_after - std::min(*options.stop_after, part.held())));
                limit_reached = true;
            }
            if (auto wrote = part.append(bytes); !wrote) {
                return stop(wrote.error(), true);
            }
            if (options.progress) {
                options.progress(part.held(), total);
            }
            if (limit_reached) {
                return stop(Error{ErrorCode::aborted, "stopped after " + bytes_text(part.held()) + " as asked"}, true);
            }
            if (interrupted()) {
                return stop(Error{ErrorCode::aborted, "interrupted after " + std::to_string(part.held()) + " of " +
                                                          bytes_text(total) + "; get it again to continue"},
                            true);
            }
            if (part.since_checkpoint() >= options.checkpoint_interval) {
                if (auto saved = part.checkpoint(); !saved) {
                    return stop(saved.error(), false);
                }
            }
            continue;
        }

        // The control frame that ends the transfer.
        auto trailer = parse_server_reply(connection, incoming->text, id, parse_trailer);
        if (!trailer) {
            Error error = trailer.error();
            if (error.code == ErrorCode::file_changed) {
                // Old and new bytes mixed: nothing of it is worth resuming.
                // Dropped while still open and locked.
                remove_own_part(part.file(), options.folder.get());
                (void)remove_download_state(state_path(options.dest), options.folder.get());
                (void)part.file().close();
                error.message += "; nothing was kept, get it again";
                return error;
            }
            // Failed midway: the data since the last checkpoint is not to be trusted.
            part.leave_for_resume(false);
            return error;
        }
        if (trailer->id != id) {
            Error error = wrong_id(connection, trailer->id, id);
            part.leave_for_resume(false);
            return error;
        }
        if (auto flushed = part.flush(); !flushed) {
            return stop(flushed.error(), true);
        }
        if (trailer->body.size != total || part.held() != total) {
            connection.close();
            part.leave_for_resume(false);
            return protocol_error("the transfer of \"" + options.name + "\" ended after " + bytes_text(part.held()) +
                                  " of " + std::to_string(total) + " (trailer size " +
                                  std::to_string(trailer->body.size) + ")");
        }
        if (trailer->body.hash != options.hash) {
            // An older server that ignored "hash": nothing to check against.
            // Dropped while still open and locked, under a fresh name of its own.
            remove_own_part(part.file(), options.folder.get());
            (void)remove_download_state(state_path(options.dest), options.folder.get());
            (void)part.file().close();
            return unexpected_hash(options, trailer->body.hash);
        }
        const std::string digest = part.hash().hex_digest();
        if (digest != trailer->body.digest) {
            // Dropped while still open and locked, under a fresh name of its own.
            remove_own_part(part.file(), options.folder.get());
            (void)remove_download_state(state_path(options.dest), options.folder.get());
            (void)part.file().close();
            prefix_refuted = offset > 0;
            return Error{ErrorCode::hash_mismatch, "the bytes received hash to " + digest + ", but \"" +
                                                       options.name + "\" hashes to " + trailer->body.digest +
                                                       "; the download was discarded"};
        }
        // Verified: make it durable (with the server's time when asked),
        // then publish it under its name.
        Status done = success();
        std::optional<TransferResult::TimeNotKept> time_not_kept;
        if (options.preserve_mtime) {
            const struct timespec times[2] = {{0, UTIME_OMIT}, {remote.mtime, 0}};
            struct stat held {};
            if (::futimens(part.file().fd(), times) != 0 || ::fstat(part.file().fd(), &held) != 0) {
                done = local_error("cannot set the modification time of \"" + part_path(options.dest) + "\"", errno);
            } else if (held.st_mtim.tv_sec != remote.mtime) {
                time_not_kept = TransferResult::TimeNotKept{remote.mtime, held.st_mtim.tv_sec};
            }
        }
        if (done && options.defer_publish) {
            // Durable and published later, with a batch (publish_batch.hpp),
            // which gives it the replaced file's attributes just before its
            // rename: private until then.
            part.file().start_writeback();
            verified = VerifiedPart{std::move(part.file()),
                                    options.dest,
                                    state_path(options.dest),
                                    options.folder,
                                    options.replace,
                                    remote.mode,
                                    options.no_state && !part.recorded()};
            return TransferResult{remote, options.dest, options.hash, digest, offset, time_not_kept};
        }
        if (done) {
            done = part.file().sync();
        }
        if (done) {
            // Still open and locked: the publish checks that the part's name
            // holds this very file, then gives it the attributes of the file
            // it replaces, read then, just before the rename. After the
            // fsync: a crash that lost those metadata changes but not the
            // rename (a journal orders it after them) would show the part's
            // own narrower mode, never a wider one.
            done = publish_download(part.file(), options.dest, options.folder.get(), options.replace, remote.mode);
        }
        // The mark comes off once the file is published, never before (a
        // kill there must leave a part known to be ferry's), through the
        // descriptor, closed after the rename (the bytes are durable).
        if (done) {
            unmark_part(part.file());
        }
        if (auto closed = part.file().close(); done && !closed) {
            done = closed;
        }
        if (!done) {
            return done.error();
        }
        (void)remove_download_state(state_path(options.dest), options.folder.get());
        if (options.sync_folder) {
            (void)sync_parent_folder(options.dest, options.folder.get());
        }
        return TransferResult{remote, options.dest, options.hash, digest, offset, time_not_kept};
    }
}

// Like receive_file, to standard output or to a FIFO or device: nothing to
// resume, so any failure just ends the transfer (the bytes already written
// cannot be taken back). `path` is what the result names ("-" for stdout).
Result<TransferResult> receive_to_stream(Connection& connection, const GetOptions& options, std::uint64_t id,
                                    const FileInfo& remote, int fd, const std::string& path)
{
    const std::string where = path == "-" ? std::string("standard output") : "\"" + path + "\"";
    HashPipeline hash{TransferHash(options.hash), {}, HashPipeline::Ring::growing};
    // Received straight into the blocks the hashing thread reads (or into
    // the writer's own), and written with one call per block read.
    StreamWriter out(fd, where, hash.threaded() ? &hash : nullptr);
    const LentBuffers lent(connection, out);
    std::uint64_t held = 0;
    const std::uint64_t total = remote.size;
    if (options.progress) {
        options.progress(0, total);
    }
    for (;;) {
        auto incoming = connection.receive();
        if (!incoming) {
            return incoming.error();
        }
        if (incoming->kind == Incoming::Kind::data) {
            const auto bytes = incoming->bytes;
            if (bytes.size() > total - held) {
                connection.close();
                return protocol_error("more than the " + bytes_text(total) + " of \"" + options.name + "\"");
            }
            if (auto wrote = out.add(bytes); !wrote) {
                connection.close();
                return wrote.error();
            }
            (void)hash.update(bytes); // no writer: nothing to fail
            held += bytes.size();
            if (options.progress) {
                options.progress(held, total);
            }
            if (interrupted()) {
                connection.close();
                return Error{ErrorCode::aborted,
                             "interrupted after " + std::to_string(held) + " of " + bytes_text(total)};
            }
            continue;
        }
        // Whatever the trailer says, the bytes received go out first.
        if (auto wrote = out.flush(); !wrote) {
            connection.close();
            return wrote.error();
        }
        auto trailer = parse_server_reply(connection, incoming->text, id, parse_trailer);
        if (!trailer) {
            Error error = trailer.error();
            if (error.code == ErrorCode::file_changed) {
                error.message += "; do not trust the bytes written to standard output";
            }
            return error;
        }
        if (trailer->id != id) {
            return wrong_id(connection, trailer->id, id);
        }
        if (trailer->body.size != total || held != total) {
            connection.close();
            return protocol_error("the transfer of \"" + options.name + "\" ended after " + bytes_text(held) + " of " +
                                  std::to_string(total));
        }
        if (trailer->body.hash != options.hash) {
            return unexpected_hash(options, trailer->body.hash);
        }
        const std::string digest = hash.hash().hex_digest();
        if (digest != trailer->body.digest) {
            // The server's path first: the shell's named_as_typed rewrites
            // the first place a path is named, and `where` may read alike.
            return Error{ErrorCode::hash_mismatch, "\"" + options.name + "\" hashes to " + trailer->body.digest +
                                                       ", but the bytes written to " + where + " hash to " + digest +
                                                       ": do not trust them"};
        }
        return TransferResult{remote, path, options.hash, digest, 0};
    }
}

// ---- put --------------------------------------------------------------------------------

Result<PutReply> read_put_reply(Connection& connection, std::uint64_t id, std::uint64_t size, bool resume)
{
    auto reply = read_reply(connection, id, parse_put_reply);
    if (reply && (reply->offset > size || (!resume && reply->offset != 0))) {
        connection.close();
        return protocol_error("put reply offset " + std::to_string(reply->offset) + " for a file of " +
                              bytes_text(size));
    }
    return reply;
}

// The one place a put request is built: every attempt of an upload (the
// first, a retry after `busy`, a fresh start after a mismatched prefix)
// carries the same name, size, hash and mode, so that its commit matches it.
Request put_request(const Connection& connection, std::uint64_t id, const PendingPut& pending, bool resume)
{
    const PutOptions& options = pending.options;
    PutRequest put;
    put.name = options.name;
    put.size = pending.size;
    put.resume = resume;
    put.hash = options.hash;
    put.parents = options.parents;
    put.mtime = options.mtime;
    if (carries_mode(connection)) {
        put.mode = pending.mode;
    }
    if (put.parents && takes_folder_modes(connection)) {
        put.folder_modes = options.folder_modes;
    }
    return Request{id, put};
}

Result<PutReply> request_put(Connection& connection, std::uint64_t id, const PendingPut& pending, bool resume)
{
    if (auto sent = connection.send_request(put_request(connection, id, pending, resume)); !sent) {
        return sent.error();
    }
    return read_put_reply(connection, id, pending.size, resume);
}

Error interrupted_upload(std::uint64_t sent, std::uint64_t size)
{
    return Error{ErrorCode::aborted, "interrupted after sending " + std::to_string(sent) + " of " + bytes_text(size) +
                                         "; the server keeps what it received: put it again to continue"};
}

// Ends the upload without publishing; the server keeps (or with `discard`
// deletes) what it has. Leaves the connection in step or closed.
Status send_abort(Connection& connection, std::uint64_t id, bool discard)
{
    if (auto reply = ask(connection, Request{id, AbortRequest{discard}}, parse_abort_reply); !reply) {
        return reply.error();
    }
    return success();
}

} // namespace

std::optional<Error> check_page(Connection& connection, ListingCheck& check, const std::string& path,
                                const ListReply& page)
{
    std::optional<Error> broken;
    for (const auto& file : page.files) {
        if ((broken = check.entry(file))) {
            break;
        }
    }
    for (const auto& folder : page.holding_unlisted) {
        if (broken) {
            break;
        }
        broken = check.holding(folder);
    }
    for (const auto& folder : page.unreadable_folders) {
        if (broken) {
            break;
        }
        broken = check.unreadable(folder.path);
    }
    if (!broken) {
        return std::nullopt;
    }
    connection.close(); // pages may still come, and this server is not to be trusted further
    return protocol_error("its listing of " + (path.empty() ? std::string("the root") : quoted(path)) + " breaks "
                          "PROTOCOL.md 4.2 and 5: " + broken->message);
}

// Asks for pages, so that a folder of any size can be listed: each reply
// stays small, and the pages come in the directory's order, so the whole is
// sorted here. A server that does not page sends one reply without "more",
// which is then the only page.
Result<ListReply> list_all_pages(Connection& connection, ListRequest request)
{
    request.paged = true;
    const std::uint64_t id = connection.next_id();
    if (auto sent = connection.send_request(Request{id, request}); !sent) {
        return sent.error();
    }
    ListReply listed;
    ListingCheck check(request.path, request.recursive);
    while (true) {
        auto page = read_reply(connection, id, parse_list_reply);
        if (!page) {
            return page.error();
        }
        if (auto broken = check_page(connection, check, request.path, page.value())) {
            return *broken;
        }
        listed.files.insert(listed.files.end(), std::make_move_iterator(page->files.begin()),
                            std::make_move_iterator(page->files.end()));
        listed.skipped_invalid_names += page->skipped_invalid_names;
        listed.skipped_too_deep += page->skipped_too_deep;
        listed.holding_unlisted.insert(listed.holding_unlisted.end(),
                                       std::make_move_iterator(page->holding_unlisted.begin()),
                                       std::make_move_iterator(page->holding_unlisted.end()));
        listed.unreadable_folders.insert(listed.unreadable_folders.end(),
                                         std::make_move_iterator(page->unreadable_folders.begin()),
                                         std::make_move_iterator(page->unreadable_folders.end()));
        if (!page->more) {
            break;
        }
    }
    std::sort(listed.files.begin(), listed.files.end(),
              [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
    std::sort(listed.unreadable_folders.begin(), listed.unreadable_folders.end(),
              [](const UnreadableFolder& a, const UnreadableFolder& b) { return a.path < b.path; });
    return listed;
}

Result<ListReply> list_files(Connection& connection)
{
    return list_all_pages(connection, ListRequest{});
}

Result<FileInfo> stat_file(Connection& connection, const std::string& name)
{
    auto reply = ask(connection, Request{connection.next_id(), StatRequest{name}}, parse_stat_reply);
    if (!reply) {
        return reply.error();
    }
    return std::move(reply->file);
}

Result<StatsReply> server_stats(Connection& connection)
{
    return ask(connection, Request{connection.next_id(), StatsRequest{}}, parse_stats_reply);
}

Result<PendingGet> prepare_get(const GetOptions& options)
{
    // A path on the server: each of its names is one the protocol allows
    // (so none can climb out of where the caller puts the file).
    if (auto bad = check_path(options.name)) {
        return *bad;
    }
    PendingGet pending;
    pending.options = options;
    if (!options.to_stdout && !options.folder && !options.tree_root.empty()) {
        // A name of a tree: its folder reached without following a link.
        HeldFolders folders;
        auto folder = folders.folder_of(options.tree_root, options.dest);
        if (!folder) {
            return folder.error();
        }
        pending.options.folder = std::move(folder.value());
    }
    if (options.in_made_folder && !options.to_stdout && pending.options.folder) {
        // A folder this command made: nothing to find (GetOptions::in_made_folder).
        pending.target = DownloadTarget{TargetKind::absent, options.dest, {}};
        pending.options.no_part = true;
        pending.options.no_state = true;
        return pending;
    }
    if (!options.to_stdout) {
        // Before any byte moves: what is there decides how the file lands.
        auto target = inspect_download_target(options.dest, pending.options.folder.get());
        if (!target) {
            return target.error();
        }
        pending.target = std::move(target.value());
        pending.options.dest = pending.target.path;
        if (!pending.options.folder) {
            // A path the user typed: the folder its walk reached.
            pending.options.folder = std::move(pending.target.folder);
        }
    }
    if (options.resume && !options.to_stdout && pending.target.kind != TargetKind::stream) {
        auto state = read_download_state(state_path(pending.options.dest), pending.options.folder.get());
        pending.options.no_state = !state && state.error().local_errno == ENOENT;
        pending.resumable = load_resumable(options.name, part_path(pending.options.dest), std::move(state),
                                           options.hash, pending.options.folder.get());
    }
    if (!pending.resumable && !options.to_stdout && pending.target.kind != TargetKind::stream) {
        // Refused before anything is sent: a file under the part's name
        // that ferry did not make (create_part_file looks again, for one
        // that appears in between).
        auto found = look_at_part(part_path(pending.options.dest), state_path(pending.options.dest),
                                  pending.options.folder.get());
        if (!found) {
            return found.error();
        }
        pending.options.no_part = found->kind == PartFound::absent;
        if (!pending.options.no_part && !found->owner.empty() && found->owner != options.name) {
            pending.part_owner = std::move(found->owner);
        }
        // The same for the sidecar's name, which a checkpoint writes over
        // and the publish removes: refused now, whatever the file's size,
        // rather than at a first checkpoint halfway through (not looked at
        // twice where the resume's read just found nothing there).
        if (!pending.options.no_state) {
            auto state = look_at_state(state_path(pending.options.dest), pending.options.folder.get());
            if (!state) {
                return state.error();
            }
            pending.options.no_state = state.value() == StateFound::absent;
        }
    }
    pending.offset = pending.resumable ? pending.resumable->state.bytes_held : 0;
    // The folder stays held (GetOptions::folder) until the file is
    // published in it: no later step walks to it again.
    return pending;
}

bool resumes_version(const DownloadState& state, std::uint64_t size, std::int64_t mtime)
{
    return state.remote_size == size && state.remote_mtime == mtime;
}

Result<std::uint64_t> resumable_prefix(const GetOptions& options, std::uint64_t size, std::int64_t mtime)
{
    auto pending = prepare_get(options);
    if (!pending) {
        return pending.error();
    }
    if (!pending->resumable || !resumes_version(pending->resumable->state, size, mtime)) {
        return std::uint64_t{0};
    }
    return pending->offset;
}

Status send_get(Connection& connection, PendingGet& pending)
{
    pending.id = connection.next_id();
    pending.restart = false;
    pending.accepted = false;
    return connection.send_request(
        Request{pending.id, GetRequest{pending.options.name, pending.offset, pending.options.hash}});
}

Result<TransferResult> finish_get(Connection& connection, PendingGet& pending)
{
    const std::uint64_t id = pending.id;
    const std::uint64_t offset = pending.offset;
    auto reply = read_reply(connection, id, parse_get_reply);
    if (reply) {
        if (auto other = unlike_asked("the get reply's name", reply->file.name, pending.options.name)) {
            connection.close(); // its data follows, for no request
            return *other;
        }
    }
    if (!reply) {
        if (pending.resumable && reply.error().code == ErrorCode::bad_offset) {
            // The file shrank: what we hold is of another file.
            pending.resumable.reset();
            pending.offset = 0;
            pending.restart = true;
        }
        return reply.error();
    }
    pending.accepted = true;
    const FileInfo& remote = reply->file;
    if (pending.resumable &&
        (!resumes_version(pending.resumable->state, remote.size, remote.mtime) || reply->offset != offset)) {
        // The file changed since the partial download, whose bytes are then
        // worth nothing. The server is already sending from `offset`: a
        // fresh connection is quicker than reading all of that.
        pending.resumable.reset();
        pending.offset = 0;
        pending.restart = true;
        connection.close();
        return Error{ErrorCode::aborted, "\"" + pending.options.name + "\" changed since the partial download"};
    }
    if (reply->offset != offset || offset > remote.size) {
        connection.close();
        return protocol_error("get reply offset " + std::to_string(reply->offset) + " for offset " +
                              std::to_string(offset));
    }
    if (pending.options.to_stdout) {
        return receive_to_stream(connection, pending.options, id, remote, STDOUT_FILENO, "-");
    }
    if (pending.target.kind == TargetKind::stream) {
        auto stream = open_stream_target(pending.target);
        if (!stream) {
            connection.close(); // the server is already sending
            return stream.error();
        }
        return receive_to_stream(connection, pending.options, id, remote, stream->fd(), pending.options.dest);
    }
    bool prefix_refuted = false;
    auto received = receive_file(connection, pending.options, id, remote, offset, std::move(pending.resumable),
                                 pending.verified, prefix_refuted);
    if (prefix_refuted) {
        // The resumed part held bytes that were not the file's, though the
        // size and mtime matched: a checkpoint vouches only for what
        // arrived, never for what a trailer would have confirmed (a
        // connection cut inside frames that a shrinking file had the server
        // pad with zeros, PROTOCOL.md 4.4, or a file rewritten with its
        // times put back). The part is gone: once more from the start, on
        // the same connection (the trailer left it in step). A fresh
        // download that fails the hash is final, so this cannot loop.
        pending.resumable.reset();
        pending.offset = 0;
        pending.restart = true;
    }
    return received;
}

Result<TransferResult> get_file(Connection& connection, const GetOptions& options)
{
    auto pending = prepare_get(options);
    if (!pending) {
        return pending.error();
    }
    for (;;) {
        if (auto sent = send_get(connection, pending.value()); !sent) {
            return sent.error();
        }
        auto result = finish_get(connection, pending.value());
        if (result || !pending->restart) {
            return result;
        }
        if (!connection.is_open()) {
            if (auto again = connection.reconnect(); !again) {
                return again.error();
            }
        }
    }
}

namespace {

// A descriptor of its own onto `file` (every read is positioned: read_at),
// so that each put, and each retry, closes its own.
Result<LocalFile> duplicate(const LocalFile& file)
{
    const int fd = ::fcntl(file.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return local_error("cannot duplicate the descriptor of " + file.path(), errno);
    }
    return LocalFile(file.path(), fd);
}

} // namespace

Result<PendingPut> prepare_put(const PutOptions& options)
{
    // A local name becomes the server's name unless --as gives one: one that
    // cannot be a server name (not UTF-8, say, or not NFC: PROTOCOL.md 5) is
    // refused here, before any byte is sent, rather than altered on the way.
    if (auto bad = check_path(options.name)) {
        // A name of the user's choosing (--as) is the one to change; a
        // local name, the file or its name on the server.
        const bool local_name = remote_base_name(options.name) == remote_base_name(options.local_path);
        return Error{bad->code, "\"" + printable(options.name) + "\": " + bad->message +
                                    (local_name ? "; rename it, or send it alone with --as NAME"
                                                : "; give the server another name for it")};
    }
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait, beyond
    // Ctrl-C's reach, for a writer that may never come; it is refused below
    // like any other file that is not regular. (Reads of a regular file
    // ignore the flag.)
    auto opened = options.spool    ? duplicate(*options.spool)
                  : options.listed ? open_listed_file(*options.listed, options.local_path, options.folders)
                                   : LocalFile::open(options.local_path, O_RDONLY | O_NONBLOCK);
    if (!opened) {
        return opened.error();
    }
    struct stat st {};
    if (::fstat(opened->fd(), &st) != 0) {
        return local_error("cannot stat \"" + options.local_path + "\"", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return about_local_files(ErrorCode::local_io, "\"" + options.local_path + "\" is not a regular file");
    }
    PendingPut pending;
    pending.options = options;
    pending.file = std::move(opened.value());
    pending.size = static_cast<std::uint64_t>(st.st_size);
    if (!options.spool) {
        pending.mode = static_cast<std::uint32_t>(st.st_mode & 0777);
    }
    pending.opened = identity_of(st); // the stat above: the file's identity when it was opened
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    constexpr std::int64_t kNano = 1'000'000'000;
    const std::int64_t now_ns = static_cast<std::int64_t>(now.tv_sec) * kNano + now.tv_nsec;
    pending.fresh = std::max(pending.opened.mtime_ns, pending.opened.ctime_ns) >= now_ns - kFreshWindow.count();
    return pending;
}

namespace {

// The one error of a file that changed while it was sent, whichever way
// (grown, shrunk, rewritten, replaced): what the server received may mix
// two versions, so it is discarded, never kept for a resume.
Error changed_while_sent(const std::string& path, const std::string& how)
{
    return about_local_files(ErrorCode::file_changed,
                             "\"" + path + "\" " + how +
                                 " while it was being sent; nothing was committed and the server "
                                 "discarded what it received: put it again");
}

// After the last byte was read: the file is still the one opened (same
// inode, size, mtime and ctime: a file replaced under its name by rename
// lost a link, which moved its ctime), and one changed within the
// timestamp tick before the open still hashes to what was sent.
Status unchanged_since_open(const PendingPut& pending)
{
    const std::string& path = pending.options.local_path;
    const auto changed = [&] { return changed_while_sent(path, "changed"); };
    if (pending.fresh) {
        TransferHash again(pending.options.hash);
        auto read = hash_prefix(pending.file, pending.size, again);
        if (!read) {
            return read.error();
        }
        if (!read.value() || again.hex_digest() != pending.digest) {
            return changed();
        }
    }
    auto now = identity_of(pending.file);
    if (!now) {
        return now.error();
    }
    if (now.value() != pending.opened) {
        return changed();
    }
    return success();
}

} // namespace

Status send_put(Connection& connection, PendingPut& pending)
{
    pending.id = connection.next_id();
    // Always asks for a kept upload (PROTOCOL.md 4.7), even to start over:
    // one that is not continued is then discarded instead of left behind
    // for a day, where no command could see or remove it.
    return connection.send_request(put_request(connection, pending.id, pending, true));
}

Status send_upload(Connection& connection, PendingPut& pending)
{
    const PutOptions& options = pending.options;
    const LocalFile& file = pending.file;
    const std::uint64_t size = pending.size;
    const std::uint64_t id = pending.id;
    auto accepted = read_put_reply(connection, id, size, true);
    // Right after an upload was cut, the server may still be saving it on the
    // old connection (`busy`): give it a few seconds, so that it is then
    // continued or discarded. Still busy, it is someone's upload in
    // progress: a new one leaves it alone.
    const auto busy_deadline = std::chrono::steady_clock::now() + kBusyPatience;
    while (!accepted && accepted.error().code == ErrorCode::busy &&
           std::chrono::steady_clock::now() < busy_deadline && !interrupted()) {
        std::this_thread::sleep_for(kBusyRetryInterval);
        accepted = request_put(connection, id, pending, true);
    }
    if (!accepted && accepted.error().code == ErrorCode::busy && !interrupted()) {
        accepted = request_put(connection, id, pending, false);
    }
    if (!accepted) {
        return accepted.error();
    }
    std::uint64_t offset = accepted->offset;
    TransferHash hash(options.hash);
    if (offset > 0) {
        // The server holds `offset` bytes: continued only if they are our
        // file's beginning (and not with --no-resume); else discarded.
        bool same = false;
        if (options.resume) {
            auto read = hash_prefix(file, offset, hash);
            if (!read) {
                connection.close(); // mid-upload; the server keeps its partial
                return read.error();
            }
            same = read.value() && accepted->prefix_digest && accepted->hash == hash.kind() &&
                   *accepted->prefix_digest == hash.hex_digest();
        }
        if (!same) {
            if (auto aborted = send_abort(connection, id, true); !aborted) {
                return aborted.error();
            }
            auto fresh = request_put(connection, id, pending, false);
            if (!fresh) {
                return fresh.error();
            }
            offset = 0;
            hash = TransferHash(options.hash);
        }
    }
    pending.offset = offset;
    // Hashed on a second thread while this one reads and sends (as get
    // does): SHA-256 alone costs about what reading and sending cost
    // together, so side by side the upload runs at the hash's speed. A
    // small file is hashed here: starting a thread would cost more than
    // its hash (sync pushes thousands of them); so is XXH3, whose hash
    // costs less than the hand-over.
    std::optional<HashPipeline> pipeline;
    if (size - offset >= kHashThreadFrom && HashPipeline::hashes_aside(hash.kind())) {
        pipeline.emplace(std::move(hash));
    }

    // With a pipeline the file is read into the blocks it lends, where its
    // hashing thread takes them: bytes from anywhere else it would hash on
    // this thread, in turn with reading and sending.
    static_assert(HashPipeline::kBlockSize % kPreferredDataChunk == 0, "frames tile a block");
    // Without one, a buffer of the file's size up to a frame's: a push's
    // thousands of small files each take a few pages from the heap, not a
    // frame's 256 KiB mapped and unmapped (two system calls and a fresh
    // page's fault a file).
    const std::size_t chunk_size = pipeline ? 0
                                            : static_cast<std::size_t>(std::min<std::uint64_t>(
                                                  kPreferredDataChunk, (size - offset + sys::kPageAlignment - 1) /
                                                                           sys::kPageAlignment * sys::kPageAlignment));
    const auto chunk =
        chunk_size == 0 ? sys::PageBuffer<std::uint8_t>{} : sys::make_page_buffer<std::uint8_t>(chunk_size);
    std::span<std::uint8_t> block;
    std::uint64_t position = offset;
    if (options.progress) {
        options.progress(position, size);
    }
    while (position < size) {
        std::span<std::uint8_t> area(chunk.get(), chunk_size);
        if (pipeline) {
            if (block.size() < kPreferredDataChunk) {
                block = pipeline->next({}); // waits while the hash is a ring behind
            }
            area = block.first(kPreferredDataChunk);
        }
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(area.size(), size - position));
        auto got = file.read_at(position, area.first(want));
        if (!got) {
            // The bytes sent are good: the server keeps them for a resume.
            (void)send_abort(connection, id, false);
            return got.error();
        }
        if (got.value() == 0) {
            // Shrunk (truncated, or rewritten shorter): like a file that
            // grew, another version than the one whose size was announced.
            (void)send_abort(connection, id, true);
            return changed_while_sent(options.local_path, "shrank to " + bytes_text(position));
        }
        const auto piece = std::span<const std::uint8_t>(area.data(), got.value());
        if (pipeline) {
            block = block.subspan(piece.size());
            (void)pipeline->update(piece); // without a writer it cannot fail
        } else {
            hash.update(piece.data(), piece.size());
        }
        if (auto sent = connection.send_data(piece); !sent) {
            if (sent.error().code == ErrorCode::aborted) {
                return interrupted_upload(position, size);
            }
            return sent.error();
        }
        position += piece.size();
        if (options.progress) {
            options.progress(position, size);
        }
        // A server that fails midway says so and closes: stop at once.
        auto early = connection.poll_control();
        if (!early) {
            return early.error();
        }
        if (early.value()) {
            Error error = unexpected_message(*early.value());
            connection.close();
            return error;
        }
        if (interrupted()) {
            connection.close();
            return interrupted_upload(position, size);
        }
    }

    const TransferHash& whole = pipeline ? pipeline->hash() : hash;
    pending.digest = whole.hex_digest();
    if (auto same = unchanged_since_open(pending); !same) {
        // Bytes of two versions may have gone out: the server discards
        // them, and nothing is committed.
        (void)send_abort(connection, id, true);
        return same.error();
    }
    // Held, to go out with the next put if one follows (see hold_request).
    // `replace: false` only to a server that honours it: an older one
    // would not understand the field (version 1) or would ignore it.
    CommitRequest commit{pending.digest, whole.kind()};
    commit.replace = pending.options.replace || !checks_commit_replace(connection);
    commit.defer_sync = pending.options.defer_sync && defers_sync(connection);
    return connection.hold_request(Request{id, std::move(commit)});
}

Result<TransferResult> finish_put(Connection& connection, PendingPut& pending)
{
    auto reply = read_reply(connection, pending.id, parse_commit_reply);
    if (!reply) {
        return reply.error();
    }
    if (auto other = unlike_asked("the commit reply's name", reply->file.name, pending.options.name)) {
        return *other;
    }
    if (reply->digest != pending.digest || reply->hash != pending.options.hash || reply->file.size != pending.size) {
        return protocol_error("commit reply with " + std::to_string(reply->file.size) + " bytes and " +
                              std::string(hash_name(reply->hash)) + " " + reply->digest + " for " +
                              bytes_text(pending.size) + " hashing to " + pending.digest);
    }
    // The commit reply says what the server's file system holds (PROTOCOL.md 4.5).
    std::optional<TransferResult::TimeNotKept> time_not_kept;
    if (pending.options.mtime && reply->file.mtime != *pending.options.mtime) {
        time_not_kept = TransferResult::TimeNotKept{*pending.options.mtime, reply->file.mtime};
    }
    return TransferResult{std::move(reply->file), pending.options.local_path,
                          pending.options.hash,   pending.digest,
                          pending.offset,         time_not_kept,
                          reply->synced};
}

Result<TransferResult> put_file(Connection& connection, const PutOptions& options)
{
    auto pending = prepare_put(options);
    if (!pending) {
        return pending.error();
    }
    if (auto sent = send_put(connection, pending.value()); !sent) {
        return sent.error();
    }
    if (auto uploaded = send_upload(connection, pending.value()); !uploaded) {
        return uploaded.error();
    }
    return finish_put(connection, pending.value());
}

} // namespace ferry::client
