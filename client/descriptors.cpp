#include "descriptors.hpp"

#include "local_files.hpp"
#include "publish_batch.hpp"
#include "transfers.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

namespace ferry::client {

namespace {

// What one connection holds at most beside its gets' folders: its socket,
// the file it receives or sends (a put's next one too, its request riding
// behind the commit), and the folder a walk opens below one held.
constexpr std::size_t kPerConnection = 4;
// What one file of a publish batch holds: its verified part and, at worst,
// a folder no other file of the batch is in; twice, since one batch fills
// while the one before it publishes.
constexpr std::size_t kPerBatchFile = 4;
// The most folders a local walk holds open: deeper ones are opened again
// from the deepest held one when the walk comes back to them.
constexpr std::size_t kMaxWalkFolders = 32;

} // namespace

std::size_t descriptor_limit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
        limit.rlim_cur > std::numeric_limits<std::size_t>::max()) {
        return std::numeric_limits<std::size_t>::max();
    }
    return static_cast<std::size_t>(limit.rlim_cur);
}

DescriptorShares descriptor_shares(std::size_t limit, std::size_t jobs)
{
    const std::size_t spare = limit > kReservedDescriptors ? limit - kReservedDescriptors : 0;
    // The connections take at most half: fewer of them first, then fewer
    // gets ahead on the one left (one is always sent).
    const std::size_t for_connections = spare / 2;
    DescriptorShares shares{};
    shares.gets_in_flight = kGetsInFlight;
    shares.connections =
        std::clamp<std::size_t>(for_connections / (kPerConnection + kGetsInFlight), 1, std::max<std::size_t>(jobs, 1));
    if (shares.connections == 1 && kPerConnection + kGetsInFlight > for_connections) {
        shares.gets_in_flight = std::clamp<std::size_t>(
            for_connections > kPerConnection ? for_connections - kPerConnection : 0, 1, kGetsInFlight);
    }
    const std::size_t taken = shares.connections * (kPerConnection + shares.gets_in_flight);
    const std::size_t rest = spare > taken ? spare - taken : 0;
    // Of the rest, half to the batch (two batches' files, each up to two
    // descriptors), a quarter to the folders kept; the last quarter is slack.
    shares.publish_files = std::clamp<std::size_t>(rest / 2 / kPerBatchFile, 1, kPublishBatchFiles);
    shares.held_folders = std::clamp<std::size_t>(rest / 4, 1, HeldFolders::kMaxHeldFolders);
    // The walk runs before the transfers, out of the last quarter, and
    // holds the root, the folder it is in and the one it enters at the least (local_tree).
    shares.walk_folders = std::clamp<std::size_t>(rest / 4, 3, kMaxWalkFolders);
    return shares;
}

} // namespace ferry::client
