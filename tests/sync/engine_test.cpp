// The server engine's push and pull, with replicas wired to it in process.
#include "sync/district_fixture.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

TEST(engine, round_trip_between_two_tablets) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("张三"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    auto got = b.get(id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->fields.at("name").as_string(), "张三");
    EXPECT_FALSE(got->pending);
    EXPECT_EQ(a.content_hash(), b.content_hash());
    EXPECT_EQ(a.content_hash(), server.hash());
}

TEST(engine, different_fields_merge_cleanly) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("李四"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(a.update(id, {{"count", 3}}));
    ASSERT_TRUE(b.update(id, {{"note", "腿脚不便"}}));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts"), 0);
    auto got = a.get(id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->fields.at("count").as_int64(), 3);
    EXPECT_EQ(got->fields.at("note").as_string(), "腿脚不便");
    EXPECT_EQ(a.content_hash(), b.content_hash());
    EXPECT_EQ(a.content_hash(), server.hash());
}

TEST(engine, same_field_different_values_is_one_open_conflict_and_converges) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("王五"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(a.update(id, {{"count", 1}}));
    ASSERT_TRUE(b.update(id, {{"count", 2}}));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts WHERE status = 'open'"), 1);
    // The winner is the value with the higher clock: b edited after a on this clock.
    EXPECT_EQ(a.get(id)->fields.at("count"), b.get(id)->fields.at("count"));
    EXPECT_EQ(a.content_hash(), server.hash());
    EXPECT_EQ(b.content_hash(), server.hash());
    // The loser is kept, with its author.
    sql::statement s(server.db.handle(),
                     "SELECT winner_value, loser_value, loser_device FROM conflicts");
    ASSERT_TRUE(s.step());
    EXPECT_NE(s.text(0), s.text(1));
    auto winner = json::serialize(a.get(id)->fields.at("count"));
    EXPECT_EQ(s.text(0), winner);
    EXPECT_EQ(s.text(2), winner == "2" ? "tab-a" : "tab-b");
    // The tablet whose push met the concurrent edit is told its record is in conflict.
    auto issues = b.issues();
    EXPECT_EQ(issues[0].field, "count");
}

TEST(engine, repeated_push_is_acknowledged_the_same_and_applied_once) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    (void)a.create("item", item("赵六"));
    (void)a.create("item", {{"township", town_a}, {"name", 5}}); // wrong type: rejected
    auto req = a.next_push();
    auto first = server.push(worker("tab-a"), req);
    auto seq_after_first = engine::last_seq(server.db);
    auto again = server.push(worker("tab-a"), req);
    EXPECT_EQ(json::serialize(encode(first).as_object().at("acks")),
              json::serialize(encode(again).as_object().at("acks")));
    EXPECT_EQ(again.duplicates, 2u);
    EXPECT_EQ(engine::last_seq(server.db), seq_after_first);
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 1);
    EXPECT_EQ(server.count("SELECT count(*) FROM quarantine"), 1);
    EXPECT_EQ(server.count("SELECT count(*) FROM history"), 1);
}

TEST(engine, gap_is_refused_with_the_last_applied_number) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    for (int i = 0; i < 4; ++i)
        (void)a.create("item", item("n" + std::to_string(i)));
    auto all = a.next_push();
    push_request late;
    late.schema_version = 1;
    late.mutations.assign(all.mutations.begin() + 2, all.mutations.end()); // 3, 4 before 1, 2
    auto res = server.push(worker("tab-a"), late);
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].status, ack_status::gap);
    EXPECT_EQ(res.last_applied, 0u);
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 0);
    a.apply_push_result(late, res);
    EXPECT_EQ(a.pending_count(), 4u); // nothing lost on the tablet
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 4);
    EXPECT_EQ(a.pending_count(), 0u);
}

