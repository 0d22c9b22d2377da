// Crash atomicity: a child process applies pushes to a file database, one batch of mutations
// per transaction, and is killed with SIGKILL at random moments. After every kill the database
// must pass PRAGMA integrity_check, every batch must be wholly present or wholly absent, the
// device's last applied number must match the batches present, and every batch the child had
// reported as committed must be there (an acknowledged push is durable).
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <csignal>
#include <map>
#include <random>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

constexpr int per_batch = 12;    // mutations per batch (one push, one transaction)
constexpr int max_batches = 900; // the child stops by itself after this many
constexpr std::int64_t t0 = 1764316800000;
const char* const device = "tab-crash";

// The shared record every batch updates, so that a batch also changes existing state.
uuid shared_id() {
    return *uuid::parse("0190a1b2-0000-7000-8000-000000000001");
}

push_request batch(int k, uuid_v7_generator& gen) {
    push_request req;
    req.schema_version = 1;
    auto base_seq = static_cast<std::uint64_t>(k - 1) * per_batch;
    const hlc clock{t0 + k, 0, device};
    // Mutation 1: the shared record (created by batch 1, updated by every later one).
    mutation s;
    s.seq = base_seq + 1;
    s.collection = "item";
    s.id = shared_id();
    if (k == 1) {
        for (const auto& kv : item("shared"))
            s.fields.emplace_back(std::string(kv.key()), field_write{kv.value(), clock, {}});
        s.fields.emplace_back("note", field_write{json::value("batch 1"), clock, {}});
    } else {
        s.fields.emplace_back("note", field_write{json::value("batch " + std::to_string(k)), clock,
                                                  hlc{t0 + k - 1, 0, device}});
    }
    req.mutations.push_back(std::move(s));
    // The rest: new records carrying the batch number.
    for (int i = 1; i < per_batch; ++i) {
        mutation m;
        m.seq = base_seq + static_cast<std::uint64_t>(i) + 1;
        m.collection = "item";
        m.id = gen.make(t0 + k);
        auto fields = item("b" + std::to_string(k) + "-" + std::to_string(i));
        fields["count"] = k;
        for (const auto& kv : fields)
            m.fields.emplace_back(
                std::string(kv.key()),
                field_write{kv.value(), hlc{t0 + k, static_cast<std::uint32_t>(i), device}, {}});
        req.mutations.push_back(std::move(m));
    }
    return req;
}

// The child: continue after the last batch present, forever (until killed). Never returns.
[[noreturn]] void child_main(const std::string& path, int report_fd, std::uint64_t seed) {
    int code = 0;
    try {
        sql::connection c(path, sql::open_mode::read_write);
        engine eng(test_catalog(), {}, c);
        const auto who = worker(device);
        std::int64_t last = 0;
        {
            sql::statement s(c.handle(), "SELECT last_seq FROM devices WHERE device = ?");
            s.bind(1, std::string_view(device));
            if (s.step())
                last = s.int64(0);
        }
        uuid_v7_generator gen(seed);
        for (int k = static_cast<int>(last / per_batch) + 1; k <= max_batches; ++k) {
            auto req = batch(k, gen);
            sql::transaction tx(c);
            auto res = eng.push(c, who, req);
            tx.commit();
            if (res.applied != per_batch)
                _exit(4);
            char b = 'x';
            if (write(report_fd, &b, 1) != 1)
                _exit(5);
        }
    } catch (...) {
        code = 3;
    }
    _exit(code);
}

struct db_state {
    std::string integrity;
    std::int64_t device_last = 0;
    std::map<std::int64_t, int> records_per_batch; // count field -> records
    std::string shared_note;
    std::int64_t history = 0, quarantine = 0, max_record_seq = 0, meta_last_seq = 0;
};

db_state inspect(const std::string& path) {
    db_state st;
    sql::connection c(path, sql::open_mode::read_write);
    st.integrity = c.integrity_check();
    auto one = [&](const char* q) {
        sql::statement s(c.handle(), q);
        return s.step() && !s.is_null(0) ? s.int64(0) : 0;
    };
    {
        sql::statement s(c.handle(), "SELECT last_seq FROM devices WHERE device = ?");
        s.bind(1, std::string_view(device));
        if (s.step())
            st.device_last = s.int64(0);
    }
    {
        sql::statement s(c.handle(), "SELECT id, fields FROM records");
        while (s.step()) {
            auto fields = json::parse(s.text(1)).as_object();
            if (*uuid::from_blob(s.blob(0)) == shared_id())
                st.shared_note = std::string(fields.at("note").as_string());
            else
                ++st.records_per_batch[fields.at("count").as_int64()];
        }
    }
    st.history = one("SELECT count(*) FROM history");
    st.quarantine = one("SELECT count(*) FROM quarantine");
    st.max_record_seq = one("SELECT max(seq) FROM records");
    st.meta_last_seq = one("SELECT value FROM meta WHERE key = 'last_seq'");
    return st;
}

TEST(crash, sigkill_leaves_every_batch_wholly_present_or_absent) {
    temp_dir dir;
    const std::string path = dir.file("district.db");
    { server_harness init(path); } // migrated, with divisions; closed before any fork
    (void)test_catalog();          // loaded once in the parent, inherited by the children

    std::mt19937_64 rng(20251128);
    constexpr int rounds = 30;
    int acknowledged = 0; // batches the children reported committed
    int kills = 0;
    for (int round = 0; round < rounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        std::fflush(nullptr);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(path, fds[1], 1000 + static_cast<std::uint64_t>(round));
        }
        close(fds[1]);
        // Let it commit a few batches (0–3), then kill it a random moment later.
        int wait_for = static_cast<int>(rng() % 4);
        bool ended = false;
        for (int i = 0; i < wait_for; ++i) {
            char b;
            if (read(fds[0], &b, 1) != 1) {
                ended = true;
                break;
            }
            ++acknowledged;
        }
        if (!ended)
            usleep(static_cast<useconds_t>(rng() % 4000));
        kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        // Count the reports that arrived before the kill as well.
        char buf[64];
        for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
            acknowledged += static_cast<int>(n);
        close(fds[0]);
        if (WIFEXITED(status))
            ASSERT_EQ(WEXITSTATUS(status), 0) << "the child failed on its own";
        else
            ++kills;

        auto st = inspect(path);
        ASSERT_EQ(st.integrity, "ok");
        ASSERT_EQ(st.device_last % per_batch, 0) << "a partial batch was numbered";
        const std::int64_t present = st.device_last / per_batch;
        ASSERT_GE(present, acknowledged) << "a batch reported committed is gone";
        // Batches 1..present wholly, nothing else.
        ASSERT_EQ(static_cast<std::int64_t>(st.records_per_batch.size()), present);
        for (const auto& [k, n] : st.records_per_batch) {
            EXPECT_GE(k, 1);
            EXPECT_LE(k, present);
            EXPECT_EQ(n, per_batch - 1) << "batch " << k << " is partial";
        }
        EXPECT_EQ(st.shared_note, present ? "batch " + std::to_string(present) : "");
        EXPECT_EQ(st.history, present * per_batch);
        EXPECT_EQ(st.quarantine, 0);
        EXPECT_EQ(st.max_record_seq, st.meta_last_seq);
        if (HasFailure())
            break;
        // The next child may have committed more than was reported before the kill; count it.
        acknowledged = static_cast<int>(present);
    }
    EXPECT_GT(kills, rounds / 2);
    std::printf("[ stats    ] %d kills, %d batches in the end\n", kills, acknowledged);
}

} // namespace
} // namespace fieldsync
