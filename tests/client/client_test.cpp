// The sync client's own behaviour: backoff, pinning, enrolment failures, retries when the
// server is away, and the per-record status model.
#include "client_fixture.hpp"
#include "sync/storage_check.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace fieldsync::testing {
namespace {

using client::record_state;
using client::sync_outcome;

TEST(client_backoff, grows_exponentially_with_jitter_up_to_the_cap) {
    client::backoff_policy p;
    p.initial = std::chrono::milliseconds(1000);
    p.max = std::chrono::milliseconds(300000);
    std::mt19937_64 rng(1);
    for (int attempt = 0; attempt < 20; ++attempt) {
        std::int64_t full =
            std::min<std::int64_t>(300000, std::int64_t{1000} << std::min(attempt, 20));
        for (int i = 0; i < 50; ++i) {
            auto d = client::backoff_delay(p, attempt, rng).count();
            EXPECT_GE(d, full / 2);
            EXPECT_LE(d, full);
        }
    }
    // Jitter: two tablets do not retry in lock-step.
    std::mt19937_64 a(1), b(2);
    int same = 0;
    for (int i = 0; i < 20; ++i)
        same += client::backoff_delay(p, 5, a) == client::backoff_delay(p, 5, b);
    EXPECT_LT(same, 5);
}

TEST(client_pin, fingerprints_normalise) {
    std::string hex(64, 'a');
    EXPECT_EQ(client::normalise_fingerprint(hex), hex);
    std::string colons;
    for (int i = 0; i < 32; ++i)
        colons += (i ? ":" : "") + std::string("AA");
    EXPECT_EQ(client::normalise_fingerprint(colons), hex);
    EXPECT_EQ(client::normalise_fingerprint("abc"), "");
    EXPECT_EQ(client::normalise_fingerprint(std::string(64, 'g')), "");
}

TEST(client_enrol, wrong_pin_is_refused_and_right_pin_or_certificate_file_works) {
    server_fixture f;
    temp_dir d;
    std::string url = "https://127.0.0.1:" + std::to_string(f.port());
    std::string why;
    auto code = make_code(f.dir.path().string(), "fw_a");
    auto bad = client::sync_client::enrol(tablet_options(d.file("a")), url, code,
                                          std::string(64, '0'), {}, &why);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::unsupported) << why;
    // The code was never presented to the server: it still works, with the certificate file.
    auto opts = tablet_options(d.file("b"));
    opts.ca_file = f.cert();
    auto good = client::sync_client::enrol(opts, url, code, {}, {}, &why);
    ASSERT_TRUE(good) << why;
    EXPECT_EQ((*good)->sync().outcome, sync_outcome::complete);
    // Reopening from the state folder keeps the identity.
    auto device = (*good)->identity().device;
    good->reset();
    auto again = client::sync_client::open(opts, &why);
    ASSERT_TRUE(again) << why;
    EXPECT_EQ((*again)->identity().device, device);
    EXPECT_EQ((*again)->sync().outcome, sync_outcome::complete);
}

TEST(client_enrol, bad_code_and_used_folder_are_refused) {
    server_fixture f;
    temp_dir d;
    std::string url = "https://127.0.0.1:" + std::to_string(f.port());
    auto bad = client::sync_client::enrol(tablet_options(d.file("a")), url, "AAAA-BBBB-CCCC",
                                          f.srv->fingerprint());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::unauthorized);
    auto t = enrol_tablet(f, "fw_a");
    auto twice =
        client::sync_client::enrol(tablet_options(t->dir.file("state")), url,
                                   make_code(f.dir.path().string(), "fw_a"), f.srv->fingerprint());
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error(), errc::invalid_argument);
}

TEST(client_retry, unreachable_server_backs_off_then_reports_offline_keeping_the_outbox) {
    server_fixture f;
    auto t = enrol_tablet(f, "fw_a");
    ASSERT_TRUE((*t)->create("item", item_fields("kept")));
    std::vector<std::int64_t> waits;
    auto opts = tablet_options(t->dir.file("state"));
    opts.backoff.initial = std::chrono::milliseconds(100);
    opts.backoff.max = std::chrono::milliseconds(1000);
    opts.backoff.max_attempts = 6;
    opts.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d.count()); };
    t->c.reset();
    f.srv->stop();
    for (bool with_writes : {true, false}) {
        waits.clear();
        auto c = client::sync_client::open(opts);
        ASSERT_TRUE(c);
        if (!with_writes) { // nothing to push: the pull is retried all the same
            auto& db = (*c)->local().db();
            db.exec("DELETE FROM outbox");
        }
        auto rep = (*c)->sync();
        EXPECT_EQ(rep.outcome, sync_outcome::offline);
        EXPECT_EQ(rep.retries, 5u);
        ASSERT_EQ(waits.size(), 5u);
        const std::int64_t caps[] = {100, 200, 400, 800, 1000};
        for (std::size_t i = 0; i < waits.size(); ++i) {
            EXPECT_GE(waits[i], caps[i] / 2);
            EXPECT_LE(waits[i], caps[i]);
        }
        if (with_writes) {
            EXPECT_EQ((*c)->counts().pending, 1u);
        }
    }
}

