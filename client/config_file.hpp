// Named servers in ~/.config/ferry/config.toml ($XDG_CONFIG_HOME honoured;
// FERRY_CONFIG names another file), read with toml++:
//
//   default = "backup"                 # the server when none is named
//   [servers.backup]
//   address = "backup.example.org:7021"   # or ferry://backup.example.org:7021
//   token_file = "~/.config/ferry/backup.token"
//   tls = true                         # implied by tls_ca and tls_pin
//   tls_ca = "/etc/ferry/ca.pem"
//   tls_pin = "sha256:..."
//
// And the pasteable address form ferry://HOST[:PORT][/NAME], accepted by
// --server and in place of a NAME.
#pragma once

#include "endpoint.hpp"
#include "error.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::client {

struct ServerEntry {
    std::string address; // HOST:PORT, as --server takes it
    std::string token_file;
    bool tls = false;
    std::string tls_ca;
    std::string tls_pin;
};

struct ConfigFile {
    std::string path; // where it was read from; empty when there was none
    std::optional<std::string> default_server;
    std::map<std::string, ServerEntry> servers;
};

// The file's path: $FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.toml,
// else ~/.config/ferry/config.toml.
std::string config_path();

// Reads the file at `path`; a file that does not exist is an empty config.
// Errors (bad_request) name the file, line and key.
Result<ConfigFile> load_config(const std::string& path);

// "ferry://HOST[:PORT][/NAME]": the server and the name (percent-decoded,
// empty when absent). nullopt when `text` is no ferry:// address at all;
// an error when it is one, but broken.
inline constexpr std::string_view kUrlScheme = "ferry://";
bool is_ferry_url(std::string_view text);
struct FerryUrl {
    Endpoint endpoint;
    std::string name;
};
Result<FerryUrl> parse_ferry_url(std::string_view text);

} // namespace ferry::client
