// libFuzzer target: request parsing and validation over arbitrary text. A
// request that parses must encode and parse back to the same operation, and
// names must go through the name rule without crashing it.
#include "messages.hpp"
#include "names.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    ferry::check_file_name(text);
    const auto parsed = ferry::parse_request(text);
    if (!parsed.request) {
        return 0;
    }
    const auto again = ferry::parse_request(ferry::encode_request(*parsed.request));
    if (!again.request || again.request->id != parsed.request->id ||
        ferry::op_name(again.request->body) != ferry::op_name(parsed.request->body)) {
        std::abort();
    }
    return 0;
}
