#include "session_fixture.hpp"

namespace ferry::server::session_test {

std::string control(const Request& request)
{
    return encode_control_frame(encode_request(request));
}

std::string data_frame(std::string_view bytes)
{
    const auto header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(bytes.size()));
    return std::string(reinterpret_cast<const char*>(header.data()), header.size()) + std::string(bytes);
}

std::string sha256_of(std::string_view bytes)
{
    Sha256 hash;
    hash.update(bytes.data(), bytes.size());
    return hash.hex_digest();
}

std::string xxh3_of(std::string_view bytes)
{
    TransferHash hash(HashKind::xxh3_128);
    hash.update(bytes.data(), bytes.size());
    return hash.hex_digest();
}

std::string pattern(std::size_t size, unsigned seed)
{
    std::string bytes(size, '\0');
    std::uint32_t state = seed * 2654435761u + 1;
    for (auto& byte : bytes) {
        state = state * 1664525u + 1013904223u;
        byte = static_cast<char>(state >> 24);
    }
    return bytes;
}

void interrupt_upload(const TempRoot& served, const std::string& name, const std::string& content, std::size_t sent)
{
    Fixture first(served.path());
    first.hello();
    first.feed(control(Request{1, PutRequest{name, content.size(), false}}));
    first.io.run_jobs();
    first.feed(data_frame(content.substr(0, sent)));
    first.session.on_peer_closed();
    first.io.run_jobs();
    CHECK(first.io.closed);
    CHECK(first.session.state() == Session::State::closed);
}

} // namespace ferry::server::session_test
