// What the fuzz targets share: a small district (divisions, fixed cursor keys) in a database,
// deterministic so that seed cursors stay valid, and checks on JSON the product writes.
//
// Thread-safety: none; one fuzz input at a time.
#pragma once

#include "../sync/district_database.hpp"
#include "sync/sqlite.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace fieldsync::fuzz {

// The test district (tests/sync/district_database.hpp).
using testing::t105; // 郭家镇: the fuzzed worker's township
using testing::t106; // 温泉镇: another township
using testing::v105;
using testing::v106;
inline constexpr std::int64_t fixed_wall_ms = testing::july_31; // 2025-07-31T00:00:00Z

// testing::open_district(path) with a fixed database epoch and cursor secret (so the seed
// corpus's cursors are genuine).
sql::connection open_fuzz_district(const std::string& path);

// Parses text the product produced; aborts unless it is valid UTF-8 JSON.
boost::json::value parse_output(std::string_view text, std::string_view what);

} // namespace fieldsync::fuzz
