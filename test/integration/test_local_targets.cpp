// A download never renames a file over what ferry does not own: a device
// or a FIFO at the target is written straight through (verified, no part,
// no resume), a folder is refused before any byte moves, and a symbolic
// link is followed. Devices and FIFOs are made here with mknod and mkfifo;
// no test touches a system device.
#include "support.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

using namespace ferry::test;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

mode_t type_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & S_IFMT;
}

// A char device with /dev/null's numbers, in the test's own folder.
std::string make_null_device(const std::string& folder)
{
    const std::string path = folder + "/null";
    REQUIRE(::mknod(path.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0);
    return path;
}

// Reads the FIFO to its end in a child process and returns what came.
ChildProcess start_reader(const std::string& fifo)
{
    return ChildProcess({"/bin/cat", fifo}, ChildProcess::Options{});
}

} // namespace

TEST_CASE("get onto a device writes through it and leaves it a device")
{
    Fixture f;
    write_random_file(f.root_file("h.txt"), kMiB + 3, 51);
    const std::string devices = f.dir / "dev";
    REQUIRE(::mkdir(devices.c_str(), 0755) == 0);
    const std::string null = make_null_device(devices);

    const auto get = run_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", null});
    const auto json = parse_output(get);
    CHECK(get.exit_code == 0);
    CHECK(only_file(json)["digest"]["value"] == sha256_of_file(f.root_file("h.txt")));
    CHECK(type_of(null) == S_IFCHR);
    CHECK(folder_entries(devices) == std::vector<std::string>{"null"});

    // The same through -C: DIR/NAME is the device.
    write_random_file(f.root_file("null"), 1000, 52);
    const auto into = run_ferry(f.server.address(), {"--json", "get", "null", "-C", devices});
    CHECK(into.exit_code == 0);
    CHECK(type_of(null) == S_IFCHR);
    CHECK(folder_entries(devices) == std::vector<std::string>{"null"});
}

TEST_CASE("get onto a FIFO feeds its reader and leaves it a FIFO")
{
    Fixture f;
    write_random_file(f.root_file("h.txt"), 2 * kMiB + 7, 53);
    const std::string fifo = f.local_file("pipe");
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);

    // The reader's output is drained while ferry writes, or both would wait.
    auto reader = start_reader(fifo);
    auto ferry = start_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", fifo});
    const auto read = reader.wait(60s);
    const auto get = ferry.wait(60s);
    CHECK(get.exit_code == 0);
    CHECK(only_file(parse_output(get))["digest"]["value"] == sha256_of_file(f.root_file("h.txt")));
    CHECK(read.out == read_file(f.root_file("h.txt")));
    CHECK(type_of(fifo) == S_IFIFO);
    CHECK(folder_entries(f.local) == std::vector<std::string>{"pipe"});

    // A symbolic link to the FIFO (as /dev/stdout is to a pipe) leads there.
    const std::string link = f.local_file("to-pipe");
    REQUIRE(::symlink(fifo.c_str(), link.c_str()) == 0);
    auto second_reader = start_reader(fifo);
    auto second_ferry = start_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", link});
    const auto second_read = second_reader.wait(60s);
    const auto through = second_ferry.wait(60s);
    CHECK(through.exit_code == 0);
    CHECK(second_read.out == read_file(f.root_file("h.txt")));
    CHECK(type_of(link) == S_IFLNK);
    CHECK(type_of(fifo) == S_IFIFO);
}

TEST_CASE("get onto a folder is refused before any byte moves")
{
    Fixture f;
    write_random_file(f.root_file("h.txt"), kMiB, 54);
    const std::string folder = f.local_file("h.txt");
    REQUIRE(::mkdir(folder.c_str(), 0755) == 0);

    // ./NAME, and -C DIR whose DIR/NAME is a folder.
    ChildProcess::Options in_local;
    in_local.cwd = f.local;
    const auto plain =
        run_ferry_with({"--server", f.server.address(), "--json", "get", "h.txt"}, in_local);
    CHECK(plain.exit_code == 3); // a local failure
    CHECK(parse_output(plain).dump().find("is a folder") != std::string::npos);
    const auto into = run_ferry(f.server.address(), {"--json", "get", "h.txt", "-C", f.local});
    CHECK(into.exit_code == 3);
    CHECK(folder_entries(f.local) == std::vector<std::string>{"h.txt"});
    CHECK(folder_entries(folder).empty());
    CHECK(type_of(folder) == S_IFDIR);

    // -o onto an existing folder still means NAME inside it.
    const auto inside = run_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", folder});
    CHECK(inside.exit_code == 0);
    CHECK(files_equal(f.root_file("h.txt"), folder + "/h.txt"));
}

TEST_CASE("get onto a symbolic link replaces the file it leads to and keeps the link")
{
    Fixture f;
    write_random_file(f.root_file("h.txt"), kMiB + 1, 55);
    const std::string real = f.local_file("real.bin");
    write_file(real, "old content");
    const std::string link = f.local_file("link.bin");
    REQUIRE(::symlink("real.bin", link.c_str()) == 0);

    const auto get = run_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", link});
    CHECK(get.exit_code == 0);
    CHECK(type_of(link) == S_IFLNK);
    CHECK(files_equal(f.root_file("h.txt"), real));
    CHECK(folder_entries(f.local) == std::vector<std::string>{"link.bin", "real.bin"});

    // A link to nothing: refused, left as it was.
    const std::string dangling = f.local_file("dangling.bin");
    REQUIRE(::symlink("missing.bin", dangling.c_str()) == 0);
    const auto refused = run_ferry(f.server.address(), {"--json", "get", "h.txt", "-o", dangling});
    CHECK(refused.exit_code == 3);
    CHECK(type_of(dangling) == S_IFLNK);
    CHECK_FALSE(exists(f.local_file("missing.bin")));
}
