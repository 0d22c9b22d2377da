#include "sync/export.hpp"

#include <boost/json/serialize.hpp>

#include <xlsxwriter.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace fieldsync {

namespace json = boost::json;

label indicator_label(std::string_view indicator) {
    static const std::map<std::string_view, label> labels = {
        {"home_visits", {"入户走访次数", "Home visits"}},
        {"persons_visited", {"走访人数", "Persons visited"}},
        {"four_ones_base", {"就业年龄段未就业残疾人数", "Working-age unemployed persons"}},
        {"four_ones_verified", {"已基础信息核对", "Basic information verified"}},
        {"four_ones_assessed", {"已职业能力评估", "Vocational capability assessed"}},
        {"four_ones_registered", {"已就业需求登记", "Employment needs registered"}},
        {"four_ones_served", {"已提供就业服务", "Employment service delivered"}},
        {"monitoring_checks", {"防返贫监测次数", "Monitoring checks"}},
        {"households_flagged", {"纳入监测户数", "Households flagged for monitoring"}},
        {"graduates", {"当年残疾人毕业生", "Graduates of the year"}},
        {"graduates_registered", {"毕业生已登记", "Graduates registered"}},
        {"graduates_served", {"毕业生已服务", "Graduates served"}},
        {"late_records", {"延迟上报记录", "Late records"}},
        {"open_conflicts", {"待处理冲突", "Open conflicts"}},
    };
    auto it = labels.find(indicator);
    return it == labels.end() ? label{std::string(indicator), std::string(indicator)} : it->second;
}

std::string percent(std::int64_t n, std::int64_t d) {
    if (d <= 0)
        return {};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", 100.0 * static_cast<double>(n) / static_cast<double>(d));
    return buf;
}

namespace {

// Coverage columns: numerator over denominator.
const std::vector<std::pair<std::string, std::string>>& coverage_columns() {
    static const std::vector<std::pair<std::string, std::string>> c = {
        {"four_ones_verified", "four_ones_base"},   {"four_ones_assessed", "four_ones_base"},
        {"four_ones_registered", "four_ones_base"}, {"four_ones_served", "four_ones_base"},
        {"graduates_registered", "graduates"},      {"graduates_served", "graduates"},
    };
    return c;
}

std::vector<std::string> figures_row(const figures& f) {
    std::vector<std::string> row;
    for (const auto& i : rollup_indicators()) {
        auto it = f.find(i);
        row.push_back(std::to_string(it == f.end() ? 0 : it->second));
    }
    for (const auto& [n, d] : coverage_columns()) {
        auto get = [&](const std::string& k) {
            auto it = f.find(k);
            return it == f.end() ? std::int64_t{0} : it->second;
        };
        row.push_back(percent(get(n), get(d)));
    }
    return row;
}

std::string cell_text(const json::value& v) {
    if (v.is_string())
        return std::string(v.as_string());
    if (v.is_null())
        return {};
    if (v.is_array()) {
        std::string s;
        for (const auto& e : v.as_array()) {
            if (!s.empty())
                s += ",";
            s += e.is_string() ? std::string(e.as_string()) : json::serialize(e);
        }
        return s;
    }
    return json::serialize(v);
}

// A record's value as its cell: enumerations by what they are called, yes/no for booleans.
std::string cell_text(const field_decl& f, const json::value& v, bool zh) {
    if (v.is_bool())
        return v.as_bool() ? (zh ? "是" : "yes") : (zh ? "否" : "no");
    if (f.values.empty())
        return cell_text(v);
    if (v.is_string())
        return std::string(value_title(f, v.as_string(), zh));
    if (!v.is_array())
        return cell_text(v);
    std::string s;
    for (const auto& e : v.as_array()) {
        if (!s.empty())
            s += zh ? "、" : ", ";
        s += e.is_string() ? std::string(value_title(f, e.as_string(), zh)) : json::serialize(e);
    }
    return s;
}

std::string review_title(std::string_view state, bool zh) {
    if (state == "has_issues")
        return zh ? "有问题" : "Has issues";
    if (state == "approved")
        return zh ? "已通过" : "Approved";
    return zh ? "待审核" : "Awaiting review";
}

} // namespace

