// fieldsync bench: the district, realistic records, data folders and direct engine seeding.
#include "cli/bench.hpp"
#include "cli/commands.hpp"
#include "schema/catalog.hpp"
#include "schema/embedded.hpp"
#include "schema/formats.hpp"
#include "server/auth.hpp"
#include "sync/engine.hpp"
#include "sync/protocol.hpp"
#include "sync/rollups.hpp"
#include "sync/sqlite.hpp"

#include <boost/json/parse.hpp>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace fieldsync::demo_files {
// tools/demo/*.json, embedded by tools/CMakeLists.txt (see demo.cpp).
std::span<const embedded_file> files();
} // namespace fieldsync::demo_files

namespace fieldsync::cli::bench {

namespace json = boost::json;
namespace fs = std::filesystem;

// ---- The district ------------------------------------------------------------------------------

const std::vector<township_info>& district_townships() {
    static const std::vector<township_info> towns = [] {
        std::vector<township_info> out;
        for (const auto& f : demo_files::files()) {
            if (f.name != "district.json")
                continue;
            auto doc = json::parse(f.data).as_object();
            for (const auto& t : doc.at("townships").as_array()) {
                township_info ti;
                ti.code = std::string(t.at("code").as_string());
                ti.name = std::string(t.at("name").as_string());
                for (const auto& v : t.at("villages").as_array())
                    ti.villages.emplace_back(v.at("code").as_string());
                out.push_back(std::move(ti));
            }
        }
        if (out.empty())
            throw std::logic_error("bench: tools/demo/district.json is not embedded");
        return out;
    }();
    return towns;
}

const township_info* find_township(const std::string& code) {
    for (const auto& t : district_townships())
        if (t.code == code)
            return &t;
    return nullptr;
}

// ---- Clocks and records
// --------------------------------------------------------------------------

std::string tablet_clock::next() {
    std::int64_t now = system_wall_ms();
    if (now > ms_) {
        ms_ = now;
        counter_ = 0;
    } else {
        ++counter_;
    }
    std::string s = std::to_string(ms_);
    s += ':';
    s += std::to_string(counter_);
    s += ':';
    s += device_;
    return s;
}

namespace {

const char* const surnames[] = {"陈", "李", "王", "张", "刘", "杨", "黄", "周", "吴", "谭",
                                "向", "冉", "熊", "邓", "彭", "唐", "余", "何", "罗", "程"};
const char* const given[] = {"国平", "建华", "秀英", "明军", "玉兰", "德文", "春梅", "志强",
                             "桂芳", "海波", "红霞", "学成", "翠琴", "永福", "小燕", "光明"};
const char* const categories[] = {"visual",       "hearing", "speech",  "physical",
                                  "intellectual", "mental",  "multiple"};
const char* const notes[] = {
    "入户走访：家中两人，一人肢体残疾二级，有就业意愿，需技能培训",
    "核对基础信息，本人在家务农，希望参加电商培训，家属支持外出务工",
    "跟踪访视：收入稳定，低保已续办，下次走访核对医疗报销情况",
    "家庭因病支出较大，已告知临时救助申请流程，村委会协助办理",
};

// One field of a new record; its clock is the mutation's (as the client library writes them).
void field(std::string& out, bool& first, std::string_view name, std::string_view value_json) {
    if (!first)
        out += ',';
    first = false;
    out += '"';
    out += name;
    out += "\":{\"value\":";
    out += value_json;
    out += '}';
}

std::string in_quotes(std::string_view s) {
    std::string q = "\"";
    q += s;
    q += '"';
    return q;
}

std::string two(int v) {
    return (v < 10 ? "0" : "") + std::to_string(v);
}

} // namespace

record_factory::record_factory(std::uint64_t seed, const township_info& t, std::string worker)
    : rng_(seed), ids_(seed ^ 0x9e3779b97f4a7c15ULL), town_(t), worker_(std::move(worker)) {}

void record_factory::new_record(std::string& out, std::uint64_t seq, const std::string& clock) {
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng_() % n); };
    const auto id = ids_.make(system_wall_ms()).to_string();
    const std::size_t kind = made_++ % 5; // household, person, person, visit, visit
    if (kind == 0)
        village_ = town_.villages[pick(town_.villages.size())];
    const char* collection = kind == 0 ? "household" : kind < 3 ? "person" : "home_visit";
    out += "{\"seq\":";
    out += std::to_string(seq);
    out += ",\"collection\":\"";
    out += collection;
    out += "\",\"id\":\"";
    out += id;
    out += "\",\"clock\":\"";
    out += clock;
    out += "\",\"fields\":{";
    bool first = true;
    field(out, first, "township", in_quotes(town_.code));
    field(out, first, "village", in_quotes(village_));
    const std::string name =
        std::string(surnames[pick(std::size(surnames))]) + given[pick(std::size(given))];
    if (kind == 0) {
        household_ = id;
        field(out, first, "head_name", in_quotes(name));
        field(out, first, "address",
              in_quotes(town_.name + std::to_string(1 + pick(9)) + "组" +
                        std::to_string(1 + pick(60)) + "号"));
        field(out, first, "members", std::to_string(1 + pick(6)));
        field(out, first, "per_capita_income", std::to_string(4000 + pick(20000)) + ".5");
        field(out, first, "poverty_status", "\"lifted_out\"");
        field(out, first, "monitoring_status", "\"none\"");
        field(out, first, "low_income", pick(4) == 0 ? "true" : "false");
    } else if (kind < 3) {
        person_ = id;
        const int year = 1965 + static_cast<int>(pick(40));
        const int month = 1 + static_cast<int>(pick(12));
        const int day = 1 + static_cast<int>(pick(28));
        const bool male = pick(2) == 0;
        int serial = static_cast<int>(pick(500)) * 2 + (male ? 1 : 0);
        std::string first17 = "500234" + std::to_string(year) + two(month) + two(day) +
                              (serial < 10    ? "00"
                               : serial < 100 ? "0"
                                              : "") +
                              std::to_string(serial);
        const std::string id_number = first17 + id_number_check_char(first17);
        const std::size_t category = pick(std::size(categories));
        const int grade = 1 + static_cast<int>(pick(4));
        field(out, first, "household", in_quotes(household_));
        field(out, first, "name", in_quotes(name));
        field(out, first, "id_number", in_quotes(id_number));
        field(out, first, "disability_cert_no",
              in_quotes(id_number + std::to_string(category + 1) + std::to_string(grade)));
        field(out, first, "gender", male ? "\"male\"" : "\"female\"");
        field(out, first, "birth_date",
              in_quotes(std::to_string(year) + "-" + two(month) + "-" + two(day)));
        field(out, first, "disability_category", in_quotes(categories[category]));
        field(out, first, "disability_grade", std::to_string(grade));
        field(out, first, "phone", in_quotes("138" + std::to_string(10000000 + pick(89999999))));
        field(out, first, "employment_status", "\"unemployed\"");
        field(out, first, "education", "\"junior_secondary\"");
        field(out, first, "low_income", "false");
        field(out, first, "poverty_status", "\"lifted_out\"");
    } else {
        field(out, first, "person", in_quotes(person_));
        field(out, first, "household", in_quotes(household_));
        // Yesterday, China time, in working hours.
        const std::int64_t day = (system_wall_ms() + 8 * 3600000) / 86400000 - 1;
        const auto [y, m, d] = civil_from_days(day);
        const std::string date = std::to_string(y) + "-" + two(m) + "-" + two(d);
        field(out, first, "visited_at",
              in_quotes(date + "T" + two(9 + static_cast<int>(pick(8))) + ":" +
                        two(static_cast<int>(pick(60))) + ":00+08:00"));
        field(out, first, "worker", in_quotes(worker_));
        field(out, first, "visit_type", pick(3) == 0 ? "\"follow_up\"" : "\"routine\"");
        field(out, first, "basic_info_verified", "true");
        field(out, first, "notes", in_quotes(notes[pick(std::size(notes))]));
        field(out, first, "location",
              "{\"lat\":31." + std::to_string(100000 + pick(800000)) + ",\"lon\":108." +
                  std::to_string(100000 + pick(800000)) +
                  ",\"accuracy_m\":" + std::to_string(5 + pick(30)) + "}");
    }
    out += "}}";
}

