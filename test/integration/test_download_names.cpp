// Every download's local names are its own: within one command no two
// files share a name in any role (file, part, sidecar, the sidecar's
// temporaries); a part is written by one download at a time (its lock);
// only the very part that was written and verified is published; and
// ferry never drops a file it did not create.
#include "support.hpp"

#include "download_names.hpp"
#include "local_files.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace ferry::test;
using ferry::client::DownloadState;
using ferry::client::LocalFile;

namespace {

// The file of `json`'s files whose server path is `name`.
nlohmann::json file_named(const nlohmann::json& json, const std::string& name)
{
    for (const auto& file : json["files"]) {
        if (file["name"] == name) {
            return file;
        }
    }
    FAIL("no file " << name << " in " << json.dump());
    return {};
}

// An interrupted download's part of `remote` at `part` (marked as ferry
// marks its parts) and its state beside it; the state's bytes, to compare.
std::string plant_part(const std::string& part, const std::string& bytes, const std::string& remote)
{
    write_file(part, bytes);
    const int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::fsetxattr(fd, ferry::client::kPartMark, "1", 1, 0) == 0);
    ::close(fd);
    DownloadState earlier;
    earlier.name = remote;
    earlier.remote_size = 1000;
    REQUIRE(ferry::client::write_download_state(part + ".state", earlier));
    return read_file(part + ".state");
}

} // namespace