std::vector<std::vector<std::string>> report_table(const district_month& r, bool zh) {
    std::vector<std::vector<std::string>> t;
    std::vector<std::string> header = {zh ? "乡镇代码" : "Township code",
                                       zh ? "乡镇" : "Township",
                                       zh ? "月份" : "Month",
                                       zh ? "已审核" : "Approved",
                                       zh ? "版本" : "Revision",
                                       zh ? "审核后有变化" : "Changed since approval"};
    for (const auto& i : rollup_indicators()) {
        auto l = indicator_label(i);
        header.push_back(zh ? l.zh : l.en);
    }
    for (const auto& [n, d] : coverage_columns()) {
        auto l = indicator_label(n);
        header.push_back((zh ? l.zh : l.en) + " %");
    }
    t.push_back(std::move(header));
    auto yes = [&](bool b) { return std::string(b ? (zh ? "是" : "yes") : (zh ? "否" : "no")); };
    for (const auto& tm : r.townships) {
        std::vector<std::string> row = {tm.township,
                                        tm.name,
                                        r.month,
                                        yes(tm.approved),
                                        std::to_string(tm.revision),
                                        yes(tm.changed_since_approval)};
        auto f = figures_row(tm.live);
        row.insert(row.end(), f.begin(), f.end());
        t.push_back(std::move(row));
    }
    std::vector<std::string> total = {"", zh ? "全区合计" : "District total", r.month, "", "", ""};
    auto f = figures_row(r.total);
    total.insert(total.end(), f.begin(), f.end());
    t.push_back(std::move(total));
    return t;
}

std::vector<std::vector<std::string>>
records_table(const collection_decl& c, const std::vector<record_summary>& records, bool zh) {
    std::vector<std::vector<std::string>> t;
    std::vector<std::string> header = {zh ? "记录编号" : "Record id"};
    for (const auto& f : c.fields)
        header.push_back(zh ? f.title.zh : f.title.en);
    header.push_back(zh ? "审核状态" : "Review state");
    header.push_back(zh ? "录入人" : "Entered by");
    t.push_back(std::move(header));
    for (const auto& r : records) {
        std::vector<std::string> row = {r.id.to_string()};
        for (const auto& f : c.fields) {
            const auto* v = r.fields.if_contains(f.name);
            row.push_back(v ? cell_text(f, *v, zh) : std::string());
        }
        row.push_back(review_title(r.review, zh));
        row.push_back(r.created_by);
        t.push_back(std::move(row));
    }
    return t;
}

std::string to_csv(const std::vector<std::vector<std::string>>& table) {
    std::string out = "\xEF\xBB\xBF"; // BOM: Excel reads the file as UTF-8
    for (const auto& row : table) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (i)
                out += ',';
            const auto& v = row[i];
            // Quote when needed; neutralise spreadsheet formulas in text cells.
            bool formula =
                !v.empty() &&
                (v[0] == '=' || v[0] == '+' || v[0] == '@' ||
                 (v[0] == '-' && v.size() > 1 && !std::isdigit(static_cast<unsigned char>(v[1]))));
            std::string cellv = formula ? "'" + v : v;
            if (cellv.find_first_of(",\"\n\r") != std::string::npos) {
                out += '"';
                for (char ch : cellv) {
                    if (ch == '"')
                        out += '"';
                    out += ch;
                }
                out += '"';
            } else {
                out += cellv;
            }
        }
        out += "\r\n";
    }
    return out;
}

result<std::string> to_xlsx(const std::vector<std::vector<std::string>>& table,
                            std::string_view sheet_name) {
    std::random_device rd;
    auto path = std::filesystem::temp_directory_path() /
                ("fieldsync-export-" + std::to_string(rd()) + std::to_string(rd()) + ".xlsx");
    lxw_workbook* wb = workbook_new(path.c_str());
    if (!wb)
        return errc::storage_failure;
    lxw_worksheet* ws = workbook_add_worksheet(wb, std::string(sheet_name).c_str());
    lxw_format* bold = workbook_add_format(wb);
    format_set_bold(bold);
    for (std::size_t r = 0; r < table.size(); ++r)
        for (std::size_t c = 0; c < table[r].size(); ++c) {
            const auto& v = table[r][c];
            auto row = static_cast<lxw_row_t>(r);
            auto col = static_cast<lxw_col_t>(c);
            // Counts and percentages as numbers, so that they can be summed in Excel.
            char* end = nullptr;
            double d = v.empty() ? 0 : std::strtod(v.c_str(), &end);
            bool numeric = r > 0 && !v.empty() && end && *end == '\0' && v.size() < 15 &&
                           !(v.size() > 1 && v[0] == '0' && v[1] != '.');
            if (numeric)
                worksheet_write_number(ws, row, col, d, nullptr);
            else
                worksheet_write_string(ws, row, col, v.c_str(), r == 0 ? bold : nullptr);
        }
    if (workbook_close(wb) != LXW_NO_ERROR) {
        std::filesystem::remove(path);
        return errc::storage_failure;
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return ss.str();
}

} // namespace fieldsync
