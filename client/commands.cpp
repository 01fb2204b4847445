#include "commands.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "names.hpp"
#include "operations.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"
#include "shell_words.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <sys/stat.h>
#include <unistd.h>

namespace ferry::client {

std::string shown_in(const Output& output, const std::string& current)
{
    return output.json() ? std::string() : current;
}

std::string shown_path(const std::string& path, const std::string& current)
{
    if (current.empty()) {
        return path;
    }
    if (path.starts_with(current + "/")) {
        return path.substr(current.size() + 1);
    }
    return "/" + path;
}

Result<std::string> resolve_remote_path_checked(Connection& connection, const std::string& current,
                                                const std::string& typed, bool patterns)
{
    auto path = resolve_remote_path(current, typed);
    if (!path) {
        return path.error();
    }
    auto climbed = climbed_folders(current, typed);
    if (!climbed) {
        return climbed.error();
    }
    for (const auto& folder : climbed.value()) {
        if (patterns && has_wildcard(folder)) {
            return Error{ErrorCode::invalid_name, quoted(typed) + ": a \"..\" after a wildcard climbs out of no "
                                                                    "one folder; name the folder itself"};
        }
        const std::string real = unescape_wildcards(folder);
        auto looked = look_for_folder(connection, real);
        if (looked && looked->kind == FolderLook::Kind::folder) {
            continue;
        }
        if (!looked && looked.error().code != ErrorCode::not_found) {
            return looked.error(); // forbidden, io_error...: the server's word
        }
        const char* what = !looked                                  ? " is not there"
                           : looked->kind == FolderLook::Kind::file ? " is a file"
                                                                    : " is not a folder";
        return Error{looked ? ErrorCode::not_a_folder : ErrorCode::not_found,
                     quoted(typed) + ": " + quoted(shown_path(real, current)) + what +
                         ", and \"..\" climbs out of a folder only"};
    }
    return path;
}

Error named_as_typed(Error error, const std::vector<TypedPath>& paths, const std::string& current)
{
    if (error.about_local_files) {
        return error; // "d/ff/x" there is a local file, whatever server path it reads like
    }
    // Every edit is found in the message as the server wrote it and made
    // last first, so that a name one edit writes is never taken for
    // another path's ("mv nope .." in folder ab: the server's "ab/nope"
    // becomes "nope", which is not the target's "nope" from the root).
    struct Edit {
        std::size_t at;
        std::size_t size;
        std::string with;
        std::string plain; // `with` where the spot is another path's too
    };
    std::vector<Edit> edits;
    for (const auto& [path, typed] : paths) {
        const bool from_root = typed.starts_with('/');
        // A path typed with a '..' is named as typed where the message
        // names all of it, as rm and mkdir name their operands ("d/../f",
        // never the "f" it resolves to); a folder on the way is named as
        // the server path it is. Not where the message names a name, not
        // a path (the name rule's "path component ...": invalid_name).
        const auto resolved = resolve_remote_path(current, typed);
        const bool named_by_its_climb = error.code != ErrorCode::invalid_name && climbs_out(typed) && resolved &&
                                        unescape_wildcards(resolved.value()) == path;
        // The longest of path's folders (path itself first) that the message
        // names. (On the command line a path without '..' is named as typed
        // already: its edit changes nothing, but claims its spot below.)
        for (std::size_t end = path.size(); end > 0 && end != std::string::npos; end = path.rfind('/', end - 1)) {
            const std::string on_the_way = path.substr(0, end);
            const std::string named = quoted(on_the_way);
            if (const auto at = find_named(error.message, named); at != std::string::npos) {
                const bool all_of_it = end == path.size() && named_by_its_climb;
                std::string plain = quoted(from_root ? "/" + on_the_way : shown_path(on_the_way, current));
                edits.push_back(Edit{at, named.size(), all_of_it ? quoted(tidied_typed_path(typed)) : plain, plain});
                break;
            }
        }
    }
    std::stable_sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.at > b.at; });
    // A spot two paths claim (mv's FROM below the folder that TO names,
    // "no folder named \"d/nope\""): which one it means is not known, so
    // it is named as the server's path, never with one's typed '..'.
    for (std::size_t i = 1; i < edits.size(); ++i) {
        if (edits[i].at == edits[i - 1].at && edits[i].with != edits[i - 1].with) {
            edits[i].with = edits[i - 1].with = edits[i - 1].plain;
        }
    }
    std::size_t untouched_from = error.message.size(); // edits made so far start here or later
    for (const auto& edit : edits) {
        if (edit.at + edit.size <= untouched_from) {
            error.message.replace(edit.at, edit.size, edit.with);
            untouched_from = edit.at;
        }
    }
    return error;
}

Error named_as_typed(Error error, const std::string& path, const std::string& typed, const std::string& current)
{
    return named_as_typed(std::move(error), std::vector<TypedPath>{{path, typed}}, current);
}

