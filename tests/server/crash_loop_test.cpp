// A crash loop: several tablets push and pull concurrently while fieldsyncd is killed with SIGKILL
// at random moments and restarted on the same data folder, many times. After every restart the
// database is intact, every acknowledged mutation is present exactly once, and every push is
// all there or not there at all; at the end every tablet converges with the server.
//
// FIELDSYNC_CRASH_SEED (default: random, printed) and FIELDSYNC_CRASH_CYCLES (default 50) replay
// or lengthen a run.
#include "child_process_server.hpp"
#include "server_fixture.hpp"
#include "sync/protocol.hpp"
#include "sync/rollups.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// What one tablet knows about its own mutations. Written by the tablet's thread, read by the
// main thread only while the tablet is parked (see crash_loop::park).
struct tablet_book {
    std::uint64_t acked_max = 0;           // every seq <= this was acknowledged
    std::set<std::uint64_t> unacked_ends;  // last seq of each push sent since, unanswered
    std::map<std::uint64_t, uuid> creates; // seq of a create -> its record id
    std::set<uuid> created_ids;            // ids made here whose create seq is not known yet
    std::uint64_t pushes_acked = 0;
    std::uint64_t answers_lost = 0;
};

struct tablet {
    tablet_login login;
    std::unique_ptr<replica> rep;
    tablet_book book;
    const char* town = town_a;
    const char* village = village_a1;
};

// The servers the tablets talk to, one generation per start, and the tablets' parking lot.
class crash_loop {
public:
    // Main thread: a server is up on `port`; wakes the parked tablets.
    void publish(unsigned short port, std::string cert) {
        std::lock_guard lock(mutex_);
        port_ = port;
        cert_ = std::move(cert);
        ++generation_;
        parked_ = 0;
        cv_.notify_all();
    }
    // Tablet thread: its connection failed (the server died); waits for the next generation.
    // Returns false when the loop is over.
    bool park(std::uint64_t& seen, unsigned short& port, std::string& cert) {
        std::unique_lock lock(mutex_);
        if (seen == generation_) {
            ++parked_;
            cv_.notify_all();
            cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        }
        seen = generation_;
        port = port_;
        cert = cert_;
        return !stop_;
    }
    // Main thread: waits until `n` tablets are parked (every connection noticed the kill).
    void wait_parked(std::size_t n) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || parked_ >= n; });
    }
    void acked() {
        std::lock_guard lock(mutex_);
        ++acks_;
        cv_.notify_all();
    }
    // Main thread: waits until `n` more pushes were acknowledged in this generation, or every
    // one of the `tablets` is parked (each lost an answer and waits for the next server).
    void wait_acks(std::uint64_t n, std::size_t tablets) {
        std::unique_lock lock(mutex_);
        auto target = acks_ + n;
        cv_.wait(lock, [&] { return stop_ || acks_ >= target || parked_ >= tablets; });
    }
    void stop() {
        std::lock_guard lock(mutex_);
        stop_ = true;
        cv_.notify_all();
    }
    bool stopping() {
        std::lock_guard lock(mutex_);
        return stop_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::uint64_t generation_ = 0; // guarded by mutex_
    unsigned short port_ = 0;      // guarded by mutex_
    std::string cert_;             // guarded by mutex_
    std::size_t parked_ = 0;       // guarded by mutex_
    std::uint64_t acks_ = 0;       // guarded by mutex_
    bool stop_ = false;            // guarded by mutex_
};

// The answer to a push that the tablet never saw (the link dropped after the server stored it).
struct answer_lost : std::runtime_error {
    answer_lost() : std::runtime_error("answer lost") {}
};

// One push of the tablet's outbox (at most 4 mutations), bookkept. Throws when the link breaks,
// and answer_lost when `lose_answer`: the push is stored but the tablet must retry it.
void push_once(https_client& c, tablet& t, bool lose_answer) {
    auto req = t.rep->next_push(4);
    if (req.mutations.empty())
        return;
    for (const auto& m : req.mutations)
        if (t.book.created_ids.erase(m.id))
            t.book.creates[m.seq] = m.id;
    t.book.unacked_ends.insert(req.mutations.back().seq);
    auto reply = c.post("/v1/sync/push", encode(req), t.login.token);
    if (reply.status != 200)
        throw std::runtime_error("push answered " + std::to_string(reply.status) + " " +
                                 reply.body);
    if (lose_answer)
        throw answer_lost();
    auto res = decode_push_result(reply.json);
    if (!res)
        throw std::logic_error("undecodable push result " + reply.body);
    t.rep->apply_push_result(req, *res);
    for (const auto& a : res->acks)
        if (a.status != ack_status::applied)
            throw std::logic_error("a valid mutation was not applied: " + reply.body);
    t.book.acked_max = req.mutations.back().seq;
    t.book.unacked_ends.clear();
    ++t.book.pushes_acked;
}

