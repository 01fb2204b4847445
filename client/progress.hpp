// A one-line progress bar on stderr: bytes done, rate and time left. Drawn
// only when enabled (stderr is a terminal and --json is off), at most ten
// times a second, and wiped when the transfer ends so results print clean.
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

    // Whether a bar belongs on this stderr: a terminal, and not --json.
    static bool wanted(bool json);

private:
    void draw(std::uint64_t done, std::uint64_t total, std::chrono::steady_clock::time_point now);

    using Clock = std::chrono::steady_clock;
    std::string label_;
    bool enabled_;
    std::FILE* out_;
    bool started_ = false;
    bool drawn_ = false;
    Clock::time_point start_time_{};
    Clock::time_point last_draw_{};
    std::uint64_t start_done_ = 0; // a resumed transfer's rate counts only new bytes
};

} // namespace ferry::client
