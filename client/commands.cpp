#include "commands.hpp"

#include "operations.hpp"

#include <filesystem>
#include <system_error>

namespace ferry::client {

int run_list(Connection& connection, const Output& output)
{
    auto reply = list_files(connection);
    if (!reply) {
        output.error(reply.error());
        return exit_status(reply.error().code);
    }
    output.list(reply.value());
    return kExitOk;
}

int run_stat(Connection& connection, const Output& output, const std::string& name)
{
    auto file = stat_file(connection, name);
    if (!file) {
        output.error(file.error());
        return exit_status(file.error().code);
    }
    output.stat(file.value());
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
