// fieldsync bench: the scenarios. Each enrols its simulated tablets (untimed), builds what they
// will send (untimed), then releases every tablet thread at once and measures until the last
// answer: wall time, per-request latency, the server's CPU and memory from /proc.
//
// The load client is the lean one in bench_net.cpp (Beast, keep-alive, one connection and one
// thread per tablet, request bodies pre-built, answers checked but pull pages only scanned), so
// that the client spends as little of the shared CPU as possible; see docs/benchmarks.md.
#include "cli/bench.hpp"
#include "sync/sqlite.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <latch>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace fieldsync::cli::bench {

namespace json = boost::json;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

std::string ms_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct tablet {
    std::string device, token, township;
    const township_info* town = nullptr;
    std::unique_ptr<https_conn> conn;
    std::unique_ptr<tablet_clock> clock;
    std::unique_ptr<record_factory> factory;
    std::uint64_t seq = 0;
    std::string cursor;
    std::vector<std::string> bodies; // pre-built push bodies
    std::size_t body_records = 0;    // mutations in `bodies`
};

// Enrols one tablet per township entry (codes from the target), each with its own keep-alive
// connection. Untimed.
std::vector<tablet> enrol(scenario_context& ctx, const std::vector<std::string>& townships) {
    auto codes = ctx.srv.codes(townships);
    std::vector<tablet> out(codes.size());
    const auto ep = ctx.srv.where();
    https_conn admin(ep);
    for (std::size_t i = 0; i < codes.size(); ++i) {
        json::object req{{"code", codes[i]}, {"label", "bench " + std::to_string(i)}};
        auto r = admin.post("/v1/enrol", json::serialize(req));
        if (r.status != 200)
            throw std::runtime_error("enrol: HTTP " + std::to_string(r.status) + " " + r.body);
        auto doc = json::parse(r.body).as_object();
        auto& t = out[i];
        t.device = std::string(doc.at("device").as_string());
        t.token = std::string(doc.at("token").as_string());
        t.township = std::string(doc.at("scope").at("township").as_string());
        t.town = find_township(t.township);
        if (!t.town)
            throw std::runtime_error("township " + t.township +
                                     " is not in the demo district; bench needs a demo district");
        t.clock = std::make_unique<tablet_clock>(t.device);
        t.factory = std::make_unique<record_factory>(std::hash<std::string>{}(t.device), *t.town,
                                                     "调查员" + std::to_string(i % 100));
    }
    // Connections in parallel: 1,000 TLS handshakes one after another are slow to wait for.
    std::vector<std::thread> th;
    std::mutex m;
    std::string failure;
    const std::size_t workers = std::min<std::size_t>(8, std::max<std::size_t>(1, out.size()));
    for (std::size_t w = 0; w < workers; ++w)
        th.emplace_back([&, w] {
            for (std::size_t i = w; i < out.size(); i += workers) {
                try {
                    out[i].conn = std::make_unique<https_conn>(ep);
                } catch (const std::exception& e) {
                    std::lock_guard lock(m);
                    failure = e.what();
                }
            }
        });
    for (auto& x : th)
        x.join();
    if (!failure.empty())
        throw std::runtime_error("connect: " + failure);
    return out;
}

// Round-robin over the district's townships (all 40 take part, as in a real district).
std::vector<std::string> spread(std::size_t n, std::size_t groups) {
    const auto& towns = district_townships();
    groups = std::max<std::size_t>(1, std::min(groups, towns.size()));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(towns[i % groups].code);
    return out;
}

struct push_outcome {
    bool ok = false;
    std::size_t applied = 0, conflicts = 0, rejected = 0;
    std::string error;
};

push_outcome check_push(const reply& r, std::uint64_t expect_last) {
    push_outcome o;
    if (r.status != 200) {
        o.error = "push: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
        return o;
    }
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object()) {
        o.error = "push: unparsable answer";
        return o;
    }
    const auto& doc = v.as_object();
    for (const auto& a : doc.at("acks").as_array()) {
        const auto& ao = a.as_object();
        auto st = ao.at("status").as_string();
        if (st == "applied")
            ++o.applied;
        else if (st == "rejected") {
            ++o.rejected;
            if (o.error.empty())
                o.error = "rejected: " + std::string(ao.at("code").as_string());
        }
        if (auto* c = ao.if_contains("conflicts"))
            o.conflicts += c->as_array().size();
    }
    auto last = doc.at("last_applied").to_number<std::uint64_t>();
    if (last != expect_last && o.error.empty())
        o.error = "push: last_applied " + std::to_string(last) + ", expected " +
                  std::to_string(expect_last);
    o.ok = o.error.empty();
    return o;
}

