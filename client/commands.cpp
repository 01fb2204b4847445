#include "commands.hpp"

#include "local_files.hpp"
#include "operations.hpp"
#include "progress.hpp"

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

bool run_get(Connection& connection, const Output& output, const std::string& name,
             const std::optional<std::string>& local, bool resume)
{
    ProgressBar bar(name, ProgressBar::wanted(output.json()));
    GetOptions options;
    options.name = name;
    options.dest = resolve_download_path(name, local);
    options.resume = resume;
    options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
    auto result = get_file(connection, options);
    bar.finish();
    if (!result) {
        output.error(result.error());
        return false;
    }
    output.got(result.value());
    return true;
}

bool run_put(Connection& connection, const Output& output, const std::string& local,
             const std::optional<std::string>& name, bool resume)
{
    PutOptions options;
    options.local_path = local;
    options.name = name.value_or(base_name(local));
    options.resume = resume;
    ProgressBar bar(options.name, ProgressBar::wanted(output.json()));
    options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
    auto result = put_file(connection, options);
    bar.finish();
    if (!result) {
        output.error(result.error());
        return false;
    }
    output.put(result.value(), local);
    return true;
}

} // namespace ferry::client