TEST(engine, invalid_mutation_is_quarantined_and_the_queue_moves_on) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto bad = *a.create("item", {{"township", town_a}, {"name", "x"}, {"count", -5}});
    auto good = *a.create("item", item("good"));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 1);
    sql::statement q(server.db.handle(),
                     "SELECT code, field, message_zh, payload, mutation_seq FROM quarantine");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), "out_of_range");
    EXPECT_EQ(q.text(1), "count");
    EXPECT_NE(q.text(2).find("数量"), std::string_view::npos);
    EXPECT_NE(q.text(3).find("-5"), std::string_view::npos);
    EXPECT_EQ(q.int64(4), 1);
    auto issues = a.issues();
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].id, bad);
    EXPECT_EQ(issues[0].kind, "rejected");
    EXPECT_EQ(issues[0].code, "out_of_range");
    EXPECT_TRUE(a.get(good));
}

TEST(engine, bad_input_is_a_rejection_with_a_code_and_no_partial_write) {
    const std::vector<std::pair<json::object, std::string>> cases = {
        {{{"count", "three"}}, "wrong_type"},
        {{{"count", 5000}}, "out_of_range"},
        {{{"kind", "z"}}, "not_in_enum"},
        {{{"name", std::string(51, 'x')}}, "too_long"},
        {{{"name", std::string("\xff\xfe", 2)}}, "invalid_utf8"},
        {{{"Bad-Name", 1}}, "bad_field_name"},
        {{{"seen_on", "2026-02-30"}}, "bad_date"},
        {{{"seen_on", "2999-01-01"}}, "date_in_future"},
        {{{"village", "500101002001"}}, "village_not_in_township"},
        {{{"village", "500101001999"}}, "unknown_division"},
        {{{"owner", "0190a1b2-0000-7000-8000-000000000000"}}, "reference_missing"},
        {{{"note", std::string(20000, 'y')}}, "value_too_large"},
        {{{"name", nullptr}}, "required_missing"},
    };
    for (const auto& [extra, code] : cases) {
        server_harness server;
        auto fields = item("ok");
        for (const auto& kv : extra)
            fields[kv.key()] = kv.value();
        push_request req;
        req.schema_version = 1;
        mutation m;
        m.seq = 1;
        m.collection = "item";
        m.id = uuid_v7_generator(1).make(1764300000000);
        for (const auto& kv : fields)
            m.fields.emplace_back(std::string(kv.key()),
                                  field_write{kv.value(), hlc{1764300000000, 0, "tab-a"}, {}});
        req.mutations.push_back(std::move(m));
        auto res = server.push(worker("tab-a"), req);
        ASSERT_EQ(res.acks.size(), 1u) << code;
        EXPECT_EQ(res.acks[0].status, ack_status::rejected) << code;
        EXPECT_EQ(res.acks[0].code, code);
        EXPECT_FALSE(res.acks[0].message.empty()) << code;
        EXPECT_EQ(res.last_applied, 1u) << code;
        EXPECT_EQ(server.count("SELECT count(*) FROM records"), 0) << code;
        EXPECT_EQ(server.count("SELECT count(*) FROM history"), 0) << code;
        EXPECT_EQ(server.count("SELECT count(*) FROM quarantine"), 1) << code;
    }
}

// References are checked against the database as the push has changed it so far: a record the
// push creates can be named after it (not before), and one it deletes can no longer be named.
TEST(engine, references_within_one_push_see_its_own_creates_and_deletes) {
    server_harness server;
    uuid_v7_generator ids(3);
    const std::int64_t t = 1764300000000;
    const uuid owner = ids.make(t), early = ids.make(t), late = ids.make(t), orphan = ids.make(t);
    std::uint64_t seq = 0;
    auto write = [&](const uuid& id, json::object fields) {
        mutation m;
        m.seq = ++seq;
        m.collection = "item";
        m.id = id;
        for (const auto& kv : fields)
            m.fields.emplace_back(std::string(kv.key()),
                                  field_write{kv.value(), hlc{t, 0, "tab-a"}, {}});
        return m;
    };
    auto naming_owner = [&](const char* name) {
        auto f = item(name);
        f["owner"] = owner.to_string();
        return f;
    };
    push_request req;
    req.schema_version = 1;
    req.mutations.push_back(write(early, naming_owner("early"))); // before the owner exists
    req.mutations.push_back(write(owner, item("owner")));
    req.mutations.push_back(write(late, naming_owner("late"))); // after it was created
    req.mutations.push_back(write(owner, json::object{{"_deleted", true}}));
    req.mutations.push_back(write(orphan, naming_owner("orphan"))); // after it was deleted
    auto res = server.push(worker("tab-a"), req);
    ASSERT_EQ(res.acks.size(), 5u);
    EXPECT_EQ(res.acks[0].status, ack_status::rejected);
    EXPECT_EQ(res.acks[0].code, "reference_missing");
    EXPECT_EQ(res.acks[1].status, ack_status::applied);
    EXPECT_EQ(res.acks[2].status, ack_status::applied);
    EXPECT_EQ(res.acks[3].status, ack_status::applied);
    EXPECT_EQ(res.acks[4].status, ack_status::rejected);
    EXPECT_EQ(res.acks[4].code, "reference_missing");
}

