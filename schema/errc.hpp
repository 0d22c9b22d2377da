// Project-wide error codes for expected failures. Returned through boost::system::result<T>;
// exceptions are reserved for the unexpected (see STYLE.md, "Errors").
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string_view>
#include <type_traits>

namespace fieldsync {

enum class errc {
    ok = 0,
    invalid_argument = 1, // malformed input: bad JSON shape, bad id, bad clock text
    not_found,            // a named object does not exist
    conflict,             // the request contradicts stored state
    unauthorized,         // missing or unknown credentials
    forbidden,            // outside the caller's scope or role
    device_revoked,       // the device token was revoked
    sequence_gap,         // a push skipped mutation numbers
    bad_cursor,           // a pull cursor that this server did not issue
    too_large,            // a request or value over a configured limit
    storage_failure,      // SQLite reported an error (disk full, I/O, read-only)
    corrupt_database,     // the database failed its integrity check
    unsupported,          // a version or option this build does not support
    expired,              // a code or session past its lifetime
    rate_limited,         // too many failed attempts
};

const boost::system::error_category& fieldsync_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), fieldsync_category()};
}

// Stable snake_case name of the code, used on the wire ("invalid_argument", …).
std::string_view to_string(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

} // namespace fieldsync

template <>
struct boost::system::is_error_code_enum<fieldsync::errc> : std::true_type {};
