// fieldsync rollups check|show, fieldsync export rollups|records
#include "cli/commands.hpp"
#include "sync/export.hpp"
#include "sync/review.hpp"
#include "sync/rollups.hpp"
#include "sync/sqlite.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace fieldsync::cli {

namespace {

int need_database(const std::string& dir) {
    if (dir.empty()) {
        std::cerr << "fieldsync: --data DIR is required\n";
        return 2;
    }
    if (!std::filesystem::exists(database_path(dir))) {
        std::cerr << "fieldsync: no database in " << dir << " (fieldsync init or demo first)\n";
        return 1;
    }
    return 0;
}

// Prints a table with columns padded to their widest cell (display width: CJK counts two).
void print_table(const std::vector<std::vector<std::string>>& t) {
    auto width = [](const std::string& s) {
        std::size_t w = 0;
        for (std::size_t i = 0; i < s.size();) {
            auto c = static_cast<unsigned char>(s[i]);
            std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            w += len >= 3 ? 2 : 1;
            i += len;
        }
        return w;
    };
    std::vector<std::size_t> widths;
    for (const auto& row : t)
        for (std::size_t i = 0; i < row.size(); ++i) {
            widths.resize(std::max(widths.size(), row.size()));
            widths[i] = std::max(widths[i], width(row[i]));
        }
    for (const auto& row : t) {
        for (std::size_t i = 0; i < row.size(); ++i)
            std::cout << row[i] << std::string(widths[i] - width(row[i]) + 2, ' ');
        std::cout << "\n";
    }
}

bool write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    return static_cast<bool>(out);
}

int write_table(const std::vector<std::vector<std::string>>& table, const args& a,
                std::string_view sheet) {
    auto format = option(a, "--format");
    auto out = option(a, "--out");
    if (out.empty() || (format != "csv" && format != "xlsx")) {
        std::cerr << "fieldsync export: --format csv|xlsx and --out FILE are required\n";
        return 2;
    }
    std::string bytes;
    if (format == "csv") {
        bytes = to_csv(table);
    } else {
        auto x = to_xlsx(table, sheet);
        if (!x) {
            std::cerr << "fieldsync export: could not write the XLSX file\n";
            return 1;
        }
        bytes = std::move(*x);
    }
    if (!write_file(out, bytes)) {
        std::cerr << "fieldsync export: cannot write " << out << "\n";
        return 1;
    }
    std::cout << "wrote " << out << " (" << table.size() - 1 << " rows)\n";
    return 0;
}

// These tools read the file and cannot compute a month themselves: a month whose persons are
// not (all) counted yet (never opened, or fieldsyncd still counting it between pushes) is named,
// so that nobody reports its person-based figures upward as final. True if it is complete.
bool persons_counted(sql::connection& c, const std::string& month, std::string_view tool) {
    if (rollups::is_open(c, month))
        return true;
    std::cerr << tool << ": the person-based figures of " << month
              << " (four_ones_*, graduates*) are not complete: fieldsyncd counts a month's "
                 "persons when its first record arrives or its report is asked for "
                 "(GET /v1/rollups/"
              << month << "); ask the server, or run this again later\n";
    return false;
}

} // namespace

int cmd_rollups(const args& a) {
    std::string sub = a.empty() ? "" : a[0];
    auto dir = option(a, "--data");
    if (sub != "check" && sub != "show") {
        std::cerr << "usage: fieldsync rollups check --data DIR\n"
                     "       fieldsync rollups show --data DIR --month YYYY-MM [--lang en]\n";
        return 2;
    }
    if (int rc = need_database(dir))
        return rc;
    sql::connection c(database_path(dir), sql::open_mode::read_only);
    if (sub == "check") {
        // Recompute every figure from the records, in one read snapshot.
        sql::transaction tx(c, sql::tx_mode::deferred);
        auto diffs = rollups().check(c);
        for (const auto& d : diffs)
            std::cout << "differs: " << d << "\n";
        std::cout << (diffs.empty() ? "rollups match a recomputation from the records\n"
                                    : std::to_string(diffs.size()) + " differences\n");
        return diffs.empty() ? 0 : 1;
    }
    auto month = option(a, "--month");
    if (!is_month(month)) {
        std::cerr << "fieldsync rollups show: --month YYYY-MM is required\n";
        return 2;
    }
    persons_counted(c, month, "fieldsync rollups show");
    print_table(report_table(rollups::report(c, month), option(a, "--lang") != "en"));
    return 0;
}

int cmd_export(const args& a) {
    std::string what = a.empty() ? "" : a[0];
    auto dir = option(a, "--data");
    if (what != "rollups" && what != "records") {
        std::cerr << "usage: fieldsync export rollups --data DIR --month YYYY-MM --format "
                     "csv|xlsx --out FILE [--lang en] [--incomplete]\n"
                     "       fieldsync export records --data DIR --collection NAME [--township "
                     "CODE] [--from DATE] [--to DATE] --format csv|xlsx --out FILE [--lang en]\n";
        return 2;
    }
    if (int rc = need_database(dir))
        return rc;
    bool zh = option(a, "--lang") != "en";
    sql::connection c(database_path(dir), sql::open_mode::read_only);
    if (what == "rollups") {
        auto month = option(a, "--month");
        if (!is_month(month)) {
            std::cerr << "fieldsync export rollups: --month YYYY-MM is required\n";
            return 2;
        }
        // A file is what gets reported upward: incomplete figures only when asked for.
        if (!persons_counted(c, month, "fieldsync export rollups") && !flag(a, "--incomplete")) {
            std::cerr << "fieldsync export rollups: nothing written (--incomplete writes the "
                         "figures as they are)\n";
            return 1;
        }
        return write_table(report_table(rollups::report(c, month), zh), a, month);
    }
    auto collection = option(a, "--collection");
    const auto* decl = catalog::builtin().find(collection);
    if (!decl) {
        std::cerr << "fieldsync export records: --collection must name a record type "
                     "(fieldsync collections lists them)\n";
        return 2;
    }
    // The command-line tool runs on the server as its administrator: district scope. Personal
    // numbers stay masked in exports; revealing one is a logged action of the review API.
    principal who{"cli", "", scope{option(a, "--township"), {}}};
    review office(catalog::builtin());
    record_query q;
    q.collection = collection;
    q.from = option(a, "--from");
    q.to = option(a, "--to");
    q.limit = 500;
    std::vector<record_summary> all;
    for (;;) {
        auto page = office.list(c, who, q);
        if (!page) {
            std::cerr << "fieldsync export records: bad filter (dates are YYYY-MM-DD)\n";
            return 2;
        }
        all.insert(all.end(), page->items.begin(), page->items.end());
        if (page->items.size() < q.limit)
            break;
        q.offset += q.limit;
    }
    return write_table(records_table(*decl, all, zh), a, collection);
}

} // namespace fieldsync::cli
