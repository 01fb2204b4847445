#include "messages.hpp"

#include "digest.hpp"
#include "names.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace ferry {

using nlohmann::json;

namespace {

// How much of an unknown op's or hash's name an error message repeats: the
// known ones are a few bytes long, and the rest of a name a peer made as
// long as a control frame would only grow the reply and the server's log
// line (round 76: a 64 KiB op made a 294 KB line).
constexpr std::size_t kEchoedValueBytes = 64;

// A number JSON allows but a double cannot hold (1e400, a 400-digit integer)
// stops nlohmann's parser with "number overflow". Such a text is still valid
// JSON, so each of its numbers out of a double's range is replaced by 1e308:
// a number that is no integer of any field, so the field that holds it is a
// bad_request (PROTOCOL.md 3.1), with the id when the id itself is fine.
// Numbers only occur outside strings, where a token starting with '-' or a
// digit is a number; a token that is no JSON number is left for the second
// parse to refuse.
// RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view text)
{
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            ++i;
        }
        return i > start;
    };
    if (i < text.size() && text[i] == '-') {
        ++i;
    }
    if (i < text.size() && text[i] == '0') {
        ++i;
    } else if (!digits()) {
        return false;
    }
    if (i < text.size() && text[i] == '.' && (++i, !digits())) {
        return false;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
            ++i;
        }
        if (!digits()) {
            return false;
        }
    }
    return i == text.size();
}

std::string with_huge_numbers_capped(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    bool in_string = false;
    bool escaped = false;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (in_string) {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
            out += c;
            ++i;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            in_string = c == '"';
            out += c;
            ++i;
            continue;
        }
        const std::size_t end = text.find_first_not_of("0123456789+-.eE", i);
        const std::string_view number = text.substr(i, end == std::string_view::npos ? end : end - i);
        double value = 0;
        const auto read = std::from_chars(number.data(), number.data() + number.size(), value);
        // Out of range also when too small (1e-400): no integer either way.
        if (read.ec == std::errc::result_out_of_range && read.ptr == number.data() + number.size() &&
            is_json_number(number)) {
            out += number.front() == '-' ? "-1e308" : "1e308";
        } else {
            out += number;
        }
        i += number.size();
    }
    return out;
}

// Builds a control frame's value in one pass over the text with nlohmann's
// SAX interface, refusing a key repeated within one object as it meets it:
// nlohmann's own parser would keep one of the values silently, and another
// receiver another one. Each key goes into its object through one lookup of
// the std::map that holds the object's fields (try_emplace), so the check
// costs no pass of its own and no memory beside the value: only the open
// containers' addresses, as nlohmann's own builder keeps. (Not taken: a
// second SAX pass over the text for the keys alone cost a third of a list
// reply's parse; nlohmann's callback parser scans the enclosing container
// for discarded values after every object it closes, quadratic in the
// objects one array or object holds, so 64 KiB of "{}," cost a server loop
// 75 ms.)
class ObjectBuilder final : public nlohmann::json_sax<json> {
public:
    enum class Outcome { built, repeated_key, number_overflow, not_json };

    Outcome outcome() const { return outcome_; }
    json& value() { return root_; }
    // Frees what was built (a pass stopped half way holds its part).
    void release()
    {
        root_ = json();
        open_ = {};
        field_ = nullptr;
    }

    bool null() override { return place(nullptr); }
    bool boolean(bool value) override { return place(value); }
    bool number_integer(number_integer_t value) override { return place(value); }
    bool number_unsigned(number_unsigned_t value) override { return place(value); }
    bool number_float(number_float_t value, const string_t&) override { return place(value); }
    bool string(string_t& value) override { return place(std::move(value)); }
    bool binary(binary_t& value) override { return place(std::move(value)); }
    bool start_object(std::size_t) override { return open(json::value_t::object); }
    bool key(string_t& name) override
    {
        auto [field, added] = open_.back()->get_ref<json::object_t&>().try_emplace(std::move(name));
        if (!added) {
            outcome_ = Outcome::repeated_key;
            return false; // found: the rest need not be read
        }
        field_ = &field->second;
        return true;
    }
    bool end_object() override
    {
        open_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return open(json::value_t::array); }
    bool end_array() override
    {
        open_.pop_back();
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) override
    {
        // A number a double cannot hold is nlohmann's out_of_range (406); any
        // other stop is text that is not JSON.
        outcome_ =
            dynamic_cast<const json::out_of_range*>(&error) != nullptr ? Outcome::number_overflow : Outcome::not_json;
        return false;
    }

private:
    // Where the next value goes: the root, the end of the open array, or the
    // field of the open object that the last key made.
    template <class Value>
    json* placed(Value&& value)
    {
        if (open_.empty()) {
            root_ = json(std::forward<Value>(value));
            return &root_;
        }
        if (open_.back()->is_array()) {
            auto& array = open_.back()->get_ref<json::array_t&>();
            array.emplace_back(std::forward<Value>(value));
            return &array.back();
        }
        *field_ = json(std::forward<Value>(value));
        return field_;
    }
    template <class Value>
    bool place(Value&& value)
    {
        (void)placed(std::forward<Value>(value));
        return true;
    }
    bool open(json::value_t kind)
    {
        open_.push_back(placed(kind));
        return true;
    }

    json root_;
    std::vector<json*> open_; // the containers begun and not yet ended, innermost last
    json* field_ = nullptr;
    Outcome outcome_ = Outcome::built;
};

