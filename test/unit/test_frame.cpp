// FrameDecoder and the frame encoders against docs/PROTOCOL.md section 2: the
// decoder must yield the same frames whatever slicing of the stream it is fed.
#include "frame.hpp"
#include "random_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

using ferry::DecodeEvent;
using ferry::ErrorCode;
using ferry::FrameDecoder;
using ferry::FrameKind;

namespace {

using Bytes = std::span<const std::uint8_t>;

Bytes bytes_of(const std::string& text)
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

struct Frame {
    FrameKind kind;
    std::string payload;
    bool operator==(const Frame&) const = default;
};

std::string encode(const Frame& frame)
{
    const auto header = ferry::encode_frame_header(frame.kind, static_cast<std::uint32_t>(frame.payload.size()));
    std::string out(reinterpret_cast<const char*>(header.data()), header.size());
    out += frame.payload;
    return out;
}

std::string encode_all(const std::vector<Frame>& frames)
{
    std::string out;
    for (const auto& frame : frames) {
        out += encode(frame);
    }
    return out;
}

Frame control(std::string text)
{
    return Frame{FrameKind::control, std::move(text)};
}

Frame data(std::size_t size, std::uint32_t seed)
{
    return Frame{FrameKind::data, ferry::test::random_bytes(size, seed)};
}

// Several control and data frames of mixed sizes: zero-length data frames,
// a control frame exactly at the default limit, data frames far larger than
// most input slices, and payloads full of bytes that look like frame kinds.
std::vector<Frame> mixed_frames()
{
    return {
        control(R"({"op":"hello","id":0,"version":1})"),
        data(0, 1),
        data(1, 2),
        control(R"({"op":"list","id":1})"),
        data(5, 3),
        data(300000, 4),
        control(""),
        data(0, 5),
        data(0, 6),
        control(std::string(ferry::kDefaultMaxControlFrame, 'c')),
        data(13, 7),
        control("x"),
        data(4096, 8),
        control(R"({"id":2,"ok":true,"name":"r\u00e9sum\u00e9.pdf","size":5120,"mtime":1764370000})"),
        data(70000, 9),
        data(2, 10),
        control(std::string(300, '\x02')),
        data(0, 11),
    };
}

// Feeds slices to one decoder the way a connection would, and reassembles
// what comes out. Contract violations are recorded (the first one wins) so
// that hot loops do not each add an assertion.
class Collector {
public:
    explicit Collector(std::uint32_t max_control = ferry::kDefaultMaxControlFrame) : decoder_(max_control) {}

    void feed(Bytes input)
    {
        int stalls = 0;
        while (!error_) {
            const DecodeEvent event = decoder_.next(input);
            if (event.consumed > input.size()) {
                violation("consumed more than it was given");
                return;
            }
            switch (event.kind) {
            case DecodeEvent::Kind::need_more:
                if (event.consumed != input.size()) {
                    violation("need_more left input bytes unconsumed");
                }
                return;
            case DecodeEvent::Kind::control:
                if (in_data_) {
                    violation("control frame began inside an unfinished data frame");
                }
                frames_.push_back(Frame{FrameKind::control, event.text});
                break;
            case DecodeEvent::Kind::data:
                ++data_pieces_;
                if (!event.bytes.empty()) {
                    const auto* begin = input.data();
                    if (event.bytes.data() < begin ||
                        event.bytes.data() + event.bytes.size() > begin + event.consumed) {
                        violation("data bytes are not a view into the consumed input");
                    }
                } else if (!event.frame_end) {
                    violation("empty data piece that does not end its frame");
                }
                in_data_ = true;
                partial_.append(reinterpret_cast<const char*>(event.bytes.data()), event.bytes.size());
                if (event.frame_end) {
                    frames_.push_back(Frame{FrameKind::data, std::move(partial_)});
                    partial_.clear();
                    in_data_ = false;
                }
                break;
            case DecodeEvent::Kind::error:
                error_ = event.error;
                return;
            }
            if (event.consumed == 0 && ++stalls > 2) {
                violation("decoder makes no progress");
                return;
            }
            input = input.subspan(event.consumed);
        }
    }

