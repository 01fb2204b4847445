// The rules of `ferry sync`'s plan (client/sync_plan.hpp), on trees written
// out by hand: no server, no files.
#include "sync_plan.hpp"

#include "mtime_limits.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ferry::client;

namespace {

TreeEntry file(std::string path, std::uint64_t size, std::int64_t mtime)
{
    return TreeEntry{std::move(path), EntryKind::file, size, mtime, {}};
}
TreeEntry folder(std::string path)
{
    return TreeEntry{std::move(path), EntryKind::folder, 0, 0, {}};
}
TreeEntry link(std::string path)
{
    return TreeEntry{std::move(path), EntryKind::other, 0, 0, {}};
}

std::vector<std::string> transfer_paths(const SyncPlan& plan)
{
    std::vector<std::string> paths;
    for (const auto& transfer : plan.transfers) {
        paths.push_back(transfer.path);
    }
    return paths;
}

std::vector<std::string> removal_paths(const SyncPlan& plan)
{
    std::vector<std::string> paths;
    for (const auto& removal : plan.removals) {
        paths.push_back(removal.path);
    }
    return paths;
}

std::vector<std::string> conflict_paths(const SyncPlan& plan)
{
    std::vector<std::string> paths;
    for (const auto& conflict : plan.conflicts) {
        paths.push_back(conflict.path);
    }
    return paths;
}

using Paths = std::vector<std::string>;

} // namespace

TEST_CASE("sync plan: into an empty side, every folder is made parent first and every file sent in path order")
{
    const TreeListing source{file("b/c/z.bin", 3, 10), folder("b/c"), folder("b"), file("a.txt", 5, 7),
                             folder("empty"), file("b/y.bin", 1, 9)};
    const auto plan = plan_sync(source, {}, {});
    CHECK(plan.folders == Paths{"b", "b/c", "empty"});
    CHECK(transfer_paths(plan) == Paths{"a.txt", "b/c/z.bin", "b/y.bin"});
    CHECK(plan.transfers[0].mtime == 7); // the receiving side gets the sending side's mtime
    CHECK(plan.bytes == 9);
    CHECK(plan.skipped == 0);
    CHECK(plan.removals.empty());
    CHECK(plan.conflicts.empty());
}

TEST_CASE("sync plan: the quick check skips a file of the same size and mtime, sends one that differs in either")
{
    const TreeListing source{file("same", 10, 100), file("newer", 10, 200), file("longer", 11, 100),
                             file("older", 10, 50)};
    const TreeListing dest{file("same", 10, 100), file("newer", 10, 100), file("longer", 10, 100),
                           file("older", 10, 100)};
    const auto plan = plan_sync(source, dest, {});
    CHECK(transfer_paths(plan) == Paths{"longer", "newer", "older"}); // an older source wins too: it is the source
    CHECK(plan.skipped == 1);
    CHECK(plan.bytes == 31);
    CHECK(plan.retimes.empty());
}

TEST_CASE("sync plan: --checksum compares digests, not mtimes, and never assumes a missing digest equal")
{
    const TreeListing source{file("same", 4, 100), file("touched", 4, 200), file("changed", 4, 100),
                             file("unknown", 4, 100), file("resized", 5, 100)};
    const TreeListing dest{file("same", 4, 100), file("touched", 4, 100), file("changed", 4, 100),
                           file("unknown", 4, 100), file("resized", 4, 100)};
    CHECK(checksum_candidates(source, dest) == Paths{"changed", "same", "touched", "unknown"});
    const Digests mine{{"same", "aa"}, {"touched", "bb"}, {"changed", "cc"}, {"unknown", "dd"}};
    const Digests theirs{{"same", "aa"}, {"touched", "bb"}, {"changed", "c0"}};
    PlanOptions options;
    options.checksum = true;
    const auto plan = plan_sync(source, dest, options, mine, theirs);
    CHECK(transfer_paths(plan) == Paths{"changed", "resized", "unknown"});
    CHECK(plan.skipped == 2);
    // Equal content, another mtime: only the mtime needs setting.
    REQUIRE(plan.retimes.size() == 1);
    CHECK(plan.retimes[0].path == "touched");
    CHECK(plan.retimes[0].mtime == 200);
}

