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
        {"latin in NFC: cafe with U+00E9", "caf\xc3\xa9.txt"},
        {"angstrom as U+00C5, its NFC form", "\xc3\x85ngstr\xc3\xb6m"},
        {"hangul syllables in NFC", "\xed\x95\x9c\xea\xb8\x80.txt"},
        {"greek", "\xce\xb1\xce\xb2\xce\xb3"},
        {"arabic", "\xd9\x85\xd9\x84\xd9\x81.txt"},
        {"combining mark with no precomposed form (q + U+0303)", "q\xcc\x83.txt"},
        {"no-break space U+00A0 (a space, category Zs)", "a\xc2\xa0"
                                                         "b"},
        {"CJK extension B U+20000", "a\xf0\xa0\x80\x80"},
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
        // PROTOCOL.md 5: no character that can make a name pass for another.
        {"C1 control U+009B (CSI)", "a\xc2\x9b"
                                    "31mb"},
        {"C1 control U+0085 (NEL)", "a\xc2\x85"
                                    "b"},
        {"C1 control U+0080", "\xc2\x80"},
        {"right-to-left override U+202E (Cf)", "invoice\xe2\x80\xae"
                                               "fdp.exe"},
        {"left-to-right isolate U+2066 (Cf)", "a\xe2\x81\xa6"
                                              "b"},
        {"zero-width space U+200B (Cf)", "pay\xe2\x80\x8bpal.txt"},
        {"zero-width joiner U+200D (Cf)", "a\xe2\x80\x8d"
                                          "b"},
        {"byte order mark U+FEFF (Cf)", "\xef\xbb\xbf"
                                        "a.txt"},
        {"soft hyphen U+00AD (Cf)", "a\xc2\xad"
                                    "b"},
        {"line separator U+2028 (Zl)", "a\xe2\x80\xa8"
                                       "b"},
        {"paragraph separator U+2029 (Zp)", "a\xe2\x80\xa9"
                                            "b"},
        {"private use U+E000 (Co)", "a\xee\x80\x80"},
        {"private use plane 16 U+10FFFD (Co)", "a\xf4\x8f\xbf\xbd"},
        {"unassigned U+0378 (Cn)", "a\xcd\xb8"},
        {"noncharacter U+FFFF (Cn)", "a\xef\xbf\xbf"},
        {"highest code point U+10FFFF (Cn)", "\xf4\x8f\xbf\xbf"},
        {"hangul filler U+3164 (invisible letter)", "a\xe3\x85\xa4"
                                                    "b"},
        {"hangul choseong filler U+115F (invisible letter)", "a\xe1\x85\x9f"
                                                             "b"},
        {"variation selector U+FE0F (default-ignorable)", "a\xef\xb8\x8f"},
        {"combining grapheme joiner U+034F (default-ignorable)", "a\xcd\x8f"
                                                                 "b"},
        {"cafe in NFD: e + U+0301", "cafe\xcc\x81.txt"},
        {"A + combining ring U+030A (NFD of U+00C5)", "A\xcc\x8angstr\xc3\xb6m"},
        {"angstrom sign U+212B (NFC is U+00C5)", "\xe2\x84\xab"},
        {"ohm sign U+2126 (NFC is U+03A9)", "\xe2\x84\xa6"},
        {"hangul as conjoining jamo (NFD)", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"},
        {"combining marks out of canonical order", "a\xcc\x81\xcc\xa3"},
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

TEST_CASE("a refused character is named by its code point, an NFD name by its NFC form")
{
    const auto rlo = ferry::check_file_name("invoice\xe2\x80\xae"
                                            "fdp.exe");
    REQUIRE(rlo.has_value());
    CHECK(rlo->message.find("U+202E") != std::string::npos);
    const auto csi = ferry::check_file_name("a\xc2\x9b"
                                            "b");
    REQUIRE(csi.has_value());
    CHECK(csi->message.find("U+009B") != std::string::npos);
    const auto nfd = ferry::check_file_name("cafe\xcc\x81.txt");
    REQUIRE(nfd.has_value());
    CHECK(nfd->message.find("NFC") != std::string::npos);
    CHECK(nfd->message.find("\"caf\xc3\xa9.txt\"") != std::string::npos);
    // Both spellings spelled out, so that the pair does not read the same.
    CHECK(nfd->message.find("\"cafe\\u{0301}.txt\"") != std::string::npos);
    CHECK(nfd->message.find("\"caf\\u{00E9}.txt\"") != std::string::npos);
    // The message itself never carries the refused character raw.
    CHECK(rlo->message.find("\xe2\x80\xae") == std::string::npos);
}

TEST_CASE("printable escapes what a terminal would obey or hide, and keeps the rest")
{
    CHECK(ferry::printable("report.pdf") == "report.pdf");
    CHECK(ferry::printable("caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80");
    CHECK(ferry::printable("invoice\xe2\x80\xae"
                           "fdp.exe") == "invoice\\u{202E}fdp.exe");
    CHECK(ferry::printable("a\x1b[2Jb") == "a\\u{001B}[2Jb");
    CHECK(ferry::printable("a\xc2\x9b"
                           "31m") == "a\\u{009B}31m");
    CHECK(ferry::printable("line\nforged") == "line\\u{000A}forged");
    CHECK(ferry::printable("a\xe2\x80\x8b"
                           "b") == "a\\u{200B}b");
    CHECK(ferry::printable("bad \xff byte") == "bad \\xFF byte");
    CHECK(ferry::printable(std::string("nul\0", 4)) == "nul\\u{0000}");
    // An NFD name is shown as it is: it deceives no terminal.
    CHECK(ferry::printable("cafe\xcc\x81") == "cafe\xcc\x81");
}

// ---- paths (protocol version 2, PROTOCOL.md 5.1) -----------------------------

namespace {

// The refusal of `path`, whose message must hold `says`.
void check_path_refused(std::string_view what, const std::string& path, std::string_view says)
{
    INFO(what << ": \"" << ferry::printable(path.substr(0, 80)) << "\"");
    const auto error = ferry::check_path(path);
    REQUIRE(error.has_value());
    CHECK(error->code == ErrorCode::invalid_name);
    CHECK(error->message.find(says) != std::string::npos);
    CHECK(error->message.size() < 400); // bounded, whatever the path's size
}

std::string repeated(std::string_view piece, std::size_t count, std::string_view separator = "/")
{
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            out += separator;
        }
        out += piece;
    }
    return out;
}

} // namespace

