// A long option written "--name=" with nothing after the '=' is refused.
// CLI11 2.1 (Debian 12's) splits "--name=" and "--name" alike
// (detail::split_long gives the value "" for both), so an option that
// takes a value took the next word as its value: `ferry --token=$TOKEN
// list` with TOKEN unset ran the interactive shell on the script's standard
// input with the token "list" and exited 0; `ferryd --root= --listen X`
// took "--listen" for the root. A flag written so was read as the flag
// given: `ferry sync --delete=$DELETE` with DELETE unset deleted. GNU
// getopt_long(3) reads the first as an empty value and refuses the second;
// here an empty value switches things off (ferryd's "--token-file=" no
// tokens, "--tls-cert=" no TLS), and "--name=" is nearly always a variable
// left unset, so both are a usage error before CLI11 reads them.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

namespace ferry::option_values {

// What an option is, for the refusal's message and for the word after it.
enum class OptionKind { flag, valued };

// The names of the options of `app` and of its commands, long ("--token")
// and short ("-o"), each with whether it takes a value (valued wins where
// one name is a flag in one command and takes a value in another).
inline std::map<std::string, OptionKind> options_of(const CLI::App& app)
{
    std::map<std::string, OptionKind> names;
    std::vector<const CLI::App*> scopes{&app};
    for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
        scopes.push_back(command);
    }
    for (const CLI::App* scope : scopes) {
        for (const CLI::Option* option : scope->get_options()) {
            const OptionKind kind = option->get_items_expected_max() > 0 ? OptionKind::valued : OptionKind::flag;
            auto add = [&](const std::string& name) {
                auto [at, added] = names.emplace(name, kind);
                if (!added && kind == OptionKind::valued) {
                    at->second = kind;
                }
            };
            for (const std::string& name : option->get_lnames()) {
                add("--" + name);
            }
            for (const std::string& name : option->get_snames()) {
                add("-" + name);
            }
        }
    }
    return names;
}

// The first of `words` (the arguments after the program's name, in order)
// that is a known long option written "--name=" with nothing after the '=';
// "" where there is none. Scanning ends at a bare "--", after which every
// word is an operand, except where "--" is the value of the option before
// it (`--token --`), as CLI11 reads it.
inline std::string empty_value_after_equals(const std::vector<std::string>& words,
                                            const std::map<std::string, OptionKind>& options)
{
    bool value_next = false; // the word before is an option that takes a value, written without one
    for (const auto& word : words) {
        if (word == "--" && !value_next) {
            return {};
        }
        const auto equals = word.find('=');
        if (word.size() > 3 && word.starts_with("--") && equals == word.size() - 1 &&
            options.contains(word.substr(0, equals))) {
            return word;
        }
        const auto known = options.find(word);
        value_next = !value_next && known != options.end() && known->second == OptionKind::valued;
    }
    return {};
}

// Throws CLI11's usage error for empty_value_after_equals's word, if any
// (exit status 2, as every other misuse of an option).
inline void refuse_empty_value_after_equals(const std::vector<std::string>& words,
                                            const std::map<std::string, OptionKind>& options)
{
    const std::string word = empty_value_after_equals(words, options);
    if (word.empty()) {
        return;
    }
    const std::string name = word.substr(0, word.size() - 1);
    const bool flag = options.at(name) == OptionKind::flag;
    throw CLI::ValidationError(
        name, std::string("nothing follows the '=' (a variable left unset?): ") +
                  (flag ? "write the flag alone, or " + name + "=true or " + name + "=false" : "give it a value"));
}

} // namespace ferry::option_values
