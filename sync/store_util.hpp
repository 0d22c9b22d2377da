// Small helpers shared by the server engine, the replica, review and rollups: the `meta`
// key/value table both databases have, and lenient parsing of JSON text read back from SQLite.
//
// Thread-safety: as the connection passed in.
#pragma once

#include "sync/sqlite.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync {

// The object in `text`, or an empty object if it is not one (stored text is written by us, so
// this only guards against a damaged row).
boost::json::object parse_object(std::string_view text, boost::json::storage_ptr sp = {});

std::optional<std::string> meta_text(sql::connection& c, std::string_view key);
std::int64_t meta_int(sql::connection& c, std::string_view key, std::int64_t fallback = 0);
void meta_set(sql::connection& c, std::string_view key, std::string_view value);
void meta_set(sql::connection& c, std::string_view key, std::int64_t value);

} // namespace fieldsync
