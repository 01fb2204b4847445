#include "counters.hpp"

#include "config.hpp"

#include <algorithm>

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

Result<std::shared_ptr<TransferTicket>> Counters::take_transfer(const std::string& address, const Config& config)
{
    const std::lock_guard lock(mutex_);
    const std::size_t share = config.transfers_per_address();
    const auto held = transfers_per_address_.find(address);
    const bool address_full = held != transfers_per_address_.end() && held->second >= share;
    const bool server_full = active_transfers >= config.max_transfers;
    std::shared_ptr<TransferTicket> victim;
    if (address_full || server_full) {
        // The slowest transfer whose slot would let this one in: one of the
        // same address when the address's share is what blocks.
        for (const auto& running : transfers_) {
            const std::int64_t rate = running->slow_rate.load();
            if (rate < 0 || running->preempted.load() || (address_full && running->address != address)) {
                continue;
            }
            if (!victim || rate < victim->slow_rate.load()) {
                victim = running;
            }
        }
        if (!victim) {
            return Error{ErrorCode::too_many_transfers,
                         address_full ? "your address runs its maximum of " + std::to_string(share) +
                                            " transfers; try again later"
                                      : "the server runs its maximum of " + std::to_string(config.max_transfers) +
                                            " transfers; try again later"};
        }
        // The slot changes hands: the count stays, the victim ends at its
        // loop's next sweep.
        victim->preempted = true;
        if (--transfers_per_address_[victim->address] == 0) {
            transfers_per_address_.erase(victim->address);
        }
    } else {
        ++active_transfers;
    }
    ++transfers_per_address_[address];
    auto ticket = std::make_shared<TransferTicket>(address);
    transfers_.push_back(ticket);
    return ticket;
}

std::uint64_t Counters::take_slow_reservations(std::uint64_t needed)
{
    const std::lock_guard lock(mutex_);
    // Space already coming back (uploads taken for an earlier put, not
    // ended yet) counts first: a second put refused meanwhile waits for it
    // too, rather than being refused or ending more uploads.
    std::uint64_t coming = 0;
    std::vector<std::shared_ptr<TransferTicket>> slow;
    std::uint64_t held = 0;
    for (const auto& running : transfers_) {
        if (running->space_taken.load()) {
            coming += running->reserved.load();
        } else if (running->slow_rate.load() >= 0 && running->reserved.load() > 0) {
            slow.push_back(running);
            held += running->reserved.load();
        }
    }
    if (coming >= needed) {
        return coming;
    }
    if (coming + held < needed) {
        return 0;
    }
    std::sort(slow.begin(), slow.end(),
              [](const auto& a, const auto& b) { return a->slow_rate.load() < b->slow_rate.load(); });
    std::uint64_t taken = coming;
    for (const auto& victim : slow) {
        if (taken >= needed) {
            break;
        }
        victim->space_taken = true;
        taken += victim->reserved.load();
    }
    return taken;
}

void Counters::give_back_transfer(const std::shared_ptr<TransferTicket>& ticket)
{
    const std::lock_guard lock(mutex_);
    std::erase(transfers_, ticket);
    if (ticket->preempted) {
        return;
    }
    --active_transfers;
    const auto held = transfers_per_address_.find(ticket->address);
    if (held != transfers_per_address_.end() && --held->second == 0) {
        transfers_per_address_.erase(held);
    }
}

} // namespace ferry::server