TEST_CASE("two files of one get landing on one local name: the later is refused before any byte, the first is whole")
{
    Fixture f;
    ::mkdir(f.root_file("a").c_str(), 0755);
    ::mkdir(f.root_file("b").c_str(), 0755);
    write_random_file(f.root_file("a/x"), 3 * 1024 * 1024 + 7, 1);
    write_file(f.root_file("b/x"), "small");
    const std::string into = f.local_file("h");
    for (const auto& order : {std::pair<std::string, std::string>{"a/x", "b/x"}, {"b/x", "a/x"}}) {
        // Named copies, not a structured binding: CAPTURE's lambda cannot
        // capture one before clang 16.
        const std::string& first = order.first;
        const std::string& second = order.second;
        CAPTURE(first);
        const auto get = run_ferry(f.server.address(), {"--json", "get", first, second, "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, first)["ok"] == true);
        const auto refused = file_named(json, second);
        CHECK(refused["ok"] == false);
        CHECK(refused["error"]["code"] == "name_clash");
        const std::string message = refused["error"]["message"];
        CHECK(message.find("\"a/x\"") != std::string::npos);
        CHECK(message.find("\"b/x\"") != std::string::npos);
        CHECK(files_equal(f.root_file(first), into + "/x"));
        CHECK(folder_entries(into) == std::vector<std::string>{"x"});
        REQUIRE(::unlink((into + "/x").c_str()) == 0);
    }
}

TEST_CASE("a download waiting behind another's local name goes when that one fails before writing a byte")
{
    // Round 52's F3: the clash was settled before any request, so where the
    // file that kept the name then failed (a path through a file, a file
    // missing on the server), the other was refused too and nothing came.
    Fixture f;
    write_file(f.root_file("f"), "a file, not a folder");
    write_file(f.root_file("g"), "another file");
    for (const char* folder : {"d", "e", "h"}) {
        ::mkdir(f.root_file(folder).c_str(), 0755);
    }
    write_random_file(f.root_file("d/x"), 3 * 1024 * 1024 + 7, 3);
    write_file(f.root_file("e/x"), "small");
    write_file(f.root_file("h/x.ferry-part"), "a server file named like x's part");

    SUBCASE("the first fails at the server: the second is downloaded")
    {
        const std::string into = f.local_file("one");
        const auto get = run_ferry(f.server.address(), {"--json", "get", "f/x", "d/x", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "f/x")["error"]["code"] == "not_a_folder");
        CHECK(file_named(json, "d/x")["ok"] == true);
        CHECK(files_equal(f.root_file("d/x"), into + "/x"));
        CHECK(folder_entries(into) == std::vector<std::string>{"x"});
    }
    SUBCASE("a chain: each failure passes the name on, and a later clash names the one that kept it")
    {
        const std::string into = f.local_file("two");
        const auto get =
            run_ferry(f.server.address(), {"--json", "get", "f/x", "g/x", "nope/x", "d/x", "e/x", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "f/x")["error"]["code"] == "not_a_folder");
        CHECK(file_named(json, "g/x")["error"]["code"] == "not_a_folder");
        CHECK(file_named(json, "nope/x")["error"]["code"] == "not_found");
        CHECK(file_named(json, "d/x")["ok"] == true);
        const auto refused = file_named(json, "e/x");
        CHECK(refused["error"]["code"] == "name_clash");
        CHECK(refused["error"]["message"].get<std::string>().find("only \"d/x\" was given it") != std::string::npos);
        CHECK(files_equal(f.root_file("d/x"), into + "/x"));
        CHECK(folder_entries(into) == std::vector<std::string>{"x"});
    }
    SUBCASE("one that yields to a part's owner goes when the owner is missing on the server")
    {
        const std::string into = f.local_file("three");
        const auto get = run_ferry(f.server.address(), {"--json", "get", "h/x.ferry-part", "f/x", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "f/x")["error"]["code"] == "not_a_folder");
        CHECK(file_named(json, "h/x.ferry-part")["ok"] == true);
        CHECK(read_file(into + "/x.ferry-part") == "a server file named like x's part");
    }
    SUBCASE("the first is downloaded: the second stays refused, and nothing of it is written")
    {
        const std::string into = f.local_file("four");
        const auto get = run_ferry(f.server.address(), {"--json", "get", "e/x", "f/x", "d/x", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "e/x")["ok"] == true);
        CHECK(file_named(json, "f/x")["error"]["code"] == "name_clash");
        CHECK(file_named(json, "d/x")["error"]["code"] == "name_clash");
        CHECK(read_file(into + "/x") == "small");
        CHECK(folder_entries(into) == std::vector<std::string>{"x"});
    }
}

TEST_CASE("a download that fails unwritten keeps its names where it found a part of its own there")
{
    // Round 53: the holder's part from an earlier, interrupted run was
    // replaced by the download that took its names, and a later get of it
    // started from the beginning.
    Fixture f;
    ::mkdir(f.root_file("a").c_str(), 0755);
    ::mkdir(f.root_file("b").c_str(), 0755);
    write_file(f.root_file("b/big"), "the other file");
    const std::string into = f.local_file("into");
    ::mkdir(into.c_str(), 0755);
    const std::string part = into + "/big.ferry-part";
    const std::string state = plant_part(part, "EARLIER BYTES OF a/big", "a/big");
    for (const std::string resume : {"--resume", "--no-resume"}) {
        CAPTURE(resume);
        const auto get = run_ferry(f.server.address(), {"--json", "get", resume, "a/big", "b/big", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "a/big")["error"]["code"] == "not_found");
        CHECK(file_named(json, "b/big")["error"]["code"] == "name_clash");
        CHECK(read_file(part) == "EARLIER BYTES OF a/big");
        CHECK(read_file(into + "/big.ferry-part.state") == state);
        CHECK_FALSE(exists(into + "/big"));
    }
}

TEST_CASE("a download that fails unwritten hands its names on where the part there is the waiting one's")
{
    // Round 60: get x/f big/f with x/f missing downloads big/f in its place;
    // killed, that run left big/f's part (its state names big/f), and every
    // rerun of the command then refused big/f, as if the part were x/f's.
    Fixture f;
    ::mkdir(f.root_file("a").c_str(), 0755);
    ::mkdir(f.root_file("b").c_str(), 0755);
    write_file(f.root_file("b/big"), "the waiting file");
    const std::string into = f.local_file("into");
    ::mkdir(into.c_str(), 0755);
    for (const std::string resume : {"--resume", "--no-resume"}) {
        CAPTURE(resume);
        plant_part(into + "/big.ferry-part", "EARLIER BYTES OF b/big", "b/big");
        const auto get = run_ferry(f.server.address(), {"--json", "get", resume, "a/big", "b/big", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "a/big")["error"]["code"] == "not_found");
        CHECK(file_named(json, "b/big")["ok"] == true);
        CHECK(read_file(into + "/big") == "the waiting file");
        CHECK(folder_entries(into) == std::vector<std::string>{"big"});
        REQUIRE(::unlink((into + "/big").c_str()) == 0);
    }
    // Round 61: only the part's own download takes the names. A third file
    // first in line (one named like the part, or another file for "big")
    // would publish over b/big's part or discard its progress: refused, and
    // the part and its state stay as they are.
    ::mkdir(f.root_file("s").c_str(), 0755);
    ::mkdir(f.root_file("c").c_str(), 0755);
    write_file(f.root_file("s/big.ferry-part"), "a server file named like the part");
    write_file(f.root_file("c/big"), "a third file");
    const std::string part = into + "/big.ferry-part";
    const std::string state = plant_part(part, "EARLIER BYTES OF b/big", "b/big");
    for (const std::vector<std::string>& third :
         {std::vector<std::string>{"s/big.ferry-part"}, std::vector<std::string>{"c/big", "b/big"}}) {
        CAPTURE(third.front());
        std::vector<std::string> argv{"--json", "get", "a/big"};
        argv.insert(argv.end(), third.begin(), third.end());
        argv.insert(argv.end(), {"-C", into});
        const auto get = run_ferry(f.server.address(), argv);
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, "a/big")["error"]["code"] == "not_found");
        for (const std::string& refused : third) {
            CHECK(file_named(json, refused)["error"]["code"] == "name_clash");
        }
        CHECK(read_file(part) == "EARLIER BYTES OF b/big");
        CHECK(read_file(into + "/big.ferry-part.state") == state);
        CHECK_FALSE(exists(into + "/big"));
    }
}

