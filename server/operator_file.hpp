// The files an operator names by path (--token-file, --log-file, --config,
// --tls-cert, --tls-key), opened so that no kind of file can block ferryd.
//
// A plain open(2) of a FIFO that no one writes waits for a writer for ever;
// at a SIGHUP that wait is in the thread that handles signals, so later
// SIGHUPs and SIGTERM go unheard. These open with O_NONBLOCK (a FIFO opens
// at once, or fails with ENXIO for writing), O_NOCTTY (a terminal never
// becomes ours) and O_CLOEXEC, then fstat the descriptor and refuse what is
// not a regular file, naming what it is. The descriptor comes back without
// O_NONBLOCK, so that a regular file behaves as any other.
#pragma once

#include "error.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>

namespace ferry::server {

struct OperatorFile {
    int fd = -1;
    struct ::stat st {};
};

// Opens `path` with `flags` (O_RDONLY, or O_WRONLY | O_APPEND | O_CREAT ...;
// `create_mode` with O_CREAT) for the file an operator calls `what` ("token
// file", "log file"). Error: io_error with a message naming the file and why.
Result<OperatorFile> open_operator_file(const std::string& path, int flags, std::string_view what,
                                        mode_t create_mode = 0);

// What is left to read of `fd` (an operator's file, `what` at `path` for
// the message), to its end. Error: io_error naming the file and why.
Result<std::string> read_to_end(int fd, const std::string& path, std::string_view what);

// The whole of such a file, read through open_operator_file(O_RDONLY); its
// stat in `st` when given.
Result<std::string> read_operator_file(const std::string& path, std::string_view what, struct ::stat* st = nullptr);

// What kind of file a mode is, as a person names it ("a FIFO", "a folder").
std::string_view kind_of_file(mode_t mode);

} // namespace ferry::server