TEST_CASE("sync plan: extras stay without --delete; with it a folder goes once, with its contents")
{
    const TreeListing source{folder("keep"), file("keep/a", 1, 1)};
    const TreeListing dest{folder("keep"),     file("keep/a", 1, 1), file("keep/extra", 1, 1), folder("old"),
                           folder("old/deep"), file("old/deep/x", 1, 1), file("stray", 2, 2)};
    const auto kept = plan_sync(source, dest, {});
    CHECK(kept.removals.empty());
    CHECK(kept.transfers.empty());
    CHECK(kept.skipped == 1);

    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{"keep/extra", "old", "stray"});
    CHECK(plan.removals[1].kind == EntryKind::folder);
    CHECK(plan.transfers.empty());
}

TEST_CASE("sync plan: removal_count counts what a real run removes, a folder with its contents, never a link")
{
    // What --dry-run reports as deleted: the same count the real run
    // reports (it said 3 here, the entries it names, where the run removes 5).
    const TreeListing source{folder("keep"), file("keep/a", 1, 1)};
    const TreeListing dest{folder("keep"),     file("keep/a", 1, 1), folder("old"),
                           folder("old/deep"), file("old/deep/x", 1, 1), file("old/y", 1, 1), file("stray", 2, 2)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{"old", "stray"});
    CHECK(removal_count(plan, dest) == 5);
    CHECK(removal_count(plan_sync(source, dest, {}), dest) == 0);

    // A link below a removed folder stays, and so do the folders holding it.
    const TreeListing linked{folder("keep"),     file("keep/a", 1, 1), folder("old"), folder("old/deep"),
                             link("old/deep/l"), file("old/deep/x", 1, 1), file("old/y", 1, 1)};
    const auto with_link = plan_sync(source, linked, options);
    CHECK(removal_paths(with_link) == Paths{"old"});
    CHECK(removal_count(with_link, linked) == 2); // old/deep/x and old/y
}

TEST_CASE("sync plan: a conflict with what the scan left out says what the scan found, not a guess")
{
    // A regular file at a part's name is no "symbolic link or special file".
    const TreeListing source{file("x.ferry-part", 3, 1)};
    const TreeListing dest{TreeEntry{"x.ferry-part", EntryKind::other, 0, 0, "a partial download"}};
    const auto plan = plan_sync(source, dest, {});
    REQUIRE(plan.conflicts.size() == 1);
    CHECK(plan.conflicts[0].message.find("is a partial download on the receiving side") != std::string::npos);
    CHECK(plan.conflicts[0].message.find("special file") == std::string::npos);
}

