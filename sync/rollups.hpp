// Monthly indicators per township for the district's employment and anti-poverty plan, kept in
// step with the records inside the writer's transaction (a change_observer), so that reading a
// month's figures is a lookup, never a recomputation.
//
// Indicators (per township and month "YYYY-MM"; the district figure adds numerators and
// denominators — never averages percentages):
//   home_visits, persons_visited                    visits by month of visited_at
//   four_ones_base                                  working-age unemployed persons at month end
//   four_ones_verified|assessed|registered|served   of those, with that service this year so far
//   monitoring_checks, households_flagged           checks by month of checked_at
//   graduates, graduates_registered, graduates_served   graduates of that year, and their ledger
//   late_records                                    synced more than late_after_days after the
//                                                   date they were collected
//   open_conflicts                                  live, township-wide (month "")
// A record belongs to the month it was collected in, however late it syncs.
//
// Thread-safety: the observer methods run on the writer thread; the read functions take their
// own connection and may run on reader threads.
#pragma once

#include "schema/errc.hpp"
#include "sync/engine.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fieldsync {

struct rollup_config {
    int working_age_min = 16;      // inclusive, both genders
    int working_age_max_male = 59; // inclusive
    int working_age_max_female = 54;
    int late_after_days = 7;
    // Opening a month computes its person-based figures over every person of the district (5 s
    // of the writer at ten times a full district). 0: at once, inside the write that opens it.
    // N: the write only marks it, and open_some() counts N persons at a time (fieldsyncd calls it
    // between pushes); reading its figures through open_month() finishes it first.
    std::size_t open_slice_persons = 0;
};

// The indicators in report order.
const std::vector<std::string>& rollup_indicators();

using figures = std::map<std::string, std::int64_t>; // indicator -> value

struct township_month {
    std::string township;
    std::string name;
    figures live;
    bool approved = false; // some revision was approved
    int revision = 0;      // latest revision number (0: never approved)
    bool changed_since_approval = false;
    figures approved_figures; // of the latest approved revision
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> changes; // approved -> live
};

struct district_month {
    std::string month;
    std::vector<township_month> townships; // every township of the district
    figures total;                         // sums of the townships' live figures
};

class rollups final : public change_observer {
public:
    explicit rollups(rollup_config cfg = {});

    ~rollups() override;
    rollups(const rollups&) = delete;
    rollups& operator=(const rollups&) = delete;

    void on_change(sql::connection& c, const record_change& change) override;
    void on_conflicts(sql::connection& c, std::string_view township, std::string_view collection,
                      int delta) override;
    // Counter deltas, distinct-key counts and revision bookkeeping of one batch are buffered in
    // memory and written here, once per push instead of once per record.
    void on_batch_end(sql::connection& c) override;
    void on_batch_abort() noexcept override;

    // Computes a month's person-based figures once (or what its slices have not yet), so that
    // they are then maintained incrementally. Idempotent. Writer thread.
    void open_month(sql::connection& c, std::string_view month);
    // The same for several months ("YYYY-MM"; others are ignored), in one pass over the persons;
    // with `persons` > 0 only that many more of them. True once all of them are open.
    bool open_months(sql::connection& c, const std::vector<std::string>& months,
                     std::size_t persons = 0);
    // Counts the next `persons` persons (0: all that are left) into every month being opened a
    // slice at a time (rollup_config::open_slice_persons), in one pass and a batch of its own.
    // True while some month is still being opened. Writer thread.
    bool open_some(sql::connection& c, std::size_t persons);
    // False once open_some() found nothing left to open and no write has opened a month since.
    // Starts true (an earlier run may have left a month half opened). Any thread.
    bool opening_pending() const noexcept { return opening_pending_.load(); }

    // The township head approves the live figures of a township-month: the latest revision (or
    // revision 1) is marked approved. Writer thread. errc::invalid_argument for a bad month.
    result<int> approve(sql::connection& c, std::string_view township, std::string_view month,
                        std::string_view user, std::int64_t now_ms);

    // Live figures of one township (all townships: empty) and month. Any thread.
    static figures read(sql::connection& c, std::string_view township, std::string_view month);
    // The district-month report. Any thread.
    static district_month report(sql::connection& c, std::string_view month);

    // One township's figures of a month per village (village code -> figures; records without a
    // village under ""), recomputed from the records with the same definitions as the maintained
    // township figures. Counts add up to the township's; distinct counts (persons_visited,
    // households_flagged) can add up to more when one person or household appears in two
    // villages. Person-based figures are given only for opened months, like the township's.
    // Reads only; any thread.
    std::map<std::string, figures> by_village(sql::connection& c, std::string_view township,
                                              std::string_view month) const;
    // True if the month's person-based figures are maintained (see open_month); false while it
    // is being opened a slice at a time.
    static bool is_open(sql::connection& c, std::string_view month);

    // Recomputes every figure from the records and returns each difference from the maintained
    // figures as "township month indicator: maintained != recomputed". Empty when consistent.
    std::vector<std::string> check(sql::connection& c) const;

    const rollup_config& config() const noexcept { return cfg_; }

private:
    struct batch;
    // Runs `work` in the current batch, or in one of its own written at the end (dropped if
    // `work` throws).
    void in_batch(sql::connection& c, const std::function<void()>& work);
    void open_month_buffered(sql::connection& c, std::int32_t month); // YYYY * 100 + MM
    // Marks the month as being opened; false if it is open already.
    bool begin_opening(sql::connection& c, std::int32_t month);
    // Counts the next `persons` persons (0: all that are left) into each of these months being
    // opened, in one pass: each person into those whose slices have not reached it yet.
    void open_slice(sql::connection& c, const std::vector<std::int32_t>& months,
                    std::size_t persons);

    rollup_config cfg_;
    std::unique_ptr<batch> batch_; // what the current batch has not written yet
    std::atomic<bool> opening_pending_{true};
};

// The field that dates a record of `collection` (the month it belongs to): visited_at,
// checked_at, registered_at, delivered_at; empty for undated collections (persons, households).
std::string_view collected_date_field(std::string_view collection) noexcept;

// "YYYY-MM" if `s` is a valid month.
bool is_month(std::string_view s) noexcept;

} // namespace fieldsync