Error named_as_typed(Error error, const std::string& typed, const std::string& current)
{
    const auto path = resolve_remote_path(current, typed);
    return path ? named_as_typed(std::move(error), unescape_wildcards(path.value()), typed, current) : error;
}

Result<ListReply> list_entries(Connection& connection, const std::string& typed, bool recursive,
                               const std::string& current, const std::string& shown_in)
{
    auto path = resolve_remote_path_checked(connection, current, typed);
    if (!path) {
        return path.error();
    }
    if (connection.protocol_version() < 2 && path->empty() && !recursive) {
        return list_files(connection); // version 1: the root is all there is
    }
    if (has_wildcard(path.value())) {
        auto matches = remote_matches(connection, path.value(), typed);
        if (!matches) {
            return matches.error();
        }
        ListReply reply;
        for (auto& match : matches.value()) {
            const bool enter = recursive && is_folder(match);
            const std::string folder = match.name;
            match.name = shown_path(match.name, shown_in);
            reply.files.push_back(std::move(match));
            if (!enter) {
                continue;
            }
            // -r lists what each matched folder holds, as ls -R does.
            auto inside = list_folder(connection, folder, true);
            if (!inside) {
                return inside.error();
            }
            for (auto& entry : inside->files) {
                entry.name = shown_path(join_remote(folder, entry.name), shown_in);
                reply.files.push_back(std::move(entry));
            }
            for (auto& unread : inside->unreadable_folders) {
                // From the root: show_list names a wildcard's by their whole path.
                unread.path = join_remote(folder, unread.path);
                reply.unreadable_folders.push_back(std::move(unread));
            }
            reply.skipped_invalid_names += inside->skipped_invalid_names;
            reply.skipped_too_deep += inside->skipped_too_deep;
        }
        return reply;
    }
    auto listed = list_folder(connection, unescape_wildcards(path.value()), recursive);
    if (!listed && listed.error().code == ErrorCode::not_a_folder && typed.empty()) {
        // The shell's current folder, which a file has replaced since its cd:
        // no path names that folder, so the file is not listed in its place.
        return listed.error();
    }
    if (!listed && listed.error().code == ErrorCode::not_a_folder && typed_as_folder(typed)) {
        // "f/": a file named as a folder is not listed (POSIX's ENOTDIR).
        auto folder = stat_typed_folder(connection, unescape_wildcards(path.value()));
        return folder ? listed.error() : folder.error(); // a folder again since: the listing's error
    }
    if (!listed && listed.error().code == ErrorCode::not_a_folder) {
        // A file lists as itself, as ls does.
        auto file = stat_file(connection, unescape_wildcards(path.value()));
        if (!file || is_folder(file.value())) {
            return listed.error();
        }
        ListReply reply;
        file->name = shown_path(file->name, shown_in);
        reply.files.push_back(std::move(file.value()));
        return reply;
    }
    return listed;
}

Result<std::vector<FileInfo>> stat_entries(Connection& connection, const std::string& typed, const std::string& current,
                                           const std::string& shown_in)
{
    auto path = resolve_remote_path_checked(connection, current, typed);
    if (!path) {
        return path.error();
    }
    if (has_wildcard(path.value())) {
        auto matches = remote_matches(connection, path.value(), typed);
        if (matches) {
            for (auto& file : matches.value()) {
                file.name = shown_path(file.name, shown_in);
            }
        }
        return matches;
    }
    if (connection.protocol_version() < 2 && path->find('/') != std::string::npos) {
        return *require_folders(connection);
    }
    // "f/" of a file is not_a_folder, as stat(1) says of it.
    auto file = typed_as_folder(typed) ? stat_typed_folder(connection, unescape_wildcards(path.value()))
                                       : stat_file(connection, unescape_wildcards(path.value()));
    if (!file) {
        return file.error();
    }
    file->name = shown_path(file->name, shown_in);
    if (file->name.empty()) {
        file->name = "/"; // the root, however typed ("", ".", "d/.."), as the shell names it from a folder
    }
    return std::vector<FileInfo>{std::move(file.value())};
}

int show_list(const Output& output, const ListReply& reply, const std::string& typed, const std::string& current)
{
    // Folders the server could not read are listed, never as empty ones:
    // each is an error after the listing, and the status is the first's.
    std::vector<std::pair<std::string, Error>> unread;
    const auto listed = resolve_remote_path(current, typed);
    // A wildcard's folders come with their paths from the root (list_entries).
    const bool matched = listed && has_wildcard(listed.value());
    for (const auto& folder : reply.unreadable_folders) {
        const std::string base = matched ? std::string() : listed ? unescape_wildcards(listed.value()) : typed;
        unread.emplace_back(matched ? shown_path(folder.path, shown_in(output, current)) : folder.path,
                            unreadable_error(base, folder, "it is not listed"));
    }
    output.list(reply, unread);
    return unread.empty() ? kExitOk : exit_status(unread.front().second.code);
}

