// The server-wide bound on the log lines clients cause (server/log_budget.hpp).
#include "log_budget.hpp"

#include <doctest/doctest.h>

using ferry::server::budget_class_of;
using ferry::server::is_client_caused;
using ferry::server::LogBudgetClass;
using ferry::server::LogBudget;

TEST_CASE("the log budget writes its lines a second, counts the rest by event, and says so once the second is over")
{
    LogBudget budget(3, 1 << 20);
    CHECK(budget.admit("connect", 1000));
    CHECK(budget.admit("disconnect", 1001));
    CHECK(budget.admit("connect", 1500));
    CHECK_FALSE(budget.admit("connect", 1600));
    CHECK_FALSE(budget.admit("refused", 1700));
    CHECK_FALSE(budget.admit("connect", 1999));
    // Within the second nothing is said yet; at its end, all of it once.
    CHECK_FALSE(budget.take_unlogged(1999).has_value());
    const auto unlogged = budget.take_unlogged(2000);
    REQUIRE(unlogged.has_value());
    CHECK(unlogged->size() == 2);
    CHECK(unlogged->at("connect") == 2);
    CHECK(unlogged->at("refused") == 1);
    CHECK_FALSE(budget.take_unlogged(2500).has_value());
    // The next second has its full budget again.
    CHECK(budget.admit("connect", 2001));
    CHECK(budget.admit("connect", 2002));
    CHECK(budget.admit("connect", 2003));
    CHECK_FALSE(budget.admit("close", 2004));
}

TEST_CASE("the log budget bounds the bytes a second too: long lines stop before the line count does")
{
    // Round 76: a client made each error line 294 KB long, and 100 such
    // lines a second were 29 MB/s. A line may cross the bound once; then
    // the rest of the second is counted, not written.
    LogBudget budget(100, 1000);
    CHECK(budget.admit("error", 1000, 600));
    CHECK(budget.admit("error", 1001, 600)); // crosses the bound: written
    CHECK_FALSE(budget.admit("error", 1002, 10));
    CHECK_FALSE(budget.admit("connect", 1003, 10));
    const auto unlogged = budget.take_unlogged(2000);
    REQUIRE(unlogged.has_value());
    CHECK(unlogged->at("error") == 1);
    CHECK(unlogged->at("connect") == 1);
    // A new second, a new budget of bytes.
    CHECK(budget.admit("error", 2001, 999));
    CHECK(budget.admit("error", 2002, 5000));
    CHECK_FALSE(budget.admit("error", 2003, 1));
}

TEST_CASE("what the budget left out is said at the stop whatever the time, and never twice")
{
    LogBudget budget(1, 1 << 20);
    CHECK(budget.admit("error", 5));
    CHECK_FALSE(budget.admit("error", 6));
    CHECK_FALSE(budget.take_unlogged(7).has_value());
    const auto at_stop = budget.take_unlogged(7, /*final=*/true);
    REQUIRE(at_stop.has_value());
    CHECK(at_stop->at("error") == 1);
    CHECK_FALSE(budget.take_unlogged(8, true).has_value());
}

TEST_CASE("only the lines clients cause are budgeted: never a transfer's nor the server's own")
{
    for (const char* event : {"connect", "disconnect", "refused", "close", "error", "errors_not_logged"}) {
        CHECK_MESSAGE(budget_class_of(event) == LogBudgetClass::client, event);
    }
    // A budget of its own: a flood of connections cannot crowd out who guesses tokens.
    CHECK(budget_class_of("auth_failed") == LogBudgetClass::authentication);
    CHECK(is_client_caused("auth_failed"));
    for (const char* event : {"transfer", "start", "stop", "stopped", "warning", "tokens_reloaded", "events_not_logged",
                              "expired_uploads", "publish_completed"}) {
        CHECK_FALSE_MESSAGE(is_client_caused(event), event);
    }
}
