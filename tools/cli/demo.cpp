// fieldsync demo --data DIR [--scale N] [--months M] [--seed S] [--until YYYY-MM-DD] [--force]
//
// Creates a ready district in DIR: the divisions of a district modelled on a real one
// (tools/demo/district.json, embedded), a ledger of persons with disabilities and their
// households, and months of field work (home visits, monitoring checks, needs registrations,
// employment services) with plausible distributions. Everything is written through the sync
// engine, as pushes from simulated township tablets, so the change log, history, device
// sequences, clocks, conflicts and quarantine are what real field work would leave.
//
// The same --seed and --until give the same records (ids, values and clocks); only what the
// server stamps on receipt (server times, database epoch) differs between runs.
#include "cli/commands.hpp"
#include "schema/catalog.hpp"
#include "schema/embedded.hpp"
#include "schema/formats.hpp"
#include "server/auth.hpp"
#include "sync/engine.hpp"
#include "sync/rollups.hpp"
#include "sync/sqlite.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

namespace fieldsync::demo_files {
// tools/demo/*.json, embedded by tools/CMakeLists.txt so that the command works from any folder.
std::span<const embedded_file> files();
} // namespace fieldsync::demo_files

namespace fieldsync::cli {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t day_ms = 86400000;
constexpr std::int64_t hour_ms = 3600000;
constexpr std::int64_t china_offset_ms = 8 * hour_ms;
constexpr std::size_t persons_per_scale = 1500;
constexpr std::size_t mutations_per_transaction = 3000;
constexpr std::size_t mutations_per_push = 500; // what one tablet sends in one request

// SplitMix64: a tiny generator whose output is the same on every platform and standard library,
// which std::uniform_int_distribution and friends do not promise.
class random_source {
public:
    explicit random_source(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
    std::int64_t between(std::int64_t lo, std::int64_t hi) { // inclusive
        return lo + static_cast<std::int64_t>(below(static_cast<std::size_t>(hi - lo + 1)));
    }
    bool chance(double p) { return uniform() < p; }
    double normal() { // Box–Muller
        double u1 = std::max(uniform(), 1e-12), u2 = uniform();
        return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    // Index into `weights` with probability proportional to the weight.
    template <std::size_t N>
    std::size_t weighted(const double (&weights)[N]) {
        double total = 0;
        for (double w : weights)
            total += w;
        double x = uniform() * total;
        for (std::size_t i = 0; i < N; ++i) {
            if (x < weights[i])
                return i;
            x -= weights[i];
        }
        return N - 1;
    }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[below(v.size())];
    }

private:
    std::uint64_t state_;
};

// ---- The district --------------------------------------------------------------------------

struct village_model {
    std::string code, name;
};
struct township_model {
    std::string code, name;
    bool urban = false;
    std::vector<village_model> villages;
};
struct district_model {
    std::string code, name, note;
    std::vector<township_model> townships;
};

district_model load_district() {
    for (const auto& f : demo_files::files()) {
        if (f.name != "district.json")
            continue;
        auto doc = json::parse(f.data).as_object();
        district_model d;
        const auto& dist = doc.at("district").as_object();
        d.code = std::string(dist.at("code").as_string());
        d.name = std::string(dist.at("name").as_string());
        d.note = std::string(dist.at("note").as_string());
        for (const auto& t : doc.at("townships").as_array()) {
            township_model tm;
            tm.code = std::string(t.at("code").as_string());
            tm.name = std::string(t.at("name").as_string());
            tm.urban = t.at("urban").as_bool();
            for (const auto& v : t.at("villages").as_array())
                tm.villages.push_back(
                    {std::string(v.at("code").as_string()), std::string(v.at("name").as_string())});
            d.townships.push_back(std::move(tm));
        }
        return d;
    }
    throw std::logic_error("demo: tools/demo/district.json is not embedded in this build");
}

// ---- Calendar -------------------------------------------------------------------------------

std::string two(int v) {
    return (v < 10 ? "0" : "") + std::to_string(v);
}

std::string date_text(std::int64_t day) {
    auto c = civil_from_days(day);
    return std::to_string(c.year) + "-" + two(c.month) + "-" + two(c.day);
}

// China local time (UTC+8, no daylight saving) of a Unix millisecond, as the tablet shows it.
std::string datetime_text(std::int64_t ms) {
    std::int64_t local = ms + china_offset_ms;
    std::int64_t day = local >= 0 ? local / day_ms : (local - day_ms + 1) / day_ms;
    std::int64_t in_day = (local - day * day_ms) / 1000;
    return date_text(day) + "T" + two(static_cast<int>(in_day / 3600)) + ":" +
           two(static_cast<int>(in_day / 60 % 60)) + ":" + two(static_cast<int>(in_day % 60)) +
           "+08:00";
}

std::int64_t local_day_of(std::int64_t ms) {
    return (ms + china_offset_ms) / day_ms;
}

// A moment in working hours (08:30–17:30 China time) of the given local day.
std::int64_t working_moment(random_source& rng, std::int64_t day) {
    return day * day_ms - china_offset_ms + 8 * hour_ms + 30 * 60000 +
           rng.between(0, 9 * 60 - 1) * 60000 + rng.between(0, 59) * 1000;
}

// ---- People ---------------------------------------------------------------------------------

const std::vector<std::string> surnames = {
    "陈", "李", "王", "张", "刘", "杨", "黄", "周", "吴", "谭", "向", "冉", "熊", "邓", "彭",
    "唐", "余", "何", "罗", "程", "汪", "蒋", "赵", "郑", "胡", "徐", "曾", "廖", "谢", "邱",
    "袁", "龚", "蔡", "田", "任", "范", "钟", "段", "方", "石", "姚", "付", "文", "雷", "邹"};
const std::vector<std::string> male_given = {
    "国", "建", "明", "军", "华", "平", "勇", "强", "伟", "成", "德", "文", "志", "林", "海",
    "波", "洪", "斌", "福", "贵", "兵", "江", "涛", "春", "忠", "学", "超", "刚", "云", "鹏"};
const std::vector<std::string> female_given = {
    "秀", "英", "兰", "芳", "玲", "梅", "琼", "丽", "霞", "燕", "红", "群", "翠", "琴", "莉",
    "娟", "凤", "春", "桂", "静", "敏", "婷", "雪", "萍", "碧", "蓉", "艳", "慧", "佳", "月"};

std::string make_name(random_source& rng, bool male) {
    const auto& given = male ? male_given : female_given;
    std::string n = rng.pick(surnames) + rng.pick(given);
    if (rng.chance(0.7))
        n += rng.pick(given);
    return n;
}

std::string make_phone(random_source& rng) {
    if (rng.chance(0.07)) // a landline in Kaizhou (area code 023, local numbers 52…)
        return "023-52" + std::to_string(rng.between(100000, 999999));
    static const std::vector<std::string> prefixes = {
        "130", "131", "132", "133", "135", "136", "137", "138", "139",
        "150", "151", "152", "157", "158", "159", "177", "178", "180",
        "181", "182", "183", "187", "188", "189", "191", "198", "199"};
    std::string p = rng.pick(prefixes);
    for (int i = 0; i < 8; ++i)
        p += static_cast<char>('0' + rng.below(10));
    return p;
}

// The region part of an ID number: the place where the holder was first registered. Kaizhou was
// Kai County (500234) until 2016; a few residents moved in from neighbouring districts.
std::string id_region(random_source& rng, int birth_year) {
    static const std::vector<std::string> neighbours = {"500101", "500235", "500229",
                                                        "500238", "500233", "500236"};
    if (rng.chance(0.05))
        return rng.pick(neighbours);
    return birth_year >= 2016 ? "500154" : "500234";
}

const std::vector<std::string> categories = {"visual",       "hearing", "speech",  "physical",
                                             "intellectual", "mental",  "multiple"};

// ---- Simulated state ------------------------------------------------------------------------

struct device {
    principal who;
    std::string worker_name; // written in the `worker` field of the records it makes
    std::uint64_t seq = 0;
    hlc last;
    std::vector<mutation> pending;
};

struct household_state {
    uuid id;
    std::size_t township = 0, village = 0, device = 0;
    std::string poverty_status, monitoring_status;
    double income = 0;
    int members = 1;
    int quiet_checks = 0;             // consecutive checks without risk while monitored
    std::vector<std::size_t> persons; // indexes of its members with disabilities
    std::string head_name;
    bool low_income = false;
};

struct person_state {
    uuid id;
    std::size_t household = 0;
    int birth_year = 0;
    int age = 0; // at the end of the period
    bool male = false;
    std::size_t category = 0;
    std::string employment_status;
    hlc employment_clock;
    bool graduate = false;
    bool target = false; // working age and without work: the "four ones" population
};

// One write, placed in time; the clock and sequence number are assigned when it is queued, in
// time order per device. Base clocks are read from (and the new clock written to) the slots of
// the simulated state, so a later edit names exactly the clock of the value it replaces.
struct event {
    std::int64_t ms = 0;
    std::size_t device = 0;
    std::string collection;
    uuid id;
    json::object fields;
    std::vector<std::pair<std::string, hlc*>> bases; // field -> slot holding its current clock
    hlc* clock_out = nullptr;                        // receives the clock of this write
    hlc* clock_out2 = nullptr;
};

struct tally {
    std::uint64_t mutations = 0, applied = 0, rejected = 0, conflicts = 0, transactions = 0,
                  pushes = 0;
    std::map<std::string, std::uint64_t> rejected_codes;
};

// Queues mutations per device and pushes them through the engine, a few thousand per write
// transaction, as the server's writer would commit them.
class demo_writer {
public:
    demo_writer(sql::connection& db, engine& eng, std::vector<device>& devices)
        : db_(db), eng_(eng), devices_(devices) {}

