// The client's small pure parts, without a server: server addresses, the
// shell's word splitting, download paths and the download sidecar.
#include "support.hpp"

#include "command_line.hpp"
#include "digest.hpp"
#include "endpoint.hpp"
#include "hash_pipeline.hpp"
#include "local_files.hpp"
#include "output.hpp"
#include "part_file.hpp"
#include "shell.hpp"
#include "stream_writer.hpp"
#include "tls.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace ferry::client;

TEST_CASE("server addresses")
{
    auto plain = parse_endpoint("example.org:8000");
    REQUIRE(plain.ok());
    CHECK(plain->host == "example.org");
    CHECK(plain->port == 8000);
    CHECK(plain->to_string() == "example.org:8000");

    auto v6 = parse_endpoint("[::1]:9");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(v6->port == 9);
    CHECK(v6->to_string() == "[::1]:9");

    CHECK(parse_endpoint("host")->port == kDefaultPort);
    CHECK(parse_endpoint("[::1]")->port == kDefaultPort);
    CHECK(parse_endpoint("::1")->host == "::1");
    for (const char* bad : {"", ":80", "host:", "host:0", "host:65536", "host:80x", "[::1", "[::1]x", "[]:80"}) {
        CAPTURE(bad);
        const auto parsed = parse_endpoint(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().code == ferry::ErrorCode::bad_request);
    }
}

namespace {

// Parses `words` (without a program name) as the shell does.
void parse_words(CommandLine& grammar, const std::vector<std::string>& words)
{
    grammar.parse(words);
}

} // namespace

TEST_CASE("one grammar: the shell's CommandLine has the command line's commands and flags")
{
    CommandLine line(Grammar::command_line);
    CommandLine shell(Grammar::shell);
    for (const char* command : {"list", "ls", "stat", "get", "put", "stats", "help"}) {
        CAPTURE(command);
        CHECK(line.is_command(command));
        CHECK(shell.is_command(command));
    }
    CHECK(shell.is_command("quit"));
    CHECK(shell.is_command("exit"));
    CHECK(shell.is_command("?"));
    CHECK_FALSE(line.is_command("quit"));
    CHECK_FALSE(shell.is_command("lsit"));
    // The same help for a command, whoever asks.
    CHECK(line.help_text("get", "") == shell.help_text("get", ""));
    CHECK(shell.help_text("get", "").find("--no-clobber") != std::string::npos);
    CHECK(shell.help_text("", "").find("quit, exit") != std::string::npos);

    parse_words(shell, {"get", "-n", "a.txt", "b.txt", "--directory", "out"});
    CHECK(shell.command() == shell.get);
    CHECK(shell.arguments.names == std::vector<std::string>{"a.txt", "b.txt"});
    CHECK(shell.arguments.folder == "out");
    CHECK(shell.global_given() == nullptr);
    CHECK_FALSE(shell.misuse().has_value());
    const auto flags = shell.transfer_flags(ferry::HashKind::xxh3_128, 0);
    CHECK(flags.clobber == Clobber::keep_existing);
    CHECK(flags.resume);
    CHECK(flags.hash == ferry::HashKind::xxh3_128);
}