void pull_all(https_client& c, tablet& t) {
    for (int guard = 0; guard < 1000; ++guard) {
        auto reply = c.post("/v1/sync/pull", encode(t.rep->next_pull(20)), t.login.token);
        if (reply.status != 200)
            throw std::runtime_error("pull answered " + std::to_string(reply.status));
        auto res = decode_pull_result(reply.json);
        if (!res)
            throw std::logic_error("undecodable pull result");
        t.rep->apply_pull_result(*res);
        if (res->complete)
            return;
    }
}

// A tablet's field work: new records and edits of what it has (its own and pulled ones, so
// tablets of one township edit the same records), households with a home visit (the visits
// move the month's rollup figures), pushed in small batches, pulled now and then.
// One answer in eight is lost on the way back, as on a link that drops, so that stored but
// unanswered pushes are common when the kill comes (the kill itself rarely lands in that gap).
void tablet_thread(tablet& t, crash_loop& loop, std::uint64_t seed, std::string& failure) {
    std::mt19937_64 rng(seed);
    std::uint64_t generation = 0;
    unsigned short port = 0;
    std::string cert;
    int edit = 0;
    bool reconnect = false;
    while (reconnect || loop.park(generation, port, cert)) {
        reconnect = false;
        try {
            https_client c(port, cert);
            for (;;) {
                int creates = static_cast<int>(rng() % 3);
                for (int i = 0; i < creates; ++i) {
                    auto id = t.rep->create("item",
                                            item("n" + std::to_string(++edit), t.town, t.village));
                    if (!id)
                        throw std::logic_error("create failed");
                    t.book.created_ids.insert(*id);
                }
                if (rng() % 3 == 0) { // a household and a visit to it: a rollup figure moves
                    auto h = t.rep->create("household", {{"township", t.town},
                                                         {"village", t.village},
                                                         {"address", "a" + std::to_string(++edit)},
                                                         {"members", 2}});
                    if (!h)
                        throw std::logic_error("create household failed");
                    const int month = 1 + static_cast<int>(rng() % 9);
                    auto v = t.rep->create(
                        "home_visit",
                        {{"township", t.town},
                         {"village", t.village},
                         {"household", h->to_string()},
                         {"visited_at", "2026-0" + std::to_string(month) + "-10T10:00:00+08:00"},
                         {"worker", t.login.user},
                         {"visit_type", "routine"}});
                    if (!v)
                        throw std::logic_error("create home_visit failed");
                    t.book.created_ids.insert(*h);
                    t.book.created_ids.insert(*v);
                }
                if (rng() % 2) {
                    auto all = t.rep->list("item");
                    if (!all.empty()) {
                        const auto& r = all[rng() % all.size()];
                        if (!t.rep->update(r.id, {{"name", "e" + std::to_string(++edit)}}))
                            throw std::logic_error("update failed");
                    }
                }
                push_once(c, t, rng() % 8 == 0);
                loop.acked();
                if (rng() % 4 == 0)
                    pull_all(c, t);
            }
        } catch (const std::logic_error& e) {
            failure = e.what(); // a broken promise, not a killed server
            loop.stop();
            return;
        } catch (const answer_lost&) {
            // Back in signal at once (same server, new connection, the same push again) or only
            // after the next restart (the server dies knowing more than the tablet).
            reconnect = rng() % 2 == 0;
            ++t.book.answers_lost;
        } catch (const std::exception&) {
            // The server died under us: what was not acknowledged stays in the outbox.
        }
    }
}

