// What ferryd says to and takes from systemd, through libsystemd: the
// listening sockets of socket activation (LISTEN_FDS) and the service
// manager's notifications (NOTIFY_SOCKET: READY=1, STATUS=, STOPPING=1).
// Neither needs a booted systemd: without those variables ferryd binds its
// own sockets and says nothing, and tests set them by hand.
#pragma once

#include "error.hpp"

#include <string>
#include <vector>

namespace ferry::server::systemd {

// The listening TCP sockets systemd passed (LISTEN_FDS for this process),
// made non-blocking and close-on-exec; none when ferryd was not
// socket-activated. The variables are unset so that nothing ferryd starts
// inherits them. An error for a passed descriptor that is not a listening
// IPv4 or IPv6 stream socket (ferryd serves TCP only).
Result<std::vector<int>> listening_sockets();

// A service manager listens for notifications (NOTIFY_SOCKET is set).
bool notify_wanted();
// Sends "KEY=VALUE" lines to the service manager; nothing without one.
void notify(const std::string& state);

} // namespace ferry::server::systemd
