#include "transfer_host.hpp"

#include "log.hpp"

#include <vector>

namespace ferry::server {

namespace {

void log_transfer(const std::string& peer, std::string_view token_label, std::string_view op, std::string_view name,
                  std::uint64_t bytes, std::chrono::steady_clock::time_point started, std::string_view result,
                  std::string_view message, HashKind hash, std::string_view digest)
{
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds / (1024.0 * 1024.0) : 0.0;
    // A finished transfer names its hash, a failed one says why.
    std::vector<LogField> fields{{"peer", peer}};
    // Which token acted, by its label: never the token itself.
    if (!token_label.empty()) {
        fields.emplace_back("token", token_label);
    }
    fields.insert(fields.end(),
                  {{"op", op}, {"name", name}, {"bytes", bytes}, {"seconds", seconds}, {"mib_per_s", rate}});
    if (message.empty()) {
        fields.emplace_back(hash_name(hash), digest);
        fields.emplace_back("result", result);
    } else {
        fields.emplace_back("result", result);
        fields.emplace_back("message", message);
    }
    // One that moved nothing and failed (refused, aborted at once) costs a
    // client one request: budgeted as connections are (log_budget.hpp).
    if (bytes == 0 && !message.empty()) {
        log_client_event("transfer", fields);
        return;
    }
    log_event("transfer", fields);
}

} // namespace

void TransferLine::ok(std::uint64_t bytes, HashKind hash, std::string_view digest)
{
    if (written_) {
        return;
    }
    written_ = true;
    log_transfer(peer_, token_label_, op_, name_, bytes, started_, "ok", {}, hash, digest);
}

void TransferLine::ended(std::uint64_t bytes, std::string_view result, std::string_view why)
{
    if (written_) {
        return;
    }
    written_ = true;
    log_transfer(peer_, token_label_, op_, name_, bytes, started_, result, why.empty() ? result : why, HashKind::sha256,
                 {});
}

} // namespace ferry::server