// A pull page, scanned rather than decoded (the load client must stay cheap): every change has
// exactly one "collection" key, and the top-level "cursor" and "complete" follow the changes
// (record fields named "cursor" do not exist; strings inside values are escaped).
struct page_scan {
    std::size_t changes = 0;
    std::string cursor;
    bool complete = false;
    bool ok = false;
};

page_scan scan_page(const std::string& body) {
    page_scan p;
    constexpr std::string_view key = "\"collection\":";
    for (auto pos = body.find(key); pos != std::string::npos; pos = body.find(key, pos + 1))
        ++p.changes;
    constexpr std::string_view ck = "\"cursor\":\"";
    auto c = body.rfind(ck);
    if (c == std::string::npos)
        return p;
    auto end = body.find('"', c + ck.size());
    if (end == std::string::npos)
        return p;
    p.cursor = body.substr(c + ck.size(), end - c - ck.size());
    p.complete = body.find("\"complete\":true", c) != std::string::npos;
    p.ok = true;
    return p;
}

// Pulls until complete; returns the records pulled (-1 on failure, with `error`).
std::int64_t pull_all(tablet& t, std::uint32_t limit, latencies& lat, std::size_t& requests,
                      std::string& error, progress* prog = nullptr) {
    std::int64_t total = 0;
    for (int pages = 0; pages < 1000000; ++pages) {
        std::string body = "{\"cursor\":";
        body += t.cursor.empty() ? "null" : "\"" + t.cursor + "\"";
        body += ",\"limit\":" + std::to_string(limit) + ",\"shared_clocks\":true}";
        const auto t0 = clock_type::now();
        auto r = t.conn->post("/v1/sync/pull", std::move(body), t.token);
        lat.add(ms_since(t0));
        ++requests;
        if (r.status != 200) {
            error = "pull: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
            return -1;
        }
        auto p = scan_page(r.body);
        if (!p.ok) {
            error = "pull: answer without a cursor";
            return -1;
        }
        total += static_cast<std::int64_t>(p.changes);
        if (prog)
            prog->done += p.changes;
        t.cursor = std::move(p.cursor);
        if (p.complete)
            return total;
    }
    error = "pull: never complete";
    return -1;
}

// Runs work(i) on one thread per tablet, all released together; returns the wall seconds from
// the release to the last thread's end.
template <class F>
double run_together(std::size_t n, F work) {
    std::latch ready(static_cast<std::ptrdiff_t>(n)), go(1);
    std::vector<std::thread> th;
    th.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        th.emplace_back([&, i] {
            ready.count_down();
            go.wait();
            work(i);
        });
    ready.wait();
    const auto t0 = clock_type::now();
    go.count_down();
    for (auto& x : th)
        x.join();
    return ms_since(t0) / 1000.0;
}

// Server and client figures around the timed phase.
class measure {
public:
    explicit measure(scenario_context& ctx) : pid_(ctx.srv.pid()) {
        ctx.prog.phase = "running";
        if (!ctx.opt.profile_dir.empty() && pid_ > 0) {
            fs::create_directories(ctx.opt.profile_dir);
            const auto out = ctx.opt.profile_dir + "/" + ctx.scenario + ".perf.data";
            perf_ = start_profiler(pid_, out);
            if (perf_ <= 0)
                throw std::runtime_error("--profile: cannot start perf (install linux-perf)");
        }
        before_ = sample_process(pid_);
        client_ = self_cpu_seconds();
    }
    ~measure() { stop_profiler(perf_); }
    measure(const measure&) = delete;
    measure& operator=(const measure&) = delete;
    void finish(scenario_result& r) {
        r.client_cpu_s = self_cpu_seconds() - client_;
        stop_profiler(perf_);
        perf_ = -1;
        auto after = sample_process(pid_);
        if (before_.ok && after.ok) {
            r.server_cpu_s = after.cpu_s - before_.cpu_s;
            r.server_peak_rss_mb = after.hwm_mb;
            r.server_rss_mb = after.rss_mb;
        }
    }

private:
    pid_t pid_;
    pid_t perf_ = -1;
    proc_sample before_;
    double client_ = 0;
};

struct error_sink {
    std::mutex m;
    std::size_t count = 0;
    std::string first;
    void add(const std::string& e) {
        std::lock_guard lock(m);
        if (count++ == 0)
            first = e;
    }
};

std::string records_sql(const scenario_context& ctx) {
    return "SELECT count(*) FROM records WHERE created_by LIKE 'bench-" + ctx.run_id + "-%'";
}

