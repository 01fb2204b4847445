#include "names.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace ferry {

namespace {

const auto* as_bytes(std::string_view text)
{
    return reinterpret_cast<const utf8proc_uint8_t*>(text.data());
}

// Plain printable ASCII needs no Unicode tables: every such name is NFC and
// has no character the rule refuses. Most names are, and list checks each.
bool is_printable_ascii(std::string_view text)
{
    for (const char c : text) {
        if (c < 0x20 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

std::string code_point_text(std::int32_t code_point)
{
    char text[16];
    std::snprintf(text, sizeof text, "U+%04X", static_cast<unsigned>(code_point));
    return text;
}

// `text` with every code point past ASCII (and every ASCII control) as
// \u{XXXX}: two spellings of one text, which look alike on a terminal
// (an NFC name and its NFD twin), read differently this way.
std::string spelled_out(std::string_view text)
{
    std::string out;
    char escape[16];
    for (std::size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x20 && byte < 0x7F) {
            out += text[i++];
            continue;
        }
        utf8proc_int32_t code_point = 0;
        const auto length =
            utf8proc_iterate(as_bytes(text.substr(i)), static_cast<utf8proc_ssize_t>(text.size() - i), &code_point);
        if (length <= 0 || code_point < 0) {
            std::snprintf(escape, sizeof escape, "\\x%02X", static_cast<unsigned>(byte));
            out += escape;
            ++i;
            continue;
        }
        std::snprintf(escape, sizeof escape, "\\u{%04X}", static_cast<unsigned>(code_point));
        out += escape;
        i += static_cast<std::size_t>(length);
    }
    return out;
}

// Why a code point has no place in a name (PROTOCOL.md 5), if it has none:
// what it is, for the error message.
std::optional<std::string> deceptive_character_kind(std::int32_t code_point)
{
    const utf8proc_property_t* property = utf8proc_get_property(code_point);
    switch (property->category) {
    case UTF8PROC_CATEGORY_CC:
        return "a control character";
    case UTF8PROC_CATEGORY_CF:
        return "an invisible format character (such as a bidirectional override or a zero-width space)";
    case UTF8PROC_CATEGORY_ZL:
        return "a line separator";
    case UTF8PROC_CATEGORY_ZP:
        return "a paragraph separator";
    case UTF8PROC_CATEGORY_CS:
        return "a surrogate";
    case UTF8PROC_CATEGORY_CO:
        return "a private-use character";
    case UTF8PROC_CATEGORY_CN:
        return std::string("a code point that Unicode ") + utf8proc_unicode_version() + " leaves unassigned";
    default:
        break;
    }
    if (property->ignorable) {
        return "an invisible (default-ignorable) character";
    }
    return std::nullopt;
}

} // namespace

bool is_valid_utf8(std::string_view text)
{
    // utf8proc refuses overlong forms, surrogates and values past U+10FFFF.
    std::size_t i = 0;
    while (i < text.size()) {
        utf8proc_int32_t code_point = 0;
        const auto length =
            utf8proc_iterate(as_bytes(text.substr(i)), static_cast<utf8proc_ssize_t>(text.size() - i), &code_point);
        if (length <= 0 || code_point < 0) {
            return false;
        }
        i += static_cast<std::size_t>(length);
    }
    return true;
}

std::optional<std::string> nfc_form(std::string_view text)
{
    utf8proc_uint8_t* composed = nullptr;
    const auto length = utf8proc_map(as_bytes(text), static_cast<utf8proc_ssize_t>(text.size()), &composed,
                                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(composed, &std::free);
    if (length < 0) {
        return std::nullopt;
    }
    return std::string(reinterpret_cast<const char*>(composed), static_cast<std::size_t>(length));
}

std::optional<Error> check_file_name(std::string_view name)
{
    if (name.empty()) {
        return Error{ErrorCode::invalid_name, "file name is empty"};
    }
    if (name.size() > kMaxNameBytes) {
        return Error{ErrorCode::invalid_name, "file name is longer than 255 bytes"};
    }
    if (!is_valid_utf8(name)) {
        return Error{ErrorCode::invalid_name, "file name is not valid UTF-8"};
    }
    if (name.front() == '.') {
        return Error{ErrorCode::invalid_name, "file name must not start with '.'"};
    }
    for (const char c : name) {
        if (c == '/' || c == '\\') {
            return Error{ErrorCode::invalid_name, "file name must not contain '/' or '\\'"};
        }
    }
    if (is_printable_ascii(name)) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < name.size();) {
        utf8proc_int32_t code_point = 0;
        i += static_cast<std::size_t>(
            utf8proc_iterate(as_bytes(name.substr(i)), static_cast<utf8proc_ssize_t>(name.size() - i), &code_point));
        if (const auto kind = deceptive_character_kind(code_point)) {
            return Error{ErrorCode::invalid_name,
                         "file name contains " + code_point_text(code_point) + ", " + *kind +
                             "; names must not hold characters that can hide or disguise text (PROTOCOL.md section 5)"};
        }
    }
    // Two spellings of one text (é as one code point or as e and a combining
    // accent) would be two files that look the same.
    const auto nfc = nfc_form(name);
    if (!nfc) {
        return Error{ErrorCode::invalid_name, "file name cannot be normalized"};
    }
    if (*nfc != name) {
        // Both spellings spelled out: on a terminal they look the same.
        return Error{ErrorCode::invalid_name, "file name is not in Unicode normalization form C (NFC): it is \"" +
                                                  spelled_out(name) + "\"; written in NFC it is \"" +
                                                  *nfc + "\" (\"" + spelled_out(*nfc) + "\")"};
    }
    return std::nullopt;
}

std::optional<Error> check_path(std::string_view path)
{
    const auto refuse = [](std::string message) { return Error{ErrorCode::invalid_name, std::move(message)}; };
    if (path.empty()) {
        return refuse("path is empty");
    }
    // The bounds first, so a huge path costs no more than a count.
    if (path.size() > kMaxPathBytes) {
        return refuse("path is longer than " + std::to_string(kMaxPathBytes) + " bytes (" +
                      std::to_string(path.size()) + ")");
    }
    const auto depth = static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) + 1;
    if (depth > kMaxPathDepth) {
        return refuse("path has more than " + std::to_string(kMaxPathDepth) + " components (" +
                      std::to_string(depth) + ")");
    }
    if (path.front() == '/') {
        return refuse("path must not start with '/': paths are relative to the served folder");
    }
    if (path.back() == '/') {
        return refuse("path must not end with '/'");
    }
    if (path.find('\\') != std::string_view::npos) {
        return refuse("path must not contain '\\' (the separator is '/')");
    }
    for (const auto component : path_components(path)) {
        if (component.empty()) {
            return refuse("path must not contain an empty component ('//')");
        }
        if (component == "..") {
            return refuse("path must not contain a '..' component");
        }
        if (component == ".") {
            return refuse("path must not contain a '.' component");
        }
        if (auto error = check_file_name(component)) {
            error->message = "path component \"" + printable(component) + "\": " + error->message;
            return error;
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> path_components(std::string_view path)
{
    std::vector<std::string_view> components;
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) {
            components.push_back(path.substr(start));
            return components;
        }
        components.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
}

std::string printable(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    char escape[16];
    for (std::size_t i = 0; i < text.size();) {
        utf8proc_int32_t code_point = 0;
        const auto length =
            utf8proc_iterate(as_bytes(text.substr(i)), static_cast<utf8proc_ssize_t>(text.size() - i), &code_point);
        if (length <= 0 || code_point < 0) {
            std::snprintf(escape, sizeof escape, "\\x%02X", static_cast<unsigned char>(text[i]));
            out += escape;
            ++i;
            continue;
        }
        const auto step = static_cast<std::size_t>(length);
        if (deceptive_character_kind(code_point)) {
            std::snprintf(escape, sizeof escape, "\\u{%04X}", static_cast<unsigned>(code_point));
            out += escape;
        } else {
            out.append(text.substr(i, step));
        }
        i += step;
    }
    return out;
}

std::string quoted(std::string_view text)
{
    return "\"" + printable(text) + "\"";
}

std::size_t code_point_cut(std::string_view text, std::size_t most)
{
    std::size_t cut = std::min(most, text.size());
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
        --cut; // a UTF-8 continuation byte: back to its code point's start
    }
    return cut;
}

std::string quoted_excerpt(std::string_view text, std::size_t max_bytes)
{
    if (text.size() <= max_bytes) {
        return quoted(text);
    }
    return "\"" + printable(text.substr(0, code_point_cut(text, max_bytes))) + "...\" (" + std::to_string(text.size()) +
           " bytes)";
}

} // namespace ferry
