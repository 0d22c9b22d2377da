// fieldsyncd settings: file < environment < flags.
#include "server/config.hpp"
#include "sync/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace fieldsync {
namespace {

TEST(config, flags_win_over_environment_which_wins_over_the_file) {
    testing::temp_dir dir;
    {
        std::ofstream f(dir.file("fieldsyncd.conf"));
        f << "# comment\nlisten = 127.0.0.1:9000\nthreads = 3\nreaders = 5\n";
    }
    std::map<std::string, std::string> env{{"FIELDSYNC_THREADS", "4"},
                                           {"FIELDSYNC_MAX_BODY_BYTES", "4096"},
                                           {"FIELDSYNC_JOBS", "2"}}; // another tool's: ignored
    std::string why;
    auto cfg = server::load({"--data", dir.file("d"), "--config", dir.file("fieldsyncd.conf"),
                             "--readers=7", "--max-pipeline", "2", "--group-mutations", "120"},
                            env, &why);
    ASSERT_TRUE(cfg) << why;
    EXPECT_EQ(cfg->listen, "127.0.0.1:9000"); // file
    EXPECT_EQ(cfg->threads, 4u);              // env over file
    EXPECT_EQ(cfg->readers, 7u);              // flag over file
    EXPECT_EQ(cfg->max_body_bytes, 4096u);    // env
    EXPECT_EQ(cfg->max_pipeline, 2u);         // flag, dashes as underscores
    EXPECT_EQ(cfg->group_mutations, 120u);
    EXPECT_EQ(cfg->writer_nice, -10); // default
    auto calm = server::load({"--data", dir.file("d"), "--writer-nice", "0"}, {}, &why);
    ASSERT_TRUE(calm) << why;
    EXPECT_EQ(calm->writer_nice, 0);
    EXPECT_EQ(calm->month_slice_persons, 1000u); // default
    auto at_once = server::load({"--data", dir.file("d"), "--month-slice-persons", "0"}, {}, &why);
    ASSERT_TRUE(at_once) << why;
    EXPECT_EQ(at_once->month_slice_persons, 0u);
}

TEST(config, bad_settings_are_refused_with_a_reason) {
    std::string why;
    EXPECT_FALSE(server::load({}, {}, &why));
    EXPECT_NE(why.find("--data"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--threads", "many"}, {}, &why));
    EXPECT_NE(why.find("threads"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--group-mutations", "0"}, {}, &why));
    EXPECT_NE(why.find("group_mutations"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--writer-nice", "-30"}, {}, &why));
    EXPECT_NE(why.find("writer_nice"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--month-slice-persons", "-1"}, {}, &why));
    EXPECT_NE(why.find("month_slice_persons"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--pull-page-keep-ms", "10"}, {}, &why));
    EXPECT_NE(why.find("pull_page_keep_ms"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--backup-keep", "0"}, {}, &why));
    EXPECT_NE(why.find("backup_keep"), std::string::npos);
    EXPECT_FALSE(server::load({"--data", "x", "--backup-interval-s", "-5"}, {}, &why));
    EXPECT_NE(why.find("backup_interval_s"), std::string::npos);
    auto daily = server::load({"--data", "x"}, {}, &why);
    ASSERT_TRUE(daily) << why;
    EXPECT_EQ(daily->backup_interval_s, 24 * 3600); // on by default: a copy a day, 7 kept
    EXPECT_EQ(daily->backup_keep, 7u);
    auto off = server::load({"--data", "x"}, {{"FIELDSYNC_BACKUP_INTERVAL_S", "0"}}, &why);
    ASSERT_TRUE(off) << why;
    EXPECT_EQ(off->backup_interval_s, 0);
    EXPECT_FALSE(server::load({"--data", "x", "--colour", "blue"}, {}, &why));
    EXPECT_FALSE(server::load({"--data", "x", "--cert", "c.pem"}, {}, &why));
}

} // namespace
} // namespace fieldsync