int run_list(Connection& connection, const Output& output, const std::string& typed, bool recursive,
             const std::string& current)
{
    auto reply = list_entries(connection, typed, recursive, current, shown_in(output, current));
    if (!reply) {
        const Error error = named_as_typed(reply.error(), typed, current);
        output.error(error);
        return exit_status(error.code);
    }
    return show_list(output, reply.value(), typed, current);
}

int run_stat(Connection& connection, const Output& output, const std::string& name, const std::string& current)
{
    auto files = stat_entries(connection, name, current, shown_in(output, current));
    if (!files) {
        const Error error = stat_error(files.error(), name, current);
        output.error(error);
        return exit_status(error.code);
    }
    show_stat(output, files.value(), name);
    return kExitOk;
}

Error stat_error(Error error, const std::string& typed, const std::string& current)
{
    // stat takes folders too: the server's "no file named" says too little.
    return named_as_typed(missing_named(std::move(error), "nothing named "), typed, current);
}

void show_stat(const Output& output, const std::vector<FileInfo>& files, const std::string& typed)
{
    // A wildcard's matches always come as a list, however many matched, so
    // that a script reads one shape for one argument (--json's stat_many).
    if (files.size() == 1 && !has_wildcard(typed)) {
        output.stat(files.front());
    } else {
        output.stat_many(files);
    }
}

namespace {

// The server's error, with the way out that a flag of this command gives
// where it does (the server cannot know the client's flags): `hint` added
// when the error is `code` and the flag was not given.
Error with_way_out(Error error, ErrorCode code, bool flag_missing, const std::string& hint)
{
    if (error.code == code && flag_missing) {
        error.message += " (" + hint + ")";
    }
    return error;
}

// What a command over paths has to show: one outcome per path it acted on
// (several for one argument when a wildcard matched several, or when a
// listed folder went partly), one failure per path that failed.
struct PathResults {
    const Output& output;
    std::vector<PathOutcome> outcomes;
    std::string current; // the shell's folder ("" on the command line)
    std::string typed;   // the argument at hand, as typed

