// fieldsync: the command-line tool. Subcommands for administration of a district database.
#include "schema/catalog.hpp"
#include "sync/engine.hpp"
#include "sync/sqlite.hpp"

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace fieldsync;

int usage() {
    std::cerr << "usage: fieldsync <command> [options]\n"
                 "commands:\n"
                 "  init  --data DIR   create (or upgrade) the district database in DIR\n"
                 "  check --data DIR   run SQLite's integrity check and report the record count\n"
                 "  collections        list the record types this build accepts\n";
    return 2;
}

std::string option(const std::vector<std::string>& args, std::string_view name) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == name)
            return args[i + 1];
    return {};
}

std::string database_path(const std::string& dir) {
    return (fs::path(dir) / "fieldsync.db").string();
}

int cmd_init(const std::vector<std::string>& args) {
    auto dir = option(args, "--data");
    if (dir.empty())
        return usage();
    fs::create_directories(dir);
    sql::connection c(database_path(dir), sql::open_mode::read_write_create);
    if (auto r = migrate_server_database(c); !r) {
        std::cerr << "fieldsync: " << database_path(dir)
                  << " was written by a newer fieldsync; refusing to change it\n";
        return 1;
    }
    std::cout << "database ready: " << database_path(dir) << "\n";
    return 0;
}

int cmd_check(const std::vector<std::string>& args) {
    auto dir = option(args, "--data");
    if (dir.empty())
        return usage();
    if (!fs::exists(database_path(dir))) {
        std::cerr << "fieldsync: no database in " << dir << " (run fieldsync init first)\n";
        return 1;
    }
    sql::connection c(database_path(dir), sql::open_mode::read_only);
    auto result = c.integrity_check();
    std::cout << "integrity: " << result << "\n";
    auto s = c.cached("SELECT count(*), coalesce(sum(deleted), 0) FROM records");
    if (s->step())
        std::cout << "records: " << s->int64(0) << " (" << s->int64(1) << " deleted)\n";
    std::cout << "last change sequence: " << engine::last_seq(c) << "\n";
    return result == "ok" ? 0 : 1;
}

int cmd_collections() {
    for (const auto& [name, c] : catalog::builtin().collections()) {
        std::cout << name << " (" << c.title.zh << " / " << c.title.en << "): " << c.fields.size()
                  << " fields\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty())
        return usage();
    try {
        const auto& cmd = args[0];
        if (cmd == "init")
            return cmd_init(args);
        if (cmd == "check")
            return cmd_check(args);
        if (cmd == "collections")
            return cmd_collections();
        return usage();
    } catch (const std::exception& e) {
        std::cerr << "fieldsync: " << e.what() << "\n";
        return 1;
    }
}
