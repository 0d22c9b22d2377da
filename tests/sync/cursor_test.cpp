// Pull cursors: the codec refuses what this database did not issue, resets are told apart
// (another database, another scope, tombstones purged past the cursor), and — the completeness
// property — a reader pulling in small pages while the writer commits never misses or repeats a
// change, and `complete` only comes at the snapshot's high-water mark.
#include "sync/test_support.hpp"
#include "sync/writer.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

// A server with a few records and a cursor at its end for tab-a (township A).
struct cursor_fixture {
    explicit cursor_fixture(engine_config cfg = {}) : server(":memory:", cfg, wall.fn()) {
        replica a(":memory:", test_catalog(), "tab-a", wall.fn(), 1);
        for (int i = 0; i < 5; ++i)
            ids.push_back(*a.create("item", item("r" + std::to_string(i))));
        server.sync(a, worker("tab-a"));
        auto r = server.pull(worker("tab-a"), {});
        cursor = r.cursor;
    }
    bool is_bad_cursor(const std::string& c) {
        auto r = server.eng.pull(server.db, worker("tab-a"), pull_request{c, 10});
        return !r && r.error() == make_error_code(errc::bad_cursor);
    }
    manual_clock wall;
    server_harness server;
    std::vector<uuid> ids;
    std::string cursor;
};

TEST(cursor, a_good_cursor_decodes_to_the_last_sequence_and_the_scope) {
    cursor_fixture f;
    auto d = f.server.eng.decode_cursor(f.cursor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->seq, engine::last_seq(f.server.db));
    EXPECT_EQ(d->scope_fingerprint, worker("tab-a").where.fingerprint());
    auto again = f.server.pull(worker("tab-a"), pull_request{f.cursor, 10});
    EXPECT_TRUE(again.complete);
    EXPECT_FALSE(again.reset);
    EXPECT_TRUE(again.changes.empty());
    // Opaque, but printable and URL-safe.
    for (char c : f.cursor)
        EXPECT_NE(std::strchr(base64url_alphabet, c), nullptr) << f.cursor;
}

TEST(cursor, forged_cursors_are_bad) {
    cursor_fixture f;
    auto good = *f.server.eng.decode_cursor(f.cursor);
    const std::string fp = good.scope_fingerprint, ep = good.epoch;
    const std::vector<std::string> forged = {
        "x",
        "!!!!",
        "v1",
        to_base64url("v1"),
        to_base64url("v1." + ep + ".5." + fp),                                  // no MAC
        to_base64url("v1." + ep + ".5." + fp + ".0000000000000000"),            // wrong MAC
        to_base64url("v1." + ep + ".0." + fp + ".0000000000000000"),            //
        to_base64url("v2." + ep + ".5." + fp + ".0000000000000000"),            // unknown version
        to_base64url("v1." + ep + ".-1." + fp + ".0000000000000000"),           // negative
        to_base64url("v1." + ep + ".5x." + fp + ".0000000000000000"),           // not a number
        to_base64url("v1." + ep + ".99999999999999999999." + fp + ".00000000"), // overflow
        to_base64url("v1." + ep + ".5." + fp + ".0000000000000000.extra"),      // extra part
        to_base64url("v1." + ep + ".5" + std::string(1, '\0') + "." + fp + ".0000000000000000"),
        std::string(513, 'A'), // over the size limit
        f.cursor + "=",        // padding
        f.cursor + " ",
    };
    for (const auto& c : forged) {
        auto d = f.server.eng.decode_cursor(c);
        EXPECT_FALSE(d) << c;
        EXPECT_TRUE(f.is_bad_cursor(c)) << c;
    }
    // A well-formed cursor with a MAC of this database but a sequence it never reached: the
    // database was restored from a backup. The tablet starts over instead of being stuck.
    auto future =
        f.server.eng.encode_cursor(engine::last_seq(f.server.db) + 10, worker("tab-a").where);
    EXPECT_FALSE(f.is_bad_cursor(future));
    auto restored = f.server.pull(worker("tab-a"), pull_request{future, 10});
    EXPECT_TRUE(restored.reset);
    EXPECT_EQ(restored.reset_reason, "database_restored");
    // The empty cursor is the first pull, not a bad one.
    EXPECT_FALSE(f.is_bad_cursor(""));
}