TEST_CASE("the downloads waiting on one name pass it on in claim order, each queue asked once per holder")
{
    using ferry::client::ClaimedDownloads;
    Fixture f;
    const std::string into = f.local_file("q");
    ::mkdir(into.c_str(), 0755);
    // Four downloads to x, one to x.ferry-part (claims last: it yields to
    // x's part), one to y.
    std::vector<ClaimedDownloads::Download> downloads{{0, "s0/x.ferry-part", into + "/x.ferry-part"},
                                                      {1, "s1/x", into + "/x"},
                                                      {2, "s2/x", into + "/x"},
                                                      {3, "s3/y", into + "/y"},
                                                      {4, "s4/x", into + "/x"},
                                                      {5, "s5/x", into + "/x"}};
    ClaimedDownloads claims;
    CHECK(claims.claim(downloads) == std::vector<std::size_t>{1, 3});
    const auto waiting_indices = [&] {
        std::vector<std::size_t> indices;
        for (const auto& waiting : claims.waiting()) {
            indices.push_back(waiting.download.index);
        }
        return indices;
    };
    CHECK(waiting_indices() == std::vector<std::size_t>{2, 4, 5, 0});
    CHECK(claims.failed_unwritten(3).empty()); // nothing waits on y
    CHECK(claims.failed_unwritten(1) == std::vector<std::size_t>{2});
    for (const auto& waiting : claims.waiting()) {
        CHECK(waiting.clash.other_owner == 2);
        CHECK(waiting.clash.other == "s2/x");
    }
    CHECK(claims.failed_unwritten(2) == std::vector<std::size_t>{4});
    CHECK(claims.failed_unwritten(4) == std::vector<std::size_t>{5});
    CHECK(claims.failed_unwritten(5) == std::vector<std::size_t>{0});
    CHECK(claims.waiting().empty());
    // Many on one name: each failure hands it to the next, the rest still wait.
    std::vector<ClaimedDownloads::Download> many;
    for (std::size_t i = 0; i < 20000; ++i) {
        many.push_back({i, "m" + std::to_string(i) + "/x", into + "/x"});
    }
    ClaimedDownloads queue;
    CHECK(queue.claim(many) == std::vector<std::size_t>{0});
    for (std::size_t i = 0; i + 1 < many.size(); ++i) {
        REQUIRE(queue.failed_unwritten(i) == std::vector<std::size_t>{i + 1});
    }
    CHECK(queue.waiting().empty());
}

