// Storage faults: a full disk, an I/O error, a database that opens read-only, a damaged database
// file, and a write-ahead log deleted while the server was down. Each gets a clear error (503
// storage_failure to the tablet, a log line or a refusal to start for the operator), never an
// acknowledgement without durability, no further damage, and recovery once the fault is gone.
#include "child_process_server.hpp"
#include "fault_vfs.hpp"
#include "server_fixture.hpp"
#include "sync/storage_check.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <unistd.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace fs = std::filesystem;

std::int64_t count(const std::string& db_path, const std::string& sql_text) {
    sql::connection c(db_path, sql::open_mode::read_only);
    sql::statement s(c.handle(), sql_text);
    return s.step() ? s.int64(0) : -1;
}

std::string integrity(const std::string& db_path) {
    sql::connection c(db_path, sql::open_mode::read_only);
    return c.integrity_check();
}

// A push of `n` new records from `r`, as the tablet would send it.
push_request new_records(replica& r, int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i)
        r.create("item", item(prefix + std::to_string(i)));
    return r.next_push(100);
}

class storage_fault : public ::testing::TestWithParam<fault_vfs::fault> {};

TEST_P(storage_fault, push_is_refused_with_503_stores_nothing_and_applies_once_when_retried) {
    fault_vfs::install();
    server_fixture f;
    const std::string db_path = f.dir.file("fieldsync.db");
    auto login = f.enrol("fw_a");
    replica tablet(":memory:", test_catalog(), login.device);
    auto c = f.client();
    sync_over(*c, tablet, login.token); // something stored before the fault
    const auto before = f.count("SELECT count(*) FROM records");

    auto req = new_records(tablet, 5, "full");
    ::testing::internal::CaptureStderr();
    {
        fault_vfs::scoped fault(GetParam());
        const auto failed_before = fault_vfs::failures();
        for (int attempt = 0; attempt < 3; ++attempt) { // the tablet retries; still no space
            auto reply = c->post("/v1/sync/push", encode(req), login.token);
            ASSERT_EQ(reply.status, 503u) << reply.body;
            EXPECT_EQ(reply.error_code(), "storage_failure");
            EXPECT_EQ(reply.header("Retry-After"), "5");
        }
        EXPECT_GT(fault_vfs::failures(), failed_before);
        // Reading goes on: pulls and the health check answer while nothing can be written.
        auto pull = c->post("/v1/sync/pull", encode(pull_request{}), login.token);
        EXPECT_EQ(pull.status, 200u) << pull.body;
        EXPECT_EQ(c->get("/v1/healthz").status, 200u);
    }
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("\"event\":\"storage_failure\""), std::string::npos) << log;
    EXPECT_EQ(f.count("SELECT count(*) FROM records"), before); // nothing half-stored
    EXPECT_EQ(integrity(db_path), "ok");

    // Space again: the same push, retried unchanged, is applied exactly once.
    auto reply = c->post("/v1/sync/push", encode(req), login.token);
    ASSERT_EQ(reply.status, 200u) << reply.body;
    auto res = decode_push_result(reply.json);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->acks.size(), 5u);
    for (const auto& a : res->acks)
        EXPECT_EQ(a.status, ack_status::applied);
    tablet.apply_push_result(req, *res);
    sync_over(*c, tablet, login.token);
    EXPECT_EQ(tablet.pending_count(), 0u);
    EXPECT_EQ(f.count("SELECT count(*) FROM records"), before + 5);
    EXPECT_EQ(f.count("SELECT count(*) FROM (SELECT 1 FROM history WHERE mutation_seq IS NOT NULL "
                      "GROUP BY device, mutation_seq HAVING count(*) > 1)"),
              0);
    EXPECT_EQ(integrity(db_path), "ok");
    sql::connection db(db_path, sql::open_mode::read_only);
    engine eng(test_catalog(), {}, db);
    EXPECT_EQ(tablet.content_hash(), eng.content_hash(db, scope{town_a, {}}));
}

std::string fault_name(const ::testing::TestParamInfo<fault_vfs::fault>& p) {
    return p.param == fault_vfs::fault::disk_full ? "disk_full" : "io_error";
}

INSTANTIATE_TEST_SUITE_P(faults, storage_fault,
                         ::testing::Values(fault_vfs::fault::disk_full, fault_vfs::fault::io_error),
                         fault_name);

