// A small district in process for review and rollup tests: the mission's record types
// (catalog::builtin()), two townships, an engine with rollups observing it, and helpers that
// make valid persons and visits.
#pragma once

#include "district_database.hpp"
#include "schema/formats.hpp"
#include "sync/review.hpp"
#include "sync/rollups.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

namespace fieldsync::testing {

namespace json = boost::json;

// A district server in process, with rollups observing the engine.
struct district {
    std::int64_t wall = july_31;
    sql::connection db = open_district();
    engine eng{catalog::builtin(), engine_config{}, db, [this] { return wall; }};
    rollups sums;
    review office{catalog::builtin()};
    explicit district(rollup_config rc = {}) : sums(rc) { eng.add_observer(&sums); }
    // Runs `f(db)` in one write transaction, as the writer thread would.
    template <class F>
    auto write(F f) {
        sql::transaction tx(db);
        auto r = f(db);
        tx.commit();
        return r;
    }

    void sync(replica& r, const principal& who, bool rejections_expected = false) {
        for (;;) {
            auto req = r.next_push();
            if (req.mutations.empty())
                break;
            sql::transaction tx(db);
            auto res = eng.push(db, who, req);
            tx.commit();
            for (const auto& a : res.acks) {
                if (!rejections_expected) {
                    EXPECT_NE(a.status, ack_status::rejected) << a.code << " " << a.message_en;
                }
            }
            r.apply_push_result(req, res);
        }
        for (;;) {
            auto res = eng.pull(db, who, r.next_pull());
            ASSERT_TRUE(res);
            r.apply_pull_result(*res);
            if (res->complete)
                break;
        }
    }
    figures month(const char* township, const char* m) { return rollups::read(db, township, m); }
};

inline principal field_worker(const std::string& device, const char* township) {
    return principal{"user-" + device, device, scope{township, {}}};
}

inline std::string id_number(std::string_view birth_yyyymmdd, int serial, bool male) {
    char first17[18];
    std::snprintf(first17, sizeof first17, "500154%.8s%03d", birth_yyyymmdd.data(),
                  serial * 2 + (male ? 1 : 0));
    return std::string(first17) + id_number_check_char(first17);
}

inline json::object person(const char* township, const char* village, std::string_view birth,
                           bool male, const char* employment, int serial) {
    std::string compact = std::string(birth.substr(0, 4)) + std::string(birth.substr(5, 2)) +
                          std::string(birth.substr(8, 2));
    auto id = id_number(compact, serial, male);
    return {{"township", township},
            {"village", village},
            {"name", "测试" + std::to_string(serial)},
            {"id_number", id},
            {"gender", male ? "male" : "female"},
            {"birth_date", birth},
            {"disability_category", "physical"},
            {"disability_grade", 3},
            {"employment_status", employment}};
}

inline json::object visit(const char* township, const char* village, const uuid& who,
                          const char* visited_at, bool verified) {
    return {{"township", township},
            {"village", village},
            {"person", who.to_string()},
            {"visited_at", visited_at},
            {"worker", "李晓梅"},
            {"visit_type", verified ? "verification" : "routine"},
            {"basic_info_verified", verified}};
}

} // namespace fieldsync::testing
