#include "progress.hpp"

#include "output.hpp"

#include <unistd.h>

#include <array>

namespace ferry::client {

namespace {

constexpr std::chrono::milliseconds kRedrawInterval{100};
constexpr int kBarWidth = 24;

std::string clock_text(double seconds)
{
    if (seconds < 0 || seconds > 99.0 * 3600) {
        return "--:--";
    }
    const auto whole = static_cast<long>(seconds + 0.5);
    std::array<char, 32> text{};
    if (whole >= 3600) {
        std::snprintf(text.data(), text.size(), "%ld:%02ld:%02ld", whole / 3600, (whole / 60) % 60, whole % 60);
    } else {
        std::snprintf(text.data(), text.size(), "%ld:%02ld", whole / 60, whole % 60);
    }
    return text.data();
}

} // namespace

ProgressBar::ProgressBar(std::string label, bool enabled, std::FILE* out)
    : label_(std::move(label)), enabled_(enabled), out_(out)
{
}

ProgressBar::~ProgressBar()
{
    finish();
}

bool ProgressBar::wanted(bool json)
{
    return !json && ::isatty(STDERR_FILENO) == 1;
}

void ProgressBar::update(std::uint64_t done, std::uint64_t total)
{
    if (!enabled_) {
        return;
    }
    const auto now = Clock::now();
    if (!started_) {
        started_ = true;
        start_time_ = now;
        start_done_ = done;
        draw(done, total, now);
        return;
    }
    if (now - last_draw_ < kRedrawInterval && done < total) {
        return;
    }
    draw(done, total, now);
}

void ProgressBar::draw(std::uint64_t done, std::uint64_t total, Clock::time_point now)
{
    last_draw_ = now;
    const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    const int filled = static_cast<int>(fraction * kBarWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kBarWidth, '.');

    const double elapsed = std::chrono::duration<double>(now - start_time_).count();
    const double moved = static_cast<double>(done - start_done_);
    const double rate = elapsed > 0.05 ? moved / elapsed : 0;
    std::string rate_text = "--";
    std::string eta_text = "--:--";
    if (rate > 0) {
        rate_text = human_size(static_cast<std::uint64_t>(rate)) + "/s";
        eta_text = clock_text(static_cast<double>(total - done) / rate);
    }
    // \r and erase-to-end keep one line however long the previous one was.
    std::fprintf(out_, "\r\033[K%s [%s] %3d%% %s / %s  %s  ETA %s", label_.c_str(), bar.c_str(),
                 static_cast<int>(fraction * 100), human_size(done).c_str(), human_size(total).c_str(),
                 rate_text.c_str(), eta_text.c_str());
    std::fflush(out_);
    drawn_ = true;
}

void ProgressBar::finish()
{
    if (drawn_) {
        std::fprintf(out_, "\r\033[K");
        std::fflush(out_);
        drawn_ = false;
    }
}

} // namespace ferry::client