// An fsync of the WAL that fails (the kernel's EIO) after the group committed: the push is not
// acknowledged, no write is accepted any more (the kernel may have dropped the pages), the health
// check tells the operator, and no pull hands out the uncertain commit.
TEST(storage_fault_sync, a_failed_wal_fsync_refuses_writes_until_restart_and_health_says_so) {
    auto fail = std::make_shared<std::atomic<bool>>(false);
    server_fixture f([fail](server::config& cfg) {
        cfg.wal_sync = [fail](int fd) {
            if (fail->load())
                return EIO;
            return ::fdatasync(fd) == 0 ? 0 : errno;
        };
    });
    auto login = f.enrol("fw_a");
    auto other = f.enrol("fw_a"); // a second tablet, enrolled while writes are still taken
    replica tablet(":memory:", test_catalog(), login.device);
    auto c = f.client();
    sync_over(*c, tablet, login.token); // something durable before the fault
    const auto before = f.count("SELECT count(*) FROM records");
    tablet.create("item", item("kept"));
    sync_over(*c, tablet, login.token);
    ASSERT_EQ(f.count("SELECT count(*) FROM records"), before + 1);

    auto req = new_records(tablet, 3, "unsynced");
    ::testing::internal::CaptureStderr();
    fail->store(true);
    auto reply = c->post("/v1/sync/push", encode(req), login.token);
    EXPECT_EQ(reply.status, 503u) << reply.body;
    EXPECT_EQ(reply.error_code(), "storage_failure");
    auto health = c->get("/v1/healthz");
    EXPECT_EQ(health.status, 503u);
    EXPECT_EQ(health.error_code(), "storage_failed");
    // Even once the disk answers again: refused until a restart.
    fail->store(false);
    auto again = c->post("/v1/sync/push", encode(req), login.token);
    EXPECT_EQ(again.status, 503u) << again.body;
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("\"event\":\"wal_sync_failed\""), std::string::npos) << log;
    // Pulls are refused too: what the database shows includes a commit that may not be on the
    // disk, and a tablet must not be handed it (nor a cursor past it).
    auto pull = c->post("/v1/sync/pull", encode(pull_request{}), other.token);
    EXPECT_EQ(pull.status, 503u) << pull.body;
    EXPECT_EQ(pull.error_code(), "storage_failure");
    EXPECT_EQ(f.count("SELECT count(*) FROM records"), before + 4); // committed, not acknowledged
    // Stopped, the server leaves the WAL as it is for SQLite's recovery at the next start: no
    // checkpoint copies it into the database file after the failed fsync, nor at the close.
    const std::string db_path = f.dir.file("fieldsync.db");
    f.srv.reset();
    EXPECT_TRUE(fs::exists(db_path + "-wal"));
}

