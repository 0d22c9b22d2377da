// Hybrid logical clocks: total order, strict text form, the send and receive rules, and the
// two clock promises of the design: a clock far ahead is restamped by the server, and a tablet
// whose clock is years behind still orders its edits after what it has pulled.
#include "sync/hlc.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

constexpr std::int64_t t0 = 1764316800000; // 2025-11-28T08:00:00Z
constexpr std::int64_t year_ms = std::int64_t{365} * 24 * 3600 * 1000;

TEST(hlc, orders_by_ms_then_counter_then_device) {
    EXPECT_LT((hlc{1, 9, "z"}), (hlc{2, 0, "a"}));     // ms first
    EXPECT_LT((hlc{5, 1, "z"}), (hlc{5, 2, "a"}));     // then counter
    EXPECT_LT((hlc{5, 2, "t-1"}), (hlc{5, 2, "t-2"})); // device breaks ties
    EXPECT_EQ((hlc{5, 2, "t-1"}), (hlc{5, 2, "t-1"}));
    EXPECT_NE((hlc{5, 2, "t-1"}), (hlc{5, 2, "t-10"}));
}

TEST(hlc, order_is_total_and_agrees_with_a_lexicographic_model) {
    std::mt19937_64 rng(7);
    std::vector<hlc> v;
    for (int i = 0; i < 300; ++i)
        v.push_back(hlc{static_cast<std::int64_t>(rng() % 4), static_cast<std::uint32_t>(rng() % 3),
                        "d" + std::to_string(rng() % 3)});
    for (const auto& a : v)
        for (const auto& b : v) {
            auto model =
                std::tie(a.ms, a.counter, a.device) <=> std::tie(b.ms, b.counter, b.device);
            EXPECT_EQ(a <=> b, model);
            // Exactly one of <, ==, > holds.
            EXPECT_EQ(int(a < b) + int(a == b) + int(a > b), 1);
        }
}