TEST(engine, unknown_collection_and_malformed_mutations_are_rejected) {
    server_harness server;
    boost::system::error_code ec;
    auto body = json::parse(R"({"schema_version": 1, "mutations": [
        {"seq": 1, "collection": "spaceship", "id": "0190a1b2-0000-7000-8000-000000000001",
         "fields": {"name": {"value": "x", "clock": "1:0:tab-a", "base": null}}},
        {"seq": 2, "collection": "item", "id": "not-a-uuid", "fields": {}},
        {"seq": 3, "collection": "item", "id": "0190a1b2-0000-7000-8000-000000000002",
         "fields": {"name": {"value": "x", "clock": "yesterday"}}},
        {"seq": 4, "collection": "item", "id": "0190a1b2-0000-7000-8000-000000000003",
         "fields": {"name": {"value": "x", "clock": "5:0:someone-else"}}}
    ]})",
                            ec);
    ASSERT_FALSE(ec);
    auto req = decode_push(body);
    ASSERT_TRUE(req);
    auto res = server.push(worker("tab-a"), *req);
    ASSERT_EQ(res.acks.size(), 4u);
    EXPECT_EQ(res.acks[0].code, "unknown_collection");
    EXPECT_EQ(res.acks[1].code, "bad_record_id");
    EXPECT_EQ(res.acks[2].code, "bad_clock");
    EXPECT_EQ(res.acks[3].code, "clock_device_mismatch");
    EXPECT_EQ(res.last_applied, 4u);
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 0);
    EXPECT_EQ(server.count("SELECT count(*) FROM quarantine"), 4);
}

TEST(engine, scope_is_enforced_on_push_and_pull) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    (void)a.create("item", item("in a"));
    server.sync(a, worker("tab-a"));
    (void)b.create("item", item("b writes into a", town_a, village_a1));
    (void)b.create("item", item("in b", town_b, village_b1));
    server.sync(b, worker("tab-b", town_b));
    auto issues = b.issues();
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].code, "out_of_scope");
    // b sees only its township.
    for (const auto& r : b.list())
        EXPECT_EQ(r.fields.at("township").as_string(), town_b);
    EXPECT_EQ(b.list().size(), 1u);
    // A village-restricted worker sees only that village.
    (void)a.create("item", item("in a2", town_a, village_a2));
    server.sync(a, worker("tab-a"));
    replica c(":memory:", test_catalog(), "tab-c");
    server.sync(c, worker("tab-c", town_a, {village_a2}));
    ASSERT_EQ(c.list().size(), 1u);
    EXPECT_EQ(c.list()[0].fields.at("name").as_string(), "in a2");
    // A district-wide user sees everything.
    replica d(":memory:", test_catalog(), "tab-d");
    server.sync(d, worker("tab-d", ""));
    EXPECT_EQ(d.list().size(), 3u);
}

TEST(engine, township_of_a_record_cannot_change) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("x"));
    server.sync(a, worker("tab-a", ""));
    ASSERT_TRUE(a.update(id, {{"township", town_b}, {"village", village_b1}}));
    auto res = server.push(worker("tab-a", ""), a.next_push());
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].code, "scope_field_immutable");
}

TEST(engine, delete_is_a_field_and_syncs_as_a_tombstone) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("to delete"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(b.get(id));
    ASSERT_TRUE(a.remove(id));
    EXPECT_FALSE(a.get(id));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    EXPECT_FALSE(b.get(id));
    EXPECT_EQ(server.count("SELECT deleted FROM records"), 1);
    EXPECT_EQ(a.content_hash(), server.hash());
    EXPECT_EQ(b.content_hash(), server.hash());
}

