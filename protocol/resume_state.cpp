#include "resume_state.hpp"

#include "hex.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>

namespace ferry {

namespace {

constexpr int kVersion = 3;
// The client's sidecar before version 3: the same JSON, every download field
// required, the hash state under the name of the only hash it then had.
constexpr int kClientVersion2 = 2;
// The server's state file before version 3: "key value" lines, the name in hex.
constexpr std::string_view kServerV1Magic = "ferry-partial-state v1\n";

using nlohmann::json;

template <class Number>
std::optional<Number> number_field(const json& object, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end()) {
        return std::nullopt;
    }
    if constexpr (std::is_unsigned_v<Number>) {
        if (!it->is_number_unsigned()) {
            return std::nullopt;
        }
    } else if (!it->is_number_integer()) {
        return std::nullopt;
    }
    return it->get<Number>();
}

std::optional<std::string> string_field(const json& object, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

// A field that may be absent, but is refused when present with the wrong type.
template <class T, class Read>
bool optional_field(const json& object, const char* key, std::optional<T>& into, Read&& read)
{
    if (!object.contains(key)) {
        return true;
    }
    into = read(object, key);
    return into.has_value();
}

std::optional<PartIdentity> part_field(const json& object, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end() || !it->is_array() || it->size() != 5) {
        return std::nullopt;
    }
    const json& part = *it;
    if (!part[0].is_number_unsigned() || !part[1].is_number_unsigned() || !part[2].is_number_unsigned() ||
        !part[3].is_number_integer() || !part[4].is_number_integer()) {
        return std::nullopt;
    }
    return PartIdentity{part[0].get<std::uint64_t>(), part[1].get<std::uint64_t>(), part[2].get<std::uint64_t>(),
                        part[3].get<std::int64_t>(), part[4].get<std::int64_t>()};
}

std::optional<PublishIntent> publishing_field(const json& object, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end() || !it->is_object()) {
        return std::nullopt;
    }
    const auto device = number_field<std::uint64_t>(*it, "device");
    const auto inode = number_field<std::uint64_t>(*it, "inode");
    const auto uid = number_field<std::uint64_t>(*it, "uid");
    const auto gid = number_field<std::uint64_t>(*it, "gid");
    const auto mode = number_field<std::uint64_t>(*it, "mode");
    const auto acl = string_field(*it, "acl");
    constexpr std::uint64_t kId = std::numeric_limits<std::uint32_t>::max();
    if (!device || !inode || !uid || !gid || !mode || !acl || *uid > kId || *gid > kId || *mode > 07777) {
        return std::nullopt;
    }
    return PublishIntent{*device, *inode, static_cast<std::uint32_t>(*uid), static_cast<std::uint32_t>(*gid),
                         static_cast<std::uint32_t>(*mode), *acl};
}

std::optional<ResumeState> decode_json(std::string_view text)
{
    const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
        return std::nullopt;
    }
    const auto version = number_field<std::int64_t>(object, "version");
    if (!version || (*version != kVersion && *version != kClientVersion2)) {
        return std::nullopt;
    }
    ResumeState state;
    const auto name = string_field(object, "name");
    const auto size = number_field<std::uint64_t>(object, "size");
    const auto held = number_field<std::uint64_t>(object, "bytes_held");
    const auto hash = string_field(object, *version == kVersion ? "hash_state" : "sha256_state");
    if (!name || !size || !held || !hash) {
        return std::nullopt;
    }
    state.name = *name;
    state.size = *size;
    state.bytes_held = *held;
    state.hash_state = *hash;
    if (!optional_field(object, "mtime", state.mtime, number_field<std::int64_t>) ||
        !optional_field(object, "prefix_digest", state.prefix_digest, string_field) ||
        !optional_field(object, "part", state.part, part_field) ||
        !optional_field(object, "written_ns", state.written_ns, number_field<std::int64_t>) ||
        !optional_field(object, "owner", state.owner, string_field) ||
        !optional_field(object, "publishing", state.publishing, publishing_field)) {
        return std::nullopt;
    }
    if (*version == kClientVersion2 && (!state.mtime || !state.prefix_digest || !state.part)) {
        return std::nullopt;
    }
    return state;
}

