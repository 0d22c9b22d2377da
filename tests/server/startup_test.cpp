// What fieldsyncd tells the engineer who starts it, checked on the real executable.
#include "child_process_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

// The push path's speed depends on the allocator (docs/benchmarks.md, "Memory allocator"), so the
// daemon says which one serves its malloc, and a build configured for jemalloc must really run on
// it: the line is written only when jemalloc counted an allocation made through malloc.
TEST(server_startup, fieldsyncd_names_the_memory_allocator_it_runs_on) {
    temp_dir dir;
    const std::string d = dir.path().string();
    seed_database(d);
    child_process_server srv(d);
    // It listens (and the test goes on) before it prints its startup lines: wait for them.
    std::string log = srv.log();
    for (int i = 0; i < 3000 && log.find("  memory allocator: ") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        log = srv.log();
    }
#ifdef FIELDSYNC_EXPECT_JEMALLOC
    // ...with its background thread, which gives freed memory back while the server is idle.
    EXPECT_NE(log.find("  memory allocator: jemalloc 5."), std::string::npos) << log;
    EXPECT_NE(log.find(", unused memory returned in the background\n"), std::string::npos) << log;
#else
    EXPECT_NE(log.find("  memory allocator: system malloc\n"), std::string::npos) << log;
#endif
}

} // namespace
} // namespace fieldsync
