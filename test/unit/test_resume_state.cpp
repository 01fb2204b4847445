// protocol/resume_state: the one format of the client's download sidecar and
// the server's upload state, the older formats it still reads, and what it
// refuses (a state file is input like any other: it may be cut short,
// edited, or left by another program).
#include "resume_state.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using ferry::decode_resume_state;
using ferry::encode_resume_state;
using ferry::PartIdentity;
using ferry::ResumeState;

namespace {

ResumeState download_state()
{
    ResumeState state;
    state.name = "d\xc3\xa9j\xc3\xa0 vu/\"quoted\"\n.bin";
    state.size = 1000;
    state.bytes_held = 3;
    state.hash_state = "sha256-ctx-v1:112:00ff";
    state.mtime = -5;
    state.prefix_digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    state.part = PartIdentity{2049, 77, 3, 1764370000123456789, -1};
    return state;
}

ResumeState upload_state()
{
    ResumeState state;
    state.name = "upload.iso";
    state.size = std::numeric_limits<std::uint64_t>::max();
    state.bytes_held = 67108864;
    state.hash_state = "xxh3-state-v1:576:abcd";
    state.written_ns = 1764370000123456789;
    state.owner = "token-sha256:00ff";
    state.part = PartIdentity{2049, 78, 67108864, 1764370000123456789, 1764370000123456790};
    return state;
}

} // namespace

TEST_CASE("a resume state reads back as it was written, for a download and for an upload")
{
    for (const auto& state : {download_state(), upload_state(), ResumeState{}}) {
        const std::string text = encode_resume_state(state);
        CAPTURE(text);
        CHECK(text.back() == '\n');
        CHECK(text.find('\n') == text.size() - 1); // one line
        const auto back = decode_resume_state(text);
        REQUIRE(back.has_value());
        CHECK(*back == state);
    }
}

TEST_CASE("the client's version-2 sidecar, as older builds wrote it, is still read")
{
    const std::string v2 =
        "{\"bytes_held\":3,\"mtime\":1764370000,\"name\":\"name.bin\",\"part\":[2049,77,3,1764370000123456789,"
        "1764370000987654321],\"prefix_digest\":\"abc\",\"sha256_state\":\"sha256-ctx-v1:112:00\",\"size\":1000,"
        "\"version\":2}\n";
    const auto state = decode_resume_state(v2);
    REQUIRE(state.has_value());
    CHECK(state->name == "name.bin");
    CHECK(state->size == 1000);
    CHECK(state->bytes_held == 3);
    CHECK(state->hash_state == "sha256-ctx-v1:112:00");
    CHECK(state->mtime == 1764370000);
    CHECK(state->prefix_digest == "abc");
    CHECK(state->part == PartIdentity{2049, 77, 3, 1764370000123456789, 1764370000987654321});
    CHECK_FALSE(state->written_ns.has_value());

    // Version 2 had every download field; one missing was never written by it.
    CHECK_FALSE(decode_resume_state("{\"version\":2,\"name\":\"a\",\"size\":1,\"mtime\":0,\"bytes_held\":0,"
                                    "\"sha256_state\":\"\"}")
                    .has_value());
    // Version 1 vouched for bytes it could not recognise again: refused, as before.
    CHECK_FALSE(decode_resume_state("{\"version\":1,\"name\":\"a\",\"size\":9,\"mtime\":0,\"bytes_held\":5,"
                                    "\"sha256_state\":\"\"}")
                    .has_value());
}

TEST_CASE("the server's ferry-partial-state v1 lines, as older builds wrote them, are still read")
{
    const std::string v1 = "ferry-partial-state v1\nname 612062c3a9\nsize 100\ndurable 40\n"
                           "hash sha256-ctx-v1:112:00ff\nwritten 1764370000123456789\n";
    const auto state = decode_resume_state(v1);
    REQUIRE(state.has_value());
    CHECK(state->name == "a b\xc3\xa9");
    CHECK(state->size == 100);
    CHECK(state->bytes_held == 40);
    CHECK(state->hash_state == "sha256-ctx-v1:112:00ff");
    CHECK(state->written_ns == 1764370000123456789);
    CHECK_FALSE(state->mtime.has_value());

    // The oldest ones had no hash or time; unknown keys were skipped.
    const auto bare = decode_resume_state("ferry-partial-state v1\nname 61\nsize 1\ndurable 0\nlater x\n");
    REQUIRE(bare.has_value());
    CHECK(bare->hash_state.empty());
    CHECK_FALSE(bare->written_ns.has_value());

    for (const std::string bad : {
             "ferry-partial-state v1\nsize 1\ndurable 0\n",                  // no name
             "ferry-partial-state v1\nname 61\ndurable 0\n",                 // no size
             "ferry-partial-state v1\nname 61\nsize 1\n",                    // no durable
             "ferry-partial-state v1\nname 6\nsize 1\ndurable 0\n",          // odd hex
             "ferry-partial-state v1\nname zz\nsize 1\ndurable 0\n",         // not hex
             "ferry-partial-state v1\nname 61\nsize 1\ndurable 2\n",         // more held than the size
             "ferry-partial-state v1\nname 61\nsize -1\ndurable 0\n",        // negative
             "ferry-partial-state v1\nname 61\nsize 1x\ndurable 0\n",        // trailing junk
             "ferry-partial-state v1\nname 61\nsize 99999999999999999999\ndurable 0\n", // overflow
             "ferry-partial-state v1\nname 61\nsize 1\ndurable 0\nwritten soon\n",
             "ferry-partial-state v1\nname61\nsize 1\ndurable 0\n",          // no separator
             "ferry-partial-state v2\nname 61\nsize 1\ndurable 0\n",         // unknown magic
         }) {
        CAPTURE(bad);
        CHECK_FALSE(decode_resume_state(bad).has_value());
    }
}