    void add(event& e) {
        device& d = devices_[e.device];
        hlc clock{e.ms, 0, d.who.device};
        if (e.ms <= d.last.ms)
            clock = hlc{d.last.ms, d.last.counter + 1, d.who.device};
        d.last = clock;
        mutation m;
        m.seq = ++d.seq;
        m.collection = std::move(e.collection);
        m.id = e.id;
        for (auto& [name, value] : e.fields) {
            field_write w{std::move(value), clock, std::nullopt};
            for (const auto& [bname, slot] : e.bases)
                if (bname == name && slot && !slot->is_zero())
                    w.base = *slot;
            m.fields.emplace_back(std::string(name), std::move(w));
        }
        if (e.clock_out)
            *e.clock_out = clock;
        if (e.clock_out2)
            *e.clock_out2 = clock;
        d.pending.push_back(std::move(m));
        if (++pending_ >= mutations_per_transaction)
            flush();
    }

    void flush() {
        if (!pending_)
            return;
        sql::transaction tx(db_);
        for (auto& d : devices_) {
            for (std::size_t start = 0; start < d.pending.size(); start += mutations_per_push) {
                push_request req;
                req.schema_version = std::max(1, eng_.schema().schema_version());
                auto end = std::min(d.pending.size(), start + mutations_per_push);
                req.mutations.assign(std::make_move_iterator(d.pending.begin() + start),
                                     std::make_move_iterator(d.pending.begin() + end));
                auto res = eng_.push(db_, d.who, req);
                ++tally_.pushes;
                tally_.mutations += req.mutations.size();
                tally_.applied += res.applied;
                tally_.rejected += res.rejected;
                tally_.conflicts += res.conflicts_opened;
                for (const auto& ack : res.acks) {
                    if (ack.status == ack_status::gap)
                        throw std::logic_error("demo: sequence gap for " + d.who.device);
                    if (ack.status == ack_status::rejected)
                        ++tally_.rejected_codes[ack.code];
                }
            }
            d.pending.clear();
        }
        tx.commit();
        ++tally_.transactions;
        pending_ = 0;
    }

    const tally& totals() const { return tally_; }

private:
    sql::connection& db_;
    engine& eng_;
    std::vector<device>& devices_;
    std::size_t pending_ = 0;
    tally tally_;
};

struct options {
    std::string dir;
    std::size_t scale = 1;
    int months = 12;
    std::uint64_t seed = 20230530; // the date of the policy notice
    std::int64_t until_day = 0;    // last simulated day (local), inclusive
    bool force = false;
};

// ---- The simulation -------------------------------------------------------------------------

class simulation {
public:
    simulation(const district_model& d, const options& o, demo_writer& w,
               std::vector<device>& devices, std::vector<std::vector<std::size_t>>& village_device)
        : district_(d), opt_(o), writer_(w), devices_(devices), village_device_(village_device),
          rng_(o.seed), ids_(o.seed ^ 0x5eed) {
        first_day_ = o.until_day - o.months * 30 + 1;
    }

    void run() {
        build_ledger();
        for (int m = 0; m < opt_.months; ++m)
            simulate_month(m);
        writer_.flush();
    }

