// The Session's tree operations (protocol version 2): paths in list, stat,
// get and put; digest, mkdir, delete, rename; their refusals; and version 1
// connections that see nothing of it.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

// Feeds one request, runs its jobs and returns its one reply.
std::string ask(Fixture& f, const RequestBody& body, std::uint64_t id = 1)
{
    f.feed(control(Request{id, body}));
    f.io.run_jobs();
    return f.io.replies(1)[0];
}

void make(const Fixture& f, const std::string& path)
{
    REQUIRE(::mkdir((f.root.path() + "/" + path).c_str(), 0755) == 0);
}

void set_time(const Fixture& f, const std::string& path, std::int64_t mtime)
{
    const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    REQUIRE(::utimensat(AT_FDCWD, (f.root.path() + "/" + path).c_str(), times, 0) == 0);
}

ErrorCode code_of(const std::string& reply)
{
    auto parsed = parse_stat_reply(reply);
    REQUIRE_FALSE(parsed);
    return parsed.error().code;
}

} // namespace

TEST_CASE("version 2 lists any folder with types; a recursive listing always comes in pages")
{
    Fixture f;
    f.config.list_page_bytes = 200;
    f.hello(2);
    make(f, "logs");
    make(f, "logs/old");
    f.root.write("logs/a.log", "aa");
    f.root.write("logs/old/b.log", "b");
    f.root.write("top", "t");

    auto flat = parse_list_reply(ask(f, ListRequest{false, "logs", false}));
    REQUIRE(flat);
    REQUIRE(flat->body.files.size() == 2);
    CHECK(flat->body.files[0].name == "a.log");
    CHECK(flat->body.files[0].type == EntryType::file);
    CHECK(flat->body.files[1].name == "old");
    CHECK(flat->body.files[1].type == EntryType::folder);

    // Not paged in the request: paged all the same.
    f.feed(control(Request{2, ListRequest{false, "logs", true}}));
    f.io.run_jobs();
    std::vector<std::string> names;
    bool more = true;
    std::size_t pages = 0;
    for (const auto& text : f.io.controls()) {
        auto page = parse_list_reply(text);
        REQUIRE(page);
        ++pages;
        more = page->body.more;
        for (const auto& file : page->body.files) {
            names.push_back(file.name);
        }
    }
    CHECK_FALSE(more);
    CHECK(pages >= 2);
    CHECK(std::set<std::string>(names.begin(), names.end()) == std::set<std::string>{"a.log", "old", "old/b.log"});

    CHECK(code_of(ask(f, ListRequest{false, "top", false})) == ErrorCode::not_a_folder);
    CHECK(code_of(ask(f, ListRequest{false, "none", true})) == ErrorCode::not_found);
    CHECK(code_of(ask(f, ListRequest{false, "logs/../..", true})) == ErrorCode::invalid_name);
}

TEST_CASE("version 1 sees the root's files as before: no types, no folders, no paths, no tree operations")
{
    Fixture f;
    f.hello(1);
    make(f, "sub");
    f.root.write("sub/inner", "i");
    f.root.write("top", "t");
    const std::string listed = ask(f, ListRequest{false, "sub", true});
    CHECK(listed.find("\"type\"") == std::string::npos);
    auto list = parse_list_reply(listed);
    REQUIRE(list);
    REQUIRE(list->body.files.size() == 1);
    CHECK(list->body.files[0].name == "top");
    const std::string stat = ask(f, StatRequest{"top"});
    CHECK(stat.find("\"type\"") == std::string::npos);
    CHECK(code_of(ask(f, StatRequest{"sub"})) == ErrorCode::not_regular_file);
    CHECK(code_of(ask(f, StatRequest{"sub/inner"})) == ErrorCode::invalid_name);
    CHECK(code_of(ask(f, MkdirRequest{"new", false})) == ErrorCode::unknown_op);
    CHECK(code_of(ask(f, DeleteRequest{"top", false})) == ErrorCode::unknown_op);
    CHECK(code_of(ask(f, RenameRequest{"top", "x", false})) == ErrorCode::unknown_op);
    CHECK(code_of(ask(f, DigestRequest{"top"})) == ErrorCode::unknown_op);
    CHECK_FALSE(f.root.exists("new"));
    CHECK(f.root.exists("top"));
}