    const std::vector<Frame>& frames() const { return frames_; }
    const std::optional<ferry::Error>& error() const { return error_; }
    const std::string& first_violation() const { return violation_; }
    std::size_t data_pieces() const { return data_pieces_; }
    bool in_data() const { return in_data_; }
    const FrameDecoder& decoder() const { return decoder_; }

private:
    void violation(const char* what)
    {
        if (violation_.empty()) {
            violation_ = what;
        }
    }

    FrameDecoder decoder_;
    std::vector<Frame> frames_;
    std::string partial_;
    bool in_data_ = false;
    std::size_t data_pieces_ = 0;
    std::optional<ferry::Error> error_;
    std::string violation_;
};

std::size_t count_data_frames(const std::vector<Frame>& frames)
{
    return static_cast<std::size_t>(
        std::count_if(frames.begin(), frames.end(), [](const Frame& f) { return f.kind == FrameKind::data; }));
}

// Compares frame by frame so a failure names the first frame that differs
// instead of dumping half a megabyte.
void check_frames(const std::vector<Frame>& actual, const std::vector<Frame>& expected)
{
    REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("frame " << i);
        CHECK(actual[i].kind == expected[i].kind);
        CHECK(actual[i].payload.size() == expected[i].payload.size());
        CHECK((actual[i].payload == expected[i].payload));
    }
}

void check_clean_end(const Collector& collector)
{
    CHECK(collector.first_violation() == "");
    CHECK_FALSE(collector.error().has_value());
    CHECK_FALSE(collector.in_data());
    CHECK_FALSE(collector.decoder().mid_frame());
    CHECK_FALSE(collector.decoder().failed());
}

// Slice sizes from a mix: many tiny slices (headers split everywhere), some
// medium, a few huge (several frames in one slice).
std::size_t random_slice(std::mt19937& rng)
{
    std::uniform_int_distribution<int> pick(0, 9);
    const int bucket = pick(rng);
    if (bucket < 5) {
        return std::uniform_int_distribution<std::size_t>(1, 7)(rng);
    }
    if (bucket < 8) {
        return std::uniform_int_distribution<std::size_t>(1, 600)(rng);
    }
    return std::uniform_int_distribution<std::size_t>(1, 120000)(rng);
}

Bytes header_bytes(const ferry::FrameHeader& header)
{
    return {header.data(), header.size()};
}

} // namespace

TEST_CASE("encode_frame_header lays out kind then big-endian length")
{
    SUBCASE("control, distinct bytes")
    {
        const auto header = ferry::encode_frame_header(FrameKind::control, 0x01020304u);
        CHECK(header[0] == 0x01);
        CHECK(header[1] == 0x01);
        CHECK(header[2] == 0x02);
        CHECK(header[3] == 0x03);
        CHECK(header[4] == 0x04);
    }
    SUBCASE("data, high bits set")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, 0xA1B2C3D4u);
        CHECK(header[0] == 0x02);
        CHECK(header[1] == 0xA1);
        CHECK(header[2] == 0xB2);
        CHECK(header[3] == 0xC3);
        CHECK(header[4] == 0xD4);
    }
    SUBCASE("zero length")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, 0);
        CHECK(header == ferry::FrameHeader{0x02, 0, 0, 0, 0});
    }
    SUBCASE("256 KiB chunk")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, ferry::kPreferredDataChunk);
        CHECK(header == ferry::FrameHeader{0x02, 0x00, 0x04, 0x00, 0x00});
    }
    SUBCASE("largest length")
    {
        const auto header = ferry::encode_frame_header(FrameKind::control, 0xFFFFFFFFu);
        CHECK(header == ferry::FrameHeader{0x01, 0xFF, 0xFF, 0xFF, 0xFF});
    }
}

TEST_CASE("encode_control_frame is the header followed by the text")
{
    const std::string frame = ferry::encode_control_frame(R"({"op":"list","id":1})");
    const std::string expected = std::string("\x01\x00\x00\x00\x14", 5) + R"({"op":"list","id":1})";
    CHECK(frame == expected);

    const std::string empty = ferry::encode_control_frame("");
    CHECK(empty == std::string("\x01\x00\x00\x00\x00", 5));

    const std::string big = ferry::encode_control_frame(std::string(0x010203, 'z'));
    REQUIRE(big.size() == 5 + 0x010203);
    CHECK(big.substr(0, 5) == std::string("\x01\x00\x01\x02\x03", 5));
}

