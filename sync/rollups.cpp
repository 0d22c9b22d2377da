#include "sync/rollups.hpp"
#include "sync/store_util.hpp"

#include "schema/rules.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <compare>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <set>

namespace fieldsync {

namespace json = boost::json;

namespace {

// The indicators in report order (rollup_indicators()). Cells name them by number, so that
// comparing cells, which the figures' bookkeeping does for every person and record, compares
// integers instead of strings.
enum class indicator : std::uint8_t {
    home_visits,
    persons_visited,
    four_ones_base,
    four_ones_verified,
    four_ones_assessed,
    four_ones_registered,
    four_ones_served,
    monitoring_checks,
    households_flagged,
    graduates,
    graduates_registered,
    graduates_served,
    late_records,
    open_conflicts,
};
constexpr std::array<std::string_view, 14> indicator_names = {
    "home_visits",        "persons_visited",      "four_ones_base",
    "four_ones_verified", "four_ones_assessed",   "four_ones_registered",
    "four_ones_served",   "monitoring_checks",    "households_flagged",
    "graduates",          "graduates_registered", "graduates_served",
    "late_records",       "open_conflicts",
};

std::string_view name_of(indicator i) {
    return indicator_names[static_cast<std::size_t>(i)];
}

std::optional<indicator> indicator_of(std::string_view name) {
    for (std::size_t i = 0; i < indicator_names.size(); ++i)
        if (indicator_names[i] == name)
            return static_cast<indicator>(i);
    return std::nullopt;
}

// A month "YYYY-MM" as YYYY * 100 + MM, the year being key / 100; 0 for "" (the township-wide
// open_conflicts).
using month_key = std::int32_t;

// The value of the digits s[at, at + n) ("YYYY-MM-DD" parts already checked by parse_date or
// is_month).
int digits_at(std::string_view s, std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n && i < s.size(); ++i)
        v = v * 10 + (s[i] - '0');
    return v;
}

// For a valid "YYYY-MM" (or ""), as stored in the rollup tables.
month_key month_of(std::string_view ym) {
    return ym.size() < 7 ? 0 : digits_at(ym, 0, 4) * 100 + digits_at(ym, 5, 2);
}

std::string month_text(month_key m) {
    if (m == 0)
        return {};
    char text[16];
    std::snprintf(text, sizeof text, "%04d-%02d", m / 100, m % 100);
    return text;
}

// Township codes (villages, for by_village) numbered in the order they are first seen, so that
// cells compare as integers; "" is number 0. Cells are read with the table that made them.
class code_table {
public:
    code_table() { id(""); }
    std::uint32_t id(std::string_view code) {
        if (auto it = ids_.find(code); it != ids_.end())
            return it->second;
        const auto n = static_cast<std::uint32_t>(codes_.size());
        codes_.emplace_back(code);
        ids_.emplace(std::string(code), n);
        return n;
    }
    const std::string& code(std::uint32_t id) const { return codes_.at(id); }

private:
    std::vector<std::string> codes_;
    std::map<std::string, std::uint32_t, std::less<>> ids_;
};

// (township, month, indicator)
struct cell {
    std::uint32_t township = 0;
    month_key month = 0;
    indicator what = indicator::home_visits;
    auto operator<=>(const cell&) const = default;
};
// (township, month, indicator, key)
struct key_cell {
    cell at;
    std::string key;
    auto operator<=>(const key_cell&) const = default;
};

struct record_contrib {
    std::vector<cell> counts;
    std::vector<key_cell> keys;
};

enum class event_kind : std::uint8_t { verified, assessed, registered, served };
constexpr std::array<std::string_view, 4> event_kind_names = {"verified", "assessed", "registered",
                                                              "served"};

std::optional<event_kind> event_kind_of(std::string_view name) {
    for (std::size_t i = 0; i < event_kind_names.size(); ++i)
        if (event_kind_names[i] == name)
            return static_cast<event_kind>(i);
    return std::nullopt;
}

struct event {
    event_kind kind;
    std::string person;
    month_key month;
    std::string record; // the record it comes from (stored events only)
};

// An event counts in the figures of its month and of the later months of that year.
bool reaches(const event& e, month_key month) {
    return e.month / 100 == month / 100 && e.month <= month;
}

std::string_view str(const json::object& o, std::string_view k) {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

bool truthy(const json::object& o, std::string_view k) {
    const auto* v = o.if_contains(k);
    return v && v->is_bool() && v->as_bool();
}

bool is_deleted(const json::object& o) {
    return truthy(o, "_deleted");
}

// The month of a date ("YYYY-MM-DD…"), 0 if it is not one.
month_key month_of_date(std::string_view date_text) {
    if (date_text.size() < 10 || !parse_date(date_text.substr(0, 10)))
        return 0;
    return month_of(date_text);
}

} // namespace

std::string_view collected_date_field(std::string_view collection) noexcept {
    if (collection == "home_visit")
        return "visited_at";
    if (collection == "monitoring_check")
        return "checked_at";
    if (collection == "needs_registration")
        return "registered_at";
    if (collection == "employment_service")
        return "delivered_at";
    return {};
}

namespace {

std::string_view date_field(std::string_view collection) {
    return collected_date_field(collection);
}

// `township`: the code's number in the caller's code_table (0: none).
record_contrib record_level(std::string_view collection, const json::object& f,
                            std::uint32_t township, std::int64_t created_ms,
                            const rollup_config& cfg) {
    record_contrib out;
    auto df = date_field(collection);
    if (df.empty() || is_deleted(f) || township == 0)
        return out;
    auto date_text = str(f, df);
    auto month = month_of_date(date_text);
    if (month == 0)
        return out;
    if (collection == "home_visit") {
        out.counts.push_back({township, month, indicator::home_visits});
        if (auto p = str(f, "person"); !p.empty())
            out.keys.push_back({{township, month, indicator::persons_visited}, std::string(p)});
    } else if (collection == "monitoring_check") {
        out.counts.push_back({township, month, indicator::monitoring_checks});
        auto outcome = str(f, "outcome");
        if (auto h = str(f, "household");
            !h.empty() && (outcome == "flag_for_monitoring" || outcome == "assistance_recommended"))
            out.keys.push_back({{township, month, indicator::households_flagged}, std::string(h)});
    }
    auto day = parse_date(date_text.substr(0, 10));
    if (day && created_ms / 86400000 - *day > cfg.late_after_days)
        out.counts.push_back({township, month, indicator::late_records});
    return out;
}

std::vector<event> events_of(std::string_view collection, const json::object& f) {
    std::vector<event> out;
    if (is_deleted(f))
        return out;
    auto person = std::string(str(f, "person"));
    if (person.empty())
        return out;
    auto add = [&](event_kind kind, std::string_view date_text) {
        if (auto m = month_of_date(date_text))
            out.push_back({kind, person, m, {}});
    };
    if (collection == "home_visit" && truthy(f, "basic_info_verified"))
        add(event_kind::verified, str(f, "visited_at"));
    if (collection == "needs_registration") {
        add(event_kind::registered, str(f, "registered_at"));
        if (!str(f, "assessment_result").empty())
            add(event_kind::assessed, str(f, "assessed_at"));
    }
    if (collection == "employment_service")
        add(event_kind::served, str(f, "delivered_at"));
    return out;
}

// Whole years of age on the last day of `month` for someone born on `birth` ("YYYY-MM-DD").
int age_at_month_end(std::string_view birth, month_key month) {
    static constexpr int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = month / 100, m = std::clamp(month % 100, 1, 12);
    int last = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 1 : 0);
    int bm = digits_at(birth, 5, 2), bd = digits_at(birth, 8, 2);
    int age = y - digits_at(birth, 0, 4);
    if (m < bm || (m == bm && last < bd))
        --age;
    return age;
}

// The cells one person contributes +1 to, over the given months (`township` as in
// record_level).
std::vector<cell> person_level(const json::object* person, std::uint32_t township,
                               const std::vector<event>& events,
                               const std::vector<month_key>& months, const rollup_config& cfg) {
    std::vector<cell> out;
    if (!person || is_deleted(*person) || township == 0)
        return out;
    auto birth = str(*person, "birth_date");
    auto gender = str(*person, "gender");
    bool unemployed = str(*person, "employment_status") == "unemployed";
    bool graduate = truthy(*person, "is_graduate");
    std::int64_t grad_year = 0;
    if (const auto* g = person->if_contains("graduation_year"); g && g->is_int64())
        grad_year = g->as_int64();
    const bool dated = parse_date(birth).has_value();
    constexpr std::array<std::pair<event_kind, indicator>, 4> services = {{
        {event_kind::verified, indicator::four_ones_verified},
        {event_kind::assessed, indicator::four_ones_assessed},
        {event_kind::registered, indicator::four_ones_registered},
        {event_kind::served, indicator::four_ones_served},
    }};
    for (const auto m : months) {
        auto has = [&](event_kind kind) {
            return std::any_of(events.begin(), events.end(),
                               [&](const event& e) { return e.kind == kind && reaches(e, m); });
        };
        if (unemployed && dated && (gender == "male" || gender == "female")) {
            int age = age_at_month_end(birth, m);
            int max = gender == "male" ? cfg.working_age_max_male : cfg.working_age_max_female;
            if (age >= cfg.working_age_min && age <= max) {
                out.push_back({township, m, indicator::four_ones_base});
                for (const auto& [kind, what] : services)
                    if (has(kind))
                        out.push_back({township, m, what});
            }
        }
        if (graduate && grad_year == m / 100) {
            out.push_back({township, m, indicator::graduates});
            if (has(event_kind::registered))
                out.push_back({township, m, indicator::graduates_registered});
            if (has(event_kind::served))
                out.push_back({township, m, indicator::graduates_served});
        }
    }
    return out;
}

void bump(sql::connection& c, const code_table& towns, const cell& k, std::int64_t delta) {
    if (delta == 0)
        return;
    auto s = c.cached("INSERT INTO rollups(township, month, indicator, value) VALUES(?, ?, ?, ?) "
                      "ON CONFLICT(township, month, indicator) DO UPDATE SET value = value + "
                      "excluded.value");
    s->bind_all(towns.code(k.township), month_text(k.month), name_of(k.what), delta);
    s->run();
}

std::vector<month_key> opened_months(sql::connection& c) {
    std::vector<month_key> out;
    auto s = c.cached("SELECT month FROM rollup_months ORDER BY month");
    while (s->step())
        out.push_back(month_of(s->text(0)));
    return out;
}

// A month whose person-based figures are being computed a slice at a time (rollup_opening):
// the persons up to row `after_rid` of the records are counted in it, the others not yet.
struct opening_month {
    month_key month = 0;
    std::int64_t after_rid = 0;
};

std::vector<opening_month> opening_months(sql::connection& c) {
    std::vector<opening_month> out;
    auto s = c.cached("SELECT month, after_rid FROM rollup_opening ORDER BY month");
    while (s->step())
        out.push_back({month_of(s->text(0)), s->int64(1)});
    return out;
}

// The months whose person-based figures count the person at row `rid` of the records: the
// opened ones, and those being opened whose slices have reached it (into `out`).
void months_counting(const std::vector<month_key>& opened, const std::vector<opening_month>& partly,
                     std::int64_t rid, std::vector<month_key>& out) {
    out = opened;
    for (const auto& o : partly)
        if (rid <= o.after_rid)
            out.push_back(o.month);
}

std::vector<event> stored_events(sql::connection& c, std::string_view person) {
    std::vector<event> out;
    auto s = c.cached("SELECT kind, month, record FROM person_events WHERE person = ?");
    s->bind_all(person);
    while (s->step())
        if (auto kind = event_kind_of(s->text(0)))
            out.push_back(
                {*kind, std::string(person), month_of(s->text(1)), std::string(s->text(2))});
    return out;
}

// The opened months whose person-based figures a change of these events can move: an event
// counts from its month to the end of its year.
std::vector<month_key> months_moved_by(const std::vector<month_key>& opened,
                                       const std::vector<event>& a, const std::vector<event>& b) {
    std::vector<month_key> out;
    for (const auto m : opened) {
        auto moves = [&](const event& e) { return reaches(e, m); };
        if (std::any_of(a.begin(), a.end(), moves) || std::any_of(b.begin(), b.end(), moves))
            out.push_back(m);
    }
    return out;
}

struct person_row {
    json::object fields;
    std::string township;
    std::int64_t rid = 0;
};

std::optional<person_row> load_person(sql::connection& c, std::string_view id_text) {
    auto id = uuid::parse(id_text);
    if (!id)
        return std::nullopt;
    auto s = c.cached("SELECT fields, township, rid FROM records WHERE id = ? AND collection = "
                      "'person'");
    s->bind_all(id->span());
    if (!s->step())
        return std::nullopt;
    return person_row{parse_object(s->text(0)), std::string(s->text(1)), s->int64(2)};
}

figures parse_figures(std::string_view text) {
    figures f;
    for (const auto& kv : parse_object(text))
        if (kv.value().is_int64())
            f[std::string(kv.key())] = kv.value().as_int64();
    return f;
}

json::object figures_json(const figures& f) {
    json::object o;
    for (const auto& [k, v] : f)
        o[k] = v;
    return o;
}

// Live figures with absent indicators as zero, for comparison.
figures normalized(figures f) {
    for (const auto& i : rollup_indicators())
        f.try_emplace(i, 0);
    return f;
}
// After a change to a township-month: an approved month whose figures moved gets (or updates)
// its next, not yet approved revision with the difference.
void note_change(sql::connection& c, const std::string& township, const std::string& month,
                 std::int64_t now_ms) {
    int revision = 0;
    bool approved = false;
    {
        auto s = c.cached("SELECT revision, approved_ms IS NOT NULL FROM month_revisions WHERE "
                          "township = ? AND month = ? ORDER BY revision DESC LIMIT 1");
        s->bind_all(township, month);
        if (!s->step())
            return; // never approved: nothing to track
        revision = static_cast<int>(s->int64(0));
        approved = s->int64(1) != 0;
    }
    figures base;
    {
        auto s = c.cached("SELECT figures FROM month_revisions WHERE township = ? AND month = ? "
                          "AND approved_ms IS NOT NULL ORDER BY revision DESC LIMIT 1");
        s->bind_all(township, month);
        if (s->step())
            base = normalized(parse_figures(s->text(0)));
    }
    auto live = normalized(rollups::read(c, township, month));
    json::object changes;
    for (const auto& [k, v] : live)
        if (base[k] != v)
            changes[k] = json::array{base[k], v};
    if (approved) {
        if (changes.empty())
            return;
        auto s = c.cached("INSERT INTO month_revisions(township, month, revision, figures, "
                          "changes, created_ms) VALUES(?, ?, ?, ?, ?, ?)");
        s->bind_all(township, month, revision + 1, json::serialize(figures_json(live)),
                    json::serialize(changes), now_ms);
        s->run();
    } else if (changes.empty()) {
        // The change was undone: the approved revision stands again.
        auto s = c.cached("DELETE FROM month_revisions WHERE township = ? AND month = ? AND "
                          "revision = ?");
        s->bind_all(township, month, revision);
        s->run();
    } else {
        auto s = c.cached("UPDATE month_revisions SET figures = ?, changes = ? WHERE township = ? "
                          "AND month = ? AND revision = ?");
        s->bind_all(json::serialize(figures_json(live)), json::serialize(changes), township, month,
                    revision);
        s->run();
    }
}
} // namespace