    std::size_t person_count() const { return persons_.size(); }
    std::size_t household_count() const { return households_.size(); }
    // Persons first sent with a mistyped ID number (each is quarantined once, then corrected).
    std::uint64_t typos() const { return typos_; }
    std::int64_t first_day() const { return first_day_; }

private:
    // Weighted choice of a village: urban communities are denser than mountain villages.
    std::pair<std::size_t, std::size_t> pick_village() {
        if (village_weights_.empty()) {
            for (std::size_t t = 0; t < district_.townships.size(); ++t)
                for (std::size_t v = 0; v < district_.townships[t].villages.size(); ++v) {
                    const auto& tw = district_.townships[t];
                    bool community = tw.villages[v].code.substr(9, 1) == "0";
                    double w = (tw.urban ? 1.6 : 1.0) * (community ? 1.3 : 1.0) *
                               (0.6 + 0.8 * rng_.uniform());
                    total_weight_ += w;
                    village_weights_.push_back({w, {t, v}});
                }
        }
        double x = rng_.uniform() * total_weight_;
        for (const auto& [w, tv] : village_weights_) {
            if (x < w)
                return tv;
            x -= w;
        }
        return village_weights_.back().second;
    }

    const township_model& township(std::size_t t) const { return district_.townships[t]; }
    const std::string& village_code(const household_state& h) const {
        return township(h.township).villages[h.village].code;
    }

    json::object scope_fields(const household_state& h) const {
        return {{"township", township(h.township).code}, {"village", village_code(h)}};
    }

    void queue(std::vector<event>& out, event e) { out.push_back(std::move(e)); }

    std::string make_id_number(int birth_year, std::int64_t birth_day, bool male) {
        for (;;) {
            std::string id = id_region(rng_, birth_year);
            auto c = civil_from_days(birth_day);
            id += std::to_string(c.year) + two(c.month) + two(c.day);
            int order = static_cast<int>(rng_.below(500)) * 2 + (male ? 1 : 0);
            id += (order < 100 ? "0" : "") + std::string(order < 10 ? "0" : "") +
                  std::to_string(order);
            id += id_number_check_char(id);
            if (used_ids_.insert(id).second)
                return id;
        }
    }

    household_state new_household(std::size_t t, std::size_t v) {
        household_state h;
        h.township = t;
        h.village = v;
        const auto& devs = village_device_[t];
        h.device = devs[v % devs.size()];
        bool urban = township(t).urban;
        double r = rng_.uniform();
        if (urban)
            h.poverty_status = r < 0.93   ? "never_poor"
                               : r < 0.98 ? "lifted_out"
                                          : "under_monitoring";
        else
            h.poverty_status = r < 0.76   ? "never_poor"
                               : r < 0.96 ? "lifted_out"
                                          : "under_monitoring";
        h.monitoring_status = h.poverty_status == "under_monitoring" ? "monitoring"
                              : h.poverty_status == "lifted_out" && rng_.chance(0.12)
                                  ? "risk_eliminated"
                                  : "none";
        double median = urban ? 28000 : h.poverty_status == "never_poor" ? 15000 : 10500;
        h.income = std::round(median * std::exp(0.35 * rng_.normal()) / 10) * 10;
        h.members = static_cast<int>(1 + rng_.weighted({0.08, 0.22, 0.28, 0.22, 0.12, 0.08}));
        h.low_income = rng_.chance(h.poverty_status == "never_poor" ? 0.15 : 0.55);
        return h;
    }

    json::object household_fields(const household_state& h, const std::string& head) {
        auto o = scope_fields(h);
        const auto& tw = township(h.township);
        const auto& vname = tw.villages[h.village].name;
        std::string address = tw.name + vname;
        if (tw.urban)
            address += std::to_string(rng_.between(1, 30)) + "栋" +
                       std::to_string(rng_.between(1, 4)) + "单元" +
                       std::to_string(rng_.between(1, 18)) + "0" +
                       std::to_string(rng_.between(1, 4)) + "号";
        else
            address += std::to_string(rng_.between(1, 12)) + "组" +
                       std::to_string(rng_.between(1, 80)) + "号";
        o["head_name"] = head;
        o["address"] = address;
        o["members"] = h.members;
        o["per_capita_income"] = h.income;
        o["poverty_status"] = h.poverty_status;
        o["monitoring_status"] = h.monitoring_status;
        o["low_income"] = h.low_income;
        return o;
    }

    // A person of the household: age, gender, disability and work drawn from distributions
    // close to the district's disability survey (older people dominate; physical disability
    // is the largest category).
    json::object person_fields(person_state& p, const household_state& h, std::string name,
                               bool young_graduate) {
        int age;
        if (young_graduate)
            age = static_cast<int>(rng_.between(21, 27));
        else {
            double r = rng_.uniform();
            age = r < 0.08   ? static_cast<int>(rng_.between(3, 15))
                  : r < 0.58 ? static_cast<int>(rng_.between(16, 59))
                             : static_cast<int>(rng_.between(60, 92));
        }
        auto end = civil_from_days(opt_.until_day);
        std::int64_t birth_day =
            *parse_date(std::to_string(end.year - age) + "-01-01") + rng_.between(0, 364);
        p.birth_year = civil_from_days(birth_day).year;
        p.age = end.year - p.birth_year;
        p.category = rng_.weighted({0.14, 0.20, 0.01, 0.37, 0.07, 0.07, 0.14});
        std::size_t grade = 1 + rng_.weighted({0.13, 0.24, 0.31, 0.32});
        std::string id = make_id_number(p.birth_year, birth_day, p.male);
        std::string cert = id + std::to_string(p.category + 1) + std::to_string(grade);

        bool working_age = p.age >= 16 && p.age <= 59;
        std::string status = "not_in_labour_force";
        if (working_age) {
            static const char* st[] = {"employed", "unemployed",         "self_employed",
                                       "flexible", "public_welfare_job", "not_in_labour_force"};
            status = st[rng_.weighted({0.17, 0.34, 0.08, 0.14, 0.04, 0.23})];
            if (young_graduate)
                status = rng_.chance(0.5) ? "unemployed" : "employed";
        } else if (p.age >= 60 && rng_.chance(0.06)) {
            status = "flexible";
        }
        p.employment_status = status;
        p.target = working_age && (status == "unemployed" || status == "not_in_labour_force");

        static const char* edu[] = {"none",       "primary", "junior_secondary", "senior_secondary",
                                    "vocational", "college", "bachelor",         "postgraduate"};
        std::string education;
        if (young_graduate)
            education = edu[5 + rng_.weighted({0.55, 0.42, 0.03})];
        else if (p.age >= 60)
            education = edu[rng_.weighted({0.45, 0.4, 0.12, 0.03})];
        else if (p.age < 16)
            education = edu[rng_.weighted({0.3, 0.5, 0.2})];
        else
            education = edu[rng_.weighted({0.08, 0.3, 0.38, 0.12, 0.1, 0.02})];

        json::object o = scope_fields(h);
        o["household"] = h.id.to_string();
        o["name"] = std::move(name);
        o["id_number"] = id;
        if (!rng_.chance(0.03)) // a few certificates are still being issued
            o["disability_cert_no"] = cert;
        o["gender"] = p.male ? "male" : "female";
        o["birth_date"] = date_text(birth_day);
        o["disability_category"] = categories[p.category];
        o["disability_grade"] = static_cast<std::int64_t>(grade);
        if (rng_.chance(0.85))
            o["phone"] = make_phone(rng_);
        o["employment_status"] = status;
        o["education"] = education;
        o["low_income"] = h.low_income;
        o["poverty_status"] = h.poverty_status;
        if (young_graduate) {
            p.graduate = true;
            o["is_graduate"] = true;
            // Some are still at university: the ledger starts before graduation.
            o["graduation_year"] =
                std::min<std::int64_t>(p.birth_year + rng_.between(21, 23), end.year + 1);
        }
        return o;
    }