// Parses a control frame's text into one JSON object, the way PROTOCOL.md 2
// and 3.1 read it; never throws. A key repeated within one object is bad_json
// (ObjectBuilder). A NUL byte is never JSON (not whitespace, and raw in no
// string), but nlohmann takes it for the end of the text and would ignore what
// follows; a byte order mark is not the whitespace PROTOCOL.md allows either.
// Linear in the text: one pass, or two where a number is capped.
Result<json> parse_object(std::string_view text)
{
    const Error not_json{ErrorCode::bad_json, "control frame is not a JSON object"};
    const Error repeated{ErrorCode::bad_json, "control frame repeats a key within one object"};
    if (text.find('\0') != std::string_view::npos || text.starts_with("\xEF\xBB\xBF")) {
        return not_json;
    }
    try {
        ObjectBuilder as_sent;
        (void)json::sax_parse(text.begin(), text.end(), &as_sent);
        ObjectBuilder as_capped;
        ObjectBuilder* builder = &as_sent;
        if (as_sent.outcome() == ObjectBuilder::Outcome::number_overflow) {
            // It stopped at the number a double cannot hold: the text is
            // read again with such numbers capped (with_huge_numbers_capped),
            // once the part built so far is gone, so that the two are never
            // held at once (round 82: a 16 MiB frame peaked at 1.9 times).
            as_sent.release();
            const std::string capped = with_huge_numbers_capped(text);
            (void)json::sax_parse(capped.begin(), capped.end(), &as_capped);
            builder = &as_capped;
        }
        switch (builder->outcome()) {
        case ObjectBuilder::Outcome::built:
            if (!builder->value().is_object()) {
                return not_json;
            }
            return std::move(builder->value());
        case ObjectBuilder::Outcome::repeated_key:
            return repeated;
        case ObjectBuilder::Outcome::number_overflow:
        case ObjectBuilder::Outcome::not_json:
            break;
        }
        return not_json;
    } catch (const json::exception&) {
        return not_json;
    }
}

