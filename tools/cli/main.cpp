// fieldsync: the command-line tool. Administration of a district database, the tablet
// simulator, demo data and benchmarks; each subcommand lives in its own file.
#include "cli/commands.hpp"

#include <filesystem>
#include <iostream>
#include <sys/stat.h>

namespace fieldsync::cli {

std::string option(const args& a, std::string_view name) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == name)
            return a[i + 1];
    return {};
}

bool flag(const args& a, std::string_view name) {
    for (const auto& x : a)
        if (x == name)
            return true;
    return false;
}

std::string database_path(const std::string& dir) {
    return (std::filesystem::path(dir) / "fieldsync.db").string();
}

} // namespace fieldsync::cli

namespace {

using namespace fieldsync::cli;

struct command {
    std::string_view name;
    int (*run)(const args&);
    std::string_view help;
};

// Keep sorted by name; `fieldsync help` prints this table.
constexpr command commands[] = {
    {"backup", cmd_backup, "backup --data DIR --out FILE: online copy of a live database"},
    {"bench", cmd_bench,
     "bench [--scenario NAME] [--tablets N] [--records N] [--json]: load benchmark over TLS"},
    {"check", cmd_check, "check --data DIR: integrity check and record counts"},
    {"collections", cmd_collections, "collections: the record types this build accepts"},
    {"demo", cmd_demo, "demo --data DIR [--scale N] [--seed S]: create a demo district"},
    {"divisions", cmd_divisions, "divisions add|list --data DIR: the district's divisions"},
    {"export", cmd_export,
     "export rollups|records --data DIR ... --format csv|xlsx --out FILE: spreadsheets"},
    {"init", cmd_init, "init --data DIR: create or upgrade the district database"},
    {"rollups", cmd_rollups, "rollups check|show --data DIR [--month YYYY-MM]: monthly figures"},
    {"tablet", cmd_tablet,
     "tablet --state DIR enrol|record|edit|delete|list|sync|status: a simulated tablet"},
    {"tablets", cmd_tablets, "tablets code|list|revoke --data DIR: enrolment codes, revocation"},
    {"users", cmd_users, "users add|list|scope|disable --data DIR: users and their scopes"},
};

int usage() {
    std::cerr << "usage: fieldsync <command> [options]\n\ncommands:\n";
    for (const auto& c : commands)
        std::cerr << "  " << c.help << "\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    // The data folder holds personal data and the TLS private key: every file this program
    // creates (database, key, backups, exports) is readable by its owner only.
    ::umask(077);
    args a(argv + 1, argv + argc);
    if (a.empty() || a[0] == "help" || a[0] == "--help" || a[0] == "-h")
        return usage();
    for (const auto& c : commands) {
        if (c.name != a[0])
            continue;
        try {
            return c.run(args(a.begin() + 1, a.end()));
        } catch (const std::exception& e) {
            std::cerr << "fieldsync " << c.name << ": " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "fieldsync: unknown command \"" << a[0] << "\"\n";
    return usage();
}
