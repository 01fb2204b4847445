#include "frame.hpp"

#include <algorithm>

namespace ferry {

namespace {

DecodeEvent make_event(DecodeEvent::Kind kind, std::size_t consumed)
{
    DecodeEvent event;
    event.kind = kind;
    event.consumed = consumed;
    return event;
}

} // namespace

FrameHeader encode_frame_header(FrameKind kind, std::uint32_t payload_size)
{
    return FrameHeader{
        static_cast<std::uint8_t>(kind),
        static_cast<std::uint8_t>(payload_size >> 24),
        static_cast<std::uint8_t>(payload_size >> 16),
        static_cast<std::uint8_t>(payload_size >> 8),
        static_cast<std::uint8_t>(payload_size),
    };
}

std::string encode_control_frame(std::string_view json_text)
{
    const auto header = encode_frame_header(FrameKind::control, static_cast<std::uint32_t>(json_text.size()));
    std::string frame;
    frame.reserve(header.size() + json_text.size());
    frame.append(reinterpret_cast<const char*>(header.data()), header.size());
    frame.append(json_text);
    return frame;
}

std::size_t whole_control_frame(std::span<const std::uint8_t> input, std::uint32_t max_control_frame)
{
    if (input.size() < kFrameHeaderSize || input[0] != static_cast<std::uint8_t>(FrameKind::control)) {
        return 0;
    }
    const std::uint32_t size = (std::uint32_t{input[1]} << 24) | (std::uint32_t{input[2]} << 16) |
                               (std::uint32_t{input[3]} << 8) | std::uint32_t{input[4]};
    if (size > max_control_frame || input.size() - kFrameHeaderSize < size) {
        return 0;
    }
    return kFrameHeaderSize + size;
}

DecodeEvent FrameDecoder::fail(ErrorCode code, std::string message, std::size_t consumed)
{
    failed_ = true;
    error_ = std::make_unique<Error>(Error{code, std::move(message)});
    DecodeEvent event;
    event.kind = DecodeEvent::Kind::error;
    event.consumed = consumed;
    event.error = *error_;
    return event;
}

std::uint64_t FrameDecoder::frame_received() const
{
    if (!in_payload_) {
        return header_filled_;
    }
    // The header stays in header_ while its payload comes.
    const std::uint32_t size = (std::uint32_t{header_[1]} << 24) | (std::uint32_t{header_[2]} << 16) |
                               (std::uint32_t{header_[3]} << 8) | std::uint32_t{header_[4]};
    return kFrameHeaderSize + (size - remaining_);
}

DecodeEvent FrameDecoder::next(std::span<const std::uint8_t> input)
{
    if (failed_) {
        DecodeEvent event;
        event.kind = DecodeEvent::Kind::error;
        event.error = *error_;
        return event;
    }
    std::size_t used = 0;

    if (!in_payload_) {
        const std::size_t take = std::min(kFrameHeaderSize - header_filled_, input.size());
        std::copy_n(input.begin(), take, header_.begin() + static_cast<std::ptrdiff_t>(header_filled_));
        header_filled_ = static_cast<std::uint8_t>(header_filled_ + take);
        used += take;
        if (header_filled_ < kFrameHeaderSize) {
            return make_event(DecodeEvent::Kind::need_more, used);
        }
        header_filled_ = 0;
        const std::uint32_t size = (std::uint32_t{header_[1]} << 24) | (std::uint32_t{header_[2]} << 16) |
                                   (std::uint32_t{header_[3]} << 8) | std::uint32_t{header_[4]};
        switch (header_[0]) {
        case static_cast<std::uint8_t>(FrameKind::control):
            if (size > max_control_frame_) {
                return fail(ErrorCode::frame_too_large,
                            "control frame of " + std::to_string(size) + " bytes is over the limit of " +
                                std::to_string(max_control_frame_),
                            used);
            }
            kind_ = FrameKind::control;
            control_.clear();
            control_.reserve(size);
            break;
        case static_cast<std::uint8_t>(FrameKind::data):
            if (size > kMaxDataFrame) {
                return fail(ErrorCode::frame_too_large,
                            "data frame of " + std::to_string(size) + " bytes is over the limit of " +
                                std::to_string(kMaxDataFrame),
                            used);
            }
            kind_ = FrameKind::data;
            break;
        default:
            return fail(ErrorCode::bad_frame, "unknown frame kind " + std::to_string(header_[0]), used);
        }
        in_payload_ = true;
        remaining_ = size;
        if (kind_ == FrameKind::data && size == 0) {
            in_payload_ = false;
            DecodeEvent event = make_event(DecodeEvent::Kind::data, used);
            event.frame_end = true;
            return event;
        }
    }

    const auto rest = input.subspan(used);
    const std::size_t take = std::min<std::size_t>(remaining_, rest.size());
    remaining_ -= static_cast<std::uint32_t>(take);
    used += take;

    if (kind_ == FrameKind::data) {
        if (take == 0) {
            return make_event(DecodeEvent::Kind::need_more, used);
        }
        in_payload_ = remaining_ > 0;
        DecodeEvent event = make_event(DecodeEvent::Kind::data, used);
        event.bytes = rest.first(take);
        event.frame_end = remaining_ == 0;
        return event;
    }

    control_.append(reinterpret_cast<const char*>(rest.data()), take);
    if (remaining_ > 0) {
        return make_event(DecodeEvent::Kind::need_more, used);
    }
    in_payload_ = false;
    DecodeEvent event = make_event(DecodeEvent::Kind::control, used);
    event.text = std::move(control_);
    control_.clear();
    return event;
}

} // namespace ferry