TEST(storage_startup, read_only_database_is_refused_with_a_reason) {
    fault_vfs::install();
    temp_dir dir;
    seed_database(dir.path().string());
    const std::string db_path = dir.file("fieldsync.db");
    std::string why;
    EXPECT_TRUE(check_database_file(db_path, startup_check::quick, &why)) << why;
    {
        // What the OS does with a 0444 file for a non-root user, or a read-only mount.
        fault_vfs::scoped fault(fault_vfs::fault::read_only_open);
        auto ok = check_database_file(db_path, startup_check::quick, &why);
        ASSERT_FALSE(ok);
        EXPECT_EQ(ok.error(), errc::storage_failure);
        EXPECT_NE(why.find("read-only"), std::string::npos) << why;
    }
    if (geteuid() != 0) { // root ignores file modes; the VFS above covers root
        fs::permissions(db_path,
                        fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
        auto out = child_process_server::expect_refusal(dir.path().string());
        EXPECT_FALSE(out.listened);
        EXPECT_EQ(out.status, 3);
        EXPECT_NE(out.log.find("read-only"), std::string::npos) << out.log;
    }
}

// The start-up check reads the file once front to back before walking it (a cold cache makes
// the walk's random reads 13 times slower at ten times a district); it reads no more than asked
// and copes with a file that is not there.
TEST(storage_startup, the_file_is_read_ahead_within_the_budget) {
    temp_dir dir;
    const std::string file = dir.file("data.bin");
    {
        std::ofstream out(file, std::ios::binary);
        std::string block(1 << 20, 'x');
        for (int i = 0; i < 3; ++i)
            out << block;
        out << "tail";
    }
    const std::uint64_t size = 3 * (1 << 20) + 4;
    EXPECT_EQ(read_into_page_cache(file, std::uint64_t{1} << 40), size);
    EXPECT_EQ(read_into_page_cache(file, 1'500'000), 1'500'000u);
    EXPECT_EQ(read_into_page_cache(file, 0), 0u);
    EXPECT_EQ(read_into_page_cache(dir.file("missing.bin"), 1000), 0u);
    EXPECT_GT(page_cache_budget(), 0u);
}

// `fieldsync backup` copies a live database: fieldsyncd commits every few milliseconds during a
// sync burst. The backup API restarts whenever another connection commits between two of its
// steps, so the copy must hold one snapshot, or it never finishes while the server is busy.
TEST(storage_backup, a_copy_finishes_while_another_connection_keeps_committing) {
    temp_dir dir;
    seed_database(dir.path().string());
    const std::string db_path = dir.file("fieldsync.db");
    { // 25 MB: the copy takes several steps of 1,024 pages
        sql::connection c(db_path, sql::open_mode::read_write);
        c.exec("CREATE TABLE filler(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
               "FROM n WHERE i < 100000) INSERT INTO filler SELECT randomblob(200) FROM n;");
    }
    // Commits as fast as they go (no fsync), until the copy is done or for a long while.
    constexpr int most = 200000;
    std::atomic<bool> copied{false};
    std::atomic<int> commits{0};
    std::thread load([&] {
        sql::connection c(db_path, sql::open_mode::read_write);
        c.exec("PRAGMA synchronous=OFF");
        while (!copied && commits < most) {
            c.exec("INSERT INTO filler VALUES(randomblob(200))");
            ++commits;
        }
    });
    while (commits == 0)
        std::this_thread::yield();
    std::string why;
    const std::string out = dir.file("copy.db");
    auto seq = backup_database(db_path, out, &why);
    int during = commits;
    copied = true;
    load.join();
    ASSERT_TRUE(seq) << why;
    EXPECT_LT(during, most) << "the copy finished only once the commits stopped";
    EXPECT_FALSE(fs::exists(out + ".partial"));
    EXPECT_FALSE(fs::exists(out + "-wal"));
    sql::connection copy(out, sql::open_mode::read_only);
    EXPECT_EQ(copy.integrity_check(), "ok");
    sql::statement n(copy.handle(), "SELECT count(*) FROM filler");
    ASSERT_TRUE(n.step());
    EXPECT_GE(n.int64(0), 100000); // one snapshot: the seeded rows and some of the commits
    // A copy called off (fieldsyncd stopping) leaves nothing behind.
    std::atomic<bool> stop{true};
    EXPECT_FALSE(backup_database(db_path, dir.file("stopped.db"), &why, &stop));
    EXPECT_FALSE(fs::exists(dir.file("stopped.db")));
    EXPECT_FALSE(fs::exists(dir.file("stopped.db.partial")));
    // A copy that cannot be written is an error with a reason, and leaves nothing behind.
    EXPECT_FALSE(backup_database(db_path, dir.file("no/such/folder/copy.db"), &why));
    EXPECT_NE(why.find("backup failed"), std::string::npos) << why;
}

// A data folder and how many records were acknowledged in it.
struct stored_district {
    temp_dir dir;
    std::string path() const { return dir.path().string(); }
    std::string db() const { return dir.file("fieldsync.db"); }
    std::int64_t acknowledged = 0;
};

// Stores `n` new records from a newly enrolled tablet; all acknowledged.
void store_records(child_process_server& srv, int n, std::int64_t& acknowledged) {
    auto login = srv.enrol("fw_a");
    replica tablet(":memory:", test_catalog(), login.device);
    for (int i = 0; i < n; ++i)
        tablet.create("item", item("r" + std::to_string(i)));
    https_client c(srv.port(), srv.cert());
    sync_over(c, tablet, login.token, 10);
    ASSERT_EQ(tablet.pending_count(), 0u);
    acknowledged += n;
}

void overwrite(const std::string& path, std::uint64_t offset, std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string garbage(n, '\0');
    for (auto& ch : garbage)
        ch = static_cast<char>(rng());
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}

TEST(storage_startup, damaged_database_file_is_refused_and_left_as_it_was) {
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{4096 * 3}}) {
        SCOPED_TRACE("garbage at byte " + std::to_string(offset));
        stored_district d;
        seed_database(d.path());
        {
            child_process_server srv(d.path());
            store_records(srv, 30, d.acknowledged);
            ASSERT_EQ(srv.terminate(), 0);
        }
        ASSERT_GT(fs::file_size(d.db()), offset + 8192);
        overwrite(d.db(), offset, 8192, 7);
        const auto damaged_size = fs::file_size(d.db());
        auto out = child_process_server::expect_refusal(d.path());
        EXPECT_FALSE(out.listened) << "fieldsyncd served a damaged database";
        EXPECT_EQ(out.status, 3) << out.log;
        EXPECT_NE(out.log.find("is damaged"), std::string::npos) << out.log;
        EXPECT_NE(out.log.find("backup"), std::string::npos) << out.log;
        EXPECT_EQ(fs::file_size(d.db()), damaged_size); // not "repaired" into something else
    }
}

