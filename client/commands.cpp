#include "commands.hpp"

#include "interrupt.hpp"
#include "operations.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"

#include <filesystem>
#include <system_error>

namespace ferry::client {

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

Result<ListReply> list_entries(Connection& connection, const std::string& typed, bool recursive,
                               const std::string& current)
{
    auto path = resolve_remote_path(current, typed);
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
        reply.files = std::move(matches.value());
        for (auto& file : reply.files) {
            file.name = shown_path(file.name, current);
        }
        return reply;
    }
    auto listed = list_folder(connection, unescape_wildcards(path.value()), recursive);
    if (!listed && listed.error().code == ErrorCode::not_a_folder) {
        // A file lists as itself, as ls does.
        auto file = stat_file(connection, unescape_wildcards(path.value()));
        if (!file || is_folder(file.value())) {
            return listed.error();
        }
        ListReply reply;
        file->name = shown_path(file->name, current);
        reply.files.push_back(std::move(file.value()));
        return reply;
    }
    return listed;
}

Result<std::vector<FileInfo>> stat_entries(Connection& connection, const std::string& typed,
                                           const std::string& current)
{
    auto path = resolve_remote_path(current, typed);
    if (!path) {
        return path.error();
    }
    if (has_wildcard(path.value())) {
        auto matches = remote_matches(connection, path.value(), typed);
        if (matches) {
            for (auto& file : matches.value()) {
                file.name = shown_path(file.name, current);
            }
        }
        return matches;
    }
    if (connection.protocol_version() < 2 && path->find('/') != std::string::npos) {
        return *require_folders(connection);
    }
    auto file = stat_file(connection, unescape_wildcards(path.value()));
    if (!file) {
        return file.error();
    }
    return std::vector<FileInfo>{std::move(file.value())};
}

int run_list(Connection& connection, const Output& output, const std::string& typed, bool recursive,
             const std::string& current)
{
    auto reply = list_entries(connection, typed, recursive, current);
    if (!reply) {
        output.error(reply.error());
        return exit_status(reply.error().code);
    }
    output.list(reply.value());
    return kExitOk;
}

int run_stat(Connection& connection, const Output& output, const std::string& name, const std::string& current)
{
    auto files = stat_entries(connection, name, current);
    if (!files) {
        output.error(files.error());
        return exit_status(files.error().code);
    }
    if (files->size() == 1) {
        output.stat(files->front());
    } else {
        output.stat_many(files.value());
    }
    return kExitOk;
}

namespace {

// Runs `each` on every path the arguments name (wildcards expanded), one
// outcome per path; an argument that names nothing is one failed outcome.
template <typename Each>
int for_each_path(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                  const std::string& current, bool expand, const std::string& key, Each each)
{
    std::vector<PathOutcome> outcomes;
    const auto failed = [&](const std::string& path, const Error& error) {
        if (!output.json()) { // with --json, the summary carries it
            output.error(error);
        }
        outcomes.push_back(PathOutcome{path, error, {}, {}, {}});
    };
    for (const auto& argument : typed) {
        if (interrupted()) {
            failed(argument, Error{ErrorCode::aborted, "interrupted before \"" + argument + "\""});
            continue;
        }
        auto path = resolve_remote_path(current, argument);
        if (!path) {
            failed(argument, path.error());
            continue;
        }
        if (!connection.is_open()) {
            if (auto again = connection.reconnect(); !again) {
                failed(argument, again.error());
                continue;
            }
        }
        std::vector<FileInfo> matches;
        if (expand) {
            auto found = remote_matches(connection, path.value(), argument);
            if (!found) {
                failed(argument, found.error());
                continue;
            }
            matches = std::move(found.value());
        } else {
            FileInfo itself;
            itself.name = unescape_wildcards(path.value());
            matches.push_back(itself);
        }
        for (const auto& match : matches) {
            PathOutcome outcome{match.name, std::nullopt, {}, {}, {}};
            if (auto error = each(match, outcome)) {
                failed(match.name, *error);
            } else if (outcome.removed || outcome.made || outcome.digest) { // else passed over
                outcomes.push_back(std::move(outcome));
            }
        }
    }
    output.path_summary(key, outcomes);
    std::vector<ErrorCode> codes;
    for (const auto& outcome : outcomes) {
        if (outcome.error) {
            codes.push_back(outcome.error->code);
        }
    }
    return exit_status(codes);
}

} // namespace

int run_remove(Connection& connection, const Output& output, const std::vector<std::string>& typed, bool recursive,
               const std::string& current)
{
    return for_each_path(connection, output, typed, current, true, "removed",
                         [&](const FileInfo& match, PathOutcome& outcome) -> std::optional<Error> {
                             auto reply = delete_remote(connection, match.name, recursive);
                             if (!reply) {
                                 return reply.error();
                             }
                             output.removed(reply.value());
                             outcome.removed = std::move(reply.value());
                             return std::nullopt;
                         });
}

int run_make_folders(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                     bool parents, const std::string& current)
{
    return for_each_path(connection, output, typed, current, false, "made",
                         [&](const FileInfo& match, PathOutcome& outcome) -> std::optional<Error> {
                             auto reply = make_remote_folder(connection, match.name, parents);
                             if (!reply) {
                                 return reply.error();
                             }
                             output.made(reply.value());
                             outcome.made = std::move(reply.value());
                             return std::nullopt;
                         });
}

int run_digests(Connection& connection, const Output& output, const std::vector<std::string>& typed, HashKind hash,
                const std::string& current)
{
    return for_each_path(connection, output, typed, current, true, "files",
                         [&](const FileInfo& match, PathOutcome& outcome) -> std::optional<Error> {
                             if (is_folder(match)) {
                                 return std::nullopt; // a wildcard's folder: no digest to give
                             }
                             auto reply = remote_digest(connection, match.name, hash);
                             if (!reply) {
                                 return reply.error();
                             }
                             reply->file.name = shown_path(reply->file.name, current);
                             output.digested(reply.value());
                             outcome.digest = std::move(reply.value());
                             return std::nullopt;
                         });
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
    std::string destination = unescape_wildcards(target.value());
    if (to.ends_with('/')) { // into that folder, under its own name
        destination = join_remote(destination, remote_base_name(source.value()));
    }
    auto reply = rename_remote(connection, unescape_wildcards(source.value()), destination, replace);
    if (!reply) {
        output.error(reply.error());
        return exit_status(reply.error().code);
    }
    output.moved(reply.value());
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

std::optional<Error> make_folders(const std::string& path, const std::string& flag)
{
    std::error_code failed;
    std::filesystem::create_directories(path, failed);
    if (failed) {
        return Error{ErrorCode::local_io, flag + " " + path + ": cannot create the folder: " + failed.message()};
    }
    if (!std::filesystem::is_directory(path, failed)) {
        return Error{ErrorCode::local_io, flag + " " + path + ": not a folder"};
    }
    return std::nullopt;
}

} // namespace ferry::client