void record_factory::new_household(std::string& out, std::uint64_t seq, const std::string& clock) {
    made_ = 0;
    new_record(out, seq, clock);
}

void record_factory::edit_household(std::string& out, std::uint64_t seq, const std::string& clock,
                                    const std::string& id, const std::string& base) {
    out += "{\"seq\":";
    out += std::to_string(seq);
    out += ",\"collection\":\"household\",\"id\":\"";
    out += id;
    out += "\",\"fields\":{\"per_capita_income\":{\"value\":";
    out += std::to_string(3000 + rng_() % 20000);
    out += ",\"clock\":\"";
    out += clock;
    out += "\",\"base\":\"";
    out += base;
    out += "\"},\"notes\":{\"value\":\"";
    out += worker_;
    out += "核对收入：";
    out += notes[rng_() % std::size(notes)];
    out += "\",\"clock\":\"";
    out += clock;
    out += "\",\"base\":\"";
    out += base;
    out += "\"}}}";
}

std::string push_body(const std::string& mutations) {
    std::string body = "{\"schema_version\":1,\"mutations\":[";
    body += mutations;
    body += "]}";
    return body;
}

// ---- Data folders
// --------------------------------------------------------------------------------

void prepare_district(const std::string& dir, std::size_t scale) {
    fs::create_directories(dir);
    if (scale >= 1) {
        // `fieldsync demo` itself, with its report kept off stdout (the bench's JSON goes there).
        std::ostringstream quiet;
        auto* old = std::cout.rdbuf(quiet.rdbuf());
        int rc = 1;
        try {
            rc = cmd_demo({"--data", dir, "--scale", std::to_string(scale), "--force"});
        } catch (...) {
            std::cout.rdbuf(old);
            throw;
        }
        std::cout.rdbuf(old);
        if (rc != 0)
            throw std::runtime_error("fieldsync demo failed in " + dir + ": " + quiet.str());
        return;
    }
    const auto path = database_path(dir);
    for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(path + suffix);
    sql::connection db(path, sql::open_mode::read_write_create);
    if (auto r = migrate_server_database(db); !r)
        throw std::runtime_error("cannot migrate " + path);
    sql::transaction tx(db);
    engine::put_division(db, "500154", "开州区");
    for (const auto& t : district_townships()) {
        engine::put_division(db, t.code, t.name);
        for (const auto& v : t.villages)
            engine::put_division(db, v, v);
    }
    tx.commit();
}

