// fieldsync init | check | collections
#include "cli/commands.hpp"
#include "schema/catalog.hpp"
#include "sync/engine.hpp"
#include "sync/sqlite.hpp"

#include <filesystem>
#include <iostream>

namespace fieldsync::cli {

namespace fs = std::filesystem;

int cmd_init(const args& a) {
    auto dir = option(a, "--data");
    if (dir.empty()) {
        std::cerr << "usage: fieldsync init --data DIR\n";
        return 2;
    }
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

int cmd_check(const args& a) {
    auto dir = option(a, "--data");
    if (dir.empty()) {
        std::cerr << "usage: fieldsync check --data DIR\n";
        return 2;
    }
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

int cmd_collections(const args&) {
    for (const auto& [name, c] : catalog::builtin().collections())
        std::cout << name << " (" << c.title.zh << " / " << c.title.en << "): " << c.fields.size()
                  << " fields\n";
    return 0;
}

} // namespace fieldsync::cli