    // Adds a household and its one or two persons with disabilities, at `ms`.
    void add_family(std::vector<event>& out, std::size_t t, std::size_t v, std::int64_t ms,
                    bool allow_typo) {
        household_state h = new_household(t, v);
        h.id = ids_.make(ms);
        std::size_t persons = rng_.chance(0.12) ? 2 : 1;
        std::vector<std::pair<person_state, std::string>> members;
        for (std::size_t i = 0; i < persons; ++i) {
            person_state p;
            p.male = rng_.chance(0.56);
            members.emplace_back(p, make_name(rng_, p.male));
        }
        h.head_name = rng_.chance(0.6) ? members[0].second : make_name(rng_, true);
        std::size_t hi = households_.size();
        households_.push_back(h);
        auto& hs = households_.back();
        event he{ms, h.device, "household", h.id, household_fields(hs, hs.head_name),
                 {}, nullptr,  nullptr};
        out.push_back(std::move(he));
        out.back().clock_out = &status_slot(hi);
        out.back().clock_out2 = &income_slot(hi);
        for (auto& [p, name] : members) {
            p.household = hi;
            households_[hi].persons.push_back(persons_.size());
            p.id = ids_.make(ms + 1000);
            bool graduate = rng_.chance(0.012);
            bool typo = allow_typo && rng_.chance(0.1);
            std::size_t pi = persons_.size();
            persons_.push_back(p);
            auto& ps = persons_.back();
            auto fields = person_fields(ps, households_[hi], name, graduate);
            if (typo) {
                ++typos_;
                // The first attempt carries a mistyped ID number and is quarantined; the worker
                // corrects it and the tablet sends the record again under the same id.
                auto bad = fields;
                std::string id(bad["id_number"].as_string());
                id[14] = static_cast<char>('0' + (id[14] - '0' + 1) % 10);
                bad["id_number"] = id;
                out.push_back(
                    {ms + 60000, h.device, "person", ps.id, std::move(bad), {}, nullptr, nullptr});
            }
            out.push_back({ms + 120000,
                           h.device,
                           "person",
                           ps.id,
                           std::move(fields),
                           {},
                           &employment_slot(pi),
                           &person_status_slot(pi)});
        }
    }

    // Slots live in deques so that pointers stay valid while the vectors grow.
    hlc& status_slot(std::size_t h) { return slot(status_clocks_, h); }
    hlc& income_slot(std::size_t h) { return slot(income_clocks_, h); }
    hlc& employment_slot(std::size_t p) { return slot(employment_clocks_, p); }
    hlc& person_status_slot(std::size_t p) { return slot(person_status_clocks_, p); }
    static hlc& slot(std::deque<hlc>& d, std::size_t i) {
        while (d.size() <= i)
            d.emplace_back();
        return d[i];
    }

    // The ledger as the district imported it at the start of the period (from the national
    // disability information platform), entered by each township's tablets over a week.
    void build_ledger() {
        std::size_t target = persons_per_scale * opt_.scale;
        std::vector<event> out;
        while (persons_.size() < target) {
            auto [t, v] = pick_village();
            std::int64_t day = first_day_ + rng_.between(0, 6);
            add_family(out, t, v, working_moment(rng_, day), false);
        }
        emit(out);
    }

    void emit(std::vector<event>& out) {
        std::stable_sort(out.begin(), out.end(),
                         [](const event& a, const event& b) { return a.ms < b.ms; });
        for (auto& e : out)
            writer_.add(e);
        out.clear();
    }

    std::string worker_of(std::size_t dev) const { return devices_[dev].worker_name; }

    // A moment on a working day of month `m` of the period (weekends are rarer).
    std::int64_t moment_in_month(int m) {
        std::int64_t start = first_day_ + m * 30;
        std::int64_t day = start + rng_.between(0, 29);
        if ((day + 4) % 7 >= 5 && rng_.chance(0.8)) // Saturday or Sunday: mostly moved
            day -= (day + 4) % 7 - 4;
        day = std::clamp(day, first_day_ + 7, opt_.until_day);
        return working_moment(rng_, day);
    }

    json::object geo_near(const household_state& h) {
        // Kaizhou lies around 31.0–31.6°N, 108.1–108.7°E; each township gets a stable centre.
        std::uint64_t k = 1469598103934665603ULL; // FNV-1a: the same on every platform
        for (unsigned char ch : village_code(h))
            k = (k ^ ch) * 1099511628211ULL;
        double lat = 31.05 + static_cast<double>(k % 1000) / 1000 * 0.5;
        double lon = 108.15 + static_cast<double>((k / 1000) % 1000) / 1000 * 0.55;
        return {{"lat", std::round((lat + 0.01 * rng_.normal()) * 1e5) / 1e5},
                {"lon", std::round((lon + 0.01 * rng_.normal()) * 1e5) / 1e5},
                {"accuracy_m", static_cast<std::int64_t>(rng_.between(5, 60))}};
    }