TEST_CASE("hostile or damaged resume states are refused, never trusted")
{
    const std::string good = encode_resume_state(download_state());
    std::vector<std::string> bad{
        "",
        "\n",
        "null",
        "[]",
        "\"text\"",
        "{",
        "{}",
        "{\"version\":3}",
        "{\"version\":4,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":\"3\",\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":1,\"size\":1,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":-1,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":1.5,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":2,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":null}",
        "{\"version\":3,\"name\":\"a\",\"size\":18446744073709551616,\"bytes_held\":0,\"hash_state\":\"\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"mtime\":\"0\"}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"part\":[1,2,3]}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"part\":[1,2,-3,4,5]}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"prefix_digest\":7}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"written_ns\":true}",
        "{\"version\":3,\"name\":\"a\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\",\"owner\":1}",
        "{\"version\":3,\"name\":\"\xff\",\"size\":1,\"bytes_held\":0,\"hash_state\":\"\"}", // not UTF-8
        good.substr(0, good.size() / 2),                                                    // cut short
        good + good,                                                                        // two documents
        std::string(good).replace(good.find('{'), 1, 1, '\0'),
        std::string(200000, '['),                                   // nesting far past any real state
        std::string(30000, '[') + std::string(30000, ']'), // deep, yet under the size cap
        "{\"version\":3,\"name\":\"" + std::string(70 * 1024, 'a') + "\",\"size\":1,\"bytes_held\":0,"
                                                                    "\"hash_state\":\"\"}", // too large
    };
    for (const auto& text : bad) {
        CAPTURE(text.substr(0, 120));
        CHECK_FALSE(decode_resume_state(text).has_value());
    }
    // Every prefix of a good state is refused, and none crashes.
    for (std::size_t cut = 0; cut + 1 < good.size(); ++cut) {
        CAPTURE(cut);
        CHECK_FALSE(decode_resume_state(std::string_view(good).substr(0, cut)).has_value());
    }
}

TEST_CASE("a commit's intent on its file reads back as written, stays short, and refuses any other shape")
{
    const ferry::PublishIntent intent{0, 1234567, 4321, 8765, 0640, "none"};
    const std::string text = ferry::encode_publish_intent(intent, 1764370000);
    CHECK(text == R"([1234567,4321,8765,416,"none",1764370000])");
    // No device: a reader compares its own root's (mounts number it apart).
    CHECK(ferry::encode_publish_intent(ferry::PublishIntent{66306, 1234567, 4321, 8765, 0640, "none"}, 1764370000) ==
          text);
    // ext4 keeps an attribute inside a 256-byte inode when its entry (16
    // bytes, the name's 16, the value) fits the 92 bytes free there.
    CHECK(text.size() <= 60);
    const auto back = ferry::decode_publish_intent(text);
    REQUIRE(back);
    CHECK(back->intent == intent);
    CHECK(back->written_s == 1764370000);
    const ferry::PublishIntent with_acl{0, 2, 3, 4, 0750, "user::rwx,user:1234:r-x,group::r-x,mask::r-x,other::---"};
    const auto acl_back = ferry::decode_publish_intent(ferry::encode_publish_intent(with_acl, -5));
    REQUIRE(acl_back);
    CHECK(acl_back->intent == with_acl);
    CHECK(acl_back->written_s == -5);

    for (const char* bad :
         {"", "[", "{}", R"([2,3,4,420,"none"])", R"([2,3,4,420,"none",7,8])", R"([2,3,4,420,7,7])",
          R"([2,3,4,420,"none","7"])", R"([2,3,4,420,"none",7.5])", R"([1,2,3,4,420,"none"])",
          R"([2,-3,4,420,"none",7])", R"([2,4294967296,4,420,"none",7])", R"([2,3,4294967296,420,"none",7])",
          R"([2,3,4,4096,"none",7])", R"([1.5,3,4,420,"none",7])", R"(["2",3,4,420,"none",7])",
          R"({"inode":2,"uid":3,"gid":4,"mode":420,"acl":"none","written":7})"}) {
        CAPTURE(bad);
        CHECK_FALSE(ferry::decode_publish_intent(bad));
    }
    // Fed one byte at a time as a truncated attribute would read: nothing
    // short of the whole array is an intent.
    for (std::size_t cut = 0; cut < text.size(); ++cut) {
        CAPTURE(cut);
        CHECK_FALSE(ferry::decode_publish_intent(std::string_view(text).substr(0, cut)));
    }
}

TEST_CASE("an upload's publish record reads back as written; a mistyped or out-of-range one refuses the state")
{
    ResumeState state = upload_state();
    state.publishing = ferry::PublishIntent{66306, 1234567, 4321, 8765, 0640, "user::rw-,user:1234:r--,group::r--,"
                                                                              "mask::r--,other::---"};
    const auto back = decode_resume_state(encode_resume_state(state));
    REQUIRE(back);
    CHECK(*back == state);

    const std::string head = R"({"version":3,"name":"f","size":5,"bytes_held":5,"hash_state":"00","publishing":)";
    for (const char* bad : {R"("x"})", R"({"device":1,"inode":2,"uid":3,"gid":4,"mode":420}})",
                            R"({"device":1,"inode":2,"uid":3,"gid":4,"mode":65535,"acl":"none"}})",
                            R"({"device":1,"inode":2,"uid":-3,"gid":4,"mode":420,"acl":"none"}})",
                            R"({"device":1,"inode":2,"uid":4294967296,"gid":4,"mode":420,"acl":"none"}})"}) {
        CAPTURE(bad);
        CHECK_FALSE(decode_resume_state(head + bad + "\n"));
    }
}
