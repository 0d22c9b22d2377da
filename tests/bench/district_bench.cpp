// Storage apply of the mission's record types as the server does it: catalog::builtin(), the
// rollups observer maintaining the monthly figures, a file database with synchronous=FULL, and
// `group` pushes of 200 records per durable commit (the writer's group commit).
//   district_bench --benchmark_filter=visits     new home visits to existing persons
//   district_bench --benchmark_filter=persons    new person registrations
// Run it under `perf record --call-graph dwarf` to see where a record's time goes.
#include "sync/district_fixture.hpp"

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <boost/json/serialize.hpp>

namespace {

using namespace fieldsync;
using namespace fieldsync::testing;

struct file_district {
    temp_dir dir;
    sql::connection db = open_district(dir.file("district.db"));
    std::int64_t wall = july_31;
    engine eng{catalog::builtin(), engine_config{}, db, [this] { return wall; }};
    rollups sums;
    file_district() { eng.add_observer(&sums); }
};

mutation make(const char* collection, std::uint64_t seq, const uuid& id, const std::string& device,
              std::int64_t ms, const json::object& fields) {
    mutation m;
    m.seq = seq;
    m.collection = collection;
    m.id = id;
    hlc c{ms, 0, device};
    for (const auto& kv : fields)
        m.fields.emplace_back(std::string(kv.key()), field_write{kv.value(), c, std::nullopt});
    return m;
}

// Registers `n` persons and returns their ids.
std::vector<uuid> seed_persons(file_district& d, const principal& who, std::uint64_t& seq,
                               uuid_v7_generator& ids, std::size_t n) {
    std::vector<uuid> out;
    push_request req;
    for (std::size_t i = 0; i < n; ++i) {
        auto id = ids.make(d.wall - 100000);
        out.push_back(id);
        auto p = person(t105, v105, "1980-03-0" + std::to_string(1 + i % 9), i % 2 == 0,
                        "unemployed", static_cast<int>(i % 500));
        req.mutations.push_back(make("person", seq++, id, who.device, d.wall - 100000, p));
    }
    sql::transaction tx(d.db);
    auto res = d.eng.push(d.db, who, req);
    tx.commit();
    if (res.rejected != 0)
        throw std::runtime_error("seed persons rejected: " + res.acks.front().code);
    return out;
}

// FIELDSYNC_SQL_PROFILE=1: after the run, the statements by total time (sqlite3_trace_v2).
struct sql_profile {
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_sql; // ns, calls
    static int on_trace(unsigned, void* self, void* stmt, void* ns) {
        auto& e =
            static_cast<sql_profile*>(self)->by_sql[sqlite3_sql(static_cast<sqlite3_stmt*>(stmt))];
        e.first += *static_cast<sqlite3_int64*>(ns);
        ++e.second;
        return 0;
    }
    explicit sql_profile(sql::connection& c) {
        if (std::getenv("FIELDSYNC_SQL_PROFILE"))
            sqlite3_trace_v2(c.handle(), SQLITE_TRACE_PROFILE, on_trace, this);
    }
    ~sql_profile() {
        std::vector<std::pair<std::uint64_t, std::string>> rows;
        std::uint64_t total = 0;
        for (const auto& [sql_text, e] : by_sql) {
            rows.emplace_back(e.first, std::to_string(e.second) + "  " + sql_text.substr(0, 110));
            total += e.first;
        }
        std::sort(rows.rbegin(), rows.rend());
        for (const auto& [ns, text] : rows)
            std::fprintf(stderr, "%5.1f%% %8.1f ms  %s\n",
                         100.0 * static_cast<double>(ns) / static_cast<double>(total),
                         static_cast<double>(ns) / 1e6, text.c_str());
    }
};

void visits(benchmark::State& state) {
    const auto group = static_cast<std::size_t>(state.range(0));
    file_district d;
    sql_profile profile(d.db);
    principal who = field_worker("bench-tablet", t105);
    uuid_v7_generator ids(7);
    std::uint64_t seq = 1;
    auto persons = seed_persons(d, who, seq, ids, 2000);
    std::size_t k = 0;
    for (auto _ : state) {
        sql::transaction tx(d.db);
        for (std::size_t g = 0; g < group; ++g) {
            push_request req;
            for (int i = 0; i < 200; ++i, ++k) {
                auto v = visit(t105, v105, persons[k % persons.size()], "2025-07-30T10:15:00+08:00",
                               k % 3 == 0);
                v["notes"] = "入户走访：家中两人，一人肢体残疾二级，有就业意愿，需技能培训";
                v["location"] = json::object{{"lat", 31.16}, {"lon", 108.39}};
                req.mutations.push_back(
                    make("home_visit", seq++, ids.make(d.wall), who.device, d.wall, v));
            }
            // As submit_push: prepared before the writer (on the server, another thread).
            const auto prepared = d.eng.prepare(who, req);
            auto res = d.eng.push(d.db, who, req, &prepared);
            if (res.rejected != 0)
                return state.SkipWithError(("rejected: " + res.acks.front().code).c_str());
        }
        tx.commit();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(group) * 200);
}
BENCHMARK(visits)->Arg(8)->Unit(benchmark::kMillisecond);

void persons(benchmark::State& state) {
    const auto group = static_cast<std::size_t>(state.range(0));
    file_district d;
    principal who = field_worker("bench-tablet", t105);
    uuid_v7_generator ids(7);
    std::uint64_t seq = 1;
    for (auto _ : state) {
        sql::transaction tx(d.db);
        for (std::size_t g = 0; g < group; ++g) {
            push_request req;
            for (int i = 0; i < 200; ++i) {
                auto p = person(t105, v105, "1980-03-0" + std::to_string(1 + seq % 9), seq % 2 == 0,
                                "unemployed", static_cast<int>(seq % 500));
                req.mutations.push_back(
                    make("person", seq, ids.make(d.wall), who.device, d.wall, p));
                ++seq;
            }
            // As submit_push: prepared before the writer (on the server, another thread).
            const auto prepared = d.eng.prepare(who, req);
            auto res = d.eng.push(d.db, who, req, &prepared);
            if (res.rejected != 0)
                return state.SkipWithError(("rejected: " + res.acks.front().code).c_str());
        }
        tx.commit();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(group) * 200);
}
BENCHMARK(persons)->Arg(8)->Unit(benchmark::kMillisecond);

// A new tablet's first pull of a township: pages of 5,000 records read, encoded and serialised
// as the server answers them. Second argument: 1 = clocks in the shared form (the client library
// asks for it), 0 = one clock per field (what an older app gets: expanded per record).
void initial_pull(benchmark::State& state) {
    file_district d;
    principal who = field_worker("bench-tablet", t105);
    uuid_v7_generator ids(7);
    std::uint64_t seq = 1;
    const auto n = static_cast<std::size_t>(state.range(0));
    for (std::size_t done = 0; done < n; done += 1000)
        seed_persons(d, who, seq, ids, 1000);
    std::size_t bytes = 0;
    for (auto _ : state) {
        pull_request req;
        req.limit = 5000;
        req.shared_clocks = state.range(1) != 0;
        std::size_t got = 0;
        for (;;) {
            auto res = d.eng.pull(d.db, who, req, true);
            if (!res)
                return state.SkipWithError("pull failed");
            got += res->raw_count;
            bytes += serialize(*res).size();
            if (res->complete)
                break;
            req.cursor = res->cursor;
        }
        if (got != n)
            return state.SkipWithError("pull returned the wrong number of records");
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
    state.counters["bytes_per_record"] =
        static_cast<double>(bytes) / static_cast<double>(state.iterations() * n);
}
BENCHMARK(initial_pull)
    ->ArgNames({"records", "shared_clocks"})
    ->Args({20000, 1})
    ->Args({20000, 0})
    ->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
