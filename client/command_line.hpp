// The client's one grammar: the commands (list, stat, get, put, rm, mv,
// mkdir, digest, stats, help; in the shell also cd, pwd, lcd, lpwd and
// quit) with their flags, and the global options, as CLI11 definitions.
// The command line (main.cpp) parses argv with them; the shell (shell.cpp)
// parses each line's words (shell_words.hpp) with a fresh copy, so a command
// or flag exists once and `help get` in the shell is `ferry get --help`.
#pragma once

#include "clobber.hpp"
#include "status.hpp"
#include "sync.hpp"
#include "transfers.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// Who parses: the command line, or the shell (which adds quit, cd, pwd,
// lcd and lpwd, takes the alias ?, and refuses the global options: they are fixed when
// ferry starts).
enum class Grammar { command_line, shell };

// How ferry proves itself to the server and checks the server back.
struct SecurityArguments {
    std::string token;
    std::string token_file;
    bool tls = false;
    std::string tls_ca;
    std::string tls_pin;
};

// The options before (or, by fallthrough, after) the command.
struct GlobalArguments {
    std::string server;
    bool json = false;
    std::string hash_text = "sha256";
    double timeout_seconds = 120;
    double hello_timeout_seconds = 5;
    unsigned retries = 0;
    bool quiet = false;
    bool verbose = false;
    bool no_progress = false;
    SecurityArguments security;
};

// What the commands take.
struct CommandArguments {
    std::string name;                // stat PATH, list [PATH], cd [PATH], lcd [LOCAL]
    std::vector<std::string> names;  // get PATH..., rm PATH..., mkdir PATH..., digest PATH...
    std::vector<std::string> locals; // put LOCAL...
    std::string from;                // mv FROM TO
    std::string to;
    std::string output_path;         // get -o
    std::string folder;              // get -C (a local folder), put -C (a folder on the server)
    std::string as;                  // put --as
    bool recursive = false;          // list -r, get -r, put -r, rm -r
    bool preserve = false;           // get -p, put -p: keep modification times
    bool parents = false;            // mkdir -p
    bool replace = false;            // mv --replace
    bool resume = false;             // --resume: the default, kept for scripts that say it
    bool no_resume = false;          // --no-resume: start over, discarding what an interrupted transfer left
    bool no_clobber = false;
    bool skip_identical = false;
    std::string help_topic; // help COMMAND
    std::string sync_source;             // sync SOURCE DEST (one of them :REMOTE_DIR)
    std::string sync_dest;
    bool checksum = false;               // sync --checksum
    bool delete_extras = false;          // sync --delete
    bool dry_run = false;                // sync --dry-run
    unsigned jobs = kDefaultSyncJobs;    // sync -j
};

// A CLI::App holding the definitions, bound to the values it fills. The
// options point into this object, so it neither copies nor moves: make a
// fresh one for each parse.
class CommandLine {
public:
    explicit CommandLine(Grammar grammar);
    CommandLine(const CommandLine&) = delete;
    CommandLine& operator=(const CommandLine&) = delete;

    CLI::App app;
    GlobalArguments global;
    CommandArguments arguments;
    CLI::Option* server_option = nullptr;
    CLI::App* list = nullptr;
    CLI::App* stat = nullptr;
    CLI::App* get = nullptr;
    CLI::App* put = nullptr;
    CLI::App* remove = nullptr;
    CLI::App* move = nullptr;
    CLI::App* make_folder = nullptr;
    CLI::App* digest = nullptr;
    CLI::App* stats = nullptr;
    CLI::App* sync = nullptr;
    CLI::App* help = nullptr;
    // The shell's only:
    CLI::App* quit = nullptr;
    CLI::App* change_folder = nullptr;       // cd
    CLI::App* print_folder = nullptr;        // pwd
    CLI::App* change_local_folder = nullptr; // lcd
    CLI::App* print_local_folder = nullptr;  // lpwd

    // Parse the command line (`argv` as main has it) or a shell line's
    // words with `app`, each word behind guard_brackets(): what CLI11
    // throws names the words as given (unguarded() is for its message).
    void parse(int argc, const char* const* argv);
    void parse(const std::vector<std::string>& words);

    // The command the parse chose, or nullptr.
    CLI::App* command() const;

    // Every command's name and aliases (the shell completes them).
    std::vector<std::string> command_names() const;
    // Whether `word` names a command (or an alias of one).
    bool is_command(const std::string& word) const;

    // The global option given on a shell line, if any (the shell refuses it).
    const CLI::Option* global_given() const;

    // The help of `topic` (a command's name; empty: everything), as
    // `program` calls it: CLI11's help of these definitions.
    std::string help_text(const std::string& topic, const std::string& program) const;

    // The rules between arguments that CLI11 cannot say (-o with several
    // NAMEs, ...): the message of the first one broken.
    std::optional<std::string> misuse() const;

    // After a failed parse of `words` (the command line's arguments, or a
    // shell line's words): where an operand that starts with '-' (a name
    // such as -x*, or a mistyped flag such as ls -l) was taken for an option
    // that the command does not have: that it has no such option, then how
    // to give a path that starts with '-' (after --, quoted for a shell), as
    // `program` is called ("ferry"; "" in the shell), printable, and never
    // naming another path (PATH where the word cannot be shown as it is).
    // An unknown --word, or a flag of a cluster (-rZ), is such a word too;
    // nothing after an unknown --word is judged. nullopt where no such
    // word was.
    std::optional<std::string> operand_taken_for_option(const std::vector<std::string>& words,
                                                        const std::string& program) const;

    // The transfer flags of get and put.
    TransferFlags transfer_flags(HashKind hash, unsigned retries) const;

    // What sync was asked (its operands' shape already checked by
    // misuse()), its :REMOTE_DIR settled against `current` (the shell's
    // folder; "" on the command line) by settle_remote_folder, as every
    // remote path is: an error is that path's (invalid_name).
    Result<SyncArguments> sync_arguments(HashKind hash, unsigned retries, std::string_view current = {}) const;

private:
    // Every command defined, in the order help shows them.
    std::vector<CLI::App*> commands() const;

    Grammar grammar_;
    std::vector<CLI::Option*> globals_;
};

// CLI11 2.1 reads a value "[a,b]" given to an option that takes several
// (Option::_add_result: a list as a config file or a default writes it)
// as that list, even an operand: "rm '[!q]'" removed "!q", "[a,b]" named a
// and b. A word in brackets is a wildcard pattern or a real name, never a
// list, so every word reaches CLI11 behind kBracketGuard when it starts
// with '[' (or with the guard itself, so that taking it off is exact), and
// every option takes the guard off its values first (a transform).
inline constexpr char kBracketGuard = '\x1f';
std::string guard_brackets(std::string word);
std::string unguard_brackets(std::string value);
// `message` (CLI11's, quoting words) with every guard taken off.
std::string unguarded(const std::string& message);

// The spelling of a flag as the user typed it in `args` (the last one wins,
// as in CLI11), so that an error about its value names what was typed: -C
// or --directory.
std::string typed_flag(const std::vector<std::string>& args, const std::string& short_name,
                       const std::string& long_name);

} // namespace ferry::client