// What one batch (a push, a server-side write, a resolution) has not written yet. Counter deltas
// add up; distinct-key counts are read once and kept in memory; the township-months whose
// approved figures may have moved are checked once at the end.
struct rollups::batch {
    code_table towns; // the townships of this batch's cells
    std::map<cell, std::int64_t> bumps;
    std::map<key_cell, std::pair<std::int64_t, std::int64_t>> keys; // stored n, n now
    std::set<std::pair<std::uint32_t, month_key>> touched;
    std::int64_t now_ms = 0;
    std::optional<std::vector<month_key>> months;     // opened months, sorted; read once
    std::optional<std::vector<opening_month>> partly; // months being opened, sorted; read once
    std::vector<month_key> counting_scratch;

    std::vector<month_key>& opened(sql::connection& c) {
        if (!months)
            months = opened_months(c);
        return *months;
    }
    std::vector<opening_month>& opening(sql::connection& c) {
        if (!partly)
            partly = opening_months(c);
        return *partly;
    }
    // months_counting for the person at row `rid`. Valid until the next call.
    const std::vector<month_key>& counting(sql::connection& c, std::int64_t rid) {
        auto& all = opened(c);
        auto& part = opening(c);
        if (part.empty())
            return all;
        months_counting(all, part, rid, counting_scratch);
        return counting_scratch;
    }