TEST(storage_startup, clean_stop_leaves_no_wal_so_deleting_it_loses_nothing) {
    stored_district d;
    seed_database(d.path());
    {
        child_process_server srv(d.path());
        store_records(srv, 40, d.acknowledged);
        ASSERT_EQ(srv.terminate(), 0);
    }
    // SQLite checkpoints and removes the log when the last connection closes: a cleanly stopped
    // server keeps nothing only in the WAL.
    const std::string wal = d.db() + "-wal";
    EXPECT_TRUE(!fs::exists(wal) || fs::file_size(wal) == 0);
    fs::remove(wal);
    fs::remove(d.db() + "-shm");
    child_process_server srv(d.path());
    EXPECT_EQ(integrity(d.db()), "ok");
    EXPECT_EQ(count(d.db(), "SELECT count(*) FROM records"), d.acknowledged);
}

// The data folder holds personal data and the TLS private key: what fieldsyncd creates there is
// its owner's only (it runs with umask 077), whatever umask it was started with.
TEST(storage_startup, files_fieldsyncd_creates_are_readable_by_its_owner_only) {
    stored_district d;
    seed_database(d.path());
    const mode_t old_mask = ::umask(022); // the usual default, inherited by the child
    {
        child_process_server srv(d.path());
        store_records(srv, 5, d.acknowledged);
        ASSERT_EQ(srv.terminate(), 0);
    }
    ::umask(old_mask);
    int checked = 0;
    for (const auto& e : fs::directory_iterator(d.dir.path())) {
        const auto name = e.path().filename().string();
        if (!name.starts_with("dev-"))
            continue; // the database was made by this test, not by fieldsyncd
        ++checked;
        const auto perms = fs::status(e.path()).permissions();
        EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
            << name << " is readable by others";
    }
    EXPECT_GE(checked, 2) << "expected fieldsyncd to create dev-cert.pem and dev-key.pem";
}

TEST(storage_startup, wal_deleted_after_a_crash_is_refused_until_the_operator_decides) {
    stored_district d;
    seed_database(d.path());
    std::int64_t checkpointed = 0;
    {
        child_process_server srv(d.path());
        store_records(srv, 20, d.acknowledged);
        ASSERT_EQ(srv.terminate(), 0); // these 20 reach the database file
        checkpointed = d.acknowledged;
    }
    {
        child_process_server srv(d.path());
        store_records(srv, 20, d.acknowledged); // acknowledged, durable in the WAL only
        srv.kill9();
    }
    const std::string wal = d.db() + "-wal", shm = d.db() + "-shm";
    ASSERT_TRUE(fs::exists(wal));
    ASSERT_TRUE(fs::exists(shm));
    fs::remove(wal); // an operator "cleaning up" while the server is down
    const auto db_size = fs::file_size(d.db());

    auto out = child_process_server::expect_refusal(d.path());
    EXPECT_FALSE(out.listened) << "fieldsyncd served a database missing acknowledged data";
    EXPECT_EQ(out.status, 3) << out.log;
    EXPECT_NE(out.log.find("-wal is missing"), std::string::npos) << out.log;
    EXPECT_TRUE(fs::exists(shm)); // the evidence is kept
    EXPECT_EQ(fs::file_size(d.db()), db_size);

    // The operator accepts the loss knowingly: the server starts on what was checkpointed.
    fs::remove(shm);
    child_process_server srv(d.path());
    EXPECT_EQ(integrity(d.db()), "ok");
    EXPECT_EQ(count(d.db(), "SELECT count(*) FROM records"), checkpointed);
    std::int64_t more = 0;
    store_records(srv, 5, more); // and keeps working
    EXPECT_EQ(count(d.db(), "SELECT count(*) FROM records"), checkpointed + 5);
}

} // namespace
} // namespace fieldsync
