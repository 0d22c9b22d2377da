// UUIDv7 record ids: canonical text, strict parse, version and variant bits, the timestamp, and
// monotonic generation (ids made later sort later, so inserts append to the id index).
#include "sync/uuid.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace fieldsync {
namespace {

constexpr std::int64_t t0 = 1764316800000;

TEST(uuid, parse_format_round_trip) {
    const char* text = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2";
    auto u = uuid::parse(text);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->to_string(), text);
    EXPECT_EQ(u->bytes[0], 0x01);
    EXPECT_EQ(u->bytes[15], 0xb2);
    // Upper case is accepted, output is lower case.
    auto upper = uuid::parse("0190A1B2-C3D4-7E5F-8A6B-7C8D9E0FA1B2");
    ASSERT_TRUE(upper);
    EXPECT_EQ(*upper, *u);
    EXPECT_EQ(upper->to_string(), text);
    // Random bytes round trip through text and blob.
    std::mt19937_64 rng(5);
    for (int i = 0; i < 1000; ++i) {
        uuid r;
        for (auto& b : r.bytes)
            b = static_cast<std::uint8_t>(rng());
        auto s = r.to_string();
        ASSERT_EQ(s.size(), 36u);
        auto back = uuid::parse(s);
        ASSERT_TRUE(back) << s;
        EXPECT_EQ(*back, r);
        auto blob = uuid::from_blob(r.span());
        ASSERT_TRUE(blob);
        EXPECT_EQ(*blob, r);
    }
}

TEST(uuid, parse_rejects_anything_but_the_canonical_form) {
    const char* bad[] = {
        "",
        "0190a1b2c3d47e5f8a6b7c8d9e0fa1b2",        // no dashes
        "{0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2}",  // braces
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b",     // short
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2a",   // long
        "0190a1b2-c3d4-7e5f-8a6b7-c8d9e0fa1b2",    // dash misplaced
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1g2",    // not hex
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1-2",    // dash in a hex position
        "0190a1b2_c3d4_7e5f_8a6b_7c8d9e0fa1b2",    // wrong separator
        " 190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b2",    //
        "urn:uuid:0190a1b2-c3d4-7e5f-8a6b-7c8d9e", //
    };
    for (const char* t : bad)
        EXPECT_FALSE(uuid::parse(t)) << t;
    EXPECT_FALSE(uuid::parse(std::string_view("0190a1b2-c3d4-7e5f-8a6b-7c8d9e0fa1b\0", 36)));
    std::vector<std::uint8_t> b15(15), b17(17);
    EXPECT_FALSE(uuid::from_blob(b15));
    EXPECT_FALSE(uuid::from_blob(b17));
}

TEST(uuid, v7_version_variant_and_timestamp) {
    uuid_v7_generator g(42);
    for (std::int64_t ms : {std::int64_t{1}, t0, t0 + 1, std::int64_t{0xffffffffffff}}) {
        uuid_v7_generator fresh(1);
        auto u = fresh.make(ms);
        EXPECT_EQ(u.bytes[6] >> 4, 7) << ms;    // version 7
        EXPECT_EQ(u.bytes[8] >> 6, 0b10) << ms; // RFC 9562 variant
        EXPECT_EQ(u.unix_ms(), ms);
        EXPECT_EQ(u.to_string()[14], '7');
    }
    for (int i = 0; i < 5000; ++i) {
        auto u = g.make(t0 + i / 7);
        ASSERT_EQ(u.bytes[6] >> 4, 7);
        ASSERT_EQ(u.bytes[8] >> 6, 0b10);
        ASSERT_EQ(u.unix_ms(), t0 + i / 7);
    }
}

TEST(uuid, monotonic_within_a_generator) {
    uuid_v7_generator g(9);
    std::mt19937_64 rng(9);
    std::int64_t wall = t0;
    uuid prev = g.make(wall);
    std::set<uuid> seen{prev};
    for (int i = 0; i < 20000; ++i) {
        switch (rng() % 4) {
        case 0:
            break; // same millisecond
        case 1:
            wall -= static_cast<std::int64_t>(rng() % 5000); // clock goes back
            break;
        default:
            wall += static_cast<std::int64_t>(rng() % 3);
        }
        uuid u = g.make(wall);
        ASSERT_GT(u, prev) << i << " " << prev.to_string() << " " << u.to_string();
        ASSERT_TRUE(seen.insert(u).second);
        EXPECT_GE(u.unix_ms(), std::min(wall, prev.unix_ms()));
        prev = u;
    }
}

TEST(uuid, same_millisecond_counter_overflow_moves_to_the_next_millisecond) {
    uuid_v7_generator g(1);
    uuid prev = g.make(t0);
    for (int i = 0; i < 3 * 4096 + 10; ++i) {
        uuid u = g.make(t0); // a clock stalled for 12k ids
        ASSERT_GT(u, prev) << i;
        ASSERT_EQ(u.bytes[6] >> 4, 7);
        prev = u;
    }
    // The timestamp ran ahead by at most the overflow count, never backwards.
    EXPECT_GE(prev.unix_ms(), t0 + 3);
    EXPECT_LE(prev.unix_ms(), t0 + 4);
    // Once the wall clock catches up, ids keep increasing.
    uuid later = g.make(t0 + 3);
    EXPECT_GT(later, prev);
    uuid much_later = g.make(t0 + 1000);
    EXPECT_GT(much_later, later);
    EXPECT_EQ(much_later.unix_ms(), t0 + 1000);
}

TEST(uuid, byte_order_is_time_order_across_generators) {
    // Two tablets' ids sort by their milliseconds first, whatever their random bits.
    uuid_v7_generator a(1), b(2);
    for (int i = 0; i < 1000; ++i) {
        auto x = a.make(t0 + 2 * i);
        auto y = b.make(t0 + 2 * i + 1);
        EXPECT_LT(x, y);
    }
}

TEST(uuid, generators_with_different_seeds_do_not_collide) {
    uuid_v7_generator a(1), b(2);
    std::set<uuid> all;
    for (int i = 0; i < 2000; ++i) {
        EXPECT_TRUE(all.insert(a.make(t0)).second);
        EXPECT_TRUE(all.insert(b.make(t0)).second);
    }
}

} // namespace
} // namespace fieldsync