    void add(const cell& k, std::int64_t delta) {
        if (delta != 0)
            bumps[k] += delta;
    }

    // How many records give `k`'s key; the indicator counts the keys given at least once.
    void add_key(sql::connection& c, const key_cell& k, int delta) {
        auto it = keys.find(k);
        if (it == keys.end()) {
            std::int64_t n = 0;
            auto s = c.cached("SELECT n FROM rollup_keys WHERE township = ? AND month = ? AND "
                              "indicator = ? AND key = ?");
            s->bind_all(towns.code(k.at.township), month_text(k.at.month), name_of(k.at.what),
                        k.key);
            if (s->step())
                n = s->int64(0);
            it = keys.emplace(k, std::pair{n, n}).first;
        }
        std::int64_t n = it->second.second;
        std::int64_t after = n + delta;
        it->second.second = std::max<std::int64_t>(after, 0);
        if (n <= 0 && after > 0)
            add(k.at, +1);
        else if (n > 0 && after <= 0)
            add(k.at, -1);
    }

    // Applies new - old as counter deltas and remembers the township-months touched.
    void diff(std::vector<cell> old_cells, std::vector<cell> new_cells) {
        std::sort(old_cells.begin(), old_cells.end());
        std::sort(new_cells.begin(), new_cells.end());
        auto o = old_cells.begin(), n = new_cells.begin();
        auto moved = [&](const cell& k, std::int64_t d) {
            add(k, d);
            touched.insert({k.township, k.month});
        };
        // Walk both sorted lists: a cell in both is unchanged (equal runs cancel pairwise).
        while (o != old_cells.end() || n != new_cells.end()) {
            if (n == new_cells.end() || (o != old_cells.end() && *o < *n))
                moved(*o++, -1);
            else if (o == old_cells.end() || *n < *o)
                moved(*n++, +1);
            else
                ++o, ++n;
        }
    }