TEST(cursor, truncated_cursors_are_bad) {
    cursor_fixture f;
    for (std::size_t n = 1; n < f.cursor.size(); ++n) {
        auto c = f.cursor.substr(0, n);
        EXPECT_TRUE(f.is_bad_cursor(c)) << n << ": " << c;
        auto tail = f.cursor.substr(n);
        EXPECT_TRUE(f.is_bad_cursor(tail)) << n << ": " << tail;
    }
}

TEST(cursor, changed_characters_never_pass_as_a_valid_cursor_of_this_database) {
    // Every single-character change. Inside the database id (epoch) the server cannot check the
    // MAC (the cursor may come from another database) and answers with a reset, which is safe;
    // everywhere else the MAC must refuse it. The only tolerated exception is a change of the
    // unused low bits of the last character, which decodes to the very same cursor.
    cursor_fixture f;
    auto good = *f.server.eng.decode_cursor(f.cursor);
    int bad = 0, reset = 0, same = 0;
    for (std::size_t i = 0; i < f.cursor.size(); ++i)
        for (const char* p = base64url_alphabet; *p; ++p) {
            if (*p == f.cursor[i])
                continue;
            auto c = f.cursor;
            c[i] = *p;
            auto r = f.server.eng.pull(f.server.db, worker("tab-a"), pull_request{c, 10});
            if (!r) {
                EXPECT_EQ(r.error(), make_error_code(errc::bad_cursor));
                ++bad;
            } else if (r->reset) {
                EXPECT_EQ(r->reset_reason, "database_changed") << i;
                ++reset;
            } else {
                auto d = f.server.eng.decode_cursor(c);
                ASSERT_TRUE(d);
                EXPECT_EQ(i, f.cursor.size() - 1) << "accepted a changed cursor: " << c;
                EXPECT_EQ(d->epoch, good.epoch);
                EXPECT_EQ(d->seq, good.seq);
                EXPECT_EQ(d->scope_fingerprint, good.scope_fingerprint);
                ++same;
            }
        }
    EXPECT_GT(bad, 1000);
    EXPECT_LT(same, 64);
    // Bit flips in the decoded text, re-encoded canonically: always refused or reset.
    std::string raw;
    {
        // Rebuild the payload from its fields (the MAC is the last 16 hex digits).
        auto d = good;
        std::string payload =
            "v1." + d.epoch + "." + std::to_string(d.seq) + "." + d.scope_fingerprint + ".";
        // Recover the MAC from the cursor by decoding through a trial: the payload prefix is
        // known, so the remaining characters of the decoded text are the MAC.
        std::string decoded = from_base64url(f.cursor);
        ASSERT_EQ(decoded.substr(0, payload.size()), payload);
        raw = decoded;
    }
    for (std::size_t i = 0; i < raw.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            auto flipped = raw;
            flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
            auto r = f.server.eng.pull(f.server.db, worker("tab-a"),
                                       pull_request{to_base64url(flipped), 10});
            EXPECT_TRUE(!r || (r->reset && r->reset_reason == "database_changed"))
                << "byte " << i << " bit " << bit;
        }
    (void)reset;
}

TEST(cursor, cursor_from_another_database_resets) {
    cursor_fixture f, other;
    auto r = other.server.pull(worker("tab-a"), pull_request{f.cursor, 100});
    EXPECT_TRUE(r.reset);
    EXPECT_EQ(r.reset_reason, "database_changed");
    // The reset answer starts from scratch: everything of the other database.
    EXPECT_EQ(r.changes.size(), other.ids.size());
    EXPECT_TRUE(r.complete);
    auto d = other.server.eng.decode_cursor(r.cursor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->seq, engine::last_seq(other.server.db));
}

