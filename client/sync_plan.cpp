#include "sync_plan.hpp"

#include "names.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace ferry::client {

namespace {

// Entries by path, and the paths in order: a parent sorts before what it
// holds ("a" < "a/b": a prefix comes first). The keys view the listing's
// own paths (a copy of each was a third of a plan's time), so the map
// lives no longer than the listing.
using ByPath = std::unordered_map<std::string_view, const TreeEntry*>;

ByPath by_path(const TreeListing& tree)
{
    ByPath map;
    map.reserve(tree.size());
    for (const auto& entry : tree) {
        map.emplace(entry.path, &entry);
    }
    return map;
}

std::vector<const TreeEntry*> sorted(const TreeListing& tree)
{
    std::vector<const TreeEntry*> entries;
    entries.reserve(tree.size());
    for (const auto& entry : tree) {
        entries.push_back(&entry);
    }
    std::sort(entries.begin(), entries.end(), [](const TreeEntry* a, const TreeEntry* b) { return a->path < b->path; });
    return entries;
}

// Whether `path` or one of its ancestors is in `set`.
bool within(const std::unordered_set<std::string>& set, const std::string& path)
{
    if (set.empty()) {
        return false;
    }
    for (std::string at = path; !at.empty(); at = parent_path(at)) {
        if (set.contains(at)) {
            return true;
        }
    }
    return false;
}

const char* describe(EntryKind kind)
{
    switch (kind) {
    case EntryKind::file:
        return "a file";
    case EntryKind::folder:
        return "a folder";
    case EntryKind::other:
        return "a symbolic link or special file";
    }
    return "an entry";
}

// The sending side's folders marked as holding what its listing does not
// show ("FOLDER/" -> "FOLDER", "/" -> "": the synced folder itself).
std::unordered_set<std::string> unseen_holders(const TreeListing& source)
{
    std::unordered_set<std::string> holders;
    for (const auto& entry : source) {
        if (entry.kind == EntryKind::other && entry.path.ends_with('/')) {
            holders.insert(entry.path.substr(0, entry.path.size() - 1));
        }
    }
    return holders;
}

// The paths of the sending side's entries left out (`other`, marks
// excepted): a symbolic link or special file is never sent, so what the
// receiving side holds at its path, and below it, is no extra: a local
// symbolic link "photos" must not empty the server's folder "photos/".
std::unordered_set<std::string> left_out(const TreeListing& source)
{
    std::unordered_set<std::string> paths;
    for (const auto& entry : source) {
        if (entry.kind == EntryKind::other && !entry.path.ends_with('/')) {
            paths.insert(entry.path);
        }
    }
    return paths;
}

// The NFC spellings of the sending side's entries left out (`other`) whose
// paths are not in NFC: a push's local "e + combining accent" is not sent
// (the server refuses any name not in NFC, PROTOCOL.md 5), and the server's
// "é" is that same text, so --delete must take it (and what it holds) for
// the left-out entry's, never for an extra. Unless the sending side also
// holds that NFC spelling itself: then the server's "é" is its copy,
// compared as such, and what it holds beyond it is extra like anywhere.
std::unordered_set<std::string> nfc_twins(const TreeListing& source, const ByPath& source_by_path)
{
    std::unordered_set<std::string> twins;
    for (const auto& entry : source) {
        if (entry.kind != EntryKind::other) {
            continue;
        }
        std::string_view path = entry.path;
        if (path.ends_with('/')) {
            path.remove_suffix(1); // a holder's mark: the folder itself is listed too
        }
        if (auto nfc = nfc_form(path); nfc && *nfc != path && !source_by_path.contains(*nfc)) {
            twins.insert(std::move(*nfc));
        }
    }
    return twins;
}

// Whether the receiving side's `dest` has the sending side's `source`'s
// time, as its file system can hold that time.
bool same_time(const TreeEntry& source, const TreeEntry& dest, const PlanOptions& options)
{
    const std::int64_t held = options.held ? options.held(dest.path, source.mtime) : source.mtime;
    return held == dest.mtime;
}

// Whether the receiving side's file is the sending side's, by the rule chosen.
bool same_file(const TreeEntry& source, const TreeEntry& dest, const PlanOptions& options, const Digests& source_digests,
               const Digests& dest_digests)
{
    if (source.size != dest.size) {
        return false;
    }
    if (!options.checksum) {
        return same_time(source, dest, options);
    }
    const auto mine = source_digests.find(source.path);
    const auto theirs = dest_digests.find(dest.path);
    return mine != source_digests.end() && theirs != dest_digests.end() && mine->second == theirs->second;
}

} // namespace