void finish_errors(scenario_result& r, error_sink& errors) {
    r.errors = errors.count;
    if (errors.count)
        r.notes.push_back(std::to_string(errors.count) +
                          " failed requests; first: " + errors.first);
}

// Builds each tablet's push bodies: `per_tablet` mutations in batches of `batch`; `edit_every`
// > 0 makes every edit_every-th mutation an edit of the township's shared pool.
struct pool_entry {
    std::string id, clock;
};

// Returns the number of edits among them.
std::size_t build_bodies(tablet& t, std::size_t per_tablet, std::size_t batch,
                         const std::vector<pool_entry>* pool, double share, std::uint64_t seed) {
    std::vector<std::size_t> order;
    if (pool) {
        order.resize(pool->size());
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
    }
    std::size_t next_edit = 0, made = 0;
    double owed = 0;
    while (made < per_tablet) {
        std::string muts;
        const std::size_t n = std::min(batch, per_tablet - made);
        for (std::size_t i = 0; i < n; ++i) {
            if (i)
                muts += ',';
            owed += share;
            if (pool && owed >= 1.0 && next_edit < order.size()) {
                owed -= 1.0;
                const auto& e = (*pool)[order[next_edit++]];
                t.factory->edit_household(muts, ++t.seq, t.clock->next(), e.id, e.clock);
            } else {
                t.factory->new_record(muts, ++t.seq, t.clock->next());
            }
        }
        t.bodies.push_back(push_body(muts));
        made += n;
    }
    t.body_records = made;
    return next_edit;
}

// Every tablet sends its bodies one after another; returns the pushed totals.
struct push_totals {
    std::atomic<std::size_t> applied{0}, conflicts{0}, rejected{0}, requests{0};
};

void push_bodies(tablet& t, std::uint64_t first_seq, latencies& lat, push_totals& tot,
                 error_sink& errors, progress& prog) {
    std::uint64_t last = first_seq - 1;
    for (auto& body : t.bodies) {
        // The number of mutations in this body: count its "seq" keys cheaply.
        std::size_t n = 0;
        for (auto p = body.find("{\"seq\":"); p != std::string::npos;
             p = body.find("{\"seq\":", p + 1))
            ++n;
        last += n;
        const auto t0 = clock_type::now();
        reply r;
        try {
            r = t.conn->post("/v1/sync/push", std::move(body), t.token);
        } catch (const std::exception& e) {
            errors.add(std::string("push: ") + e.what());
            return;
        }
        lat.add(ms_since(t0));
        ++tot.requests;
        auto o = check_push(r, last);
        tot.applied += o.applied;
        tot.conflicts += o.conflicts;
        tot.rejected += o.rejected;
        prog.done += n;
        if (!o.ok) {
            errors.add(o.error);
            if (r.status != 200)
                return;
        }
    }
    t.bodies.clear();
}

std::size_t sized(std::size_t v, std::size_t dflt) {
    return v ? v : dflt;
}

// ---- push-new ----------------------------------------------------------------------------------

scenario_result push_new(scenario_context& ctx) {
    const auto& o = ctx.opt;
    scenario_result r;
    r.scenario = "push-new";
    r.client = "lean HTTPS (Beast, keep-alive)";
    const std::size_t tablets = sized(o.tablets, o.small ? 2 : 64);
    const std::size_t batch = sized(o.batch, o.small ? 50 : 200);
    const std::size_t total = sized(ctx.records, default_records(r.scenario, o.small));
    auto ts = enrol(ctx, spread(tablets, 40));
    for (std::size_t i = 0; i < ts.size(); ++i)
        build_bodies(ts[i], total / tablets + (i < total % tablets ? 1 : 0), batch, nullptr, 0, i);
    ctx.prog.total = total;
    std::vector<latencies> lat(ts.size());
    push_totals tot;
    error_sink errors;
    measure m(ctx);
    r.wall_s = run_together(
        ts.size(), [&](std::size_t i) { push_bodies(ts[i], 1, lat[i], tot, errors, ctx.prog); });
    m.finish(r);
    for (auto& l : lat)
        r.lat.merge(l);
    r.by_kind["push"] = r.lat;
    r.tablets = tablets;
    r.records = tot.applied;
    r.requests = tot.requests;
    finish_errors(r, errors);
    r.expected_stored = static_cast<std::int64_t>(total);
    if (!ctx.srv.data_dir().empty())
        r.stored = count_rows(ctx.srv.data_dir(), records_sql(ctx));
    r.extra["batch"] = batch;
    r.extra["rejected"] = tot.rejected.load();
    r.target = ">= 100,000 records/s (64 tablets x 200, durable)";
    if (tablets >= 64 && batch == 200 && total >= 100000)
        r.meets_target = r.records_per_s() >= 100000 && r.errors == 0;
    return r;
}