    // `path` (from the root) failed: its error names it as it was typed.
    void failed(const std::string& path, const Error& error)
    {
        // (A failure of the argument itself names it as typed already.)
        const Error shown = path == typed ? error : named_as_typed(error, path, typed, current);
        if (!output.json()) { // with --json, the summary carries it
            output.error(shown);
        }
        outcomes.push_back(PathOutcome{path, shown, {}, {}, {}});
    }
    void done(PathOutcome outcome)
    {
        outcomes.push_back(std::move(outcome));
    }
};

// Runs `each` on every path the arguments name (wildcards expanded), with
// whether the path is a match from the server's listing (its type, size
// and mtime then as listed) or named as typed (only its name known); an
// argument that names nothing is one failed outcome.
// `refused`: a writing command's read_only_refusal, which every argument
// fails with at once, the error shown once: nothing is listed or tried.
// `refuse_argument`: an argument's own error, before anything is looked up
// (rm's of an operand ending in '.' or '..'), or nullopt.
using ArgumentCheck = std::function<std::optional<Error>(const std::string& typed)>;

template <typename Each>
int for_each_path(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                  const std::string& current, bool expand, const std::string& key, Each each,
                  const std::optional<Error>& refused = std::nullopt, const ArgumentCheck& refuse_argument = {},
                  const char* files_only = nullptr)
{
    PathResults results{output, {}, current, {}};
    if (refused) {
        if (!output.json()) {
            output.error(*refused);
        }
        for (const auto& argument : typed) {
            results.done(PathOutcome{argument, *refused, {}, {}, {}});
        }
        output.path_summary(key, results.outcomes);
        return exit_status(refused->code);
    }
    for (const auto& argument : typed) {
        results.typed = argument;
        if (interrupted()) {
            results.failed(argument, Error{ErrorCode::aborted, "interrupted before \"" + argument + "\""});
            continue;
        }
        if (auto own = refuse_argument ? refuse_argument(argument) : std::nullopt) {
            results.failed(argument, *own);
            continue;
        }
        if (auto settled = resolve_remote_path(current, argument); !settled) {
            results.failed(argument, settled.error()); // before any reconnect: it needs no server
            continue;
        }
        if (!connection.is_open()) {
            if (auto again = connection.reconnect(); !again) {
                results.failed(argument, again.error());
                continue;
            }
        }
        auto path = resolve_remote_path_checked(connection, current, argument, expand);
        if (!path) {
            results.failed(argument, path.error());
            continue;
        }
        const bool listed = expand && has_wildcard(path.value());
        std::vector<FileInfo> matches;
        if (expand) {
            auto found = remote_matches(connection, path.value(), argument);
            if (!found) {
                // The server's and the lookup's paths are from the root.
                results.failed(argument, named_as_typed(found.error(), argument, current));
                continue;
            }
            matches = std::move(found.value());
            // `files_only` (digest): a pattern that matches folders alone
            // is an error, as get's is, never a silent success.
            if (files_only != nullptr && listed &&
                std::all_of(matches.begin(), matches.end(), [](const FileInfo& match) { return is_folder(match); })) {
                results.failed(argument, Error{ErrorCode::not_regular_file,
                                               quoted(argument) + " matches only folders: " + files_only});
                continue;
            }
        } else {
            FileInfo itself;
            itself.name = unescape_wildcards(path.value());
            matches.push_back(itself);
        }
        for (const auto& match : matches) {
            each(match, listed, results);
        }
    }
    output.path_summary(key, results.outcomes);
    std::vector<ErrorCode> codes;
    for (const auto& outcome : results.outcomes) {
        if (outcome.error) {
            codes.push_back(outcome.error->code);
        }
    }
    return exit_status(codes);
}

// A reply's path as the shell shows paths (shown_path): relative to its
// current folder, or from the root with a leading '/'. Only what is shown:
// --json's summary keeps paths from the root.
template <typename Reply>
Reply shown_reply(Reply reply, const std::string& current)
{
    reply.path = shown_path(reply.path, current);
    return reply;
}

// What a delete of a listed entry expects to find at its name (PROTOCOL.md
// 4.11): the entry as listed, a folder by its type alone.
ExpectedEntry as_listed(const FileInfo& entry)
{
    if (is_folder(entry)) {
        return ExpectedEntry{EntryType::folder, 0, 0};
    }
    return ExpectedEntry{EntryType::file, entry.size, entry.mtime};
}

// Each request's reply, in the requests' order (delete_pipelined): one
// never sent fails with the lost connection's error, or as interrupted.
std::vector<Result<DeleteReply>> delete_each(Connection& connection, const std::vector<DeleteRequest>& requests)
{
    auto run = delete_pipelined(connection, requests);
    for (std::size_t i = run.replies.size(); i < requests.size(); ++i) {
        run.replies.push_back(run.lost ? *run.lost
                                       : Error{ErrorCode::aborted, "interrupted before \"" + requests[i].path + "\""});
    }
    return std::move(run.replies);
}

// A folder that a wildcard matched, under -r: removed by what a listing of
// it shows, each entry only if it is still the one listed and never
// recursively (what no listing showed, such as a tree renamed into the
// folder's place since, is never removed), what it holds before it. All
// gone: one outcome for the folder, its counts summed. Otherwise each
// entry's own outcome, so that the counts are what really went.
void remove_listed_folder(Connection& connection, const FileInfo& folder, PathResults& results)
{
    auto listed = list_folder(connection, folder.name, true);
    if (!listed) {
        results.failed(folder.name, listed.error());
        return;
    }
    // A folder the server could not read holds what is unknown: it is not
    // removed, nor are the folders above it (which then are not empty), and
    // each is reported; what else was listed goes.
    std::set<std::string> kept; // such folders and those above them, relative to folder.name ("" itself)
    for (const auto& unread : listed->unreadable_folders) {
        results.failed(join_remote(folder.name, unread.path),
                       unreadable_error(folder.name, unread, "nothing in it is removed, and it stays"));
        for (std::string at = unread.path; !at.empty();) {
            kept.insert(at);
            const auto slash = at.rfind('/');
            at = slash == std::string::npos ? std::string() : at.substr(0, slash);
        }
        kept.insert("");
    }
    std::vector<DeleteRequest> requests;
    const auto& inside = listed->files; // sorted: reversed, what a folder holds comes before it
    for (auto entry = inside.rbegin(); entry != inside.rend(); ++entry) {
        if (!kept.contains(entry->name)) {
            requests.push_back(DeleteRequest{join_remote(folder.name, entry->name), false, as_listed(*entry)});
        }
    }
    if (!kept.contains("")) {
        requests.push_back(DeleteRequest{folder.name, false, as_listed(folder)});
    }
    const auto replies = delete_each(connection, requests);
    DeleteReply whole{folder.name, EntryType::folder, 0, 0};
    bool all = true;
    for (const auto& reply : replies) {
        all = all && static_cast<bool>(reply);
        if (reply) {
            whole.files += reply->files;
            whole.folders += reply->folders;
        }
    }
    if (all && kept.empty()) {
        results.output.removed(shown_reply(whole, results.current));
        results.done(PathOutcome{folder.name, std::nullopt, whole, {}, {}});
        return;
    }
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (replies[i]) {
            results.output.removed(shown_reply(replies[i].value(), results.current));
            results.done(PathOutcome{requests[i].path, std::nullopt, replies[i].value(), {}, {}});
        } else {
            results.failed(requests[i].path, replies[i].error());
        }
    }
}