TEST_CASE("the mixed stream fed whole yields every frame in one piece")
{
    const auto frames = mixed_frames();
    const std::string stream = encode_all(frames);
    Collector collector;
    collector.feed(bytes_of(stream));
    check_clean_end(collector);
    check_frames(collector.frames(), frames);
    // With all bytes at hand no data frame needs to be cut in pieces.
    CHECK(collector.data_pieces() == count_data_frames(frames));
}

TEST_CASE("the mixed stream fed one byte at a time yields the same frames")
{
    const auto frames = mixed_frames();
    const std::string stream = encode_all(frames);
    Collector collector;
    const Bytes all = bytes_of(stream);
    for (std::size_t i = 0; i < all.size(); ++i) {
        collector.feed(all.subspan(i, 1));
    }
    check_clean_end(collector);
    check_frames(collector.frames(), frames);
    // Every data byte is its own piece; an empty data frame is one empty piece.
    std::size_t expected_pieces = 0;
    for (const auto& frame : frames) {
        if (frame.kind == FrameKind::data) {
            expected_pieces += std::max<std::size_t>(frame.payload.size(), 1);
        }
    }
    CHECK(collector.data_pieces() == expected_pieces);
}

TEST_CASE("the mixed stream fed at 200 random splittings yields the same frames")
{
    const auto frames = mixed_frames();
    const std::string stream = encode_all(frames);
    const Bytes all = bytes_of(stream);
    std::size_t total_slices = 0;
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        INFO("seed " << seed);
        std::mt19937 rng(seed);
        Collector collector;
        std::size_t at = 0;
        std::size_t slices = 0;
        while (at < all.size()) {
            const std::size_t size = std::min(random_slice(rng), all.size() - at);
            collector.feed(all.subspan(at, size));
            at += size;
            ++slices;
        }
        REQUIRE(slices >= 2);
        total_slices += slices;
        check_clean_end(collector);
        check_frames(collector.frames(), frames);
    }
    // On average the splittings cut finer than one slice per frame (and the
    // 300000-byte frame is always longer than the largest slice).
    CHECK(total_slices > 200 * frames.size());
}

TEST_CASE("a slice boundary at every offset of a short stream")
{
    // Two cuts at every pair of positions of a small stream: every header and
    // payload split the decoder can see, exhaustively.
    const std::vector<Frame> frames{control("{}"), data(0, 20), data(3, 21), control("[1]"), data(1, 22)};
    const std::string stream = encode_all(frames);
    const Bytes all = bytes_of(stream);
    std::string first_failure;
    for (std::size_t a = 0; a <= all.size(); ++a) {
        for (std::size_t b = a; b <= all.size(); ++b) {
            Collector collector;
            collector.feed(all.first(a));
            collector.feed(all.subspan(a, b - a));
            collector.feed(all.subspan(b));
            const bool good = collector.first_violation().empty() && !collector.error() &&
                              !collector.decoder().mid_frame() && collector.frames() == frames;
            if (!good && first_failure.empty()) {
                first_failure = "cuts at " + std::to_string(a) + " and " + std::to_string(b);
            }
        }
    }
    CHECK(first_failure == "");
}

TEST_CASE("control frame size limit")
{
    SUBCASE("exactly at a custom limit is accepted")
    {
        const std::string text(100, 'a');
        const std::string frame = ferry::encode_control_frame(text);
        FrameDecoder decoder(100);
        const auto event = decoder.next(bytes_of(frame));
        REQUIRE(event.kind == DecodeEvent::Kind::control);
        CHECK(event.text == text);
        CHECK(event.consumed == frame.size());
        CHECK_FALSE(decoder.failed());
    }
    SUBCASE("one byte over a custom limit is frame_too_large")
    {
        const std::string frame = ferry::encode_control_frame(std::string(101, 'a'));
        FrameDecoder decoder(100);
        const auto event = decoder.next(bytes_of(frame));
        REQUIRE(event.kind == DecodeEvent::Kind::error);
        CHECK(event.error.code == ErrorCode::frame_too_large);
        CHECK(decoder.failed());
    }
    SUBCASE("the default limit is 65536 bytes")
    {
        const std::string at_limit = ferry::encode_control_frame(std::string(65536, '{'));
        FrameDecoder accepting;
        const auto accepted = accepting.next(bytes_of(at_limit));
        REQUIRE(accepted.kind == DecodeEvent::Kind::control);
        CHECK(accepted.text.size() == 65536);

        // Refused on the header alone: the payload is never waited for.
        const auto over = ferry::encode_frame_header(FrameKind::control, 65537);
        FrameDecoder refusing;
        const auto refused = refusing.next(header_bytes(over));
        REQUIRE(refused.kind == DecodeEvent::Kind::error);
        CHECK(refused.error.code == ErrorCode::frame_too_large);
    }
    SUBCASE("the limit also holds when the header arrives byte by byte")
    {
        const auto over = ferry::encode_frame_header(FrameKind::control, 11);
        FrameDecoder decoder(10);
        for (std::size_t i = 0; i < 4; ++i) {
            const auto event = decoder.next(header_bytes(over).subspan(i, 1));
            CHECK(event.kind == DecodeEvent::Kind::need_more);
        }
        const auto event = decoder.next(header_bytes(over).subspan(4, 1));
        REQUIRE(event.kind == DecodeEvent::Kind::error);
        CHECK(event.error.code == ErrorCode::frame_too_large);
    }
}