TEST_CASE("one grammar: what the shell refuses and the rules CLI11 cannot say")
{
    {
        CommandLine shell(Grammar::shell);
        parse_words(shell, {"put", "x.txt", "--token", "secret"});
        REQUIRE(shell.global_given() != nullptr);
        CHECK(shell.global_given()->get_name() == "--token");
    }
    {
        CommandLine shell(Grammar::shell);
        CHECK_THROWS_AS(parse_words(shell, {"get", "--frobnicate", "a.txt"}), CLI::ParseError);
    }
    {
        CommandLine shell(Grammar::shell);
        parse_words(shell, {"get", "-o", "-", "a.txt"});
        REQUIRE(shell.misuse().has_value());
        CHECK(shell.misuse()->find("-o -") != std::string::npos);
    }
    {
        CommandLine line(Grammar::command_line);
        parse_words(line, {"get", "-o", "-", "a.txt"});
        CHECK_FALSE(line.misuse().has_value()); // the command line's stdout is the file
        CommandLine two(Grammar::command_line);
        parse_words(two, {"get", "-o", "x", "a.txt", "b.txt"});
        CHECK(two.misuse() == "get: -o names one file; use -C DIR for several");
        // One path spelled twice is one file (round 57); a '..' is not read away.
        CommandLine same(Grammar::command_line);
        parse_words(same, {"get", "-o", "x", "d/a.txt", "./d//a.txt", "d/./a.txt"});
        CHECK_FALSE(same.misuse().has_value());
        CommandLine climbs(Grammar::command_line);
        parse_words(climbs, {"get", "-o", "x", "a.txt", "d/../a.txt"});
        CHECK(climbs.misuse().has_value());
        CommandLine put_same(Grammar::command_line);
        parse_words(put_same, {"put", "x", "./x", "--as", "y"});
        CHECK_FALSE(put_same.misuse().has_value());
        CommandLine stdin_and_dash(Grammar::command_line);
        parse_words(stdin_and_dash, {"put", "-", "./-", "--as", "y"}); // standard input and the file "-"
        CHECK(stdin_and_dash.misuse().has_value());
        CommandLine server_dash(Grammar::command_line);
        parse_words(server_dash, {"get", "-", "./-", "-o", "g"}); // a server file named "-", twice
        CHECK_FALSE(server_dash.misuse().has_value());
        CommandLine trees(Grammar::command_line);
        parse_words(trees, {"get", "-r", "t", "t", "-o", "out"}); // -o names where one tree goes
        CHECK(trees.misuse().has_value());
        CommandLine put_two(Grammar::command_line);
        parse_words(put_two, {"put", "x", "y", "--as", "z"});
        CHECK(put_two.misuse() == "put: --as names one file; several keep their own names");
        // An empty value is no value: in a script, --as "$NAME" with NAME
        // unset sent the file under its own name (a new user's trial, round 72).
        for (const Grammar grammar : {Grammar::command_line, Grammar::shell}) {
            CommandLine empty_as(grammar);
            parse_words(empty_as, {"put", "x", "--as", ""});
            CHECK(empty_as.misuse() == "put: --as was given an empty path; name the file on the server");
            CommandLine empty_output(grammar);
            parse_words(empty_output, {"get", "x", "-o", ""});
            CHECK(empty_output.misuse() ==
                  "get: -o was given an empty path; name a file, a folder or - (standard output)");
            // "--output=", last or not, is refused before CLI11 takes the
            // next word for its value (options/empty_values.hpp).
            CommandLine empty_long(grammar);
            CHECK_THROWS_AS(parse_words(empty_long, {"get", "x", "--output="}), CLI::ValidationError);
            CommandLine empty_long_first(grammar);
            CHECK_THROWS_AS(parse_words(empty_long_first, {"get", "--output=", "x"}), CLI::ValidationError);
        }
    }
    {
        CommandLine shell(Grammar::shell);
        parse_words(shell, {"put", "-", "--as", "x"});
        CHECK(shell.misuse().has_value()); // standard input carries the shell's commands
        CommandLine line(Grammar::command_line);
        parse_words(line, {"put", "-"});
        CHECK(line.misuse() == "put -: standard input has no file name; give one with --as NAME");
    }
    CHECK(typed_flag({"get", "-Cout", "a"}, "-C", "--directory") == "-C");
    CHECK(typed_flag({"get", "--directory=out", "a"}, "-C", "--directory") == "--directory");
    CHECK(typed_flag({"get", "--", "-C"}, "-C", "--directory") == "--directory");
}

TEST_CASE("one grammar: a word in brackets reaches every command as typed, never as CLI11's list")
{
    // Round 35: CLI11 read "[!q]" given to an option taking several values
    // as a list: rm '[!q]' removed !q, '[a,b]' named a and b, put '[x]'
    // sent ./x. Every grammar, every command, every kind of word.
    const std::vector<std::string> words{"[!q]", "[a,b]", "[x]", "[]", "\x1f[y]", "\x1fz", "plain"};
    for (const Grammar grammar : {Grammar::command_line, Grammar::shell}) {
        for (const std::string command : {"get", "rm", "mkdir", "digest"}) {
            CAPTURE(command);
            CommandLine line(grammar);
            std::vector<std::string> typed{command};
            typed.insert(typed.end(), words.begin(), words.end());
            parse_words(line, typed);
            CHECK(line.arguments.names == words);
        }
        CommandLine put(grammar);
        parse_words(put, {"put", "[x]", "[a,b]", "-C", "[d]"});
        CHECK(put.arguments.locals == std::vector<std::string>{"[x]", "[a,b]"});
        CHECK(put.arguments.folder == "[d]");
        CommandLine move(grammar);
        parse_words(move, {"mv", "[a,b]", "[c]"});
        CHECK(move.arguments.from == "[a,b]");
        CHECK(move.arguments.to == "[c]");
        CommandLine get(grammar);
        parse_words(get, {"get", "[a]", "-o", "[b]"});
        CHECK(get.arguments.output_path == "[b]");
    }
    // argv as main has it, and a refusal that names the word as given.
    const char* argv[] = {"ferry", "stat", "[a]", "[b,c]"};
    CommandLine line(Grammar::command_line);
    try {
        line.parse(4, argv);
        FAIL("two operands of stat parsed");
    } catch (const CLI::ParseError& error) {
        CHECK(unguarded(error.what()).find("[b,c]") != std::string::npos);
        CHECK(unguarded(error.what()).find(kBracketGuard) == std::string::npos);
    }
}

