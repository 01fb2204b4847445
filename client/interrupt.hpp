// Ctrl-C (SIGINT) and SIGTERM stop a transfer cleanly instead of killing the
// process: the handler only sets a flag, and every blocking wait of the
// client wakes at least every few hundred milliseconds to look at it, so a
// download can record its partial state before it returns. A second signal
// while the first is pending kills the process the ordinary way.
//
// Once the transfer is cleaned up, the command ends by the same signal
// (end_by_interrupt), so that the shell sees 130 (or 143) and a loop
// `for f in ...; do ferry get "$f"; done` stops, as with scp, curl and wget.
#pragma once

namespace ferry::client {

// Installs the handlers (without SA_RESTART, so blocking calls return EINTR).
void install_interrupt_handlers();

// True once SIGINT or SIGTERM arrived and until clear_interrupt().
bool interrupted();
void clear_interrupt();

// After a SIGINT or SIGTERM: restores the default action and raises the
// signal again, which ends the process. Returns only when no signal came.
void end_by_interrupt();

} // namespace ferry::client
