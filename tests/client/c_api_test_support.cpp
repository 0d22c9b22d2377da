// A real fieldsyncd for the C test (C cannot use the C++ fixture directly).
#include "server_fixture.hpp"

#include <cstdlib>
#include <cstring>
#include <memory>

namespace {
std::unique_ptr<fieldsync::testing::server_fixture> fixture;
std::string url, fingerprint, last_code;
} // namespace

extern "C" {

const char* fst_server_start(void) {
    fixture = std::make_unique<fieldsync::testing::server_fixture>();
    url = "https://127.0.0.1:" + std::to_string(fixture->port());
    fingerprint = fixture->srv->fingerprint();
    return url.c_str();
}
const char* fst_server_fingerprint(void) {
    return fingerprint.c_str();
}
const char* fst_make_code(const char* username) {
    last_code = fieldsync::testing::make_code(fixture->dir.path().string(), username);
    return last_code.c_str();
}
long fst_server_count(const char* sql_text) {
    return static_cast<long>(fixture->count(sql_text));
}
const char* fst_temp_dir(void) {
    static fieldsync::testing::temp_dir dir;
    static std::string path = dir.file("tablet");
    return path.c_str();
}
void fst_server_stop(void) {
    fixture.reset();
}
}