    event visit(std::int64_t ms, const household_state& h, const person_state* p, const char* type,
                bool verified, std::int64_t next_in_days) {
        json::object o = scope_fields(h);
        if (p)
            o["person"] = p->id.to_string();
        o["household"] = h.id.to_string();
        o["visited_at"] = datetime_text(ms);
        o["worker"] = worker_of(h.device);
        o["visit_type"] = type;
        if (verified)
            o["basic_info_verified"] = true;
        static const std::vector<std::string> notes = {"核对身份证、残疾人证信息无误",
                                                       "了解家庭收入和就业情况",
                                                       "宣传残疾人就业扶持政策",
                                                       "家中无人，电话联系本人",
                                                       "本人身体状况稳定",
                                                       "询问培训意愿",
                                                       "家属代为回答"};
        o["notes"] = rng_.pick(notes);
        if (rng_.chance(0.7))
            o["location"] = geo_near(h);
        if (next_in_days > 0)
            o["next_visit_due"] = date_text(local_day_of(ms) + next_in_days);
        return {ms, h.device, "home_visit", ids_.make(ms), std::move(o), {}, nullptr, nullptr};
    }

    void simulate_month(int m) {
        std::vector<event> out;
        current_month_ = m;
        bool quarter = m % 3 == 1;

        // Households: return-to-poverty monitoring each quarter for the lifted-out and the
        // monitored; follow-up visits every two months for the monitored.
        for (std::size_t hi = 0; hi < households_.size(); ++hi) {
            auto& h = households_[hi];
            bool watched = h.poverty_status != "never_poor";
            if (watched && quarter && rng_.chance(0.93))
                monitoring_check(out, hi);
            if (h.poverty_status == "under_monitoring" && m % 2 == 0 && rng_.chance(0.9))
                out.push_back(visit(moment_in_month(m), h, nullptr, "follow_up", false, 60));
            // Rarely, the worker's new income survey and the township office's annual figure
            // cross: a concurrent edit the township head resolves.
            if (m == opt_.months / 2 && rng_.chance(0.004) && !income_slot(hi).is_zero()) {
                std::int64_t ms = moment_in_month(m);
                double a = std::round(h.income * (0.9 + 0.2 * rng_.uniform()) / 10) * 10;
                double b = std::round(h.income * (0.9 + 0.2 * rng_.uniform()) / 10) * 10 + 10;
                std::size_t office = office_device_[h.township];
                out.push_back({ms,
                               h.device,
                               "household",
                               h.id,
                               {{"per_capita_income", a}},
                               {{"per_capita_income", &income_slot(hi)}},
                               nullptr,
                               nullptr});
                out.push_back({ms + 3600000,
                               office,
                               "household",
                               h.id,
                               {{"per_capita_income", b}},
                               {{"per_capita_income", &income_slot(hi)}},
                               nullptr,
                               nullptr});
            }
        }

        // Persons: "四个一" for the working-age without work, routine visits for everyone else,
        // and the graduates' one-person-one-plan ledger.
        for (std::size_t pi = 0; pi < persons_.size(); ++pi)
            person_month(out, pi, m);

        // New certificates issued during the year join the ledger (about 3% a year).
        double fresh = 0.03 / 12 * static_cast<double>(persons_per_scale * opt_.scale);
        for (int i = 0; i < static_cast<int>(fresh) + (rng_.chance(fresh - std::floor(fresh)));
             ++i) {
            auto [t, v] = pick_village();
            add_family(out, t, v, moment_in_month(m), true);
        }
        emit(out);
    }

    void monitoring_check(std::vector<event>& out, std::size_t hi) {
        auto& h = households_[hi];
        std::int64_t ms = moment_in_month(current_month_);
        static const char* factors[] = {"illness",  "disability",          "schooling", "disaster",
                                        "accident", "unstable_employment", "other"};
        bool monitored = h.poverty_status == "under_monitoring";
        // Monitored households mostly improve; lifted-out ones occasionally slip.
        std::size_t level = monitored ? rng_.weighted({0.45, 0.3, 0.18, 0.07})
                                      : rng_.weighted({0.86, 0.10, 0.03, 0.01});
        static const char* levels[] = {"none", "low", "medium", "high"};
        json::array risk;
        if (level > 0) {
            std::set<std::size_t> picked;
            std::size_t n = 1 + rng_.below(level);
            while (picked.size() < n)
                picked.insert(rng_.weighted({0.35, 0.2, 0.12, 0.05, 0.06, 0.18, 0.04}));
            for (auto f : picked)
                risk.push_back(json::string(factors[f]));
        }
        double income = std::round(h.income * (0.85 + 0.3 * rng_.uniform()) / 10) * 10;
        if (level >= 2)
            income = std::round(income * 0.75 / 10) * 10;
        std::string outcome;
        std::string measures;
        if (level == 0) {
            outcome = monitored && h.quiet_checks >= 1 ? "risk_eliminated" : "no_risk";
            ++h.quiet_checks;
        } else {
            h.quiet_checks = 0;
            if (level == 1) // low risk: a monitored household stays on the list
                outcome = monitored ? "flag_for_monitoring" : "no_risk";
            else if (level == 2)
                outcome = "flag_for_monitoring";
            else
                outcome = "assistance_recommended";
        }
        if (outcome == "assistance_recommended" ||
            (outcome == "flag_for_monitoring" && rng_.chance(0.6))) {
            static const std::vector<std::string> m = {
                "申请临时救助",     "推荐公益性岗位", "落实医疗救助和残疾人两项补贴",
                "协调产业帮扶资金", "安排技能培训",   "纳入低保审核"};
            measures = rng_.pick(m);
        }
        json::object o = scope_fields(h);
        o["household"] = h.id.to_string();
        o["checked_at"] = datetime_text(ms);
        o["worker"] = worker_of(h.device);
        o["per_capita_income"] = income;
        o["risk_factors"] = std::move(risk);
        o["risk_level"] = levels[level];
        o["outcome"] = outcome;
        if (!measures.empty())
            o["measures"] = measures;
        out.push_back(
            {ms, h.device, "monitoring_check", ids_.make(ms), std::move(o), {}, nullptr, nullptr});

        // The household's status follows the check.
        std::string poverty = h.poverty_status, monitoring = h.monitoring_status;
        if (outcome == "flag_for_monitoring" || outcome == "assistance_recommended") {
            poverty = "under_monitoring";
            monitoring = "monitoring";
        } else if (outcome == "risk_eliminated") {
            poverty = "lifted_out";
            monitoring = "risk_eliminated";
        }
        if (poverty != h.poverty_status || monitoring != h.monitoring_status) {
            h.poverty_status = poverty;
            h.monitoring_status = monitoring;
            out.push_back(
                {ms + 600000,
                 h.device,
                 "household",
                 h.id,
                 {{"poverty_status", poverty}, {"monitoring_status", monitoring}},
                 {{"poverty_status", &status_slot(hi)}, {"monitoring_status", &status_slot(hi)}},
                 &status_slot(hi),
                 nullptr});
            // The members' records carry the household's poverty status too.
            for (std::size_t pi : h.persons)
                out.push_back({ms + 900000,
                               h.device,
                               "person",
                               persons_[pi].id,
                               {{"poverty_status", poverty}},
                               {{"poverty_status", &person_status_slot(pi)}},
                               &person_status_slot(pi),
                               nullptr});
        }
    }

