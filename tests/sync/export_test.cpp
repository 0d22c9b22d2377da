// Exports: CSV that Excel reads as UTF-8, safe quoting, district totals from summed counts.
#include "sync/district_fixture.hpp"
#include "sync/export.hpp"

#include <gtest/gtest.h>

namespace fieldsync {
namespace {

TEST(export, csv_has_a_bom_quotes_what_needs_it_and_defuses_formulas) {
    auto csv = to_csv({{"名称", "值"}, {"a,b", "say \"hi\""}, {"=1+1", "-5"}});
    EXPECT_EQ(csv.substr(0, 3), "\xEF\xBB\xBF");
    EXPECT_NE(csv.find("\"a,b\",\"say \"\"hi\"\"\"\r\n"), std::string::npos);
    EXPECT_NE(csv.find("'=1+1,-5\r\n"), std::string::npos);
}

TEST(export, the_district_row_adds_counts_and_its_percentage_comes_from_the_sums) {
    district_month r;
    r.month = "2025-06";
    township_month a, b;
    a.township = "500154105";
    a.live = {{"four_ones_base", 10}, {"four_ones_verified", 9}};
    b.township = "500154106";
    b.live = {{"four_ones_base", 2}, {"four_ones_verified", 0}};
    r.townships = {a, b};
    r.total = {{"four_ones_base", 12}, {"four_ones_verified", 9}};
    auto t = report_table(r, false);
    ASSERT_EQ(t.size(), 4u);
    const auto& header = t[0];
    auto col =
        std::find(header.begin(), header.end(), "Basic information verified %") - header.begin();
    ASSERT_LT(static_cast<std::size_t>(col), header.size());
    EXPECT_EQ(t[1][static_cast<std::size_t>(col)], "90.0");
    EXPECT_EQ(t[2][static_cast<std::size_t>(col)], "0.0");
    EXPECT_EQ(t[3][static_cast<std::size_t>(col)], "75.0"); // not (90 + 0) / 2 = 45
    EXPECT_EQ(t[3][1], "District total");
}

// The spreadsheet goes to people, not programs: values are what the page calls them.
TEST(export, records_show_enumerations_booleans_and_review_states_by_name) {
    const auto& reg = *catalog::builtin().find("needs_registration");
    record_summary r;
    r.fields = {{"wants_work", true},
                {"work_mode", "home_based"},
                {"desired_jobs", boost::json::array{"handicraft", "e_commerce"}},
                {"notes", "会编织"}};
    r.review = "has_issues";
    auto cell = [&](const std::vector<std::vector<std::string>>& t, const std::string& title) {
        auto col = std::find(t[0].begin(), t[0].end(), title) - t[0].begin();
        EXPECT_LT(static_cast<std::size_t>(col), t[0].size()) << title;
        return t[1][static_cast<std::size_t>(col)];
    };
    auto zh = records_table(reg, {r}, true);
    EXPECT_EQ(cell(zh, "有就业意愿"), "是");
    EXPECT_EQ(cell(zh, "就业方式意向"), "居家就业");
    EXPECT_EQ(cell(zh, "意向岗位"), "手工制作、电子商务");
    EXPECT_EQ(cell(zh, "备注"), "会编织");
    EXPECT_EQ(cell(zh, "审核状态"), "有问题");
    auto en = records_table(reg, {r}, false);
    EXPECT_EQ(cell(en, "Wants work"), "yes");
    EXPECT_EQ(cell(en, "Preferred work mode"), "Home-based");
    EXPECT_EQ(cell(en, "Desired job types"), "Handicraft, E-commerce");
    EXPECT_EQ(cell(en, "Review state"), "Has issues");
}

TEST(export, xlsx_is_a_zip_workbook) {
    auto x = to_xlsx({{"乡镇", "入户走访次数"}, {"郭家镇", "12"}}, "2025-06");
    ASSERT_TRUE(x);
    ASSERT_GT(x->size(), 100u);
    EXPECT_EQ(x->substr(0, 2), "PK");
}

} // namespace
} // namespace fieldsync
