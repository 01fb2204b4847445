// TLS from the client's side, with a certificate made at run time by
// `openssl req`: a byte-exact round trip trusting a CA file or a pinned
// fingerprint, and clean refusals: a wrong pin, an untrusted certificate,
// a plaintext client on a TLS server, a TLS client on a plaintext server.
#include "support.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ferry::test;

namespace {

constexpr const char* kOpenssl = "/usr/bin/openssl";

struct TlsServer {
    explicit TlsServer(std::vector<std::string> extra = {})
        : root(dir / "root"), cert(dir / "cert.pem"), key(dir / "key.pem"), log(dir / "server.log"),
          server((prepare(root, cert, key), root), log, with_tls(cert, key, std::move(extra)))
    {
        REQUIRE_MESSAGE(server.running(), read_file(log));
    }

    static std::vector<std::string> with_tls(const std::string& cert, const std::string& key,
                                             std::vector<std::string> extra)
    {
        extra.insert(extra.begin(), {"--tls-cert", cert, "--tls-key", key});
        return extra;
    }

    static void prepare(const std::string& root, const std::string& cert, const std::string& key)
    {
        REQUIRE(::mkdir(root.c_str(), 0755) == 0);
        REQUIRE_MESSAGE(exists(kOpenssl), "the TLS tests need openssl");
        ChildProcess req({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-days", "1", "-subj", "/CN=localhost", "-addext",
                          "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert},
                         {});
        const auto made = req.wait(60s);
        REQUIRE_MESSAGE(made.exit_code == 0, made.err);
    }

    // What `openssl x509 -fingerprint -sha256` prints after "=": AB:CD:...
    std::string fingerprint() const
    {
        ChildProcess x509({kOpenssl, "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"}, {});
        const auto printed = x509.wait(60s);
        REQUIRE(printed.exit_code == 0);
        const auto equals = printed.out.find('=');
        REQUIRE(equals != std::string::npos);
        std::string pin = printed.out.substr(equals + 1);
        while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) {
            pin.pop_back();
        }
        return pin;
    }

    TempDir dir;
    std::string root;
    std::string cert;
    std::string key;
    std::string log;
    ServerProcess server;
};

} // namespace

TEST_CASE("TLS round trip is byte-exact, trusting the certificate as a CA file or by its pin")
{
    TlsServer s;
    const std::string source = s.dir / "source.bin";
    write_random_file(source, 3 * 1024 * 1024 + 17, 91);

    const auto put = run_ferry(s.server.address(), {"--json", "--tls-ca", s.cert, "put", source, "--as", "up.bin"});
    const auto put_json = only_file(parse_output(put));
    REQUIRE(put.exit_code == 0);
    CHECK(put_json["digest"]["value"] == sha256_of_file(source));
    CHECK(files_equal(source, s.root + "/up.bin"));

    // By name as well as by IP address: the certificate names both.
    const std::string by_name = "localhost:" + std::to_string(s.server.port());
    const auto get = run_ferry(by_name, {"--json", "--tls-ca", s.cert, "get", "up.bin", "-o", s.dir / "back.bin"});
    parse_output(get);
    CHECK(get.exit_code == 0);
    CHECK(files_equal(source, s.dir / "back.bin"));

    const std::string pin = "sha256:" + s.fingerprint();
    const auto pinned = run_ferry(s.server.address(), {"--json", "--tls-pin", pin, "get", "up.bin", "-o", "-"});
    CHECK(pinned.exit_code == 0);
    CHECK(pinned.out == read_file(source));
    // Also from the environment, without the prefix and the colons.
    std::string bare = s.fingerprint();
    std::erase(bare, ':');
    const auto from_env = run_ferry(s.server.address(), {"--json", "list"}, kFerryTimeout, {"FERRY_TLS_PIN=" + bare});
    CHECK(from_env.exit_code == 0);
    CHECK(parse_output(from_env)["files"].size() == 1);
}

TEST_CASE("a wrong pin or an untrusted certificate is refused before anything is sent")
{
    TlsServer s;
    std::string wrong = s.fingerprint();
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    const auto pinned = run_ferry(s.server.address(), {"--json", "--tls-pin", "sha256:" + wrong, "list"});
    CHECK(pinned.exit_code == 5);
    const auto pinned_json = parse_output(pinned);
    CHECK(error_code(pinned_json) == "tls_failed");
    CHECK(pinned_json["error"]["message"].get<std::string>().find("not the pinned") != std::string::npos);

    // The system's CA store does not know a certificate made a moment ago.
    const auto system = run_ferry(s.server.address(), {"--json", "--tls", "list"});
    CHECK(system.exit_code == 5);
    const auto system_json = parse_output(system);
    CHECK(error_code(system_json) == "tls_failed");
    CHECK(system_json["error"]["message"].get<std::string>().find("not trusted") != std::string::npos);
}

TEST_CASE("a plaintext client on a TLS server gets tls_required, a TLS client on a plaintext server a clear error")
{
    TlsServer s;
    const auto plain = run_ferry(s.server.address(), {"--json", "list"});
    CHECK(plain.exit_code == 5);
    CHECK(error_code(parse_output(plain)) == "tls_required");
    const auto human = run_ferry(s.server.address(), {"list"});
    CHECK(human.exit_code == 5);
    CHECK(human.err.starts_with("ferry: tls_required: "));

    Fixture f; // plaintext
    const auto tls = run_ferry(f.server.address(), {"--json", "--timeout", "5", "--tls-ca", s.cert, "list"}, 60s);
    CHECK(tls.exit_code == 5);
    CHECK_FALSE(tls.timed_out);
    const auto tls_json = parse_output(tls);
    CHECK(error_code(tls_json) == "tls_failed");
    CHECK(tls_json["error"]["message"].get<std::string>().find("does not speak TLS") != std::string::npos);
}

TEST_CASE("a TLS server at its connection limit closes before the handshake, and the client says what that means")
{
    // One worker: its listener accepts the two connections in the order they
    // came, so the first is counted before the client's (with one listener
    // per worker the client's may be accepted first, and let in).
    TlsServer s({"--max-connections-per-address", "1", "--workers", "1"});
    // One connection that says nothing holds the address's only slot (its
    // handshake pending, for the handshake timeout of 5 s).
    const int held = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(held >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(s.server.port()));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(held, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
    const auto refused = run_ferry(s.server.address(), {"--json", "--tls-ca", s.cert, "list"});
    ::close(held);
    CHECK(refused.exit_code == 6); // worth a retry, as address_limit is
    const auto refused_json = parse_output(refused);
    CHECK(error_code(refused_json) == "connection_lost");
    const auto message = refused_json["error"]["message"].get<std::string>();
    CHECK_MESSAGE(message.find("closed the connection during the handshake") != std::string::npos, message);
    CHECK_MESSAGE(message.find("connection limit") != std::string::npos, message);
}