TEST(hlc, text_round_trip) {
    for (const hlc& h : {hlc{t0, 3, "t-17"}, hlc{0, 0, "s"}, hlc{1, 0, std::string(64, 'x')},
                         hlc{std::numeric_limits<std::int64_t>::max(),
                             std::numeric_limits<std::uint32_t>::max(), "server"},
                         hlc{t0, 0, "平板-1"}}) {
        auto text = h.to_string();
        auto back = hlc::parse(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(*back, h) << text;
        EXPECT_EQ(back->to_string(), text);
    }
    EXPECT_EQ((hlc{t0, 3, "t-17"}).to_string(), "1764316800000:3:t-17");
}

TEST(hlc, strict_parse_rejects) {
    const char* bad[] = {
        "",
        "1764316800000",
        "1764316800000:3",
        "1764316800000:3:",         // empty device
        ":3:t",                     // empty ms
        "1764316800000::t",         // empty counter
        "01764316800000:3:t",       // leading zero in ms
        "1764316800000:03:t",       // leading zero in counter
        "00:0:t",                   //
        "-1:0:t",                   // negative
        "+1:0:t",                   //
        " 1:0:t",                   // whitespace
        "1 :0:t",                   //
        "1:0:t:u",                  // colon in device
        "1:0:t u",                  // space in device
        "1:0:t\tu",                 // control character in device
        "1:0:t\x7f",                // DEL
        "1.5:0:t",                  //
        "0x10:0:t",                 //
        "9223372036854775808:0:t",  // ms overflows int64
        "99999999999999999999:0:t", // 20 digits
        "1:4294967296:t",           // counter overflows uint32
        "1:18446744073709551616:t", //
    };
    for (const char* text : bad)
        EXPECT_FALSE(hlc::parse(text)) << '"' << text << '"';
    EXPECT_FALSE(hlc::parse("1:0:" + std::string(65, 'x'))); // device too long
    EXPECT_FALSE(hlc::parse(std::string_view("1:0:t\0u", 7)));
    // The edges that are valid.
    EXPECT_TRUE(hlc::parse("0:0:t"));
    EXPECT_TRUE(hlc::parse("9223372036854775807:4294967295:t"));
    EXPECT_TRUE(hlc::parse("1:0:" + std::string(64, 'x')));
}

TEST(hlc, now_uses_the_wall_clock_when_it_moves_forward) {
    manual_clock wall;
    hlc_clock c("t-1", wall.fn());
    auto a = c.now();
    EXPECT_EQ(a, (hlc{t0, 0, "t-1"}));
    wall.ms += 5;
    EXPECT_EQ(c.now(), (hlc{t0 + 5, 0, "t-1"}));
    EXPECT_EQ(c.last(), (hlc{t0 + 5, 0, "t-1"}));
}

TEST(hlc, now_is_strictly_monotonic_when_the_wall_clock_stalls_or_goes_back) {
    manual_clock wall;
    hlc_clock c("t-1", wall.fn());
    std::mt19937_64 rng(11);
    hlc prev = c.now();
    for (int i = 0; i < 5000; ++i) {
        switch (rng() % 4) {
        case 0:
            break; // stalls
        case 1:
            wall.ms -= static_cast<std::int64_t>(rng() % 100000); // goes back
            break;
        case 2:
            wall.ms -= year_ms; // battery died, clock reset to a past year
            break;
        default:
            wall.ms += static_cast<std::int64_t>(rng() % 50);
        }
        hlc next = c.now();
        ASSERT_GT(next, prev) << i;
        EXPECT_EQ(next.device, "t-1");
        EXPECT_EQ(c.last(), next);
        prev = next;
    }
}

TEST(hlc, observe_makes_the_next_clock_greater_than_the_remote) {
    manual_clock wall;
    hlc_clock c("t-1", wall.fn());
    (void)c.now();
    // Remote ahead in ms.
    hlc remote{t0 + 60000, 7, "server"};
    c.observe(remote);
    EXPECT_EQ(c.last().ms, remote.ms);
    auto n = c.now();
    EXPECT_GT(n, remote);
    EXPECT_EQ(n, (hlc{t0 + 60000, 8, "t-1"}));
    // Remote with the same ms and a higher counter.
    c.observe(hlc{t0 + 60000, 40, "x"});
    EXPECT_EQ(c.now(), (hlc{t0 + 60000, 41, "t-1"}));
    // A remote behind changes nothing.
    auto before = c.last();
    c.observe(hlc{t0, 1000, "y"});
    EXPECT_EQ(c.last(), before);
    // Once the wall clock passes the remote, it is used again with counter 0.
    wall.ms = t0 + 60001;
    EXPECT_EQ(c.now(), (hlc{t0 + 60001, 0, "t-1"}));
}

TEST(hlc, receive_rule_holds_for_random_interleavings) {
    std::mt19937_64 rng(3);
    manual_clock wa, wb;
    wb.ms = t0 - 3 * year_ms;
    hlc_clock a("a", wa.fn()), b("b", wb.fn());
    hlc last_seen{};
    for (int i = 0; i < 3000; ++i) {
        wa.ms += static_cast<std::int64_t>(rng() % 3) - 1;
        wb.ms += static_cast<std::int64_t>(rng() % 3) - 1;
        hlc_clock& sender = (rng() & 1) ? a : b;
        hlc_clock& receiver = (&sender == &a) ? b : a;
        hlc sent = sender.now();
        receiver.observe(sent);
        hlc reply = receiver.now();
        ASSERT_GT(reply, sent) << i; // a causal successor always orders after
        ASSERT_GT(reply, last_seen) << i;
        last_seen = std::max(sent, reply);
    }
}

// A remote clock with the largest counter must not make the next local clock wrap around to a
// smaller one. The parser accepts counters up to 4294967295, so any tablet can send one (the
// server observes every clock not restamped). now() increments the uint32 counter and wraps to
// 0 with the same ms: the "next" clock is then smaller than the one observed.
TEST(hlc, now_stays_greater_than_an_observed_clock_with_the_largest_counter) {
    manual_clock wall;
    hlc_clock c("server", wall.fn());
    auto remote = hlc::parse("1764316800000:4294967295:t-evil");
    ASSERT_TRUE(remote);
    c.observe(*remote);
    auto next = c.now(); // wall clock stalled at t0 == remote.ms
    EXPECT_GT(next, *remote) << next.to_string();
}

// The same through the engine: a tablet sends a valid clock text with the largest counter and a
// time within the allowed lead; the server observes it, and the server clock it returns (and
// would use for restamps) is smaller than the clock it just stored.
TEST(hlc, server_clock_stays_after_a_pushed_clock_with_the_largest_counter) {
    manual_clock wall;
    server_harness server(":memory:", {}, wall.fn());
    push_request req;
    req.schema_version = 1;
    mutation m;
    m.seq = 1;
    m.collection = "item";
    m.id = uuid_v7_generator(1).make(wall.ms);
    hlc evil{wall.ms + 1000, 4294967295u, "tab-a"};
    for (const auto& kv : item("x"))
        m.fields.emplace_back(std::string(kv.key()), field_write{kv.value(), evil, std::nullopt});
    req.mutations.push_back(std::move(m));
    auto res = server.push(worker("tab-a"), req);
    ASSERT_EQ(res.acks.size(), 1u);
    ASSERT_EQ(res.acks[0].status, ack_status::applied);
    EXPECT_TRUE(res.acks[0].restamped.empty());
    EXPECT_GT(res.server_clock, evil);
}

TEST(hlc, synchronized_clock_is_monotonic_across_threads) {
    manual_clock wall;
    synchronized_clock c("server", wall.fn());
    std::vector<hlc> seen[2];
    std::thread t1([&] {
        for (int i = 0; i < 2000; ++i)
            seen[0].push_back(c.now());
    });
    std::thread t2([&] {
        for (int i = 0; i < 2000; ++i)
            seen[1].push_back(c.now());
    });
    t1.join();
    t2.join();
    std::vector<hlc> all(seen[0]);
    all.insert(all.end(), seen[1].begin(), seen[1].end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()); // all distinct
    for (const auto& part : seen)
        EXPECT_TRUE(std::is_sorted(part.begin(), part.end()));
}

// ---- The clock promises, end to end through the engine and replicas. ----

TEST(hlc, tablet_years_behind_orders_its_next_edit_after_what_it_pulled) {
    manual_clock server_wall, wall_a, wall_b;
    wall_b.ms = t0 - 3 * year_ms; // b's battery died; its clock came back in a past year
    server_harness server(":memory:", {}, server_wall.fn());
    replica a(":memory:", test_catalog(), "tab-a", wall_a.fn(), 1);
    replica b(":memory:", test_catalog(), "tab-b", wall_b.fn(), 2);
    auto id = *a.create("item", item("张三"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(b.get(id));
    auto pulled = stored_clock(server, id, "name"); // the clock b now has as its base
    ASSERT_TRUE(pulled);
    ASSERT_TRUE(b.update(id, {{"name", "张三丰"}}));
    auto req = b.next_push();
    ASSERT_EQ(req.mutations.size(), 1u);
    const auto& w = req.mutations[0].fields.at(0).second;
    EXPECT_GT(w.clock, *pulled);
    ASSERT_TRUE(w.base);
    EXPECT_EQ(*w.base, *pulled);
    auto res = server.push(worker("tab-b"), req);
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].status, ack_status::applied);
    EXPECT_TRUE(res.acks[0].conflicts.empty());
    EXPECT_TRUE(res.acks[0].kept.empty());
    b.apply_push_result(req, res);
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(a.get(id)->fields.at("name").as_string(), "张三丰");
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts"), 0);
    // And b's own later edits keep moving forward though its wall clock stays in the past.
    ASSERT_TRUE(b.update(id, {{"count", 1}}));
    ASSERT_TRUE(b.update(id, {{"count", 2}}));
    auto more = b.next_push();
    ASSERT_EQ(more.mutations.size(), 2u);
    EXPECT_GT(more.mutations[0].fields[0].second.clock, w.clock);
    EXPECT_GT(more.mutations[1].fields[0].second.clock, more.mutations[0].fields[0].second.clock);
}

TEST(hlc, clock_far_ahead_is_restamped_and_does_not_win_forever) {
    manual_clock server_wall, wall_a, wall_b;
    wall_a.ms = t0 + 2 * year_ms; // a's clock runs two years ahead
    server_harness server(":memory:", {}, server_wall.fn());
    replica a(":memory:", test_catalog(), "tab-a", wall_a.fn(), 1);
    replica b(":memory:", test_catalog(), "tab-b", wall_b.fn(), 2);
    auto id = *a.create("item", item("李四"));
    auto req = a.next_push();
    auto res = server.push(worker("tab-a"), req);
    ASSERT_EQ(res.acks.size(), 1u);
    EXPECT_EQ(res.acks[0].status, ack_status::applied);
    ASSERT_EQ(res.acks[0].restamped.size(), 3u); // township, village, name
    for (const auto& [field, clock] : res.acks[0].restamped) {
        EXPECT_LE(clock.ms, server_wall.ms + server.eng.config().max_clock_ahead_ms) << field;
        EXPECT_EQ(clock.device, "tab-a") << field;
    }
    // The server's own clock did not jump two years.
    EXPECT_LT(server.eng.clock().last().ms, t0 + year_ms);
    a.apply_push_result(req, res);
    // The tablet learnt the server's time: its next clock is near the server's.
    ASSERT_TRUE(a.update(id, {{"count", 1}}));
    auto next = a.next_push();
    ASSERT_EQ(next.mutations.size(), 1u);
    EXPECT_LT(next.mutations[0].fields[0].second.clock.ms, t0 + year_ms);
    server.sync(a, worker("tab-a"));
    // A later edit by a tablet with a right clock wins over a's earlier one.
    server.sync(b, worker("tab-b"));
    server_wall.ms += 1000;
    wall_b.ms += 1000;
    ASSERT_TRUE(b.update(id, {{"name", "李四b"}}));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(a.get(id)->fields.at("name").as_string(), "李四b");
    EXPECT_EQ(a.content_hash(), server.hash());
    EXPECT_EQ(b.content_hash(), server.hash());
}

TEST(hlc, concurrent_edit_from_a_clock_far_ahead_loses_to_a_later_edit) {
    // Without restamping, a's clock two years ahead would beat every edit for two years.
    manual_clock server_wall, wall_a, wall_b;
    server_harness server(":memory:", {}, server_wall.fn());
    replica a(":memory:", test_catalog(), "tab-a", wall_a.fn(), 1);
    replica b(":memory:", test_catalog(), "tab-b", wall_b.fn(), 2);
    auto id = *b.create("item", item("王五"));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    wall_a.ms = t0 + 2 * year_ms;
    ASSERT_TRUE(a.update(id, {{"note", "from the future"}}));
    server.sync(a, worker("tab-a"));
    server_wall.ms += 10;
    wall_b.ms += 10;
    ASSERT_TRUE(b.update(id, {{"note", "later, right clock"}}));
    server.sync(b, worker("tab-b"));
    server.sync(a, worker("tab-a"));
    EXPECT_EQ(b.get(id)->fields.at("note").as_string(), "later, right clock");
    EXPECT_EQ(a.get(id)->fields.at("note").as_string(), "later, right clock");
    EXPECT_EQ(a.content_hash(), server.hash());
}

} // namespace
} // namespace fieldsync
