// The files an operator names by path (--token-file, --log-file, --config,
// --tls-cert, --tls-key), opened so that no kind of file can block ferryd
// or be acted on by being opened.
//
// A plain open(2) of a FIFO that no one writes waits for a writer for ever;
// at a SIGHUP that wait is in the thread that handles signals, so later
// SIGHUPs and SIGTERM go unheard. Opening a device runs its driver's open,
// which may act (a watchdog starts counting down, a tape rewinds), and
// opening a FIFO's end wakes whoever waits on the other. So the path is
// first looked at through an O_PATH descriptor, which opens nothing, and
// what is not a regular file is refused, naming what it is. A regular file
// is then opened through that descriptor (/proc/self/fd; by its path again
// where /proc is missing, and kept only if it is the file looked at: there
// a FIFO or device swapped in between the look and the open is opened
// before it is refused), with
// O_NONBLOCK, O_NOCTTY and O_CLOEXEC. The descriptor comes back without
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
