// The client's commands as the command line and the shell run them: one
// operation on an open connection, its result or error shown through
// Output. Each returns the exit status (status.hpp). Transfers live in transfers.hpp.
#pragma once

#include "connection.hpp"
#include "output.hpp"

#include <optional>
#include <string>

namespace ferry::client {

int run_list(Connection& connection, const Output& output);
int run_stat(Connection& connection, const Output& output, const std::string& name);
int run_stats(Connection& connection, const Output& output);

// Makes the folder `path` and its missing parents, like mkdir -p (and curl's
// --create-dirs): get -C names where files go, and a folder that is not
// there yet is one to make, not a mistake. An error names `flag` as the
// user typed it (-C or --directory).
std::optional<Error> make_folders(const std::string& path, const std::string& flag);

} // namespace ferry::client
