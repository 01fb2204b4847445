#include "config_file.hpp"

#include "hex.hpp"

#include <toml++/toml.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ferry::client {

namespace {

Error bad_config(const std::string& path, const std::string& why)
{
    return Error{ErrorCode::bad_request, "config file \"" + path + "\": " + why};
}

std::string where(const toml::node& node)
{
    const auto& source = node.source();
    return "line " + std::to_string(source.begin.line);
}

// "~/x" in paths, as people write them in config files.
std::string expand_home(const std::string& path)
{
    if (path.starts_with("~/")) {
        if (const char* home = std::getenv("HOME"); home != nullptr) {
            return std::string(home) + path.substr(1);
        }
    }
    return path;
}

} // namespace

std::string config_path()
{
    if (const char* named = std::getenv("FERRY_CONFIG"); named != nullptr && *named != '\0') {
        return named;
    }
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg == '/') {
        return std::string(xdg) + "/ferry/config.toml";
    }
    const char* home = std::getenv("HOME");
    return std::string(home != nullptr ? home : "") + "/.config/ferry/config.toml";
}

Result<ConfigFile> load_config(const std::string& path)
{
    ConfigFile config;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        // A file FERRY_CONFIG names must be there: misspelt, the command
        // would go to the default server, and its error would name the
        // network, not the file. The default file may be missing or out of
        // reach (a HOME of another user's, attack round 73): nothing
        // configured, as always.
        const int error = errno;
        const char* named = std::getenv("FERRY_CONFIG");
        if (named != nullptr && path == named) {
            return bad_config(path, std::string(std::strerror(error)) + " (FERRY_CONFIG names it)");
        }
        return config; // no file: nothing configured
    }
    config.path = path;
    toml::table table;
    try {
        table = toml::parse_file(path);
    } catch (const toml::parse_error& error) {
        return bad_config(path, "line " + std::to_string(error.source().begin.line) + ": " +
                                    std::string(error.description()));
    }
    for (const auto& [key, node] : table) {
        if (key == "default") {
            const auto* value = node.as_string();
            if (value == nullptr) {
                return bad_config(path, where(node) + ": \"default\" must be a string, the name of a server");
            }
            config.default_server = value->get();
        } else if (key == "servers") {
            const auto* servers = node.as_table();
            if (servers == nullptr) {
                return bad_config(path, where(node) + ": \"servers\" must be a table of [servers.NAME]");
            }
            for (const auto& [name, entry_node] : *servers) {
                const auto* entry = entry_node.as_table();
                const std::string server_name(name.str());
                if (entry == nullptr) {
                    return bad_config(path, where(entry_node) + ": [servers." + server_name + "] must be a table");
                }
                ServerEntry server;
                for (const auto& [field, value] : *entry) {
                    const std::string field_name(field.str());
                    // A named reference: clang before 16 cannot capture a structured binding.
                    const auto& field_value = value;
                    const auto text = [&](std::string& out) -> bool {
                        if (const auto* string = field_value.as_string()) {
                            out = string->get();
                            return true;
                        }
                        return false;
                    };
                    bool ok = true;
                    if (field_name == "address") {
                        ok = text(server.address);
                    } else if (field_name == "token_file") {
                        ok = text(server.token_file);
                        server.token_file = expand_home(server.token_file);
                    } else if (field_name == "tls_ca") {
                        ok = text(server.tls_ca);
                        server.tls_ca = expand_home(server.tls_ca);
                    } else if (field_name == "tls_pin") {
                        ok = text(server.tls_pin);
                    } else if (field_name == "tls") {
                        const auto* flag = value.as_boolean();
                        ok = flag != nullptr;
                        server.tls = ok && flag->get();
                    } else {
                        return bad_config(path, where(value) + ": unknown key \"" + field_name + "\" in [servers." +
                                                    server_name +
                                                    "] (known: address, token_file, tls, tls_ca, tls_pin)");
                    }
                    if (!ok) {
                        return bad_config(path, where(value) + ": \"" + field_name + "\" of [servers." +
                                                    server_name + "] has the wrong type");
                    }
                    const std::string named =
                        where(value) + ": \"" + field_name + "\" of [servers." + server_name + "]";
                    if (const auto* string = value.as_string()) {
                        // TOML writes any code point, NUL too (\u0000); a path,
                        // address or fingerprint cut short there by the system
                        // would name another file or server than the one written.
                        if (string->get().find('\0') != std::string::npos) {
                            return bad_config(path, named + " holds a NUL character (\\u0000), which no path, "
                                                            "address or fingerprint holds");
                        }
                        // Round 76, F2: tls_pin = "" (a template left unfilled)
                        // spoke plaintext and sent the token in clear, as if
                        // the entry named no TLS trust; no key takes "".
                        if (string->get().empty()) {
                            return bad_config(path, named + " is empty: give a value or leave the key out");
                        }
                    }
                }
                if (server.address.empty()) {
                    return bad_config(path, "[servers." + server_name + "] has no address");
                }
                config.servers.emplace(server_name, std::move(server));
            }
        } else {
            return bad_config(path, where(node) + ": unknown key \"" + std::string(key.str()) +
                                        "\" (known: default, servers)");
        }
    }
    if (config.default_server && !config.servers.contains(*config.default_server)) {
        return bad_config(path, "default = \"" + *config.default_server + "\" names no [servers." +
                                    *config.default_server + "]");
    }
    return config;
}

bool is_ferry_url(std::string_view text)
{
    return text.starts_with(kUrlScheme);
}

Result<FerryUrl> parse_ferry_url(std::string_view text)
{
    const auto bad = [&](const std::string& why) {
        return Error{ErrorCode::bad_request, "bad address \"" + std::string(text) + "\": " + why};
    };
    if (!is_ferry_url(text)) {
        return bad("it does not start with ferry://");
    }
    std::string_view rest = text.substr(kUrlScheme.size());
    // The authority ends at the first '/' after any [IPv6] brackets.
    std::size_t search_from = 0;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            return bad("missing ']'");
        }
        search_from = close;
    }
    const auto slash = rest.find('/', search_from);
    const std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (authority.find('@') != std::string_view::npos || authority.find('?') != std::string_view::npos ||
        authority.find('#') != std::string_view::npos) {
        return bad("only ferry://HOST[:PORT][/NAME] is understood");
    }
    // A bare IPv6 address without brackets would be ambiguous with a port.
    if (!authority.empty() && authority.front() != '[' && authority.find(':') != authority.rfind(':')) {
        return bad("an IPv6 address goes in brackets: ferry://[::1]:7021/NAME");
    }
    auto endpoint = parse_endpoint(authority);
    if (!endpoint) {
        return bad(endpoint.error().message);
    }
    FerryUrl url;
    url.endpoint = std::move(endpoint.value());
    // Percent-encoding lets a pasted address carry any name (RFC 3986 2.1).
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%') {
            // Either case, as RFC 3986 allows.
            const auto byte = from_hex(i + 2 < path.size() ? path.substr(i + 1, 2) : std::string_view());
            if (!byte || byte->size() != 1) {
                return bad("'%' must be followed by two hex digits");
            }
            url.name += *byte;
            i += 2;
        } else if (path[i] == '?' || path[i] == '#') {
            return bad("a name with '" + std::string(1, path[i]) + "' must write it as %" +
                       (path[i] == '?' ? "3F" : "23"));
        } else {
            url.name.push_back(path[i]);
        }
    }
    return url;
}

} // namespace ferry::client
