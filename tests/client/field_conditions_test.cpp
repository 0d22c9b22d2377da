// The field conditions of issue 5, end to end: several simulated tablets (sync_client) against
// a real fieldsyncd over real TLS on loopback. No test asserts timing; every loop is bounded.
#include "client_fixture.hpp"
#include "fault_proxy.hpp"
#include "server/auth.hpp"

#include "../sync/district_fixture.hpp"

#include <boost/json/serialize.hpp>

#include <fstream>
#include <iterator>
#include <set>

namespace fieldsync::testing {
namespace {

using client::record_state;
using client::sync_outcome;

std::int64_t open_conflicts(const server_fixture& f) {
    return f.count("SELECT count(*) FROM conflicts WHERE status = 'open'");
}

std::string server_field(const server_fixture& f, const uuid& id, const std::string& field) {
    sql::connection c(f.dir.file("fieldsync.db"), sql::open_mode::read_only);
    auto s = c.cached("SELECT json_extract(fields, '$.' || ?) FROM records WHERE id = ?");
    s->bind_all(field, id.span());
    return s->step() && !s->is_null(0) ? std::string(s->text(0)) : std::string("<none>");
}

std::string local_field(client::sync_client& c, const uuid& id, const std::string& field) {
    auto r = c.local().get(id);
    if (!r)
        return "<no record>";
    const auto* v = r->fields.if_contains(field);
    if (!v)
        return "<none>";
    return v->is_string() ? std::string(v->as_string()) : boost::json::serialize(*v);
}

template <class F>
void with_database(const server_fixture& f, F fn) {
    sql::connection c(f.dir.file("fieldsync.db"), sql::open_mode::read_write);
    sql::transaction tx(c);
    fn(c);
    tx.commit();
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// 1. A week offline: three workers each collect about 200 records, then sync in any order.
TEST(field_conditions, week_offline_everything_arrives_once_and_counts_once) {
    server_fixture f;
    std::vector<std::unique_ptr<tablet>> tablets;
    for (const char* u : {"fw_a", "fw_a2", "fw_a1"})
        tablets.push_back(enrol_tablet(f, u));
    std::set<uuid> made;
    int visits = 0;
    for (int w = 0; w < 3; ++w) {
        auto& c = *tablets[static_cast<std::size_t>(w)]->c;
        for (int p = 0; p < 10; ++p) {
            auto person_id =
                c.create("person", person(town_a, village_a1, "1980-03-0" + std::to_string(w + 1),
                                          p % 2 == 0, "unemployed", w * 10 + p + 1));
            ASSERT_TRUE(person_id);
            made.insert(*person_id);
            for (int v = 0; v < 19; ++v) {
                auto id = c.create("home_visit", visit(town_a, village_a1, *person_id,
                                                       v % 2 ? "2026-07-15T10:00:00+08:00"
                                                             : "2026-07-02T09:30:00+08:00",
                                                       v == 0));
                ASSERT_TRUE(id);
                made.insert(*id);
                ++visits;
            }
        }
        EXPECT_EQ(c.counts().pending, 200u);
    }
    for (int w : {2, 0, 1}) {
        auto rep = tablets[static_cast<std::size_t>(w)]->c->sync();
        ASSERT_EQ(rep.outcome, sync_outcome::complete) << rep.error;
        EXPECT_EQ(rep.rejected, 0u);
        for (const auto& r : tablets[static_cast<std::size_t>(w)]->c->records())
            if (r.state == record_state::rejected) {
                ADD_FAILURE() << r.collection << " " << r.code << " " << r.field << " "
                              << r.message;
                break;
            }
        EXPECT_EQ(rep.applied, 200u);
    }
    for (auto& t : tablets)
        ASSERT_EQ(t->c->sync().outcome, sync_outcome::complete);

    EXPECT_EQ(f.count("SELECT count(*) FROM records"), static_cast<std::int64_t>(made.size()));
    EXPECT_EQ(f.count("SELECT count(*) FROM records WHERE collection = 'home_visit'"), visits);
    EXPECT_EQ(f.count("SELECT count(*) FROM history"), static_cast<std::int64_t>(made.size()));
    for (auto& t : tablets) {
        auto n = t->c->counts();
        EXPECT_EQ(n.records, made.size());
        EXPECT_EQ(n.synced, made.size());
        EXPECT_EQ(n.pending, 0u);
        EXPECT_EQ(t->c->local().content_hash(), tablets[0]->c->local().content_hash());
    }
    sql::connection db(f.dir.file("fieldsync.db"), sql::open_mode::read_only);
    auto july = rollups::read(db, town_a, "2026-07");
    EXPECT_EQ(july["home_visits"], visits);
    EXPECT_EQ(july["persons_visited"], 30);
}

// 2. Two workers edit the same record offline.
TEST(field_conditions, same_record_edited_offline_merges_fields_and_opens_one_conflict) {
    server_fixture f;
    auto a = enrol_tablet(f, "fw_a");
    auto b = enrol_tablet(f, "fw_a2");
    auto id = (*a)->create("item", item_fields("shared"));
    ASSERT_TRUE(id);
    ASSERT_EQ((*a)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*b)->sync().outcome, sync_outcome::complete);
    ASSERT_TRUE((*b)->local().get(*id));

    ASSERT_TRUE((*a)->update(*id, {{"note", "from a"}, {"count", 5}}));
    ASSERT_TRUE((*b)->update(*id, {{"kind", "b"}, {"count", 7}}));
    for (int round = 0; round < 2; ++round) {
        ASSERT_EQ((*a)->sync().outcome, sync_outcome::complete);
        ASSERT_EQ((*b)->sync().outcome, sync_outcome::complete);
    }
    EXPECT_EQ(server_field(f, *id, "note"), "from a");
    EXPECT_EQ(server_field(f, *id, "kind"), "b");
    EXPECT_EQ(open_conflicts(f), 1);
    // The higher clock wins. Both edits may fall in the same millisecond after the same pull,
    // so which one that is depends on the counters and device ids; the loser is kept.
    std::string winner = server_field(f, *id, "count");
    ASSERT_TRUE(winner == "5" || winner == "7") << winner;
    EXPECT_EQ(f.count("SELECT count(*) FROM conflicts WHERE field = 'count' AND loser_value = '" +
                      std::string(winner == "5" ? "7" : "5") + "'"),
              1);
    for (auto* t : {a.get(), b.get()}) {
        EXPECT_EQ(local_field(*t->c, *id, "count"), winner);
        EXPECT_EQ(local_field(*t->c, *id, "note"), "from a");
        EXPECT_EQ(local_field(*t->c, *id, "kind"), "b");
    }
    EXPECT_EQ((*a)->local().content_hash(), (*b)->local().content_hash());
    // The worker whose value was concurrent sees the record as in conflict.
    auto sb = (*b)->status(*id);
    ASSERT_TRUE(sb);
    EXPECT_EQ(sb->state, record_state::conflict);
    EXPECT_EQ(sb->field, "count");
}

// 3. A link that drops at random points during several syncs.
TEST(field_conditions, dropping_link_no_duplicate_no_loss_all_converge) {
    server_fixture f;
    fault_proxy proxy(f.port(), 20251128, 0.0);
    std::vector<std::unique_ptr<tablet>> tablets;
    std::uint64_t seed = 1;
    for (const char* u : {"fw_a", "fw_a2", "fw_a1"})
        tablets.push_back(enrol_tablet(f, u, system_wall_ms, proxy.port(), ++seed));
    proxy.set_rate(0.6);
    std::set<uuid> made;
    std::int64_t mutations = 0;
    for (int round = 0; round < 4; ++round) {
        for (std::size_t w = 0; w < tablets.size(); ++w) {
            auto& c = *tablets[w]->c;
            for (int i = 0; i < 25; ++i) {
                auto id =
                    c.create("item", item_fields("r" + std::to_string(round) + "-w" +
                                                 std::to_string(w) + "-" + std::to_string(i)));
                ASSERT_TRUE(id);
                made.insert(*id);
                ++mutations;
                if (i % 5 == 0) {
                    ASSERT_TRUE(c.update(*id, {{"count", i}}));
                    ++mutations;
                }
            }
            auto rep = sync_until_complete(c);
            ASSERT_EQ(rep.outcome, sync_outcome::complete) << rep.error;
        }
    }
    EXPECT_GT(proxy.cuts(), 0u);
    proxy.set_rate(0.0);
    for (int i = 0; i < 2; ++i)
        for (auto& t : tablets)
            ASSERT_EQ(t->c->sync().outcome, sync_outcome::complete);

    EXPECT_EQ(f.count("SELECT count(*) FROM records"), static_cast<std::int64_t>(made.size()));
    // Every mutation applied exactly once: one history row each.
    EXPECT_EQ(f.count("SELECT count(*) FROM history"), mutations);
    for (auto& t : tablets) {
        EXPECT_EQ(t->c->counts().records, made.size());
        EXPECT_EQ(t->c->counts().outbox, 0u);
        EXPECT_EQ(t->c->local().content_hash(), tablets[0]->c->local().content_hash());
    }
    std::cout << "proxy: " << proxy.connections() << " connections, " << proxy.cuts() << " cuts\n";
}

// 4. Wrong clocks: one tablet in 2015, one in 2035.
TEST(field_conditions, wrong_clocks_lose_nothing_and_later_edits_order_after_pulled_ones) {
    server_fixture f;
    manual_clock past, future;
    past.ms = 1433160000000;   // 2015-06-01
    future.ms = 2064528000000; // 2035-06-03
    auto old_tab = enrol_tablet(f, "fw_a", past.fn());
    auto new_tab = enrol_tablet(f, "fw_a2", future.fn());
    // Offline before any sync: the clocks are as wrong as they come.
    auto from_past = (*old_tab)->create("item", item_fields("from 2015"));
    auto from_future = (*new_tab)->create("item", item_fields("from 2035"));
    ASSERT_TRUE(from_past && from_future);

    auto rep_future = (*new_tab)->sync();
    ASSERT_EQ(rep_future.outcome, sync_outcome::complete);
    EXPECT_GT(rep_future.restamped, 0u); // told so
    EXPECT_LT((*new_tab)->local().clock_offset_ms(), -(std::int64_t{300} * 24 * 3600 * 1000));
    auto rep_past = (*old_tab)->sync();
    ASSERT_EQ(rep_past.outcome, sync_outcome::complete);
    EXPECT_EQ(rep_past.restamped, 0u);
    ASSERT_EQ((*new_tab)->sync().outcome, sync_outcome::complete);
    EXPECT_EQ(f.count("SELECT count(*) FROM records"), 2);
    // The 2035 value stored with the server's time, not 2035.
    {
        sql::connection c(f.dir.file("fieldsync.db"), sql::open_mode::read_only);
        auto s = c.cached("SELECT json_extract(clocks, '$.name') FROM records WHERE id = ?");
        s->bind_all(from_future->span());
        ASSERT_TRUE(s->step());
        auto h = hlc::parse(s->text(0));
        ASSERT_TRUE(h);
        EXPECT_LT(h->ms, system_wall_ms() + 60000);
    }
    // Edits after the sync: the 2015 tablet edits the 2035 record, the 2035 tablet the 2015
    // one. Each edit must win over what its tablet pulled.
    ASSERT_TRUE((*old_tab)->update(*from_future, {{"note", "edited in 2015"}}));
    ASSERT_TRUE((*new_tab)->update(*from_past, {{"note", "edited in 2035"}}));
    ASSERT_TRUE((*new_tab)->update(*from_future, {{"count", 3}}));
    auto again = (*new_tab)->sync();
    ASSERT_EQ(again.outcome, sync_outcome::complete);
    EXPECT_EQ(again.restamped, 0u); // its offset is corrected now
    ASSERT_EQ((*old_tab)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*new_tab)->sync().outcome, sync_outcome::complete);
    EXPECT_EQ(server_field(f, *from_future, "note"), "edited in 2015");
    EXPECT_EQ(server_field(f, *from_past, "note"), "edited in 2035");
    EXPECT_EQ(server_field(f, *from_future, "count"), "3");
    EXPECT_EQ(open_conflicts(f), 0);
    EXPECT_EQ((*old_tab)->local().content_hash(), (*new_tab)->local().content_hash());
}

// 5. A lost tablet is revoked; the worker's new tablet gets the township's data.
TEST(field_conditions, revoked_tablet_is_wiped_and_new_tablet_receives_the_data) {
    server_fixture f;
    auto lost = enrol_tablet(f, "fw_a");
    auto colleague = enrol_tablet(f, "fw_a2");
    const std::string name = "Wang-Xiuying-5001";
    const std::string unsent = "Unsent-Li-Ming-7734";
    ASSERT_TRUE((*lost)->create("item", item_fields(name)));
    ASSERT_TRUE((*colleague)->create("item", item_fields("colleague's record")));
    ASSERT_EQ((*lost)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*colleague)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*lost)->sync().outcome, sync_outcome::complete);
    ASSERT_TRUE((*lost)->create("item", item_fields(unsent)));
    EXPECT_NE(file_bytes((*lost)->replica_path()) + file_bytes((*lost)->replica_path() + "-wal"),
              "");

    with_database(f, [&](sql::connection& c) {
        ASSERT_TRUE(
            auth::revoke_device(c, (*lost)->identity().device, system_wall_ms()).value.has_value());
    });
    auto rep = (*lost)->sync();
    EXPECT_EQ(rep.outcome, sync_outcome::revoked);
    EXPECT_FALSE((*lost)->enrolled());
    EXPECT_TRUE((*lost)->records().empty());
    EXPECT_EQ((*lost)->local().pending_count(), 0u);
    EXPECT_EQ((*lost)->sync().outcome, sync_outcome::revoked);
    EXPECT_FALSE((*lost)->create("item", item_fields("after revocation")));
    {
        sql::connection c((*lost)->replica_path(), sql::open_mode::read_only);
        sql::statement s(c.handle(), "SELECT (SELECT count(*) FROM records) + "
                                     "(SELECT count(*) FROM outbox)");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), 0);
    }
    std::string bytes =
        file_bytes((*lost)->replica_path()) + file_bytes((*lost)->replica_path() + "-wal");
    EXPECT_EQ(bytes.find(name), std::string::npos);
    EXPECT_EQ(bytes.find(unsent), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(lost->dir.file("state/enrolment.json")));

    auto replacement = enrol_tablet(f, "fw_a");
    ASSERT_EQ((*replacement)->sync().outcome, sync_outcome::complete);
    auto recs = (*replacement)->records();
    ASSERT_EQ(recs.size(), 2u);
    bool found = false;
    for (const auto& r : recs)
        found = found || r.fields.at("name").as_string() == name;
    EXPECT_TRUE(found);
}

