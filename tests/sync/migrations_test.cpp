// Server database migrations: an existing database is upgraded in place and keeps its data.
#include "schema/migrations.hpp"
#include "sync/engine.hpp"
#include "sync/sqlite.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fieldsync {
namespace {

std::int64_t user_version(sql::connection& c) {
    sql::statement s(c.handle(), "PRAGMA user_version");
    return s.step() ? s.int64(0) : -1;
}

// A database as a build with migrations 1..`upto` left it.
void migrate_to(sql::connection& c, int upto) {
    for (const auto& m : migrations("migrations/")) {
        if (m.version > upto)
            break;
        c.exec(std::string(m.sql));
        c.exec("PRAGMA user_version = " + std::to_string(m.version));
    }
}

TEST(migrations, person_events_keep_their_rows_and_rule_through_0005) {
    sql::connection c(":memory:", sql::open_mode::read_write_create);
    migrate_to(c, 4);
    c.exec("INSERT INTO person_events(record, kind, person, month) VALUES "
           "('r1', 'verified', 'p1', '2026-11'), ('r2', 'served', 'p1', '2026-10')");
    ASSERT_TRUE(migrate_server_database(c));
    EXPECT_GE(user_version(c), 5);

    sql::statement rows(c.handle(),
                        "SELECT record, kind, person, month FROM person_events ORDER BY record");
    ASSERT_TRUE(rows.step());
    EXPECT_EQ(rows.text(0), "r1");
    EXPECT_EQ(rows.text(1), "verified");
    ASSERT_TRUE(rows.step());
    EXPECT_EQ(rows.text(1), "served");
    EXPECT_EQ(rows.text(3), "2026-10");
    EXPECT_FALSE(rows.step());

    // The same rule: an unknown kind is refused.
    EXPECT_THROW(c.exec("INSERT INTO person_events VALUES ('r3', 'visited', 'p1', '2026-11')"),
                 sql::error);
    // The person index is back (rollups look events up by person).
    sql::statement plan(c.handle(), "EXPLAIN QUERY PLAN SELECT kind, month, record FROM "
                                    "person_events WHERE person = 'p1'");
    ASSERT_TRUE(plan.step());
    EXPECT_NE(std::string(plan.text(3)).find("person_events_person"), std::string::npos)
        << plan.text(3);
}

TEST(migrations, the_writers_inserts_open_no_temporary_table_per_row) {
    // SQLite checks `x IN (a, b, c)` in a CHECK through an ephemeral table that each INSERT
    // builds and drops; on the writer's hot path that cost 6 % of push-new's time (0005).
    sql::connection c(":memory:", sql::open_mode::read_write_create);
    ASSERT_TRUE(migrate_server_database(c));
    for (const char* insert :
         {"INSERT INTO person_events(record, kind, person, month) VALUES(?, ?, ?, ?) ON CONFLICT "
          "DO NOTHING",
          "INSERT INTO records(id, collection, township, village, seq, deleted, fields, clocks, "
          "created_ms, updated_ms, created_by, created_device) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?, ?)",
          "INSERT INTO history(seq, rid, user, device, at_ms, mutation_seq, changes) VALUES(?, ?, "
          "?, ?, ?, ?, ?)"}) {
        sql::statement plan(c.handle(), std::string("EXPLAIN ") + insert);
        while (plan.step())
            EXPECT_NE(plan.text(1), "OpenEphemeral") << insert;
    }
}

} // namespace
} // namespace fieldsync
