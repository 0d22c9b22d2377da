// Convergence, exactly-once and no-silent-loss as a property test: for many seeds, a few tablet
// replicas make random creates, updates (overlapping fields of the same records) and deletes,
// and exchange them with one server engine in random orders, with duplicated, reordered and
// partial pushes and paged pulls. Then everyone syncs until quiet, and:
//   - every replica's content hash equals the server's for its scope, and no outbox is left;
//   - every mutation was applied at most once (history) and each device's number is complete;
//   - every value written is accounted for: it is the stored value, or a conflict row keeps it,
//     or a later write by someone who had seen it replaced it. Anything else is a silent loss.
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

constexpr std::int64_t year_ms = std::int64_t{365} * 24 * 3600 * 1000;

// One field write made on a tablet, with the value the tablet showed before it (values of the
// tracked fields are unique per run, so a value names its write).
struct write_log {
    uuid id;
    std::string field;
    json::value value;
    std::optional<json::value> prior;
    std::string device;
};

struct options {
    bool lose_acks = false; // some push responses never reach the tablet
    int steps_min = 30;
    int steps_max = 70;
};

struct run_stats {
    int writes = 0;
    int conflicts = 0;
    int gaps = 0;
    int duplicates = 0;
    int restamps = 0;
    int deletes = 0;
};

const char* const tracked[] = {"name", "count", "note"};

class simulation {
public:
    simulation(std::uint64_t seed, options opt)
        : rng_(seed), opt_(opt), server_(":memory:", {}, server_wall_.fn()) {
        // Clock skews: right, three years behind, twenty minutes ahead (restamped), a little
        // ahead. The last tablet belongs to a district-wide user.
        const std::int64_t skews[] = {0, -3 * year_ms, 20 * 60 * 1000, 2500};
        int n = 3 + static_cast<int>(rng_() % 2);
        for (int i = 0; i < n; ++i) {
            auto t = std::make_unique<tablet>();
            t->skew = skews[i];
            t->wall.ms = server_wall_.ms + t->skew;
            std::string dev = "tab-" + std::to_string(i);
            t->r = std::make_unique<replica>(":memory:", test_catalog(), dev, t->wall.fn(),
                                             seed * 31 + static_cast<std::uint64_t>(i));
            t->who = worker(dev, i == 3 ? "" : town_a);
            tabs_.push_back(std::move(t));
        }
    }

    void run() {
        int steps = opt_.steps_min +
                    static_cast<int>(
                        rng_() % static_cast<std::uint64_t>(opt_.steps_max - opt_.steps_min + 1));
        for (int s = 0; s < steps; ++s) {
            advance_time();
            auto& t = *tabs_[rng_() % tabs_.size()];
            auto roll = rng_() % 100;
            if (roll < 45)
                edit(t);
            else if (roll < 75)
                push(t);
            else
                pull_page(t);
        }
    }

    // Everyone pushes everything and pulls to the end, twice around.
    void quiesce() {
        for (int round = 0; round < 3; ++round)
            for (auto& t : tabs_) {
                advance_time();
                server_.sync(*t->r, t->who);
            }
    }