TEST_CASE("version 2 stat describes folders and files by path; get reads a file in a folder")
{
    Fixture f;
    f.hello(2);
    make(f, "a");
    f.root.write("a/f.txt", "hello");
    auto folder = parse_stat_reply(ask(f, StatRequest{"a"}));
    REQUIRE(folder);
    CHECK(folder->body.file.type == EntryType::folder);
    auto file = parse_stat_reply(ask(f, StatRequest{"a/f.txt"}));
    REQUIRE(file);
    CHECK(file->body.file.type == EntryType::file);
    CHECK(file->body.file.size == 5);
    CHECK(code_of(ask(f, StatRequest{"a/f.txt/x"})) == ErrorCode::not_a_folder);
    CHECK(code_of(ask(f, StatRequest{"b/f.txt"})) == ErrorCode::not_found);

    f.feed(control(Request{3, GetRequest{"a/f.txt", 0}}));
    f.io.run_jobs();
    const Sent sent = f.io.drain();
    REQUIRE(sent.controls.size() == 2);
    CHECK(parse_get_reply(sent.controls[0]));
    CHECK(sent.data == "hello");
}

TEST_CASE("version 2 put into a folder: parents on request, the mtime given, not_found without the parent")
{
    Fixture f;
    f.hello(2);
    const std::string content = pattern(3000, 7);

    PutRequest missing{"x/y/z.bin", content.size(), false};
    CHECK(code_of(ask(f, missing)) == ErrorCode::not_found);
    CHECK_FALSE(f.root.exists("x"));

    PutRequest put{"x/y/z.bin", content.size(), false};
    put.parents = true;
    put.mtime = 1500000000;
    REQUIRE(parse_put_reply(ask(f, put, 2)));
    CHECK(f.root.exists("x/y"));
    f.feed(data_frame(content));
    f.feed(control(Request{2, CommitRequest{sha256_of(content)}}));
    f.io.run_jobs();
    auto committed = parse_commit_reply(f.io.replies(1)[0]);
    REQUIRE(committed);
    CHECK(committed->body.file.name == "x/y/z.bin");
    CHECK(committed->body.file.mtime == 1500000000);
    CHECK(f.root.read("x/y/z.bin") == content);
    CHECK(f.root.hidden_entries() == 0);
    struct ::stat st {};
    REQUIRE(::stat((f.root.path() + "/x/y/z.bin").c_str(), &st) == 0);
    CHECK(st.st_mtime == 1500000000);
}

TEST_CASE("a synced upload's digest is kept at its commit: a get right after sends it unhashed, as file frames")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.file_frame_size = 1500;
    f.config.whole_read_max = 0;
    f.io.file_frames = true;
    f.hello(2);
    const auto push = [&](const std::string& name, const std::string& content, std::optional<std::int64_t> mtime,
                          std::uint64_t id) {
        PutRequest put{name, content.size(), false};
        put.mtime = mtime;
        REQUIRE(parse_put_reply(ask(f, put, id)));
        f.feed(data_frame(content));
        f.feed(control(Request{id, CommitRequest{sha256_of(content)}}));
        f.io.run_jobs();
        REQUIRE(parse_commit_reply(f.io.drain().controls.back()));
    };
    const auto pull = [&](const std::string& name, const std::string& content, std::uint64_t id) {
        const int frames_before = f.io.file_frames_sent;
        f.feed(control(Request{id, GetRequest{name, 0}}));
        f.io.run_jobs();
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == content);
        CHECK(parse_trailer(controls[1])->body.digest == sha256_of(content));
        return f.io.file_frames_sent - frames_before;
    };

    // The sender's older time (sync, put -p): any later write would move
    // the modification time to the present, so the commit's digest holds.
    const std::string synced = pattern(4000, 41);
    push("synced.bin", synced, 1500000000, 2);
    CHECK(pull("synced.bin", synced, 3) == 5); // 1000 + 500, 1000 + 500, 1000: by the kernel, unhashed
    const auto identity = f.library->open_for_read("synced.bin").value()->identity();
    CHECK(f.library->digests().find_for_download(identity, HashKind::sha256) == sha256_of(synced));
    // A digest request is believed without the bytes: it hashes the file.
    CHECK_FALSE(f.library->digests().find(identity, HashKind::sha256).has_value());

    // A plain put's file changed up to its publish: a write in the same
    // timestamp tick could go unseen, so its first get reads and hashes it
    // from memory (the fresh file's path), as before.
    const std::string plain = pattern(4000, 42);
    push("plain.bin", plain, std::nullopt, 4);
    CHECK(pull("plain.bin", plain, 5) == 0);
}

