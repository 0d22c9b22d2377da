// The tablet replica's local view: confirmed state with the pending outbox on top, so a worker
// always sees what they entered — across pulls, and across lost and repeated push answers.
#include "sync/storage_check.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

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

// The district restores the server from last night's backup. A tablet that synced after it had
// its pushes acknowledged and dropped from its outbox; the restored server asks for numbers the
// tablet no longer has. Such a tablet used to be stuck for good, its new work never uploaded.
// Now what is pending is numbered on from the server's number and the tablet keeps syncing.
TEST(replica, after_the_server_is_restored_from_a_backup_a_tablet_keeps_syncing) {
    temp_dir dir;
    const std::string path = dir.file("server.db"), copy = dir.file("backup.db");
    auto server = std::make_unique<server_harness>(path);
    replica a(":memory:", test_catalog(), "tab-a");
    auto first = *a.create("item", item("before the backup"));
    server->sync(a, worker("tab-a"));
    std::string why;
    ASSERT_TRUE(backup_database(path, copy, &why)) << why;
    (void)*a.create("item", item("after the backup: lost by the restore"));
    server->sync(a, worker("tab-a"));
    ASSERT_EQ(a.pending_count(), 0u);

    server.reset();
    for (const char* end : {"", "-wal", "-shm"})
        std::filesystem::remove(path + end);
    std::filesystem::copy_file(copy, path);
    server = std::make_unique<server_harness>(path);
    // Work done in the field meanwhile: an edit and a new record.
    ASSERT_TRUE(a.update(first, {{"count", 7}}));
    auto later = *a.create("item", item("after the restore"));

    auto req = a.next_push();
    auto res = server->push(worker("tab-a"), req);
    ASSERT_EQ(res.acks.front().status, ack_status::gap);
    EXPECT_TRUE(a.apply_push_result(req, res));
    auto renumbered = a.next_push();
    a.apply_push_result(renumbered, server->push(worker("tab-a"), renumbered));
    ASSERT_EQ(a.pending_count(), 0u);
    // The first answer once more (another sync of this folder read it too) changes nothing: it
    // would move new work onto numbers the server already applied, answered as duplicates.
    auto y = *a.create("item", item("while the other sync ran"));
    EXPECT_FALSE(a.apply_push_result(req, res));
    server->sync(a, worker("tab-a"));
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(server->count("SELECT count(*) FROM records"), 3); // first, later and y
    EXPECT_TRUE(a.get(y));
    EXPECT_EQ(a.get(first)->fields.at("count").as_int64(), 7);
    EXPECT_TRUE(a.get(later));
    EXPECT_EQ(a.content_hash(), server->hash());
    // Numbering goes on from there.
    (void)*a.create("item", item("and it goes on"));
    server->sync(a, worker("tab-a"));
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(a.content_hash(), server->hash());
}

} // namespace
} // namespace fieldsync