TEST(engine, history_records_who_which_tablet_and_old_to_new) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("h"));
    server.sync(a, worker("tab-a"));
    ASSERT_TRUE(a.update(id, {{"count", 7}}));
    server.sync(a, worker("tab-a"));
    sql::statement s(server.db.handle(),
                     "SELECT user, device, changes FROM history ORDER BY seq DESC LIMIT 1");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(0), "user-tab-a");
    EXPECT_EQ(s.text(1), "tab-a");
    EXPECT_EQ(s.text(2), R"({"count":[null,7]})");
}

} // namespace
} // namespace fieldsync

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

constexpr std::int64_t server_now = 1764316800000; // 2025-11-28T08:00:00Z
constexpr std::int64_t year_ms = std::int64_t{365} * 24 * 3600 * 1000;

TEST(engine_clocks, a_clock_far_ahead_is_restamped_and_the_tablet_is_told) {
    server_harness server(":memory:", engine_config{}, [] { return server_now; });
    std::int64_t tablet_wall = server_now + 10 * year_ms; // 2035
    replica ahead(":memory:", test_catalog(), "tab-2035", [&] { return tablet_wall; });
    auto id = *ahead.create("item", item("未来"));
    auto req = ahead.next_push();
    auto res = server.push(worker("tab-2035"), req);
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].status, ack_status::applied);
    EXPECT_FALSE(res.acks[0].restamped.empty());
    for (const auto& [field, clock] : res.acks[0].restamped) {
        EXPECT_LE(clock.ms, server_now + engine_config{}.max_clock_ahead_ms) << field;
        EXPECT_EQ(clock.device, "tab-2035");
    }
    // The server never carries the far-future clock: its own clock stays near real time.
    EXPECT_LT(server.eng.clock().last().ms, server_now + year_ms);
    ahead.apply_push_result(req, res);
    // The tablet corrected its clock: its next edit is not restamped and orders after the first.
    ASSERT_TRUE(ahead.update(id, {{"count", 2}}));
    auto req2 = ahead.next_push();
    auto res2 = server.push(worker("tab-2035"), req2);
    ASSERT_EQ(res2.acks.size(), 1u);
    EXPECT_TRUE(res2.acks[0].restamped.empty());
    EXPECT_TRUE(res2.acks[0].conflicts.empty());
    ahead.apply_push_result(req2, res2);
    server.sync(ahead, worker("tab-2035"));
    EXPECT_EQ(ahead.content_hash(), server.hash());
    EXPECT_EQ(ahead.get(id)->fields.at("count").as_int64(), 2);
}

TEST(engine_clocks, a_tablet_years_behind_orders_its_edits_after_what_it_pulled) {
    server_harness server(":memory:", engine_config{}, [] { return server_now; });
    replica now(":memory:", test_catalog(), "tab-now", [] { return server_now; });
    replica behind(":memory:", test_catalog(), "tab-2015",
                   [] { return server_now - 10 * year_ms; });
    auto id = *now.create("item", item("现在"));
    server.sync(now, worker("tab-now"));
    server.sync(behind, worker("tab-2015"));
    ASSERT_TRUE(behind.update(id, {{"name", "改过"}}));
    server.sync(behind, worker("tab-2015"));
    // A clean update (it saw the current value), and it won: no conflict, the new name stands.
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts"), 0);
    server.sync(now, worker("tab-now"));
    EXPECT_EQ(now.get(id)->fields.at("name").as_string(), "改过");
    EXPECT_EQ(now.content_hash(), server.hash());
    EXPECT_EQ(behind.content_hash(), server.hash());
}

