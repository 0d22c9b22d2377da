// fieldsyncd: the HTTPS sync server. See server/server.hpp and docs/protocol.md.
#include "server/server.hpp"

#include <iostream>

int main(int argc, char** argv) {
    using namespace fieldsync::server;
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
    try {
        server s(*cfg);
        // stdout: what a person (or tools/run) needs; stderr: the JSON request log.
        std::cout << "fieldsyncd listening on " << s.url() << "\n"
                  << "  database:    " << cfg->data_dir << "/fieldsync.db\n"
                  << "  certificate: " << s.certificate_file() << "\n"
                  << "  SHA-256 fingerprint: " << s.fingerprint() << "\n"
                  << std::flush;
        s.run(true);
        std::cout << "fieldsyncd stopped\n";
    } catch (const std::exception& e) {
        std::cerr << "fieldsyncd: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