// After a restart: the file is intact; no device's mutation is applied twice; each tablet's
// pushes are all there or not there at all (the device's last applied number is the end of an
// acknowledged push or of one sent without an answer), every acknowledged create is present once
// and nothing past the last applied number is; the rollups agree with the records.
// `unanswered` counts the tablets whose last push was stored though its answer never arrived.
void check_database(const std::string& path, const std::vector<std::unique_ptr<tablet>>& tablets,
                    const std::string& when, std::uint64_t* unanswered = nullptr) {
    SCOPED_TRACE(when);
    sql::connection db(path, sql::open_mode::read_only);
    // Read without checkpointing on close: the next start finds the log as the server left it.
    sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    ASSERT_EQ(db.integrity_check(), "ok");
    {
        sql::statement dup(db.handle(), "SELECT device, mutation_seq FROM history WHERE "
                                        "mutation_seq IS NOT NULL GROUP BY device, mutation_seq "
                                        "HAVING count(*) > 1");
        ASSERT_FALSE(dup.step()) << "applied twice: " << dup.text(0) << " #" << dup.int64(1);
    }
    {
        rollups r;
        auto diffs = r.check(db);
        ASSERT_TRUE(diffs.empty()) << diffs.front();
    }
    for (const auto& t : tablets) {
        const auto& b = t->book;
        std::uint64_t applied = 0;
        {
            sql::statement s(db.handle(), "SELECT last_seq FROM devices WHERE device = ?");
            s.bind(1, t->login.device);
            if (s.step())
                applied = static_cast<std::uint64_t>(s.int64(0));
        }
        std::string sent;
        for (auto e : b.unacked_ends)
            sent += " " + std::to_string(e);
        ASSERT_TRUE(applied == b.acked_max || b.unacked_ends.count(applied))
            << t->login.device << ": last applied #" << applied << ", acknowledged up to #"
            << b.acked_max << ", unanswered pushes ending at" << sent;
        if (unanswered && applied != b.acked_max)
            ++*unanswered;
        {
            sql::statement s(db.handle(),
                             "SELECT coalesce(max(mutation_seq), 0) FROM history WHERE device = ?");
            s.bind(1, t->login.device);
            ASSERT_TRUE(s.step());
            ASSERT_LE(static_cast<std::uint64_t>(s.int64(0)), applied) << t->login.device;
        }
        // One pass each over the device's history and the record ids (history has no index by
        // device: a query per create would make long runs quadratic).
        std::map<std::uint64_t, std::int64_t> in_history;
        {
            sql::statement h(db.handle(), "SELECT mutation_seq, count(*) FROM history WHERE "
                                          "device = ? AND mutation_seq IS NOT NULL GROUP BY "
                                          "mutation_seq");
            h.bind(1, t->login.device);
            while (h.step())
                in_history[static_cast<std::uint64_t>(h.int64(0))] = h.int64(1);
        }
        sql::statement r(db.handle(), "SELECT count(*) FROM records WHERE id = ?");
        for (const auto& [seq, id] : b.creates) {
            r.bind(1, id.span());
            ASSERT_TRUE(r.step());
            auto in_records = r.int64(0);
            r.reset();
            std::int64_t expected = seq <= applied ? 1 : 0;
            auto h = in_history.find(seq);
            ASSERT_EQ(h == in_history.end() ? 0 : h->second, expected)
                << t->login.device << " #" << seq << " " << id.to_string();
            ASSERT_EQ(in_records, expected)
                << t->login.device << " #" << seq << " " << id.to_string();
        }
    }
}