TEST(engine_clocks, a_concurrent_edit_from_a_slow_clock_loses_to_a_later_one_but_is_kept) {
    server_harness server(":memory:", engine_config{}, [] { return server_now; });
    replica now(":memory:", test_catalog(), "tab-now", [] { return server_now; });
    replica behind(":memory:", test_catalog(), "tab-2015",
                   [] { return server_now - 10 * year_ms; });
    auto id = *now.create("item", item("x"));
    server.sync(now, worker("tab-now"));
    server.sync(behind, worker("tab-2015"));
    ASSERT_TRUE(now.update(id, {{"note", "from now"}}));
    ASSERT_TRUE(behind.update(id, {{"note", "from 2015"}}));
    server.sync(now, worker("tab-now"));
    server.sync(behind, worker("tab-2015"));
    server.sync(now, worker("tab-now"));
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts WHERE status = 'open'"), 1);
    EXPECT_EQ(now.content_hash(), server.hash());
    EXPECT_EQ(behind.content_hash(), server.hash());
}

TEST(engine, a_purged_tombstone_horizon_resets_old_cursors_and_keeps_the_outbox) {
    std::int64_t wall = server_now;
    engine_config cfg;
    cfg.tombstone_retention_ms = 1000;
    server_harness server(":memory:", cfg, [&] { return wall; });
    replica a(":memory:", test_catalog(), "tab-a", [&] { return wall; });
    replica old(":memory:", test_catalog(), "tab-old", [&] { return wall; });
    auto id = *a.create("item", item("gone"));
    (void)a.create("item", item("stays"));
    server.sync(a, worker("tab-a"));
    server.sync(old, worker("tab-old"));
    ASSERT_TRUE(a.remove(id));
    server.sync(a, worker("tab-a"));
    wall += 5000;
    {
        sql::transaction tx(server.db);
        EXPECT_EQ(server.eng.purge_tombstones(server.db, wall), 1u);
        tx.commit();
    }
    auto unsent = *old.create("item", item("written offline"));
    auto res = server.pull(worker("tab-old"), old.next_pull());
    EXPECT_TRUE(res.reset);
    EXPECT_EQ(res.reset_reason, "tombstones_expired");
    old.apply_pull_result(res);
    EXPECT_FALSE(old.get(id)); // the deleted record is gone, not silently kept
    EXPECT_TRUE(old.get(unsent));
    EXPECT_EQ(old.pending_count(), 1u);
    server.sync(old, worker("tab-old"));
    EXPECT_EQ(old.content_hash(), server.hash());
    EXPECT_EQ(server.count("SELECT count(*) FROM records"), 2);
}

} // namespace
} // namespace fieldsync

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

struct counting_observer : change_observer {
    int changes = 0, creations = 0, open_conflicts = 0;
    void on_change(sql::connection&, const record_change& c) override {
        ++changes;
        if (!c.before)
            ++creations;
    }
    void on_conflicts(sql::connection&, std::string_view, std::string_view, int delta) override {
        open_conflicts += delta;
    }
};

TEST(engine_server_writes, a_resolution_is_an_ordinary_change_that_syncs_to_tablets) {
    server_harness server;
    counting_observer obs;
    server.eng.add_observer(&obs);
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("冲突"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(a.update(id, {{"count", 1}}));
    ASSERT_TRUE(b.update(id, {{"count", 2}}));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(obs.open_conflicts, 1);
    auto cid = server.count("SELECT cid FROM conflicts WHERE status = 'open'");

    principal head{"head-a", "", scope{town_a, {}}};
    {
        sql::transaction tx(server.db);
        auto ack = server.eng.write(server.db, head, "item", id, {{"count", 9}});
        EXPECT_EQ(ack.status, ack_status::applied);
        EXPECT_TRUE(ack.conflicts.empty());
        ASSERT_TRUE(server.eng.close_conflict(server.db, head, cid, "entered 9"));
        tx.commit();
    }
    EXPECT_EQ(obs.open_conflicts, 0);
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts WHERE status = 'open'"), 0);
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(a.get(id)->fields.at("count").as_int64(), 9);
    EXPECT_EQ(b.get(id)->fields.at("count").as_int64(), 9);
    EXPECT_EQ(a.content_hash(), server.hash());
    sql::statement h(server.db.handle(),
                     "SELECT user, device FROM history ORDER BY seq DESC LIMIT 1");
    ASSERT_TRUE(h.step());
    EXPECT_EQ(h.text(0), "head-a");
    EXPECT_EQ(h.text(1), "srv-head-a");
}

TEST(engine_server_writes, are_validated_scoped_and_never_quarantined) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("x"));
    server.sync(a, worker("tab-a"));
    sql::transaction tx(server.db);
    principal head_b{"head-b", "", scope{town_b, {}}};
    EXPECT_EQ(server.eng.write(server.db, head_b, "item", id, {{"count", 1}}).code, "out_of_scope");
    principal head_a{"head-a", "", scope{town_a, {}}};
    EXPECT_EQ(server.eng.write(server.db, head_a, "item", id, {{"count", -1}}).code,
              "out_of_range");
    EXPECT_FALSE(server.eng.close_conflict(server.db, head_a, 12345, "none"));
    tx.commit();
    EXPECT_EQ(server.count("SELECT count(*) FROM quarantine"), 0);
    EXPECT_EQ(server.count("SELECT count(*) FROM history"), 1);
}