TEST_CASE("sync's :REMOTE_DIR is a remote path like any other: '..' settled, above the root refused")
{
    const auto synced = [](Grammar grammar, const std::vector<std::string>& words, std::string_view current) {
        CommandLine parsed(grammar);
        parse_words(parsed, words);
        REQUIRE_FALSE(parsed.misuse().has_value());
        return parsed.sync_arguments(ferry::HashKind::sha256, 0, current);
    };
    for (const Grammar grammar : {Grammar::command_line, Grammar::shell}) {
        CAPTURE(grammar == Grammar::shell);
        const auto up = synced(grammar, {"sync", "src", ":t/.."}, "");
        REQUIRE(up.ok());
        CHECK(up->remote == "");
        CHECK(up->direction == SyncDirection::push);
        const auto back = synced(grammar, {"sync", ":t/d/../", "dst"}, "");
        REQUIRE(back.ok());
        CHECK(back->remote == "t");
        CHECK(back->local == "dst");
        CHECK(back->direction == SyncDirection::pull);
        const auto from_root = synced(grammar, {"sync", "src", ":/a/./b/../c"}, "x/y");
        REQUIRE(from_root.ok());
        CHECK(from_root->remote == "a/c");
        for (const char* typed : {":..", ":t/../..", ":/.."}) {
            CAPTURE(typed);
            const auto climbs = synced(grammar, {"sync", "src", typed}, "");
            REQUIRE_FALSE(climbs.ok());
            CHECK(climbs.error().code == ferry::ErrorCode::invalid_name);
            CHECK(climbs.error().message.find("above the server's root") != std::string::npos);
        }
        const auto bad_name = synced(grammar, {"sync", "src", ":t/.hidden"}, "");
        REQUIRE_FALSE(bad_name.ok());
        CHECK(bad_name.error().code == ferry::ErrorCode::invalid_name);
    }
    // In the shell, relative to its current folder (":" is that folder).
    CHECK(synced(Grammar::shell, {"sync", "src", ":.."}, "logs/2026")->remote == "logs");
    CHECK(synced(Grammar::shell, {"sync", ":", "dst"}, "logs")->remote == "logs");
}

TEST_CASE("shell word splitting")
{
    using Words = std::vector<std::string>;
    CHECK(split_words("  get  a.txt   b ") == Words{"get", "a.txt", "b"});
    CHECK(split_words("put \"my file.txt\" 'x y'") == Words{"put", "my file.txt", "x y"});
    CHECK(split_words("stat a\\ b") == Words{"stat", "a b"});
    CHECK(split_words("stat \"\"") == Words{"stat", ""});
    CHECK(split_words("") == Words{});
    CHECK_FALSE(split_words("get \"open").has_value());
}

TEST_CASE("download paths")
{
    ferry::test::TempDir dir;
    CHECK(resolve_download_path("a.txt", std::nullopt) == "a.txt");
    CHECK(resolve_download_path("a.txt", dir.path()) == dir / "a.txt");
    CHECK(resolve_download_path("a.txt", dir.path() + "/") == dir / "a.txt");
    CHECK(resolve_download_path("a.txt", dir / "b.txt") == dir / "b.txt");
    CHECK(part_path("x/b.txt") == "x/b.txt.ferry-part");
    CHECK(state_path("x/b.txt") == "x/b.txt.ferry-part.state");
    // Too long for the suffixes: a hidden name from the SHA-256 of the name.
    const std::string longest(255, 'n');
    ferry::Sha256 digest;
    digest.update(longest.data(), longest.size());
    CHECK(part_path("x/" + longest) == "x/." + digest.hex_digest() + ".ferry-part");
    CHECK(state_path("x/" + longest) == "x/." + digest.hex_digest() + ".ferry-part.state");
    CHECK(part_path(longest) == "." + digest.hex_digest() + ".ferry-part");
    CHECK(part_path(std::string(227, 'n')) == std::string(227, 'n') + ".ferry-part");
    CHECK(part_path(std::string(228, 'n')).starts_with("."));
    CHECK(base_name("dir/sub/file.bin") == "file.bin");
    CHECK(base_name("file.bin") == "file.bin");
    CHECK(base_name("dir/") == "dir");
}