// rm's and mv's refusal of an operand ending in '.' or '..'
// (remote_paths.hpp's ends_in_dot_or_dot_dot): `does` is "rm removes".
Error dot_operand_refused(const std::string& typed, const std::string& does)
{
    return Error{ErrorCode::invalid_name, quoted(typed) + " ends in " + quoted(last_typed_component(typed)) + ": " +
                                              does + " a folder by its own name, never by a way up to it"};
}

constexpr const char* kRemovesByNameNote =
    "this server deletes by name (an older ferryd, without \"delete_expect\"): an entry put at a matched name "
    "on the server since the listing is deleted too";

} // namespace

int run_remove(Connection& connection, const Output& output, const std::vector<std::string>& typed, bool recursive,
               const std::string& current)
{
    bool noted = false;
    return for_each_path(
        connection, output, typed, current, true, "removed",
        [&](const FileInfo& match, bool listed, PathResults& results) {
            if (listed && !noted && connection.protocol_version() >= 2 && !checks_delete_expect(connection)) {
                output.warning(kRemovesByNameNote);
                noted = true;
            }
            if (listed && connection.protocol_version() >= 2 && recursive && is_folder(match)) {
                remove_listed_folder(connection, match, results);
                return;
            }
            // A match listed as a file is never deleted recursively, whatever
            // -r says: a tree renamed to its name since is not what was listed.
            // "d/" was looked up as a folder (remote_matches); without -r the
            // server is held to that, so a file put in its place since stays.
            const bool named_folder = !listed && typed_as_folder(results.typed);
            std::optional<ExpectedEntry> expect;
            if (listed) {
                expect = as_listed(match);
            } else if (named_folder && !recursive && checks_delete_expect(connection)) {
                expect = ExpectedEntry{EntryType::folder, 0, 0};
            }
            auto reply = delete_remote(connection, match.name, listed ? false : recursive, expect);
            if (!reply) {
                results.failed(match.name, with_way_out(reply.error(), ErrorCode::not_empty, !recursive,
                                                        "rm -r removes a folder with what it holds"));
                return;
            }
            output.removed(shown_reply(reply.value(), current));
            results.done(PathOutcome{match.name, std::nullopt, std::move(reply.value()), {}, {}});
        },
        read_only_refusal(connection, "nothing is removed"),
        [](const std::string& argument) -> std::optional<Error> {
            if (ends_in_dot_or_dot_dot(argument)) {
                return dot_operand_refused(argument, "rm removes");
            }
            return std::nullopt;
        });
}

// What mkdir of `path` (from the root; `typed` as typed) answers from a
// look alone, whether or not the connection may write; std::nullopt where
// the path has to be asked about. The root is always there: -p's "no
// error" (true), else exists. "new/." names the folder that is there
// (POSIX 4.13): a file or link there is ENOTDIR with -p too
// (stat_typed_folder); without -p mkdir never makes it (EEXIST or ENOENT),
// with -p a missing one is made (false).
std::optional<Result<bool>> answer_by_looking(Connection& connection, const std::string& path, const std::string& typed,
                                              bool parents)
{
    if (path.empty()) {
        return parents ? Result<bool>(true) : Error{ErrorCode::exists, "the server's root is there already"};
    }
    if (last_typed_component(typed) != ".") {
        return std::nullopt;
    }
    auto folder = stat_typed_folder(connection, path);
    if (folder && parents) {
        return Result<bool>(true);
    }
    if (folder) {
        return Result<bool>(Error{ErrorCode::exists, quoted(path) + " is there already"});
    }
    if (folder.error().code != ErrorCode::not_found) {
        return folder.error();
    }
    if (parents) {
        return Result<bool>(false);
    }
    return Error{ErrorCode::not_found, quoted(path) + " is not there, and a path ending in \"/.\" names what is; "
                                                      "mkdir -p makes it"};
}