// Names are validated as UTF-8 before they get here; `replace` keeps dump()
// from throwing should anything else slip through.
std::string dump(const json& value)
{
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Reads typed fields out of one JSON object and keeps the first problem, so
// each decoder reads as a list of fields and checks once at the end.
class FieldReader {
public:
    explicit FieldReader(const json& object) : object_(object) {}

    std::string string(const char* key)
    {
        const json* field = find(key, true);
        if (field == nullptr) {
            return {};
        }
        if (!field->is_string()) {
            wrong_type(key, "a string");
            return {};
        }
        return field->get<std::string>();
    }

    std::uint64_t uint(const char* key, std::optional<std::uint64_t> fallback = std::nullopt)
    {
        const json* field = find(key, !fallback.has_value());
        if (field == nullptr) {
            return fallback.value_or(0);
        }
        // Only an integer literal is an integer: 7.0, 7e0, -0 and 2^64 are
        // not (nlohmann reads them as floats or signed integers).
        if (!field->is_number_unsigned()) {
            wrong_type(key,
                       "an integer from 0 to 18446744073709551615, in digits only (no sign, fraction or exponent)");
            return 0;
        }
        return field->get<std::uint64_t>();
    }

    std::int64_t integer(const char* key)
    {
        const json* field = find(key, true);
        if (field == nullptr) {
            return 0;
        }
        if (!field->is_number_integer() ||
            (field->is_number_unsigned() &&
             field->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
            wrong_type(key, "an integer from -2^63 to 2^63-1, in digits only (no fraction or exponent)");
            return 0;
        }
        return field->get<std::int64_t>();
    }

    // An optional signed integer: absent is nullopt, null or another type
    // is bad_request (PROTOCOL.md 3.1).
    std::optional<std::int64_t> optional_integer(const char* key)
    {
        if (find(key, false) == nullptr) {
            return std::nullopt;
        }
        const std::int64_t value = integer(key);
        if (error_) {
            return std::nullopt;
        }
        return value;
    }

    // Optional permission bits (PROTOCOL.md 3.3's "mode"): absent is
    // nullopt; anything but an integer from 0 to 07777 is bad_request.
    std::optional<std::uint32_t> optional_mode(const char* key)
    {
        const json* field = find(key, false);
        if (field == nullptr) {
            return std::nullopt;
        }
        if (!field->is_number_unsigned() || field->get<std::uint64_t>() > kModeBits) {
            wrong_type(key, "permission bits: an integer from 0 to 4095 (07777), in digits only");
            return std::nullopt;
        }
        return static_cast<std::uint32_t>(field->get<std::uint64_t>());
    }

    // Optional folder modes (PROTOCOL.md 4.10's "folder_modes"): absent is
    // empty; anything but an array of at most kMaxPathDepth integers from 0
    // to 07777 is bad_request.
    FolderModes folder_modes(const char* key)
    {
        const json* field = find(key, false);
        if (field == nullptr) {
            return {};
        }
        const auto is_mode = [](const json& mode) {
            return mode.is_number_unsigned() && mode.get<std::uint64_t>() <= kModeBits;
        };
        static_assert(kMaxPathDepth == 64, "the message below says 64");
        if (!field->is_array() || field->size() > kMaxPathDepth ||
            !std::all_of(field->begin(), field->end(), is_mode)) {
            wrong_type(key, "an array of at most 64 permission bits, each an integer from 0 to 4095 (07777)");
            return {};
        }
        FolderModes modes;
        for (const auto& mode : *field) {
            modes.push_back(static_cast<std::uint32_t>(mode.get<std::uint64_t>()));
        }
        return modes;
    }

    bool boolean(const char* key, std::optional<bool> fallback = std::nullopt)
    {
        const json* field = find(key, !fallback.has_value());
        if (field == nullptr) {
            return fallback.value_or(false);
        }
        if (!field->is_boolean()) {
            wrong_type(key, "true or false");
            return false;
        }
        return field->get<bool>();
    }

    std::optional<std::string> optional_string(const char* key)
    {
        // null is a value of the wrong type, not "absent" (PROTOCOL.md 3.1).
        const json* field = find(key, false);
        if (field == nullptr) {
            return std::nullopt;
        }
        if (!field->is_string()) {
            wrong_type(key, "a string");
            return std::nullopt;
        }
        return field->get<std::string>();
    }

    // A field that may have to be ignored: its string, or nothing (absent,
    // or of another type), and never an error.
    std::optional<std::string> string_if_any(const char* key) const
    {
        const auto it = object_.find(key);
        if (it == object_.end() || !it->is_string()) {
            return std::nullopt;
        }
        return it->get<std::string>();
    }

    std::vector<std::string> strings(const char* key, bool required = true)
    {
        std::vector<std::string> values;
        const json* field = find(key, required);
        if (field == nullptr) {
            return values;
        }
        if (!field->is_array()) {
            wrong_type(key, "an array of strings");
            return values;
        }
        for (const auto& item : *field) {
            if (!item.is_string()) {
                wrong_type(key, "an array of strings");
                return {};
            }
            values.push_back(item.get<std::string>());
        }
        return values;
    }

    const json* array(const char* key)
    {
        const json* field = find(key, true);
        if (field != nullptr && !field->is_array()) {
            wrong_type(key, "an array");
            return nullptr;
        }
        return field;
    }

    bool has(const char* key) const { return object_.contains(key); }

    void fail(std::string message)
    {
        if (!error_) {
            error_ = Error{ErrorCode::bad_request, std::move(message)};
        }
    }

    const std::optional<Error>& error() const { return error_; }

private:
    const json* find(const char* key, bool required)
    {
        const auto it = object_.find(key);
        if (it == object_.end()) {
            if (required) {
                fail(std::string("missing field \"") + key + "\"");
            }
            return nullptr;
        }
        return &*it;
    }

    void wrong_type(const char* key, const char* expected)
    {
        fail(std::string("field \"") + key + "\" must be " + expected);
    }

    const json& object_;
    std::optional<Error> error_;
};

json file_json(const FileInfo& file)
{
    json out{{"name", file.name}, {"size", file.size}, {"mtime", file.mtime}};
    if (file.type) {
        out["type"] = to_string(*file.type);
    }
    if (file.mode) {
        out["mode"] = *file.mode;
    }
    return out;
}

// A delete's or set_mtime's "expect": a folder by its type alone
// (PROTOCOL.md 4.11, 4.13).
json expected_json(const ExpectedEntry& expected)
{
    json out{{"type", to_string(expected.type)}};
    if (expected.type == EntryType::file) {
        out["size"] = expected.size;
        out["mtime"] = expected.mtime;
    }
    return out;
}

std::optional<EntryType> entry_type_from_string(std::string_view text)
{
    if (text == "file") {
        return EntryType::file;
    }
    if (text == "folder") {
        return EntryType::folder;
    }
    return std::nullopt;
}

// A required "type" (delete's reply) or an optional one (file information,
// absent from version-1 replies).
std::optional<EntryType> read_entry_type(FieldReader& fields, bool required)
{
    const std::optional<std::string> text =
        required ? std::optional<std::string>(fields.string("type")) : fields.optional_string("type");
    if (!text || fields.error()) {
        return std::nullopt;
    }
    const auto type = entry_type_from_string(*text);
    if (!type) {
        fields.fail("field \"type\" must be \"file\" or \"folder\"");
    }
    return type;
}

FileInfo read_file_info(FieldReader& fields)
{
    FileInfo file;
    file.name = fields.string("name");
    file.size = fields.uint("size");
    file.mtime = fields.integer("mtime");
    file.type = read_entry_type(fields, false);
    file.mode = fields.optional_mode("mode");
    return file;
}

json reply_json(std::uint64_t id)
{
    return json{{"id", id}, {"ok", true}};
}

// The common part of every reply decoder: a JSON object with an id, and
// either ok:true (then `read_body` fills T) or ok:false with an error.
template <typename T, typename ReadBody>
Result<Reply<T>> parse_reply(std::string_view text, ReadBody read_body)
{
    const auto object = parse_object(text);
    if (!object) {
        return Error{ErrorCode::bad_json, "server message: " + object.error().message};
    }
    FieldReader fields(*object);
    Reply<T> reply;
    const bool ok = fields.boolean("ok");
    // An error about a request whose id the server could not read has a
    // null id; every other message carries the request's id.
    const auto id = object->find("id");
    if (ok || id == object->end() || !id->is_null()) {
        reply.id = fields.uint("id");
    }
    if (fields.error()) {
        return *fields.error();
    }
    if (!ok) {
        const auto error = object->find("error");
        if (error == object->end() || !error->is_object()) {
            return Error{ErrorCode::bad_request, "server error without an \"error\" object"};
        }
        FieldReader error_fields(*error);
        const std::string code = error_fields.string("code");
        std::string message = error_fields.string("message");
        if (error_fields.error()) {
            return *error_fields.error();
        }
        const auto known = error_code_from_string(code);
        if (!known) {
            // A newer server may add codes; keep its words so the user sees them.
            return Error{ErrorCode::internal, code + ": " + message};
        }
        return Error{*known, std::move(message)};
    }
    read_body(fields, *object, reply.body);
    if (fields.error()) {
        return *fields.error();
    }
    return reply;
}

RequestBody read_hello(FieldReader& fields)
{
    HelloRequest hello;
    const std::uint64_t version = fields.uint("version");
    hello.version = static_cast<std::uint32_t>(std::min<std::uint64_t>(version, UINT32_MAX));
    hello.client = fields.optional_string("client").value_or("");
    hello.token = fields.optional_string("token").value_or("");
    return hello;
}

// The optional "hash" of a get or put: absent means sha256.
HashKind read_hash_choice(FieldReader& fields)
{
    const auto name = fields.optional_string("hash");
    if (!name) {
        return HashKind::sha256;
    }
    const auto kind = hash_from_name(*name);
    if (!kind) {
        fields.fail("unknown hash " + quoted_excerpt(*name, kEchoedValueBytes) +
                    "; hello lists the hashes this server offers");
        return HashKind::sha256;
    }
    return *kind;
}

// Which hash a message's digest is given for: the one whose name is a key
// (sha256 when none is, so that a missing digest is reported as such).
HashKind digest_key(const FieldReader& fields)
{
    for (const auto& name : offered_hash_names()) {
        if (fields.has(name.c_str())) {
            return *hash_from_name(name);
        }
    }
    return HashKind::sha256;
}

std::string read_digest(FieldReader& fields, HashKind kind)
{
    const std::string key(hash_name(kind));
    std::string digest = fields.string(key.c_str());
    if (!fields.error()) {
        if (auto bad = check_digest_form(kind, digest)) {
            fields.fail(bad->message);
        }
    }
    return digest;
}

RequestBody read_commit(FieldReader& fields, std::uint32_t version)
{
    CommitRequest commit;
    std::vector<std::string> carried; // the hashes' names the commit has fields of
    for (const auto& name : offered_hash_names()) {
        if (fields.has(name.c_str())) {
            carried.push_back(name);
        }
    }
    if (carried.size() <= 1) {
        commit.hash = carried.empty() ? HashKind::sha256 : *hash_from_name(carried.front());
        commit.digest = read_digest(fields, commit.hash);
    } else {
        // Only the session knows the upload's hash, whose field alone counts.
        for (const auto& name : carried) {
            if (auto digest = fields.string_if_any(name.c_str())) {
                commit.digests.emplace_back(*hash_from_name(name), std::move(*digest));
            }
        }
        commit.hash = *hash_from_name(carried.front());
        if (!commit.digests.empty()) {
            commit.hash = commit.digests.front().first;
            commit.digest = commit.digests.front().second;
        }
    }
    if (version >= 2) {
        commit.replace = fields.boolean("replace", true);
        commit.defer_sync = fields.boolean("defer_sync", false);
    }
    return commit;
}

RequestBody read_get(FieldReader& fields)
{
    GetRequest get;
    get.name = fields.string("name");
    get.offset = fields.uint("offset", 0);
    get.hash = read_hash_choice(fields);
    return get;
}

RequestBody read_put(FieldReader& fields, std::uint32_t version)
{
    // In wire order, so that the first bad field is the one reported.
    PutRequest put;
    put.name = fields.string("name");
    put.size = fields.uint("size");
    put.resume = fields.boolean("resume", false);
    put.hash = read_hash_choice(fields);
    if (version >= 2) {
        put.parents = fields.boolean("parents", false);
        put.mtime = fields.optional_integer("mtime");
        put.mode = fields.optional_mode("mode");
        put.folder_modes = fields.folder_modes("folder_modes");
    }
    return put;
}

RequestBody read_list(FieldReader& fields, std::uint32_t version)
{
    ListRequest list;
    list.paged = fields.boolean("paged", false);
    if (version >= 2) {
        list.path = fields.optional_string("path").value_or("");
        list.recursive = fields.boolean("recursive", false);
    }
    return list;
}

// A delete's or set_mtime's optional "expect" (PROTOCOL.md 4.11, 4.13): an
// object with a "type", and for a file its "size" and "mtime"; a folder's
// size and mtime, if sent, must have their types but are not kept (a
// listing's entry may be passed as it came). Refused with a delete's
// "recursive": a recursive delete removes what was never listed, so no
// expectation about `path` alone covers it.
std::optional<ExpectedEntry> read_expected_entry(FieldReader& fields, const json& request, std::string_view section,
                                                 bool recursive = false)
{
    const auto found = request.find("expect");
    if (found == request.end() || fields.error()) {
        return std::nullopt;
    }
    if (!found->is_object()) {
        fields.fail("field \"expect\" must be an object (PROTOCOL.md " + std::string(section) + ")");
        return std::nullopt;
    }
    if (recursive) {
        fields.fail("field \"expect\" cannot go with \"recursive\": true (a recursive delete removes what no "
                    "listing described)");
        return std::nullopt;
    }
    FieldReader inner(*found);
    ExpectedEntry expected;
    expected.type = read_entry_type(inner, true).value_or(EntryType::file);
    const bool file = expected.type == EntryType::file;
    const std::uint64_t size = inner.uint("size", file ? std::nullopt : std::optional<std::uint64_t>(0));
    const std::optional<std::int64_t> mtime = file ? inner.integer("mtime") : inner.optional_integer("mtime");
    if (inner.error()) {
        fields.fail("in \"expect\": " + inner.error()->message);
        return std::nullopt;
    }
    if (file) {
        expected.size = size;
        expected.mtime = mtime.value_or(0);
    }
    return expected;
}

RequestBody read_delete(FieldReader& fields, const json& request)
{
    DeleteRequest remove;
    remove.path = fields.string("path");
    remove.recursive = fields.boolean("recursive", false);
    remove.expect = read_expected_entry(fields, request, "4.11", remove.recursive);
    return remove;
}

RequestBody read_rename(FieldReader& fields)
{
    RenameRequest rename;
    rename.from = fields.string("from");
    rename.to = fields.string("to");
    rename.replace = fields.boolean("replace", false);
    return rename;
}

RequestBody read_digest_request(FieldReader& fields)
{
    DigestRequest digest;
    digest.name = fields.string("name");
    digest.hash = read_hash_choice(fields);
    return digest;
}

RequestBody read_set_mtime(FieldReader& fields, const json& request)
{
    SetMtimeRequest set;
    set.path = fields.string("path");
    set.mtime = fields.integer("mtime");
    set.expect = read_expected_entry(fields, request, "4.13");
    return set;
}

// Each operation's fields; an unknown op has none (std::nullopt).
std::optional<RequestBody> read_request_body(FieldReader& fields, const json& request, const std::string& op,
                                             std::uint32_t version)
{
    if (op == "hello") {
        return read_hello(fields);
    }
    if (op == "list") {
        return read_list(fields, version);
    }
    if (op == "stat") {
        return StatRequest{fields.string("name")};
    }
    if (op == "get") {
        return read_get(fields);
    }
    if (op == "put") {
        return read_put(fields, version);
    }
    if (op == "commit") {
        return read_commit(fields, version);
    }
    if (op == "abort") {
        return AbortRequest{fields.boolean("discard", false)};
    }
    if (op == "stats") {
        return StatsRequest{};
    }
    if (version < 2) {
        return std::nullopt;
    }
    if (op == "mkdir") {
        MkdirRequest mkdir;
        mkdir.path = fields.string("path");
        mkdir.parents = fields.boolean("parents", false);
        mkdir.folder_modes = fields.folder_modes("folder_modes");
        return mkdir;
    }
    if (op == "delete") {
        return read_delete(fields, request);
    }
    if (op == "rename") {
        return read_rename(fields);
    }
    if (op == "digest") {
        return read_digest_request(fields);
    }
    if (op == "set_mtime") {
        return read_set_mtime(fields, request);
    }
    if (op == "sync") {
        return SyncRequest{};
    }
    return std::nullopt;
}

} // namespace

std::string_view to_string(EntryType type)
{
    return type == EntryType::folder ? "folder" : "file";
}

void fit_to_version(FileInfo& file, std::uint32_t version)
{
    if (version < 2) {
        file.mode.reset();
    }
}

bool needs_version_2(const RequestBody& body)
{
    return std::holds_alternative<MkdirRequest>(body) || std::holds_alternative<DeleteRequest>(body) ||
           std::holds_alternative<RenameRequest>(body) || std::holds_alternative<DigestRequest>(body) ||
           std::holds_alternative<SetMtimeRequest>(body) || std::holds_alternative<SyncRequest>(body);
}

std::optional<Error> check_digest_form(HashKind kind, std::string_view digest)
{
    if (is_digest_hex(kind, digest)) {
        return std::nullopt;
    }
    return Error{ErrorCode::bad_request, "field \"" + std::string(hash_name(kind)) + "\" must be " +
                                             std::to_string(kind == HashKind::sha256 ? 64 : 32) +
                                             " lowercase hex digits"};
}

std::optional<std::string> commit_digest(const CommitRequest& commit, HashKind kind)
{
    if (commit.digests.empty()) {
        return commit.hash == kind ? std::optional<std::string>(commit.digest) : std::nullopt;
    }
    for (const auto& [carried, digest] : commit.digests) {
        if (carried == kind) {
            return digest;
        }
    }
    return std::nullopt;
}

std::string_view op_name(const RequestBody& body)
{
    struct Namer {
        std::string_view operator()(const HelloRequest&) const { return "hello"; }
        std::string_view operator()(const ListRequest&) const { return "list"; }
        std::string_view operator()(const StatRequest&) const { return "stat"; }
        std::string_view operator()(const GetRequest&) const { return "get"; }
        std::string_view operator()(const PutRequest&) const { return "put"; }
        std::string_view operator()(const CommitRequest&) const { return "commit"; }
        std::string_view operator()(const AbortRequest&) const { return "abort"; }
        std::string_view operator()(const StatsRequest&) const { return "stats"; }
        std::string_view operator()(const MkdirRequest&) const { return "mkdir"; }
        std::string_view operator()(const DeleteRequest&) const { return "delete"; }
        std::string_view operator()(const RenameRequest&) const { return "rename"; }
        std::string_view operator()(const DigestRequest&) const { return "digest"; }
        std::string_view operator()(const SetMtimeRequest&) const { return "set_mtime"; }
        std::string_view operator()(const SyncRequest&) const { return "sync"; }
    };
    return std::visit(Namer{}, body);
}

ParsedRequest parse_request(std::string_view json_text, std::uint32_t version)
{
    const auto object = parse_object(json_text);
    if (!object) {
        return {std::nullopt, object.error()};
    }
    FieldReader fields(*object);
    const std::uint64_t id = fields.uint("id");
    if (fields.error()) {
        return {std::nullopt, *fields.error()};
    }
    const std::string op = fields.string("op");
    if (fields.error()) {
        return {id, *fields.error()};
    }
    auto body = read_request_body(fields, *object, op, version);
    if (!body) {
        std::string message = "unknown operation " + quoted_excerpt(op, kEchoedValueBytes);
        if (version < 2 && (op == "mkdir" || op == "delete" || op == "rename" || op == "digest" || op == "set_mtime" ||
                            op == "sync")) {
            message += " (an operation of protocol version 2; this connection speaks version " +
                       std::to_string(version) + ")";
        }
        return {id, Error{ErrorCode::unknown_op, std::move(message)}};
    }
    if (fields.error()) {
        return {id, *fields.error()};
    }
    return {id, Request{id, std::move(*body)}};
}

std::string encode_request(const Request& request)
{
    json message{{"op", op_name(request.body)}, {"id", request.id}};
    struct Filler {
        json& out;
        void operator()(const HelloRequest& hello) const
        {
            out["version"] = hello.version;
            out["client"] = hello.client;
            if (!hello.token.empty()) {
                out["token"] = hello.token;
            }
        }
        // Sent only when set, so an old server sees the request it knows.
        void operator()(const ListRequest& list) const
        {
            if (list.paged) {
                out["paged"] = true;
            }
            if (!list.path.empty()) {
                out["path"] = list.path;
            }
            if (list.recursive) {
                out["recursive"] = true;
            }
        }
        void operator()(const StatRequest& stat) const { out["name"] = stat.name; }
        // "hash" is sent only when it is not the default, which every
        // server understands.
        void operator()(const GetRequest& get) const
        {
            out["name"] = get.name;
            out["offset"] = get.offset;
            if (get.hash != HashKind::sha256) {
                out["hash"] = hash_name(get.hash);
            }
        }
        void operator()(const PutRequest& put) const
        {
            out["name"] = put.name;
            out["size"] = put.size;
            out["resume"] = put.resume;
            if (put.hash != HashKind::sha256) {
                out["hash"] = hash_name(put.hash);
            }
            // Version-2 fields, sent only when set: a version-1 put is
            // spelled as it always was.
            if (put.parents) {
                out["parents"] = true;
            }
            if (put.mtime) {
                out["mtime"] = *put.mtime;
            }
            if (put.mode) {
                out["mode"] = *put.mode;
            }
            if (!put.folder_modes.empty()) {
                out["folder_modes"] = put.folder_modes;
            }
        }
        void operator()(const CommitRequest& commit) const
        {
            out[std::string(hash_name(commit.hash))] = commit.digest;
            // Sent only when set, so that a commit that replaces is spelled
            // as it always was (and as a version-1 connection must).
            if (!commit.replace) {
                out["replace"] = false;
            }
            if (commit.defer_sync) {
                out["defer_sync"] = true;
            }
        }
        void operator()(const AbortRequest& abort) const { out["discard"] = abort.discard; }
        void operator()(const StatsRequest&) const {}
        // The tree operations exist in version 2 only; their flags are
        // always spelled out.
        void operator()(const MkdirRequest& mkdir) const
        {
            out["path"] = mkdir.path;
            out["parents"] = mkdir.parents;
            if (!mkdir.folder_modes.empty()) {
                out["folder_modes"] = mkdir.folder_modes;
            }
        }
        void operator()(const DeleteRequest& del) const
        {
            out["path"] = del.path;
            out["recursive"] = del.recursive;
            if (del.expect) {
                out["expect"] = expected_json(*del.expect);
            }
        }
        void operator()(const RenameRequest& rename) const
        {
            out["from"] = rename.from;
            out["to"] = rename.to;
            out["replace"] = rename.replace;
        }
        void operator()(const DigestRequest& digest) const
        {
            out["name"] = digest.name;
            if (digest.hash != HashKind::sha256) {
                out["hash"] = hash_name(digest.hash);
            }
        }
        void operator()(const SetMtimeRequest& set) const
        {
            out["path"] = set.path;
            out["mtime"] = set.mtime;
            if (set.expect) {
                out["expect"] = expected_json(*set.expect);
            }
        }
        void operator()(const SyncRequest&) const {}
    };
    std::visit(Filler{message}, request.body);
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const HelloReply& reply)
{
    json message = reply_json(id);
    message["version"] = reply.version;
    message["server"] = reply.server;
    message["capabilities"] = reply.capabilities;
    message["hashes"] = reply.hashes;
    message["max_control_frame"] = reply.max_control_frame;
    message["max_data_frame"] = reply.max_data_frame;
    message["access"] = reply.access;
    if (reply.mtime_limits) {
        message["mtime_limits"] = {
            {"min", reply.mtime_limits->min}, {"max", reply.mtime_limits->max}, {"step", reply.mtime_limits->step}};
    }
    return dump(message);
}

// The listing is the one reply that grows with the folder, and the one
// clients poll: built as a JSON tree it cost most of the server's CPU per
// list (a map per file). It is written out directly instead, byte for byte
// what dump() makes of the tree (keys in order, no spaces); names still go
// through the JSON library's escaping.
std::string encode_reply(std::uint64_t id, const ListReply& reply)
{
    std::string text;
    text.reserve(80 + reply.files.size() * 64);
    text += "{\"files\":[";
    for (std::size_t i = 0; i < reply.files.size(); ++i) {
        const FileInfo& file = reply.files[i];
        text += i == 0 ? "{" : ",{";
        if (file.mode) { // keys in dump()'s order: "mode" before "mtime"
            text += "\"mode\":";
            text += std::to_string(*file.mode);
            text += ',';
        }
        text += "\"mtime\":";
        text += std::to_string(file.mtime);
        text += ",\"name\":";
        text += dump(json(file.name));
        text += ",\"size\":";
        text += std::to_string(file.size);
        if (file.type) {
            text += *file.type == EntryType::folder ? ",\"type\":\"folder\"" : ",\"type\":\"file\"";
        }
        text += '}';
    }
    text += ']';
    if (!reply.holding_unlisted.empty()) {
        text += ",\"holding_unlisted\":";
        text += dump(json(reply.holding_unlisted));
    }
    text += ",\"id\":";
    text += std::to_string(id);
    if (reply.more) {
        text += ",\"more\":true,\"ok\":true";
    } else {
        text += ",\"ok\":true,\"skipped_invalid_names\":";
        text += std::to_string(reply.skipped_invalid_names);
        if (reply.skipped_too_deep > 0) {
            text += ",\"skipped_too_deep\":";
            text += std::to_string(reply.skipped_too_deep);
        }
    }
    if (!reply.unreadable_folders.empty()) {
        text += ",\"unreadable_folders\":[";
        for (std::size_t i = 0; i < reply.unreadable_folders.size(); ++i) {
            const UnreadableFolder& folder = reply.unreadable_folders[i];
            text += i == 0 ? "{\"code\":\"" : ",{\"code\":\"";
            text += to_string(folder.code);
            text += "\",\"path\":";
            text += dump(json(folder.path));
            text += '}';
        }
        text += ']';
    }
    text += '}';
    return text;
}

std::string encode_reply(std::uint64_t id, const StatReply& reply)
{
    json message = reply_json(id);
    message.update(file_json(reply.file));
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const GetReply& reply)
{
    json message = reply_json(id);
    message.update(file_json(reply.file));
    message["offset"] = reply.offset;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const Trailer& reply)
{
    json message = reply_json(id);
    message["done"] = true;
    message["size"] = reply.size;
    message[std::string(hash_name(reply.hash))] = reply.digest;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const PutReply& reply)
{
    json message = reply_json(id);
    message["offset"] = reply.offset;
    if (reply.prefix_digest) {
        message["prefix_" + std::string(hash_name(reply.hash))] = *reply.prefix_digest;
    }
    message["token"] = reply.token;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const CommitReply& reply)
{
    json message = reply_json(id);
    message.update(file_json(reply.file));
    message[std::string(hash_name(reply.hash))] = reply.digest;
    if (!reply.synced) {
        message["synced"] = false;
    }
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const SyncReply& reply)
{
    json message = reply_json(id);
    message["folders"] = reply.folders;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const AbortReply& reply)
{
    json message = reply_json(id);
    message["kept"] = reply.kept;
    message["offset"] = reply.offset;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const StatsReply& reply)
{
    json message = reply_json(id);
    message["uptime_seconds"] = reply.uptime_seconds;
    message["connections"] = {{"now", reply.connections_now}, {"total", reply.connections_total}};
    message["transfers"] = {{"now", reply.transfers_now}, {"total", reply.transfers_total}};
    message["bytes"] = {{"in", reply.bytes_in}, {"out", reply.bytes_out}};
    message["errors"] = json::object();
    for (const auto& [code, count] : reply.errors) {
        message["errors"][code] = count;
    }
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const MkdirReply& reply)
{
    json message = reply_json(id);
    message["path"] = reply.path;
    message["created"] = reply.created;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const DeleteReply& reply)
{
    json message = reply_json(id);
    message["path"] = reply.path;
    message["type"] = to_string(reply.type);
    message["files"] = reply.files;
    message["folders"] = reply.folders;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const RenameReply& reply)
{
    json message = reply_json(id);
    message["from"] = reply.from;
    message["to"] = reply.to;
    return dump(message);
}

std::string encode_reply(std::uint64_t id, const DigestReply& reply)
{
    json message = reply_json(id);
    message.update(file_json(reply.file));
    message[std::string(hash_name(reply.hash))] = reply.digest;
    return dump(message);
}

std::string encode_error(std::optional<std::uint64_t> id, const Error& error)
{
    json message{{"ok", false}, {"error", {{"code", to_string(error.code)}, {"message", error.message}}}};
    message["id"] = id ? json(*id) : json(nullptr);
    return dump(message);
}

ReplyHead read_reply_head(std::string_view json_text)
{
    ReplyHead head;
    const auto object = parse_object(json_text);
    if (!object) {
        return head;
    }
    const auto id = object->find("id");
    if (id != object->end() && id->is_number_unsigned()) {
        head.id = id->get<std::uint64_t>();
    }
    const auto ok = object->find("ok");
    const auto error = object->find("error");
    if (ok == object->end() || !ok->is_boolean() || ok->get<bool>() || error == object->end() ||
        !error->is_object()) {
        return head;
    }
    const auto code = error->find("code");
    const auto message = error->find("message");
    head.server_error = code != error->end() && code->is_string() && message != error->end() && message->is_string();
    return head;
}

namespace {

// hello's optional `mtime_limits` (PROTOCOL.md 4.1): absent is none; one
// that is not an object of integers with min <= max and step >= 1 is a
// malformed reply, as any other field of the wrong type.
std::optional<MtimeLimits> read_mtime_limits(FieldReader& fields, const json& message)
{
    const auto found = message.find("mtime_limits");
    if (found == message.end()) {
        return std::nullopt;
    }
    if (!found->is_object()) {
        fields.fail("field \"mtime_limits\" must be an object");
        return std::nullopt;
    }
    FieldReader inner(*found);
    MtimeLimits limits{inner.integer("min"), inner.integer("max"), inner.integer("step")};
    if (inner.error()) {
        fields.fail("in \"mtime_limits\": " + inner.error()->message);
        return std::nullopt;
    }
    if (limits.min > limits.max || limits.step < 1) {
        fields.fail("field \"mtime_limits\" needs min <= max and step >= 1");
        return std::nullopt;
    }
    return limits;
}

} // namespace

Result<Reply<HelloReply>> parse_hello_reply(std::string_view json_text)
{
    return parse_reply<HelloReply>(json_text, [](FieldReader& fields, const json& message, HelloReply& body) {
        const std::uint64_t version = fields.uint("version");
        body.version = static_cast<std::uint32_t>(std::min<std::uint64_t>(version, UINT32_MAX));
        body.server = fields.string("server");
        body.capabilities = fields.strings("capabilities");
        body.hashes = fields.strings("hashes");
        body.max_control_frame =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(fields.uint("max_control_frame"), UINT32_MAX));
        body.max_data_frame =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(fields.uint("max_data_frame"), UINT32_MAX));
        body.access = fields.optional_string("access").value_or("rw");
        body.mtime_limits = read_mtime_limits(fields, message);
    });
}