    void write(sql::connection& c) {
        for (const auto& [k, d] : bumps)
            bump(c, towns, k, d);
        for (const auto& [k, n] : keys) {
            if (n.first == n.second)
                continue;
            const auto& township = towns.code(k.at.township);
            const auto month = month_text(k.at.month);
            if (n.second <= 0) {
                auto s = c.cached("DELETE FROM rollup_keys WHERE township = ? AND month = ? AND "
                                  "indicator = ? AND key = ?");
                s->bind_all(township, month, name_of(k.at.what), k.key);
                s->run();
            } else {
                auto s = c.cached("INSERT INTO rollup_keys(township, month, indicator, key, n) "
                                  "VALUES(?, ?, ?, ?, ?) ON CONFLICT(township, month, indicator, "
                                  "key) DO UPDATE SET n = excluded.n");
                s->bind_all(township, month, name_of(k.at.what), k.key, n.second);
                s->run();
            }
        }
        // Figures are final now: compare them with the approved ones.
        for (const auto& [t, m] : touched)
            note_change(c, towns.code(t), month_text(m), now_ms);
    }
};

rollups::rollups(rollup_config cfg) : cfg_(cfg) {}
rollups::~rollups() = default;

void rollups::on_batch_end(sql::connection& c) {
    if (!batch_)
        return;
    auto b = std::move(batch_); // dropped even if writing throws: the caller rolls back
    b->write(c);
}