TEST_CASE("version 1 put ignores version 2's fields")
{
    Fixture f;
    f.hello(1);
    PutRequest put{"plain.bin", 3, false};
    put.mtime = 1500000000;
    REQUIRE(parse_put_reply(ask(f, put)));
    f.feed(data_frame("abc"));
    f.feed(control(Request{1, CommitRequest{sha256_of("abc")}}));
    f.io.run_jobs();
    auto committed = parse_commit_reply(f.io.replies(1)[0]);
    REQUIRE(committed);
    CHECK(committed->body.file.mtime != 1500000000);
}

TEST_CASE("digest names a file's hash by path")
{
    Fixture f;
    f.hello(2);
    make(f, "d");
    f.root.write("d/h", "hello");
    auto digest = parse_digest_reply(ask(f, DigestRequest{"d/h", HashKind::sha256}));
    REQUIRE(digest);
    CHECK(digest->body.digest == sha256_of("hello"));
    CHECK(digest->body.file.size == 5);
    auto fast = parse_digest_reply(ask(f, DigestRequest{"d/h", HashKind::xxh3_128}));
    REQUIRE(fast);
    CHECK(fast->body.digest == xxh3_of("hello"));
    CHECK(code_of(ask(f, DigestRequest{"d"})) == ErrorCode::not_regular_file);
    CHECK(code_of(ask(f, DigestRequest{"d/none"})) == ErrorCode::not_found);
    CHECK(code_of(ask(f, DigestRequest{"d/h/x"})) == ErrorCode::not_a_folder);
}

TEST_CASE("mkdir, delete and rename, with each of their refusals")
{
    Fixture f;
    f.hello(2);

    auto made = parse_mkdir_reply(ask(f, MkdirRequest{"a", false}));
    REQUIRE(made);
    CHECK(made->body.created);
    CHECK(made->body.path == "a");
    CHECK(code_of(ask(f, MkdirRequest{"a", false})) == ErrorCode::exists);
    made = parse_mkdir_reply(ask(f, MkdirRequest{"a", true}));
    REQUIRE(made);
    CHECK_FALSE(made->body.created);
    CHECK(code_of(ask(f, MkdirRequest{"q/r", false})) == ErrorCode::not_found);
    CHECK(code_of(ask(f, MkdirRequest{"", true})) == ErrorCode::invalid_name);
    REQUIRE(parse_mkdir_reply(ask(f, MkdirRequest{"a/b/c", true})));

    f.root.write("a/b/c/f1", "1");
    f.root.write("a/f2", "2");
    CHECK(code_of(ask(f, DeleteRequest{"a", false})) == ErrorCode::not_empty);
    CHECK(code_of(ask(f, DeleteRequest{"", true})) == ErrorCode::invalid_name);
    CHECK(code_of(ask(f, DeleteRequest{"nothing", false})) == ErrorCode::not_found);

    CHECK(code_of(ask(f, RenameRequest{"a", "a/b/in", false})) == ErrorCode::invalid_move);
    CHECK(code_of(ask(f, RenameRequest{"a/f2", "a/b", false})) == ErrorCode::exists);
    CHECK(code_of(ask(f, RenameRequest{"a/f2", "a/b", true})) == ErrorCode::exists);
    CHECK(code_of(ask(f, RenameRequest{"a/b", "a/f2", true})) == ErrorCode::not_a_folder);
    CHECK(code_of(ask(f, RenameRequest{"a/f2", "zz/f", false})) == ErrorCode::not_found);
    CHECK(code_of(ask(f, RenameRequest{"", "x", false})) == ErrorCode::invalid_name);
    REQUIRE(parse_mkdir_reply(ask(f, MkdirRequest{"e", false})));
    CHECK(code_of(ask(f, RenameRequest{"e", "a", true})) == ErrorCode::not_empty);
    auto renamed = parse_rename_reply(ask(f, RenameRequest{"a/f2", "e/f3", false}));
    REQUIRE(renamed);
    CHECK(renamed->body.to == "e/f3");
    CHECK(f.root.read("e/f3") == "2");

    auto removed = parse_delete_reply(ask(f, DeleteRequest{"a", true}));
    REQUIRE(removed);
    CHECK(removed->body.type == EntryType::folder);
    CHECK(removed->body.files == 1);
    CHECK(removed->body.folders == 3);
    CHECK_FALSE(f.root.exists("a"));
    removed = parse_delete_reply(ask(f, DeleteRequest{"e/f3", false}));
    REQUIRE(removed);
    CHECK(removed->body.type == EntryType::file);
    CHECK(removed->body.files == 1);
}