namespace {

// A page's "unreadable_folders" (PROTOCOL.md 4.2): objects of a "path"
// string and a "code", forbidden or io_error (a code it does not know would
// leave a client unable to say what failed); absent is none.
std::vector<UnreadableFolder> read_unreadable_folders(FieldReader& fields)
{
    std::vector<UnreadableFolder> folders;
    if (!fields.has("unreadable_folders")) {
        return folders;
    }
    const json* items = fields.array("unreadable_folders");
    if (items == nullptr) {
        return folders;
    }
    for (const auto& item : *items) {
        if (!item.is_object()) {
            fields.fail("\"unreadable_folders\" must hold objects");
            return {};
        }
        FieldReader folder_fields(item);
        UnreadableFolder folder;
        folder.path = folder_fields.string("path");
        const std::string code = folder_fields.string("code");
        if (folder_fields.error()) {
            fields.fail("\"unreadable_folders\": " + folder_fields.error()->message);
            return {};
        }
        const auto known = error_code_from_string(code);
        if (!known || (*known != ErrorCode::forbidden && *known != ErrorCode::io_error)) {
            fields.fail("\"unreadable_folders\": \"code\" must be \"forbidden\" or \"io_error\"");
            return {};
        }
        folder.code = *known;
        folders.push_back(std::move(folder));
    }
    return folders;
}

} // namespace