std::size_t seed_township(const std::string& dir, const township_info& t, std::size_t count,
                          progress* p) {
    sql::connection db(database_path(dir), sql::open_mode::read_write);
    // Seeding is set-up, not the measured path: no fsync per transaction.
    db.exec("PRAGMA synchronous=OFF");
    engine eng(catalog::builtin(), engine_config{}, db);
    rollups indicators;
    eng.add_observer(&indicators);
    principal who{"bench-seed", "bench-seed", scope{t.code, {}}};
    record_factory f(0xbe11c4, t, "种子数据");
    tablet_clock clock(who.device);
    constexpr std::size_t per_push = 500, per_tx = 10000;
    std::uint64_t seq = 0;
    std::size_t written = 0;
    while (written < count) {
        sql::transaction tx(db);
        for (std::size_t in_tx = 0; in_tx < per_tx && written < count;) {
            std::string muts;
            std::size_t n = std::min(per_push, count - written);
            for (std::size_t i = 0; i < n; ++i) {
                if (i)
                    muts += ',';
                f.new_record(muts, ++seq, clock.next());
            }
            std::string why;
            auto req = decode_push(json::parse(push_body(muts)), &why);
            if (!req)
                throw std::logic_error("bench: generated push does not decode: " + why);
            auto res = eng.push(db, who, *req);
            if (res.applied != n)
                throw std::logic_error("bench: seeding rejected " + std::to_string(res.rejected) +
                                       " records" +
                                       (res.acks.empty() ? "" : ": " + res.acks.back().code));
            written += n;
            in_tx += n;
            if (p)
                p->done += n;
        }
        tx.commit();
    }
    return written;
}

std::vector<std::string> make_codes(const std::string& dir, const std::vector<std::string>& towns,
                                    const std::string& run) {
    sql::connection db(database_path(dir), sql::open_mode::read_write);
    std::vector<std::string> codes;
    sql::transaction tx(db);
    const auto now = system_wall_ms();
    for (std::size_t i = 0; i < towns.size(); ++i) {
        auth::user u{"bench-" + run + "-" + std::to_string(i),
                     auth::role::field_worker,
                     towns[i],
                     {},
                     false,
                     0};
        auto made = auth::add_user(db, u, "", now);
        if (!made)
            throw std::runtime_error("bench user " + u.username + ": " + made.error.message);
        auto code = auth::create_enrolment_code(db, u.username, 3600000, now);
        if (!code)
            throw std::runtime_error("bench code: " + code.error.message);
        codes.push_back(code.value->code);
    }
    tx.commit();
    return codes;
}

std::int64_t count_rows(const std::string& dir, const std::string& sql_text) {
    sql::connection db(database_path(dir), sql::open_mode::read_only);
    sql::statement s(db.handle(), sql_text);
    return s.step() ? s.int64(0) : 0;
}

} // namespace fieldsync::cli::bench