TEST_CASE("the download sidecar round-trips and refuses what it did not write")
{
    ferry::test::TempDir dir;
    ferry::Sha256 hash;
    hash.update("abc", 3);
    DownloadState state{"name.bin", 1000, 1764370000, 3, hash.save_state(), hash.hex_digest(),
                        PartIdentity{2049, 77, 3, 1764370000123456789, 1764370000987654321}};
    const std::string path = dir / "s.state";
    REQUIRE(write_download_state(path, state).ok());
    const auto back = read_download_state(path);
    REQUIRE(back.ok());
    CHECK(back->name == "name.bin");
    CHECK(back->remote_size == 1000);
    CHECK(back->remote_mtime == 1764370000);
    CHECK(back->bytes_held == 3);
    CHECK(back->prefix_digest == hash.hex_digest());
    CHECK(back->part == state.part);
    const auto restored = ferry::Sha256::restore_state(back->digest_state);
    REQUIRE(restored.has_value());
    CHECK(restored->hex_digest() == hash.hex_digest());
    CHECK_FALSE(ferry::test::exists(path + ".tmp"));

    for (const char* bad :
         {"", "[]", "{\"version\":1}", "{ not json",
          "{\"version\":2,\"name\":\"a\",\"size\":1,\"mtime\":0,\"bytes_held\":0,\"sha256_state\":\"\"}",
          "{\"version\":1,\"name\":\"a\",\"size\":1,\"mtime\":0,\"bytes_held\":5,\"sha256_state\":\"\"}",
          // Version 1 vouched for bytes it could not recognise again.
          "{\"version\":1,\"name\":\"a\",\"size\":9,\"mtime\":0,\"bytes_held\":5,\"sha256_state\":\"\"}",
          "{\"version\":2,\"name\":\"a\",\"size\":9,\"mtime\":0,\"bytes_held\":5,\"sha256_state\":\"\","
          "\"prefix_digest\":\"\",\"part\":[1,2,3]}"}) {
        CAPTURE(bad);
        ferry::test::write_file(path, bad);
        const auto read = read_download_state(path);
        REQUIRE_FALSE(read.ok());
        CHECK(read.error().code == ferry::ErrorCode::local_io);
    }
    CHECK_FALSE(read_download_state(dir / "missing").ok());
}

TEST_CASE("a kill's state temporaries are known by their exact names, and only this user's small ones go")
{
    CHECK(sidecar_of_temporary("x.ferry-part.state.tmp-QwErTy") == std::optional<std::string>("x.ferry-part.state"));
    CHECK(sidecar_of_temporary(".ferry-part.state.tmp-0aZ9x1") == std::optional<std::string>(".ferry-part.state"));
    for (const char* look_alike : {"x.ferry-part.state.tmp-notes", "x.ferry-part.state.tmp-no.tes",
                                   "x.ferry-part.state.tmp-QwErTy7", "x.ferry-part.state.tmp-", "x.ferry-part.state",
                                   "x.ferry-part.state.tmp", "x.ferry-part.tmp-QwErTy", "x.state.tmp-QwErTy",
                                   "x.ferry-part.state.tmp-Qw\xc3\xa9Ty"}) {
        CAPTURE(look_alike);
        CHECK_FALSE(sidecar_of_temporary(look_alike).has_value());
    }
    CHECK(is_state_temporary_name("x.ferry-part.state.tmp-QwErTy", "x.ferry-part.state"));
    CHECK_FALSE(is_state_temporary_name("x.ferry-part.state.tmp-QwErTy", "y.ferry-part.state"));
    CHECK_FALSE(is_state_temporary_name("ax.ferry-part.state.tmp-QwErTy", "x.ferry-part.state"));

    ferry::test::TempDir dir;
    const std::string state = dir / "x.ferry-part.state";
    // What a checkpoint writes: the state reader's format, mode 0600.
    DownloadState written{"x", 1, 0, 0, {}, {}, {}};
    ferry::Sha256 hash;
    written.digest_state = hash.save_state();
    written.prefix_digest = hash.hex_digest();
    REQUIRE(write_download_state(dir / "v.ferry-part.state", written).ok());
    const std::string text = ferry::test::read_file(dir / "v.ferry-part.state");
    const auto plant = [&](const char* name, const std::string& data, mode_t mode = 0600) {
        ferry::test::write_file(dir / name, data);
        REQUIRE(::chmod((dir / name).c_str(), mode) == 0);
    };
    plant("x.ferry-part.state.tmp-QwErTy", text);
    plant("x.ferry-part.state.tmp-0aZ9x1", "");            // empty: not a state
    plant("x.ferry-part.state.tmp-Json01", "{\"my\":1}");   // a user's JSON
    plant("x.ferry-part.state.tmp-Cut001", text.substr(0, text.size() / 2));
    plant("x.ferry-part.state.tmp-Mode44", text, 0644);     // not as ferry creates them
    plant("x.ferry-part.state.tmp-Mode40", text, 0400);
    plant("x.ferry-part.state.tmp-notes", "mine");
    plant("x.ferry-part.state.tmp-Plain1", "a file downloaded to this name");
    plant("y.ferry-part.state.tmp-AbCdEf", text);
    plant("x.ferry-part.state.tmp-Large1", std::string(65 * 1024, 'L'));
    plant("x.ferry-part.state.tmp-Linkd1", text);
    REQUIRE(::link((dir / "x.ferry-part.state.tmp-Linkd1").c_str(), (dir / "copy").c_str()) == 0);
    const auto removed = remove_state_temporaries(state);
    REQUIRE(removed.ok());
    CHECK(removed.value() == 1);
    CHECK_FALSE(ferry::test::exists(dir / "x.ferry-part.state.tmp-QwErTy"));
    for (const char* stays : {"x.ferry-part.state.tmp-0aZ9x1", "x.ferry-part.state.tmp-Json01",
                              "x.ferry-part.state.tmp-Cut001", "x.ferry-part.state.tmp-Mode44",
                              "x.ferry-part.state.tmp-Mode40", "x.ferry-part.state.tmp-notes",
                              "x.ferry-part.state.tmp-Plain1", "y.ferry-part.state.tmp-AbCdEf",
                              "x.ferry-part.state.tmp-Large1", "x.ferry-part.state.tmp-Linkd1"}) {
        CAPTURE(stays);
        CHECK(ferry::test::exists(dir / stays));
    }
}

