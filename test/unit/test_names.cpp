// The file-name rules of docs/PROTOCOL.md section 5, as a table: this file is
// the executable form of that section.
#include "names.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using ferry::ErrorCode;

namespace {

struct Case {
    std::string_view what;
    std::string name;
};

// Builds a string that may hold NUL bytes.
std::string bytes(const char* data, std::size_t size)
{
    return std::string(data, size);
}

// n bytes of valid UTF-8 made of 3-byte characters (n a multiple of 3).
std::string kanji_bytes(std::size_t n)
{
    std::string out;
    while (out.size() < n) {
        out += "\xe6\x97\xa5"; // U+65E5
    }
    return out;
}

} // namespace

TEST_CASE("file names that are accepted")
{
    const std::vector<Case> accepted{
        {"plain ascii", "report.pdf"},
        {"single character", "a"},
        {"no extension", "README"},
        {"space inside", "my report 2024.pdf"},
        {"trailing space", "notes "},
        {"leading space", " notes"},
        {"dots inside", "a.b.c"},
        {"trailing dot", "name."},
        {"double dot inside", "a..b"},
        {"leading dash", "-dash"},
        {"underscore and tilde", "_draft~"},
        {"punctuation", "a'b\"c(d)[e]{f}!@#$%^&*+=,;:?<>|`"},
        {"latin with accents", "r\xc3\xa9sum\xc3\xa9.pdf"},
        {"japanese", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt"},
        {"emoji", "\xf0\x9f\x98\x80.png"},
        {"highest code point U+10FFFF", "\xf4\x8f\xbf\xbf"},
        {"U+FFFD", "\xef\xbf\xbd"},
        {"exactly 255 ascii bytes", std::string(255, 'a')},
        {"exactly 255 bytes of 3-byte characters", kanji_bytes(255)},
        {"254 bytes plus a 1-byte character", std::string(254, 'b') + "c"},
    };
    for (const auto& entry : accepted) {
        INFO(entry.what << ": " << entry.name);
        const auto error = ferry::check_file_name(entry.name);
        CHECK_FALSE(error.has_value());
    }
}

TEST_CASE("file names that are refused with invalid_name")
{
    const std::vector<Case> refused{
        {"empty", ""},
        {"dot", "."},
        {"dot dot", ".."},
        {"hidden", ".hidden"},
        {"server partial file", ".ferry-partial-9f2c"},
        {"slash inside", "a/b"},
        {"absolute path", "/etc/passwd"},
        {"trailing slash", "a/"},
        {"lone slash", "/"},
        {"parent path", "../x"},
        {"backslash inside", "a\\b"},
        {"windows parent path", "..\\x"},
        {"lone backslash", "\\"},
        {"NUL inside", bytes("a\0b", 3)},
        {"NUL at the end", bytes("ab\0", 3)},
        {"lone NUL", bytes("\0", 1)},
        {"newline", "\n"},
        {"newline inside", "a\nb"},
        {"carriage return", "a\rb"},
        {"tab", "a\tb"},
        {"escape", "a\x1b[31m"},
        {"unit separator U+001F", "a\x1f"},
        {"DEL", "\x7f"},
        {"DEL inside", "a\x7f"
                       "b"},
        {"256 ascii bytes", std::string(256, 'a')},
        {"258 bytes of 3-byte characters", kanji_bytes(258)},
        {"much too long", std::string(4096, 'x')},
        {"lone continuation byte 0x80", "\x80"},
        {"continuation byte inside", "a\x80"
                                     "b"},
        {"truncated 2-byte sequence 0xC3", "\xc3"},
        {"truncated 2-byte sequence inside", "r\xc3sum"},
        {"truncated 3-byte sequence", "\xe6\x97"},
        {"truncated 4-byte sequence", "\xf0\x9f\x98"},
        {"overlong slash 0xC0 0xAF", "\xc0\xaf"},
        {"overlong NUL 0xC0 0x80", "\xc0\x80"},
        {"overlong 3-byte slash", "\xe0\x80\xaf"},
        {"overlong 4-byte slash", "\xf0\x80\x80\xaf"},
        {"high surrogate ED A0 80", "\xed\xa0\x80"},
        {"low surrogate ED BF BF", "\xed\xbf\xbf"},
        {"above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80"},
        {"lead byte F5", "\xf5\x80\x80\x80"},
        {"byte 0xFF", "\xff"},
        {"byte 0xFE", "a\xfe"},
        {"5-byte lead F8", "\xf8\x88\x80\x80\x80"},
        {"invalid UTF-8 after a leading dot", ".\xff"},
    };
    for (const auto& entry : refused) {
        INFO(entry.what);
        const auto error = ferry::check_file_name(entry.name);
        REQUIRE(error.has_value());
        CHECK(error->code == ErrorCode::invalid_name);
        CHECK_FALSE(error->message.empty());
    }
}

TEST_CASE("the 255-byte limit counts bytes, not characters")
{
    CHECK(ferry::kMaxNameBytes == 255);
    // 85 three-byte characters: 255 bytes, accepted; one more ascii byte is too many.
    CHECK_FALSE(ferry::check_file_name(kanji_bytes(255)).has_value());
    CHECK(ferry::check_file_name(kanji_bytes(255) + "a").has_value());
    // 64 four-byte emoji are 256 bytes though only 64 characters.
    std::string emoji;
    for (int i = 0; i < 64; ++i) {
        emoji += "\xf0\x9f\x98\x80";
    }
    REQUIRE(emoji.size() == 256);
    CHECK(ferry::check_file_name(emoji).has_value());
    CHECK_FALSE(ferry::check_file_name(emoji.substr(4)).has_value());
}

TEST_CASE("is_valid_utf8")
{
    SUBCASE("valid")
    {
        CHECK(ferry::is_valid_utf8(""));
        CHECK(ferry::is_valid_utf8("plain ascii"));
        CHECK(ferry::is_valid_utf8(bytes("nul\0inside", 10)));
        CHECK(ferry::is_valid_utf8("\x7f"));
        CHECK(ferry::is_valid_utf8("\xc2\x80"));         // U+0080, smallest 2-byte
        CHECK(ferry::is_valid_utf8("\xdf\xbf"));         // U+07FF, largest 2-byte
        CHECK(ferry::is_valid_utf8("\xe0\xa0\x80"));     // U+0800, smallest 3-byte
        CHECK(ferry::is_valid_utf8("\xed\x9f\xbf"));     // U+D7FF, just below the surrogates
        CHECK(ferry::is_valid_utf8("\xee\x80\x80"));     // U+E000, just above them
        CHECK(ferry::is_valid_utf8("\xef\xbf\xbf"));     // U+FFFF
        CHECK(ferry::is_valid_utf8("\xf0\x90\x80\x80")); // U+10000, smallest 4-byte
        CHECK(ferry::is_valid_utf8("\xf4\x8f\xbf\xbf")); // U+10FFFF, largest
        CHECK(ferry::is_valid_utf8("r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"));
    }
    SUBCASE("invalid")
    {
        CHECK_FALSE(ferry::is_valid_utf8("\x80"));
        CHECK_FALSE(ferry::is_valid_utf8("\xbf"));
        CHECK_FALSE(ferry::is_valid_utf8("\xc3"));
        CHECK_FALSE(ferry::is_valid_utf8("\xc3"
                                         "A"));
        CHECK_FALSE(ferry::is_valid_utf8("\xc3\xc3\xa9"));
        CHECK_FALSE(ferry::is_valid_utf8("\xe6\x97"));
        CHECK_FALSE(ferry::is_valid_utf8("\xe6\x97"
                                         "a"));
        CHECK_FALSE(ferry::is_valid_utf8("\xf0\x9f\x98"));
        CHECK_FALSE(ferry::is_valid_utf8("\xc0\xaf"));                 // overlong '/'
        CHECK_FALSE(ferry::is_valid_utf8("\xc1\xbf"));                 // overlong U+007F
        CHECK_FALSE(ferry::is_valid_utf8("\xe0\x9f\xbf"));             // overlong U+07FF
        CHECK_FALSE(ferry::is_valid_utf8("\xf0\x8f\xbf\xbf"));         // overlong U+FFFF
        CHECK_FALSE(ferry::is_valid_utf8("\xed\xa0\x80"));             // U+D800
        CHECK_FALSE(ferry::is_valid_utf8("\xed\xbf\xbf"));             // U+DFFF
        CHECK_FALSE(ferry::is_valid_utf8("\xed\xa0\xbd\xed\xb8\x80")); // CESU-8 pair for an emoji
        CHECK_FALSE(ferry::is_valid_utf8("\xf4\x90\x80\x80"));         // U+110000
        CHECK_FALSE(ferry::is_valid_utf8("\xf7\xbf\xbf\xbf"));
        CHECK_FALSE(ferry::is_valid_utf8("\xf8\x88\x80\x80\x80"));
        CHECK_FALSE(ferry::is_valid_utf8("\xfc\x84\x80\x80\x80\x80"));
        CHECK_FALSE(ferry::is_valid_utf8("\xfe"));
        CHECK_FALSE(ferry::is_valid_utf8("\xff"));
        CHECK_FALSE(ferry::is_valid_utf8("valid then \xff"));
        CHECK_FALSE(ferry::is_valid_utf8("\xe6\x97\xa5\xe6\x97")); // good character then a cut one
    }
    SUBCASE("a view that ends inside a character is invalid even if the buffer goes on")
    {
        const std::string_view emoji = "x\xf0\x9f\x98\x80";
        CHECK(ferry::is_valid_utf8(emoji));
        CHECK(ferry::is_valid_utf8(emoji.substr(0, 1)));
        CHECK_FALSE(ferry::is_valid_utf8(emoji.substr(0, 2)));
        CHECK_FALSE(ferry::is_valid_utf8(emoji.substr(0, 3)));
        CHECK_FALSE(ferry::is_valid_utf8(emoji.substr(0, 4)));
        const std::string_view accent = "\xc3\xa9";
        CHECK_FALSE(ferry::is_valid_utf8(accent.substr(0, 1)));
        CHECK(ferry::check_file_name(accent.substr(0, 1)).has_value());
    }
}