TEST_CASE("a file skipped as identical or existing holds its local name against the command's other downloads")
{
    // Round 53: a skipped file claimed nothing, so in
    // `get --skip-identical d/x e/x` with x holding d/x's bytes, d/x was
    // reported identical and then e/x was written over x, both "ok".
    Fixture f;
    for (const char* folder : {"d", "d2", "e", "f"}) {
        ::mkdir(f.root_file(folder).c_str(), 0755);
    }
    write_file(f.root_file("d/x"), "d's bytes");
    write_file(f.root_file("d2/x"), "d's bytes"); // another server file, identical to x too
    write_file(f.root_file("e/x"), "e's bytes");
    write_file(f.root_file("f/x"), "f's bytes");
    const std::string into = f.local_file("into");
    ::mkdir(into.c_str(), 0755);
    struct Case {
        std::vector<std::string> args;
        std::string skipped;
        std::string refused;
        std::string ok;
        std::string left; // x's bytes after
    };
    for (const Case& c :
         std::vector<Case>{{{"--skip-identical", "d/x", "e/x"}, "d/x", "e/x", "", "d's bytes"},
                           // Both left as they are: neither writes, and the later one is
                           // refused, as put -n refuses it and as it is without x (round 57).
                           {{"-n", "d/x", "e/x"}, "d/x", "e/x", "", "d's bytes"},
                           {{"--skip-identical", "d/x", "d2/x"}, "d/x", "d2/x", "", "d's bytes"},
                           // An earlier download takes x: the skip's look no longer holds.
                           {{"--skip-identical", "e/x", "d/x"}, "", "d/x", "e/x", "e's bytes"},
                           // Handed the name by a download the server refused: skipped.
                           {{"--skip-identical", "f/x/x", "d/x", "e/x"}, "d/x", "e/x", "", "d's bytes"}}) {
        CAPTURE(c.args.back());
        write_file(into + "/x", "d's bytes");
        std::vector<std::string> argv{"--json", "get"};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        argv.insert(argv.end(), {"-C", into});
        const auto get = run_ferry(f.server.address(), argv);
        CAPTURE(get.out);
        const auto json = parse_output(get);
        if (!c.skipped.empty()) {
            CHECK(file_named(json, c.skipped)["skipped"].is_string());
            CHECK(file_named(json, "d/x")["skipped"].is_string());
        }
        if (!c.refused.empty()) {
            CHECK(file_named(json, c.refused)["error"]["code"] == "name_clash");
        }
        if (!c.ok.empty()) {
            CHECK(file_named(json, c.ok)["ok"] == true);
        }
        if (c.args[1] == "f/x/x") {
            CHECK(file_named(json, "f/x/x")["error"]["code"] == "not_a_folder");
        }
        CHECK(read_file(into + "/x") == c.left);
        CHECK(folder_entries(into) == std::vector<std::string>{"x"});
    }
    // Round 59: -n skipped d/nope by the local x alone, and d/x was then
    // refused (name_clash) for a file the server does not have. As without
    // x: d/nope fails not_found and hands its name on; d/x is skipped.
    write_file(into + "/x", "d's bytes");
    const auto missing = run_ferry(f.server.address(), {"--json", "get", "-n", "d/nope", "d/x", "-C", into});
    CAPTURE(missing.out);
    const auto json = parse_output(missing);
    CHECK(file_named(json, "d/nope")["error"]["code"] == "not_found");
    CHECK(file_named(json, "d/x")["skipped"] == "exists");
    CHECK(read_file(into + "/x") == "d's bytes");
    // Two local names of their own that the user's links lead to one file:
    // both left as they are (as when the links appear during the get).
    const std::string kept = f.local_file("kept");
    write_file(kept, "kept");
    REQUIRE(::symlink(kept.c_str(), (into + "/la").c_str()) == 0);
    REQUIRE(::symlink(kept.c_str(), (into + "/lb").c_str()) == 0);
    write_file(f.root_file("d/la"), "la");
    write_file(f.root_file("d/lb"), "lb");
    const auto links = run_ferry(f.server.address(), {"--json", "get", "-n", "d/la", "d/lb", "-C", into});
    CAPTURE(links.out);
    CHECK(links.exit_code == 0);
    const auto linked = parse_output(links);
    CHECK(file_named(linked, "d/la")["skipped"] == "exists");
    CHECK(file_named(linked, "d/lb")["skipped"] == "exists");
    CHECK(read_file(kept) == "kept");
    // Round 60: a folder at the holder's name (no -r) fails as the get
    // would, not_regular_file, and hands the name on too.
    write_file(f.root_file("e/d2"), "e's d2");
    write_file(into + "/d2", "local d2");
    const auto folder = run_ferry(f.server.address(), {"--json", "get", "-n", "d2", "e/d2", "-C", into});
    CAPTURE(folder.out);
    const auto held = parse_output(folder);
    CHECK(file_named(held, "d2")["error"]["code"] == "not_regular_file");
    CHECK(file_named(held, "e/d2")["skipped"] == "exists");
    CHECK(read_file(into + "/d2") == "local d2");
}

