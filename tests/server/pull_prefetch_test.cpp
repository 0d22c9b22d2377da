// The prepared-page store behind pulls (server/pull_prefetch): a request for a page that is still
// being prepared waits for it instead of computing it a second time, and is always answered —
// with the page, or with "nothing" so that it computes the page itself.
#include "server/pull_prefetch.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

using fieldsync::server::pull_prefetch;

namespace {

pull_prefetch::page page_of(std::string body, bool last = false) {
    return {std::move(body), 3, "cursor-after", last};
}

// What a waiting request was told: one entry per call.
struct told {
    std::vector<std::optional<std::string>> calls;
    pull_prefetch::waiter waiter() {
        return [this](std::optional<pull_prefetch::page> p) {
            calls.push_back(p ? std::optional<std::string>(p->body) : std::nullopt);
        };
    }
};

const std::string key_a = pull_prefetch::key("dev-a", "scope", {"c1", 100});

} // namespace

TEST(pull_prefetch, a_ready_page_is_taken_once) {
    pull_prefetch store;
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    store.fill(key_a, page_of("page-2"));
    auto got = store.take(key_a, 1);
    ASSERT_TRUE(got.ready);
    EXPECT_EQ(got.ready->body, "page-2");
    EXPECT_EQ(store.bytes(), 0u);
    EXPECT_FALSE(store.take(key_a, 2).ready); // a second request computes its own
    EXPECT_EQ(store.hits(), 1u);
    EXPECT_EQ(store.waited(), 0u);
}

TEST(pull_prefetch, a_request_for_a_page_being_prepared_gets_it_when_it_is_done) {
    pull_prefetch store;
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    told t;
    auto got = store.take(key_a, 1, t.waiter());
    EXPECT_FALSE(got.ready);
    EXPECT_TRUE(got.waiting);
    EXPECT_TRUE(t.calls.empty()); // not answered from inside take()

    store.fill(key_a, page_of("page-2"));
    ASSERT_EQ(t.calls.size(), 1u);
    EXPECT_EQ(t.calls[0], "page-2");
    EXPECT_EQ(store.bytes(), 0u); // handed over, not kept
    EXPECT_EQ(store.hits(), 1u);
    EXPECT_EQ(store.waited(), 1u);
    EXPECT_FALSE(store.take(key_a, 2).ready);
}

TEST(pull_prefetch, without_a_waiter_a_page_being_prepared_is_not_waited_for) {
    pull_prefetch store;
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    auto got = store.take(key_a, 1);
    EXPECT_FALSE(got.ready);
    EXPECT_FALSE(got.waiting);
}

TEST(pull_prefetch, a_waiting_request_is_told_when_the_page_will_not_come) {
    // The page could not be computed.
    {
        pull_prefetch store;
        ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
        told t;
        ASSERT_TRUE(store.take(key_a, 1, t.waiter()).waiting);
        store.cancel(key_a);
        ASSERT_EQ(t.calls.size(), 1u);
        EXPECT_EQ(t.calls[0], std::nullopt);
        store.fill(key_a, page_of("late")); // its slot is gone: nothing more happens
        EXPECT_EQ(t.calls.size(), 1u);
        EXPECT_EQ(store.bytes(), 0u);
    }
    // The same tablet started another pull, which replaces its slot.
    {
        pull_prefetch store;
        ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
        told t;
        ASSERT_TRUE(store.take(key_a, 1, t.waiter()).waiting);
        const auto other = pull_prefetch::key("dev-a", "scope", {"c9", 100});
        ASSERT_TRUE(store.reserve(other, "dev-a", 2));
        ASSERT_EQ(t.calls.size(), 1u);
        EXPECT_EQ(t.calls[0], std::nullopt);
    }
    // Preparing took longer than a page is kept.
    {
        pull_prefetch store(pull_prefetch::settings{64u << 20, 1000});
        ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
        told t;
        ASSERT_TRUE(store.take(key_a, 10, t.waiter()).waiting);
        (void)store.take(pull_prefetch::key("dev-b", "scope", {"c1", 100}), 5000);
        ASSERT_EQ(t.calls.size(), 1u);
        EXPECT_EQ(t.calls[0], std::nullopt);
    }
}

TEST(pull_prefetch, a_waited_for_page_is_handed_over_even_past_the_memory_cap) {
    // The page exists already and goes straight to the socket: dropping it would only make the
    // request compute it again.
    pull_prefetch store(pull_prefetch::settings{4, 10000});
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    told t;
    ASSERT_TRUE(store.take(key_a, 1, t.waiter()).waiting);
    store.fill(key_a, page_of("a page larger than four bytes"));
    ASSERT_EQ(t.calls.size(), 1u);
    EXPECT_EQ(t.calls[0], "a page larger than four bytes");
}

TEST(pull_prefetch, only_one_request_waits_for_a_page) {
    pull_prefetch store;
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    told first, second;
    ASSERT_TRUE(store.take(key_a, 1, first.waiter()).waiting);
    auto again = store.take(key_a, 2, second.waiter());
    EXPECT_FALSE(again.waiting); // computes its own; the page goes to the first
    EXPECT_FALSE(again.ready);
    store.fill(key_a, page_of("page-2"));
    EXPECT_EQ(first.calls.size(), 1u);
    EXPECT_TRUE(second.calls.empty());
}

TEST(pull_prefetch, pages_kept_too_long_are_dropped_by_the_sweep_and_waiters_told) {
    pull_prefetch store(pull_prefetch::settings{64u << 20, 1000});
    ASSERT_TRUE(store.reserve(key_a, "dev-a", 0));
    store.fill(key_a, page_of("page-2"));
    const auto key_b = pull_prefetch::key("dev-b", "scope", {"c1", 100});
    ASSERT_TRUE(store.reserve(key_b, "dev-b", 500));
    told t;
    ASSERT_TRUE(store.take(key_b, 600, t.waiter()).waiting);
    store.drop_expired(1000); // neither is older than 1000 ms yet
    EXPECT_EQ(store.bytes(), 6u);
    EXPECT_TRUE(t.calls.empty());
    store.drop_expired(1001); // the ready page goes
    EXPECT_EQ(store.bytes(), 0u);
    EXPECT_TRUE(t.calls.empty());
    store.drop_expired(1501); // the page being prepared goes, and its waiter is told
    ASSERT_EQ(t.calls.size(), 1u);
    EXPECT_EQ(t.calls[0], std::nullopt);
}
