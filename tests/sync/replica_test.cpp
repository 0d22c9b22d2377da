// The tablet replica's local view: confirmed state with the pending outbox on top, so a worker
// always sees what they entered — across pulls, and across lost and repeated push answers.
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

TEST(replica, a_pull_never_hides_an_unsent_edit) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    replica b(":memory:", test_catalog(), "tab-b");
    auto id = *a.create("item", item("x"));
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    ASSERT_TRUE(a.update(id, {{"note", "a's unsent note"}}));
    ASSERT_TRUE(b.update(id, {{"note", "b's note"}, {"count", 4}}));
    server.sync(b, worker("tab-b"));
    for (bool complete = false; !complete;) {
        auto res = server.pull(worker("tab-a"), a.next_pull(1));
        a.apply_pull_result(res);
        complete = res.complete;
        EXPECT_EQ(a.get(id)->fields.at("note"), json::value("a's unsent note"));
    }
    EXPECT_TRUE(a.get(id)->pending);
    EXPECT_EQ(a.get(id)->fields.at("count"), json::value(4)); // b's other field shows through
    server.sync(a, worker("tab-a"));
    server.sync(b, worker("tab-b"));
    EXPECT_EQ(a.content_hash(), server.hash());
    EXPECT_EQ(b.content_hash(), server.hash());
    EXPECT_EQ(server.count("SELECT count(*) FROM conflicts"), 1);
}

// The answer to push [m1, m2] is lost; the tablet resends from its outbox in a smaller batch,
// [m1]. The server answers m1 as a duplicate with last_applied = 2. apply_push_result folds m1
// and then deletes every outbox row up to last_applied — m2 too, without folding it — so until
// some later pull brings the record, the tablet shows m1's older value instead of what its user
// entered last (and a new edit made now carries the old value as what it replaced).
TEST(replica, partial_resend_after_a_lost_answer_keeps_showing_the_newest_own_value) {
    server_harness server;
    replica a(":memory:", test_catalog(), "tab-a");
    auto fields = item("x");
    fields["count"] = 6;
    auto id = *a.create("item", fields);
    ASSERT_TRUE(a.update(id, {{"count", 15}}));
    auto both = a.next_push();
    ASSERT_EQ(both.mutations.size(), 2u);
    (void)server.push(worker("tab-a"), both); // applied; the answer never arrives
    EXPECT_EQ(a.get(id)->fields.at("count"), json::value(15));
    auto one = a.next_push(1);
    ASSERT_EQ(one.mutations.size(), 1u);
    a.apply_push_result(one, server.push(worker("tab-a"), one));
    ASSERT_TRUE(a.get(id));
    EXPECT_EQ(a.get(id)->fields.at("count"), json::value(15)); // actual: 6
    EXPECT_EQ(stored_fields(server, id).at("count"), json::value(15));
}

} // namespace
} // namespace fieldsync