// ---- push-mixed --------------------------------------------------------------------------------

scenario_result push_mixed(scenario_context& ctx) {
    const auto& o = ctx.opt;
    scenario_result r;
    r.scenario = "push-mixed";
    r.client = "lean HTTPS (Beast, keep-alive)";
    const std::size_t tablets = sized(o.tablets, o.small ? 2 : 64);
    const std::size_t batch = sized(o.batch, o.small ? 50 : 200);
    const std::size_t total = sized(ctx.records, default_records(r.scenario, o.small));
    const double share = o.mixed_share;
    // Eight tablets per township share its pool of households, so edits meet.
    const std::size_t groups = std::max<std::size_t>(1, tablets / 8);
    auto ts = enrol(ctx, spread(tablets, groups));
    const std::size_t per_tablet = total / tablets + 1;
    const std::size_t pool_size =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(per_tablet * share)) + 1);

    // The pool: the first tablet of each township pushes its households (untimed).
    std::map<std::string, std::vector<pool_entry>> pools;
    std::size_t pool_records = 0;
    for (auto& t : ts) {
        if (pools.count(t.township))
            continue;
        auto& pool = pools[t.township];
        for (std::size_t made = 0; made < pool_size;) {
            std::string muts;
            const std::size_t n = std::min<std::size_t>(500, pool_size - made);
            for (std::size_t i = 0; i < n; ++i) {
                if (i)
                    muts += ',';
                auto c = t.clock->next();
                t.factory->new_household(muts, ++t.seq, c);
                pool.push_back({t.factory->last_household(), c});
            }
            auto res = check_push(t.conn->post("/v1/sync/push", push_body(muts), t.token), t.seq);
            if (!res.ok)
                throw std::runtime_error("push-mixed pool: " + res.error);
            made += n;
        }
        pool_records += pool.size();
    }
    std::vector<std::uint64_t> first_seq(ts.size());
    std::size_t edits_planned = 0;
    for (std::size_t i = 0; i < ts.size(); ++i) {
        first_seq[i] = ts[i].seq + 1;
        edits_planned += build_bodies(ts[i], total / tablets + (i < total % tablets ? 1 : 0), batch,
                                      &pools[ts[i].township], share, 1000 + i);
    }
    ctx.prog.total = total;
    std::vector<latencies> lat(ts.size());
    push_totals tot;
    error_sink errors;
    measure m(ctx);
    r.wall_s = run_together(ts.size(), [&](std::size_t i) {
        push_bodies(ts[i], first_seq[i], lat[i], tot, errors, ctx.prog);
    });
    m.finish(r);
    for (auto& l : lat)
        r.lat.merge(l);
    r.by_kind["push"] = r.lat;
    r.tablets = tablets;
    r.records = tot.applied;
    r.requests = tot.requests;
    finish_errors(r, errors);
    // Stored: the pool and every new record (edits change pool records, they add none).
    std::int64_t conflicts_in_db = -1;
    if (!ctx.srv.data_dir().empty()) {
        r.stored = count_rows(ctx.srv.data_dir(), records_sql(ctx));
        conflicts_in_db = count_rows(
            ctx.srv.data_dir(),
            "SELECT count(*) FROM conflicts WHERE loser_user LIKE 'bench-" + ctx.run_id + "-%'");
    }
    r.extra["batch"] = batch;
    r.extra["edit_share"] = share;
    r.extra["shared_pool_per_township"] = pool_size;
    r.extra["townships"] = pools.size();
    r.extra["conflicts_in_acks"] = tot.conflicts.load();
    r.extra["edits"] = edits_planned;
    if (conflicts_in_db >= 0)
        r.extra["conflicts_in_db"] = conflicts_in_db;
    r.extra["rejected"] = tot.rejected.load();
    r.expected_stored = static_cast<std::int64_t>(pool_records + total - edits_planned);
    r.notes.push_back(std::to_string(tot.conflicts.load()) + " concurrent edits reported in acks");
    r.target = "(no target; shows the cost of merge and conflicts)";
    return r;
}

// ---- initial-pull
// --------------------------------------------------------------------------------