void rollups::on_batch_abort() noexcept {
    batch_.reset();
}

bool is_month(std::string_view s) noexcept {
    return s.size() == 7 && parse_date(std::string(s) + "-01").has_value();
}

const std::vector<std::string>& rollup_indicators() {
    static const std::vector<std::string> list(indicator_names.begin(), indicator_names.end());
    return list;
}

void rollups::open_month(sql::connection& c, std::string_view month) {
    open_months(c, {std::string(month)});
}

void rollups::in_batch(sql::connection& c, const std::function<void()>& work) {
    bool own = !batch_;
    if (own)
        batch_ = std::make_unique<batch>();
    try {
        work();
    } catch (...) {
        on_batch_abort();
        throw;
    }
    if (own)
        on_batch_end(c);
}

bool rollups::open_months(sql::connection& c, const std::vector<std::string>& months,
                          std::size_t persons) {
    bool all_open = true;
    in_batch(c, [&] {
        std::vector<month_key> keys;
        for (const auto& m : months)
            if (is_month(m) && begin_opening(c, month_of(m)))
                keys.push_back(month_of(m));
        if (!keys.empty())
            open_slice(c, keys, persons); // one pass over the persons for all of them
        const auto& part = batch_->opening(c);
        all_open = std::none_of(part.begin(), part.end(), [&](const opening_month& o) {
            return std::find(keys.begin(), keys.end(), o.month) != keys.end();
        });
    });
    if (!all_open)
        opening_pending_ = true;
    return all_open;
}

bool rollups::open_some(sql::connection& c, std::size_t persons) {
    bool more = false;
    in_batch(c, [&] {
        std::vector<month_key> keys;
        for (const auto& o : batch_->opening(c))
            keys.push_back(o.month);
        if (!keys.empty())
            open_slice(c, keys, persons);
        more = !batch_->opening(c).empty();
    });
    opening_pending_ = more;
    return more;
}

void rollups::open_month_buffered(sql::connection& c, std::int32_t key) {
    if (!begin_opening(c, key))
        return;
    if (cfg_.open_slice_persons == 0)
        open_slice(c, {key}, 0);
    else
        opening_pending_ = true; // counted from the state when the slices reach each person
}

bool rollups::begin_opening(sql::connection& c, std::int32_t key) {
    batch& b = *batch_;
    auto& known = b.opened(c);
    if (std::binary_search(known.begin(), known.end(), key))
        return false; // already maintained
    auto& part = b.opening(c);
    auto at = std::lower_bound(part.begin(), part.end(), key,
                               [](const opening_month& o, month_key k) { return o.month < k; });
    if (at != part.end() && at->month == key)
        return true;
    std::int64_t after = 0;
    {
        auto s = c.cached("INSERT INTO rollup_opening(month, after_rid) VALUES(?, 0) ON CONFLICT "
                          "DO NOTHING");
        s->bind_all(month_text(key));
        s->run();
    }
    if (c.changes() == 0) { // there already (the cache is read per batch, so not expected)
        auto s = c.cached("SELECT after_rid FROM rollup_opening WHERE month = ?");
        s->bind_all(month_text(key));
        if (s->step())
            after = s->int64(0);
    }
    part.insert(at, {key, after});
    return true;
}

void rollups::open_slice(sql::connection& c, const std::vector<std::int32_t>& keys,
                         std::size_t persons) {
    batch& b = *batch_;
    auto& part = b.opening(c);
    // The months' rows, and where the slice starts: after the least advanced of them.
    std::vector<opening_month*> slicing;
    std::int64_t from = std::numeric_limits<std::int64_t>::max();
    for (auto& o : part)
        if (std::find(keys.begin(), keys.end(), o.month) != keys.end()) {
            slicing.push_back(&o);
            from = std::min(from, o.after_rid);
        }
    if (slicing.empty())
        return;
    const auto limit = persons == 0 ? std::numeric_limits<std::int64_t>::max()
                                    : static_cast<std::int64_t>(persons);
    std::int64_t last = from;
    std::int64_t seen = 0;
    std::map<cell, std::int64_t> counts;
    {
        std::vector<month_key> months;
        auto s = c.cached("SELECT rid, id, fields, township FROM records WHERE rid > ? AND "
                          "collection = 'person' AND deleted = 0 ORDER BY rid LIMIT ?");
        s->bind_all(from, limit);
        while (s->step()) {
            last = s->int64(0);
            ++seen;
            months.clear(); // those whose slices have not counted this person yet
            for (const auto* o : slicing)
                if (last > o->after_rid)
                    months.push_back(o->month);
            auto id = uuid::from_blob(s->blob(1)).value_or(uuid{}).to_string();
            auto fields = parse_object(s->text(2));
            for (const auto& k :
                 person_level(&fields, b.towns.id(s->text(3)), stored_events(c, id), months, cfg_))
                ++counts[k];
        }
    }
    for (const auto& [k, n] : counts)
        b.add(k, n);
    const bool done = seen < limit; // every person counted: maintained from now on
    auto& known = b.opened(c);
    for (auto* o : slicing) {
        const auto month = month_text(o->month);
        if (done) {
            {
                auto s = c.cached("DELETE FROM rollup_opening WHERE month = ?");
                s->bind_all(month);
                s->run();
            }
            auto s = c.cached("INSERT INTO rollup_months(month) VALUES(?) ON CONFLICT DO NOTHING");
            s->bind_all(month);
            s->run();
            known.insert(std::lower_bound(known.begin(), known.end(), o->month), o->month);
        } else if (last > o->after_rid) {
            auto s = c.cached("UPDATE rollup_opening SET after_rid = ? WHERE month = ?");
            s->bind_all(last, month);
            s->run();
            o->after_rid = last;
        }
    }
    if (done)
        std::erase_if(part, [&](const opening_month& o) {
            return std::find(keys.begin(), keys.end(), o.month) != keys.end();
        });
}

