#include "transport.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry::client {

namespace {

// Joining copies the payload; above this a header goes out on its own.
constexpr std::size_t kJoinLimit = 1024 * 1024;

IoResult from_errno(int err, short events)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
        return IoResult{IoResult::Kind::would_block, 0, events, 0, {}};
    }
    return IoResult{IoResult::Kind::failed, 0, 0, err, std::strerror(err)};
}

} // namespace

Transport::Transport(Transport&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), tls_(std::move(other.tls_)), joined_(std::move(other.joined_))
{
    other.tls_.reset();
}

Transport& Transport::operator=(Transport&& other) noexcept
{
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        tls_ = std::move(other.tls_);
        other.tls_.reset();
        joined_ = std::move(other.joined_);
    }
    return *this;
}

Transport::~Transport()
{
    close();
}

void Transport::close()
{
    tls_.reset(); // before the socket it sits on
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

IoResult Transport::read(std::span<std::uint8_t> buffer)
{
    if (tls_) {
        return tls_->read(buffer);
    }
    const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (got > 0) {
        return IoResult{IoResult::Kind::progress, static_cast<std::size_t>(got), 0, 0, {}};
    }
    if (got == 0) {
        return IoResult{IoResult::Kind::eof, 0, 0, 0, {}};
    }
    return from_errno(errno, POLLIN);
}

IoResult Transport::write(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body)
{
    if (tls_) {
        if (head.empty()) {
            return tls_->write(body);
        }
        if (body.empty() || body.size() > kJoinLimit) {
            return tls_->write(head);
        }
        joined_.assign(head.begin(), head.end());
        joined_.insert(joined_.end(), body.begin(), body.end());
        return tls_->write(joined_);
    }
    std::array<iovec, 2> vectors{};
    int count = 0;
    if (!head.empty()) {
        vectors[count++] = iovec{const_cast<std::uint8_t*>(head.data()), head.size()};
    }
    if (!body.empty()) {
        vectors[count++] = iovec{const_cast<std::uint8_t*>(body.data()), body.size()};
    }
    msghdr message{};
    message.msg_iov = vectors.data();
    message.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
        return IoResult{IoResult::Kind::progress, static_cast<std::size_t>(sent), 0, 0, {}};
    }
    return from_errno(errno, POLLOUT);
}

} // namespace ferry::client
