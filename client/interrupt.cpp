#include "interrupt.hpp"

#include <csignal>
#include <cstdio>

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
    g_interrupted = signal_number;
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

void end_by_interrupt()
{
    const int signal_number = static_cast<int>(g_interrupted);
    if (signal_number == 0) {
        return;
    }
    // raise() skips exit(): what was printed must reach its reader first.
    std::fflush(nullptr);
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signal_number, &action, nullptr);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, signal_number);
    sigprocmask(SIG_UNBLOCK, &blocked, nullptr);
    std::raise(signal_number);
}

void clear_interrupt()
{
    g_interrupted = 0;
}

} // namespace ferry::client
