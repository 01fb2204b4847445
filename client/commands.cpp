#include "commands.hpp"

#include "operations.hpp"

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

} // namespace ferry::client