TEST(cursor, scope_change_resets) {
    cursor_fixture f;
    for (const auto& moved :
         {worker("tab-a", town_b), worker("tab-a", town_a, {village_a1}), worker("tab-a", "")}) {
        auto r = f.server.pull(moved, pull_request{f.cursor, 100});
        EXPECT_TRUE(r.reset) << moved.where.township;
        EXPECT_EQ(r.reset_reason, "scope_changed");
    }
    // Village order does not matter to the fingerprint.
    auto two = f.server.pull(worker("tab-a", town_a, {village_a1, village_a2}), {});
    auto r = f.server.pull(worker("tab-a", town_a, {village_a2, village_a1}),
                           pull_request{two.cursor, 100});
    EXPECT_FALSE(r.reset);
}

TEST(cursor, reset_keeps_the_unsent_outbox_and_converges) {
    cursor_fixture f;
    replica b(":memory:", test_catalog(), "tab-b", f.wall.fn(), 2);
    f.server.sync(b, worker("tab-b"));
    ASSERT_TRUE(b.update(f.ids[0], {{"note", "pending"}}));
    // b's worker moves to village 1 only: the next pull resets.
    auto moved = worker("tab-b", town_a, {village_a1});
    auto r = f.server.pull(moved, b.next_pull());
    ASSERT_TRUE(r.reset);
    b.apply_pull_result(r);
    EXPECT_EQ(b.pending_count(), 1u);
    ASSERT_TRUE(b.get(f.ids[0]));
    EXPECT_EQ(b.get(f.ids[0])->fields.at("note"), json::value("pending"));
    f.server.sync(b, moved);
    EXPECT_EQ(b.pending_count(), 0u);
    EXPECT_EQ(stored_fields(f.server, f.ids[0]).at("note"), json::value("pending"));
    EXPECT_EQ(b.content_hash(), f.server.hash(moved.where));
}

TEST(cursor, purged_tombstones_past_the_cursor_reset) {
    engine_config cfg;
    cfg.tombstone_retention_ms = 1000;
    cursor_fixture f(cfg);
    replica a(":memory:", test_catalog(), "tab-a2", f.wall.fn(), 3);
    replica b(":memory:", test_catalog(), "tab-b", f.wall.fn(), 4);
    f.server.sync(a, worker("tab-a2"));
    f.server.sync(b, worker("tab-b"));
    const std::string before_delete = f.server.pull(worker("tab-b"), {}).cursor;
    ASSERT_TRUE(a.remove(f.ids[1]));
    f.server.sync(a, worker("tab-a2"));
    const std::string at_delete = f.server.pull(worker("tab-b"), {}).cursor;
    f.wall.ms += 10;
    ASSERT_TRUE(a.update(f.ids[2], {{"count", 4}}));
    f.server.sync(a, worker("tab-a2"));
    const std::string after_delete = f.server.pull(worker("tab-b"), {}).cursor;

    // Within the retention nothing is purged and every cursor stays good.
    {
        sql::transaction tx(f.server.db);
        EXPECT_EQ(f.server.eng.purge_tombstones(f.server.db, f.wall.ms), 0u);
        tx.commit();
    }
    EXPECT_FALSE(f.server.pull(worker("tab-b"), pull_request{before_delete, 10}).reset);

    f.wall.ms += 5000;
    {
        sql::transaction tx(f.server.db);
        EXPECT_EQ(f.server.eng.purge_tombstones(f.server.db, f.wall.ms), 1u);
        tx.commit();
    }
    EXPECT_EQ(f.server.count("SELECT count(*) FROM records WHERE deleted = 1"), 0);
    auto r = f.server.pull(worker("tab-b"), pull_request{before_delete, 10});
    EXPECT_TRUE(r.reset);
    EXPECT_EQ(r.reset_reason, "tombstones_expired");
    // A cursor that has seen the tombstone, or came later, goes on.
    EXPECT_FALSE(f.server.pull(worker("tab-b"), pull_request{at_delete, 10}).reset);
    EXPECT_FALSE(f.server.pull(worker("tab-b"), pull_request{after_delete, 10}).reset);
    // b still holds the purged record: through the reset it drops it and converges.
    ASSERT_TRUE(b.get(f.ids[1]));
    f.server.sync(b, worker("tab-b"));
    EXPECT_FALSE(b.get(f.ids[1]));
    EXPECT_EQ(b.content_hash(), f.server.hash(worker("tab-b").where));
}

