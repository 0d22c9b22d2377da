// fieldsyncd's own backups: the folder's side (names, pruning, when the next one is due) and a
// server that makes them while tablets sync.
#include "server_fixture.hpp"

#include "server/backups.hpp"
#include "sync/replica.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using std::chrono::system_clock;
using namespace fieldsync::server;

system_clock::time_point utc(int y, int mo, int d, int h, int mi, int s) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return system_clock::from_time_t(timegm(&tm));
}

void touch(const fs::path& p) {
    std::ofstream(p) << "x";
}

TEST(backups, are_named_by_their_time_and_pruned_oldest_first_leaving_other_files) {
    temp_dir dir;
    const fs::path d = dir.path();
    const auto now = utc(2026, 11, 30, 0, 0, 0);
    EXPECT_EQ(backup_file_name(utc(2026, 11, 29, 2, 15, 0)), "fieldsync-20261129-021500.db");
    EXPECT_FALSE(newest_backup(d, now));
    for (int day : {27, 29, 28})
        touch(d / backup_file_name(utc(2026, 11, day, 3, 0, 0)));
    for (const char* other :
         {"fieldsync.db", "fieldsync-2026.db", "fieldsync-20261130-030000.db.partial", "notes.txt",
          "fieldsync-20261399-030000.db"})
        touch(d / other);
    auto all = list_backups(d, now);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all.front().filename(), "fieldsync-20261127-030000.db");
    EXPECT_EQ(all.back().filename(), "fieldsync-20261129-030000.db");
    EXPECT_EQ(*newest_backup(d, now), utc(2026, 11, 29, 3, 0, 0));
    EXPECT_EQ(prune_backups(d, 2, now), 1u);
    all = list_backups(d, now);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all.front().filename(), "fieldsync-20261128-030000.db");
    EXPECT_EQ(prune_backups(d, 2, now), 0u);
    for (const char* other : {"fieldsync.db", "notes.txt", "fieldsync-20261399-030000.db"})
        EXPECT_TRUE(fs::exists(d / other)) << other;
    // What a crash or a full disk left of a copy goes; finished copies and other files stay.
    for (const char* left :
         {"fieldsync-20261130-030000.db.partial-wal", "fieldsync-20261130-030000.db.partial-shm"})
        touch(d / left);
    EXPECT_EQ(remove_unfinished_backups(d), 3u);
    EXPECT_EQ(list_backups(d, now).size(), 2u);
    EXPECT_TRUE(fs::exists(d / "notes.txt"));
}

// A server whose clock ran a year ahead made copies named 2027; once the clock is put right,
// the new copies must be the ones kept, not deleted as the oldest.
TEST(backups, copies_named_in_the_future_by_a_wrong_clock_go_first) {
    temp_dir dir;
    const fs::path d = dir.path();
    const auto now = utc(2026, 11, 29, 3, 0, 0);
    for (int day : {1, 2, 3})
        touch(d / backup_file_name(utc(2027, 12, day, 3, 0, 0)));
    touch(d / backup_file_name(now)); // made after the correction
    EXPECT_EQ(*newest_backup(d, now), now);
    EXPECT_EQ(prune_backups(d, 2, now), 2u);
    auto left = list_backups(d, now);
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left.back().filename(), backup_file_name(now));
    EXPECT_EQ(left.front().filename(), backup_file_name(utc(2027, 12, 3, 3, 0, 0)));
}

TEST(backups, the_next_one_is_due_an_interval_after_the_newest_but_not_right_at_start) {
    const auto now = utc(2026, 11, 29, 12, 0, 0);
    const std::chrono::seconds day = 24h, first = 10min;
    EXPECT_EQ(next_backup_in(std::nullopt, now, day, first), first); // none yet
    EXPECT_EQ(next_backup_in(now - 2h, now, day, first), day - 2h);  // made 2 h ago
    EXPECT_EQ(next_backup_in(now - 48h, now, day, first), first);    // overdue: soon, not at once
    EXPECT_EQ(next_backup_in(now + 72h, now, day, first), day);      // the clock went back
    EXPECT_EQ(next_backup_in(std::nullopt, now, 5s, first), 5s);     // shorter than the delay
}

// A server with a short interval: copies appear, each a whole database holding what was
// acknowledged before it, and only the newest backup_keep stay.
TEST(backups, a_running_server_makes_and_prunes_them_while_tablets_sync) {
    temp_dir folder;
    server_fixture s([&](server::config& c) {
        c.backup_dir = folder.path().string();
        c.backup_interval_s = 1;
        c.backup_keep = 2;
    });
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    for (int i = 0; i < 5; ++i)
        (void)*a.create("item", item("backed up " + std::to_string(i)));
    auto c = s.client();
    sync_over(*c, a, l.token);
    const auto acknowledged = s.count("SELECT count(*) FROM records");
    ASSERT_EQ(acknowledged, 5);
    // What a monitor watches: when the newest copy was made, how many were made and failed.
    auto metric = [&](const std::string& name) {
        auto m = s.client()->get("/metrics").body;
        auto at = m.find("\n" + name + " ");
        return at == std::string::npos ? -1 : std::atoll(m.c_str() + at + name.size() + 2);
    };
    // Copies started after the sync (names are per second) hold it; three or more, so that
    // some were pruned.
    const auto synced = system_clock::now();
    auto done = [&] {
        auto newest = newest_backup(folder.path());
        return newest && *newest > synced + 1s && metric("fieldsync_backups_total") >= 3;
    };
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(done()) << "no three backups made after the sync";
    EXPECT_GT(metric("fieldsync_backup_last_success_timestamp_seconds"),
              std::chrono::duration_cast<std::chrono::seconds>(synced.time_since_epoch()).count());
    EXPECT_EQ(metric("fieldsync_backup_failures_total"), 0);
    s.srv.reset(); // stopped: no copy in progress, the folder is as the server left it
    auto all = list_backups(folder.path());
    EXPECT_EQ(all.size(), 2u);
    for (const auto& e : fs::directory_iterator(folder.path()))
        EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
    sql::connection copy(all.back().string(), sql::open_mode::read_only);
    EXPECT_EQ(copy.integrity_check(), "ok");
    sql::statement n(copy.handle(), "SELECT count(*) FROM records");
    ASSERT_TRUE(n.step());
    EXPECT_EQ(n.int64(0), acknowledged);
    EXPECT_EQ(fs::status(all.back()).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
}

} // namespace
} // namespace fieldsync