TEST_CASE("data frame size limit")
{
    SUBCASE("one byte over kMaxDataFrame is frame_too_large")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, ferry::kMaxDataFrame + 1);
        FrameDecoder decoder;
        const auto event = decoder.next(header_bytes(header));
        REQUIRE(event.kind == DecodeEvent::Kind::error);
        CHECK(event.error.code == ErrorCode::frame_too_large);
        CHECK(decoder.failed());
    }
    SUBCASE("the largest length a header can carry is frame_too_large")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, 0xFFFFFFFFu);
        FrameDecoder decoder;
        const auto event = decoder.next(header_bytes(header));
        REQUIRE(event.kind == DecodeEvent::Kind::error);
        CHECK(event.error.code == ErrorCode::frame_too_large);
    }
    SUBCASE("exactly kMaxDataFrame is accepted and not limited by the control limit")
    {
        CHECK(ferry::kMaxDataFrame == 16u * 1024 * 1024);
        const std::string frame = encode(data(ferry::kMaxDataFrame, 30));
        FrameDecoder decoder(16);
        const auto event = decoder.next(bytes_of(frame));
        REQUIRE(event.kind == DecodeEvent::Kind::data);
        CHECK(event.bytes.size() == ferry::kMaxDataFrame);
        CHECK(event.frame_end);
        CHECK(event.consumed == frame.size());
        CHECK(std::equal(event.bytes.begin(), event.bytes.end(), bytes_of(frame).begin() + 5));
        CHECK_FALSE(decoder.mid_frame());
    }
}

TEST_CASE("an unknown kind byte is bad_frame")
{
    for (const std::uint8_t kind : std::initializer_list<std::uint8_t>{0x00, 0x03, 0x10, 0x7F, 0x81, 0xFF}) {
        INFO("kind " << int{kind});
        const std::string frame = std::string(1, static_cast<char>(kind)) + std::string("\x00\x00\x00\x02{}", 6);
        FrameDecoder decoder;
        const auto event = decoder.next(bytes_of(frame));
        REQUIRE(event.kind == DecodeEvent::Kind::error);
        CHECK(event.error.code == ErrorCode::bad_frame);
        CHECK(decoder.failed());
    }

    SUBCASE("after good frames in the same slice")
    {
        const std::string stream =
            encode_all({control("{}"), data(4, 40)}) + std::string("\x05\x00\x00\x00\x00", 5) + encode(control("{}"));
        Collector collector;
        collector.feed(bytes_of(stream));
        CHECK(collector.first_violation() == "");
        REQUIRE(collector.frames().size() == 2);
        CHECK(collector.frames()[0] == control("{}"));
        CHECK(collector.frames()[1] == data(4, 40));
        REQUIRE(collector.error().has_value());
        CHECK(collector.error()->code == ErrorCode::bad_frame);
    }
}