TEST(engine_server_writes, observers_see_every_accepted_change_once) {
    server_harness server;
    counting_observer obs;
    server.eng.add_observer(&obs);
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("x"));
    (void)a.create("item", {{"township", town_a}, {"name", 1}}); // rejected: not a change
    server.sync(a, worker("tab-a"));
    ASSERT_TRUE(a.update(id, {{"count", 4}}));
    auto req = a.next_push();
    server.push(worker("tab-a"), req);
    server.push(worker("tab-a"), req); // repeated: not a change
    EXPECT_EQ(obs.creations, 1);
    EXPECT_EQ(obs.changes, 2);
}

TEST(engine, records_are_stored_with_shared_clocks_and_older_apps_still_pull_one_per_field) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("张三"));
    server.sync(a, worker("tab-a"));
    ASSERT_TRUE(a.update(id, {{"count", 7}}));
    server.sync(a, worker("tab-a"));
    {
        sql::statement s(server.db.handle(), "SELECT fields, clocks FROM records WHERE id = ?");
        s.bind(1, id.span());
        ASSERT_TRUE(s.step());
        auto fields = json::parse(s.text(0)).as_object();
        auto clocks = json::parse(s.text(1)).as_object();
        // Every field but the edited one shares the creation's clock: one entry for them all.
        EXPECT_EQ(clocks.size(), 2u) << s.text(1);
        EXPECT_TRUE(clocks.contains("*"));
        EXPECT_TRUE(clocks.contains("count"));
        EXPECT_GT(fields.size(), 3u);
    }
    // Pulled as text, the way the server sends it: the shared form only to a client that asked.
    for (bool shared : {false, true}) {
        pull_request req;
        req.shared_clocks = shared;
        auto res = server.eng.pull(server.db, worker("tab-b"), req, /*raw_json=*/true);
        ASSERT_TRUE(res);
        auto doc = json::parse(serialize(*res));
        const auto& change = doc.at("changes").at(0).as_object();
        const auto& clocks = change.at("clocks").as_object();
        EXPECT_EQ(clocks.contains("*"), shared);
        if (!shared) {
            for (const auto& kv : change.at("fields").as_object())
                EXPECT_TRUE(clocks.contains(kv.key())) << kv.key();
        }
        auto decoded = decode_pull_result(doc);
        ASSERT_TRUE(decoded);
        EXPECT_EQ(decoded->changes.at(0).clocks, stored_clocks(server, id));
    }
    replica b(":memory:", test_catalog(), "tab-b");
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(b.content_hash(), server.hash());
    EXPECT_EQ(a.content_hash(), server.hash());
}

TEST(engine, records_stored_with_one_clock_per_field_are_still_merged_and_served) {
    // A database written before clocks were shared.
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("李四"));
    server.sync(a, worker("tab-a"));
    const auto per_field = json::serialize(stored_clocks(server, id));
    {
        sql::statement s(server.db.handle(), "UPDATE records SET clocks = ? WHERE id = ?");
        s.bind(1, std::string_view(per_field));
        s.bind(2, id.span());
        s.run();
    }
    const auto hash = server.hash();
    replica b(":memory:", test_catalog(), "tab-b");
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(b.content_hash(), hash);
    ASSERT_TRUE(b.update(id, {{"count", 3}}));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts"), 0);
    EXPECT_EQ(a.get(id)->fields.at("count").as_int64(), 3);
    EXPECT_EQ(a.content_hash(), server.hash());
    EXPECT_EQ(b.content_hash(), server.hash());
}