TEST_CASE("delete with expect removes only the entry listed: any other at its path stays, as file_changed")
{
    Fixture f;
    f.hello(2);
    make(f, "d");
    make(f, "d/sub");
    f.root.write("d/f", "12345");
    set_time(f, "d/f", 1764370000);
    auto listed = parse_list_reply(ask(f, ListRequest{false, "d", false}));
    REQUIRE(listed);
    REQUIRE(listed->body.files.size() == 2);
    const FileInfo& file = listed->body.files[0];
    REQUIRE(file.name == "f");
    const ExpectedEntry as_file{EntryType::file, file.size, file.mtime};
    const ExpectedEntry as_folder{EntryType::folder, 0, 0};

    SUBCASE("another file of another size, or of another mtime, stays")
    {
        f.root.write("d/f", "123456");
        set_time(f, "d/f", 1764370000);
        const std::string bigger = ask(f, DeleteRequest{"d/f", false, as_file});
        CHECK(code_of(bigger) == ErrorCode::file_changed);
        CHECK(bigger.find("6 bytes, expected 5") != std::string::npos);
        f.root.write("d/f", "54321");
        set_time(f, "d/f", 1764370001);
        const std::string newer = ask(f, DeleteRequest{"d/f", false, as_file});
        CHECK(code_of(newer) == ErrorCode::file_changed);
        CHECK(newer.find("mtime 1764370001, expected 1764370000") != std::string::npos);
        CHECK(f.root.read("d/f") == "54321");
    }
    SUBCASE("a folder in the file's place stays")
    {
        REQUIRE(::unlink((f.root.path() + "/d/f").c_str()) == 0);
        make(f, "d/f");
        CHECK(code_of(ask(f, DeleteRequest{"d/f", false, as_file})) == ErrorCode::file_changed);
        CHECK(f.root.exists("d/f"));
    }
    SUBCASE("a file in the folder's place stays")
    {
        REQUIRE(::rmdir((f.root.path() + "/d/sub").c_str()) == 0);
        f.root.write("d/sub", "not the folder listed");
        CHECK(code_of(ask(f, DeleteRequest{"d/sub", false, as_folder})) == ErrorCode::file_changed);
        CHECK(f.root.read("d/sub") == "not the folder listed");
    }
    SUBCASE("the entries as listed go; a folder whatever its mtime now")
    {
        set_time(f, "d/sub", 1);
        auto removed = parse_delete_reply(ask(f, DeleteRequest{"d/f", false, as_file}));
        REQUIRE(removed);
        CHECK(removed->body.files == 1);
        removed = parse_delete_reply(ask(f, DeleteRequest{"d/sub", false, as_folder}));
        REQUIRE(removed);
        CHECK(removed->body.folders == 1);
        CHECK_FALSE(f.root.exists("d/f"));
        CHECK_FALSE(f.root.exists("d/sub"));
    }
    SUBCASE("what is gone is not_found, as without expect")
    {
        REQUIRE(::unlink((f.root.path() + "/d/f").c_str()) == 0);
        CHECK(code_of(ask(f, DeleteRequest{"d/f", false, as_file})) == ErrorCode::not_found);
    }
}