std::string parent_path(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::vector<std::string> checksum_candidates(const TreeListing& source, const TreeListing& dest)
{
    const auto dest_by_path = by_path(dest);
    std::vector<std::string> paths;
    for (const TreeEntry* entry : sorted(source)) {
        if (entry->kind != EntryKind::file) {
            continue;
        }
        const auto found = dest_by_path.find(entry->path);
        if (found != dest_by_path.end() && found->second->kind == EntryKind::file &&
            found->second->size == entry->size) {
            paths.push_back(entry->path);
        }
    }
    return paths;
}

SyncPlan plan_sync(const TreeListing& source, const TreeListing& dest, const PlanOptions& options,
                   const Digests& source_digests, const Digests& dest_digests)
{
    SyncPlan plan;
    const auto source_by_path = by_path(source);
    const auto dest_by_path = by_path(dest);
    std::unordered_set<std::string> blocked; // sending side's folders that cannot be placed
    std::unordered_set<std::string> removed; // receiving side's paths removed (folders with their contents)
    std::unordered_set<std::string> left_alone; // receiving side's paths in conflict, with what they hold
    std::vector<const TreeEntry*> placed_folders; // on both sides with the same mtime, so far
    // The receiving side's folders holding what is never removed (kind
    // `other`), with the first such entry: such a folder cannot be replaced.
    std::unordered_map<std::string, std::string> holding_other;
    for (const TreeEntry* entry : sorted(dest)) {
        if (entry->kind != EntryKind::other) {
            continue;
        }
        for (std::string at = parent_path(entry->path); !at.empty(); at = parent_path(at)) {
            holding_other.emplace(at, entry->path);
        }
    }

    for (const TreeEntry* entry : sorted(source)) {
        if (entry->kind == EntryKind::other || (!blocked.empty() && within(blocked, parent_path(entry->path)))) {
            continue; // never sent; or inside a folder that is not placed (its conflict says so)
        }
        const auto found = dest_by_path.find(entry->path);
        const TreeEntry* there = found == dest_by_path.end() ? nullptr : found->second;
        if (there != nullptr && there->kind != entry->kind) {
            const auto holds = holding_other.find(there->path);
            const bool unremovable = there->kind == EntryKind::other || holds != holding_other.end();
            if (unremovable || !options.delete_extras) {
                std::string why;
                if (holds != holding_other.end() && holds->second.ends_with('/')) {
                    // A server's folder that holds what its listing does not show (sync.cpp).
                    why = " holding, in \"" + holds->second.substr(0, holds->second.size() - 1) +
                          "\", entries the server does not list, which --delete never removes,";
                } else if (holds != holding_other.end()) {
                    why = " holding \"" + holds->second + "\", which --delete never removes,";
                }
                plan.conflicts.push_back(
                    {entry->path, "is " + (there->why.empty() ? std::string(describe(there->kind)) : there->why) +
                                      " on the receiving side," + why + " " +
                                      describe(entry->kind) + " on the sending side: left alone" +
                                      (unremovable ? "" : " (--delete replaces it)")});
                if (entry->kind == EntryKind::folder) {
                    blocked.insert(entry->path);
                }
                left_alone.insert(there->path);
                continue;
            }
            plan.removals.push_back({there->path, there->kind});
            removed.insert(there->path);
            there = nullptr;
        }
        if (entry->kind == EntryKind::folder) {
            if (there == nullptr) {
                plan.folders.push_back(entry->path);
            }
            if (there == nullptr || !same_time(*entry, *there, options)) {
                plan.folder_times.push_back({entry->path, 0, entry->mtime});
            } else {
                placed_folders.push_back(entry);
            }
            continue;
        }
        if (there != nullptr && there->kind == EntryKind::file && options.undecided.contains(entry->path)) {
            continue; // its comparison failed, and said so: left for the next sync
        }
        if (there != nullptr && same_file(*entry, *there, options, source_digests, dest_digests)) {
            ++plan.skipped;
            if (!same_time(*entry, *there, options)) {
                plan.retimes.push_back({entry->path, entry->size, entry->mtime});
            }
            continue;
        }
        plan.transfers.push_back({entry->path, entry->size, entry->mtime});
        plan.bytes += entry->size;
    }

    if (options.delete_extras) {
        const auto holders = unseen_holders(source);
        const auto twins = nfc_twins(source, source_by_path);
        const auto not_sent = left_out(source);
        std::set<std::string> spared;
        std::unordered_set<std::string> kept; // extras spared, with what they hold
        for (const TreeEntry* entry : sorted(dest)) {
            if (entry->kind == EntryKind::other || source_by_path.contains(entry->path) ||
                within(not_sent, entry->path) || within(removed, entry->path) || within(left_alone, entry->path) ||
                within(kept, entry->path)) {
                continue; // never removed; not extra (or below what is not sent); gone with its folder; or left alone with it
            }
            if (within(twins, entry->path)) {
                if (twins.contains(entry->path)) {
                    plan.twins.push_back(entry->path); // what it holds goes unnamed: kept with it
                }
                continue;
            }
            // An extra directly in a folder that holds entries its listing
            // does not show may be one of them (a name the sending side
            // holds as a symbolic link, say): kept. Only directly: a listed
            // folder below says for itself what it holds.
            if (const std::string holder = parent_path(entry->path); holders.contains(holder)) {
                spared.insert(holder);
                kept.insert(entry->path);
                continue;
            }
            plan.removals.push_back({entry->path, entry->kind});
            removed.insert(entry->path);
        }
        plan.spared.assign(spared.begin(), spared.end());
    }

    // A folder whose mtime matched changes when something inside it is
    // published, made or removed: its time is set again afterwards. A
    // removed folder that stays (it holds a link, say) changes nothing in
    // its parent, whose time is then left as it is.
    const auto effects = removal_effects(plan, dest);
    for (std::size_t i = 0; i < plan.removals.size(); ++i) {
        plan.removals[i].stays = effects[i].kept_by != nullptr;
    }
    std::unordered_set<std::string> changed;
    for (const auto& transfer : plan.transfers) {
        changed.insert(parent_path(transfer.path));
    }
    for (const auto& folder : plan.folders) {
        changed.insert(parent_path(folder));
    }
    for (const auto& removal : plan.removals) {
        if (!removal.stays) {
            changed.insert(parent_path(removal.path));
        }
    }
    for (const TreeEntry* folder : placed_folders) {
        if (changed.contains(folder->path)) {
            plan.folder_times.push_back({folder->path, 0, folder->mtime});
        }
    }
    std::sort(plan.folder_times.begin(), plan.folder_times.end(),
              [](const FileTransfer& a, const FileTransfer& b) { return a.path < b.path; });
    return plan;
}

void add_top_folder_time(SyncPlan& plan, std::optional<std::int64_t> source_top,
                         std::optional<std::int64_t> dest_top,
                         const std::function<std::int64_t(const std::string&, std::int64_t)>& held)
{
    if (!source_top) {
        return;
    }
    const auto directly_inside = [](const std::string& path) { return parent_path(path).empty(); };
    const bool changed = std::any_of(plan.transfers.begin(), plan.transfers.end(),
                                     [&](const FileTransfer& transfer) { return directly_inside(transfer.path); }) ||
                         std::any_of(plan.folders.begin(), plan.folders.end(), directly_inside) ||
                         std::any_of(plan.removals.begin(), plan.removals.end(), [&](const Removal& removal) {
                             return !removal.stays && directly_inside(removal.path);
                         });
    const std::int64_t wanted = held ? held("", *source_top) : *source_top;
    if (changed || dest_top != wanted) {
        // "" sorts first, as the other folders are kept in path order.
        plan.folder_times.insert(plan.folder_times.begin(), FileTransfer{"", 0, *source_top});
    }
}

// Which of a plan's removals a path falls under: itself or its nearest
// removed ancestor (its index in plan.removals).
class RemovalIndex {
public:
    explicit RemovalIndex(const SyncPlan& plan)
    {
        for (std::size_t i = 0; i < plan.removals.size(); ++i) {
            index_.emplace(plan.removals[i].path, i);
        }
    }
    std::optional<std::size_t> operator()(const std::string& path) const
    {
        for (std::string at = path; !at.empty(); at = parent_path(at)) {
            if (const auto found = index_.find(at); found != index_.end()) {
                return found->second;
            }
        }
        return std::nullopt;
    }

private:
    std::unordered_map<std::string, std::size_t> index_;
};

std::vector<RemovalEffect> removal_effects(const SyncPlan& plan, const TreeListing& dest)
{
    const RemovalIndex removal_of(plan);
    std::vector<RemovalEffect> effects(plan.removals.size());
    std::unordered_set<std::string> kept; // removed folders left because they hold what is never removed
    for (const TreeEntry* entry : sorted(dest)) {
        const auto index = removal_of(entry->path);
        if (!index) {
            continue;
        }
        RemovalEffect& effect = effects[*index];
        if (entry->kind == EntryKind::file) {
            ++effect.files;
            continue;
        }
        if (entry->kind == EntryKind::folder) {
            ++effect.folders;
            continue;
        }
        if (effect.kept_by == nullptr) {
            effect.kept_by = entry;
        }
        const std::string& top = plan.removals[*index].path;
        for (std::string at = parent_path(entry->path); at.size() >= top.size(); at = parent_path(at)) {
            if (kept.insert(at).second) {
                effect.folders -= std::min<std::uint64_t>(effect.folders, 1);
            }
            if (at.size() == top.size()) {
                break;
            }
        }
    }
    return effects;
}

std::vector<RemovalStep> removal_steps(const SyncPlan& plan, const TreeListing& dest)
{
    // The folders that stay because they hold what is never removed, as
    // removal_effects() finds them: each holder of an `other` up to its removal.
    const RemovalIndex removal_of(plan);
    std::unordered_set<std::string> kept;
    std::vector<std::vector<const TreeEntry*>> files(plan.removals.size());
    std::vector<std::vector<const TreeEntry*>> folders(plan.removals.size());
    for (const TreeEntry* entry : sorted(dest)) {
        const auto index = removal_of(entry->path);
        if (!index) {
            continue;
        }
        if (entry->kind == EntryKind::file) {
            files[*index].push_back(entry);
        } else if (entry->kind == EntryKind::folder) {
            folders[*index].push_back(entry);
        } else {
            const std::string& top = plan.removals[*index].path;
            for (std::string at = parent_path(entry->path); at.size() >= top.size(); at = parent_path(at)) {
                kept.insert(at);
                if (at.size() == top.size()) {
                    break;
                }
            }
        }
    }
    std::vector<RemovalStep> steps;
    for (std::size_t i = 0; i < plan.removals.size(); ++i) {
        for (const TreeEntry* file : files[i]) {
            steps.push_back({file->path, EntryKind::file, i, file->size, file->mtime});
        }
        // Reverse path order: every folder after the folders inside it.
        for (auto folder = folders[i].rbegin(); folder != folders[i].rend(); ++folder) {
            if (!kept.contains((*folder)->path)) {
                steps.push_back({(*folder)->path, EntryKind::folder, i});
            }
        }
    }
    return steps;
}

std::uint64_t removal_count(const SyncPlan& plan, const TreeListing& dest)
{
    std::uint64_t count = 0;
    for (const auto& effect : removal_effects(plan, dest)) {
        count += effect.files + effect.folders;
    }
    return count;
}

std::vector<std::string> folders_without_files(const SyncPlan& plan)
{
    // Every ancestor of a file sent or of another folder made is made on the way.
    std::unordered_set<std::string> made_on_the_way;
    const auto mark_ancestors = [&](const std::string& path) {
        for (std::string at = parent_path(path); !at.empty(); at = parent_path(at)) {
            if (!made_on_the_way.insert(at).second) {
                break; // its ancestors are marked already
            }
        }
    };
    for (const auto& transfer : plan.transfers) {
        mark_ancestors(transfer.path);
    }
    for (const auto& folder : plan.folders) {
        mark_ancestors(folder);
    }
    std::vector<std::string> folders;
    for (const auto& folder : plan.folders) {
        if (!made_on_the_way.contains(folder)) {
            folders.push_back(folder);
        }
    }
    return folders;
}

} // namespace ferry::client