    struct plan {
        int verify_month = -1, register_month = -1, assess_month = -1, routine_month = -1;
        std::vector<int> service_months;
        bool wants_work = false;
        bool registered_as_not_wanting = false;
    };

    // Decided once per person, at their first month, so that the months follow one another.
    plan make_plan(const person_state& p, int from_month) {
        plan pl;
        int months = opt_.months - from_month;
        auto month_after = [&](int m, int within) {
            return std::min(opt_.months - 1, m + static_cast<int>(rng_.below(within)));
        };
        if (p.target || p.graduate) {
            if (rng_.chance(p.graduate ? 0.97 : 0.88)) {
                // The verification campaign runs early in the year.
                double u = rng_.uniform();
                pl.verify_month = from_month + static_cast<int>(u * u * months);
                bool wants = p.graduate
                                 ? rng_.chance(0.9)
                                 : rng_.chance(p.employment_status == "unemployed" ? 0.68 : 0.18);
                if (wants && rng_.chance(p.graduate ? 0.97 : 0.85)) {
                    pl.wants_work = true;
                    pl.register_month = month_after(pl.verify_month, 2);
                    if (rng_.chance(0.62))
                        pl.assess_month = month_after(pl.register_month, 3);
                    if (rng_.chance(p.graduate ? 0.95 : 0.74)) {
                        int n = 1 + static_cast<int>(rng_.weighted({0.6, 0.3, 0.1}));
                        int at = pl.register_month;
                        for (int i = 0; i < n; ++i) {
                            at = month_after(at, 3);
                            pl.service_months.push_back(at);
                        }
                    }
                } else if (!wants && rng_.chance(0.5)) {
                    pl.registered_as_not_wanting = true;
                    pl.register_month = pl.verify_month;
                }
            }
        }
        if (pl.verify_month < 0 && rng_.chance(0.55))
            pl.routine_month = from_month + static_cast<int>(rng_.below(months));
        return pl;
    }

    void person_month(std::vector<event>& out, std::size_t pi, int m) {
        if (plans_.size() <= pi)
            plans_.resize(pi + 1);
        auto& slot_plan = plans_[pi];
        if (!slot_plan)
            slot_plan = make_plan(persons_[pi], m);
        plan& pl = *slot_plan;
        auto& p = persons_[pi];
        auto& h = households_[p.household];

        if (pl.verify_month == m)
            out.push_back(
                visit(moment_in_month(m), h, &p, "verification", true, rng_.chance(0.6) ? 90 : 0));
        if (pl.routine_month == m)
            out.push_back(visit(moment_in_month(m), h, &p, "routine", rng_.chance(0.3), 0));
        if (pl.register_month == m) {
            std::int64_t ms = moment_in_month(m);
            if (pl.verify_month == m)
                ms = std::max(ms, out.back().ms + 1800000);
            json::object o = scope_fields(h);
            o["person"] = p.id.to_string();
            o["registered_at"] = date_text(local_day_of(ms));
            o["worker"] = worker_of(h.device);
            o["wants_work"] = pl.wants_work;
            if (pl.wants_work) {
                static const char* jobs[] = {"agriculture", "manufacturing", "handicraft",
                                             "services",    "retail",        "e_commerce",
                                             "massage",     "cleaning",      "security",
                                             "office",      "other"};
                static const char* trainings[] = {
                    "practical_farming", "handicraft", "e_commerce", "livestreaming",
                    "digital_skills",    "massage",    "cooking",    "other"};
                static const char* modes[] = {"nearby", "home_based", "centralised", "flexible"};
                json::array want, train;
                std::set<std::size_t> seen;
                for (std::size_t i = 0, n = 1 + rng_.below(2); i < n; ++i) {
                    std::size_t j =
                        p.category == 0 && rng_.chance(0.6)
                            ? 6
                            : (p.graduate ? (rng_.chance(0.6) ? 9 : 5)
                                          : rng_.weighted({0.2, 0.15, 0.12, 0.15, 0.08, 0.08, 0.02,
                                                           0.1, 0.05, 0.02, 0.03}));
                    if (seen.insert(j).second)
                        want.push_back(json::string(jobs[j]));
                }
                if (rng_.chance(0.6))
                    train.push_back(json::string(
                        trainings[p.category == 0 ? 5
                                                  : rng_.weighted({0.3, 0.15, 0.15, 0.08, 0.12, 0.0,
                                                                   0.12, 0.08})]));
                o["desired_jobs"] = std::move(want);
                if (!train.empty())
                    o["training_needs"] = std::move(train);
                o["work_mode"] = modes[rng_.weighted({0.45, 0.25, 0.1, 0.2})];
            }
            if (!pl.registered_as_not_wanting && pl.assess_month == m) {
                o["assessment_result"] = assessment(p);
                o["assessed_at"] = date_text(local_day_of(ms));
                pl.assess_month = -1;
            }
            registration_id_[pi] = ids_.make(ms);
            registration_ms_[pi] = ms;
            out.push_back({ms,
                           h.device,
                           "needs_registration",
                           registration_id_[pi],
                           std::move(o),
                           {},
                           nullptr,
                           nullptr});
        } else if (pl.assess_month == m && registration_id_.count(pi)) {
            // The assessment comes later and completes the registration record.
            std::int64_t ms = std::max(moment_in_month(m), registration_ms_[pi] + hour_ms);
            out.push_back({ms,
                           h.device,
                           "needs_registration",
                           registration_id_[pi],
                           {{"assessment_result", assessment(p)},
                            {"assessed_at", date_text(local_day_of(ms))}},
                           {},
                           nullptr,
                           nullptr});
        }
        for (int sm : pl.service_months)
            if (sm == m && registration_id_.count(pi))
                service(out, pi, m);
    }

    std::string assessment(const person_state& p) {
        static const char* results[] = {"open_employment", "supported_employment", "home_based",
                                        "needs_training", "unable_to_work"};
        if (p.graduate)
            return results[rng_.weighted({0.7, 0.02, 0.08, 0.2, 0.0})];
        if (p.category == 4 || p.category == 5) // intellectual, mental
            return results[rng_.weighted({0.1, 0.45, 0.15, 0.2, 0.1})];
        return results[rng_.weighted({0.35, 0.08, 0.25, 0.27, 0.05})];
    }

