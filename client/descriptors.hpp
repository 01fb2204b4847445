// The descriptors one command may hold at once (RLIMIT_NOFILE, whose soft
// limit main raises to the hard one first), shared out among everything a
// command keeps open side by side: its connections (sync -j), each
// connection's pipelined gets (their folders held from the request on), a
// publish batch's verified parts (publish_batch.hpp), the folders kept
// for later files (HeldFolders), and the folders a local walk holds. Each bound comes from the limit, so that a
// command under a low one (ulimit -n 32, even 16) still moves every file,
// slower, instead of failing those past the limit with EMFILE.
#pragma once

#include <cstddef>

namespace ferry::client {

// Kept for what every command holds beside its transfers: standard input,
// output and error, the TLS and configuration files, a sidecar's
// temporary and a folder's sync, opened for a moment.
inline constexpr std::size_t kReservedDescriptors = 6;

struct DescriptorShares {
    std::size_t connections;    // connections used at once (sync's -j is cut to this)
    std::size_t gets_in_flight; // gets sent ahead on each connection
    std::size_t publish_files;  // a publish batch's files
    std::size_t held_folders;   // folders HeldFolders keeps for later files
    std::size_t walk_folders;   // folders a local walk (local_tree) holds open at once, whatever the depth
};

// RLIMIT_NOFILE's soft limit now; the largest size_t when unlimited.
std::size_t descriptor_limit();
// The shares of `limit` for a command that asks for `jobs` connections:
// the usual bounds (jobs, kGetsInFlight, kPublishBatchFiles,
// kMaxHeldFolders) wherever the limit leaves room, less where not, never
// less than one each.
DescriptorShares descriptor_shares(std::size_t limit, std::size_t jobs);
inline DescriptorShares descriptor_shares(std::size_t jobs = 1)
{
    return descriptor_shares(descriptor_limit(), jobs);
}

} // namespace ferry::client
