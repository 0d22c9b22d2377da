// Smoke runs of `fieldsync bench`: every scenario at tiny sizes against a real fieldsyncd over
// TLS. Checks that the report has its fields and that the server stored what the tablets sent;
// never timings (the suite runs on slow machines and under sanitizers).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <cstdio>
#include <string>

#include <sys/wait.h>

namespace {

namespace json = boost::json;

struct run_result {
    int status = -1;
    std::string out;
};

run_result run(const std::string& args) {
    const std::string cmd = std::string(FIELDSYNC_BIN_DIR) + "/fieldsync bench " + args;
    run_result r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        return r;
    std::array<char, 65536> buf{};
    for (std::size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;)
        r.out.append(buf.data(), n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// Runs one scenario small and returns its JSON entry (after checking the common fields).
json::object smoke(const std::string& scenario, const std::string& extra = "--scale 0") {
    auto r = run("--scenario " + scenario + " --tablets 2 --records small --json " + extra);
    EXPECT_EQ(r.status, 0) << r.out;
    json::object entry;
    boost::system::error_code ec;
    auto doc = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << "not JSON: " << r.out;
    if (ec || !doc.is_object())
        return entry;
    const auto* list = doc.as_object().if_contains("scenarios");
    EXPECT_TRUE(list && list->is_array() && list->as_array().size() == 1) << r.out;
    if (!list || !list->is_array() || list->as_array().empty())
        return entry;
    entry = list->as_array().front().as_object();
    EXPECT_EQ(entry.at("scenario").as_string(), scenario);
    for (const char* k : {"records_per_s", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "wall_s",
                          "records", "requests"})
        EXPECT_TRUE(entry.contains(k) && entry.at(k).is_number()) << k << " in " << r.out;
    EXPECT_TRUE(entry.contains("server_peak_rss_mb")) << r.out;
    EXPECT_TRUE(entry.contains("server_cpu_s")) << r.out;
    EXPECT_EQ(entry.at("errors").to_number<std::int64_t>(), 0) << r.out;
    EXPECT_GT(entry.at("records").to_number<std::int64_t>(), 0) << r.out;
    return entry;
}

// A scenario against the bench's own fieldsyncd: the server's memory was read, and its database
// holds exactly the records the run expected.
void expect_stored(const json::object& e, std::int64_t expected) {
    if (e.empty())
        return;
    ASSERT_TRUE(e.at("server_peak_rss_mb").is_number());
    EXPECT_GT(e.at("server_peak_rss_mb").to_number<double>(), 0);
    ASSERT_TRUE(e.at("stored").is_int64()) << json::serialize(e);
    ASSERT_TRUE(e.at("expected_stored").is_int64());
    EXPECT_EQ(e.at("stored").as_int64(), e.at("expected_stored").as_int64());
    EXPECT_EQ(e.at("stored").as_int64(), expected);
}

TEST(bench_smoke, push_new_stores_every_record) {
    auto e = smoke("push-new");
    expect_stored(e, 200);
    if (!e.empty()) {
        EXPECT_EQ(e.at("records").to_number<std::int64_t>(), 200);
    }
}

TEST(bench_smoke, push_mixed_opens_conflicts) {
    auto e = smoke("push-mixed");
    if (e.empty())
        return;
    ASSERT_TRUE(e.at("stored").is_int64());
    EXPECT_EQ(e.at("stored").as_int64(), e.at("expected_stored").as_int64());
    const auto& d = e.at("details").as_object();
    EXPECT_GT(d.at("edits").to_number<std::int64_t>(), 0);
    // Both tablets edit the same households from the same base: the second edit conflicts.
    EXPECT_GT(d.at("conflicts_in_db").to_number<std::int64_t>(), 0);
}

TEST(bench_smoke, initial_pull_pulls_the_whole_township) {
    auto e = smoke("initial-pull");
    expect_stored(e, 500);
    if (!e.empty()) { // two tablets, each pulled all 500
        EXPECT_EQ(e.at("records").to_number<std::int64_t>(), 1000);
    }
}

TEST(bench_smoke, day_end_pushes_then_pulls) {
    auto e = smoke("day-end");
    expect_stored(e, 100);
}

TEST(bench_smoke, idle_connections_stay_open) {
    auto e = smoke("idle-connections");
    expect_stored(e, 2 * 2 * 2 * 50); // two phases x two tablets x two rounds x 50 records
    if (e.empty())
        return;
    const auto& d = e.at("details").as_object();
    EXPECT_EQ(d.at("idle_connections_alive_at_end").to_number<std::int64_t>(),
              d.at("idle_connections").to_number<std::int64_t>());
}

TEST(bench_smoke, sqlite_reference_needs_no_server) {
    auto e = smoke("sqlite-reference");
    if (e.empty())
        return;
    EXPECT_TRUE(e.at("server_peak_rss_mb").is_null());
    EXPECT_EQ(e.at("records").to_number<std::int64_t>(), 2000);
    EXPECT_TRUE(e.at("details").as_object().contains("random_keys_rows_per_s"));
}

TEST(bench_smoke, bad_options_are_refused) {
    EXPECT_EQ(run("--scenario no-such-thing").status, 2);
    EXPECT_EQ(run("--records -5").status, 2);
    EXPECT_EQ(run("--server http://127.0.0.1:1").status, 2);
}

} // namespace