    void service(std::vector<event>& out, std::size_t pi, int m) {
        auto& p = persons_[pi];
        auto& h = households_[p.household];
        static const char* types[] = {
            "job_referral",       "skills_training",          "policy_consultation",
            "public_welfare_job", "entrepreneurship_support", "supported_employment",
            "blind_massage"};
        std::size_t type = p.category == 0 && rng_.chance(0.5)
                               ? 6
                               : rng_.weighted({0.3, 0.25, 0.2, 0.08, 0.07, 0.1, 0.0});
        if ((p.category == 4 || p.category == 5) && type == 4)
            type = 5;
        static const char* outcomes[] = {"employed", "in_training", "pending", "declined",
                                         "not_successful"};
        std::size_t outcome = type == 1   ? rng_.weighted({0.1, 0.7, 0.1, 0.05, 0.05})
                              : type == 2 ? rng_.weighted({0.05, 0.0, 0.8, 0.1, 0.05})
                                          : rng_.weighted({0.32, 0.0, 0.33, 0.12, 0.23});
        // Services follow the registration, even within its month.
        std::int64_t ms = std::max(moment_in_month(m), registration_ms_[pi] + 2 * hour_ms);
        static const std::vector<std::string> providers = {
            "区残疾人就业服务中心", "乡镇（街道）劳动保障所", "区残疾人职业培训基地",
            "区公共就业和人才服务中心", "阳光家园辅助性就业机构"};
        json::object o = scope_fields(h);
        o["person"] = p.id.to_string();
        o["service_type"] = types[type];
        o["delivered_at"] = date_text(local_day_of(ms));
        o["worker"] = worker_of(h.device);
        o["provider"] = rng_.pick(providers);
        o["outcome"] = outcomes[outcome];
        out.push_back({ms,
                       h.device,
                       "employment_service",
                       ids_.make(ms),
                       std::move(o),
                       {},
                       nullptr,
                       nullptr});
        if (outcome == 0 && p.employment_status != "employed") {
            // Found work: the worker updates the person's record after the service.
            std::string status = type == 3   ? "public_welfare_job"
                                 : type == 4 ? "self_employed"
                                 : type == 6 ? "self_employed"
                                             : "employed";
            p.employment_status = status;
            out.push_back({ms + 1800000,
                           h.device,
                           "person",
                           p.id,
                           {{"employment_status", status}},
                           {{"employment_status", &employment_slot(pi)}},
                           &employment_slot(pi),
                           nullptr});
        }
    }