TEST(crash_loop, sigkill_at_random_moments_loses_no_acknowledged_push_and_tablets_converge) {
    const std::uint64_t seed = env_number("FIELDSYNC_CRASH_SEED", std::random_device{}());
    const std::uint64_t cycles = env_number("FIELDSYNC_CRASH_CYCLES", 50);
    std::cout << "crash loop: FIELDSYNC_CRASH_SEED=" << seed << " FIELDSYNC_CRASH_CYCLES=" << cycles
              << std::endl;
    RecordProperty("seed", std::to_string(seed));

    temp_dir dir;
    const std::string d = dir.path().string();
    const std::string db_path = d + "/fieldsync.db";
    seed_database(d);
    auto srv = std::make_unique<child_process_server>(d);

    std::vector<std::unique_ptr<tablet>> tablets;
    for (const char* u : {"fw_a", "fw_a2", "fw_a", "fw_b"}) {
        auto t = std::make_unique<tablet>();
        t->login = srv->enrol(u);
        t->rep = std::make_unique<replica>(":memory:", test_catalog(), t->login.device);
        if (t->login.user == "fw_b") {
            t->town = town_b;
            t->village = village_b1;
        } else if (tablets.size() == 1) {
            t->village = village_a2;
        }
        tablets.push_back(std::move(t));
    }

    crash_loop loop;
    std::vector<std::string> failures(tablets.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < tablets.size(); ++i)
        threads.emplace_back(tablet_thread, std::ref(*tablets[i]), std::ref(loop), seed + 1 + i,
                             std::ref(failures[i]));

    std::mt19937_64 rng(seed);
    std::uint64_t survived = 0, unanswered = 0;
    std::string trouble; // an exception of the main loop (a restart that failed)
    try {
        for (std::uint64_t cycle = 1; cycle <= cycles; ++cycle) {
            loop.publish(srv->port(), srv->cert());
            loop.wait_acks(1 + rng() % 6, tablets.size());
            // The kill lands anywhere in the pushes that follow: mid-request, mid-commit,
            // mid-answer.
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
            srv->kill9();
            loop.wait_parked(tablets.size());
            if (loop.stopping())
                break;
            srv = std::make_unique<child_process_server>(d);
            check_database(db_path, tablets,
                           "after restart " + std::to_string(cycle) + " (seed " +
                               std::to_string(seed) + ")",
                           &unanswered);
            if (HasFatalFailure())
                break;
            survived = cycle;
        }
    } catch (const std::exception& e) {
        trouble = e.what();
    }
    loop.stop();
    for (auto& th : threads)
        th.join();
    ASSERT_EQ(trouble, "") << "after " << survived << " cycles, seed " << seed;
    for (const auto& f : failures)
        ASSERT_EQ(f, "") << "seed " << seed;
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(survived, cycles);
    std::uint64_t pushes = 0, lost = 0;
    for (const auto& t : tablets) {
        pushes += t->book.pushes_acked;
        lost += t->book.answers_lost;
    }
    std::cout << "crash loop: " << survived << " SIGKILL cycles survived, " << pushes
              << " pushes acknowledged, " << lost << " answers lost, " << unanswered
              << " times a tablet's last push was stored without its answer reaching it"
              << std::endl;

    // The end of the day: every tablet sends what it has left and pulls; twice, so that each
    // also receives what the others sent last.
    for (int round = 0; round < 2; ++round)
        for (auto& t : tablets) {
            https_client c(srv->port(), srv->cert());
            sync_over(c, *t->rep, t->login.token, 4);
            EXPECT_EQ(t->rep->pending_count(), 0u) << t->login.device;
        }
    for (auto& t : tablets) { // all sent and acknowledged now
        auto& b = t->book;
        b.acked_max = 0;
        b.unacked_ends.clear();
        sql::connection db(db_path, sql::open_mode::read_only);
        sql::statement s(db.handle(), "SELECT last_seq FROM devices WHERE device = ?");
        s.bind(1, t->login.device);
        ASSERT_TRUE(s.step());
        b.acked_max = static_cast<std::uint64_t>(s.int64(0));
    }
    check_database(db_path, tablets, "at the end");
    EXPECT_EQ(srv->terminate(), 0);

    sql::connection db(db_path, sql::open_mode::read_only);
    for (const auto& t : tablets)
        for (const auto& id : t->book.created_ids) { // made but never pushed before the end
            sql::statement r(db.handle(), "SELECT count(*) FROM records WHERE id = ?");
            r.bind(1, id.span());
            ASSERT_TRUE(r.step());
            EXPECT_EQ(r.int64(0), 1) << id.to_string();
        }
    { // the rollup check above had figures to check
        sql::statement s(
            db.handle(),
            "SELECT coalesce(sum(value), 0) FROM rollups WHERE indicator = 'home_visits'");
        ASSERT_TRUE(s.step());
        EXPECT_GT(s.int64(0), 0);
    }
    engine eng(test_catalog(), {}, db);
    const auto hash_a = eng.content_hash(db, scope{town_a, {}});
    const auto hash_b = eng.content_hash(db, scope{town_b, {}});
    for (const auto& t : tablets)
        EXPECT_EQ(t->rep->content_hash(), t->town == town_b ? hash_b : hash_a) << t->login.device;
}

} // namespace
} // namespace fieldsync