// The server prepares a push's texts before the writer's queue (engine::prepare, on the network
// thread); what the writer stores with them must be exactly what it stores without them: records,
// clocks, history, acknowledgements, rejections and restamped clocks alike.
TEST(engine, a_push_prepared_before_the_queue_is_stored_exactly_as_without) {
    manual_clock wall;
    server_harness plain(":memory:", {}, wall.fn());
    server_harness prepared(":memory:", {}, wall.fn());
    const auto who = worker("tab-a");
    uuid_v7_generator ids(3);
    std::uint64_t seq = 0;
    auto mutation_of = [&](const uuid& id, const json::object& fields, std::int64_t clock_ms,
                           bool own_clocks) {
        mutation m;
        m.seq = ++seq;
        m.collection = "item";
        m.id = id;
        std::uint32_t counter = 0;
        for (const auto& kv : fields)
            m.fields.emplace_back(
                std::string(kv.key()),
                field_write{
                    kv.value(), hlc{clock_ms, own_clocks ? counter++ : 0u, who.device}, {}});
        return m;
    };
    const uuid a = ids.make(wall.ms), b = ids.make(wall.ms), c = ids.make(wall.ms),
               d = ids.make(wall.ms);
    push_request first;
    first.schema_version = 1;
    // New, one clock for all fields; new, a clock each; text that needs escaping; a number
    // with a fraction and an object (fields a newer app sends are kept as they are).
    auto first_item = item("张三 \"引号\" \\ 换行\n");
    first_item["ratio"] = 0.1;
    first_item["where"] = json::object{{"lat", 31.16}, {"lon", 108.39}, {"note", "村口"}};
    first.mutations.push_back(mutation_of(a, first_item, wall.ms, false));
    first.mutations.push_back(mutation_of(b, item("李四"), wall.ms, true));
    // New, but a clock far ahead: the writer restamps it, and so writes its own texts.
    first.mutations.push_back(mutation_of(c, item("王五"), wall.ms + 86400000LL * 30, false));
    // Rejected: a value out of range.
    auto bad = item("赵六");
    bad["count"] = 5000;
    first.mutations.push_back(mutation_of(d, bad, wall.ms, false));
    // Whole-record checks, prepared without the database and finished by the writer with it:
    // a reference to a record of the same push; references and divisions that do not exist; a
    // required field missing; a cross-field rule broken (a village of another township).
    auto owned = item("钱七");
    owned["owner"] = a.to_string();
    first.mutations.push_back(mutation_of(ids.make(wall.ms), owned, wall.ms, false));
    auto dangling = item("孙八");
    dangling["owner"] = ids.make(wall.ms).to_string();
    first.mutations.push_back(mutation_of(ids.make(wall.ms), dangling, wall.ms, false));
    first.mutations.push_back(
        mutation_of(ids.make(wall.ms), item("周九", town_a, "500154105299"), wall.ms, false));
    auto nameless = item("吴十");
    nameless.erase("name");
    first.mutations.push_back(mutation_of(ids.make(wall.ms), nameless, wall.ms, false));
    first.mutations.push_back(
        mutation_of(ids.make(wall.ms), item("郑十一", town_a, village_b1), wall.ms, false));
    push_request second;
    second.schema_version = 1;
    // An edit of a stored record: the writer merges, prepared texts or not.
    second.mutations.push_back(
        mutation_of(a, json::object{{"count", 7}, {"note", "改了"}}, wall.ms + 1000, false));

    auto run = [&](server_harness& h, const push_request& req, bool prepare) {
        sql::transaction tx(h.db);
        const auto prep = h.eng.prepare(who, req);
        auto res = h.eng.push(h.db, who, req, prepare ? &prep : nullptr);
        tx.commit();
        return res;
    };
    for (const auto* req : {&first, &second}) {
        auto x = run(plain, *req, false);
        auto y = run(prepared, *req, true);
        EXPECT_EQ(json::serialize(encode(x)), json::serialize(encode(y)));
        wall.ms += 1000;
    }
    auto dump = [](server_harness& h, const char* sql_text) {
        std::string out;
        sql::statement s(h.db.handle(), sql_text);
        while (s.step()) {
            for (int i = 0; i < 3; ++i)
                out += std::string(s.text(i)) + "|";
            out += "\n";
        }
        return out;
    };
    const char* records = "SELECT hex(id), fields, clocks FROM records ORDER BY rid";
    const char* history = "SELECT seq, device, changes FROM history ORDER BY hid";
    const char* rejected = "SELECT code, field, record_id FROM quarantine ORDER BY qid";
    EXPECT_EQ(dump(plain, records), dump(prepared, records));
    EXPECT_EQ(dump(plain, history), dump(prepared, history));
    EXPECT_EQ(dump(plain, rejected), dump(prepared, rejected));
    EXPECT_EQ(plain.count("SELECT count(*) FROM records"), 4);
    EXPECT_EQ(prepared.count("SELECT count(*) FROM records"), 4);
    EXPECT_EQ(dump(prepared, "SELECT code, field, '' FROM quarantine ORDER BY qid"),
              "out_of_range|count||\nreference_missing|owner||\nunknown_division|village||\n"
              "required_missing|name||\nvillage_not_in_township|village||\n");
    EXPECT_EQ(plain.hash(), prepared.hash());
}