namespace {

std::int64_t mtime_of(const Fixture& f, const std::string& path)
{
    struct ::stat st {};
    REQUIRE(::lstat((f.root.path() + "/" + path).c_str(), &st) == 0);
    return static_cast<std::int64_t>(st.st_mtime);
}

} // namespace

TEST_CASE("set_mtime with expect sets the time of the entry listed only: any other at its path keeps its own")
{
    Fixture f;
    f.hello(2);
    make(f, "d");
    make(f, "d/sub");
    f.root.write("d/f", "12345");
    set_time(f, "d/f", 1764370000);
    const ExpectedEntry as_file{EntryType::file, 5, 1764370000};
    const ExpectedEntry as_folder{EntryType::folder, 0, 0};
    const std::int64_t later = 1764379999;

    SUBCASE("another file of another size, or of another mtime, keeps its time")
    {
        f.root.write("d/f", "123456");
        set_time(f, "d/f", 1764370000);
        const std::string bigger = ask(f, SetMtimeRequest{"d/f", later, as_file});
        CHECK(code_of(bigger) == ErrorCode::file_changed);
        CHECK(bigger.find("6 bytes, expected 5") != std::string::npos);
        CHECK(bigger.find("its time was not set") != std::string::npos);
        CHECK(mtime_of(f, "d/f") == 1764370000);
        f.root.write("d/f", "54321");
        set_time(f, "d/f", 1764370001);
        const std::string newer = ask(f, SetMtimeRequest{"d/f", later, as_file});
        CHECK(code_of(newer) == ErrorCode::file_changed);
        CHECK(newer.find("mtime 1764370001, expected 1764370000") != std::string::npos);
        CHECK(mtime_of(f, "d/f") == 1764370001);
    }
    SUBCASE("a folder in the file's place, a file in the folder's, keep their times")
    {
        REQUIRE(::unlink((f.root.path() + "/d/f").c_str()) == 0);
        make(f, "d/f");
        set_time(f, "d/f", 7);
        CHECK(code_of(ask(f, SetMtimeRequest{"d/f", later, as_file})) == ErrorCode::file_changed);
        CHECK(mtime_of(f, "d/f") == 7);
        REQUIRE(::rmdir((f.root.path() + "/d/sub").c_str()) == 0);
        f.root.write("d/sub", "not the folder listed");
        set_time(f, "d/sub", 7);
        CHECK(code_of(ask(f, SetMtimeRequest{"d/sub", later, as_folder})) == ErrorCode::file_changed);
        CHECK(mtime_of(f, "d/sub") == 7);
        CHECK(code_of(ask(f, SetMtimeRequest{"", later, as_file})) == ErrorCode::file_changed);
    }
    SUBCASE("the entries as expected get the time; a folder whatever its mtime now, the root too")
    {
        set_time(f, "d/sub", 1);
        auto set = parse_stat_reply(ask(f, SetMtimeRequest{"d/f", later, as_file}));
        REQUIRE(set);
        CHECK(set->body.file.mtime == later);
        CHECK(set->body.file.size == 5);
        CHECK(mtime_of(f, "d/f") == later);
        set = parse_stat_reply(ask(f, SetMtimeRequest{"d/sub", later, as_folder}));
        REQUIRE(set);
        CHECK(set->body.file.type == EntryType::folder);
        CHECK(mtime_of(f, "d/sub") == later);
        set = parse_stat_reply(ask(f, SetMtimeRequest{"", later, as_folder}));
        REQUIRE(set);
        CHECK(set->body.file.type == EntryType::folder);
    }
    SUBCASE("a link or a FIFO is not_regular_file, gone is not_found, as without expect")
    {
        REQUIRE(::symlink("f", (f.root.path() + "/d/link").c_str()) == 0);
        CHECK(code_of(ask(f, SetMtimeRequest{"d/link", later, as_file})) == ErrorCode::not_regular_file);
        REQUIRE(::mkfifo((f.root.path() + "/d/fifo").c_str(), 0600) == 0);
        CHECK(code_of(ask(f, SetMtimeRequest{"d/fifo", later, as_file})) == ErrorCode::not_regular_file);
        CHECK(code_of(ask(f, SetMtimeRequest{"d/none", later, as_file})) == ErrorCode::not_found);
        CHECK(mtime_of(f, "d/f") == 1764370000);
    }
}

