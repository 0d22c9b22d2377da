// The small district as a server database: migrated, with two townships of 500154 and one
// village each. Shared by district_fixture.hpp (review, rollup and export tests, the district
// benchmark) and the fuzz targets, so it includes no GoogleTest.
#pragma once

#include "sync/engine.hpp"
#include "sync/sqlite.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fieldsync::testing {

inline constexpr const char* t105 = "500154105";
inline constexpr const char* v105 = "500154105201";
inline constexpr const char* t106 = "500154106";
inline constexpr const char* v106 = "500154106201";
inline constexpr std::int64_t july_31 = 1753920000000; // 2025-07-31T00:00:00Z

// Throws std::runtime_error if the migration fails.
inline sql::connection open_district(const std::string& path = ":memory:") {
    sql::connection c(path, sql::open_mode::read_write_create);
    if (!migrate_server_database(c))
        throw std::runtime_error("migration failed");
    sql::transaction tx(c);
    engine::put_division(c, "500154", "测试区");
    engine::put_division(c, t105, "郭家镇");
    engine::put_division(c, v105, "青龙村");
    engine::put_division(c, t106, "温泉镇");
    engine::put_division(c, v106, "五通村");
    tx.commit();
    return c;
}

} // namespace fieldsync::testing
