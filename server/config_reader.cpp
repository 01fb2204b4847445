#include "config_reader.hpp"

#include "file_trust.hpp"

#include "operator_file.hpp"

#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace ferry::server {

namespace {

// CLI11 strips a quote only when the value both starts and ends with it, so
// an opening quote still in front of a value was never closed.
bool opens_unclosed_quote(const std::string& value)
{
    if (value.empty() || (value.front() != '"' && value.front() != '\'' && value.front() != '`')) {
        return false;
    }
    return value.size() < 2 || value.back() != value.front();
}

// Where the value of a `key = value` line begins: its first byte past the
// '=' that is no space or tab (npos: no '=', or nothing after it).
std::size_t value_start(const std::string& line)
{
    const auto equals = line.find('=');
    return line.find_first_not_of(" \t", equals == std::string::npos ? line.size() : equals + 1);
}

// `line` without the blanks that end it. A line of a file written on
// Windows ends in CR (and a stray one may end in more, or in a vertical tab
// or form feed), which toml++ takes for a stray character where CLI11 trims
// it (std::isspace): left to CLI11, "\u0000" and "\t" were not read as the
// escapes they are (a NUL got past from_config's check; a tester's finding).
std::string without_trailing_blanks(std::string line)
{
    const auto last = line.find_last_not_of(" \t\r\v\f");
    line.erase(last == std::string::npos ? 0 : last + 1);
    return line;
}

// A `key = "text"` or `key = 'text'` line, read as the TOML it is by
// toml++: TOML's quoting rules (escapes in "", none in ''), so that a #
// inside the quotes is text and one after them begins a comment. CLI11
// cuts every value at its first #, quotes or not ("a#b.log" became an
// unclosed quote). Anything else (unquoted values, a line toml++ cannot
// read) is left to CLI11, whose errors name the key.
std::optional<CLI::ConfigItem> quoted_string_item(std::string line)
{
    line = without_trailing_blanks(std::move(line));
    const auto value = value_start(line);
    // toml++ skips a byte order mark as the start of a document, and each
    // line is one here: left to CLI11, a BOM stays the error it was.
    if (value == std::string::npos || (line[value] != '"' && line[value] != '\'') ||
        line.starts_with("\xEF\xBB\xBF")) {
        return std::nullopt;
    }
    toml::table table;
    try {
        table = toml::parse(line);
    } catch (const toml::parse_error&) {
        return std::nullopt;
    }
    if (table.size() != 1 || !table.begin()->second.is_string()) {
        return std::nullopt; // a dotted key: CLI11 names it as the unknown key it is
    }
    CLI::ConfigItem item;
    item.name = std::string(table.begin()->first.str());
    item.inputs = {table.begin()->second.as_string()->get()};
    return item;
}

// The key of a `key = value` line as written (trimmed), for messages.
std::string key_of(const std::string& line)
{
    const auto equals = std::min(line.find('='), line.size());
    const auto first = line.find_first_not_of(" \t");
    const auto last = line.find_last_not_of(" \t", equals == 0 ? 0 : equals - 1);
    return first == std::string::npos || first >= equals ? std::string() : line.substr(first, last - first + 1);
}

// A `key = [...]` line, read as the TOML it is by toml++, whole or not at
// all: a one-line array of quoted strings, for a key that takes several
// values (`listen`). CLI11's own reading of arrays took a # inside quotes
// for a comment, dropped what followed, and accepted an unclosed quote, a
// missing bracket or comma, and an empty array, which crashed CLI11's
// callback for some keys (round 78).
std::optional<CLI::ConfigItem> array_item(std::string line, const std::set<std::string>& list_keys)
{
    line = without_trailing_blanks(std::move(line));
    const auto value = value_start(line);
    const auto first = line.find_first_not_of(" \t");
    // A comment, a [section] or anything without a key before '[' is
    // CLI11's to read (and refuse, for a section).
    if (value == std::string::npos || line[value] != '[' || line.starts_with("\xEF\xBB\xBF") || line[first] == '#' ||
        line[first] == '[') {
        return std::nullopt;
    }
    const std::string key = key_of(line);
    if (!list_keys.contains(key)) {
        std::string takers;
        for (const std::string& taker : list_keys) {
            takers += (takers.empty() ? "" : ", ") + taker;
        }
        throw CLI::ConfigError("key " + key + " takes no array (only " + takers + " does)");
    }
    toml::table table;
    try {
        table = toml::parse(line);
    } catch (const toml::parse_error& error) {
        throw CLI::ConfigError(
            "the value of key " + key +
            " is not an array of quoted strings on one line, as TOML writes it: " + std::string(error.description()));
    }
    const toml::array* array = table.size() == 1 ? table.begin()->second.as_array() : nullptr;
    if (array == nullptr) {
        throw CLI::ConfigError("the value of key " + key + " is not an array of quoted strings on one line");
    }
    if (array->empty()) {
        throw CLI::ConfigError("the array of key " + key + " is empty: leave the key out for its default");
    }
    CLI::ConfigItem item;
    item.name = std::string(table.begin()->first.str());
    for (const toml::node& element : *array) {
        if (!element.is_string()) {
            throw CLI::ConfigError("the array of key " + key + " holds something other than a quoted string");
        }
        item.inputs.push_back(element.as_string()->get());
    }
    return item;
}

// CLI11's reading of one line (ferryd's file has no sections, and a
// [section] line is refused as such).
std::vector<CLI::ConfigItem> cli11_items(const CLI::ConfigTOML& reader, const std::string& line)
{
    std::istringstream one_line(line);
    std::vector<CLI::ConfigItem> items = reader.CLI::ConfigTOML::from_config(one_line);
    for (const auto& item : items) {
        for (const auto& value : item.inputs) {
            if (opens_unclosed_quote(value)) {
                throw CLI::ConfigError("the value of key " + item.fullname() + " opens a quote (" +
                                       std::string(1, value.front()) + ") that the line never closes");
            }
        }
        // CLI11 splits what follows a value at spaces into more values, of
        // which a one-value option keeps the last: `token-file = "/t" ""`
        // started ferryd without tokens (round 79). Several values are an
        // array's alone (array_item).
        if (item.inputs.size() > 1) {
            throw CLI::ConfigError("the value of key " + item.fullname() +
                                   " is followed by more words: quote a value that holds spaces (several "
                                   "values go in an array, for a key that takes them)");
        }
    }
    return items;
}

} // namespace