// A village-restricted worker holds a record of their village; another worker moves it to a
// village outside that scope. The pull filters the record out by its new village, so the
// restricted tablet is never told it left, and keeps showing it (with stale content) forever:
// its content hash differs from the server's for its scope.
TEST(cursor, record_moved_out_of_a_village_scope_leaves_the_restricted_replica) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica c(":memory:", test_catalog(), "tab-c");
    const auto narrow = worker("tab-c", town_a, {village_a1});
    auto id = *a.create("item", item("moves", town_a, village_a1));
    server.sync(a, worker("tab-a"));
    server.sync(c, narrow);
    ASSERT_TRUE(c.get(id));
    ASSERT_TRUE(a.update(id, {{"village", village_a2}, {"note", "moved"}}));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(stored_fields(server, id).at("village"), json::value(village_a2));
    server.sync(c, narrow);
    EXPECT_FALSE(c.get(id)) << "still shown: "
                            << json::serialize(c.get(id) ? c.get(id)->fields : json::object{});
    EXPECT_EQ(c.content_hash(), server.hash(narrow.where));
}

// ---- Completeness under a concurrent writer. ----

struct seen_change {
    std::uint64_t seq;
    json::object fields;
    json::object clocks;
};

TEST(cursor, reader_never_misses_or_repeats_a_change_while_the_writer_commits) {
    temp_dir dir;
    const std::string path = dir.file("district.db");
    manual_clock wall; // fixed time: clocks below are all within the bound
    server_harness server(path, {}, wall.fn());
    writer w(sql::connection(path, sql::open_mode::read_write));
    engine& eng = server.eng;
    const auto who = worker("tab-w");

    constexpr int pushes = 300;
    std::atomic<bool> writer_done{false};
    std::atomic<int> acked{0}, failed{0};
    std::vector<uuid> ids;

    std::thread producer([&] {
        std::mt19937_64 rng(77);
        uuid_v7_generator gen(5);
        std::map<uuid, hlc> last_clock;
        std::uint64_t seq = 0;
        std::uint32_t tick = 0;
        for (int p = 0; p < pushes; ++p) {
            push_request req;
            req.schema_version = 1;
            int n = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < n; ++k) {
                mutation m;
                m.seq = ++seq;
                m.collection = "item";
                hlc clock{wall.ms, ++tick, who.device};
                if (ids.empty() || rng() % 3 == 0) {
                    m.id = gen.make(wall.ms);
                    ids.push_back(m.id);
                    for (const auto& kv : item("r" + std::to_string(seq)))
                        m.fields.emplace_back(std::string(kv.key()),
                                              field_write{kv.value(), clock, std::nullopt});
                } else {
                    m.id = ids[rng() % ids.size()];
                    m.fields.emplace_back("count", field_write{json::value(seq % 1000), clock,
                                                               std::optional(last_clock[m.id])});
                }
                last_clock[m.id] = clock;
                req.mutations.push_back(std::move(m));
            }
            submit_push(w, eng, who, std::move(req), [&](result<push_result> r) {
                bool ok = r && std::all_of(r->acks.begin(), r->acks.end(), [](const auto& a) {
                              return a.status == ack_status::applied;
                          });
                (ok ? acked : failed)++;
            });
            if (rng() % 8 == 0)
                std::this_thread::yield();
        }
        // Wait for the last completion through the queue itself.
        (void)w.run_sync([](sql::connection&) {});
        writer_done = true;
    });

    // The reader: its own read-only connection, small pages, in a loop.
    sql::connection rc(path, sql::open_mode::read_only);
    std::mt19937_64 rng(91);
    std::string cursor;
    std::uint64_t last_seq_seen = 0;
    std::set<std::pair<uuid, std::uint64_t>> seen;
    std::map<uuid, seen_change> state;
    struct snapshot {
        std::uint64_t high;
        std::map<uuid, std::uint64_t> latest;
    };
    std::vector<snapshot> snapshots;
    int pages = 0, completes = 0;
    bool final_complete = false;
    while (!final_complete) {
        bool done_before = writer_done.load();
        const auto limit = 1 + static_cast<std::uint32_t>(rng() % 5);
        auto r = eng.pull(rc, who, pull_request{cursor, limit});
        ASSERT_TRUE(r) << r.error().message();
        ASSERT_FALSE(r->reset);
        ++pages;
        for (const auto& c : r->changes) {
            ASSERT_GT(c.seq, last_seq_seen) << "repeated or out of order";
            last_seq_seen = c.seq;
            ASSERT_TRUE(seen.emplace(c.id, c.seq).second);
            state[c.id] = seen_change{c.seq, c.fields, c.clocks};
        }
        auto d = eng.decode_cursor(r->cursor);
        ASSERT_TRUE(d);
        if (r->complete) {
            ++completes;
            EXPECT_GE(d->seq, last_seq_seen);
            snapshot s{d->seq, {}};
            for (const auto& [id, ch] : state)
                s.latest[id] = ch.seq;
            if (snapshots.size() < 400)
                snapshots.push_back(std::move(s));
            else
                snapshots.back() = std::move(s); // always keep the last one
            final_complete = done_before;
        } else {
            EXPECT_EQ(r->changes.size(), limit) << "an incomplete page must be full";
            EXPECT_EQ(d->seq, last_seq_seen) << "an incomplete page resumes after its last row";
        }
        cursor = r->cursor;
    }
    producer.join();
    w.stop();

    EXPECT_EQ(acked.load(), pushes);
    EXPECT_EQ(failed.load(), 0);
    // The final state equals the server's, record by record.
    {
        sql::statement s(server.db.handle(), "SELECT id, seq, fields, clocks FROM records");
        std::size_t n = 0;
        while (s.step()) {
            ++n;
            auto id = *uuid::from_blob(s.blob(0));
            auto it = state.find(id);
            ASSERT_NE(it, state.end()) << "missed " << id.to_string();
            EXPECT_EQ(it->second.seq, static_cast<std::uint64_t>(s.int64(1)));
            EXPECT_EQ(json::serialize(it->second.fields), s.text(2));
            EXPECT_EQ(it->second.clocks, json::parse(expanded_clocks_text(s.text(2), s.text(3))));
        }
        EXPECT_EQ(n, state.size());
        EXPECT_EQ(n, ids.size());
    }
    // Each `complete` answer covered exactly the commits up to its high-water mark: for every
    // record, the newest change at or below the mark is what the reader held then.
    std::set<std::uint64_t> committed_seqs{0};
    std::map<std::uint64_t, uuid> record_of_seq;
    {
        sql::statement s(server.db.handle(),
                         "SELECT h.seq, r.id FROM history h JOIN records r ON r.rid = h.rid");
        while (s.step()) {
            auto seq = static_cast<std::uint64_t>(s.int64(0));
            committed_seqs.insert(seq);
            record_of_seq.emplace(seq, *uuid::from_blob(s.blob(1)));
        }
    }
    for (const auto& snap : snapshots) {
        EXPECT_TRUE(committed_seqs.count(snap.high)) << "mark " << snap.high;
        std::map<uuid, std::uint64_t> expected;
        for (const auto& [seq, id] : record_of_seq)
            if (seq <= snap.high)
                expected[id] = seq; // ordered by seq: the newest wins
        EXPECT_EQ(snap.latest, expected) << "at mark " << snap.high;
    }
    EXPECT_GT(completes, 0);
    EXPECT_EQ(snapshots.back().high, engine::last_seq(server.db));
    std::printf("[ stats    ] %d pages, %d complete answers, %zu changes seen\n", pages, completes,
                seen.size());
}

} // namespace
} // namespace fieldsync
