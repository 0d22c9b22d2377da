// The fieldsync command-line tool's subcommands. Each takes the arguments after its name and
// returns the process exit code (0 success, 1 failure, 2 usage error).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::cli {

using args = std::vector<std::string>;

// The value after `name` ("--data DIR" → "DIR"), or empty.
std::string option(const args& a, std::string_view name);
bool flag(const args& a, std::string_view name);
// DIR/fieldsync.db
std::string database_path(const std::string& data_dir);

int cmd_init(const args& a);
int cmd_check(const args& a);
int cmd_collections(const args& a);
int cmd_demo(const args& a); // demo.cpp
// admin.cpp: operate on DIR/fieldsync.db directly, next to a running fieldsyncd.
int cmd_users(const args& a);
int cmd_tablets(const args& a);
int cmd_divisions(const args& a);
int cmd_backup(const args& a);
// reports.cpp: monthly indicators and exports.
int cmd_rollups(const args& a);
int cmd_export(const args& a);
// tablet.cpp: a tablet simulator over the sync client library.
int cmd_tablet(const args& a);
// bench.cpp: the load benchmark (docs/benchmarks.md).
int cmd_bench(const args& a);

} // namespace fieldsync::cli
