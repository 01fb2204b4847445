#include "download_names.hpp"

#include "local_files.hpp"
#include "local_tree.hpp"
#include "remote_paths.hpp"
#include "shell_words.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <vector>

namespace ferry::client {

namespace {

std::string folder_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The sidecars whose temporaries `name` would be: every prefix of it that
// ends in ".ferry-part.state" right before ".tmp-".
std::vector<std::string> sidecars_named_in(const std::string& name)
{
    const std::string marker = std::string(kPartSuffix) + std::string(kStateSuffix) + std::string(kStateTemporarySuffix);
    std::vector<std::string> found;
    for (auto at = name.find(marker); at != std::string::npos; at = name.find(marker, at + 1)) {
        found.push_back(name.substr(0, at + marker.size() - kStateTemporarySuffix.size()));
    }
    return found;
}

// `path` as one command word that both a POSIX shell and ferry's own shell
// read back as this one path: its wildcard characters escaped
// (escape_wildcards), single_quoted, a leading '-' behind "./" so that no
// option takes it.
std::string as_command_word(const std::string& path)
{
    return single_quoted(escape_wildcards(path.starts_with('-') ? "./" + path : path));
}

} // namespace

Error NameClash::error(const std::string& remote_shown, const std::string& other_shown) const
{
    const auto in_quotes = [](const std::string& text) { return "\"" + text + "\""; };
    return Error{ErrorCode::name_clash,
                 in_quotes(remote_shown) + " and " + in_quotes(other_shown) + " would both use the local name " +
                     in_quotes(local) + " (as a file or as its partial download's " + std::string(kPartSuffix) +
                     " or state): only " + in_quotes(other_shown) + " was given it; get " +
                     as_command_word(remote_shown) + " on its own to another name (-o) or folder"};
}

bool DownloadNames::is_working_name(const std::string& dest)
{
    return is_part_name(base_name(dest));
}

DownloadNames::Place DownloadNames::place_of(const std::string& dest)
{
    const std::string folder = folder_of(dest);
    struct stat st {};
    if (::stat(folder.c_str(), &st) == 0) {
        return Place{st.st_dev, st.st_ino, {}};
    }
    return Place{0, 0, folder};
}

std::optional<NameClash> DownloadNames::claim(std::size_t owner, const std::string& remote, const std::string& dest,
                                              const Place& place)
{
    // The three names live in dest's folder (part_path keeps them there).
    const std::string folder = folder_of(dest);
    const Key base{std::get<0>(place), std::get<1>(place), std::get<2>(place), {}};
    const auto key = [&](const std::string& path) {
        Key named = base;
        std::get<3>(named) = base_name(path);
        return named;
    };
    const std::array<Key, 3> mine{key(dest), key(part_path(dest)), key(state_path(dest))};
    const auto clash = [&](const Owner& other, const Key& name) {
        return NameClash{remote, other.remote, other.owner, local_join(folder, std::get<3>(name))};
    };
    for (const Key& name : mine) {
        if (auto taken = names_.find(name); taken != names_.end()) {
            return clash(taken->second, name);
        }
        // One of mine among the temporaries of a download claimed before.
        for (const std::string& sidecar : sidecars_named_in(std::get<3>(name))) {
            Key owner = name;
            std::get<3>(owner) = sidecar;
            if (auto taken = sidecars_.find(owner); taken != sidecars_.end()) {
                return clash(taken->second, name);
            }
        }
    }
    // A name claimed before among my sidecar's temporaries.
    const std::string temporaries = std::get<3>(mine[2]) + std::string(kStateTemporarySuffix);
    Key from = mine[2];
    std::get<3>(from) = temporaries;
    if (auto after = names_.lower_bound(from); after != names_.end() &&
                                               std::get<0>(after->first) == std::get<0>(from) &&
                                               std::get<1>(after->first) == std::get<1>(from) &&
                                               std::get<2>(after->first) == std::get<2>(from) &&
                                               std::get<3>(after->first).starts_with(temporaries)) {
        return clash(after->second, after->first);
    }
    for (const Key& name : mine) {
        names_.emplace(name, Owner{owner, remote});
    }
    sidecars_.emplace(mine[2], Owner{owner, remote});
    owned_[owner].assign(mine.begin(), mine.end());
    return std::nullopt;
}

void DownloadNames::release(std::size_t owner)
{
    const auto owned = owned_.find(owner);
    if (owned == owned_.end()) {
        return;
    }
    for (const Key& name : owned->second) {
        names_.erase(name);
    }
    sidecars_.erase(owned->second.back());
    owned_.erase(owned);
}

std::vector<std::size_t> ClaimedDownloads::claim(std::vector<Download> order)
{
    std::stable_sort(order.begin(), order.end(), [](const Download& a, const Download& b) {
        return !DownloadNames::is_working_name(a.dest) && DownloadNames::is_working_name(b.dest);
    });
    std::vector<std::size_t> holding;
    for (std::size_t position = 0; position < order.size(); ++position) {
        Download& download = order[position];
        DownloadNames::Place place = DownloadNames::place_of(download.dest);
        if (auto clash = names_.claim(download.index, download.remote, download.dest, place)) {
            const std::size_t holder = clash->other_owner;
            wait_behind(holder, Queue{Waiting{std::move(download), std::move(*clash), position, std::move(place)}});
        } else {
            holding.push_back(download.index);
        }
    }
    return holding;
}

void ClaimedDownloads::wait_behind(std::size_t holder, Queue queue)
{
    auto& queues = behind_[holder];
    // One queue per local path where the order allows (always, while the
    // command is first planned): a later one joins the last's queue.
    for (Queue& same : queues) {
        const Waiting& last = same.back();
        if (last.download.dest == queue.front().download.dest && last.place == queue.front().place &&
            last.position < queue.front().position) {
            std::move(queue.begin(), queue.end(), std::back_inserter(same));
            return;
        }
    }
    queues.push_back(std::move(queue));
}

std::vector<std::size_t> ClaimedDownloads::failed_unwritten(std::size_t index)
{
    names_.release(index);
    std::vector<std::size_t> claimed;
    // Only a download that waited behind this one may take its names: the
    // others still clash with the download they wait behind, which holds
    // its names.
    auto released = behind_.extract(index);
    if (released.empty()) {
        return claimed;
    }
    std::vector<Queue> queues = std::move(released.mapped());
    std::sort(queues.begin(), queues.end(),
              [](const Queue& a, const Queue& b) { return a.front().position < b.front().position; });
    for (Queue& queue : queues) {
        // The first that can claims; the next one of the queue then meets
        // it, and the rest, with the same names, wait behind whoever holds
        // the first name they meet.
        while (!queue.empty()) {
            Waiting& first = queue.front();
            auto clash = names_.claim(first.download.index, first.download.remote, first.download.dest, first.place);
            if (!clash) {
                claimed.push_back(first.download.index);
                queue.pop_front();
                continue;
            }
            for (Waiting& waiting : queue) {
                waiting.clash = *clash;
                waiting.clash.remote = waiting.download.remote;
            }
            wait_behind(clash->other_owner, std::move(queue));
            break;
        }
    }
    return claimed;
}

std::vector<ClaimedDownloads::Waiting> ClaimedDownloads::waiting() const
{
    std::vector<Waiting> all;
    for (const auto& [holder, queues] : behind_) {
        for (const Queue& queue : queues) {
            all.insert(all.end(), queue.begin(), queue.end());
        }
    }
    std::sort(all.begin(), all.end(), [](const Waiting& a, const Waiting& b) { return a.position < b.position; });
    return all;
}

} // namespace ferry::client