TEST_CASE("a sidecar's new version gets a name only once it is whole, and leaves no temporary")
{
    ferry::test::TempDir dir;
    DownloadState state{"n", 1, 0, 0, {}, {}, {}};
    ferry::Sha256 hash;
    state.digest_state = hash.save_state();
    state.prefix_digest = hash.hex_digest();
    for (int i = 0; i < 3; ++i) {
        REQUIRE(write_download_state(dir / "n.ferry-part.state", state).ok());
    }
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        names.push_back(entry.path().filename().string());
    }
    CHECK(names == std::vector<std::string>{"n.ferry-part.state"});
}

TEST_CASE("a download sidecar written by an older build (version 2) is still resumed from")
{
    ferry::test::TempDir dir;
    const std::string path = dir / "old.state";
    ferry::test::write_file(path, "{\"bytes_held\":3,\"mtime\":1764370000,\"name\":\"name.bin\",\"part\":[2049,77,3,"
                                  "1764370000123456789,1764370000987654321],\"prefix_digest\":\"abc\",\"sha256_state\":"
                                  "\"sha256-ctx-v1:112:00\",\"size\":1000,\"version\":2}\n");
    const auto read = read_download_state(path);
    REQUIRE(read.ok());
    CHECK(read->name == "name.bin");
    CHECK(read->remote_size == 1000);
    CHECK(read->remote_mtime == 1764370000);
    CHECK(read->bytes_held == 3);
    CHECK(read->digest_state == "sha256-ctx-v1:112:00");
    CHECK(read->prefix_digest == "abc");
    CHECK(read->part == PartIdentity{2049, 77, 3, 1764370000123456789, 1764370000987654321});
}

TEST_CASE("TLS pins: what openssl prints, with or without prefix and colons")
{
    const std::string hex = "3f9dd03816f9941703e2e43b5a45ece72184e3e37c68d964fa65efc5586d953c";
    const auto plain = parse_pin(hex);
    REQUIRE(plain.ok());
    CHECK(plain.value()[0] == 0x3f);
    CHECK(plain.value()[31] == 0x3c);
    const std::vector<std::string> same_pins{
        "sha256:" + hex,
        "SHA256:3F:9D:D0:38:16:F9:94:17:03:E2:E4:3B:5A:45:EC:E7:21:84:E3:E3:7C:68:D9:64:FA:65:EF:C5:58:6D:95:3C"};
    for (const auto& same : same_pins) {
        CAPTURE(same);
        const auto parsed = parse_pin(same);
        REQUIRE(parsed.ok());
        CHECK(parsed.value() == plain.value());
    }
    const std::vector<std::string> bad_pins{"",         "sha256:",    hex.substr(2),
                                            hex + "00", "md5:" + hex, hex.substr(0, 63) + "g"};
    for (const auto& bad : bad_pins) {
        CAPTURE(bad);
        const auto parsed = parse_pin(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error().code == ferry::ErrorCode::bad_request);
    }
}

