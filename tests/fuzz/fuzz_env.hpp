// What the fuzz targets share: a small district (divisions, fixed cursor keys) in a database,
// deterministic so that seed cursors stay valid, and checks on JSON the product writes.
//
// Thread-safety: none; one fuzz input at a time.
#pragma once

#include "sync/sqlite.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace fieldsync::fuzz {

inline constexpr const char* t105 = "500154105"; // 郭家镇: the fuzzed worker's township
inline constexpr const char* v105 = "500154105201";
inline constexpr const char* t106 = "500154106"; // 温泉镇: another township
inline constexpr const char* v106 = "500154106201";
inline constexpr std::int64_t fixed_wall_ms = 1753920000000; // 2025-07-31T00:00:00Z

// Migrates `c`, sets a fixed database epoch and cursor secret (so the seed corpus's cursors are
// genuine), and loads the district's divisions.
void prepare_district(sql::connection& c);

// Parses text the product produced; aborts unless it is valid UTF-8 JSON.
boost::json::value parse_output(std::string_view text, std::string_view what);

} // namespace fieldsync::fuzz