// mkdir of `path` (from the root; `typed` as typed) on a connection that
// may only read: what a server that may write would answer, where that is
// known without writing. True: a folder is there and -p makes nothing (GNU
// mkdir -p succeeds on a read-only mount). False: a folder would be made,
// so the read-only refusal stands for it. Else that server's error, which
// Linux's mkdir(2) also gives before EROFS (EEXIST, ENOENT, ENOTDIR):
// - the root and "new/.": answer_by_looking;
// - anything there: `exists` (library_edit's make_folder), except that
//   with -p a folder is fine; a file on the way: the stat's not_a_folder;
// - without -p, a missing parent: not_found, with -p's way out.
Result<bool> answer_without_making(Connection& connection, const std::string& path, const std::string& typed,
                                   bool parents)
{
    if (auto answered = answer_by_looking(connection, path, typed, parents)) {
        return std::move(*answered);
    }
    auto looked = look_for_folder(connection, path);
    if (looked) {
        if (looked->kind == FolderLook::Kind::folder) {
            return parents ? Result<bool>(true) : Error{ErrorCode::exists, quoted(path) + " already exists"};
        }
        return Error{ErrorCode::exists,
                     quoted(path) + (parents ? " already exists and is not a folder" : " already exists")};
    }
    if (looked.error().code != ErrorCode::not_found) {
        return looked.error();
    }
    const auto slash = path.rfind('/');
    if (parents || slash == std::string::npos) {
        return false; // -p makes what is missing; the root is there
    }
    // Without -p the parent must be a folder that is there.
    const std::string parent = path.substr(0, slash);
    auto above = look_for_folder(connection, parent);
    if (!above) {
        return with_way_out(above.error().code == ErrorCode::not_found
                                ? Error{ErrorCode::not_found, "no folder named " + quoted(parent)}
                                : above.error(),
                            ErrorCode::not_found, true, "mkdir -p makes the missing folders too");
    }
    if (above->kind != FolderLook::Kind::folder) {
        return Error{ErrorCode::not_a_folder, quoted(parent) + " is not a folder"};
    }
    return false;
}

// A read-only mkdir's refusal of `typed`, one path of several.
Error refused_path(const Error& refused, const std::string& typed)
{
    return Error{refused.code, quoted(typed) + ": " + refused.message};
}

// mkdir on a connection that may only read: each path is answered as a
// server that may write would (answer_without_making), so a path that no
// server would make is not sent after write access in vain, and -p of a
// folder that is there is no error. Where every path would need making
// the refusal is said once, as for the other writing commands. A folder
// missing before a '..' ("new/../d") is one -p would make: refused as
// such; without -p it is the resolver's not_found. Each path is looked at
// once: the answers found in deciding whether to say the refusal once
// are the ones given.
int answer_read_only_mkdir(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                           bool parents, const std::string& current, const Error& refused)
{
    std::map<std::string, Result<bool>> answers; // by argument as typed
    const auto answer_of = [&](const std::string& argument, const std::string& path) -> const Result<bool>& {
        auto found = answers.find(argument);
        if (found == answers.end()) {
            found = answers.emplace(argument, answer_without_making(connection, path, argument, parents)).first;
        }
        return found->second;
    };
    std::set<std::string> climb_out_of_a_missing_folder;
    bool all_need_making = true;
    for (const auto& argument : typed) {
        if (!resolve_remote_path(current, argument)) {
            all_need_making = false; // refused for itself, by for_each_path
            continue;
        }
        const auto path = resolve_remote_path_checked(connection, current, argument, false);
        if (!path) {
            if (parents && path.error().code == ErrorCode::not_found) {
                climb_out_of_a_missing_folder.insert(argument);
            } else {
                all_need_making = false; // for_each_path says why
            }
            continue;
        }
        const auto& answer = answer_of(argument, unescape_wildcards(path.value()));
        all_need_making = all_need_making && answer && !answer.value();
    }
    if (all_need_making) {
        return for_each_path(
            connection, output, typed, current, false, "made", [](const FileInfo&, bool, PathResults&) {}, refused);
    }
    return for_each_path(
        connection, output, typed, current, false, "made",
        [&](const FileInfo& match, bool, PathResults& results) {
            // (Looked at here only where the first look failed to resolve it.)
            const auto& answer = answer_of(results.typed, match.name);
            if (!answer || !answer.value()) {
                results.failed(match.name, answer ? refused_path(refused, results.typed) : answer.error());
                return;
            }
            MkdirReply already{match.name, false};
            // The root as the other paths of mkdir show it ("/"): shown_path
            // would name it "/" in a shell's folder, and made() adds its own '/'.
            output.made(match.name.empty() ? already : shown_reply(already, current));
            results.done(PathOutcome{match.name, std::nullopt, {}, std::move(already), {}});
        },
        std::nullopt,
        [&](const std::string& argument) -> std::optional<Error> {
            if (climb_out_of_a_missing_folder.contains(argument)) {
                return refused_path(refused, argument);
            }
            return std::nullopt;
        });
}

