#include "output.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <ctime>

namespace ferry::client {

namespace {

using Json = nlohmann::json;

// Local paths need not be UTF-8; `replace` keeps dump() from throwing.
std::string dump(const Json& value)
{
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json file_json(const FileInfo& file)
{
    return Json{{"name", file.name}, {"size", file.size}, {"mtime", file.mtime}};
}

} // namespace

std::string human_size(std::uint64_t bytes)
{
    static constexpr std::array<const char*, 6> kUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        return std::to_string(bytes) + " B";
    }
    auto value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < kUnits.size()) {
        value /= 1024;
        ++unit;
    }
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.1f %s", value, kUnits[unit]);
    return text.data();
}

std::string local_date(std::int64_t seconds)
{
    const auto when = static_cast<std::time_t>(seconds);
    std::tm parts{};
    if (::localtime_r(&when, &parts) == nullptr) {
        return std::to_string(seconds);
    }
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M", &parts);
    return text.data();
}

void Output::emit_json(const std::string& text) const
{
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
}

void Output::list(const ListReply& reply) const
{
    if (json_) {
        Json files = Json::array();
        for (const auto& file : reply.files) {
            files.push_back(file_json(file));
        }
        emit_json(dump(Json{{"files", std::move(files)}, {"skipped_invalid_names", reply.skipped_invalid_names}}));
        return;
    }
    for (const auto& file : reply.files) {
        std::fprintf(out_, "%12llu  %s  %s\n", static_cast<unsigned long long>(file.size),
                     local_date(file.mtime).c_str(), file.name.c_str());
    }
    std::fflush(out_);
    if (reply.skipped_invalid_names > 0) {
        std::fprintf(err_, "ferry: note: %llu file(s) not shown: their names are not valid UTF-8\n",
                     static_cast<unsigned long long>(reply.skipped_invalid_names));
    }
}

void Output::stat(const FileInfo& file) const
{
    if (json_) {
        emit_json(dump(file_json(file)));
        return;
    }
    std::fprintf(out_, "name:     %s\nsize:     %llu (%s)\nmodified: %s\n", file.name.c_str(),
                 static_cast<unsigned long long>(file.size), human_size(file.size).c_str(),
                 local_date(file.mtime).c_str());
    std::fflush(out_);
}

void Output::got(const GetResult& result) const
{
    if (json_) {
        emit_json(dump(Json{{"name", result.file.name},
                            {"path", result.path},
                            {"size", result.file.size},
                            {"sha256", result.sha256},
                            {"resumed_from", result.resumed_from}}));
        return;
    }
    std::fprintf(out_, "%s -> %s: %s, sha256 %s", result.file.name.c_str(), result.path.c_str(),
                 human_size(result.file.size).c_str(), result.sha256.c_str());
    if (result.resumed_from > 0) {
        std::fprintf(out_, " (resumed at %s)", human_size(result.resumed_from).c_str());
    }
    std::fprintf(out_, "\n");
    std::fflush(out_);
}

void Output::put(const PutResult& result, const std::string& local_path) const
{
    if (json_) {
        emit_json(dump(Json{{"name", result.file.name},
                            {"size", result.file.size},
                            {"sha256", result.sha256},
                            {"resumed_from", result.resumed_from}}));
        return;
    }
    std::fprintf(out_, "%s -> %s: %s, sha256 %s", local_path.c_str(), result.file.name.c_str(),
                 human_size(result.file.size).c_str(), result.sha256.c_str());
    if (result.resumed_from > 0) {
        std::fprintf(out_, " (resumed at %s)", human_size(result.resumed_from).c_str());
    }
    std::fprintf(out_, "\n");
    std::fflush(out_);
}

void Output::error(const Error& error) const
{
    const std::string code(to_string(error.code));
    if (json_) {
        emit_json(dump(Json{{"error", {{"code", code}, {"message", error.message}}}}));
        return;
    }
    std::fprintf(err_, "ferry: %s: %s\n", code.c_str(), error.message.c_str());
    std::fflush(err_);
}

void Output::note(const std::string& text) const
{
    if (!json_) {
        std::fprintf(out_, "%s\n", text.c_str());
        std::fflush(out_);
    }
}

} // namespace ferry::client
