#include "progress.hpp"

#include "output.hpp"
#include "text_width.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ferry::client {

namespace {

constexpr std::chrono::milliseconds kRedrawInterval{100};
constexpr int kBarWidth = 24;    // the bar's inside, when there is room
constexpr int kMinBarWidth = 5;  // narrower than this says nothing: dropped
constexpr int kMinNameWidth = 12; // what the name keeps before fields are dropped
constexpr int kDefaultColumns = 80;

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

std::string percent_text(std::uint64_t done, std::uint64_t total)
{
    const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    std::array<char, 16> text{};
    std::snprintf(text.data(), text.size(), "%3d%%", static_cast<int>(fraction * 100));
    return text.data();
}

// Terminals without cursor control (TERM=dumb, Emacs' shell buffers) or an
// unknown one: \r and "erase to end of line" cannot be trusted.
bool plain_terminal()
{
    const char* term = std::getenv("TERM");
    return term == nullptr || *term == '\0' || std::strcmp(term, "dumb") == 0;
}

// human_size's widest ("1023.9 KiB") and a rate's ("1023.9 KiB/s").
constexpr std::size_t kSizeWidth = 10;
constexpr std::size_t kRateWidth = 12;

std::string pad_left(const std::string& ascii, std::size_t width)
{
    return ascii.size() >= width ? ascii : std::string(width - ascii.size(), ' ') + ascii;
}

int width_of(std::string_view ascii)
{
    return static_cast<int>(ascii.size());
}

} // namespace

ProgressBar::ProgressBar(std::string label, bool enabled, std::FILE* out)
    : label_(std::move(label)), enabled_(enabled), out_(out), plain_(plain_terminal())
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

// Asked of the terminal at every redraw rather than kept from a SIGWINCH
// handler: one ioctl ten times a second costs nothing, and no handler has to
// be shared with libedit's own.
int ProgressBar::columns() const
{
    winsize size{};
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
        return size.ws_col;
    }
    if (const char* from_env = std::getenv("COLUMNS"); from_env != nullptr) {
        const int columns = std::atoi(from_env);
        if (columns > 0) {
            return columns;
        }
    }
    return kDefaultColumns;
}

std::string ProgressBar::line(const std::string& label, std::uint64_t done, std::uint64_t total, double rate,
                              int columns)
{
    const int room = columns - 1;
    if (room <= 0) {
        return {};
    }
    std::string rate_text = "--";
    std::string eta_text = "--:--";
    if (rate > 0) {
        rate_text = human_size(static_cast<std::uint64_t>(rate)) + "/s";
        eta_text = clock_text(static_cast<double>(total - done) / rate);
    }
    // The fields after the name and bar, each with its separator, in the
    // order they are dropped when the window is narrow: the sizes first,
    // then the rate, then the time left; the percentage stays. Each is
    // padded to the widest it gets, so that the name and the bar keep
    // their place from one redraw to the next.
    std::vector<std::string> fields{" " + percent_text(done, total),
                                    " " + pad_left(human_size(done), kSizeWidth) + " / " + human_size(total),
                                    "  " + pad_left(rate_text, kRateWidth), "  ETA " + pad_left(eta_text, 5)};
    const auto fields_width = [&] {
        int width = 0;
        for (const auto& field : fields) {
            width += width_of(field);
        }
        return width;
    };
    const int name_width = static_cast<int>(display_width(label));
    const int name_min = std::min(name_width, kMinNameWidth);
    const int bar_min = kMinBarWidth + 3; // " [" and "]"
    while (fields.size() > 1 && name_min + bar_min + fields_width() > room) {
        fields.erase(fields.begin() + 1);
    }
    if (fields_width() > room) {
        fields = {percent_text(done, total)}; // no room for even a name
        if (fields_width() > room) {
            return {};
        }
    }
    const int rest = room - fields_width();
    int bar_width = 0;
    if (rest >= name_min + bar_min) {
        // The bar takes what the whole name leaves, up to its full width;
        // when that is too little, the name gives way down to its minimum.
        bar_width = std::min(kBarWidth, rest - name_width - 3);
        if (bar_width < kMinBarWidth) {
            bar_width = std::min(kBarWidth, rest - name_min - 3);
        }
    }
    const int name_room = rest - (bar_width > 0 ? bar_width + 3 : 0);
    std::string out = fit_middle(label, static_cast<std::size_t>(std::max(name_room, 0)));
    if (bar_width > 0) {
        const double fraction = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
        const int filled = static_cast<int>(fraction * bar_width);
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(static_cast<std::size_t>(bar_width), '.');
        out += " [" + bar + "]";
    }
    for (const auto& field : fields) {
        out += field;
    }
    // With no name shown the line would start with a separator.
    return out.substr(std::min(out.find_first_not_of(' '), out.size()));
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
    // Plain lines come at each tenth (draw() tells), however fast: the
    // redraw interval would skip tenths of a fast transfer (a new user's
    // trial, round 72, saw 0%, 16%, 32%...).
    if (!plain_ && now - last_draw_ < kRedrawInterval && done < total) {
        return;
    }
    draw(done, total, now);
}

void ProgressBar::draw(std::uint64_t done, std::uint64_t total, Clock::time_point now)
{
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_time_).count();
    const double moved = static_cast<double>(done - start_done_);
    const double rate = elapsed > 0.05 ? moved / elapsed : 0;
    if (plain_) {
        const int tenth = total == 0 ? 10 : static_cast<int>(done * 10 / total);
        if (tenth <= last_tenth_) {
            return;
        }
        last_tenth_ = tenth;
        std::string rate_text;
        if (rate > 0) {
            rate_text = "  " + human_size(static_cast<std::uint64_t>(rate)) + "/s";
        }
        std::fprintf(out_, "%s: %s %s / %s%s\n", printable(label_).c_str(), percent_text(done, total).c_str(),
                     human_size(done).c_str(), human_size(total).c_str(), rate_text.c_str());
        std::fflush(out_);
        return;
    }
    // \r and erase-to-end keep one line however long the previous one was.
    std::fprintf(out_, "\r\033[K%s", line(label_, done, total, rate, columns()).c_str());
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
