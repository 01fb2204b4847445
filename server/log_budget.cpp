#include "log_budget.hpp"

#include <array>

namespace ferry::server {

namespace {

constexpr std::uint64_t kWindowMs = 1000;

} // namespace

LogBudgetClass budget_class_of(std::string_view event)
{
    static constexpr std::array<std::string_view, 6> kClientEvents{"connect", "disconnect",        "refused",
                                                                   "close",   "errors_not_logged", "error"};
    if (event == "auth_failed") {
        return LogBudgetClass::authentication;
    }
    for (const auto known : kClientEvents) {
        if (event == known) {
            return LogBudgetClass::client;
        }
    }
    return LogBudgetClass::none;
}

void LogBudget::roll(std::uint64_t now_ms)
{
    if (!started_ || now_ms - window_start_ms_ >= kWindowMs) {
        started_ = true;
        window_start_ms_ = now_ms;
        written_ = 0;
        written_bytes_ = 0;
    }
}

bool LogBudget::admit(std::string_view event, std::uint64_t now_ms, std::uint64_t bytes)
{
    roll(now_ms);
    if (written_ < lines_per_second_ && written_bytes_ < bytes_per_second_) {
        ++written_;
        written_bytes_ += bytes;
        return true;
    }
    auto found = unlogged_.find(event);
    if (found == unlogged_.end()) {
        found = unlogged_.emplace(std::string(event), 0).first;
    }
    ++found->second;
    return false;
}

std::optional<LogBudget::Unlogged> LogBudget::take_unlogged(std::uint64_t now_ms, bool final)
{
    if (unlogged_.empty() || (!final && started_ && now_ms - window_start_ms_ < kWindowMs)) {
        return std::nullopt;
    }
    Unlogged taken;
    taken.swap(unlogged_);
    return taken;
}

} // namespace ferry::server