std::vector<CLI::ConfigItem> ConfigReader::from_config(std::istream& input) const
{
    std::vector<CLI::ConfigItem> items;
    std::string line;
    while (std::getline(input, line)) {
        if (auto quoted = quoted_string_item(line)) {
            items.push_back(std::move(*quoted));
            continue;
        }
        if (auto array = array_item(line, list_keys_)) {
            items.push_back(std::move(*array));
            continue;
        }
        for (auto& item : cli11_items(*this, line)) {
            items.push_back(std::move(item));
        }
    }
    // TOML writes any code point, NUL too ("\u0000"), and a line may hold a
    // NUL byte: a root, file or address handed to the system would end
    // there, naming another folder or file than the one written (a root of
    // "/srv/a\u0000b" served and made /srv/a).
    for (const auto& item : items) {
        if (item.name.find('\0') != std::string::npos) {
            // Named as far as the NUL, it would pass for another key.
            throw CLI::ConfigError("a key holds a NUL character (\\u0000), which no key of ferryd's holds");
        }
        for (const auto& value : item.inputs) {
            if (value.find('\0') != std::string::npos) {
                throw CLI::ConfigError("the value of key " + item.fullname() +
                                       " holds a NUL character (\\u0000), which no path, address or other "
                                       "value of ferryd's holds");
            }
        }
    }
    // Keep only the last item of each key. Section markers ("++", "--")
    // repeat by design and stay where they are.
    std::set<std::string> seen;
    std::vector<CLI::ConfigItem> last_of_each;
    for (auto item = items.rbegin(); item != items.rend(); ++item) {
        const bool marker = item->name == "++" || item->name == "--";
        if (marker || seen.insert(item->fullname()).second) {
            last_of_each.push_back(std::move(*item));
        }
    }
    std::reverse(last_of_each.begin(), last_of_each.end());
    return last_of_each;
}

std::string check_config_file(const std::string& path)
{
    struct ::stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {}; // CLI11 says that it is missing
    }
    auto opened = open_operator_file(path, O_RDONLY, "config file");
    if (!opened) {
        return opened.error().message;
    }
    // The config file decides the root, the token file and read-only:
    // whoever may change or replace it decides them (file_trust.hpp; round
    // 76, F7).
    const auto problem = writers_problem("config file", path, opened->fd, opened->st);
    ::close(opened->fd);
    return problem ? problem->message : std::string();
}

} // namespace ferry::server