namespace {

// An inotify watch on `folder` for opens (IN_OPEN): what a FIFO's blocked
// writer or a device's driver would feel of an open(2) of the entry.
class OpenWatch {
public:
    explicit OpenWatch(const std::string& folder) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    {
        REQUIRE(fd_ >= 0);
        REQUIRE(::inotify_add_watch(fd_, folder.c_str(), IN_OPEN) >= 0);
    }
    ~OpenWatch() { ::close(fd_); }
    OpenWatch(const OpenWatch&) = delete;
    OpenWatch& operator=(const OpenWatch&) = delete;

    // Whether `name` in the folder was opened since the last call.
    bool opened(const std::string& name)
    {
        bool seen = false;
        alignas(inotify_event) char buffer[4096];
        for (;;) {
            const ssize_t got = ::read(fd_, buffer, sizeof buffer);
            if (got <= 0) {
                return seen;
            }
            for (ssize_t at = 0; at < got;) {
                const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
                seen = seen || (event->len > 0 && name == event->name);
                at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            }
        }
    }

private:
    int fd_;
};

} // namespace

TEST_CASE("set_mtime with expect never opens the entry: a FIFO or device swapped in would feel it")
{
    Fixture f;
    f.hello(2);
    make(f, "d");
    f.root.write("d/f", "12345");
    set_time(f, "d/f", 1764370000);
    OpenWatch watch(f.root.path() + "/d");
    // Linux reports O_PATH opens as IN_OPEN before 6.5 ("fsnotify: do not
    // generate events for O_PATH file descriptors"): there this cannot tell.
    f.root.write("d/probe", "");
    (void)watch.opened("probe");
    const int probe = ::open((f.root.path() + "/d/probe").c_str(), O_PATH | O_CLOEXEC);
    REQUIRE(probe >= 0);
    ::close(probe);
    if (watch.opened("probe")) {
        MESSAGE("this kernel reports O_PATH opens to inotify: not checked");
        return;
    }
    const std::int64_t later = 1764379999;
    auto set = parse_stat_reply(ask(f, SetMtimeRequest{"d/f", later, ExpectedEntry{EntryType::file, 5, 1764370000}}));
    REQUIRE(set);
    CHECK(mtime_of(f, "d/f") == later);
    CHECK_FALSE(watch.opened("f"));
    // The watch does see a real open of the file.
    const int opened = ::open((f.root.path() + "/d/f").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(opened >= 0);
    ::close(opened);
    CHECK(watch.opened("f"));
}

TEST_CASE("a read-only server refuses mkdir, delete and rename, and still lists, stats and digests")
{
    Fixture f;
    f.config.read_only = true;
    f.hello(2);
    make(f, "d");
    f.root.write("d/f", "x");
    CHECK(code_of(ask(f, MkdirRequest{"new", false})) == ErrorCode::forbidden);
    CHECK(code_of(ask(f, DeleteRequest{"d/f", false})) == ErrorCode::forbidden);
    CHECK(code_of(ask(f, RenameRequest{"d/f", "g", false})) == ErrorCode::forbidden);
    CHECK(f.io.jobs.empty());
    CHECK_FALSE(f.root.exists("new"));
    CHECK(f.root.exists("d/f"));
    CHECK(parse_list_reply(ask(f, ListRequest{false, "d", true})));
    CHECK(parse_stat_reply(ask(f, StatRequest{"d/f"})));
    CHECK(parse_digest_reply(ask(f, DigestRequest{"d/f"})));
}
