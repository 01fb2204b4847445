#include "remote_tree.hpp"

#include "interrupt.hpp"
#include "listing_check.hpp"
#include "operations.hpp"
#include "remote_paths.hpp"

#include <algorithm>
#include <deque>
#include <utility>

namespace ferry::client {

std::optional<Error> require_version_2(const Connection& connection, std::string_view lacking)
{
    if (connection.protocol_version() < 2) {
        return Error{ErrorCode::unsupported_version, "this server speaks protocol version " +
                                                         std::to_string(connection.protocol_version()) +
                                                         ", which has no " + std::string(lacking)};
    }
    return std::nullopt;
}

std::optional<Error> require_folders(const Connection& connection)
{
    return require_version_2(connection, "folders");
}

Status list_tree(Connection& connection, const std::string& path, bool recursive,
                 const std::function<Status(FileInfo&&)>& each)
{
    if (auto old = require_folders(connection)) {
        return *old;
    }
    ListRequest request;
    request.paged = true;
    request.path = path;
    request.recursive = recursive;
    const std::uint64_t id = connection.next_id();
    if (auto sent = connection.send_request(Request{id, request}); !sent) {
        return sent.error();
    }
    ListingCheck check(path, recursive);
    std::optional<Error> unread; // the first folder the server could not read
    for (;;) {
        auto page = read_reply(connection, id, parse_list_reply);
        if (!page) {
            return page.error();
        }
        if (auto broken = check_page(connection, check, path, page.value())) {
            return *broken;
        }
        if (!unread && !page->unreadable_folders.empty()) {
            unread = unreadable_error(path, page->unreadable_folders.front(), "it is not listed");
        }
        for (auto& file : page->files) {
            if (auto taken = each(std::move(file)); !taken) {
                if (page->more) {
                    connection.close(); // pages would still come
                }
                return taken;
            }
        }
        if (!page->more) {
            return unread ? Status{*unread} : success();
        }
    }
}

Result<ListReply> list_folder(Connection& connection, const std::string& path, bool recursive)
{
    if (auto old = require_folders(connection)) {
        return *old;
    }
    ListRequest request;
    request.path = path;
    request.recursive = recursive;
    return list_all_pages(connection, std::move(request));
}

Error unreadable_error(const std::string& listed, const UnreadableFolder& folder, const std::string& consequence)
{
    const std::string path = folder.path.empty() ? listed : join_remote(listed, folder.path);
    return Error{folder.code, "the server could not read the folder " +
                                  (path.empty() ? std::string("at the root") : quoted(path)) +
                                  " (what it holds is unknown): " + consequence};
}

Result<FolderLook> look_for_folder(Connection& connection, const std::string& path)
{
    auto found = stat_file(connection, path);
    if (found) {
        const auto kind = is_folder(found.value()) ? FolderLook::Kind::folder : FolderLook::Kind::file;
        return FolderLook{kind, std::move(found.value())};
    }
    if (found.error().code == ErrorCode::not_regular_file) {
        return FolderLook{}; // a link (the server follows none), a FIFO...: no folder either
    }
    return found.error();
}

Result<FileInfo> stat_typed_folder(Connection& connection, const std::string& path)
{
    if (path.empty()) {
        // The root, as the server describes it (its mtime); a server that
        // cannot stat it (version 1) still has it, a folder.
        if (auto root = stat_file(connection, ""); root && is_folder(root.value())) {
            return root;
        }
        FileInfo root;
        root.type = EntryType::folder;
        return root;
    }
    auto looked = look_for_folder(connection, path);
    if (!looked) {
        // A path typed as a folder names a folder: the server's stat says
        // "no file named", which would send the user looking for a file.
        return missing_named(looked.error(), "no folder named ");
    }
    switch (looked->kind) {
    case FolderLook::Kind::folder:
        return std::move(looked->info);
    case FolderLook::Kind::file:
        return Error{ErrorCode::not_a_folder,
                     quoted(path) + " is a file, and a path ending in \"/\" or \"/.\" names a folder"};
    case FolderLook::Kind::other:
        break;
    }
    return Error{ErrorCode::not_a_folder,
                 quoted(path) + " is not a folder, and a path ending in \"/\" or \"/.\" names one"};
}

Result<std::vector<FileInfo>> remote_matches(Connection& connection, const std::string& path,
                                             const std::string& typed)
{
    if (connection.protocol_version() < 2 && path.find('/') != std::string::npos) {
        return *require_folders(connection);
    }
    if (!path.empty() && !has_wildcard(path) && typed_as_folder(typed)) {
        auto folder = stat_typed_folder(connection, unescape_wildcards(path));
        if (!folder) {
            return folder.error();
        }
        folder->name = unescape_wildcards(path);
        return std::vector<FileInfo>{std::move(folder.value())};
    }
    const FolderLister lister = [&connection](const std::string& folder,
                                              bool recursive) -> Result<std::vector<FileInfo>> {
        if (connection.protocol_version() < 2) {
            if (!folder.empty() || recursive) {
                return *require_folders(connection);
            }
            auto listed = list_files(connection);
            if (!listed) {
                return listed.error();
            }
            return std::move(listed->files);
        }
        auto listed = list_folder(connection, folder, recursive);
        if (!listed) {
            return listed.error();
        }
        if (!listed->unreadable_folders.empty()) {
            return unreadable_error(folder, listed->unreadable_folders.front(),
                                    "the wildcard's matches are not all known, so none is used");
        }
        return std::move(listed->files);
    };
    return expand_remote(path, typed, lister);
}

std::optional<FileInfo> remote_folder_info(Connection& connection, const std::string& path)
{
    auto found = stat_file(connection, path);
    if (!found || !is_folder(found.value())) {
        return std::nullopt;
    }
    return std::move(found.value());
}

Result<MkdirReply> make_remote_folder(Connection& connection, const std::string& path, bool parents,
                                      const FolderModes& folder_modes)
{
    if (auto old = require_folders(connection)) {
        return *old;
    }
    MkdirRequest mkdir{path, parents};
    if (takes_folder_modes(connection)) {
        mkdir.folder_modes = folder_modes;
    }
    return ask(connection, Request{connection.next_id(), std::move(mkdir)}, parse_mkdir_reply);
}

Result<DeleteReply> delete_remote(Connection& connection, const std::string& path, bool recursive,
                                  std::optional<ExpectedEntry> expect)
{
    if (auto old = require_version_2(connection, "delete operation")) {
        return *old;
    }
    return ask(connection, Request{connection.next_id(), DeleteRequest{path, recursive, std::move(expect)}},
               parse_delete_reply);
}

PipelinedDeletes delete_pipelined(Connection& connection, const std::vector<DeleteRequest>& requests)
{
    PipelinedDeletes run;
    if (auto old = require_folders(connection)) {
        run.lost = *old;
        return run;
    }
    run.replies.reserve(requests.size());
    std::deque<std::pair<std::uint64_t, std::size_t>> in_flight; // ids and indexes, in the requests' order
    std::size_t next = 0;
    for (;;) {
        while (!run.lost && next < requests.size() && in_flight.size() < kDeletesInFlight && !interrupted()) {
            const std::uint64_t id = connection.next_id();
            if (auto sent = connection.send_request(Request{id, requests[next]}); !sent) {
                run.lost = sent.error();
                break;
            }
            in_flight.emplace_back(id, next);
            ++next;
        }
        if (in_flight.empty()) {
            return run;
        }
        const auto [id, index] = in_flight.front();
        in_flight.pop_front();
        auto reply = read_reply(connection, id, parse_delete_reply);
        if (reply) {
            if (auto other = unlike_asked("the delete reply's path", reply->path, requests[index].path)) {
                reply = *other;
            }
        }
        run.replies.push_back(std::move(reply));
        if (!run.replies.back() && !connection.is_open() && !run.lost) {
            run.lost = run.replies.back().error();
        }
    }
}

Result<RenameReply> rename_remote(Connection& connection, const std::string& from, const std::string& to,
                                  bool replace)
{
    if (auto old = require_version_2(connection, "rename operation")) {
        return *old;
    }
    return ask(connection, Request{connection.next_id(), RenameRequest{from, to, replace}}, parse_rename_reply);
}

Result<DigestReply> digest_by_get(Connection& connection, const std::string& path, std::uint64_t size,
                                  HashKind hash)
{
    const std::uint64_t get_id = connection.next_id();
    auto reply = ask(connection, Request{get_id, GetRequest{path, size, hash}}, parse_get_reply);
    if (!reply) {
        return reply.error();
    }
    const auto broken = [&](const std::string& what) {
        connection.close(); // what else it sends cannot be read in step
        return protocol_error(what + " for the get from the end of " + quoted(path));
    };
    if (reply->offset != size || reply->file.size < size) {
        return broken("a reply at offset " + std::to_string(reply->offset) + " of a file of " +
                      std::to_string(reply->file.size) + " bytes, asked from " + std::to_string(size));
    }
    // A file that grew since its size was taken sends its new bytes (as
    // many as its reply's size adds): read past them to the trailer, which
    // covers the whole file as the reply gave it.
    const std::uint64_t grown = reply->file.size - size;
    std::uint64_t passed = 0;
    for (;;) {
        if (interrupted()) {
            connection.close(); // the rest of the get is still on its way
            return Error{ErrorCode::aborted, "interrupted while the digest of " + quoted(path) + " was read"};
        }
        auto incoming = connection.receive();
        if (!incoming) {
            return incoming.error();
        }
        if (incoming->kind == Incoming::Kind::data) {
            passed += incoming->bytes.size();
            if (passed > grown) {
                return broken("more bytes than the reply's size");
            }
            continue;
        }
        auto trailer = parse_server_reply(connection, incoming->text, get_id, parse_trailer);
        if (!trailer) {
            return trailer.error();
        }
        if (trailer->id != get_id || trailer->body.hash != hash) {
            return broken("an unexpected trailer");
        }
        if (trailer->body.size != reply->file.size || passed != grown) {
            return broken("a trailer of " + std::to_string(trailer->body.size) + " bytes after " +
                          std::to_string(passed) + " of the " + std::to_string(grown) + " bytes past " +
                          std::to_string(size) + " that the reply announced");
        }
        return DigestReply{std::move(reply->file), trailer->body.digest, hash};
    }
}

Result<DigestReply> remote_digest(Connection& connection, const std::string& path, HashKind hash)
{
    if (connection.protocol_version() >= 2) {
        return ask(connection, Request{connection.next_id(), DigestRequest{path, hash}}, parse_digest_reply);
    }
    // Version 1 has no digest request, but a get's trailer carries the whole
    // file's digest, and a get from the file's end sends none of its bytes
    // (PROTOCOL.md 4.4). A file shrunk between the stat and the get is
    // bad_offset: its size is taken again, as the digest request reads a
    // changing file twice (4.9).
    constexpr int kTries = 3;
    for (int attempt = 1;; ++attempt) {
        auto stat = ask(connection, Request{connection.next_id(), StatRequest{path}}, parse_stat_reply);
        if (!stat) {
            return stat.error();
        }
        auto digest = digest_by_get(connection, path, stat->file.size, hash);
        if (digest || digest.error().code != ErrorCode::bad_offset) {
            return digest;
        }
        if (attempt == kTries) {
            return Error{ErrorCode::file_changed, quoted(path) + " kept shrinking while its digest was taken (" +
                                                      std::to_string(kTries) + " tries); ask again"};
        }
    }
}

namespace {

// Whether a version-2 connection's hello lists `capability`.
bool offers(const Connection& connection, std::string_view capability)
{
    const auto& capabilities = connection.server_hello().capabilities;
    return connection.protocol_version() >= 2 &&
           std::find(capabilities.begin(), capabilities.end(), capability) != capabilities.end();
}

} // namespace

bool tells_unlisted(const Connection& connection)
{
    return offers(connection, "holding_unlisted");
}

bool can_set_mtime(const Connection& connection)
{
    return offers(connection, "set_mtime");
}

bool checks_delete_expect(const Connection& connection)
{
    return offers(connection, "delete_expect");
}

bool defers_sync(const Connection& connection)
{
    return offers(connection, "deferred_sync");
}

bool checks_commit_replace(const Connection& connection)
{
    return offers(connection, "commit_replace");
}

bool carries_mode(const Connection& connection)
{
    return offers(connection, "mode");
}

bool takes_folder_modes(const Connection& connection)
{
    return offers(connection, "folder_modes");
}

Error missing_named(Error error, std::string_view instead, std::string_view said)
{
    if (error.code == ErrorCode::not_found && error.message.starts_with(said)) {
        error.message.replace(0, said.size(), instead);
    }
    return error;
}

std::optional<std::string> folder_modes_note(const Connection& connection, std::size_t closed)
{
    if (closed == 0 || !connection.is_open() || takes_folder_modes(connection)) {
        return std::nullopt;
    }
    return "this server makes every folder 0777 less its umask, whatever the mode here (an older ferryd): " +
           std::to_string(closed) + (closed == 1 ? " folder" : " folders") +
           " closed to other users here may be open to them there";
}

bool checks_set_mtime_expect(const Connection& connection)
{
    return offers(connection, "set_mtime_expect");
}

Result<StatReply> set_remote_mtime(Connection& connection, const std::string& path, std::int64_t mtime,
                                   const std::optional<ExpectedEntry>& expect)
{
    if (auto old = require_version_2(connection, "set_mtime operation")) {
        return *old;
    }
    if (!can_set_mtime(connection)) {
        return Error{ErrorCode::unknown_op, "this server cannot set a modification time (no \"set_mtime\" in its "
                                            "capabilities; an older ferryd)"};
    }
    return ask(connection, Request{connection.next_id(), SetMtimeRequest{path, mtime, expect}}, parse_stat_reply);
}

Result<SyncReply> sync_deferred(Connection& connection)
{
    return ask(connection, Request{connection.next_id(), SyncRequest{}}, parse_sync_reply);
}

} // namespace ferry::client
