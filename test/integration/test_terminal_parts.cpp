// The terminal's pure parts, without a server or a terminal: display widths,
// the progress line at every window width, and the shell's quoting as Tab
// completion writes it (test/terminal runs them on a pseudo-terminal).
#include "progress.hpp"
#include "shell_words.hpp"
#include "text_width.hpp"

#include <doctest/doctest.h>

#include <clocale>
#include <string>
#include <vector>

using namespace ferry::client;

namespace {

// The tests measure with the UTF-8 ellipsis, whatever locale they run in.
class Utf8Locale {
public:
    Utf8Locale() : previous_(std::setlocale(LC_CTYPE, nullptr)) { std::setlocale(LC_CTYPE, "C.UTF-8"); }
    ~Utf8Locale() { std::setlocale(LC_CTYPE, previous_.c_str()); }
    Utf8Locale(const Utf8Locale&) = delete;
    Utf8Locale& operator=(const Utf8Locale&) = delete;

private:
    std::string previous_;
};

const std::vector<std::string> kNames{
    "a.bin",
    "quarterly-report-of-the-northern-region-final-version-2.tar.gz",
    "\u56db\u534a\u671f\u58f2\u4e0a\u5831\u544a\u66f8-\u6700\u7d42\u7248.bin", // two columns each
    "cafe\u0301-e\u0301te\u0301-menu-with-accents.txt",                       // combining accents
    "evil\x1b[2J\rname.txt",                                                    // control characters
    "not-utf8-\xff\xfe.bin",
    "",
};

} // namespace

TEST_CASE("display width counts columns, not bytes, and shows control characters as ?")
{
    CHECK(display_width("abc") == 3);
    CHECK(display_width("\u56db\u534a") == 4);
    CHECK(display_width("e\u0301") == 1);
    CHECK(printable("a\x1b[2Jb\r") == "a?[2Jb?");
    CHECK(printable("x\xffy") == "x?y");
    CHECK(display_width("x\xffy") == 3);
}

TEST_CASE("a name shortened in the middle keeps its start and end, whole characters only")
{
    Utf8Locale utf8;
    CHECK(fit_middle("abcdefghij", 20) == "abcdefghij");
    CHECK(fit_middle("abcdefghij", 5) == "ab\u2026ij");
    CHECK(fit_middle("\u56db\u534a\u671f\u58f2\u4e0a", 6) == "\u56db\u2026\u4e0a"); // 5: a wide one would not fit
    CHECK(fit_middle("\u56db\u534a\u671f\u58f2\u4e0a", 7) == "\u56db\u2026\u58f2\u4e0a");
    // An accent stays with its letter.
    CHECK(fit_middle("e\u0301e\u0301e\u0301e\u0301e\u0301", 3) == "e\u0301\u2026e\u0301");
    for (const auto& name : kNames) {
        for (std::size_t columns = 0; columns < 70; ++columns) {
            CAPTURE(name);
            CAPTURE(columns);
            CHECK(display_width(fit_middle(name, columns)) <= columns);
        }
    }
}

TEST_CASE("the progress line fits every window width")
{
    Utf8Locale utf8;
    const std::uint64_t total = 5ULL << 30;
    for (const auto& name : kNames) {
        for (int columns = 1; columns <= 200; ++columns) {
            for (const std::uint64_t done : {std::uint64_t{0}, total / 3, total}) {
                for (const double rate : {0.0, 1e3, 123e6}) {
                    const auto line = ProgressBar::line(name, done, total, rate, columns);
                    CAPTURE(name);
                    CAPTURE(columns);
                    CAPTURE(line);
                    CHECK(display_width(line) <= static_cast<std::size_t>(columns - 1));
                    CHECK(line.find_first_of("\r\n\x1b") == std::string::npos);
                    if (columns >= 8) {
                        CHECK(line.find('%') != std::string::npos); // the percentage stays
                    }
                }
            }
        }
    }
    // With room, everything shows and the whole name too.
    const auto wide = ProgressBar::line(kNames[1], total / 2, total, 123e6, 200);
    CHECK(wide.find(kNames[1]) != std::string::npos);
    CHECK(wide.find("ETA") != std::string::npos);
    CHECK(wide.find("/s") != std::string::npos);
}

TEST_CASE("what completion writes, the shell reads back as the name")
{
    const std::vector<std::string> names{"plain.txt", "my file.txt", "it's.txt", "a\"b\\c.txt",
                                         "tab\there",  "$HOME*.txt",  "  lead"};
    for (const auto& name : names) {
        for (const char quote : {'\0', '\'', '"'}) {
            for (std::size_t typed = 0; typed <= name.size(); ++typed) {
                CAPTURE(name);
                CAPTURE(quote);
                CAPTURE(typed);
                // How someone would have typed the first characters.
                std::string line = "get ";
                PartialWord opening;
                if (quote != '\0') {
                    line += quote;
                    opening.quote = quote;
                }
                line += continue_word(opening, name.substr(0, typed), false);
                const PartialWord word = partial_word(line);
                CHECK(word.before == std::vector<std::string>{"get"});
                CHECK(word.start == 4);
                CHECK(word.value == name.substr(0, typed));
                if (typed > 0 || quote != '\0') {
                    CHECK(word.quote == quote);
                }
                const std::string completed = line + continue_word(word, name.substr(typed), true) + " ";
                CHECK(split_words(completed) == std::vector<std::string>{"get", name});
            }
        }
    }
    // A line ending in a blank starts a new, empty word.
    const PartialWord fresh = partial_word("get a ");
    CHECK(fresh.before == std::vector<std::string>{"get", "a"});
    CHECK(fresh.start == 6);
    CHECK(fresh.value.empty());
    // Outside quotes, a blank is escaped with a backslash.
    CHECK(continue_word(partial_word("get my"), " file.txt", true) == "\\ file.txt");
    CHECK(continue_word(partial_word("get \"my"), " file.txt", true) == " file.txt\"");
    CHECK(continue_word(partial_word("get 'it"), "'s.txt", true) == "'\\''s.txt'");
}