template <class Number>
std::optional<Number> decimal(std::string_view text)
{
    Number value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

// "ferry-partial-state v1", then lines of "key value": name (hex), size,
// durable, hash and written; unknown keys were skipped, and so they still are.
std::optional<ResumeState> decode_server_v1(std::string_view text)
{
    text.remove_prefix(kServerV1Magic.size());
    ResumeState state;
    bool have_name = false;
    bool have_size = false;
    bool have_durable = false;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.empty()) {
            continue;
        }
        const auto space = line.find(' ');
        if (space == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view key = line.substr(0, space);
        const std::string_view value = line.substr(space + 1);
        if (key == "name") {
            auto name = from_hex(value);
            if (!name) {
                return std::nullopt;
            }
            state.name = std::move(*name);
            have_name = true;
        } else if (key == "size" || key == "durable") {
            const auto number = decimal<std::uint64_t>(value);
            if (!number) {
                return std::nullopt;
            }
            (key == "size" ? state.size : state.bytes_held) = *number;
            (key == "size" ? have_size : have_durable) = true;
        } else if (key == "hash") {
            state.hash_state = value;
        } else if (key == "written") {
            state.written_ns = decimal<std::int64_t>(value);
            if (!state.written_ns) {
                return std::nullopt;
            }
        }
    }
    if (!have_name || !have_size || !have_durable) {
        return std::nullopt;
    }
    return state;
}

} // namespace

std::string encode_resume_state(const ResumeState& state)
{
    json object{
        {"version", kVersion},
        {"name", state.name},
        {"size", state.size},
        {"bytes_held", state.bytes_held},
        {"hash_state", state.hash_state},
    };
    if (state.mtime) {
        object["mtime"] = *state.mtime;
    }
    if (state.prefix_digest) {
        object["prefix_digest"] = *state.prefix_digest;
    }
    if (state.part) {
        const PartIdentity& part = *state.part;
        object["part"] = {part.device, part.inode, part.size, part.mtime_ns, part.ctime_ns};
    }
    if (state.written_ns) {
        object["written_ns"] = *state.written_ns;
    }
    if (state.owner) {
        object["owner"] = *state.owner;
    }
    if (state.publishing) {
        const PublishIntent& intent = *state.publishing;
        object["publishing"] = {{"device", intent.device}, {"inode", intent.inode}, {"uid", intent.uid},
                                {"gid", intent.gid},       {"mode", intent.mode},   {"acl", intent.acl}};
    }
    // Names are valid UTF-8 (check_file_name admits no other), so nothing is
    // replaced; replacing rather than throwing keeps this function total.
    return object.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string encode_publish_intent(const PublishIntent& intent, std::int64_t written_s)
{
    const json array = {intent.inode, intent.uid, intent.gid, intent.mode, intent.acl, written_s};
    return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<WrittenIntent> decode_publish_intent(std::string_view text)
{
    if (text.size() > kMaxResumeStateSize) {
        return std::nullopt;
    }
    const json array = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!array.is_array() || array.size() != 6 || !array[4].is_string() || !array[5].is_number_integer()) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < 4; ++i) {
        if (!array[i].is_number_unsigned()) {
            return std::nullopt;
        }
    }
    constexpr std::uint64_t kId = std::numeric_limits<std::uint32_t>::max();
    const auto uid = array[1].get<std::uint64_t>();
    const auto gid = array[2].get<std::uint64_t>();
    const auto mode = array[3].get<std::uint64_t>();
    if (uid > kId || gid > kId || mode > 07777) {
        return std::nullopt;
    }
    return WrittenIntent{PublishIntent{0, array[0].get<std::uint64_t>(), static_cast<std::uint32_t>(uid),
                                       static_cast<std::uint32_t>(gid), static_cast<std::uint32_t>(mode),
                                       array[4].get<std::string>()},
                         array[5].get<std::int64_t>()};
}

std::optional<ResumeState> decode_resume_state(std::string_view text)
{
    if (text.size() > kMaxResumeStateSize) {
        return std::nullopt;
    }
    auto state = text.starts_with(kServerV1Magic) ? decode_server_v1(text) : decode_json(text);
    if (!state || state->bytes_held > state->size) {
        return std::nullopt;
    }
    return state;
}

} // namespace ferry