    void check(run_stats& stats) {
        // 1. Convergence.
        for (auto& t : tabs_) {
            EXPECT_EQ(t->r->pending_count(), 0u) << t->who.device;
            EXPECT_EQ(t->r->content_hash(), server_.hash(t->who.where)) << t->who.device;
        }
        // Nothing here was invalid, so nothing may have been quarantined.
        EXPECT_EQ(server_.count("SELECT count(*) FROM quarantine"), 0);
        // 2. Exactly once: each device's numbers are all applied, each at most once.
        for (auto& t : tabs_) {
            sql::statement s(server_.db.handle(), "SELECT last_seq FROM devices WHERE device = ?");
            s.bind(1, t->who.device);
            std::int64_t last = s.step() ? s.int64(0) : 0;
            EXPECT_EQ(last, t->mutations) << t->who.device;
        }
        EXPECT_EQ(server_.count("SELECT count(*) FROM (SELECT device, mutation_seq FROM history "
                                "GROUP BY device, mutation_seq HAVING count(*) > 1)"),
                  0);
        // 3. No silent loss.
        std::set<std::tuple<std::string, std::string, std::string>> superseded; // id, field, value
        for (const auto& w : writes_)
            if (w.prior)
                superseded.emplace(w.id.to_string(), w.field, json::serialize(*w.prior));
        std::set<std::tuple<std::string, std::string, std::string>> in_conflict;
        {
            sql::statement s(server_.db.handle(),
                             "SELECT r.id, c.field, c.loser_value, c.winner_value FROM conflicts c "
                             "JOIN records r ON r.rid = c.rid");
            while (s.step()) {
                auto id = uuid::from_blob(s.blob(0))->to_string();
                in_conflict.emplace(id, std::string(s.text(1)), std::string(s.text(2)));
                in_conflict.emplace(id, std::string(s.text(1)), std::string(s.text(3)));
                ++stats.conflicts;
            }
        }
        for (const auto& w : writes_) {
            auto fields = stored_fields(server_, w.id);
            auto text = json::serialize(w.value);
            auto key = std::make_tuple(w.id.to_string(), w.field, text);
            const auto* now = fields.if_contains(w.field);
            bool stored = now && *now == w.value;
            bool kept = in_conflict.count(key) > 0;
            bool replaced_knowingly = superseded.count(key) > 0;
            if (!(stored || kept || replaced_knowingly) &&
                std::getenv("FIELDSYNC_DEBUG_CONVERGENCE")) {
                for (const auto& x : writes_)
                    if (x.id == w.id && x.field == w.field)
                        std::printf("write %s %s=%s prior=%s\n", x.device.c_str(), x.field.c_str(),
                                    json::serialize(x.value).c_str(),
                                    x.prior ? json::serialize(*x.prior).c_str() : "none");
                sql::statement h(server_.db.handle(),
                                 "SELECT h.seq, h.device, h.mutation_seq, h.changes FROM history h "
                                 "JOIN records r ON r.rid = h.rid WHERE r.id = ? ORDER BY h.seq");
                h.bind(1, w.id.span());
                while (h.step())
                    std::printf("hist %lld %s #%lld %s\n", (long long)h.int64(0),
                                std::string(h.text(1)).c_str(), (long long)h.int64(2),
                                std::string(h.text(3)).c_str());
                sql::statement c(
                    server_.db.handle(),
                    "SELECT field, winner_value, winner_clock, loser_value, loser_clock "
                    "FROM conflicts");
                while (c.step())
                    std::printf("conflict %s w=%s@%s l=%s@%s\n", std::string(c.text(0)).c_str(),
                                std::string(c.text(1)).c_str(), std::string(c.text(2)).c_str(),
                                std::string(c.text(3)).c_str(), std::string(c.text(4)).c_str());
                std::printf("clocks %s\n", json::serialize(stored_clocks(server_, w.id)).c_str());
            }
            EXPECT_TRUE(stored || kept || replaced_knowingly)
                << "silently lost: " << w.device << " wrote " << w.field << "=" << text << " on "
                << w.id.to_string() << "; stored now: " << (now ? json::serialize(*now) : "none");
        }
        stats.writes += static_cast<int>(writes_.size());
        stats.gaps += gaps_;
        stats.duplicates += duplicates_;
        stats.restamps += restamps_;
        stats.deletes += deletes_;
    }

private:
    struct tablet {
        manual_clock wall;
        std::int64_t skew = 0;
        std::unique_ptr<replica> r;
        principal who;
        std::int64_t mutations = 0;
        std::vector<push_request> sent;
    };

    void advance_time() {
        server_wall_.ms += static_cast<std::int64_t>(rng_() % 40);
        for (auto& t : tabs_)
            t->wall.ms = server_wall_.ms + t->skew;
    }