Result<Reply<ListReply>> parse_list_reply(std::string_view json_text)
{
    return parse_reply<ListReply>(json_text, [](FieldReader& fields, const json&, ListReply& body) {
        body.skipped_invalid_names = fields.uint("skipped_invalid_names", 0);
        body.skipped_too_deep = fields.uint("skipped_too_deep", 0);
        body.holding_unlisted = fields.strings("holding_unlisted", false);
        body.more = fields.boolean("more", false);
        body.unreadable_folders = read_unreadable_folders(fields);
        const json* files = fields.array("files");
        if (files == nullptr) {
            return;
        }
        for (const auto& item : *files) {
            if (!item.is_object()) {
                fields.fail("\"files\" must hold objects");
                return;
            }
            FieldReader file_fields(item);
            body.files.push_back(read_file_info(file_fields));
            if (file_fields.error()) {
                fields.fail(file_fields.error()->message);
                return;
            }
        }
    });
}

Result<Reply<StatReply>> parse_stat_reply(std::string_view json_text)
{
    return parse_reply<StatReply>(
        json_text, [](FieldReader& fields, const json&, StatReply& body) { body.file = read_file_info(fields); });
}

Result<Reply<GetReply>> parse_get_reply(std::string_view json_text)
{
    return parse_reply<GetReply>(json_text, [](FieldReader& fields, const json&, GetReply& body) {
        body.file = read_file_info(fields);
        body.offset = fields.uint("offset");
    });
}