TEST_CASE("after an error the decoder keeps returning it")
{
    const std::string good = encode_all({control("{}"), data(3, 50)});

    SUBCASE("bad_frame")
    {
        FrameDecoder decoder;
        const std::string bad("\x09\x00\x00\x00\x00", 5);
        const auto first = decoder.next(bytes_of(bad));
        REQUIRE(first.kind == DecodeEvent::Kind::error);
        for (int i = 0; i < 3; ++i) {
            const auto again = decoder.next(bytes_of(good));
            CHECK(again.kind == DecodeEvent::Kind::error);
            CHECK(again.error.code == ErrorCode::bad_frame);
            CHECK(again.error.message == first.error.message);
            CHECK(again.consumed == 0);
            CHECK(decoder.failed());
        }
        const auto on_empty = decoder.next({});
        CHECK(on_empty.kind == DecodeEvent::Kind::error);
        CHECK(on_empty.error.code == ErrorCode::bad_frame);
    }
    SUBCASE("frame_too_large")
    {
        FrameDecoder decoder(8);
        const std::string big = ferry::encode_control_frame(std::string(9, 'q'));
        const auto first = decoder.next(bytes_of(big));
        REQUIRE(first.kind == DecodeEvent::Kind::error);
        CHECK(first.error.code == ErrorCode::frame_too_large);
        for (int i = 0; i < 3; ++i) {
            const auto again = decoder.next(bytes_of(good));
            CHECK(again.kind == DecodeEvent::Kind::error);
            CHECK(again.error.code == ErrorCode::frame_too_large);
            CHECK(again.consumed == 0);
        }
    }
}

TEST_CASE("mid_frame is true while a frame is partial and false between frames")
{
    FrameDecoder decoder;
    CHECK_FALSE(decoder.mid_frame());
    CHECK(decoder.next({}).kind == DecodeEvent::Kind::need_more);
    CHECK_FALSE(decoder.mid_frame());

    SUBCASE("control frame")
    {
        const std::string frame = ferry::encode_control_frame(R"({"a":1})");
        const Bytes all = bytes_of(frame);
        for (std::size_t i = 0; i + 1 < all.size(); ++i) {
            INFO("after byte " << i);
            const auto event = decoder.next(all.subspan(i, 1));
            CHECK(event.kind == DecodeEvent::Kind::need_more);
            CHECK(event.consumed == 1);
            CHECK(decoder.mid_frame());
            CHECK(decoder.frame_received() == i + 1);
        }
        const auto last = decoder.next(all.last(1));
        CHECK(last.kind == DecodeEvent::Kind::control);
        CHECK(last.text == R"({"a":1})");
        CHECK_FALSE(decoder.mid_frame());
        CHECK(decoder.frame_received() == 0);
    }
    SUBCASE("data frame")
    {
        const std::string frame = encode(data(10, 60));
        const Bytes all = bytes_of(frame);
        // Header split 2 + 3: partial header, then a full header with no payload yet.
        CHECK(decoder.next(all.first(2)).kind == DecodeEvent::Kind::need_more);
        CHECK(decoder.mid_frame());
        CHECK(decoder.frame_received() == 2);
        const auto header_done = decoder.next(all.subspan(2, 3));
        CHECK(header_done.kind == DecodeEvent::Kind::need_more);
        CHECK(header_done.consumed == 3);
        CHECK(decoder.mid_frame());
        CHECK(decoder.frame_received() == 5);
        const auto piece = decoder.next(all.subspan(5, 4));
        REQUIRE(piece.kind == DecodeEvent::Kind::data);
        CHECK(piece.bytes.size() == 4);
        CHECK_FALSE(piece.frame_end);
        CHECK(decoder.mid_frame());
        CHECK(decoder.frame_received() == 9);
        const auto rest = decoder.next(all.subspan(9));
        REQUIRE(rest.kind == DecodeEvent::Kind::data);
        CHECK(rest.bytes.size() == 6);
        CHECK(rest.frame_end);
        CHECK_FALSE(decoder.mid_frame());
        CHECK(decoder.frame_received() == 0);
    }
    SUBCASE("zero-length data frame")
    {
        const std::string frame = encode(data(0, 61));
        const Bytes all = bytes_of(frame);
        CHECK(decoder.next(all.first(4)).kind == DecodeEvent::Kind::need_more);
        CHECK(decoder.mid_frame());
        const auto event = decoder.next(all.subspan(4));
        REQUIRE(event.kind == DecodeEvent::Kind::data);
        CHECK(event.bytes.empty());
        CHECK(event.frame_end);
        CHECK(event.consumed == 1);
        CHECK_FALSE(decoder.mid_frame());
    }
    SUBCASE("zero-length control frame")
    {
        const std::string frame = ferry::encode_control_frame("");
        const auto event = decoder.next(bytes_of(frame));
        REQUIRE(event.kind == DecodeEvent::Kind::control);
        CHECK(event.text == "");
        CHECK(event.consumed == 5);
        CHECK_FALSE(decoder.mid_frame());
    }
    SUBCASE("between two frames of one slice")
    {
        const std::string stream = encode_all({control("{}"), data(2, 62)});
        const Bytes all = bytes_of(stream);
        const auto first = decoder.next(all);
        REQUIRE(first.kind == DecodeEvent::Kind::control);
        CHECK(first.consumed == 7);
        CHECK_FALSE(decoder.mid_frame());
        const auto second = decoder.next(all.subspan(first.consumed));
        REQUIRE(second.kind == DecodeEvent::Kind::data);
        CHECK(second.frame_end);
        CHECK_FALSE(decoder.mid_frame());
        CHECK(decoder.next(all.subspan(first.consumed + second.consumed)).kind == DecodeEvent::Kind::need_more);
    }
}

