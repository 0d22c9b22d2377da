// Every seed and every regression input of every fuzz target, through the same code libFuzzer
// runs (fuzz_targets.hpp): the crashes fuzzing found stay fixed without clang in CI.
#include "fuzz_targets.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace fieldsync::fuzz {
namespace {

namespace fs = std::filesystem;

using target_fn = int (*)(const std::uint8_t*, std::size_t);

// Replays tests/fuzz/{corpus,regressions}/<name>/*; returns how many files ran.
std::size_t replay(const char* name, target_fn fn) {
    std::size_t files = 0;
    for (const char* kind : {"corpus", "regressions"}) {
        fs::path dir = fs::path(FIELDSYNC_FUZZ_DIR) / kind / name;
        if (!fs::exists(dir))
            continue;
        std::vector<fs::path> paths;
        for (const auto& entry : fs::directory_iterator(dir))
            if (entry.is_regular_file() && entry.path().filename() != ".gitkeep")
                paths.push_back(entry.path());
        std::sort(paths.begin(), paths.end());
        for (const auto& p : paths) {
            SCOPED_TRACE(p.string());
            std::ifstream in(p, std::ios::binary);
            std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                            std::istreambuf_iterator<char>());
            // A broken invariant aborts with its reason on stderr (the test fails).
            EXPECT_EQ(fn(bytes.data(), bytes.size()), 0);
            ++files;
        }
    }
    return files;
}

TEST(fuzz_replay, push) {
    EXPECT_GT(replay("push", fuzz_push), 10u);
}

TEST(fuzz_replay, pull) {
    EXPECT_GT(replay("pull", fuzz_pull), 5u);
}

TEST(fuzz_replay, cursor) {
    EXPECT_GT(replay("cursor", fuzz_cursor), 5u);
}

TEST(fuzz_replay, http) {
    EXPECT_GT(replay("http", fuzz_http), 10u);
}

} // namespace
} // namespace fieldsync::fuzz