TEST_CASE("a get of a path the name rules refuse is invalid_name, as stat answers it, and writes nothing")
{
    // Round 52's F5: a component over NAME_MAX (255 bytes) failed as the
    // local file it would have made (local_io, exit 3), where stat, rm and
    // the server answer invalid_name.
    Fixture f;
    ::mkdir(f.root_file("d").c_str(), 0755);
    write_file(f.root_file("d/ok"), "fine");
    const std::string long_name(300, 'n');
    const std::string into = f.local_file("into");
    ::mkdir(into.c_str(), 0755);
    for (const std::string& path : {long_name, "d/" + long_name}) {
        CAPTURE(path);
        const auto get = run_ferry(f.server.address(), {"--json", "get", path, "d/ok", "-C", into});
        CAPTURE(get.out);
        CHECK(get.exit_code == 4);
        const auto json = parse_output(get);
        CHECK(file_named(json, path)["error"]["code"] == "invalid_name");
        CHECK(file_named(json, "d/ok")["ok"] == true);
        CHECK(folder_entries(into) == std::vector<std::string>{"ok"});
        const auto alone = run_ferry(f.server.address(), {"get", path, "-o", into + "/named"});
        CHECK(alone.exit_code == 4);
        CHECK(alone.err.find("invalid_name") != std::string::npos);
        CHECK(folder_entries(into) == std::vector<std::string>{"ok"});
        REQUIRE(::unlink((into + "/ok").c_str()) == 0);
    }
}

TEST_CASE("a server file named like another's part or state yields to it, in any order, with get -r too")
{
    Fixture f;
    ::mkdir(f.root_file("d").c_str(), 0755);
    write_file(f.root_file("d/foo"), "REAL-FOO");
    for (const std::string suffix : {".ferry-part", ".ferry-part.state", ".ferry-part.state.tmp-AbC123"}) {
        CAPTURE(suffix);
        const std::string named_like = "d/foo" + suffix;
        write_file(f.root_file(named_like), "SERVER-FILE-NAMED-LIKE-A-WORKING-FILE");
        const std::string into = f.local_file("h");
        for (const auto& args : {std::vector<std::string>{"--json", "get", named_like, "d/foo", "-C", into},
                                 std::vector<std::string>{"--json", "get", "d/foo", named_like, "-C", into},
                                 std::vector<std::string>{"--json", "get", "d/foo*", "-C", into}}) {
            CAPTURE(args[2]);
            const auto get = run_ferry(f.server.address(), args);
            CAPTURE(get.out);
            CHECK(get.exit_code == 4);
            const auto json = parse_output(get);
            CHECK(file_named(json, "d/foo")["ok"] == true);
            CHECK(file_named(json, named_like)["error"]["code"] == "name_clash");
            CHECK(read_file(into + "/foo") == "REAL-FOO");
            CHECK(folder_entries(into) == std::vector<std::string>{"foo"});
            REQUIRE(::unlink((into + "/foo").c_str()) == 0);
        }
        const std::string tree = f.local_file("tree");
        const auto recursive = run_ferry(f.server.address(), {"--json", "get", "-r", "d", "-C", tree});
        CAPTURE(recursive.out);
        CHECK(recursive.exit_code != 0);
        CHECK(read_file(tree + "/d/foo") == "REAL-FOO");
        CHECK(folder_entries(tree + "/d") == std::vector<std::string>{"foo"});
        REQUIRE(::unlink((tree + "/d/foo").c_str()) == 0);
        REQUIRE(::unlink(f.root_file(named_like).c_str()) == 0);
    }
}