Result<Reply<Trailer>> parse_trailer(std::string_view json_text)
{
    return parse_reply<Trailer>(json_text, [](FieldReader& fields, const json&, Trailer& body) {
        if (!fields.boolean("done")) {
            fields.fail("a trailer has \"done\": true");
        }
        body.size = fields.uint("size");
        body.hash = digest_key(fields);
        body.digest = read_digest(fields, body.hash);
    });
}

Result<Reply<PutReply>> parse_put_reply(std::string_view json_text)
{
    return parse_reply<PutReply>(json_text, [](FieldReader& fields, const json&, PutReply& body) {
        body.offset = fields.uint("offset");
        for (const auto& name : offered_hash_names()) {
            const std::string key = "prefix_" + name;
            if (fields.has(key.c_str())) {
                body.hash = *hash_from_name(name);
                body.prefix_digest = fields.optional_string(key.c_str());
            }
        }
        body.token = fields.string("token");
    });
}

Result<Reply<CommitReply>> parse_commit_reply(std::string_view json_text)
{
    return parse_reply<CommitReply>(json_text, [](FieldReader& fields, const json&, CommitReply& body) {
        body.file = read_file_info(fields);
        body.hash = digest_key(fields);
        body.digest = read_digest(fields, body.hash);
        body.synced = fields.boolean("synced", true);
    });
}

