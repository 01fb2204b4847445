#include "commands.hpp"

#include "operations.hpp"

namespace ferry::client {

bool run_list(Connection& connection, const Output& output)
{
    auto reply = list_files(connection);
    if (!reply) {
        output.error(reply.error());
        return false;
    }
    output.list(reply.value());
    return true;
}

bool run_stat(Connection& connection, const Output& output, const std::string& name)
{
    auto file = stat_file(connection, name);
    if (!file) {
        output.error(file.error());
        return false;
    }
    output.stat(file.value());
    return true;
}

bool run_stats(Connection& connection, const Output& output)
{
    auto stats = server_stats(connection);
    if (!stats) {
        output.error(stats.error());
        return false;
    }
    output.stats(stats.value());
    return true;
}

} // namespace ferry::client