int run_make_folders(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                     bool parents, const std::string& current)
{
    if (const auto refused = read_only_refusal(connection, "nothing is made")) {
        return answer_read_only_mkdir(connection, output, typed, parents, current, *refused);
    }
    // The folders made on the way through a '..', each said once: an
    // argument's own folder among them was made by this command.
    std::set<std::string> made_on_the_way;
    if (parents) {
        // POSIX mkdir -p makes every missing intermediate component, a folder
        // a '..' climbs out of too ("a/b/../c" makes a/b and a/c), so that
        // the check that each is a folder finds one. One that cannot be made
        // (a file stands there) is that check's error, named as typed.
        for (const auto& argument : typed) {
            auto climbed = climbed_folders(current, argument);
            for (const auto& folder : climbed ? climbed.value() : std::vector<std::string>{}) {
                // Each component in turn (names as written), so that each
                // one made is known and shown as made.
                const std::string real = unescape_wildcards(folder);
                for (std::size_t end = real.find('/'); ; end = real.find('/', end + 1)) {
                    const std::string step = real.substr(0, end);
                    if (auto made = make_remote_folder(connection, step, true); made && made->created) {
                        made_on_the_way.insert(step);
                        output.made(shown_reply(made.value(), current));
                    }
                    if (end == std::string::npos) {
                        break;
                    }
                }
            }
        }
    }
    return for_each_path(
        connection, output, typed, current, false, "made", [&](const FileInfo& match, bool, PathResults& results) {
            // The root's and "new/."'s answers need no mkdir, but for a
            // "new/." that -p makes or finds (the server answers those).
            if (auto answered = answer_by_looking(connection, match.name, results.typed, parents);
                answered && (!*answered || match.name.empty())) {
                if (!*answered) {
                    results.failed(match.name, answered->error());
                    return;
                }
                MkdirReply there; // the root: -p's "no error"
                there.created = false;
                output.made(there);
                results.done(PathOutcome{match.name, std::nullopt, {}, std::move(there), {}});
                return;
            }
            auto reply = make_remote_folder(connection, match.name, parents);
            if (!reply) {
                results.failed(match.name, with_way_out(reply.error(), ErrorCode::not_found, !parents,
                                                        "mkdir -p makes the missing folders too"));
                return;
            }
            if (!reply->created && made_on_the_way.contains(match.name)) {
                reply->created = true; // made on the way, and said so then
            } else {
                output.made(shown_reply(reply.value(), current));
            }
            results.done(PathOutcome{match.name, std::nullopt, {}, std::move(reply.value()), {}});
        });
}

int run_digests(Connection& connection, const Output& output, const std::vector<std::string>& typed, HashKind hash,
                const std::string& current)
{
    return for_each_path(
        connection, output, typed, current, true, "files",
        [&](const FileInfo& match, bool listed, PathResults& results) {
            if (listed && is_folder(match)) {
                return; // a wildcard's folder: no digest to give, passed over
            }
            if (match.name.empty()) {
                results.failed(match.name, Error{ErrorCode::not_regular_file,
                                                 "the server's root is a folder, which has no digest"});
                return;
            }
            auto reply = remote_digest(connection, match.name, hash);
            if (!reply) {
                results.failed(match.name, reply.error());
                return;
            }
            reply->file.name = shown_path(reply->file.name, shown_in(output, current));
            output.digested(reply.value());
            results.done(PathOutcome{match.name, std::nullopt, {}, {}, std::move(reply.value())});
        },
        std::nullopt, {}, "digest takes files");
}

// The way on for a mv refused because `destination` is taken: --replace
// where it can replace what is there (a file with a file, an empty folder
// with a folder), or the folder form of `to` where a folder is there and
// the source is no folder (rename(2) never puts a file in place of a
// folder). Asked of the server only after the refusal.
std::string way_past_a_taken_name(Connection& connection, const std::string& source, const std::string& destination,
                                  const std::string& to, bool into_folder)
{
    // "mv x d/" already goes into d: pointing to "d/" again would send the
    // user back to the command that failed.
    const std::string into = to.ends_with('/') ? to : to + "/";
    const std::string go_into = into_folder ? "" : ": mv to " + single_quoted(into) + " moves it into that folder";
    const auto there = stat_file(connection, destination);
    const auto moved = stat_file(connection, source);
    if (there && moved && is_folder(there.value()) && !is_folder(moved.value())) {
        return "a folder is there" + (into_folder ? ", and a file replaces no folder" : go_into);
    }
    if (there && moved && is_folder(there.value()) != is_folder(moved.value())) {
        return "a file is there, and a folder replaces no file";
    }
    if (there && moved && is_folder(there.value())) {
        // --replace takes the place of an empty folder only (rename(2)'s
        // ENOTEMPTY): a folder holding anything, shown or not, stays.
        const auto inside = list_folder(connection, destination, false);
        const bool empty = inside && inside->files.empty() && inside->holding_unlisted.empty() &&
                           inside->unreadable_folders.empty() && inside->skipped_invalid_names == 0 &&
                           inside->skipped_too_deep == 0;
        if (!empty) {
            return "a folder that is not empty is there, which nothing replaces" +
                   (into_folder ? "; mv it to another name, or move that folder away first" : go_into);
        }
        return "an empty folder is there: mv --replace replaces it";
    }
    if (there && moved) {
        return "a file is there: mv --replace replaces it";
    }
    return "mv --replace replaces it: a file with a file, an empty folder with a folder";
}

