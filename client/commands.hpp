// The client's commands as the command line and the shell run them: one
// operation on an open connection, its result or error shown through
// Output, a progress bar for transfers. Each returns true on success.
#pragma once

#include "connection.hpp"
#include "output.hpp"

#include <optional>
#include <string>

namespace ferry::client {

bool run_list(Connection& connection, const Output& output);
bool run_stat(Connection& connection, const Output& output, const std::string& name);
// get NAME [LOCAL]: LOCAL defaults to ./NAME; an existing folder gets NAME inside it.
bool run_get(Connection& connection, const Output& output, const std::string& name,
             const std::optional<std::string>& local, bool resume);
// put LOCAL [NAME]: NAME defaults to LOCAL's last component.
bool run_put(Connection& connection, const Output& output, const std::string& local,
             const std::optional<std::string>& name, bool resume);

} // namespace ferry::client