    json::value unique_value(std::string_view field) {
        int k = next_value_++;
        EXPECT_LE(k, 1000); // count's range
        if (field == "count")
            return json::value(k);
        return json::value((field == "name" ? "n" : "t") + std::to_string(k));
    }

    void log_write(tablet& t, const uuid& id, std::string_view field, const json::value& v,
                   const std::optional<json::value>& prior) {
        writes_.push_back({id, std::string(field), v, prior, t.who.device});
    }

    void edit(tablet& t) {
        auto live = t.r->list("item");
        auto roll = rng_() % 100;
        if (live.empty() || roll < 25) {
            auto fields = item("", town_a, rng_() % 2 ? village_a1 : village_a2);
            fields["name"] = unique_value("name");
            if (rng_() % 2)
                fields["count"] = unique_value("count");
            auto id = t.r->create("item", fields);
            ASSERT_TRUE(id);
            ++t.mutations;
            for (const char* f : tracked)
                if (const auto* v = fields.if_contains(f))
                    log_write(t, *id, f, *v, std::nullopt);
            return;
        }
        // Prefer records other tablets touch too: the oldest ids are shared by everyone.
        const auto& rec = live[rng_() % std::min<std::size_t>(live.size(), 3)];
        if (roll < 35) {
            ASSERT_TRUE(t.r->remove(rec.id));
            ++t.mutations;
            ++deletes_;
            return;
        }
        json::object change;
        int n = 1 + static_cast<int>(rng_() % 3);
        for (int i = 0; i < n; ++i) {
            switch (rng_() % 5) {
            case 0:
                change["name"] = unique_value("name");
                break;
            case 1:
                change["count"] = unique_value("count");
                break;
            case 2:
                change["note"] = unique_value("note");
                break;
            case 3:
                change["kind"] = rng_() % 2 ? "a" : "b";
                break;
            default:
                change["village"] = rng_() % 2 ? village_a1 : village_a2;
            }
        }
        ASSERT_TRUE(t.r->update(rec.id, change));
        ++t.mutations;
        for (const char* f : tracked)
            if (const auto* v = change.if_contains(f)) {
                const auto* p = rec.fields.if_contains(f);
                log_write(t, rec.id, f, *v, p ? std::optional(*p) : std::nullopt);
            }
    }

    void note_result(const push_result& res) {
        for (const auto& a : res.acks) {
            if (a.status == ack_status::gap)
                ++gaps_;
            if (!a.restamped.empty())
                ++restamps_;
        }
        duplicates_ += static_cast<int>(res.duplicates);
    }

    push_result send(tablet& t, const push_request& req) {
        auto res = server_.push(t.who, req);
        note_result(res);
        t.sent.push_back(req);
        if (t.sent.size() > 16)
            t.sent.erase(t.sent.begin());
        return res;
    }

    void push(tablet& t) {
        auto req = t.r->next_push(1 + rng_() % 4);
        if (req.mutations.empty())
            return;
        auto mode = rng_() % 100;
        if (mode < 20 && req.mutations.size() >= 2) {
            // Reordered: a later part arrives first and meets a gap, then the earlier part.
            auto k = 1 + rng_() % (req.mutations.size() - 1);
            push_request first{
                req.schema_version,
                {req.mutations.begin(), req.mutations.begin() + static_cast<std::ptrdiff_t>(k)}};
            push_request second{
                req.schema_version,
                {req.mutations.begin() + static_cast<std::ptrdiff_t>(k), req.mutations.end()}};
            t.r->apply_push_result(second, send(t, second));
            t.r->apply_push_result(first, send(t, first));
        } else if (mode < 40 && !t.sent.empty()) {
            // Duplicated: an old push arrives again (a retry that crossed its answer).
            t.r->apply_push_result(req, send(t, req));
            const auto old = t.sent[rng_() % t.sent.size()];
            t.r->apply_push_result(old, send(t, old));
        } else if (mode < 55 && opt_.lose_acks) {
            (void)send(t, req); // the answer is lost on the way back
        } else {
            t.r->apply_push_result(req, send(t, req));
        }
    }

