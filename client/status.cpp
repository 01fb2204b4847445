#include "status.hpp"

#include <cstring>

namespace ferry::client {

Error local_error(const std::string& what, int err)
{
    return Error{ErrorCode::local_io, what + ": " + std::strerror(err)};
}

Error protocol_error(const std::string& what)
{
    return Error{ErrorCode::internal, "the server broke the protocol: " + what};
}

} // namespace ferry::client