TEST_CASE("the hashing thread gives the digest hashing in place would, at every point asked")
{
    std::string data(5 * 1024 * 1024 + 123, '\0');
    std::uint32_t state = 7;
    for (auto& byte : data) {
        state = state * 1664525u + 1013904223u;
        byte = static_cast<char>(state >> 24);
    }
    for (const auto kind : {ferry::HashKind::sha256, ferry::HashKind::xxh3_128}) {
        ferry::client::HashPipeline pipeline{ferry::TransferHash(kind)};
        ferry::TransferHash direct(kind);
        std::size_t at = 0;
        for (std::size_t step = 1; at < data.size(); step = step * 2 + 7) {
            const std::size_t size = std::min(step, data.size() - at);
            const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data() + at);
            pipeline.update(std::span(bytes, size));
            direct.update(bytes, size);
            at += size;
            if (step % 3 == 0) { // a checkpoint in the middle
                CHECK(pipeline.hash().hex_digest() == direct.hex_digest());
            }
        }
        CHECK(pipeline.hash().hex_digest() == direct.hex_digest());
        CHECK(pipeline.hash().save_state() == direct.save_state());
    }
}

namespace {

// Pseudo-random bytes, the same for the same seed.
std::vector<std::uint8_t> noise(std::size_t size, std::uint32_t seed)
{
    std::vector<std::uint8_t> bytes(size);
    for (auto& byte : bytes) {
        seed = seed * 1664525u + 1013904223u;
        byte = static_cast<std::uint8_t>(seed >> 24);
    }
    return bytes;
}

// Plays a connection: copies `data` into the memory the pipeline lends, in
// reads of uneven sizes, and hands each read on in pieces of uneven sizes.
// False once update() reports a failed write (a download stops there).
bool feed_lent(ferry::client::HashPipeline& pipeline, std::span<const std::uint8_t> data)
{
    std::span<std::uint8_t> window;
    std::size_t end = 0;
    std::size_t read_size = 1000;
    while (!data.empty()) {
        if (window.empty() || window.size() - end < 64 * 1024) {
            window = pipeline.next(window);
            end = 0;
        }
        read_size = read_size * 3 % 300'007 + 1;
        const std::size_t got = std::min({read_size, window.size() - end, data.size()});
        std::copy_n(data.begin(), got, window.begin() + static_cast<std::ptrdiff_t>(end));
        for (std::size_t at = 0; at < got;) {
            const std::size_t piece = std::min<std::size_t>(got - at, 1 + (at * 7 + got) % 70'000);
            if (!pipeline.update(window.subspan(end + at, piece))) {
                return false;
            }
            at += piece;
        }
        end += got;
        data = data.subspan(got);
    }
    return true;
}

} // namespace

TEST_CASE("bytes read into the pipeline's lent blocks are hashed and written in order, the reader bounded by the ring")
{
    const auto data = noise(9 * ferry::client::HashPipeline::kBlockSize + 4321, 11);
    for (const auto kind : {ferry::HashKind::sha256, ferry::HashKind::xxh3_128}) {
        CAPTURE(static_cast<int>(kind));
        std::vector<std::uint8_t> written;
        std::atomic<bool> slow{true};
        ferry::client::HashPipeline pipeline{ferry::TransferHash(kind), [&](std::span<const std::uint8_t> bytes) {
                                                 if (slow) { // a slow disk: the reader must wait for it, not overwrite
                                                     std::this_thread::sleep_for(std::chrono::microseconds(300));
                                                 }
                                                 written.insert(written.end(), bytes.begin(), bytes.end());
                                                 return ferry::client::success();
                                             }};
        CHECK(pipeline.threaded());
        // The first bytes come from the connection's own buffer, as a
        // reply's first data would.
        const auto own = std::vector<std::uint8_t>(data.begin(), data.begin() + 777);
        REQUIRE(pipeline.update(own));
        CHECK(feed_lent(pipeline, std::span(data).subspan(777)));
        REQUIRE(pipeline.drain());
        slow = false;
        ferry::TransferHash direct(kind);
        direct.update(data.data(), data.size());
        CHECK(pipeline.hash().hex_digest() == direct.hex_digest());
        CHECK(written == data);
    }
}

TEST_CASE("a pipeline's failed write is reported, nothing after it is written, and abandon drops what is queued")
{
    const auto data = noise(6 * ferry::client::HashPipeline::kBlockSize, 5);
    std::size_t calls = 0;
    std::size_t after_failure = 0;
    bool failed = false;
    ferry::client::HashPipeline pipeline{ferry::TransferHash(ferry::HashKind::xxh3_128),
                                         [&](std::span<const std::uint8_t>) -> ferry::client::Status {
                                             ++calls;
                                             if (failed) {
                                                 ++after_failure;
                                             }
                                             if (calls == 3) {
                                                 failed = true;
                                                 return ferry::client::local_error("cannot write \"x\"", ENOSPC);
                                             }
                                             return ferry::client::success();
                                         }};
    CHECK_FALSE(feed_lent(pipeline, data));
    const auto drained = pipeline.drain();
    REQUIRE_FALSE(drained);
    CHECK(drained.error().code == ferry::ErrorCode::no_space);
    CHECK(drained.error().message.find("cannot write \"x\"") != std::string::npos);
    CHECK(calls == 3);
    CHECK(after_failure == 0);
    // update() reports the failure too, so a download stops at once.
    auto window = pipeline.next({});
    CHECK_FALSE(pipeline.update(window.first(10)));

    // abandon: queued pieces are dropped; the pipeline is still usable to destroy.
    std::atomic<std::size_t> written{0};
    {
        ferry::client::HashPipeline slow{ferry::TransferHash(ferry::HashKind::sha256),
                                         [&](std::span<const std::uint8_t> bytes) {
                                             std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                             written += bytes.size();
                                             return ferry::client::success();
                                         }};
        auto lent = slow.next({});
        for (std::size_t at = 0; at < lent.size(); at += 4096) {
            REQUIRE(slow.update(lent.subspan(at, 4096)));
        }
        (void)slow.next(lent); // hands the block over
        slow.abandon();
        CHECK(written < lent.size());
    }
}

TEST_CASE("xxh3-128 with nothing to write is hashed in place, without threads")
{
    ferry::client::HashPipeline pipeline{ferry::TransferHash(ferry::HashKind::xxh3_128)};
    CHECK_FALSE(pipeline.threaded());
    const auto data = noise(100'000, 3);
    REQUIRE(pipeline.update(data));
    ferry::TransferHash direct(ferry::HashKind::xxh3_128);
    direct.update(data.data(), data.size());
    CHECK(pipeline.hash().hex_digest() == direct.hex_digest());
}

namespace {

// What an Output prints in text mode, stdout and stderr, into memory.
struct Captured {
    char* out_text = nullptr;
    std::size_t out_size = 0;
    char* err_text = nullptr;
    std::size_t err_size = 0;
    std::FILE* out = ::open_memstream(&out_text, &out_size);
    std::FILE* err = ::open_memstream(&err_text, &err_size);
    Output output{false, out, err};

    std::string text()
    {
        std::fflush(out);
        std::fflush(err);
        return std::string(out_text, out_size) + std::string(err_text, err_size);
    }
    ~Captured()
    {
        std::fclose(out);
        std::fclose(err);
        std::free(out_text);
        std::free(err_text);
    }
};

} // namespace

TEST_CASE("names and messages from a server never reach the terminal raw")
{
    // A hostile or broken server is not bound by PROTOCOL.md 5: whatever it
    // sends, the terminal gets no control, format or invisible character.
    const std::string rlo = "invoice\xe2\x80\xae"
                            "fdp.exe";
    const std::string csi = "x\xc2\x9b"
                            "2J\x1b]0;owned\x07";
    ferry::ListReply list;
    list.files.push_back({rlo, 1, 0});
    list.files.push_back({csi, 2, 0});
    list.files.push_back({"caf\xc3\xa9.txt", 3, 0});
    Captured shown;
    shown.output.list(list);
    shown.output.stat({rlo, 1, 0});
    shown.output.error(ferry::Error{ferry::ErrorCode::not_found, "no file named \"" + csi + "\""});
    const std::string text = shown.text();
    CHECK(text.find("invoice\\u{202E}fdp.exe") != std::string::npos);
    CHECK(text.find("x\\u{009B}2J\\u{001B}]0;owned\\u{0007}") != std::string::npos);
    CHECK(text.find("caf\xc3\xa9.txt") != std::string::npos);
    for (const std::string raw : {"\xe2\x80\xae", "\xc2\x9b", "\x1b", "\x07"}) {
        CHECK(text.find(raw) == std::string::npos);
    }
}

TEST_CASE("a part file records in its sidecar exactly the bytes it has made durable")
{
    ferry::test::TempDir dir;
    const std::string part = dir / "f.ferry-part";
    const std::string sidecar = part + ".state";
    auto file = LocalFile::open(part, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(file.ok());
    DownloadState state{"f", 10, 1764370000, 0, {}, {}, {}};
    PartFile written(std::move(file.value()), sidecar, state, ferry::TransferHash(ferry::HashKind::sha256), false);
    const std::string text = "abcdef";
    REQUIRE(written.append(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), 3)).ok());
    CHECK(written.held() == 3);
    CHECK(written.since_checkpoint() == 3);
    CHECK_FALSE(ferry::test::exists(sidecar));
    REQUIRE(written.checkpoint().ok());
    CHECK(written.since_checkpoint() == 0);
    REQUIRE(written.append(std::span(reinterpret_cast<const std::uint8_t*>(text.data()) + 3, 3)).ok());
    const auto recorded = read_download_state(sidecar);
    REQUIRE(recorded.ok());
    CHECK(recorded->bytes_held == 3); // not the three appended since
    ferry::Sha256 abc;
    abc.update("abc", 3);
    CHECK(recorded->prefix_digest == abc.hex_digest());
    CHECK(written.hash().hex_digest() != abc.hex_digest());
    // A failure that records now keeps the part, with all six bytes vouched for.
    written.leave_for_resume(true);
    CHECK(ferry::test::read_file(part) == text);
    CHECK(read_download_state(sidecar)->bytes_held == 6);

    // A part that no sidecar vouches for is not kept.
    const std::string other = dir / "g.ferry-part";
    auto second = LocalFile::open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(second.ok());
    PartFile unrecorded(std::move(second.value()), other + ".state", state,
                        ferry::TransferHash(ferry::HashKind::sha256), false);
    REQUIRE(unrecorded.append(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), 2)).ok());
    unrecorded.leave_for_resume(false);
    CHECK_FALSE(ferry::test::exists(other));
}