    const district_model& district_;
    const options& opt_;
    demo_writer& writer_;
    std::vector<device>& devices_;
    std::vector<std::vector<std::size_t>>& village_device_;

public:
    std::vector<std::size_t> office_device_; // per township

private:
    random_source rng_;
    uuid_v7_generator ids_;
    std::int64_t first_day_ = 0;
    int current_month_ = 0;
    std::vector<std::pair<double, std::pair<std::size_t, std::size_t>>> village_weights_;
    double total_weight_ = 0;
    std::deque<household_state> households_;
    std::deque<person_state> persons_;
    std::deque<hlc> status_clocks_, income_clocks_, employment_clocks_, person_status_clocks_;
    std::vector<std::optional<plan>> plans_;
    std::map<std::size_t, uuid> registration_id_;
    std::map<std::size_t, std::int64_t> registration_ms_;
    std::set<std::string> used_ids_;
    std::uint64_t typos_ = 0;
};

std::int64_t count_of(sql::connection& c, std::string_view q) {
    sql::statement s(c.handle(), q);
    return s.step() ? s.int64(0) : 0;
}

std::optional<options> parse_options(const args& a) {
    options o;
    o.dir = option(a, "--data");
    if (o.dir.empty())
        return std::nullopt;
    try {
        if (auto s = option(a, "--scale"); !s.empty())
            o.scale = std::stoul(s);
        if (auto s = option(a, "--months"); !s.empty())
            o.months = std::stoi(s);
        if (auto s = option(a, "--seed"); !s.empty())
            o.seed = std::stoull(s);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (o.scale < 1 || o.scale > 1000 || o.months < 1 || o.months > 36)
        return std::nullopt;
    if (auto s = option(a, "--until"); !s.empty()) {
        auto d = parse_date(s);
        if (!d)
            return std::nullopt;
        o.until_day = *d;
    } else {
        // Yesterday in China: every simulated moment lies in the past of the server's clock.
        o.until_day = local_day_of(system_wall_ms()) - 1;
    }
    o.force = flag(a, "--force");
    return o;
}

} // namespace

int cmd_demo(const args& a) {
    auto opt = parse_options(a);
    if (!opt) {
        std::cerr
            << "usage: fieldsync demo --data DIR [--scale N] [--months M] [--seed S]\n"
               "                     [--until YYYY-MM-DD] [--force]\n"
               "  --scale N   about 1,500 x N persons with disabilities (40: a full district)\n"
               "  --months M  months of field work up to --until (default 12)\n"
               "  --until     last simulated day (default yesterday, China time)\n"
               "  --force     replace an existing database in DIR\n";
        return 2;
    }
    const auto started = std::chrono::steady_clock::now();
    auto db_path = database_path(opt->dir);
    if (opt->until_day >= local_day_of(system_wall_ms())) {
        std::cerr << "fieldsync demo: --until must be before today\n";
        return 2;
    }
    fs::create_directories(opt->dir);
    if (fs::exists(db_path)) {
        if (!opt->force) {
            std::cerr << "fieldsync demo: " << db_path
                      << " already exists; use another folder or --force to replace it\n";
            return 1;
        }
        for (const char* suffix : {"", "-wal", "-shm"})
            fs::remove(db_path + suffix);
    }

    const district_model district = load_district();
    sql::connection db(db_path, sql::open_mode::read_write_create);
    if (auto r = migrate_server_database(db); !r) {
        std::cerr << "fieldsync demo: cannot migrate " << db_path << "\n";
        return 1;
    }
    {
        sql::transaction tx(db);
        engine::put_division(db, district.code, district.name);
        for (const auto& t : district.townships) {
            engine::put_division(db, t.code, t.name);
            for (const auto& v : t.villages)
                engine::put_division(db, v.code, v.name);
        }
        tx.commit();
    }
    engine eng(catalog::builtin(), engine_config{}, db);
    // The monthly indicators are maintained as the data goes in, exactly as on the server.
    rollups indicators;
    eng.add_observer(&indicators);

    // Tablets: one per 600 persons of a township (at least one), each serving a share of its
    // villages, and one at each township office (the township head's).
    random_source names(opt->seed ^ 0x6e616d6573ULL);
    std::vector<device> devices;
    std::vector<std::vector<std::size_t>> village_device(district.townships.size());
    std::vector<std::size_t> office_device;
    const double share = static_cast<double>(persons_per_scale * opt->scale) /
                         static_cast<double>(district.townships.size());
    for (std::size_t t = 0; t < district.townships.size(); ++t) {
        const auto& tw = district.townships[t];
        std::size_t n = 1 + static_cast<std::size_t>(share * (tw.urban ? 1.4 : 1.0) / 600);
        for (std::size_t i = 1; i <= n; ++i) {
            device d;
            std::string suffix = tw.code + "-" + std::to_string(i);
            d.who = principal{"worker-" + suffix, "tablet-" + suffix, scope{tw.code, {}}};
            d.worker_name = make_name(names, names.chance(0.5));
            village_device[t].push_back(devices.size());
            devices.push_back(std::move(d));
        }
        device office;
        office.who = principal{"head-" + tw.code, "office-" + tw.code, scope{tw.code, {}}};
        office.worker_name = make_name(names, names.chance(0.5));
        office_device.push_back(devices.size());
        devices.push_back(std::move(office));
    }

    demo_writer writer(db, eng, devices);
    simulation sim(district, *opt, writer, devices, village_device);
    sim.office_device_ = office_device;
    sim.run();
    const auto& totals = writer.totals();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    json::object counts;
    {
        auto s = db.cached("SELECT collection, count(*) FROM records GROUP BY collection");
        while (s->step())
            counts[s->text(0)] = s->int64(1);
    }
    counts["mutations"] = totals.mutations;
    counts["rejected"] = totals.rejected;
    counts["open_conflicts"] = count_of(db, "SELECT count(*) FROM conflicts WHERE status='open'");
    counts["quarantined"] = count_of(db, "SELECT count(*) FROM quarantine");
    counts["history"] = count_of(db, "SELECT count(*) FROM history");
    counts["last_change_seq"] = static_cast<std::int64_t>(engine::last_seq(db));
    counts["devices"] = devices.size();
    counts["transactions"] = totals.transactions;
    json::object rejected_codes;
    for (const auto& [code, n] : totals.rejected_codes)
        rejected_codes[code] = n;
    const json::object rejected_codes_copy = rejected_codes;

    // Logins for every simulated worker and township office, a district admin, and a one-time
    // enrolment code per field worker so that a tablet (or the simulator) can join as them.
    json::array users, codes;
    {
        sql::transaction tx(db);
        const auto now = system_wall_ms();
        auto add = [&](const auth::user& u, const std::string& password) {
            // The demo's passwords are printed in demo.json: a full-strength hash would only
            // add seconds to every `tools/run` (≈0.07 s per login), so they get 2,000
            // iterations. Real users (fieldsync users add, the admin API) get the default.
            auto made = auth::add_user(db, u, password, now, 2000);
            if (!made)
                throw std::runtime_error("demo user " + u.username + ": " + made.error.message);
            users.push_back({{"username", u.username},
                             {"password", password},
                             {"role", auth::to_string(u.role)},
                             {"township", u.township}});
        };
        add(auth::user{"admin", auth::role::district_admin, "", {}, false, 0}, "demo-admin-2026");
        std::set<std::string> seen;
        for (const auto& d : devices) {
            if (!seen.insert(d.who.user).second)
                continue;
            bool office = d.who.user.starts_with("head-");
            auth::user u{d.who.user,
                         office ? auth::role::township_head : auth::role::field_worker,
                         d.who.where.township,
                         office ? std::vector<std::string>{} : d.who.where.villages,
                         false,
                         0};
            add(u, office ? "demo-head-2026" : "demo-worker-2026");
            if (office)
                continue;
            auto code =
                auth::create_enrolment_code(db, u.username, std::int64_t{7} * 86400000, now);
            if (!code)
                throw std::runtime_error("demo code: " + code.error.message);
            codes.push_back({{"code", code.value->code},
                             {"username", u.username},
                             {"township", u.township},
                             {"expires_ms", code.value->expires_ms}});
        }
        tx.commit();
    }

    json::array device_list;
    for (const auto& d : devices)
        device_list.push_back({{"device", d.who.device},
                               {"user", d.who.user},
                               {"name", d.worker_name},
                               {"township", d.who.where.township}});
    json::object doc{
        {"district",
         {{"code", district.code},
          {"name", district.name},
          {"townships", district.townships.size()},
          {"villages", count_of(db, "SELECT count(*) FROM divisions WHERE level = 12")},
          {"note", district.note}}},
        {"database", db_path},
        {"seed", opt->seed},
        {"scale", opt->scale},
        {"period", {{"from", date_text(sim.first_day())}, {"until", date_text(opt->until_day)}}},
        {"users", std::move(users)},
        {"enrolment_codes", std::move(codes)},
        {"devices", std::move(device_list)},
        {"counts", counts},
        {"rejected_codes", std::move(rejected_codes)},
        {"seconds", std::round(seconds * 10) / 10},
    };
    // The only rejections the simulation means to cause are the mistyped ID numbers; anything
    // else is a generator or engine bug and must not pass silently.
    bool clean = totals.rejected == sim.typos() && totals.rejected_codes.size() <= 1 &&
                 (totals.rejected == 0 || totals.rejected_codes.count("id_number_check_digit"));
    auto demo_json = (fs::path(opt->dir) / "demo.json").string();
    {
        std::ofstream out(demo_json, std::ios::trunc);
        out << json::serialize(doc) << "\n";
        if (!out)
            throw std::runtime_error("cannot write " + demo_json);
    }

    std::cout << "demo district " << district.name << " (" << district.code
              << "): " << district.townships.size() << " townships, "
              << doc["district"].as_object()["villages"].as_int64() << " villages\n"
              << "  " << sim.person_count() << " persons, " << sim.household_count()
              << " households, " << opt->months << " months of field work ("
              << date_text(sim.first_day()) << " to " << date_text(opt->until_day) << ")\n"
              << "  " << totals.mutations << " mutations from " << devices.size() << " tablets in "
              << totals.transactions << " transactions: " << totals.applied << " applied, "
              << totals.rejected << " quarantined, " << totals.conflicts << " conflicts opened\n"
              << "  " << json::serialize(counts) << "\n"
              << "  " << std::fixed << std::setprecision(1) << seconds << " s\n"
              << "database: " << db_path << "\n"
              << "demo.json: " << demo_json << "\n";
    if (!clean) {
        std::cerr << "fieldsync demo: unexpected rejections: "
                  << json::serialize(rejected_codes_copy) << "\n";
        return 1;
    }
    return 0;
}

} // namespace fieldsync::cli
