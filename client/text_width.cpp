#include "text_width.hpp"

#include <langinfo.h>
#include <utf8proc.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace ferry::client {

namespace {

// One grapheme cluster of the printable form: its bytes and its columns.
struct Grapheme {
    std::string bytes;
    std::size_t width = 0;
};

std::vector<Grapheme> graphemes(std::string_view text)
{
    std::vector<Grapheme> out;
    utf8proc_int32_t previous = -1;
    utf8proc_int32_t state = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        utf8proc_int32_t codepoint = 0;
        const auto used = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + at),
                                           static_cast<utf8proc_ssize_t>(text.size() - at), &codepoint);
        std::string bytes;
        int width = 1;
        const bool replaced = used <= 0 || utf8proc_category(codepoint) == UTF8PROC_CATEGORY_CC;
        if (replaced) {
            // A stray byte or a control character: one '?', its own cluster.
            at += used <= 0 ? 1 : static_cast<std::size_t>(used);
            bytes = "?";
            state = 0;
        } else {
            bytes.assign(text.substr(at, static_cast<std::size_t>(used)));
            at += static_cast<std::size_t>(used);
            width = utf8proc_charwidth(codepoint);
        }
        const bool starts_cluster =
            replaced || previous < 0 || utf8proc_grapheme_break_stateful(previous, codepoint, &state);
        if (starts_cluster) {
            out.push_back(Grapheme{std::move(bytes), static_cast<std::size_t>(width > 0 ? width : 0)});
        } else {
            out.back().bytes += bytes;
            out.back().width += static_cast<std::size_t>(width > 0 ? width : 0);
        }
        previous = replaced ? -1 : codepoint;
    }
    return out;
}

// The locale's character set decides whether "…" can be shown at all.
std::string_view ellipsis()
{
    const char* codeset = ::nl_langinfo(CODESET);
    return codeset != nullptr && std::strcmp(codeset, "UTF-8") == 0 ? "\u2026" : "...";
}

} // namespace

std::string printable(std::string_view text)
{
    std::string out;
    for (const auto& grapheme : graphemes(text)) {
        out += grapheme.bytes;
    }
    return out;
}

std::size_t display_width(std::string_view text)
{
    std::size_t width = 0;
    for (const auto& grapheme : graphemes(text)) {
        width += grapheme.width;
    }
    return width;
}

std::string fit_middle(std::string_view text, std::size_t columns)
{
    const auto clusters = graphemes(text);
    std::size_t total = 0;
    for (const auto& grapheme : clusters) {
        total += grapheme.width;
    }
    std::string out;
    if (total <= columns) {
        for (const auto& grapheme : clusters) {
            out += grapheme.bytes;
        }
        return out;
    }
    const std::string_view mark = ellipsis();
    const std::size_t mark_width = mark.size() == 3 && mark[0] == '.' ? 3 : 1;
    if (columns <= mark_width) {
        return std::string(columns, '.');
    }
    // The end of a name (its extension, a number) tells files apart as much
    // as its start: keep both halves.
    const std::size_t room = columns - mark_width;
    const std::size_t head_room = (room + 1) / 2;
    std::size_t head_width = 0;
    std::size_t head = 0;
    while (head < clusters.size() && head_width + clusters[head].width <= head_room) {
        head_width += clusters[head].width;
        ++head;
    }
    std::size_t tail_width = 0;
    std::size_t tail = clusters.size();
    while (tail > head && tail_width + clusters[tail - 1].width <= room - head_width) {
        tail_width += clusters[tail - 1].width;
        --tail;
    }
    for (std::size_t i = 0; i < head; ++i) {
        out += clusters[i].bytes;
    }
    out += mark;
    for (std::size_t i = tail; i < clusters.size(); ++i) {
        out += clusters[i].bytes;
    }
    return out;
}

} // namespace ferry::client