namespace {

// Lends blocks of its own and counts the hand-backs, as the hash pipeline
// would (StreamWriter's inner lender).
class CountingLender final : public ferry::client::ReceiveBuffers {
public:
    std::span<std::uint8_t> next(std::span<std::uint8_t> /*used*/) override
    {
        ++calls;
        return std::span(blocks[calls % 2]);
    }
    std::array<std::array<std::uint8_t, 4096>, 2> blocks{};
    int calls = 0;
};

std::string file_text(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

namespace {

void check_stream_writer(bool with_inner)
{
    CAPTURE(with_inner);
    ferry::test::TempDir dir;
    const std::string path = dir / "out";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    CountingLender inner;
    ferry::client::StreamWriter out(fd, "out", with_inner ? &inner : nullptr);

    // Bytes read before the lending (the connection's own buffer): at once.
    const std::string early = "early ";
    REQUIRE(out.add(std::span(reinterpret_cast<const std::uint8_t*>(early.data()), early.size())));
    CHECK(out.write_calls() == 1);

    // Three pieces of one block, with frame headers (skipped) between them;
    // the first two lie end to end, as one frame read in two reads does.
    auto block = out.next({});
    CHECK(inner.calls == (with_inner ? 1 : 0));
    const std::string text = "one|two|HDRthree";
    std::copy(text.begin(), text.end(), block.begin());
    REQUIRE(out.add(block.subspan(0, 4)));
    REQUIRE(out.add(block.subspan(4, 4)));
    REQUIRE(out.add(block.subspan(11, 5)));
    CHECK(out.write_calls() == 1); // queued
    CHECK(file_text(path) == "early ");

    // Moving on to fresh memory writes them, with one call.
    block = out.next(block);
    CHECK(out.write_calls() == 2);
    CHECK(file_text(path) == "early one|two|three");
    CHECK(inner.calls == (with_inner ? 2 : 0));

    // The end of the transfer: what is queued goes with flush().
    block[0] = '!';
    REQUIRE(out.add(block.subspan(0, 1)));
    REQUIRE(out.flush());
    CHECK(out.write_calls() == 3);
    CHECK(file_text(path) == "early one|two|three!");
    ::close(fd);
}

} // namespace

TEST_CASE("a stream writer writes the pieces of a lent block in one call, in order")
{
    check_stream_writer(false); // its own block
    check_stream_writer(true);  // the hash pipeline's, handed back after the write
}

TEST_CASE("a stream writer keeps its write failure and writes nothing more")
{
    ferry::test::TempDir dir;
    const std::string path = dir / "read-only";
    std::ofstream(path) << "x";
    const int fd = ::open(path.c_str(), O_RDONLY); // writes fail: EBADF
    REQUIRE(fd >= 0);
    ferry::client::StreamWriter out(fd, "the stream");
    auto block = out.next({});
    block[0] = 'a';
    REQUIRE(out.add(block.subspan(0, 1))); // queued
    block = out.next(block);               // the write fails here, kept
    const auto first = out.flush();
    REQUIRE_FALSE(first);
    CHECK(first.error().message.find("cannot write to the stream") != std::string::npos);
    const auto calls = out.write_calls();
    CHECK_FALSE(out.add(block.subspan(0, 1)));
    CHECK_FALSE(out.flush());
    CHECK(out.write_calls() == calls);
    ::close(fd);
}