// 6. A worker moves to another township.
TEST(field_conditions, moved_worker_loses_old_township_and_keeps_unsent_records) {
    server_fixture f;
    auto mover = enrol_tablet(f, "fw_a");
    auto b_worker = enrol_tablet(f, "fw_b");
    ASSERT_TRUE((*mover)->create("item", item_fields("old township, synced")));
    auto in_b = (*b_worker)->create("item", item_fields("township b", town_b, village_b1));
    ASSERT_TRUE(in_b);
    ASSERT_EQ((*mover)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*b_worker)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*mover)->counts().records, 1u);

    // Offline: one more record in the old township, one in the new.
    auto unsent_old = (*mover)->create("item", item_fields("old township, unsent"));
    auto unsent_new =
        (*mover)->create("item", item_fields("new township, unsent", town_b, village_b1));
    ASSERT_TRUE(unsent_old && unsent_new);
    with_database(f, [&](sql::connection& c) {
        ASSERT_TRUE(auth::set_scope(c, "fw_a", town_b, {}, system_wall_ms()).value.has_value());
    });
    auto rep = (*mover)->sync();
    ASSERT_EQ(rep.outcome, sync_outcome::complete) << rep.error;
    EXPECT_EQ(rep.resets, 1u);
    EXPECT_EQ(rep.reset_reason, "scope_changed");
    EXPECT_EQ(rep.rejected, 1u);
    EXPECT_EQ(rep.applied, 1u);

    std::map<std::string, client::record_status> by_name;
    for (auto& r : (*mover)->records())
        by_name[std::string(r.fields.at("name").as_string())] = r;
    EXPECT_FALSE(by_name.count("old township, synced"));
    ASSERT_TRUE(by_name.count("township b"));
    EXPECT_EQ(by_name["township b"].state, record_state::synced);
    ASSERT_TRUE(by_name.count("new township, unsent"));
    EXPECT_EQ(by_name["new township, unsent"].state, record_state::synced);
    ASSERT_TRUE(by_name.count("old township, unsent"));
    EXPECT_EQ(by_name["old township, unsent"].state, record_state::rejected);
    EXPECT_EQ(by_name["old township, unsent"].code, "out_of_scope");
    EXPECT_FALSE(by_name["old township, unsent"].message.empty());
    EXPECT_EQ(f.count("SELECT count(*) FROM quarantine"), 1);
    auto n = (*mover)->counts();
    EXPECT_EQ(n.rejected, 1u);
    EXPECT_EQ(n.synced, 2u);
}

