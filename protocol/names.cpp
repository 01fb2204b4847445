#include "names.hpp"

#include <cstdint>

namespace ferry {

bool is_valid_utf8(std::string_view text)
{
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<std::uint8_t>(text[i]);
        std::size_t length = 0;
        std::uint32_t code_point = 0;
        if (lead < 0x80) {
            ++i;
            continue;
        }
        if ((lead & 0xE0) == 0xC0) {
            length = 2;
            code_point = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            code_point = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            code_point = lead & 0x07;
        } else {
            return false;
        }
        if (i + length > text.size()) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<std::uint8_t>(text[i + k]);
            if ((next & 0xC0) != 0x80) {
                return false;
            }
            code_point = (code_point << 6) | (next & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
        const bool overlong = (length == 2 && code_point < 0x80) || (length == 3 && code_point < 0x800) ||
                              (length == 4 && code_point < 0x10000);
        if (overlong || (code_point >= 0xD800 && code_point <= 0xDFFF) || code_point > 0x10FFFF) {
            return false;
        }
        i += length;
    }
    return true;
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
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
            return Error{ErrorCode::invalid_name, "file name must not contain control characters or NUL"};
        }
    }
    return std::nullopt;
}

} // namespace ferry