// A preparation's checks hold later (a date not in the future stays so), not earlier: when the
// server's wall clock is set back between preparing a push and writing it, the writer checks the
// push itself, and a person born "tomorrow" by its clock is refused as without a preparation.
TEST(engine, a_push_prepared_before_the_clock_was_set_back_is_checked_again) {
    constexpr std::int64_t day = 86400000;
    const auto who = field_worker("tab-a", t105);
    for (bool set_back : {false, true}) {
        district plain, prepared;
        replica a(":memory:", catalog::builtin(), "tab-a", [&] { return july_31 - day; });
        (void)*a.create("person", person(t105, v105, "2025-07-31", true, "unemployed", 1));
        auto req = a.next_push();
        prepared.wall = july_31; // born today: fine
        const auto prep = prepared.eng.prepare(who, req);
        ASSERT_FALSE(prep.at(0).field_rejection);
        ASSERT_TRUE(prep.at(0).record_valid);
        prepared.wall = plain.wall = set_back ? july_31 - day : july_31;
        auto x = plain.write([&](sql::connection& c) { return plain.eng.push(c, who, req); });
        auto y = prepared.write(
            [&](sql::connection& c) { return prepared.eng.push(c, who, req, &prep); });
        EXPECT_EQ(json::serialize(encode(x)), json::serialize(encode(y)));
        EXPECT_EQ(y.acks.at(0).status, set_back ? ack_status::rejected : ack_status::applied)
            << y.acks.at(0).code;
    }
}

// The newest record purged would hand its row id to the next new record (records.rid is not
// AUTOINCREMENT), and with it the purged record's history, which is found by that row id.
TEST(engine, a_record_made_after_a_purge_never_takes_the_purged_records_history) {
    std::int64_t wall = server_now;
    engine_config cfg;
    cfg.tombstone_retention_ms = 1000;
    server_harness server(":memory:", cfg, [&] { return wall; });
    replica a(":memory:", test_catalog(), "tab-a", [&] { return wall; });
    (void)a.create("item", item("older"));
    auto newest = *a.create("item", item("gone"));
    server.sync(a, worker("tab-a"));
    ASSERT_TRUE(a.remove(newest));
    server.sync(a, worker("tab-a"));
    wall += 5000;
    {
        sql::transaction tx(server.db);
        server.eng.purge_tombstones(server.db, wall);
        tx.commit();
    }
    auto made = *a.create("item", item("new"));
    server.sync(a, worker("tab-a"));
    auto rid_of = [&](const uuid& id) {
        auto s = server.db.cached("SELECT rid FROM records WHERE id = ?");
        s->bind_all(id.span());
        return s->step() ? s->int64(0) : -1;
    };
    const auto rid = rid_of(made);
    ASSERT_GT(rid, 0);
    EXPECT_EQ(server.count("SELECT count(*) FROM history WHERE rid = " + std::to_string(rid)), 1);
}

} // namespace
} // namespace fieldsync
