// Progress of one transfer on stderr: bytes done, rate and time left. Shown
// only when enabled (stderr is a terminal and --json is off), at most ten
// times a second.
//
// On a terminal that understands escape sequences it is one line redrawn in
// place that always fits the window: it never takes more than the width
// less one column (a full last column would wrap on many terminals), it
// shortens the file name in the middle by display width and drops the
// least needed fields on narrow windows, and it reads the width again at
// every redraw, so a resized window gets a bar of its new size. It is wiped
// when the transfer ends so that results print clean.
//
// On TERM=dumb (or no TERM), where \r and erase cannot be trusted, it prints
// plain lines instead: one each time another tenth is done, so a log or an
// Emacs buffer reads 0%, 10%, ... 100%.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ferry::client {

class ProgressBar {
public:
    ProgressBar(std::string label, bool enabled, std::FILE* out = stderr);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    void update(std::uint64_t done, std::uint64_t total);
    // Clears the line (idempotent).
    void finish();

    // Whether progress belongs on this stderr: a terminal, and not --json.
    static bool wanted(bool json);

    // The redrawn line for a window `columns` wide (without \r and erase):
    // at most columns - 1 columns wide. Public for the tests.
    static std::string line(const std::string& label, std::uint64_t done, std::uint64_t total, double rate,
                            int columns);

private:
    void draw(std::uint64_t done, std::uint64_t total, std::chrono::steady_clock::time_point now);
    int columns() const;

    using Clock = std::chrono::steady_clock;
    std::string label_;
    bool enabled_;
    std::FILE* out_;
    bool plain_;         // TERM=dumb: whole lines, no redraw
    int last_tenth_ = -1; // plain: the last tenth printed
    bool started_ = false;
    bool drawn_ = false;
    Clock::time_point start_time_{};
    Clock::time_point last_draw_{};
    std::uint64_t start_done_ = 0; // a resumed transfer's rate counts only new bytes
};

} // namespace ferry::client