scenario_result initial_pull(scenario_context& ctx) {
    const auto& o = ctx.opt;
    scenario_result r;
    r.scenario = "initial-pull";
    r.client = "lean HTTPS (pages scanned, not decoded)";
    const std::size_t tablets = sized(o.tablets, 1);
    const std::uint32_t limit = static_cast<std::uint32_t>(sized(o.batch, 5000));
    const auto& town = district_townships().front();
    auto ts = enrol(ctx, std::vector<std::string>(tablets, town.code));
    std::int64_t expected = -1;
    if (!ctx.srv.data_dir().empty())
        expected = count_rows(ctx.srv.data_dir(),
                              "SELECT count(*) FROM records WHERE township = '" + town.code + "'");
    ctx.prog.total = expected > 0 ? static_cast<std::uint64_t>(expected) * tablets : 0;
    std::vector<latencies> lat(ts.size());
    std::vector<std::int64_t> pulled(ts.size(), 0);
    std::atomic<std::size_t> requests{0};
    error_sink errors;
    measure m(ctx);
    r.wall_s = run_together(ts.size(), [&](std::size_t i) {
        std::string err;
        std::size_t n = 0;
        try {
            pulled[i] = pull_all(ts[i], limit, lat[i], n, err, &ctx.prog);
        } catch (const std::exception& e) {
            pulled[i] = -1;
            err = std::string("pull: ") + e.what();
        }
        requests += n;
        if (pulled[i] < 0)
            errors.add(err);
    });
    m.finish(r);
    for (auto& l : lat)
        r.lat.merge(l);
    r.by_kind["pull"] = r.lat;
    r.tablets = tablets;
    for (auto p : pulled)
        r.records += p > 0 ? static_cast<std::size_t>(p) : 0;
    r.requests = requests;
    finish_errors(r, errors);
    if (expected >= 0) {
        r.stored = expected; // what the township holds; each tablet must have pulled all of it
        r.expected_stored = expected;
        for (auto p : pulled)
            if (p != expected)
                r.notes.push_back("a tablet pulled " + std::to_string(p) + " of " +
                                  std::to_string(expected) + " records");
    }
    r.extra["township"] = town.code;
    r.extra["page_limit"] = limit;
    r.extra["records_per_tablet"] = pulled.empty() ? 0 : pulled.front();
    if (r.server_cpu_s && r.records)
        r.extra["server_cpu_s_per_100k"] = *r.server_cpu_s * 100000.0 / r.records;
    r.target = ">= 300,000 records/s; 100,000 records in < 1 s of server time";
    if (r.records >= 100000)
        r.meets_target = r.records_per_s() >= 300000 && r.server_cpu_s &&
                         *r.server_cpu_s * 100000.0 / static_cast<double>(r.records) < 1.0 &&
                         r.errors == 0;
    return r;
}

// ---- day-end
// -------------------------------------------------------------------------------------

scenario_result day_end(scenario_context& ctx) {
    const auto& o = ctx.opt;
    scenario_result r;
    r.scenario = "day-end";
    r.client = "lean HTTPS (Beast, keep-alive)";
    const std::size_t tablets = sized(o.tablets, o.small ? 2 : 256);
    const std::size_t per_tablet = sized(ctx.records, default_records(r.scenario, o.small));
    auto ts = enrol(ctx, spread(tablets, 40));
    // Yesterday's state: every tablet has pulled its township (untimed), so today's pull brings
    // only what changed since.
    {
        latencies ignore;
        std::size_t n = 0;
        std::string err;
        for (auto& t : ts)
            if (pull_all(t, 5000, ignore, n, err) < 0)
                throw std::runtime_error("day-end set-up: " + err);
    }
    for (std::size_t i = 0; i < ts.size(); ++i)
        build_bodies(ts[i], per_tablet, per_tablet, nullptr, 0, i);
    ctx.prog.total = per_tablet * tablets;
    std::vector<latencies> push_lat(ts.size()), pull_lat(ts.size());
    std::vector<std::int64_t> pulled(ts.size(), 0);
    push_totals tot;
    std::atomic<std::size_t> pull_requests{0};
    error_sink errors;
    measure m(ctx);
    // Tablets come back in signal over `window` (each at a random moment in it); 0: all at once.
    const std::int64_t window = o.small ? std::min<std::int64_t>(o.window_ms, 200) : o.window_ms;
    std::vector<std::int64_t> offset(ts.size(), 0);
    std::mt19937_64 when(42);
    for (auto& x : offset)
        x = window > 0 ? static_cast<std::int64_t>(when() % static_cast<std::uint64_t>(window)) : 0;
    r.wall_s = run_together(ts.size(), [&](std::size_t i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(offset[i]));
        push_bodies(ts[i], 1, push_lat[i], tot, errors, ctx.prog);
        std::string err;
        std::size_t n = 0;
        try {
            pulled[i] = pull_all(ts[i], 5000, pull_lat[i], n, err);
        } catch (const std::exception& e) {
            pulled[i] = -1;
            err = std::string("pull: ") + e.what();
        }
        pull_requests += n;
        if (pulled[i] < 0)
            errors.add(err);
    });
    m.finish(r);
    for (std::size_t i = 0; i < ts.size(); ++i) {
        r.by_kind["push"].merge(push_lat[i]);
        r.by_kind["pull"].merge(pull_lat[i]);
    }
    r.lat = r.by_kind["push"];
    r.tablets = tablets;
    r.records = tot.applied;
    r.requests = tot.requests + pull_requests;
    finish_errors(r, errors);
    std::int64_t pulled_total = 0;
    for (auto p : pulled)
        pulled_total += std::max<std::int64_t>(0, p);
    r.expected_stored = static_cast<std::int64_t>(per_tablet * tablets);
    if (!ctx.srv.data_dir().empty())
        r.stored = count_rows(ctx.srv.data_dir(), records_sql(ctx));
    r.extra["records_per_push"] = per_tablet;
    r.extra["arrival_window_ms"] = window;
    r.extra["pulled_records"] = pulled_total;
    r.extra["pull_p50_ms"] = r.by_kind["pull"].percentile(50);
    r.extra["pull_p99_ms"] = r.by_kind["pull"].percentile(99);
    r.target = "p99 of a 50-record push < 25 ms with 256 tablets";
    r.notes.push_back(window > 0 ? "pushes arrive at random moments over " +
                                       std::to_string(window) + " ms (--window)"
                                 : "all pushes arrive at the same moment (--window 0)");
    if (tablets >= 256 && per_tablet == 50)
        r.meets_target = r.lat.percentile(99) < 25 && r.errors == 0;
    r.notes.push_back("latency columns are the pushes; pulls: p50 " +
                      ms_text(r.by_kind["pull"].percentile(50)) + " ms, p99 " +
                      ms_text(r.by_kind["pull"].percentile(99)) + " ms");
    return r;
}