Result<Reply<SyncReply>> parse_sync_reply(std::string_view json_text)
{
    return parse_reply<SyncReply>(
        json_text, [](FieldReader& fields, const json&, SyncReply& body) { body.folders = fields.uint("folders"); });
}

Result<Reply<AbortReply>> parse_abort_reply(std::string_view json_text)
{
    return parse_reply<AbortReply>(json_text, [](FieldReader& fields, const json&, AbortReply& body) {
        body.kept = fields.boolean("kept");
        body.offset = fields.uint("offset");
    });
}

Result<Reply<MkdirReply>> parse_mkdir_reply(std::string_view json_text)
{
    return parse_reply<MkdirReply>(json_text, [](FieldReader& fields, const json&, MkdirReply& body) {
        body.path = fields.string("path");
        body.created = fields.boolean("created");
    });
}

Result<Reply<DeleteReply>> parse_delete_reply(std::string_view json_text)
{
    return parse_reply<DeleteReply>(json_text, [](FieldReader& fields, const json&, DeleteReply& body) {
        body.path = fields.string("path");
        body.type = read_entry_type(fields, true).value_or(EntryType::file);
        body.files = fields.uint("files");
        body.folders = fields.uint("folders");
    });
}

Result<Reply<RenameReply>> parse_rename_reply(std::string_view json_text)
{
    return parse_reply<RenameReply>(json_text, [](FieldReader& fields, const json&, RenameReply& body) {
        body.from = fields.string("from");
        body.to = fields.string("to");
    });
}

