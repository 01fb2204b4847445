#include "error.hpp"

#include <array>

namespace ferry {

namespace {

struct CodeName {
    ErrorCode code;
    std::string_view name;
};

constexpr std::array kCodeNames{
    CodeName{ErrorCode::bad_frame, "bad_frame"},
    CodeName{ErrorCode::frame_too_large, "frame_too_large"},
    CodeName{ErrorCode::bad_json, "bad_json"},
    CodeName{ErrorCode::bad_request, "bad_request"},
    CodeName{ErrorCode::unknown_op, "unknown_op"},
    CodeName{ErrorCode::unsupported_version, "unsupported_version"},
    CodeName{ErrorCode::hello_required, "hello_required"},
    CodeName{ErrorCode::unexpected_frame, "unexpected_frame"},
    CodeName{ErrorCode::invalid_name, "invalid_name"},
    CodeName{ErrorCode::not_found, "not_found"},
    CodeName{ErrorCode::not_regular_file, "not_regular_file"},
    CodeName{ErrorCode::bad_offset, "bad_offset"},
    CodeName{ErrorCode::size_mismatch, "size_mismatch"},
    CodeName{ErrorCode::hash_mismatch, "hash_mismatch"},
    CodeName{ErrorCode::busy, "busy"},
    CodeName{ErrorCode::no_space, "no_space"},
    CodeName{ErrorCode::io_error, "io_error"},
    CodeName{ErrorCode::internal, "internal"},
    CodeName{ErrorCode::aborted, "aborted"},
    CodeName{ErrorCode::shutting_down, "shutting_down"},
    CodeName{ErrorCode::connection_lost, "connection_lost"},
    CodeName{ErrorCode::local_io, "local_io"},
    CodeName{ErrorCode::server_full, "server_full"},
    CodeName{ErrorCode::address_limit, "address_limit"},
    CodeName{ErrorCode::idle_timeout, "idle_timeout"},
    CodeName{ErrorCode::stalled, "stalled"},
    CodeName{ErrorCode::upload_too_large, "upload_too_large"},
    CodeName{ErrorCode::too_many_transfers, "too_many_transfers"},
    CodeName{ErrorCode::unauthorized, "unauthorized"},
    CodeName{ErrorCode::forbidden, "forbidden"},
    CodeName{ErrorCode::tls_required, "tls_required"},
    CodeName{ErrorCode::not_ferry, "not_ferry"},
    CodeName{ErrorCode::tls_failed, "tls_failed"},
    CodeName{ErrorCode::file_changed, "file_changed"},
    CodeName{ErrorCode::list_too_large, "list_too_large"},
    CodeName{ErrorCode::too_slow, "too_slow"},
    CodeName{ErrorCode::too_many_errors, "too_many_errors"},
    CodeName{ErrorCode::root_unavailable, "root_unavailable"},
    CodeName{ErrorCode::not_empty, "not_empty"},
    CodeName{ErrorCode::exists, "exists"},
    CodeName{ErrorCode::not_a_folder, "not_a_folder"},
    CodeName{ErrorCode::invalid_move, "invalid_move"},
    CodeName{ErrorCode::name_clash, "name_clash"},
};

} // namespace

std::string_view to_string(ErrorCode code)
{
    for (const auto& entry : kCodeNames) {
        if (entry.code == code) {
            return entry.name;
        }
    }
    return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text)
{
    for (const auto& entry : kCodeNames) {
        if (entry.name == text) {
            return entry.code;
        }
    }
    return std::nullopt;
}

bool closes_connection(ErrorCode code)
{
    switch (code) {
    case ErrorCode::bad_frame:
    case ErrorCode::frame_too_large:
    case ErrorCode::unsupported_version:
    case ErrorCode::shutting_down:
    case ErrorCode::server_full:
    case ErrorCode::address_limit:
    case ErrorCode::idle_timeout:
    case ErrorCode::stalled:
    case ErrorCode::upload_too_large:
    case ErrorCode::too_many_transfers:
    case ErrorCode::unauthorized:
    case ErrorCode::tls_required:
    case ErrorCode::too_slow:
    case ErrorCode::too_many_errors:
        return true;
    case ErrorCode::bad_json:
    case ErrorCode::bad_request:
    case ErrorCode::unknown_op:
    case ErrorCode::hello_required:
    case ErrorCode::unexpected_frame:
    case ErrorCode::invalid_name:
    case ErrorCode::not_found:
    case ErrorCode::not_regular_file:
    case ErrorCode::bad_offset:
    case ErrorCode::size_mismatch:
    case ErrorCode::hash_mismatch:
    case ErrorCode::busy:
    case ErrorCode::no_space:
    case ErrorCode::io_error:
    case ErrorCode::internal:
    case ErrorCode::aborted:
    case ErrorCode::connection_lost:
    case ErrorCode::local_io:
    case ErrorCode::not_ferry:
    case ErrorCode::tls_failed:
    case ErrorCode::forbidden:
    case ErrorCode::file_changed:
    case ErrorCode::list_too_large:
    case ErrorCode::root_unavailable:
    case ErrorCode::not_empty:
    case ErrorCode::exists:
    case ErrorCode::not_a_folder:
    case ErrorCode::invalid_move:
    case ErrorCode::name_clash:
        return false;
    }
    return true;
}

} // namespace ferry