// ---- idle-connections
// ------------------------------------------------------------------------------

scenario_result idle_connections(scenario_context& ctx) {
    const auto& o = ctx.opt;
    scenario_result r;
    r.scenario = "idle-connections";
    r.client = "lean HTTPS (Beast, keep-alive)";
    const std::size_t tablets = sized(o.tablets, o.small ? 2 : 16);
    const std::size_t per_push = sized(o.batch, 50);
    const std::size_t rounds = sized(ctx.records, default_records(r.scenario, o.small));
    const std::size_t idle = o.small ? std::min<std::size_t>(o.idle, 20) : o.idle;
    auto ts = enrol(ctx, spread(tablets, 40));
    {
        latencies ignore;
        std::size_t n = 0;
        std::string err;
        for (auto& t : ts)
            if (pull_all(t, 5000, ignore, n, err) < 0)
                throw std::runtime_error("idle-connections set-up: " + err);
    }
    // One syncing phase: every tablet runs `rounds` of (push per_push records, pull).
    error_sink errors;
    push_totals tot;
    auto phase = [&](latencies& push_lat, latencies& pull_lat) {
        for (std::size_t i = 0; i < ts.size(); ++i)
            build_bodies(ts[i], per_push * rounds, per_push, nullptr, 0, 77 + i);
        std::vector<std::uint64_t> first(ts.size());
        for (std::size_t i = 0; i < ts.size(); ++i)
            first[i] = ts[i].seq - ts[i].body_records + 1;
        std::vector<latencies> pl(ts.size()), ql(ts.size());
        std::atomic<std::size_t> pulls{0};
        double wall = run_together(ts.size(), [&](std::size_t i) {
            auto bodies = std::move(ts[i].bodies);
            std::uint64_t next = first[i];
            for (auto& b : bodies) {
                ts[i].bodies = {std::move(b)};
                push_bodies(ts[i], next, pl[i], tot, errors, ctx.prog);
                next += per_push;
                std::string err;
                std::size_t n = 0;
                try {
                    if (pull_all(ts[i], 5000, ql[i], n, err) < 0)
                        errors.add(err);
                } catch (const std::exception& e) {
                    errors.add(std::string("pull: ") + e.what());
                }
                pulls += n;
            }
        });
        for (std::size_t i = 0; i < ts.size(); ++i) {
            push_lat.merge(pl[i]);
            pull_lat.merge(ql[i]);
        }
        return std::pair<double, std::size_t>(wall, pulls.load());
    };
    ctx.prog.total = 2 * tablets * rounds * per_push;
    latencies base_push, base_pull;
    ctx.prog.phase = "baseline (no idle connections)";
    phase(base_push, base_pull);
    const auto rss_before = sample_process(ctx.srv.pid());

    // The idle connections: TLS, one request each (a tablet that synced and stays connected).
    std::vector<std::unique_ptr<https_conn>> held(idle);
    {
        const auto ep = ctx.srv.where();
        std::vector<std::thread> th;
        std::mutex mx;
        std::string failure;
        for (std::size_t w = 0; w < 8; ++w)
            th.emplace_back([&, w] {
                for (std::size_t i = w; i < held.size(); i += 8) {
                    try {
                        held[i] = std::make_unique<https_conn>(ep);
                        if (held[i]->get("/v1/healthz").status != 200)
                            throw std::runtime_error("healthz failed");
                    } catch (const std::exception& e) {
                        std::lock_guard lock(mx);
                        failure = e.what();
                        held[i].reset();
                    }
                }
            });
        for (auto& x : th)
            x.join();
        if (!failure.empty())
            r.notes.push_back("opening idle connections: " + failure);
    }
    const auto rss_idle = sample_process(ctx.srv.pid());
    measure m(ctx);
    const auto pushes_before = tot.requests.load();
    const auto applied_mid = tot.applied.load();
    auto [wall, pulls] = phase(r.by_kind["push"], r.by_kind["pull"]);
    m.finish(r);
    // Still open? Every held connection answers once more.
    std::size_t alive = 0;
    for (auto& c : held) {
        try {
            if (c && c->get("/v1/healthz").status == 200)
                ++alive;
        } catch (const std::exception&) {
        }
    }
    held.clear();
    r.wall_s = wall;
    r.lat = r.by_kind["push"];
    r.lat.merge(r.by_kind["pull"]);
    r.tablets = tablets;
    r.records = tot.applied - applied_mid;
    r.requests = (tot.requests - pushes_before) + pulls;
    finish_errors(r, errors);
    r.expected_stored = static_cast<std::int64_t>(2 * tablets * rounds * per_push);
    if (!ctx.srv.data_dir().empty())
        r.stored = count_rows(ctx.srv.data_dir(), records_sql(ctx));
    if (rss_idle.ok)
        r.server_rss_mb = rss_idle.rss_mb;
    latencies base_all = base_push;
    base_all.merge(base_pull);
    r.extra["idle_connections"] = idle;
    r.extra["idle_connections_alive_at_end"] = alive;
    r.extra["server_rss_mb_without_idle"] = rss_before.rss_mb;
    r.extra["server_rss_mb_with_idle"] = rss_idle.rss_mb;
    r.extra["baseline_p50_ms"] = base_all.percentile(50);
    r.extra["baseline_p99_ms"] = base_all.percentile(99);
    r.extra["baseline_push_p99_ms"] = base_push.percentile(99);
    r.extra["push_p99_ms"] = r.by_kind["push"].percentile(99);
    r.extra["rounds"] = rounds;
    r.extra["records_per_push"] = per_push;
    r.target = "1,000 idle connections: server RSS < 200 MB, syncing tablets unaffected";
    if (idle >= 1000)
        r.meets_target = rss_idle.ok && rss_idle.rss_mb < 200 && alive == idle &&
                         r.lat.percentile(99) <= 1.5 * base_all.percentile(99) + 2.0 &&
                         r.errors == 0;
    r.notes.push_back("RSS " + std::to_string(static_cast<int>(rss_before.rss_mb)) +
                      " MB before, " + std::to_string(static_cast<int>(rss_idle.rss_mb)) +
                      " MB with " + std::to_string(idle) + " idle connections (" +
                      std::to_string(alive) + " still open at the end); syncing p99 " +
                      ms_text(base_all.percentile(99)) + " ms without, " +
                      ms_text(r.lat.percentile(99)) + " ms with");
    return r;
}

} // namespace

