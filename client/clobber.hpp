// --no-clobber and --skip-identical: whether a get or put may leave its
// target alone. "identical" compares size, then the digest of the whole
// file under the transfer hash; the server's digest comes from a get at
// offset = size (PROTOCOL.md 4.4), which moves no file bytes.
#pragma once

#include "connection.hpp"
#include "local_files.hpp"
#include "transfer_hash.hpp"

#include <optional>
#include <string>

namespace ferry::client {

enum class Clobber {
    replace,        // the default: a transfer replaces its target
    keep_existing,  // --no-clobber: an existing target is never touched
    skip_identical, // --skip-identical: transfer only when the target differs
};

// Why a transfer was skipped ("exists", "identical"), nullopt to go ahead.
using SkipReason = std::optional<std::string>;

// For a get into `dest` (no connection needed for keep_existing); with
// `in`, dest's held folder (GetOptions::folder), looked at by its last name.
Result<SkipReason> skip_get(Connection& connection, const std::string& name, const std::string& dest,
                            Clobber clobber, HashKind hash, const LocalFolder* in = nullptr);
// The server's answer that it has no file `name` (a stat: not_found,
// not_a_folder, invalid_name; a folder there: not_regular_file), nullopt
// when it has one or could not say. -n skips a get by its local name
// alone, without a request: a skipped get that another download of its
// command waits behind is asked about, so that none is refused for a file
// the server lacks.
Result<std::optional<Error>> not_on_server(Connection& connection, const std::string& name);
// For a put of `local_path` as `name`; with `spool` (put -), that file is
// read through its descriptor instead.
Result<SkipReason> skip_put(Connection& connection, const std::string& local_path, const std::string& name,
                            Clobber clobber, HashKind hash, const LocalFile* spool = nullptr);

} // namespace ferry::client
