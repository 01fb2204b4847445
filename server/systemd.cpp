#include "systemd.hpp"

#include <systemd/sd-daemon.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ferry::server::systemd {

Result<std::vector<int>> listening_sockets()
{
    const int count = ::sd_listen_fds(1);
    if (count < 0) {
        return Error{ErrorCode::io_error, std::string("cannot take the sockets systemd passed: ") + std::strerror(-count)};
    }
    std::vector<int> sockets;
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + count; ++fd) {
        if (::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
            return Error{ErrorCode::io_error, "descriptor " + std::to_string(fd) +
                                                  " passed by systemd (LISTEN_FDS) is not a listening TCP socket; "
                                                  "ferryd.socket needs ListenStream=PORT or ADDRESS:PORT"};
        }
        // Workers accept until EAGAIN, and may share the socket: it must
        // never block. (sd_listen_fds already set close-on-exec.)
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            return Error{ErrorCode::io_error, "cannot make descriptor " + std::to_string(fd) +
                                                  " passed by systemd non-blocking: " + std::strerror(errno)};
        }
        sockets.push_back(fd);
    }
    return sockets;
}

bool notify_wanted()
{
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && socket[0] != '\0';
}

void notify(const std::string& state)
{
    // A manager that went away is no reason to stop serving: the result
    // is only worth ignoring.
    [[maybe_unused]] const int sent = ::sd_notify(0, state.c_str());
}

} // namespace ferry::server::systemd