void rollups::on_change(sql::connection& c, const record_change& ch) {
    if (!batch_)
        batch_ = std::make_unique<batch>();
    batch& b = *batch_;
    b.now_ms = ch.now_ms;
    const std::string_view coll = ch.collection.name;
    const std::uint32_t township = b.towns.id(ch.township);
    if (coll == "person") {
        auto id = ch.id.to_string();
        auto events = stored_events(c, id);
        const auto& months = b.counting(c, ch.rid);
        b.diff(person_level(ch.before, township, events, months, cfg_),
               person_level(&ch.after, township, events, months, cfg_));
    } else if (!date_field(coll).empty()) {
        std::int64_t created_ms = ch.now_ms;
        if (ch.before) {
            auto s = c.cached("SELECT created_ms FROM records WHERE rid = ?");
            s->bind_all(ch.rid);
            if (s->step())
                created_ms = s->int64(0);
        }
        record_contrib old_rc;
        if (ch.before)
            old_rc = record_level(coll, *ch.before, township, created_ms, cfg_);
        auto new_rc = record_level(coll, ch.after, township, created_ms, cfg_);
        auto old_ev = ch.before ? events_of(coll, *ch.before) : std::vector<event>{};
        auto new_ev = events_of(coll, ch.after);
        // Months first seen now are computed from the state before this change; the diff below
        // then moves them to the state after it.
        for (const auto& k : new_rc.counts)
            open_month_buffered(c, k.month);
        for (const auto& e : new_ev)
            open_month_buffered(c, e.month);

        b.diff(old_rc.counts, new_rc.counts);
        for (const auto& k : old_rc.keys)
            b.add_key(c, k, -1);
        for (const auto& k : new_rc.keys)
            b.add_key(c, k, +1);
        for (const auto& k : new_rc.keys)
            b.touched.emplace(k.at.township, k.at.month);
        for (const auto& k : old_rc.keys)
            b.touched.emplace(k.at.township, k.at.month);

        if (!old_ev.empty() || !new_ev.empty()) {
            std::set<std::string> persons;
            for (const auto& e : old_ev)
                persons.insert(e.person);
            for (const auto& e : new_ev)
                persons.insert(e.person);
            // Only the months these events reach can move (the person's other figures are the
            // same before and after), and the events after the change are the stored ones with
            // this record's replaced: one read of each person and of their events.
            auto record = ch.id.to_string();
            for (const auto& p : persons) {
                auto row = load_person(c, p);
                if (!row)
                    continue; // counts in no figure, before or after
                const json::object* fields = &row->fields;
                const std::uint32_t person_township = b.towns.id(row->township);
                const auto moved = months_moved_by(b.counting(c, row->rid), old_ev, new_ev);
                auto events = stored_events(c, p);
                auto before = person_level(fields, person_township, events, moved, cfg_);
                if (ch.before) // a new record has no stored events (deleted below likewise)
                    std::erase_if(events, [&](const event& e) { return e.record == record; });
                for (const auto& e : new_ev)
                    if (e.person == p)
                        events.push_back(e);
                b.diff(std::move(before),
                       person_level(fields, person_township, events, moved, cfg_));
            }
            if (ch.before) {
                auto s = c.cached("DELETE FROM person_events WHERE record = ?");
                s->bind_all(record);
                s->run();
            }
            for (const auto& e : new_ev) {
                auto s = c.cached("INSERT INTO person_events(record, kind, person, month) "
                                  "VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING");
                s->bind_all(record, event_kind_names[static_cast<std::size_t>(e.kind)], e.person,
                            month_text(e.month));
                s->run();
            }
        }
    }
}

void rollups::on_conflicts(sql::connection&, std::string_view township, std::string_view,
                           int delta) {
    if (!batch_)
        batch_ = std::make_unique<batch>();
    batch_->add({batch_->towns.id(township), 0, indicator::open_conflicts}, delta);
}

