// The client's commands as the command line and the shell run them: one
// operation on an open connection, its result or error shown through
// Output. Each returns true on success. Transfers live in transfers.hpp.
#pragma once

#include "connection.hpp"
#include "output.hpp"

#include <string>

namespace ferry::client {

bool run_list(Connection& connection, const Output& output);
bool run_stat(Connection& connection, const Output& output, const std::string& name);
bool run_stats(Connection& connection, const Output& output);

} // namespace ferry::client