    void pull_page(tablet& t) {
        auto res = server_.pull(t.who, t.r->next_pull(1 + static_cast<std::uint32_t>(rng_() % 4)));
        t.r->apply_pull_result(res);
    }

    std::mt19937_64 rng_;
    options opt_;
    manual_clock server_wall_;
    server_harness server_;
    std::vector<std::unique_ptr<tablet>> tabs_;
    std::vector<write_log> writes_;
    int next_value_ = 1;
    int gaps_ = 0, duplicates_ = 0, restamps_ = 0, deletes_ = 0;
};

run_stats run_seeds(std::uint64_t first, int seeds, options opt) {
    run_stats stats;
    for (std::uint64_t seed = first; seed < first + static_cast<std::uint64_t>(seeds); ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        simulation sim(seed, opt);
        sim.run();
        if (::testing::Test::HasFatalFailure())
            break;
        sim.quiesce();
        sim.check(stats);
        if (::testing::Test::HasFailure())
            break; // the first failing seed is the one to look at
    }
    return stats;
}

TEST(convergence, random_edits_duplicated_and_reordered_pushes_converge_without_loss) {
    auto stats = run_seeds(1, 200, options{});
    // The property is only meaningful if the runs produced the situations it is about.
    EXPECT_GT(stats.conflicts, 50);
    EXPECT_GT(stats.gaps, 50);
    EXPECT_GT(stats.duplicates, 50);
    EXPECT_GT(stats.restamps, 10);
    EXPECT_GT(stats.deletes, 50);
    std::printf("[ stats    ] %d writes, %d conflicts kept, %d gaps, %d duplicates, %d restamped, "
                "%d deletes\n",
                stats.writes, stats.conflicts, stats.gaps, stats.duplicates, stats.restamps,
                stats.deletes);
}

// Disabled: fails (first at seed 1064) because of the replica bug reproduced in
// lost_push_answer_then_pull_then_partial_resend_keeps_the_newest_own_value below.
// Set FIELDSYNC_DEBUG_CONVERGENCE=1 to print the history of a lost value.
TEST(convergence, also_when_push_answers_are_lost) {
    auto stats = run_seeds(1000, 200, options{true});
    EXPECT_GT(stats.conflicts, 50);
}

// The tablet's answer to push [m2, m3] is lost; it pulls (its confirmed state now has m3's
// value); then it resends from its outbox in a smaller batch [m2]. The server answers m2 as a
// duplicate with last_applied = 3. apply_push_result folds m2's older value over m3's newer one
// (the "newer value already confirmed" guard skips only other devices' clocks), and deletes m3
// from the outbox as applied without folding it. The record's seq is behind the tablet's cursor,
// so no pull repairs it: the tablet shows a value its user already replaced, and diverges.
TEST(convergence, lost_push_answer_then_pull_then_partial_resend_keeps_the_newest_own_value) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto id = *a.create("item", item("x"));
    server.sync(a, worker("tab-a"));
    ASSERT_TRUE(a.update(id, {{"count", 2}}));
    ASSERT_TRUE(a.update(id, {{"count", 3}}));
    auto both = a.next_push();
    ASSERT_EQ(both.mutations.size(), 2u);
    (void)server.push(worker("tab-a"), both); // applied; the answer never arrives
    for (bool complete = false; !complete;) {
        auto res = server.pull(worker("tab-a"), a.next_pull());
        a.apply_pull_result(res);
        complete = res.complete;
    }
    EXPECT_EQ(a.get(id)->fields.at("count"), json::value(3));
    auto one = a.next_push(1); // [m2] only
    ASSERT_EQ(one.mutations.size(), 1u);
    a.apply_push_result(one, server.push(worker("tab-a"), one));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(stored_fields(server, id).at("count"), json::value(3));
    EXPECT_EQ(a.get(id)->fields.at("count"), json::value(3)); // actual: 2
    EXPECT_EQ(a.content_hash(), server.hash());
}

} // namespace
} // namespace fieldsync
