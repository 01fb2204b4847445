// libFuzzer target: the frame decoder over arbitrary bytes, sliced at
// arbitrary points. Whatever the slicing, it must never read out of bounds,
// must make progress on every call, and must yield the same frames.
#include "frame.hpp"

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

namespace {

struct Decoded {
    std::vector<std::string> controls;
    std::string data;
    bool failed = false;
};

Decoded decode(std::span<const std::uint8_t> stream, std::size_t slice)
{
    ferry::FrameDecoder decoder(1024);
    Decoded out;
    std::size_t at = 0;
    while (at < stream.size() && !out.failed) {
        auto piece = stream.subspan(at, std::min(slice, stream.size() - at));
        while (!piece.empty()) {
            const auto event = decoder.next(piece);
            if (event.consumed > piece.size()) {
                std::abort();
            }
            if (event.kind == ferry::DecodeEvent::Kind::error) {
                out.failed = true;
                break;
            }
            if (event.kind == ferry::DecodeEvent::Kind::control) {
                out.controls.push_back(event.text);
            } else if (event.kind == ferry::DecodeEvent::Kind::data) {
                out.data.append(reinterpret_cast<const char*>(event.bytes.data()), event.bytes.size());
            }
            if (event.consumed == 0 && event.kind != ferry::DecodeEvent::Kind::data) {
                std::abort(); // no progress on non-empty input
            }
            piece = piece.subspan(event.consumed);
            at += event.consumed;
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size)
{
    if (size == 0) {
        return 0;
    }
    const std::size_t slice = 1 + bytes[0] % 17;
    const auto stream = std::span(bytes + 1, size - 1);
    const Decoded whole = decode(stream, stream.size() + 1);
    const Decoded sliced = decode(stream, slice);
    if (whole.failed != sliced.failed || whole.controls != sliced.controls || whole.data != sliced.data) {
        std::abort();
    }
    return 0;
}
