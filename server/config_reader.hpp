// ferryd's --config reader: CLI11's own TOML/INI reader with two stricter
// rules an operator expects of a service's config file.
//
// 1. A key set twice takes its last value, wherever the second line is.
//    CLI11 merges only adjacent repeats; a repeat further down came back as
//    a second item that CLI11 then dropped because the option was already
//    set, so the FIRST value won, against ferryd(8) and the command line's
//    own rule (an option given twice takes its last value).
// 2. A value that opens a quote and never closes it is an error, not a
//    literal: `root = "/srv/files` used to serve a folder named `"/srv/files`.
// 3. A quoted value follows TOML's quoting rules (read by toml++): a #
//    inside the quotes is part of the value, one after them a comment.
//    CLI11 cut the value at its first #, quotes or not.
// 4. An array (`listen = ["a", "b"]`) is read by toml++ as well, whole:
//    one line, quoted strings, at least one; and only for a key that takes
//    several values. Anything else is an error naming the key.
#pragma once

#include <CLI/CLI.hpp>

#include <istream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry::server {

class ConfigReader : public CLI::ConfigTOML {
public:
    // `list_keys`: the keys that take an array (several values).
    explicit ConfigReader(std::set<std::string> list_keys) : list_keys_(std::move(list_keys)) {}

    // Throws CLI::ConfigError (a usage error, exit 2) for an unclosed quote
    // or an array that breaks rule 4.
    std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

private:
    std::set<std::string> list_keys_;
};

// The check on --config's value, run before CLI11 opens the file with an
// std::ifstream (which a FIFO at the path would block for ever, before
// ferryd listens): empty when the path opens as a regular file
// (open_operator_file, which opens nothing else), or names nothing (CLI11
// then says it is missing); otherwise why not, a usage error (exit 2).
std::string check_config_file(const std::string& path);

} // namespace ferry::server