int run_move(Connection& connection, const Output& output, const std::string& from, const std::string& to,
             bool replace, const std::string& current)
{
    auto source = resolve_remote_path(current, from);
    auto target = resolve_remote_path(current, to);
    if (!source || !target) {
        const Error error = !source ? source.error() : target.error();
        output.error(error);
        return exit_status(error.code);
    }
    if (ends_in_dot_or_dot_dot(from)) {
        const Error error = dot_operand_refused(from, "mv moves");
        output.error(error);
        return exit_status(error.code);
    }
    if (auto refused = read_only_refusal(connection, "nothing is moved")) {
        output.error(*refused);
        return exit_status(refused->code);
    }
    for (const std::string* typed : {&from, &to}) {
        if (auto checked = resolve_remote_path_checked(connection, current, *typed, false); !checked) {
            output.error(checked.error());
            return exit_status(checked.error().code);
        }
    }
    if (typed_as_folder(from)) {
        // "mv f/ y" of a file: not_a_folder, as rename(2) says (ENOTDIR).
        if (auto folder = stat_typed_folder(connection, unescape_wildcards(source.value())); !folder) {
            const Error error = named_as_typed(folder.error(), unescape_wildcards(source.value()), from, current);
            output.error(error);
            return exit_status(error.code);
        }
    }
    std::string destination = unescape_wildcards(target.value());
    // Into that folder, under its own name: a target typed as a folder
    // ("dst/", ".", "..", "a/..") or naming the root, which cannot be a
    // rename's target. The name is the source's own, escapes undone
    // ("m\[1]" moves m[1], named m[1] there).
    const bool into_folder = typed_as_folder(to) || destination.empty();
    if (into_folder) {
        destination = join_remote(destination, remote_base_name(unescape_wildcards(source.value())));
    }
    auto reply = rename_remote(connection, unescape_wildcards(source.value()), destination, replace);
    if (!reply) {
        Error error = reply.error();
        if (error.code == ErrorCode::exists && !replace) {
            error.message +=
                " (" +
                way_past_a_taken_name(connection, unescape_wildcards(source.value()), destination, to, into_folder) +
                ")";
        }
        error =
            named_as_typed(std::move(error), {{unescape_wildcards(source.value()), from}, {destination, to}}, current);
        output.error(error);
        return exit_status(error.code);
    }
    output.moved(RenameReply{shown_path(reply->from, shown_in(output, current)),
                             shown_path(reply->to, shown_in(output, current))});
    return kExitOk;
}

int run_stats(Connection& connection, const Output& output)
{
    auto stats = server_stats(connection);
    if (!stats) {
        output.error(stats.error());
        return exit_status(stats.error().code);
    }
    output.stats(stats.value());
    return kExitOk;
}

std::optional<Error> read_only_refusal(const Connection& connection, const std::string& what)
{
    if (!connection.is_open() || connection.server_hello().access != "ro") {
        return std::nullopt;
    }
    return Error{ErrorCode::forbidden, "the server lets this connection only read (hello said \"access\": \"ro\": "
                                       "a read-only server or token); " + what};
}

MadeFolders make_folders(const std::string& path, const std::string& flag, std::optional<std::uint32_t> last_mode)
{
    MadeFolders folders;
    // Each folder on the way made where resolve_typed_path reaches it, so
    // that no one else's link leads the new folders somewhere else.
    std::string reached = path.starts_with('/') ? "/" : "";
    std::size_t begin = 0;
    while (begin <= path.size()) {
        const auto slash = std::min(path.find('/', begin), path.size());
        if (slash > begin) {
            // As typed, with no '/' of its own after it: the error names
            // "outf", never "outf/" (which would say a folder was typed).
            reached += path.substr(begin, slash - begin);
            struct stat before {};
            const bool was_there = ::lstat(reached.c_str(), &before) == 0;
            const bool last = path.find_first_not_of('/', slash) == std::string::npos;
            if (auto made = make_typed_folder(reached, last ? last_mode : std::nullopt); !made) {
                folders.error = about_local_files(made.error().code, flag + " " + path + ": " + made.error().message);
                return folders;
            }
            if (!was_there) {
                folders.made.push_back(reached);
                folders.made_last = last;
            }
            reached += "/";
        }
        begin = slash + 1;
    }
    return folders;
}

void remove_made_folders(const MadeFolders& folders)
{
    for (auto folder = folders.made.rbegin(); folder != folders.made.rend(); ++folder) {
        if (::rmdir(folder->c_str()) != 0) {
            return; // not empty (or not ours to remove): nor is any folder holding it
        }
    }
}

} // namespace ferry::client