TEST_CASE("header_missing and data_remaining follow the stream byte by byte")
{
    // A reader sizes its reads by these two (the server lands a data
    // frame's payload straight in its upload's staging chunk), so they must
    // be exact at every byte: control frame, data frame, empty data frame.
    const std::string stream = encode(control("{\"id\":1}")) + encode(data(7, 3)) + encode(data(0, 0));
    FrameDecoder decoder;
    CHECK(decoder.header_missing() == ferry::kFrameHeaderSize);
    CHECK(decoder.data_remaining() == 0);
    std::vector<std::pair<std::size_t, std::uint32_t>> seen;
    for (std::size_t i = 0; i < stream.size(); ++i) {
        const auto event = decoder.next(bytes_of(stream).subspan(i, 1));
        REQUIRE(event.kind != DecodeEvent::Kind::error);
        CHECK(event.consumed == 1);
        seen.emplace_back(decoder.header_missing(), decoder.data_remaining());
    }
    const std::vector<std::pair<std::size_t, std::uint32_t>> expected = {
        // control header, then its 8 bytes of JSON: neither a header nor data
        {4, 0}, {3, 0}, {2, 0}, {1, 0}, {0, 0},
        {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {5, 0},
        // data header announcing 7 bytes, then the payload counting down
        {4, 0}, {3, 0}, {2, 0}, {1, 0}, {0, 7},
        {0, 6}, {0, 5}, {0, 4}, {0, 3}, {0, 2}, {0, 1}, {5, 0},
        // an empty data frame ends with its header
        {4, 0}, {3, 0}, {2, 0}, {1, 0}, {5, 0},
    };
    CHECK(seen == expected);

    SUBCASE("after an error neither asks for more")
    {
        const auto header = ferry::encode_frame_header(FrameKind::data, ferry::kMaxDataFrame + 1);
        FrameDecoder failing;
        REQUIRE(failing.next(header_bytes(header)).kind == DecodeEvent::Kind::error);
        CHECK(failing.header_missing() == 0);
        CHECK(failing.data_remaining() == 0);
    }
}

TEST_CASE("whole_control_frame: the length of a control frame that is all there, else 0")
{
    const std::string request = ferry::encode_control_frame(R"({"op":"put","id":2})");
    const std::string data = encode(Frame{FrameKind::data, "abc"});
    CHECK(ferry::whole_control_frame(bytes_of(request), 1024) == request.size());
    // With more behind it, only its own bytes.
    CHECK(ferry::whole_control_frame(bytes_of(request + data), 1024) == request.size());
    // Any part of it missing, a data frame first, nothing, or over the limit: 0.
    for (std::size_t cut = 0; cut < request.size(); ++cut) {
        CHECK(ferry::whole_control_frame(bytes_of(request.substr(0, cut)), 1024) == 0);
    }
    CHECK(ferry::whole_control_frame(bytes_of(data + request), 1024) == 0);
    CHECK(ferry::whole_control_frame(bytes_of(request), static_cast<std::uint32_t>(request.size() - 6)) == 0);
    CHECK(ferry::whole_control_frame(bytes_of(std::string("\x07\0\0\0\0", 5)), 1024) == 0);
}
