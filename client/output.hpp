// How results and errors are shown: text for people, or with --json exactly
// one JSON object per command on stdout (errors included), for scripts.
// Human errors read "ferry: <code>: <message>" on stderr.
#pragma once

#include "error.hpp"
#include "messages.hpp"
#include "operations.hpp"

#include <cstdio>

namespace ferry::client {

class Output {
public:
    explicit Output(bool json, std::FILE* out = stdout, std::FILE* err = stderr) : json_(json), out_(out), err_(err) {}

    bool json() const { return json_; }

    void list(const ListReply& reply) const;
    void stat(const FileInfo& file) const;
    void got(const GetResult& result) const;
    void put(const PutResult& result, const std::string& local_path) const;
    void error(const Error& error) const;
    // A line of information for people (the shell's greeting); nothing with --json.
    void note(const std::string& text) const;

private:
    void emit_json(const std::string& text) const;

    bool json_;
    std::FILE* out_;
    std::FILE* err_;
};

// "1.5 MiB", "312 B": for people only.
std::string human_size(std::uint64_t bytes);
// A Unix time as a local "YYYY-MM-DD HH:MM".
std::string local_date(std::int64_t seconds);

} // namespace ferry::client