TEST_CASE("a part another download holds locked is left alone: the get fails at once and publishes nothing")
{
    Fixture f;
    write_random_file(f.root_file("b2"), 256 * 1024, 2);
    const std::string out = f.local_file("out");
    // Another download's part and state, the part locked as a download holds it.
    write_file(out + ".ferry-part", "ANOTHER DOWNLOAD'S BYTES");
    DownloadState others;
    others.name = "b2";
    others.remote_size = 256 * 1024;
    REQUIRE(ferry::client::write_download_state(out + ".ferry-part.state", others));
    const std::string others_state = read_file(out + ".ferry-part.state");
    const int held = ::open((out + ".ferry-part").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(held >= 0);
    // Marked as ferry's own part (local_files.hpp's mark_part), as a download's is.
    REQUIRE(::fsetxattr(held, ferry::client::kPartMark, "1", 1, 0) == 0);
    REQUIRE(::flock(held, LOCK_EX) == 0);
    for (const std::string resume : {"--no-resume", "--resume"}) {
        CAPTURE(resume);
        const auto get = run_ferry(f.server.address(), {"--json", "get", resume, "b2", "-o", out});
        CAPTURE(get.out);
        CHECK(get.exit_code == 6); // transient: --retry gets it once the other download is over
        const auto json = only_file(parse_output(get));
        CHECK(json["error"]["code"] == "busy");
        CHECK(json["error"]["message"].get<std::string>().find("another download") != std::string::npos);
        CHECK_FALSE(exists(out));
        CHECK(read_file(out + ".ferry-part") == "ANOTHER DOWNLOAD'S BYTES");
        CHECK(read_file(out + ".ferry-part.state") == others_state);
    }
    ::close(held);
    // Released: the part is the get's to replace.
    const auto get = run_ferry(f.server.address(), {"--json", "get", "b2", "-o", out});
    CHECK(get.exit_code == 0);
    CHECK(files_equal(f.root_file("b2"), out));
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) != 0600); // the published mode, not the part's private one
}

TEST_CASE("a download never replaces a file another download (or program) holds locked")
{
    Fixture f;
    write_random_file(f.root_file("b4"), 64 * 1024, 4);
    // What the attack did: `get small -o big.ferry-part` while `get big`
    // ran, so that the running download's locked part was replaced; any
    // target held under an exclusive lock stands for it here.
    const std::string out = f.local_file("big.ferry-part");
    write_file(out, "A RUNNING DOWNLOAD'S BYTES");
    const int held = ::open(out.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(held >= 0);
    REQUIRE(::flock(held, LOCK_EX) == 0);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "b4", "-o", out});
    CAPTURE(get.out);
    CHECK(read_file(out) == "A RUNNING DOWNLOAD'S BYTES");
    CHECK(get.exit_code == 6);
    CHECK(error_code(parse_output(get)) == "busy");
    CHECK(get.out.find("another download") != std::string::npos);
    CHECK_FALSE(exists(ferry::client::part_path(out)));

    // And just before the rename: a target locked once the transfer ran.
    TempDir dir;
    const std::string dest = dir / "out";
    write_file(dest, "LOCKED SINCE");
    const std::string part = ferry::client::part_path(dest);
    auto created = ferry::client::create_part_file(part, ferry::client::state_path(dest));
    REQUIRE(created.ok());
    REQUIRE(created->file.write_all(std::span(reinterpret_cast<const std::uint8_t*>("VERIFIED"), 8)));
    const int late = ::open(dest.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(late >= 0);
    REQUIRE(::flock(late, LOCK_EX) == 0);
    const auto published = ferry::client::publish_download(created->file, dest);
    CHECK_FALSE(published.ok());
    CHECK(read_file(dest) == "LOCKED SINCE");
    CHECK(read_file(part) == "VERIFIED");
    ::close(late);
    // Released: the same publish goes through.
    CHECK(ferry::client::publish_download(created->file, dest).ok());
    CHECK(read_file(dest) == "VERIFIED");
    ::close(held);
}

TEST_CASE("a part replaced under its name after it was written is never published")
{
    TempDir dir;
    const std::string dest = dir / "out";
    const std::string part = ferry::client::part_path(dest);
    auto created = ferry::client::create_part_file(part, ferry::client::state_path(dest));
    REQUIRE(created.ok());
    LocalFile& written = created->file;
    REQUIRE(written.write_all(std::span(reinterpret_cast<const std::uint8_t*>("VERIFIED"), 8)));
    // Someone else's file now stands at the part's name.
    REQUIRE(::unlink(part.c_str()) == 0);
    write_file(part, "NEVER VERIFIED");
    const auto published = ferry::client::publish_download(written, dest);
    CHECK_FALSE(published.ok());
    CHECK_FALSE(exists(dest));
    CHECK(read_file(part) == "NEVER VERIFIED");
}

