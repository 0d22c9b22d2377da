// fieldsyncd: the HTTPS sync server. See server/server.hpp and docs/protocol.md.
#include "server/server.hpp"
#include "sync/storage_check.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <sys/stat.h>

#ifdef FIELDSYNC_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>

// Read by jemalloc when it starts (MALLOC_CONF in the environment adds to it): a background
// thread returns pages freed for 10 s to the system even while the server is idle. Without it
// jemalloc purges only when it is called, so an idle server kept a burst's peak resident (140 MB
// after a push-new run, against 26 MB with it, 20 s later).
const char* malloc_conf = "background_thread:true";
#endif

namespace {

// The allocator that serves this process's malloc, for the startup lines: "jemalloc 5.3.0" only
// when the linked jemalloc counts an allocation made through malloc (a preloaded allocator or a
// link order that left glibc's in charge reads "system malloc").
std::string memory_allocator() {
#ifdef FIELDSYNC_WITH_JEMALLOC
    auto allocated = [] {
        std::uint64_t n = 0;
        std::size_t len = sizeof n;
        return mallctl("thread.allocated", &n, &len, nullptr, 0) == 0 ? n : 0;
    };
    constexpr std::size_t probe = 1 << 20;
    const auto before = allocated();
    void* volatile p = std::malloc(probe);
    const auto after = allocated();
    std::free(p);
    if (after >= before + probe) {
        const char* v = nullptr;
        std::size_t len = sizeof v;
        std::string version = mallctl("version", &v, &len, nullptr, 0) == 0 && v ? v : "";
        bool background = false;
        len = sizeof background;
        if (mallctl("background_thread", &background, &len, nullptr, 0) != 0)
            background = false;
        return "jemalloc " + version.substr(0, version.find('-')) +
               (background ? ", unused memory returned in the background" : "");
    }
#endif
    return "system malloc";
}

} // namespace

int main(int argc, char** argv) {
    using namespace fieldsync::server;
    // The data folder holds personal data and the TLS private key: every file this program
    // creates (database, key, backups, exports) is readable by its owner only.
    ::umask(077);
    std::vector<std::string> args(argv + 1, argv + argc);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << usage();
            return 0;
        }
    std::string why;
    auto cfg = load(args, environment(), &why);
    if (!cfg) {
        std::cerr << "fieldsyncd: " << why << "\n" << usage();
        return 2;
    }
    // Refuse a damaged, read-only or WAL-less database before serving it (docs/reliability.md).
    // FIELDSYNC_STARTUP_CHECK=quick (default), full (also every index) or off.
    auto level = fieldsync::startup_check::quick;
    if (const char* v = std::getenv("FIELDSYNC_STARTUP_CHECK")) {
        std::string_view s(v);
        if (s == "full")
            level = fieldsync::startup_check::full;
        else if (s == "off")
            level = fieldsync::startup_check::off;
        else if (s != "quick") {
            std::cerr << "fieldsyncd: FIELDSYNC_STARTUP_CHECK must be quick, full or off\n";
            return 2;
        }
    }
    auto db_path = (std::filesystem::path(cfg->data_dir) / "fieldsync.db").string();
    if (auto ok = fieldsync::check_database_file(db_path, level, &why); !ok) {
        std::cerr << "fieldsyncd: not starting: " << why << "\n";
        return 3;
    }
    try {
        server s(*cfg);
        // stdout: what a person (or tools/run) needs; stderr: the JSON request log.
        std::cout << "fieldsyncd listening on " << s.url() << "\n"
                  << "  database:    " << cfg->data_dir << "/fieldsync.db\n"
                  << "  certificate: " << s.certificate_file() << "\n"
                  << "  SHA-256 fingerprint: " << s.fingerprint() << "\n"
                  << "  memory allocator: " << memory_allocator() << "\n"
                  << std::flush;
        s.run(true);
        std::cout << "fieldsyncd stopped\n";
    } catch (const std::exception& e) {
        std::cerr << "fieldsyncd: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