// ---- sqlite-reference
// ------------------------------------------------------------------------------

scenario_result sqlite_reference(const settings& opt, const std::string& dir, std::size_t rows,
                                 progress& prog) {
    scenario_result out;
    out.scenario = "sqlite-reference";
    out.client = "in process (no server)";
    out.tablets = 0;
    // Rows per durable transaction (one group commit); --batch changes it.
    const std::size_t per_tx = opt.batch ? opt.batch : 2000;
    const std::string body(600, 'x'); // about one record's JSON
    json::array runs;
    prog.total = 2 * rows;
    for (bool ordered : {true, false}) {
        const auto path = dir + (ordered ? "/ordered.db" : "/random.db");
        for (const char* suffix : {"", "-wal", "-shm"})
            fs::remove(path + suffix);
        // sql::connection opens with WAL and synchronous=FULL: every COMMIT is durable.
        sql::connection db(path, sql::open_mode::read_write_create);
        db.exec("CREATE TABLE t (rid INTEGER PRIMARY KEY, id BLOB NOT NULL, body TEXT NOT NULL);"
                "CREATE UNIQUE INDEX t_id ON t(id);");
        uuid_v7_generator v7(1);
        std::mt19937_64 rng(2);
        latencies commit_lat;
        const auto t0 = clock_type::now();
        std::size_t done = 0;
        while (done < rows) {
            sql::transaction tx(db);
            auto ins = db.cached("INSERT INTO t (id, body) VALUES (?, ?)");
            for (std::size_t i = 0; i < per_tx && done < rows; ++i, ++done) {
                uuid id;
                if (ordered)
                    id = v7.make(system_wall_ms());
                else
                    for (auto& b : id.bytes)
                        b = static_cast<std::uint8_t>(rng());
                ins->bind_all(id.span(), std::string_view(body));
                ins->run();
                ins->reset();
            }
            const auto c0 = clock_type::now();
            tx.commit();
            commit_lat.add(ms_since(c0));
            prog.done += per_tx;
        }
        const double wall = ms_since(t0) / 1000.0;
        const double rps = static_cast<double>(rows) / wall;
        runs.push_back({{"keys", ordered ? "time-ordered (UUIDv7)" : "random"},
                        {"rows", rows},
                        {"rows_per_s", std::round(rps)},
                        {"wall_s", wall},
                        {"commit_p50_ms", commit_lat.percentile(50)},
                        {"commit_p99_ms", commit_lat.percentile(99)}});
        out.notes.push_back(std::string(ordered ? "time-ordered keys: " : "random keys: ") +
                            std::to_string(static_cast<long>(rps)) + " durable appends/s (" +
                            std::to_string(per_tx) + " rows per commit, commit p50 " +
                            ms_text(commit_lat.percentile(50)) + " ms)");
        if (ordered) {
            out.records = rows;
            out.wall_s = wall;
            out.requests = (rows + per_tx - 1) / per_tx;
            out.lat = commit_lat;
        } else {
            out.extra["random_keys_rows_per_s"] = std::round(rps);
        }
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    // One row per commit: the cost of a single fsync'd transaction on this disk.
    {
        const auto path = dir + "/fsync.db";
        for (const char* suffix : {"", "-wal", "-shm"})
            fs::remove(path + suffix);
        sql::connection db(path, sql::open_mode::read_write_create);
        db.exec("CREATE TABLE t (rid INTEGER PRIMARY KEY, body TEXT NOT NULL)");
        latencies one;
        for (int i = 0; i < (opt.small ? 20 : 300); ++i) {
            const auto c0 = clock_type::now();
            sql::transaction tx(db);
            auto ins = db.cached("INSERT INTO t (body) VALUES (?)");
            ins->bind_all(std::string_view(body));
            ins->run();
            tx.commit();
            one.add(ms_since(c0));
        }
        out.extra["single_commit_p50_ms"] = one.percentile(50);
        out.extra["single_commit_p99_ms"] = one.percentile(99);
        out.notes.push_back("one-row durable commit: p50 " + ms_text(one.percentile(50)) +
                            " ms, p99 " + ms_text(one.percentile(99)) + " ms");
    }
    out.extra["runs"] = std::move(runs);
    out.extra["rows_per_commit"] = per_tx;
    out.target = "reference: ~200,000 durable appends/s time-ordered, ~85,000/s random";
    return out;
}

const std::vector<scenario_info>& scenarios() {
    static const std::vector<scenario_info> list = {
        {"push-new", push_new, scenario_info::seed::none,
         "64 tablets push batches of 200 new records (durable acks)"},
        {"push-mixed", push_mixed, scenario_info::seed::none,
         "like push-new, a share of the mutations edit households other tablets also edit"},
        {"initial-pull", initial_pull, scenario_info::seed::township,
         "a new tablet pulls a whole township (100,000 records)"},
        {"day-end", day_end, scenario_info::seed::none,
         "256 connected tablets each push a 50-record day, then pull"},
        {"idle-connections", idle_connections, scenario_info::seed::none,
         "1,000 idle keep-alive TLS connections while 16 tablets sync"},
    };
    return list;
}

std::size_t default_records(const std::string& scenario, bool small) {
    if (scenario == "push-new" || scenario == "push-mixed")
        return small ? 200 : 102400; // 64 tablets x 8 pushes x 200
    if (scenario == "initial-pull")
        return small ? 500 : 100000; // seeded into the township
    if (scenario == "day-end")
        return 50; // per tablet
    if (scenario == "idle-connections")
        return small ? 2 : 10; // rounds of push + pull per syncing tablet
    if (scenario == "sqlite-reference")
        return small ? 2000 : 200000;
    return 0;
}

} // namespace fieldsync::cli::bench