TEST_CASE("sync plan: a folder holding what --delete never removes is not replaced by a file, nor emptied")
{
    // A folder where the sending side has a file, holding a hidden file (an
    // `other` in the scan): replacing it would remove what sync cannot see.
    const TreeListing source{file("thing", 3, 1)};
    const TreeListing dest{folder("thing"), link("thing/.git-credentials"), file("thing/visible", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(plan.removals.empty());
    CHECK(plan.transfers.empty());
    REQUIRE(plan.conflicts.size() == 1);
    CHECK(plan.conflicts[0].path == "thing");
    CHECK(plan.conflicts[0].message.find("thing/.git-credentials") != std::string::npos);
    CHECK(plan.conflicts[0].message.find("(--delete replaces it)") == std::string::npos);
    CHECK(removal_count(plan, dest) == 0);
}

TEST_CASE("sync plan: a file where the source has a folder (and the reverse) is a conflict, replaced with --delete")
{
    const TreeListing source{file("was-folder", 3, 1), folder("was-file"), file("was-file/inside", 2, 1)};
    const TreeListing dest{folder("was-folder"), file("was-folder/old", 1, 1), file("was-file", 9, 1)};

    const auto kept = plan_sync(source, dest, {});
    CHECK(conflict_paths(kept) == Paths{"was-file", "was-folder"});
    CHECK(kept.conflicts[0].message.find("--delete") != std::string::npos);
    // Nothing is sent into a folder that could not be made, nothing removed.
    CHECK(kept.transfers.empty());
    CHECK(kept.folders.empty());
    CHECK(kept.removals.empty());

    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(plan.conflicts.empty());
    // What is in the way goes first (the old folder with its contents: not twice).
    CHECK(removal_paths(plan) == Paths{"was-file", "was-folder"});
    CHECK(plan.removals[0].kind == EntryKind::file);
    CHECK(plan.removals[1].kind == EntryKind::folder);
    CHECK(plan.folders == Paths{"was-file"});
    CHECK(transfer_paths(plan) == Paths{"was-file/inside", "was-folder"});
}

TEST_CASE("sync plan: a symbolic link or special file is never followed, replaced or removed")
{
    // On the receiving side: what the source would put there is a conflict,
    // --delete or not, and nothing goes beneath it.
    const TreeListing source{folder("linked"), file("linked/a", 1, 1), file("over", 1, 1), file("plain", 1, 1)};
    const TreeListing dest{link("linked"), link("over"), link("extra-link")};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(conflict_paths(plan) == Paths{"linked", "over"});
    CHECK(transfer_paths(plan) == Paths{"plain"});
    CHECK(plan.removals.empty());
    CHECK(plan.folders.empty());

    // On the sending side: not sent, and what the receiving side holds there stays.
    const auto pushed = plan_sync(TreeListing{link("x"), file("y", 1, 1)}, TreeListing{file("x", 5, 5)}, options);
    CHECK(transfer_paths(pushed) == Paths{"y"});
    CHECK(pushed.removals.empty());
    CHECK(pushed.conflicts.empty());
}

TEST_CASE("sync plan: a push makes with mkdir only the folders that no file makes on its way")
{
    const TreeListing source{folder("a"),   folder("a/b"),        file("a/b/f", 1, 1), folder("a/empty"),
                             folder("e"),   folder("e/deeper"),   folder("g"),         file("g/h", 1, 1),
                             folder("top"), file("top-file", 1, 1)};
    const auto plan = plan_sync(source, {}, {});
    CHECK(plan.folders == Paths{"a", "a/b", "a/empty", "e", "e/deeper", "g", "top"});
    CHECK(folders_without_files(plan) == Paths{"a/empty", "e/deeper", "top"});
}

TEST_CASE("sync plan: parent_path")
{
    CHECK(parent_path("a/b/c") == "a/b");
    CHECK(parent_path("a") == "");
    CHECK(parent_path("") == "");
}

namespace {

TreeEntry folder_at(std::string path, std::int64_t mtime)
{
    return TreeEntry{std::move(path), EntryKind::folder, 0, mtime, {}};
}

std::vector<std::pair<std::string, std::int64_t>> folder_times(const SyncPlan& plan)
{
    std::vector<std::pair<std::string, std::int64_t>> times;
    for (const auto& folder : plan.folder_times) {
        times.emplace_back(folder.path, folder.mtime);
    }
    return times;
}

} // namespace

TEST_CASE("sync plan: folder times for those made, those with another mtime, and those the plan changes inside")
{
    const TreeListing source{folder_at("new", 10),      folder_at("new/deeper", 11), folder_at("same", 20),
                             file("same/kept", 1, 5),   folder_at("older", 30),     folder_at("gets-file", 40),
                             file("gets-file/x", 2, 6), folder_at("loses-file", 50), folder_at("linked", 60),
                             folder_at("untouched", 70)};
    const TreeListing dest{folder_at("same", 20),      file("same/kept", 1, 5),  folder_at("older", 29),
                           folder_at("gets-file", 40), folder_at("loses-file", 50), file("loses-file/extra", 1, 1),
                           link("linked"),             folder_at("untouched", 70)};
    PlanOptions options;
    const auto kept = plan_sync(source, dest, options);
    CHECK(folder_times(kept) == std::vector<std::pair<std::string, std::int64_t>>{
                                    {"gets-file", 40}, {"new", 10}, {"new/deeper", 11}, {"older", 30}});
    options.delete_extras = true;
    const auto deleted = plan_sync(source, dest, options);
    CHECK(folder_times(deleted) == std::vector<std::pair<std::string, std::int64_t>>{
                                       {"gets-file", 40}, {"loses-file", 50}, {"new", 10}, {"new/deeper", 11},
                                       {"older", 30}});
    // The same trees: nothing to set.
    CHECK(plan_sync(source, source, options).folder_times.empty());
}

TEST_CASE("sync plan: the synced folder itself gets the sending side's time when it differs or its entries change")
{
    using Times = std::vector<std::pair<std::string, std::int64_t>>;
    const TreeListing source{folder_at("sub", 10), file("sub/a", 1, 5), file("top", 2, 6)};
    PlanOptions options;

    // Unchanged inside and the same time: nothing, not even "".
    auto same = plan_sync(source, source, options);
    add_top_folder_time(same, 100, 100);
    CHECK(folder_times(same).empty());
    // Another time on the receiving side, or none known (the folder is made now).
    auto older = plan_sync(source, source, options);
    add_top_folder_time(older, 100, 99);
    CHECK(folder_times(older) == Times{{"", 100}});
    auto made = plan_sync(source, {}, options);
    add_top_folder_time(made, 100, std::nullopt);
    CHECK(folder_times(made).front() == std::pair<std::string, std::int64_t>{"", 100});
    // The sending side's time unknown (an older server): left alone.
    auto unknown = plan_sync(source, {}, options);
    add_top_folder_time(unknown, std::nullopt, 100);
    CHECK(folder_times(unknown) == Times{{"sub", 10}});

    // Same time, but a file sent, a folder made or an extra removed directly
    // inside: publishing there changes the folder's time, so it is set again.
    const TreeListing lacks_top_file{folder_at("sub", 10), file("sub/a", 1, 5)};
    auto sent = plan_sync(source, lacks_top_file, options);
    add_top_folder_time(sent, 100, 100);
    CHECK(folder_times(sent) == Times{{"", 100}});
    const TreeListing lacks_sub{file("top", 2, 6)};
    auto folder_made = plan_sync(source, lacks_sub, options);
    add_top_folder_time(folder_made, 100, 100);
    CHECK(folder_times(folder_made).front() == std::pair<std::string, std::int64_t>{"", 100});
    TreeListing extra = source;
    extra.push_back(file("extra", 1, 1));
    options.delete_extras = true;
    auto removed = plan_sync(source, extra, options);
    add_top_folder_time(removed, 100, 100);
    CHECK(folder_times(removed) == Times{{"", 100}});
    // A change deeper down is its own folder's, not the top's.
    const TreeListing deeper_differs{folder_at("sub", 10), file("sub/a", 1, 4), file("top", 2, 6)};
    auto deep = plan_sync(source, deeper_differs, options);
    add_top_folder_time(deep, 100, 100);
    CHECK(folder_times(deep) == Times{{"sub", 10}});
}

TEST_CASE("sync plan: times compare as the receiving side's file system holds them, never changing what is sent")
{
    // ext4's range (1901..2446), and FAT's 2 s steps, as a probe finds them.
    const ferry::MtimeLimits ext4{-2147483648LL, 15032385535LL, 1};
    const ferry::MtimeLimits fat{315532800LL, 4354819198LL, 2};
    const std::int64_t far_future = 4611686018427387904LL; // 2^62 s: a server on tmpfs holds it
    const std::int64_t far_past = -far_future;
    const TreeListing source{folder_at("sub", far_future), file("sub/future", 5, far_future), file("past", 5, far_past),
                             file("odd", 5, 1764370001), file("truly-newer", 5, 1764370100),
                             file("other-size", 6, far_future)};
    const TreeListing clamped{folder_at("sub", ext4.max), file("sub/future", 5, ext4.max), file("past", 5, ext4.min),
                              file("odd", 5, 1764370001), file("truly-newer", 5, 1764370000),
                              file("other-size", 5, ext4.max)};
    PlanOptions options;
    // Compared exactly (before): every clamped time is a difference, on every run.
    const auto exact = plan_sync(source, clamped, options);
    CHECK(transfer_paths(exact) == Paths{"other-size", "past", "sub/future", "truly-newer"});
    CHECK(folder_times(exact).size() == 1);
    // As ext4 holds them: only a real difference (size, or a time ext4 can hold) is sent.
    options.held = [&](const std::string&, std::int64_t mtime) { return ext4.held(mtime); };
    const auto held = plan_sync(source, clamped, options);
    CHECK(transfer_paths(held) == Paths{"other-size", "truly-newer"});
    CHECK(held.skipped == 3);
    CHECK(folder_times(held).empty());
    SyncPlan top; // the synced folder itself, nothing changed inside it
    add_top_folder_time(top, far_future, ext4.max, options.held);
    CHECK(folder_times(top).empty());
    add_top_folder_time(top, far_future, ext4.max - 1, options.held);
    CHECK(folder_times(top).size() == 1);
    // --checksum's retimes likewise: a time already held as well as it can be is not set again.
    options.checksum = true;
    const Digests digests{{"sub/future", "aa"}, {"past", "bb"}, {"odd", "cc"}, {"truly-newer", "dd"}};
    const auto checked = plan_sync(source, clamped, options, digests, digests);
    REQUIRE(checked.retimes.size() == 1);
    CHECK(checked.retimes[0].path == "truly-newer");
    options.checksum = false;
    // FAT's 2 s: an odd second is held one less; a file two seconds newer is still sent.
    options.held = [&](const std::string&, std::int64_t mtime) { return fat.held(mtime); };
    const TreeListing on_fat{file("odd", 5, 1764370000), file("truly-newer", 5, 1764370098)};
    const TreeListing sent{file("odd", 5, 1764370001), file("truly-newer", 5, 1764370100)};
    CHECK(transfer_paths(plan_sync(sent, on_fat, options)) == Paths{"truly-newer"});
    // Per path: the mapping is asked with the receiving side's path (one device of several).
    options.held = [&](const std::string& path, std::int64_t mtime) {
        return path.starts_with("sub") ? ext4.held(mtime) : mtime;
    };
    CHECK(transfer_paths(plan_sync(source, clamped, options)) == Paths{"other-size", "past", "truly-newer"});
}

TEST_CASE("sync plan: --delete removes no extra directly in a folder the sending side marks as holding what it does not list")
{
    // A server's listing marks with "FOLDER/" (and "/" for the synced folder)
    // the folders holding what it cannot show (too deep, a link, a mount
    // point...): the receiving side's extras there may be those entries.
    const TreeListing source{folder("a"), file("a/x", 1, 1), link("a/"), folder("b"), file("b/y", 1, 1)};
    const TreeListing dest{folder("a"),        file("a/x", 1, 1), file("a/copy-of-unlisted", 1, 1),
                           folder("a/sub"),    file("a/sub/z", 1, 1), folder("b"),
                           file("b/y", 1, 1),  file("b/extra", 1, 1), file("top-extra", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{"b/extra", "top-extra"});
    CHECK(plan.spared == Paths{"a"});

    // The synced folder itself marked (a hidden file or an upload's partial
    // in it, say): its own extras stay, but a listed folder below speaks for
    // itself: b is listed and unmarked, so what it lacks goes.
    TreeListing marked_top = source;
    marked_top.push_back(link("/"));
    const auto top = plan_sync(marked_top, dest, options);
    CHECK(removal_paths(top) == Paths{"b/extra"});
    CHECK(top.spared == Paths{"", "a"}); // each kept extra names the marked folder it is in
    CHECK(plan_sync(marked_top, dest, {}).spared.empty()); // without --delete nothing is spared: nothing goes
}

TEST_CASE("sync plan: --delete keeps the NFC twin of an entry the sending side leaves out for not being in NFC")
{
    // Round 33: a push's local "e + U+0301" is not sent (the server holds
    // names in NFC only, PROTOCOL.md 5), and --delete removed the server's
    // "é" as an extra: the same text, which the sending side does hold.
    const std::string decomposed = "caf\x65\xcc\x81";   // café, e and a combining acute accent
    const std::string composed = "caf\xc3\xa9";         // café, é as one code point
    const std::string angstrom_nfd = "\x41\xcc\x8a";    // A and a combining ring
    const std::string angstrom_nfc = "\xc3\x85";        // Å
    const TreeListing source{file("keep", 1, 1), link(decomposed + ".txt"), link("d/" + angstrom_nfd),
                             folder("d"), link(decomposed + "/"), link(decomposed)};
    const TreeListing dest{file("keep", 1, 1),         file(composed + ".txt", 1, 1), folder("d"),
                           folder("d/" + angstrom_nfc), file("d/" + angstrom_nfc + "/in", 1, 1),
                           folder(composed),           file(composed + "/in", 1, 1), file("extra", 1, 1),
                           file("d/extra", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{"d/extra", "extra"});
    CHECK(plan.twins == Paths{composed, composed + ".txt", "d/" + angstrom_nfc});
    CHECK(transfer_paths(plan).empty());
    CHECK(plan_sync(source, dest, {}).twins.empty()); // without --delete nothing is kept: nothing goes
}

TEST_CASE("sync plan: --delete keeps what the receiving side holds below an entry the sending side leaves out")
{
    // Round 34: a local symbolic link (or FIFO) "photos" is not sent, and
    // the server's folder "photos/" was kept while --delete emptied it:
    // its contents are no more extra than the folder itself.
    const TreeListing source{link("photos"), folder("d"), link("d/fifo"), file("d/keep", 1, 1)};
    const TreeListing dest{folder("photos"),          file("photos/a.jpg", 1, 1), folder("photos/2026"),
                           file("photos/2026/b.jpg", 1, 1), folder("d"),          folder("d/fifo"),
                           file("d/fifo/in", 1, 1),    file("d/keep", 1, 1),       file("d/extra", 1, 1),
                           file("photos-extra", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{"d/extra", "photos-extra"});
    CHECK(plan.conflicts.empty());
    CHECK(transfer_paths(plan).empty());
}

TEST_CASE("sync plan: --delete takes the server's NFC entry as the sent one's when the sending side holds both spellings")
{
    // Round 34: a local "é/" and its NFD twin, both present: the NFC
    // folder is sent and compared as itself, so what the server's "é/"
    // holds beyond it is extra (it was neither removed nor named).
    const std::string decomposed = "eÌ"; // e and a combining acute accent
    const std::string composed = "Ã©";       // é as one code point
    const TreeListing source{folder(composed), file(composed + "/keep", 1, 1), link(decomposed)};
    const TreeListing dest{folder(composed), file(composed + "/keep", 1, 1), file(composed + "/stale", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    CHECK(removal_paths(plan) == Paths{composed + "/stale"});
    CHECK(plan.twins.empty());
}

TEST_CASE("sync plan: removal_steps deletes only what is listed: files first, then folders deepest first")
{
    const TreeListing source{file("keep", 1, 1)};
    const TreeListing dest{file("keep", 1, 1),  folder("old"),        file("old/a", 1, 1), folder("old/sub"),
                           file("old/sub/b", 1, 1), folder("old/sub/deeper"), folder("held"), folder("held/in"),
                           link("held/in/ln"),  file("held/c", 1, 1), file("stray", 1, 1)};
    PlanOptions options;
    options.delete_extras = true;
    const auto plan = plan_sync(source, dest, options);
    REQUIRE(removal_paths(plan) == Paths{"held", "old", "stray"});
    const auto steps = removal_steps(plan, dest);
    Paths paths;
    for (const auto& step : steps) {
        paths.push_back(step.path + (step.kind == EntryKind::folder ? "/" : ""));
    }
    // held/ and held/in/ hold a link: no step, they stay; only held/c goes.
    CHECK(paths == Paths{"held/c", "old/a", "old/sub/b", "old/sub/deeper/", "old/sub/", "old/", "stray"});
    CHECK(steps[0].removal == 0);
    CHECK(steps[1].removal == 1);
    CHECK(steps.back().removal == 2);
    // As many steps as removal_count counts: a dry run's count is the real run's.
    CHECK(steps.size() == removal_count(plan, dest));
}
