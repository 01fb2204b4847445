// The client's commands as the command line and the shell run them: one
// operation on an open connection, its result or error shown through
// Output. Each returns the exit status (status.hpp). Transfers live in transfers.hpp.
#pragma once

#include "connection.hpp"
#include "output.hpp"

#include <string>

namespace ferry::client {

int run_list(Connection& connection, const Output& output);
int run_stat(Connection& connection, const Output& output, const std::string& name);
int run_stats(Connection& connection, const Output& output);

} // namespace ferry::client
