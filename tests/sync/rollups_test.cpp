// Monthly indicators: maintained incrementally, equal to a recomputation from the records,
// merged into district figures by adding numerators and denominators, approved with revisions.
#include "sync/district_fixture.hpp"

#include <gtest/gtest.h>

#include <random>

namespace fieldsync {
namespace {

namespace json = boost::json;
using namespace fieldsync::testing;

TEST(rollups, incremental_figures_equal_a_recomputation_after_late_duplicated_conflicting_data) {
    district d;
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    replica b(":memory:", catalog::builtin(), "tab-b", [&] { return d.wall; });
    auto pa = field_worker("tab-a", t105);
    auto pb = field_worker("tab-b", t105);

    auto p1 = *a.create("person", person(t105, v105, "1985-03-12", true, "unemployed", 1));
    (void)*a.create("person", person(t105, v105, "1969-01-05", false, "unemployed", 2)); // 56
    auto p3 = *a.create("person", person(t105, v105, "1990-08-08", true, "employed", 3));
    d.sync(a, pa);
    // July's data arrives before June's (out of order), and June's late.
    (void)*a.create("home_visit", visit(t105, v105, p1, "2025-07-30T09:00:00+08:00", false));
    (void)*a.create("employment_service", {{"township", t105},
                                           {"village", v105},
                                           {"person", p1.to_string()},
                                           {"service_type", "skills_training"},
                                           {"delivered_at", "2025-07-02"}});
    d.sync(a, pa);
    auto june_visit =
        *a.create("home_visit", visit(t105, v105, p1, "2025-06-10T10:00:00+08:00", true));
    (void)*a.create("home_visit", visit(t105, v105, p3, "2025-06-11T10:00:00+08:00", true));
    (void)*a.create("needs_registration", {{"township", t105},
                                           {"village", v105},
                                           {"person", p1.to_string()},
                                           {"registered_at", "2025-05-20"},
                                           {"wants_work", true},
                                           {"work_mode", "nearby"},
                                           {"assessment_result", "open_employment"},
                                           {"assessed_at", "2025-05-21"}});
    auto req = a.next_push();
    sql::transaction tx(d.db);
    auto first = d.eng.push(d.db, pa, req);
    tx.commit();
    {
        sql::transaction again(d.db); // the same push repeated: counted once
        d.eng.push(d.db, pa, req);
        again.commit();
    }
    a.apply_push_result(req, first);
    d.sync(a, pa);
    d.sync(b, pb);

    auto june = d.month(t105, "2025-06");
    EXPECT_EQ(june["home_visits"], 2);
    EXPECT_EQ(june["persons_visited"], 2);
    EXPECT_EQ(june["four_ones_base"], 1); // p1; p2 is a woman of 56; p3 is employed
    EXPECT_EQ(june["four_ones_verified"], 1);
    EXPECT_EQ(june["four_ones_registered"], 1); // registered in May: counts for the year so far
    EXPECT_EQ(june["four_ones_assessed"], 1);
    EXPECT_EQ(june["four_ones_served"], 0); // served in July
    EXPECT_EQ(june["late_records"], 2);
    auto july = d.month(t105, "2025-07");
    EXPECT_EQ(july["home_visits"], 1);
    EXPECT_EQ(july["four_ones_served"], 1);
    EXPECT_EQ(july["four_ones_verified"], 1);
    EXPECT_EQ(july["late_records"], 1); // the service of July 2, synced July 31

    // Conflicting edits of p1's employment: whichever wins, the figures follow the record.
    ASSERT_TRUE(a.update(p1, {{"employment_status", "employed"}}));
    ASSERT_TRUE(b.update(p1, {{"employment_status", "flexible"}}));
    d.sync(a, pa);
    d.sync(b, pb);
    EXPECT_EQ(d.month(t105, "2025-06")["open_conflicts"], 1);
    EXPECT_EQ(d.month(t105, "2025-06")["four_ones_base"], 0);
    // A deleted visit no longer counts.
    ASSERT_TRUE(a.remove(june_visit));
    d.sync(a, pa);
    EXPECT_EQ(d.month(t105, "2025-06")["home_visits"], 1);
    ASSERT_TRUE(a.update(p1, {{"employment_status", "unemployed"}}));
    d.sync(a, pa);
    EXPECT_EQ(d.month(t105, "2025-06")["four_ones_base"], 1);
    EXPECT_EQ(d.month(t105, "2025-06")["four_ones_verified"], 0); // its verification was deleted

    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

TEST(rollups, a_person_made_and_changed_in_the_same_push_as_their_visits_counts_as_stored) {
    // A visit's figures use its person as stored at that point of the push, even when the
    // person was made and changed earlier in the same push (and transaction).
    district d;
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    auto pa = field_worker("tab-a", t105);
    auto p1 = *a.create("person", person(t105, v105, "1985-03-12", true, "employed", 1));
    auto v1 = *a.create("home_visit", visit(t105, v105, p1, "2025-06-10T10:00:00+08:00", true));
    ASSERT_TRUE(a.update(p1, {{"employment_status", "unemployed"}})); // now in the base
    ASSERT_TRUE(a.remove(v1));                                        // and no longer verified
    auto p2 = *a.create("person", person(t105, v105, "1988-04-02", true, "unemployed", 2));
    (void)*a.create("home_visit", visit(t105, v105, p2, "2025-06-15T10:00:00+08:00", true));
    ASSERT_TRUE(a.update(p2, {{"employment_status", "employed"}})); // out of the base
    EXPECT_EQ(a.next_push().mutations.size(), 7u);                  // one push
    d.sync(a, pa);
    auto june = d.month(t105, "2025-06");
    EXPECT_EQ(june["home_visits"], 1);
    EXPECT_EQ(june["four_ones_base"], 1);     // p1
    EXPECT_EQ(june["four_ones_verified"], 0); // p1's visit was deleted; p2 is not in the base
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

// The consistency check is what an operator runs when figures look wrong: it must name each
// maintained figure that a recomputation from the records does not give, and a row it cannot
// read at all.
TEST(rollups, check_names_each_figure_a_recomputation_does_not_give) {
    district d;
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    auto p1 = *a.create("person", person(t105, v105, "1985-03-12", true, "unemployed", 1));
    (void)*a.create("home_visit", visit(t105, v105, p1, "2025-06-10T10:00:00+08:00", true));
    d.sync(a, field_worker("tab-a", t105));
    ASSERT_EQ(d.sums.check(d.db), std::vector<std::string>{});
    ASSERT_EQ(d.month(t105, "2025-06")["four_ones_base"], 1);
    d.db.exec("UPDATE rollups SET value = value + 5 WHERE indicator = 'home_visits' AND "
              "month = '2025-06'");
    d.db.exec("DELETE FROM rollups WHERE indicator = 'four_ones_base' AND month = '2025-06'");
    d.db.exec("INSERT INTO rollups(township, month, indicator, value) VALUES('500154105', "
              "'2025-06', 'no_such_indicator', 2)");
    // A row of an indicator this build does not know that has gone back to 0 differs from
    // nothing (rows are never deleted).
    d.db.exec("INSERT INTO rollups(township, month, indicator, value) VALUES('500154105', "
              "'2025-06', 'retired_indicator', 0)");
    // In order of township, month and indicator.
    EXPECT_EQ(d.sums.check(d.db), (std::vector<std::string>{
                                      "500154105 2025-06 four_ones_base: 0 != 1",
                                      "500154105 2025-06 home_visits: 6 != 1",
                                      "500154105 2025-06 no_such_indicator: 2 != 0",
                                  }));
}

TEST(rollups, district_figures_add_numerators_and_denominators_not_percentages) {
    district d;
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    replica b(":memory:", catalog::builtin(), "tab-b", [&] { return d.wall; });
    // Township 105: 10 persons, 9 verified (90 %). Township 106: 2 persons, none (0 %).
    for (int i = 0; i < 10; ++i) {
        auto p = *a.create("person", person(t105, v105, "1980-01-01", true, "unemployed", i));
        if (i < 9)
            (void)*a.create("home_visit", visit(t105, v105, p, "2025-06-10T10:00:00+08:00", true));
    }
    for (int i = 0; i < 2; ++i)
        (void)*b.create("person", person(t106, v106, "1980-01-01", false, "unemployed", 50 + i));
    d.sync(a, field_worker("tab-a", t105));
    d.sync(b, field_worker("tab-b", t106));
    d.eng.clock(); // (no-op: keeps the fixture's clock in view)
    {
        sql::transaction tx(d.db);
        d.sums.open_month(d.db, "2025-06");
        tx.commit();
    }
    auto report = rollups::report(d.db, "2025-06");
    ASSERT_EQ(report.townships.size(), 2u);
    EXPECT_EQ(report.total.at("four_ones_base"), 12);
    EXPECT_EQ(report.total.at("four_ones_verified"), 9);
    double district_pct = 100.0 * 9 / 12;
    double mean_of_pcts = (100.0 * 9 / 10 + 0.0) / 2;
    EXPECT_DOUBLE_EQ(district_pct, 75.0);
    EXPECT_NE(district_pct, mean_of_pcts);
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

TEST(rollups, an_approved_month_that_changes_gets_a_new_revision_with_the_difference) {
    district d;
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    auto pa = field_worker("tab-a", t105);
    auto p = *a.create("person", person(t105, v105, "1980-01-01", true, "unemployed", 1));
    (void)*a.create("home_visit", visit(t105, v105, p, "2025-06-10T10:00:00+08:00", false));
    d.sync(a, pa);
    {
        sql::transaction tx(d.db);
        auto rev = d.sums.approve(d.db, t105, "2025-06", "head-105", d.wall);
        ASSERT_TRUE(rev);
        EXPECT_EQ(*rev, 1);
        tx.commit();
    }
    auto before = rollups::report(d.db, "2025-06").townships[0];
    EXPECT_TRUE(before.approved);
    EXPECT_EQ(before.revision, 1);
    EXPECT_FALSE(before.changed_since_approval);

    // A late verification visit for June arrives after approval.
    (void)*a.create("home_visit", visit(t105, v105, p, "2025-06-20T10:00:00+08:00", true));
    d.sync(a, pa);
    auto after = rollups::report(d.db, "2025-06").townships[0];
    EXPECT_EQ(after.revision, 2);
    EXPECT_TRUE(after.changed_since_approval);
    EXPECT_EQ(after.approved_figures.at("home_visits"), 1); // what was approved stays
    EXPECT_EQ(after.live.at("home_visits"), 2);
    ASSERT_TRUE(after.changes.count("home_visits"));
    EXPECT_EQ(after.changes.at("home_visits"), std::make_pair(std::int64_t{1}, std::int64_t{2}));
    EXPECT_EQ(after.changes.at("four_ones_verified"),
              std::make_pair(std::int64_t{0}, std::int64_t{1}));
    {
        sql::transaction tx(d.db);
        EXPECT_EQ(*d.sums.approve(d.db, t105, "2025-06", "head-105", d.wall), 2);
        tx.commit();
    }
    auto reapproved = rollups::report(d.db, "2025-06").townships[0];
    EXPECT_EQ(reapproved.revision, 2);
    EXPECT_FALSE(reapproved.changed_since_approval);
    EXPECT_TRUE(reapproved.changes.empty());
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

// fieldsyncd opens a month (counts every person of the district into its person-based figures)
// a slice of persons at a time between pushes, not inside the push that opens it: at ten times a
// full district that push held the writer for 5 s. While the slices run, the persons they have
// reached are kept in step like those of an open month, the others are counted when reached.
TEST(rollups, a_month_a_push_opens_is_counted_a_slice_at_a_time_and_open_month_finishes_it) {
    district d(rollup_config{.open_slice_persons = 2});
    replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
    auto pa = field_worker("tab-a", t105);
    // Nothing to open yet: the server's slices stop asking.
    EXPECT_FALSE(d.write([&](sql::connection& c) { return d.sums.open_some(c, 2); }));
    EXPECT_FALSE(d.sums.opening_pending());
    std::vector<uuid> persons;
    for (int i = 0; i < 5; ++i)
        persons.push_back(
            *a.create("person", person(t105, v105, "1980-01-01", i % 2 == 0, "unemployed", i)));
    (void)*a.create("home_visit", visit(t105, v105, persons[0], "2025-06-10T10:00:00+08:00", true));
    d.sync(a, pa);
    auto base = [&] { return d.month(t105, "2025-06")["four_ones_base"]; };
    // The push counted its visit, and only marked June as being opened.
    EXPECT_EQ(d.month(t105, "2025-06")["home_visits"], 1);
    EXPECT_FALSE(rollups::is_open(d.db, "2025-06"));
    EXPECT_EQ(base(), 0);
    EXPECT_TRUE(d.sums.opening_pending());
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});

    EXPECT_TRUE(d.write([&](sql::connection& c) { return d.sums.open_some(c, 2); }));
    EXPECT_EQ(base(), 2); // the first two persons
    EXPECT_EQ(d.month(t105, "2025-06")["four_ones_verified"], 1);
    // A person already counted and one not yet reached both change: the first moves the
    // figures now, the second is counted as it is when its slice comes.
    ASSERT_TRUE(a.update(persons[0], {{"employment_status", "employed"}}));
    ASSERT_TRUE(a.update(persons[4], {{"employment_status", "employed"}}));
    d.sync(a, pa);
    EXPECT_EQ(base(), 1);
    EXPECT_EQ(d.month(t105, "2025-06")["four_ones_verified"], 0);
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});

    // Reading the month's figures through open_month finishes what the slices have not done.
    d.write([&](sql::connection& c) {
        d.sums.open_month(c, "2025-06");
        return 0;
    });
    EXPECT_TRUE(rollups::is_open(d.db, "2025-06"));
    EXPECT_EQ(base(), 3); // persons 1, 2 and 3
    EXPECT_FALSE(d.write([&](sql::connection& c) { return d.sums.open_some(c, 2); }));
    EXPECT_FALSE(d.sums.opening_pending());
    EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
}

// Whatever happens between the slices (persons made, changed and deleted before and after the
// slices reach them, visits and services that move their figures, a second month opened
// meanwhile), the figures are those of a recomputation at every point, and once the slices are
// done they are those of a month opened at once.
TEST(rollups, figures_of_months_opened_in_slices_equal_a_recomputation_whatever_changes_between) {
    for (std::uint32_t seed = 1; seed <= 6; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937 rng(seed);
        auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
        district d(rollup_config{.open_slice_persons = 1 + seed % 3});
        replica a(":memory:", catalog::builtin(), "tab-a", [&] { return d.wall; });
        auto pa = field_worker("tab-a", t105);
        std::vector<uuid> persons, events;
        const char* births[] = {"1980-01-01", "1965-06-30", "1970-12-31", "2010-06-01"};
        const char* jobs[] = {"unemployed", "employed", "unemployed"};
        const char* days[] = {"2025-05-20", "2025-06-10", "2025-07-02"};
        int serial = 0;
        auto new_person = [&] {
            persons.push_back(*a.create("person", person(t105, v105, births[pick(4)], pick(2) == 0,
                                                         jobs[pick(3)], ++serial)));
        };
        for (int i = 0; i < 8; ++i)
            new_person();
        d.sync(a, pa);
        for (int round = 0; round < 40; ++round) {
            switch (pick(9)) {
            case 0:
                new_person();
                break;
            case 1:
                (void)a.update(persons[pick(persons.size())],
                               {{"employment_status", jobs[pick(3)]}});
                break;
            case 2:
                (void)a.update(persons[pick(persons.size())], {{"birth_date", births[pick(4)]}});
                break;
            case 3:
                (void)a.remove(persons[pick(persons.size())]);
                break;
            case 4: {
                std::string at = std::string(days[pick(3)]) + "T10:00:00+08:00";
                if (auto v = a.create("home_visit", visit(t105, v105, persons[pick(persons.size())],
                                                          at.c_str(), pick(2) == 0)))
                    events.push_back(*v);
                break;
            }
            case 5:
                if (auto s = a.create("employment_service",
                                      {{"township", t105},
                                       {"village", v105},
                                       {"person", persons[pick(persons.size())].to_string()},
                                       {"service_type", "skills_training"},
                                       {"delivered_at", days[pick(3)]}}))
                    events.push_back(*s);
                break;
            case 6:
                if (auto r = a.create("needs_registration",
                                      {{"township", t105},
                                       {"village", v105},
                                       {"person", persons[pick(persons.size())].to_string()},
                                       {"registered_at", days[pick(3)]},
                                       {"wants_work", true},
                                       {"work_mode", "nearby"},
                                       {"assessment_result", "open_employment"},
                                       {"assessed_at", days[pick(3)]}}))
                    events.push_back(*r);
                break;
            case 7:
                // A visit, service or registration moved to another month and another person.
                if (!events.empty()) {
                    auto e = events[pick(events.size())];
                    auto kind = a.get(e) ? a.get(e)->collection : std::string();
                    std::string day = days[pick(3)];
                    json::object change{{"person", persons[pick(persons.size())].to_string()}};
                    if (kind == "home_visit")
                        change["visited_at"] = day + "T11:00:00+08:00";
                    else if (kind == "employment_service")
                        change["delivered_at"] = day;
                    else
                        change["registered_at"] = day;
                    (void)a.update(e, change);
                }
                break;
            default:
                if (!events.empty())
                    (void)a.remove(events[pick(events.size())]);
            }
            // Changes of deleted records, or visits to them, may be rejected: that is fine here.
            d.sync(a, pa, true);
            if (pick(2) == 0)
                d.write([&](sql::connection& c) { return d.sums.open_some(c, 1 + pick(3)); });
            ASSERT_EQ(d.sums.check(d.db), std::vector<std::string>{}) << "round " << round;
        }
        if (seed % 2 == 0) {
            // As a report of several months does: all of them (April had no record) in one pass.
            d.write([&](sql::connection& c) {
                d.sums.open_months(c, {"2025-04", "2025-05", "2025-06", "2025-07"});
                return 0;
            });
            EXPECT_TRUE(rollups::is_open(d.db, "2025-04"));
        }
        for (int slices = 0; d.write([&](sql::connection& c) { return d.sums.open_some(c, 2); });
             ++slices)
            ASSERT_LT(slices, 100) << "the slices never finish";
        for (const char* m : {"2025-05", "2025-06", "2025-07"}) {
            if (d.month(t105, m).empty())
                continue; // no record of that month arrived
            EXPECT_TRUE(rollups::is_open(d.db, m)) << m;
        }
        auto left = d.db.cached("SELECT count(*) FROM rollup_opening");
        ASSERT_TRUE(left->step());
        EXPECT_EQ(left->int64(0), 0);
        EXPECT_EQ(d.sums.check(d.db), std::vector<std::string>{});
    }
}

} // namespace
} // namespace fieldsync