TEST_CASE("a sidecar's new version never drops a file standing at any name ferry might use for it")
{
    TempDir dir;
    const std::string state = ferry::client::state_path(dir / "mid.bin");
    // A user's files, named as older builds' temporary and like a new one.
    write_file(state + ".tmp", "a file of the user's own");
    DownloadState recorded;
    recorded.name = "mid.bin";
    recorded.remote_size = 10;
    recorded.remote_mtime = 1;
    recorded.bytes_held = 0;
    recorded.digest_state = "";
    recorded.prefix_digest = "";
    for (int i = 0; i < 3; ++i) {
        REQUIRE(ferry::client::write_download_state(state, recorded));
    }
    CHECK(read_file(state + ".tmp") == "a file of the user's own");
    // Nothing of the temporaries is left behind.
    CHECK(folder_entries(dir.path()) == std::vector<std::string>{"mid.bin.ferry-part.state", "mid.bin.ferry-part.state.tmp"});
}

TEST_CASE("a file of the user's own at a download's sidecar name is never replaced or removed")
{
    Fixture f;
    write_random_file(f.root_file("b3"), 64 * 1024, 3);
    const std::string out = f.local_file("out");
    const std::string state = out + ".ferry-part.state";
    // The user's own files that happen to have the name: a readable note,
    // and a private one (this user's, 0600, one name) that is no sidecar.
    for (const unsigned mode : {0644U, 0600U}) {
        CAPTURE(mode);
        write_file(state, "the user's notes");
        REQUIRE(::chmod(state.c_str(), mode) == 0);
        for (const std::string resume : {"--no-resume", "--resume"}) {
            CAPTURE(resume);
            const auto get = run_ferry(f.server.address(), {"--json", "get", resume, "b3", "-o", out});
            CAPTURE(get.out);
            CHECK(exists(state));
            CHECK(read_file(state) == "the user's notes");
            CHECK(get.exit_code == 3);
            CHECK(error_code(parse_output(get)) == "local_io");
            CHECK(get.out.find("resume state") != std::string::npos);
            CHECK_FALSE(exists(out));
            CHECK_FALSE(exists(out + ".ferry-part"));
            ::unlink(out.c_str()); // what the code before this test's fix published
        }
    }
    // Moved away, the get goes through, and leaves no sidecar behind.
    REQUIRE(::unlink(state.c_str()) == 0);
    const auto get = run_ferry(f.server.address(), {"--json", "get", "b3", "-o", out});
    CHECK(get.exit_code == 0);
    CHECK(files_equal(f.root_file("b3"), out));
    CHECK_FALSE(exists(state));
}