TEST_CASE("paths that are accepted")
{
    for (const std::string path : {"a", "report.pdf", "logs/2026/app.log.gz", "a/b/c/d/e", "r\xc3\xa9sum\xc3\xa9/caf\xc3\xa9.txt",
                                   "a..b/c..d", "name./x", " lead/trail ", "\xe6\x97\xa5/\xf0\x9f\x98\x80.png"}) {
        INFO(path);
        CHECK_FALSE(ferry::check_path(path).has_value());
    }
    // The bounds themselves are inside.
    CHECK_FALSE(ferry::check_path(repeated("a", ferry::kMaxPathDepth)).has_value());
    const std::string longest = repeated(std::string(254, 'x'), 16) + "/" + std::string(4095 - 16 * 255, 'y');
    REQUIRE(longest.size() == ferry::kMaxPathBytes);
    CHECK_FALSE(ferry::check_path(longest).has_value());
}

TEST_CASE("paths that are refused: the confinement list of issue 14, at the name level")
{
    CHECK(ferry::kMaxPathBytes == 4095);
    CHECK(ferry::kMaxPathDepth == 64);
    check_path_refused("empty (the root)", "", "empty");
    // '..' in any position, and '.'.
    check_path_refused("'..' alone", "..", "'..'");
    check_path_refused("'..' first", "../etc/passwd", "'..'");
    check_path_refused("'..' inside", "a/../../b", "'..'");
    check_path_refused("'..' last", "a/b/..", "'..'");
    check_path_refused("'.' alone", ".", "'.'");
    check_path_refused("'.' inside", "a/./b", "'.'");
    check_path_refused("'.' last", "a/.", "'.'");
    // Empty components.
    check_path_refused("a//b", "a//b", "empty component");
    check_path_refused("a///b", "a///b", "empty component");
    check_path_refused("trailing '/'", "a/b/", "end with '/'");
    check_path_refused("'/' alone", "/", "start with '/'");
    // Absolute paths.
    check_path_refused("absolute", "/etc/passwd", "start with '/'");
    check_path_refused("absolute, doubled", "//etc", "start with '/'");
    // Backslashes, anywhere: never a separator of another system.
    check_path_refused("backslash", "a\\b", "'\\'");
    check_path_refused("backslash dot-dot", "..\\..\\etc", "'\\'");
    check_path_refused("backslash last", "a/b\\", "'\\'");
    // Hidden components, the server's partials among them.
    check_path_refused("hidden component", "a/.ferry-partial-x", "must not start with '.'");
    check_path_refused("hidden first", ".git/config", "must not start with '.'");
    // Each component follows section 5.
    check_path_refused("control character", "a/b\nc", "U+000A");
    check_path_refused("NUL", std::string("a/b\0c", 5), "U+0000");
    check_path_refused("bidi override", "a/invoice\xe2\x80\xae"
                                        "fdp.exe",
                       "U+202E");
    check_path_refused("NFD", "a/cafe\xcc\x81", "NFC");
    check_path_refused("component over 255 bytes", "a/" + std::string(256, 'x'), "255 bytes");
    check_path_refused("not UTF-8", "a/\xff", "UTF-8");
    // The bounds.
    check_path_refused("depth 65", repeated("a", ferry::kMaxPathDepth + 1), "more than 64 components");
    check_path_refused("depth 1,000", repeated("a", 1000), "more than 64 components");
    check_path_refused("depth 1,000 of '..'", repeated("..", 1000), "more than 64 components");
    check_path_refused("4,096 bytes", std::string(4096, 'a'), "longer than 4095 bytes");
    check_path_refused("a 5,000-byte path", repeated(std::string(99, 'x'), 50), "longer than 4095 bytes");
}

TEST_CASE("a refused component is named, escaped")
{
    const auto error = ferry::check_path("ok/bad\x1b[2J/x");
    REQUIRE(error.has_value());
    CHECK(error->message.find("\"bad\\u{001B}[2J\"") != std::string::npos);
    CHECK(error->message.find('\x1b') == std::string::npos);
}

TEST_CASE("path_components splits a checked path at each '/'")
{
    using Parts = std::vector<std::string_view>;
    CHECK(ferry::path_components("a") == Parts{"a"});
    CHECK(ferry::path_components("logs/2026/app.log") == Parts{"logs", "2026", "app.log"});
    CHECK(ferry::path_components("r\xc3\xa9/s") == Parts{"r\xc3\xa9", "s"});
    CHECK(ferry::path_components(repeated("a", 64)).size() == 64);
}
