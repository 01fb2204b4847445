// Tokens from the client's side: --token, --token-file and FERRY_TOKEN reach
// the server's hello check, a wrong or missing one is refused with
// unauthorized, and a read-only token reads but cannot put.
#include "support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace ferry::test;

namespace {

constexpr const char* kWriter = "0123456789abcdef-writer";
constexpr const char* kReader = "0123456789abcdef-reader";

// A served folder holding one file, behind a token file with one token of each kind.
struct TokenServer {
    TokenServer()
        : root(dir / "root"), tokens(dir / "tokens"), log(dir / "server.log"),
          server((make_root(root, tokens), root), log, {"--token-file", tokens})
    {
        REQUIRE_MESSAGE(server.running(), read_file(log));
    }

    static void make_root(const std::string& root, const std::string& tokens)
    {
        REQUIRE(::mkdir(root.c_str(), 0755) == 0);
        write_file(root + "/served.txt", "served bytes");
        write_file(tokens, std::string(kWriter) + " rw\n" + kReader + " ro\n");
    }

    TempDir dir;
    std::string root;
    std::string tokens;
    std::string log;
    ServerProcess server;
};

} // namespace

TEST_CASE("a valid token is accepted from --token, --token-file or FERRY_TOKEN")
{
    TokenServer s;
    const auto flag = run_ferry(s.server.address(), {"--json", "--token", kWriter, "list"});
    CHECK(flag.exit_code == 0);
    CHECK(parse_output(flag)["files"].size() == 1);

    const std::string token_file = s.dir / "my-token";
    write_file(token_file, std::string(kReader) + "\n# the rest of the file is ignored\n");
    const auto from_file = run_ferry(s.server.address(), {"--json", "--token-file", token_file, "stat", "served.txt"});
    CHECK(from_file.exit_code == 0);
    CHECK(parse_output(from_file)["size"] == 12);

    const auto from_env =
        run_ferry(s.server.address(), {"--json", "list"}, kFerryTimeout, {std::string("FERRY_TOKEN=") + kWriter});
    CHECK(from_env.exit_code == 0);
    CHECK(error_code(parse_output(from_env)).empty());

    // The flag wins over the environment.
    const auto flag_wins = run_ferry(s.server.address(), {"--json", "--token", kWriter, "list"}, kFerryTimeout,
                                     {"FERRY_TOKEN=not-a-valid-token-at-all"});
    CHECK(flag_wins.exit_code == 0);
    CHECK(error_code(parse_output(flag_wins)).empty());
}

TEST_CASE("a wrong or missing token is refused with unauthorized")
{
    TokenServer s;
    const auto wrong = run_ferry(s.server.address(), {"--json", "--token", "0123456789abcdef-wrong", "list"});
    CHECK(wrong.exit_code == 5);
    CHECK(error_code(parse_output(wrong)) == "unauthorized");

    const auto missing = run_ferry(s.server.address(), {"list"});
    CHECK(missing.exit_code == 5);
    CHECK(missing.err.starts_with("ferry: unauthorized: "));

    const auto unreadable = run_ferry(s.server.address(), {"--json", "--token-file", s.dir / "nope", "list"});
    CHECK(unreadable.exit_code == 3);
    CHECK(error_code(parse_output(unreadable)) == "local_io");
}

TEST_CASE("a read-only token gets files but its puts are forbidden")
{
    TokenServer s;
    const std::string local = s.dir / "upload.txt";
    write_file(local, "new bytes");
    const auto put = run_ferry(s.server.address(), {"--json", "--token", kReader, "put", local});
    CHECK(put.exit_code == 4);
    CHECK(error_code(parse_output(put)) == "forbidden");
    CHECK_FALSE(exists(s.root + "/upload.txt"));

    const auto get =
        run_ferry(s.server.address(), {"--json", "--token", kReader, "get", "served.txt", "-o", s.dir / "copy.txt"});
    CHECK(get.exit_code == 0);
    CHECK(read_file(s.dir / "copy.txt") == "served bytes");

    const auto writer = run_ferry(s.server.address(), {"--json", "--token", kWriter, "put", local});
    CHECK(writer.exit_code == 0);
    CHECK(read_file(s.root + "/upload.txt") == "new bytes");
}
