#include "counters.hpp"

#include "config.hpp"

namespace ferry::server {

void Counters::count_error(std::string_view code)
{
    const std::lock_guard lock(mutex_);
    ++errors_[std::string(code)];
}

std::map<std::string, std::uint64_t> Counters::errors() const
{
    const std::lock_guard lock(mutex_);
    return errors_;
}

std::optional<Error> Counters::admit(const std::string& address, const Config& config)
{
    const std::lock_guard lock(mutex_);
    if (connections_now >= config.max_connections) {
        return Error{ErrorCode::server_full,
                     "the server holds its maximum of " + std::to_string(config.max_connections) + " connections"};
    }
    const auto counted = connections_per_address_.find(address);
    if (counted != connections_per_address_.end() && counted->second >= config.max_connections_per_address) {
        return Error{ErrorCode::address_limit, "your address holds its maximum of " +
                                                   std::to_string(config.max_connections_per_address) + " connections"};
    }
    ++connections_per_address_[address];
    ++connections_now;
    ++connections_total;
    return std::nullopt;
}

void Counters::release(const std::string& address)
{
    const std::lock_guard lock(mutex_);
    --connections_now;
    const auto counted = connections_per_address_.find(address);
    if (counted != connections_per_address_.end() && --counted->second == 0) {
        connections_per_address_.erase(counted);
    }
}

bool Counters::try_take_transfer(std::size_t max_transfers)
{
    std::size_t running = active_transfers.load();
    do {
        if (running >= max_transfers) {
            return false;
        }
    } while (!active_transfers.compare_exchange_weak(running, running + 1));
    return true;
}

} // namespace ferry::server
