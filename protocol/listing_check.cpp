#include "listing_check.hpp"

#include "names.hpp"

#include <utility>

namespace ferry {

namespace {

Error refused(std::string_view name, const std::string& why)
{
    return Error{ErrorCode::internal, "the entry " + quoted(name) + ": " + why};
}

} // namespace

ListingCheck::ListingCheck(std::string path, bool recursive, ListingLimits limits)
    : path_(std::move(path)), recursive_(recursive), limits_(limits)
{
}

std::optional<Error> ListingCheck::over_limits(std::string_view name)
{
    ++entries_;
    name_bytes_ += name.size();
    if (entries_ > limits_.entries) {
        return Error{ErrorCode::internal, "it holds more than " + std::to_string(limits_.entries) +
                                              " entries, the most a client takes in one listing"};
    }
    if (name_bytes_ > limits_.name_bytes) {
        return Error{ErrorCode::internal, "its names hold more than " + std::to_string(limits_.name_bytes) +
                                              " bytes, the most a client takes in one listing"};
    }
    return std::nullopt;
}

std::optional<std::string> ListingCheck::broken_name(std::string_view name) const
{
    // One folder's entries are each its own name, never a path; a
    // recursive listing's are paths (each component a name).
    if (auto bad = recursive_ ? check_path(name) : check_file_name(name)) {
        return bad->message;
    }
    // The entry's path from the root keeps within 5.1's bounds.
    if (!path_.empty()) {
        if (auto bad = check_path(path_ + "/" + std::string(name))) {
            return bad->message;
        }
    }
    return std::nullopt;
}

std::optional<Error> ListingCheck::entry(const FileInfo& file)
{
    if (auto over = over_limits(file.name)) {
        return over;
    }
    if (auto why = broken_name(file.name)) {
        return refused(file.name, *why);
    }
    if (recursive_) {
        // Each folder before what is inside it (4.2): what lies below a
        // name the listing never gave as a folder has no place to land.
        const auto slash = file.name.rfind('/');
        if (slash != std::string::npos && !folders_.contains(file.name.substr(0, slash))) {
            return refused(file.name, "its folder " + quoted(file.name.substr(0, slash)) +
                                          " was not listed as a folder before it");
        }
    }
    if (!names_.insert(file.name).second) {
        return refused(file.name, "it was listed twice");
    }
    if (file.type == EntryType::folder) {
        folders_.insert(file.name);
    }
    return std::nullopt;
}

std::optional<Error> ListingCheck::holding(std::string_view folder)
{
    return named_folder("holding_unlisted", folder);
}

std::optional<Error> ListingCheck::unreadable(std::string_view folder)
{
    return named_folder("unreadable_folders", folder);
}

std::optional<Error> ListingCheck::named_folder(std::string_view field, std::string_view folder)
{
    if (auto over = over_limits(folder)) {
        return over;
    }
    if (folder.empty()) {
        return std::nullopt; // the listed folder itself
    }
    const std::string named = "\"" + std::string(field) + "\" names " + quoted(folder);
    if (auto why = broken_name(folder)) {
        return Error{ErrorCode::internal, named + ": " + *why};
    }
    if (!folders_.contains(std::string(folder))) {
        return Error{ErrorCode::internal, named + ", which the listing did not give as a folder"};
    }
    return std::nullopt;
}

} // namespace ferry
