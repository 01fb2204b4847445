// Ferry's framing: every frame is a 5-byte header (kind, payload length as a
// big-endian uint32) followed by the payload. Control frames carry one JSON
// object; data frames carry raw file bytes. The fixed header is what lets a
// sender write a data frame's body straight from a file (sendfile).
#pragma once

#include "error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ferry {

inline constexpr std::size_t kFrameHeaderSize = 5;

enum class FrameKind : std::uint8_t {
    control = 0x01,
    data = 0x02,
};

// Defaults announced in hello; see docs/PROTOCOL.md "Limits".
inline constexpr std::uint32_t kDefaultMaxControlFrame = 64 * 1024;
// A data frame may be up to this large; senders in this project use 256 KiB.
inline constexpr std::uint32_t kMaxDataFrame = 16 * 1024 * 1024;
inline constexpr std::uint32_t kPreferredDataChunk = 256 * 1024;

using FrameHeader = std::array<std::uint8_t, kFrameHeaderSize>;

FrameHeader encode_frame_header(FrameKind kind, std::uint32_t payload_size);

// A whole control frame (header + JSON text) ready to write.
std::string encode_control_frame(std::string_view json_text);

// The length (header included) of the control frame that `input` begins
// with, when all of it is there and its payload is at most
// `max_control_frame` bytes; 0 otherwise (a data frame, part of a frame,
// one too large, or no frame at all). Lets a reader look one whole request
// ahead without decoding it.
std::size_t whole_control_frame(std::span<const std::uint8_t> input, std::uint32_t max_control_frame);

// What FrameDecoder::next() found at the front of its input.
struct DecodeEvent {
    enum class Kind {
        need_more, // every byte given was consumed (or none yet usable): feed more
        control,   // a complete control frame: `text` holds its JSON
        data,      // a piece of a data frame's payload: `bytes` points into the input
        error,     // broken framing: the stream is unusable from here on
    };
    Kind kind = Kind::need_more;
    std::size_t consumed = 0;            // input bytes used by this event
    std::string text;                    // control
    std::span<const std::uint8_t> bytes; // data: a view into the caller's input
    bool frame_end = false;              // data: this piece ends its frame
    Error error{ErrorCode::bad_frame, {}};
};

// Incremental decoder. A pure function over bytes: feed it any slicing of the
// stream (one byte at a time included) and it yields the same frames. Data
// payloads are not buffered: they come back as views into the input, piece by
// piece, so a 16 MiB data frame costs no memory here. Control payloads are
// buffered up to the size cap, which the decoder owns.
class FrameDecoder {
public:
    explicit FrameDecoder(std::uint32_t max_control_frame = kDefaultMaxControlFrame)
        : max_control_frame_(max_control_frame)
    {
    }

    // Looks at the front of `input` and returns one event; the caller drops
    // `event.consumed` bytes and calls again until it gets need_more.
    DecodeEvent next(std::span<const std::uint8_t> input);

    // True while a frame has begun but not ended (header or payload partial).
    bool mid_frame() const { return header_filled_ > 0 || remaining_ > 0 || in_payload_; }
    // Bytes of the unfinished frame taken so far, its header included (0
    // between frames): what a receiver says of a frame that came too slowly.
    std::uint64_t frame_received() const;

    // Where the stream stands, so that a reader can size its next read to
    // the frame (and land a data frame's payload where it will be kept):
    // the bytes of a header still missing (0 inside a payload), and the
    // payload bytes of the current data frame still to come (0 outside one).
    std::size_t header_missing() const { return in_payload_ || failed_ ? 0 : kFrameHeaderSize - header_filled_; }
    std::uint32_t data_remaining() const
    {
        return in_payload_ && kind_ == FrameKind::data && !failed_ ? remaining_ : 0;
    }

    // After an error every call returns that error again.
    bool failed() const { return failed_; }

private:
    DecodeEvent fail(ErrorCode code, std::string message, std::size_t consumed);

    // Small fields first and packed: every connection holds a decoder, a
    // server thousands of idle ones (64 bytes each rather than 112).
    std::uint32_t max_control_frame_;
    std::uint32_t remaining_ = 0;
    FrameHeader header_{};
    std::uint8_t header_filled_ = 0;
    bool in_payload_ = false;
    FrameKind kind_ = FrameKind::control;
    bool failed_ = false;
    std::string control_;
    // Only once the stream failed: what every later call returns.
    std::unique_ptr<Error> error_;
};

} // namespace ferry