TEST_CASE("a sidecar is written over and removed only where ferry's own sidecar or nothing stands")
{
    TempDir dir;
    const std::string state = ferry::client::state_path(dir / "mid.bin");
    DownloadState recorded;
    recorded.name = "mid.bin";
    recorded.remote_size = 10;
    recorded.remote_mtime = 1;
    // Nothing there: removing is nothing to do; writing makes it.
    CHECK(ferry::client::remove_download_state(state));
    REQUIRE(ferry::client::write_download_state(state, recorded));
    // Ferry's own: written over, then removed.
    REQUIRE(ferry::client::write_download_state(state, recorded));
    CHECK(ferry::client::look_at_state(state).value() == ferry::client::StateFound::ferrys);
    CHECK(ferry::client::remove_download_state(state));
    CHECK_FALSE(exists(state));
    // A file of the user's own there (private or not), a folder, a link:
    // neither written over nor removed, and no temporary left beside it.
    write_file(dir / "elsewhere", "the link's target");
    for (const std::string kind : {"private note", "shared note", "folder", "symlink"}) {
        CAPTURE(kind);
        if (kind == "folder") {
            REQUIRE(::mkdir(state.c_str(), 0700) == 0);
        } else if (kind == "symlink") {
            REQUIRE(::symlink((dir / "elsewhere").c_str(), state.c_str()) == 0);
        } else {
            write_file(state, "the user's notes");
            REQUIRE(::chmod(state.c_str(), kind == "private note" ? 0600 : 0644) == 0);
        }
        const auto written = ferry::client::write_download_state(state, recorded);
        CHECK_FALSE(written.ok());
        CHECK(written.error().message.find("resume state") != std::string::npos);
        // What stands there is named by its kind, as at the part's name.
        const std::string named = kind == "folder"    ? "is a folder"
                                  : kind == "symlink" ? "is a symbolic link"
                                                      : "is a file ferry did not write";
        CHECK(written.error().message.find(named) != std::string::npos);
        CHECK_FALSE(ferry::client::remove_download_state(state).ok());
        struct stat st {};
        REQUIRE(::lstat(state.c_str(), &st) == 0);
        if (kind == "folder") {
            CHECK(S_ISDIR(st.st_mode));
            REQUIRE(::rmdir(state.c_str()) == 0);
        } else if (kind == "symlink") {
            CHECK(S_ISLNK(st.st_mode));
            CHECK(read_file(dir / "elsewhere") == "the link's target");
            REQUIRE(::unlink(state.c_str()) == 0);
        } else {
            CHECK(read_file(state) == "the user's notes");
            REQUIRE(::unlink(state.c_str()) == 0);
        }
        CHECK(folder_entries(dir.path()) == std::vector<std::string>{"elsewhere"});
    }
}

TEST_CASE("sync pull neither publishes nor deletes names of a sidecar's temporaries")
{
    Fixture f;
    ::mkdir(f.root_file("tree").c_str(), 0755);
    write_file(f.root_file("tree/plain"), "plain");
    write_file(f.root_file("tree/x.ferry-part.state.tmp"), "server");
    write_file(f.root_file("tree/y.ferry-part.state.tmp-AbC123"), "server");
    const std::string copy = f.local_file("copy");
    ::mkdir(copy.c_str(), 0755);
    // A download in progress: its part stands, held locked (lock_part), so
    // its sidecar's temporary is its own, not a kill's leftover.
    write_file(copy + "/z.ferry-part", "being written");
    write_file(copy + "/z.ferry-part.state.tmp-XyZ789", "a temporary of a download in progress");
    const int held = ::open((copy + "/z.ferry-part").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(held >= 0);
    REQUIRE(::flock(held, LOCK_EX) == 0);
    const auto sync = run_ferry(f.server.address(), {"--json", "sync", "--delete", ":tree", copy});
    ::close(held);
    CAPTURE(sync.out);
    CHECK(sync.exit_code == 0);
    CHECK(folder_entries(copy) ==
          std::vector<std::string>{"plain", "z.ferry-part", "z.ferry-part.state.tmp-XyZ789"});
}

TEST_CASE("a leftover's removal unlinks only the file it checked: one swapped in at the name stays")
{
    // Attack round 18, finding 2: the name is renamed aside first and the
    // entry there checked; a file found there that is not the one looked
    // at is renamed back, never unlinked.
    TempDir dir;
    const std::string looked_at = dir.path() + "/x.ferry-part.state.tmp-AbCdEf";
    write_file(looked_at, "ferry's");
    struct stat checked {};
    REQUIRE(::stat(looked_at.c_str(), &checked) == 0);
    // Swapped: another file now stands at the name.
    const std::string moved = dir.path() + "/moved";
    REQUIRE(::rename(looked_at.c_str(), moved.c_str()) == 0);
    write_file(looked_at, "the user's");
    const int folder = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(folder >= 0);
    auto removed = ferry::client::unlink_if_still(folder, "x.ferry-part.state.tmp-AbCdEf", checked, looked_at);
    REQUIRE(removed);
    CHECK_FALSE(removed.value());
    CHECK(read_file(looked_at) == "the user's");
    // The file checked, back at the name: removed, and nothing left aside.
    REQUIRE(::rename(moved.c_str(), looked_at.c_str()) == 0);
    removed = ferry::client::unlink_if_still(folder, "x.ferry-part.state.tmp-AbCdEf", checked, looked_at);
    REQUIRE(removed);
    CHECK(removed.value());
    CHECK_FALSE(exists(looked_at));
    ::close(folder);
    CHECK(folder_entries(dir.path()).empty());
}