result<int> rollups::approve(sql::connection& c, std::string_view township, std::string_view month,
                             std::string_view user, std::int64_t now_ms) {
    if (!is_month(month) || township.size() != 9)
        return errc::invalid_argument;
    open_month(c, month);
    on_batch_end(c); // anything buffered counts before the figures are approved
    auto live = normalized(read(c, township, month));
    int revision = 0;
    bool approved = false;
    figures last_approved;
    {
        auto s = c.cached("SELECT revision, approved_ms IS NOT NULL, figures FROM month_revisions "
                          "WHERE township = ? AND month = ? ORDER BY revision DESC LIMIT 1");
        s->bind_all(township, month);
        if (s->step()) {
            revision = static_cast<int>(s->int64(0));
            approved = s->int64(1) != 0;
            last_approved = normalized(parse_figures(s->text(2)));
        }
    }
    if (revision > 0 && !approved) {
        auto s = c.cached("UPDATE month_revisions SET figures = ?, approved_by = ?, approved_ms = "
                          "? WHERE township = ? AND month = ? AND revision = ?");
        s->bind_all(json::serialize(figures_json(live)), user, now_ms, township, month, revision);
        s->run();
        return revision;
    }
    if (approved && last_approved == live)
        return revision; // nothing changed since the last approval
    auto s = c.cached("INSERT INTO month_revisions(township, month, revision, figures, changes, "
                      "created_ms, approved_by, approved_ms) VALUES(?, ?, ?, ?, NULL, ?, ?, ?)");
    s->bind_all(township, month, revision + 1, json::serialize(figures_json(live)), now_ms, user,
                now_ms);
    s->run();
    return revision + 1;
}

figures rollups::read(sql::connection& c, std::string_view township, std::string_view month) {
    figures f;
    auto s = township.empty()
                 ? c.cached("SELECT indicator, sum(value) FROM rollups WHERE month IN (?, '') "
                            "GROUP BY indicator")
                 : c.cached("SELECT indicator, value FROM rollups WHERE township = ? AND month "
                            "IN (?, '')");
    if (township.empty())
        s->bind_all(month);
    else
        s->bind_all(township, month);
    while (s->step())
        f[std::string(s->text(0))] = s->int64(1);
    return f;
}

district_month rollups::report(sql::connection& c, std::string_view month) {
    district_month out;
    out.month = std::string(month);
    std::vector<std::pair<std::string, std::string>> townships;
    {
        auto s = c.cached("SELECT code, name FROM divisions WHERE level = 9 ORDER BY code");
        while (s->step())
            townships.emplace_back(s->text(0), s->text(1));
    }
    for (const auto& [code, name] : townships) {
        township_month tm;
        tm.township = code;
        tm.name = name;
        tm.live = normalized(read(c, code, month));
        auto s = c.cached("SELECT revision, approved_ms IS NOT NULL, figures, changes FROM "
                          "month_revisions WHERE township = ? AND month = ? ORDER BY revision");
        s->bind_all(code, month);
        while (s->step()) {
            tm.revision = static_cast<int>(s->int64(0));
            if (s->int64(1)) {
                tm.approved = true;
                tm.approved_figures = normalized(parse_figures(s->text(2)));
                tm.changes.clear();
                tm.changed_since_approval = false;
            } else {
                tm.changed_since_approval = true;
            }
        }
        if (tm.approved)
            for (const auto& [k, v] : tm.live)
                if (tm.approved_figures[k] != v) {
                    tm.changes[k] = {tm.approved_figures[k], v};
                    tm.changed_since_approval = true;
                }
        for (const auto& [k, v] : tm.live)
            out.total[k] += v;
        out.townships.push_back(std::move(tm));
    }
    out.total = normalized(out.total);
    return out;
}

bool rollups::is_open(sql::connection& c, std::string_view month) {
    auto s = c.cached("SELECT 1 FROM rollup_months WHERE month = ?");
    s->bind_all(month);
    return s->step();
}

