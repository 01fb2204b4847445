// One `ferry sync --json` run in-process (client/sync.hpp's run_sync) over a
// fresh connection to a Fixture's ferryd, its summary parsed: shared by the
// sync tests that act through SyncArguments' seams.
#pragma once

#include "support.hpp"

#include "connection.hpp"
#include "output.hpp"
#include "sync.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace ferry::test {

struct SyncRun {
    int status = -1;
    nlohmann::json sync; // --json's "sync" object: deleted, errors, notes...
};

// Runs one sync with --json over a fresh connection to `f`'s server.
inline SyncRun sync_with(const Fixture& f, const client::SyncArguments& arguments)
{
    auto opened = client::Connection::open(client::Endpoint{"127.0.0.1", f.server.port()});
    REQUIRE(opened.ok());
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    REQUIRE(out != nullptr);
    REQUIRE(err != nullptr);
    SyncRun run;
    {
        const client::Output output(true, out, err);
        run.status = client::run_sync(opened.value(), client::ConnectOptions{}, output, arguments);
    }
    std::fflush(out);
    std::rewind(out);
    std::string text;
    for (int c = std::fgetc(out); c != EOF; c = std::fgetc(out)) {
        text.push_back(static_cast<char>(c));
    }
    std::fclose(out);
    std::fclose(err);
    const auto whole = nlohmann::json::parse(text, nullptr, false);
    REQUIRE_MESSAGE(whole.contains("sync"), text);
    run.sync = whole["sync"];
    return run;
}

} // namespace ferry::test