// 7. A tablet offline longer than the tombstone retention.
TEST(field_conditions, tablet_offline_past_tombstone_retention_is_reset_and_sends_its_records) {
    server_fixture f;
    auto away = enrol_tablet(f, "fw_a");
    auto here = enrol_tablet(f, "fw_a2");
    auto doomed = (*here)->create("item", item_fields("to be deleted"));
    ASSERT_TRUE(doomed);
    ASSERT_TRUE((*here)->create("item", item_fields("stays")));
    ASSERT_EQ((*here)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*away)->sync().outcome, sync_outcome::complete);
    ASSERT_EQ((*away)->counts().records, 2u);

    // Away for long: its worker collects; meanwhile the record is deleted and, past the
    // retention, its tombstone purged.
    auto collected = (*away)->create("item", item_fields("collected while away"));
    ASSERT_TRUE(collected);
    ASSERT_TRUE((*here)->remove(*doomed));
    ASSERT_EQ((*here)->sync().outcome, sync_outcome::complete);
    with_database(f, [&](sql::connection& c) {
        engine_config cfg;
        cfg.tombstone_retention_ms = 0;
        engine e(test_catalog(), cfg, c);
        EXPECT_EQ(e.purge_tombstones(c, system_wall_ms() + 1000), 1u);
    });

    auto rep = (*away)->sync();
    ASSERT_EQ(rep.outcome, sync_outcome::complete) << rep.error;
    EXPECT_EQ(rep.resets, 1u);
    EXPECT_EQ(rep.reset_reason, "tombstones_expired");
    EXPECT_FALSE((*away)->local().get(*doomed)); // not silently diverged
    EXPECT_EQ(server_field(f, *collected, "name"), "collected while away");
    ASSERT_EQ((*here)->sync().outcome, sync_outcome::complete);
    EXPECT_EQ((*away)->local().content_hash(), (*here)->local().content_hash());
    EXPECT_EQ((*away)->counts().records, 2u);
}

} // namespace
} // namespace fieldsync::testing