Result<Reply<DigestReply>> parse_digest_reply(std::string_view json_text)
{
    return parse_reply<DigestReply>(json_text, [](FieldReader& fields, const json&, DigestReply& body) {
        body.file = read_file_info(fields);
        body.hash = digest_key(fields);
        body.digest = read_digest(fields, body.hash);
    });
}

} // namespace ferry

namespace ferry {

Result<Reply<StatsReply>> parse_stats_reply(std::string_view json_text)
{
    return parse_reply<StatsReply>(json_text, [](FieldReader& fields, const json& object, StatsReply& body) {
        body.uptime_seconds = fields.uint("uptime_seconds");
        // The nested counters: {"now": N, "total": N} and {"in": N, "out": N}.
        const auto pair = [&](const char* key, const char* first, const char* second, std::uint64_t& a,
                              std::uint64_t& b) {
            const auto it = object.find(key);
            if (it == object.end() || !it->is_object()) {
                fields.fail(std::string("missing object \"") + key + "\"");
                return;
            }
            FieldReader inner(*it);
            a = inner.uint(first);
            b = inner.uint(second);
            if (inner.error()) {
                fields.fail(inner.error()->message);
            }
        };
        pair("connections", "now", "total", body.connections_now, body.connections_total);
        pair("transfers", "now", "total", body.transfers_now, body.transfers_total);
        pair("bytes", "in", "out", body.bytes_in, body.bytes_out);
        const auto errors = object.find("errors");
        if (errors == object.end() || !errors->is_object()) {
            fields.fail("missing object \"errors\"");
            return;
        }
        for (const auto& [code, count] : errors->items()) {
            if (!count.is_number_unsigned()) {
                fields.fail("error counts must be non-negative integers");
                return;
            }
            body.errors[code] = count.get<std::uint64_t>();
        }
    });
}

} // namespace ferry