std::map<std::string, figures> rollups::by_village(sql::connection& c, std::string_view township,
                                                   std::string_view month) const {
    std::map<std::string, figures> out;
    if (!is_month(month) || township.empty())
        return out;
    // The definitions key their cells by the code they are given; given the village instead of
    // the township, they count per village. "-" stands for records without a village (an empty
    // key counts nothing).
    code_table villages;
    auto key = [&](std::string_view village) {
        return villages.id(village.empty() ? "-" : village);
    };
    const month_key wanted = month_of(month);
    std::map<cell, std::int64_t> counts;
    std::map<cell, std::set<std::string>> distinct;
    {
        auto s = c.cached("SELECT collection, fields, village, created_ms FROM records WHERE "
                          "township = ? AND deleted = 0 AND collection IN ('home_visit', "
                          "'monitoring_check', 'needs_registration', 'employment_service')");
        s->bind_all(township);
        while (s->step()) {
            auto f = parse_object(s->text(1));
            auto rc = record_level(s->text(0), f, key(s->text(2)), s->int64(3), cfg_);
            for (const auto& k : rc.counts)
                if (k.month == wanted)
                    ++counts[k];
            for (const auto& k : rc.keys)
                if (k.at.month == wanted)
                    distinct[k.at].insert(k.key);
        }
    }
    for (const auto& [k, keys] : distinct)
        counts[k] += static_cast<std::int64_t>(keys.size());
    if (is_open(c, month)) {
        const std::vector<month_key> one{wanted};
        auto s = c.cached("SELECT id, fields, village FROM records WHERE collection = 'person' "
                          "AND deleted = 0 AND township = ?");
        s->bind_all(township);
        while (s->step()) {
            auto id = uuid::from_blob(s->blob(0)).value_or(uuid{}).to_string();
            auto f = parse_object(s->text(1));
            for (const auto& k : person_level(&f, key(s->text(2)), stored_events(c, id), one, cfg_))
                ++counts[k];
        }
    }
    {
        auto s = c.cached("SELECT coalesce(village, ''), count(*) FROM conflicts WHERE "
                          "township = ? AND status = 'open' GROUP BY 1");
        s->bind_all(township);
        while (s->step())
            counts[{key(s->text(0)), wanted, indicator::open_conflicts}] += s->int64(1);
    }
    for (const auto& [k, n] : counts) {
        const auto& village = villages.code(k.township);
        out[village == "-" ? std::string() : village][std::string(name_of(k.what))] += n;
    }
    for (auto& [village, f] : out)
        f = normalized(std::move(f));
    return out;
}

std::vector<std::string> rollups::check(sql::connection& c) const {
    code_table towns;
    std::map<cell, std::int64_t> expect;
    std::map<cell, std::set<std::string>> distinct;
    std::map<std::string, std::vector<event>> events;
    {
        auto s = c.cached("SELECT collection, fields, township, created_ms FROM records WHERE "
                          "deleted = 0 AND collection IN ('home_visit', 'monitoring_check', "
                          "'needs_registration', 'employment_service')");
        while (s->step()) {
            auto f = parse_object(s->text(1));
            auto coll = s->text(0);
            auto rc = record_level(coll, f, towns.id(s->text(2)), s->int64(3), cfg_);
            for (const auto& k : rc.counts)
                ++expect[k];
            for (const auto& k : rc.keys)
                distinct[k.at].insert(k.key);
            for (auto& e : events_of(coll, f))
                events[e.person].push_back(std::move(e));
        }
    }
    for (const auto& [k, keys] : distinct)
        expect[k] += static_cast<std::int64_t>(keys.size());
    const auto opened = opened_months(c);
    const auto partly = opening_months(c); // counted up to their slices' row only
    {
        std::vector<month_key> months;
        auto s = c.cached("SELECT rid, id, fields, township FROM records WHERE collection = "
                          "'person' AND deleted = 0");
        while (s->step()) {
            months_counting(opened, partly, s->int64(0), months);
            auto id = uuid::from_blob(s->blob(1)).value_or(uuid{}).to_string();
            auto f = parse_object(s->text(2));
            for (const auto& k : person_level(&f, towns.id(s->text(3)), events[id], months, cfg_))
                ++expect[k];
        }
    }
    {
        auto s = c.cached("SELECT township, count(*) FROM conflicts WHERE status = 'open' GROUP BY "
                          "township");
        while (s->step())
            expect[{towns.id(s->text(0)), 0, indicator::open_conflicts}] = s->int64(1);
    }
    // The maintained figures as stored; a row this build cannot name (an unknown indicator or a
    // malformed month) is a difference of its own.
    std::map<cell, std::int64_t> have;
    std::vector<std::string> diffs;
    {
        auto s = c.cached("SELECT township, month, indicator, value FROM rollups");
        while (s->step()) {
            auto what = indicator_of(s->text(2));
            std::string_view month = s->text(1);
            if (!what || (!month.empty() && !is_month(month))) {
                if (s->int64(3) != 0)
                    diffs.push_back(std::string(s->text(0)) + " " + std::string(month) + " " +
                                    std::string(s->text(2)) + ": " + std::to_string(s->int64(3)) +
                                    " != 0");
                continue;
            }
            have[{towns.id(s->text(0)), month_of(month), *what}] = s->int64(3);
        }
    }
    std::set<cell> all;
    for (const auto& [k, v] : expect)
        all.insert(k);
    for (const auto& [k, v] : have)
        all.insert(k);
    for (const auto& k : all) {
        auto e = expect.count(k) ? expect.at(k) : 0;
        auto h = have.count(k) ? have.at(k) : 0;
        // Months never opened have no person-based figures maintained; only compare those that
        // are (and every record-level figure).
        if (e != h)
            diffs.push_back(towns.code(k.township) + " " + month_text(k.month) + " " +
                            std::string(name_of(k.what)) + ": " + std::to_string(h) +
                            " != " + std::to_string(e));
    }
    std::sort(diffs.begin(), diffs.end()); // by township, month, indicator
    return diffs;
}

} // namespace fieldsync
