#include "interrupt.hpp"

#include <csignal>

namespace ferry::client {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int signal_number)
{
    if (g_interrupted != 0) {
        // Second signal: the user insists. Only async-signal-safe calls here.
        std::signal(signal_number, SIG_DFL);
        std::raise(signal_number);
        return;
    }
    g_interrupted = 1;
}

} // namespace

void install_interrupt_handlers()
{
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART: poll() and read() return EINTR
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

bool interrupted()
{
    return g_interrupted != 0;
}

void clear_interrupt()
{
    g_interrupted = 0;
}

} // namespace ferry::client
