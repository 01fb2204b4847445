// The command line as scripts use it: every --json output is one JSON
// object (errors too), exit statuses, FERRY_SERVER, --help and --version.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace ferry::test;

TEST_CASE("every --json output is one JSON object, errors included")
{
    Fixture f;
    write_random_file(f.root_file("a.bin"), 100, 31);
    write_random_file(f.local_file("b.bin"), 200, 32);
    const std::string server = f.server.address();

    struct Case {
        std::vector<std::string> args;
        int exit_code;
        std::string error; // "" for success
    };
    const std::vector<Case> cases{
        {{"--json", "list"}, 0, ""},
        {{"--json", "stat", "a.bin"}, 0, ""},
        {{"--json", "get", "a.bin", "-o", f.local_file("a.bin")}, 0, ""},
        {{"--json", "put", f.local_file("b.bin")}, 0, ""},
        {{"list", "--json"}, 0, ""}, // options also after the command
        {{"--json", "get", "nope.bin", "-o", f.local_file("nope.bin")}, 4, "not_found"},
        {{"--json", "get", "a.bin", "nope.bin", "-o", f.local_file("x")}, 2, "bad_request"}, // -o takes one NAME
        {{"--json", "get", "a.bin", "-o", "-", "--resume"}, 2, "bad_request"},
        {{"--json", "put", f.local_file("b.bin"), f.local_file("a.bin"), "--as", "c.bin"}, 2, "bad_request"},
        {{"--json", "--tls-pin", "sha256:12", "list"}, 2, "bad_request"},
        {{"--json", "stat", ".hidden"}, 4, "invalid_name"},
        {{"--json", "put", f.local_file("does-not-exist")}, 3, "local_io"},
        {{"--json", "put", f.local}, 3, "local_io"}, // a folder is not a file to send
        {{"--json", "frobnicate"}, 2, "bad_request"},
        {{"--json", "stat"}, 2, "bad_request"},
    };
    for (const auto& c : cases) {
        std::string joined;
        for (const auto& arg : c.args) {
            joined += arg + " ";
        }
        CAPTURE(joined);
        const auto result = run_ferry(server, c.args);
        const auto json = parse_output(result);
        CHECK(result.exit_code == c.exit_code);
        CHECK(error_code(json) == c.error);
    }
    CHECK(files_equal(f.root_file("a.bin"), f.local_file("a.bin")));
    CHECK(files_equal(f.local_file("b.bin"), f.root_file("b.bin")));

    // No server there: connection_lost, naming the address.
    const auto stopped_port = f.server.port();
    CHECK(f.server.stop() == 0);
    const std::string gone = "127.0.0.1:" + std::to_string(stopped_port);
    const auto lost = run_ferry(gone, {"--json", "list"});
    const auto json = parse_output(lost);
    CHECK(lost.exit_code == 6);
    CHECK(error_code(json) == "connection_lost");
    CHECK(json["error"]["message"].get<std::string>().find(gone) != std::string::npos);

    const auto bad_address = run_ferry("nowhere:99999", {"--json", "list"});
    CHECK(bad_address.exit_code == 2);
    CHECK(error_code(parse_output(bad_address)) == "bad_request");
}

TEST_CASE("FERRY_SERVER sets the default server")
{
    Fixture f;
    write_file(f.root_file("hello.txt"), "hi");
    ChildProcess::Options options;
    options.extra_env = {"FERRY_SERVER=" + f.server.address()};
    const auto list = run_ferry_with({"--json", "list"}, options);
    const auto json = parse_output(list);
    REQUIRE(list.exit_code == 0);
    REQUIRE(json["files"].size() == 1);
    CHECK(json["files"][0]["name"] == "hello.txt");
}

TEST_CASE("usage: --help and --version; no command and no terminal reads commands from standard input")
{
    // Batch mode (test/terminal has the rest): an empty input is nothing to do.
    const auto bare = run_ferry_with({}, {});
    CHECK(bare.exit_code == 0);
    CHECK(bare.out.empty());
    CHECK(bare.err.empty());

    const auto help = run_ferry_with({"--help"}, {});
    CHECK(help.exit_code == 0);
    for (const char* word : {"list",
                             "stat",
                             "get",
                             "put",
                             "stats",
                             "--no-resume",
                             "--json",
                             "--server",
                             "FERRY_SERVER",
                             "-o",
                             "-C",
                             "--as",
                             "--token",
                             "--token-file",
                             "FERRY_TOKEN",
                             "--tls",
                             "--tls-ca",
                             "--tls-pin",
                             "FERRY_TLS_CA",
                             "FERRY_TLS_PIN",
                             "-fingerprint -sha256",
                             "Exit status"}) {
        CHECK_MESSAGE(help.out.find(word) != std::string::npos, word);
    }

    const auto version = run_ferry_with({"--version"}, {});
    CHECK(version.exit_code == 0);
    CHECK(version.out.starts_with("ferry "));

    const auto wrong = run_ferry_with({"get"}, {});
    CHECK(wrong.exit_code == 2);
}

TEST_CASE("ferry put of a name PROTOCOL.md 5 refuses says why and how to send it anyway")
{
    Fixture f;
    const std::string nfd = "cafe\xcc\x81.txt"; // e + U+0301: not NFC
    const std::string rlo = "invoice\xe2\x80\xae"
                            "fdp.exe";
    write_file(f.local_file(nfd), "x");
    write_file(f.local_file(rlo), "y");

    const auto refused = run_ferry(f.server.address(), {"put", f.local_file(nfd)});
    CHECK(refused.exit_code != 0);
    CHECK(refused.err.find("invalid_name") != std::string::npos);
    CHECK(refused.err.find("caf\xc3\xa9.txt") != std::string::npos); // the NFC form
    CHECK(refused.err.find("--as") != std::string::npos);

    const auto hidden = run_ferry(f.server.address(), {"put", f.local_file(rlo)});
    CHECK(hidden.exit_code != 0);
    CHECK(hidden.err.find("U+202E") != std::string::npos);
    CHECK(hidden.err.find("\xe2\x80\xae") == std::string::npos); // shown escaped, never raw

    const auto renamed = run_ferry(f.server.address(), {"put", f.local_file(nfd), "--as", "caf\xc3\xa9.txt"});
    CHECK(renamed.exit_code == 0);
    CHECK(read_file(f.root_file("caf\xc3\xa9.txt")) == "x");
}