TEST(client_status, rejected_records_stay_listed_with_the_servers_message) {
    server_fixture f;
    auto t = enrol_tablet(f, "fw_a");
    auto good = (*t)->create("item", item_fields("fine"));
    auto bad = (*t)->create(
        "item",
        {{"township", town_a}, {"village", village_a1}, {"name", "too many"}, {"count", 5000}});
    ASSERT_TRUE(good && bad);
    auto pending = (*t)->counts();
    EXPECT_EQ(pending.pending, 2u);
    auto rep = (*t)->sync();
    ASSERT_EQ(rep.outcome, sync_outcome::complete);
    EXPECT_EQ(rep.rejected, 1u);
    auto s = (*t)->status(*bad);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, record_state::rejected);
    EXPECT_EQ(s->code, "out_of_range");
    EXPECT_EQ(s->field, "count");
    EXPECT_FALSE(s->message.empty());
    EXPECT_EQ((*t)->status(*good)->state, record_state::synced);
    auto n = (*t)->counts();
    EXPECT_EQ(n.synced, 1u);
    EXPECT_EQ(n.rejected, 1u);
    EXPECT_EQ(n.pending, 0u);
}

TEST(client_status, returned_for_correction_shows_the_township_heads_comment) {
    server_fixture f;
    auto t = enrol_tablet(f, "fw_a");
    auto id = (*t)->create("item", item_fields("needs a fix"));
    ASSERT_TRUE(id);
    ASSERT_EQ((*t)->sync().outcome, sync_outcome::complete);
    // What the review writes, as the server (sync/review.hpp): review state and comment.
    {
        sql::connection c(f.dir.file("fieldsync.db"), sql::open_mode::read_write);
        engine e(test_catalog(), engine_config{}, c);
        sql::transaction tx(c);
        principal head{"head_a", "server", scope{town_a, {}}};
        auto ack = e.write(c, head, "item", *id,
                           boost::json::object{{"_review_state", "has_issues"},
                                               {"_review_comment", "请核对姓名"}});
        ASSERT_EQ(ack.status, ack_status::applied) << ack.code << " " << ack.message_en;
        tx.commit();
    }
    ASSERT_EQ((*t)->sync().outcome, sync_outcome::complete);
    auto s = (*t)->status(*id);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, record_state::returned);
    EXPECT_EQ(s->message, "请核对姓名");
    EXPECT_EQ((*t)->counts().returned, 1u);

    // The worker corrects it: after the next sync it is no longer shown as returned, and the
    // head has it to review again.
    ASSERT_TRUE((*t)->update(*id, boost::json::object{{"name", "fixed"}}));
    ASSERT_EQ((*t)->sync().outcome, sync_outcome::complete);
    EXPECT_EQ((*t)->status(*id)->state, record_state::synced);
    EXPECT_EQ((*t)->counts().returned, 0u);
}

// The district restores fieldsyncd from its nightly backup. A tablet whose pushes were
// acknowledged after that backup is asked for numbers it no longer has: it used to stop syncing
// for good ("the server asks for mutations this tablet no longer has").
TEST(client_restore, a_tablet_keeps_syncing_after_the_server_is_restored_from_a_backup) {
    server_fixture f;
    auto t = enrol_tablet(f, "fw_a");
    ASSERT_TRUE((*t)->create("item", item_fields("kept in the backup")));
    ASSERT_EQ((*t)->sync().outcome, sync_outcome::complete);
    const std::string db = f.dir.file("fieldsync.db"), copy = f.dir.file("backup.db");
    std::string why;
    ASSERT_TRUE(backup_database(db, copy, &why)) << why;
    ASSERT_TRUE((*t)->create("item", item_fields("after the backup")));
    ASSERT_EQ((*t)->sync().outcome, sync_outcome::complete);

    const auto port = f.port();
    f.srv->stop();
    f.srv.reset();
    for (const char* end : {"", "-wal", "-shm"})
        std::filesystem::remove(db + end);
    std::filesystem::copy_file(copy, db);
    auto cfg = test_config(f.dir.path().string());
    cfg.listen = "127.0.0.1:" + std::to_string(port);
    f.srv = std::make_unique<server::server>(cfg);
    f.srv->start();

    auto fresh = (*t)->create("item", item_fields("recorded after the restore"));
    ASSERT_TRUE(fresh);
    auto r = (*t)->sync();
    EXPECT_EQ(r.outcome, sync_outcome::complete) << r.error;
    EXPECT_EQ(r.reset_reason, "database_changed"); // a backup has an epoch of its own
    EXPECT_EQ((*t)->counts().pending, 0u);
    EXPECT_EQ((*t)->status(*fresh)->state, record_state::synced);
    EXPECT_EQ(f.count("SELECT count(*) FROM records"), 2);
}

} // namespace
} // namespace fieldsync::testing
