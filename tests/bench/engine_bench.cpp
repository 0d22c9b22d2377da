// Google Benchmark micro-benchmarks of the sync core: field merge, validation, JSON encode/decode
// of a push, and storage apply (engine::push into a file database, durable commits).
// Run: build/bin/engine_bench [--benchmark_filter=REGEX]
#include "schema/rules.hpp"
#include "sync/engine.hpp"
#include "sync/test_support.hpp"

#include <benchmark/benchmark.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace {

using namespace fieldsync;
using namespace fieldsync::testing;
namespace json = boost::json;

// A mutation of realistic size: a new record with eight fields (about 300 bytes of JSON).
mutation make_mutation(std::uint64_t seq, uuid_v7_generator& ids, std::int64_t ms,
                       const std::string& device) {
    mutation m;
    m.seq = seq;
    m.collection = "item";
    m.id = ids.make(ms);
    hlc c{ms, static_cast<std::uint32_t>(seq), device};
    auto put = [&](const char* name, json::value v) {
        m.fields.emplace_back(name, field_write{std::move(v), c, std::nullopt});
    };
    put("township", town_a);
    put("village", village_a1);
    put("name", "张三丰的家庭成员");
    put("count", static_cast<std::int64_t>(seq % 1000));
    put("kind", "b");
    put("note", "入户走访：家中两人，一人肢体残疾二级，有就业意愿，需技能培训");
    put("seen_on", "2026-10-15");
    return m;
}

push_request make_push(std::uint64_t first_seq, std::size_t n, uuid_v7_generator& ids,
                       const std::string& device) {
    push_request r;
    r.schema_version = 1;
    for (std::size_t i = 0; i < n; ++i)
        r.mutations.push_back(make_mutation(first_seq + i, ids, 1764316800000 + i, device));
    return r;
}

void merge_field_bench(benchmark::State& state) {
    std::optional<field_state> stored = field_state{json::value("旧值"), hlc{100, 0, "a"}};
    field_write w{json::value("新值"), hlc{200, 0, "b"}, hlc{100, 0, "a"}};
    for (auto _ : state)
        benchmark::DoNotOptimize(merge_field(stored, w));
}
BENCHMARK(merge_field_bench);

void validate_record_bench(benchmark::State& state) {
    const auto& c = *test_catalog().find("item");
    uuid_v7_generator ids(1);
    auto m = make_mutation(1, ids, 1764316800000, "d");
    json::object rec;
    for (const auto& [n, w] : m.fields)
        rec[n] = w.value;
    validation_context ctx{&test_catalog(), nullptr, 1764316800000, 0};
    for (auto _ : state) {
        for (const auto& [n, w] : m.fields)
            benchmark::DoNotOptimize(validate_value(c, n, w.value, ctx));
        benchmark::DoNotOptimize(validate_record(c, rec, ctx));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(validate_record_bench);

void push_json_roundtrip_bench(benchmark::State& state) {
    uuid_v7_generator ids(1);
    auto req = make_push(1, 200, ids, "d");
    for (auto _ : state) {
        auto text = json::serialize(encode(req));
        auto back = decode_push(json::parse(text));
        benchmark::DoNotOptimize(back);
    }
    state.SetItemsProcessed(state.iterations() * 200);
}
BENCHMARK(push_json_roundtrip_bench);

// Storage apply: batches of 200 new records, one durable transaction per `group` pushes.
void storage_apply_bench(benchmark::State& state) {
    const auto group = static_cast<std::size_t>(state.range(0));
    temp_dir dir;
    server_harness server(dir.file("bench.db"));
    uuid_v7_generator ids(7);
    std::uint64_t seq = 1;
    principal who = worker("bench-tablet");
    for (auto _ : state) {
        sql::transaction tx(server.db);
        for (std::size_t g = 0; g < group; ++g) {
            auto req = make_push(seq, 200, ids, who.device);
            seq += 200;
            benchmark::DoNotOptimize(server.eng.push(server.db, who, req));
        }
        tx.commit();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(group) * 200);
}
BENCHMARK(storage_apply_bench)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
