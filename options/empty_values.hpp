// "--name=" with nothing after the '=', for an option that takes a value,
// is refused. CLI11 2.1 (Debian 12's) splits "--name=" and "--name" alike
// (detail::split_long gives the value "" for both), so such an option took
// the next word as its value: `ferry --token=$TOKEN list` with TOKEN unset
// ran the interactive shell on the script's standard input with the token
// "list" and exited 0; `ferryd --root= --listen X` took "--listen" for the
// root. GNU getopt_long(3) would read it as an empty value, but for these
// programs an empty value switches things off (ferryd's "--token-file=" no
// tokens, "--tls-cert=" no TLS, "--config=" no config file; ferry's
// "--directory=" the working folder), and "--name=" is nearly always a
// variable left unset: it is a usage error that says how to give an empty
// value on purpose (--name ""). A flag (an option without a value) written
// "--flag=" is left to CLI11, which reads it as the flag alone, as before.
#pragma once

#include <CLI/CLI.hpp>

#include <set>
#include <string>
#include <vector>

namespace ferry::option_values {

// The long names ("--token") of the options of `app` and of its commands
// that take a value.
inline std::set<std::string> options_with_values(const CLI::App& app)
{
    std::set<std::string> names;
    std::vector<const CLI::App*> scopes{&app};
    for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
        scopes.push_back(command);
    }
    for (const CLI::App* scope : scopes) {
        for (const CLI::Option* option : scope->get_options()) {
            if (option->get_items_expected_max() > 0) {
                for (const std::string& name : option->get_lnames()) {
                    names.insert("--" + name);
                }
            }
        }
    }
    return names;
}

// The first of `words` (the arguments after the program's name, in order)
// before a bare "--" that is "--name=" with nothing after the '=', for a
// name in `valued` (options_with_values); "" where there is none. A word
// after "--" is an operand, whatever it looks like.
inline std::string empty_value_after_equals(const std::vector<std::string>& words, const std::set<std::string>& valued)
{
    for (const auto& word : words) {
        if (word == "--") {
            return {};
        }
        if (word.size() > 3 && word.starts_with("--") && word.ends_with('=') && word.find('=') == word.size() - 1 &&
            valued.contains(word.substr(0, word.size() - 1))) {
            return word;
        }
    }
    return {};
}

// Throws CLI11's usage error for empty_value_after_equals's word, if any
// (exit status 2, as every other misuse of an option).
inline void refuse_empty_value_after_equals(const std::vector<std::string>& words, const std::set<std::string>& valued)
{
    const std::string word = empty_value_after_equals(words, valued);
    if (!word.empty()) {
        const std::string name = word.substr(0, word.size() - 1);
        throw CLI::ValidationError(name, "nothing follows the '=' (a variable left unset?): give a value, or write " +
                                             name + " \"\" for an empty one");
    }
}

} // namespace ferry::option_values
