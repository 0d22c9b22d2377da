#include "child_process_server.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace fieldsync::testing {

namespace {

pid_t spawn(const std::string& dir, const std::vector<std::string>& extra,
            const std::map<std::string, std::string>& env, const std::string& port_file) {
    std::filesystem::remove(port_file);
    // FIELDSYNC_FIELDSYNCD: another binary (a copy, for long runs while the build goes on).
    const char* bin = std::getenv("FIELDSYNC_FIELDSYNCD");
    std::vector<std::string> args = {bin && *bin ? std::string(bin)
                                                 : std::string(FIELDSYNC_BIN_DIR) + "/fieldsyncd",
                                     "--data",
                                     dir,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     port_file,
                                     "--collections",
                                     std::string(FIELDSYNC_TEST_DATA) + "/test_collections.json",
                                     "--log-requests",
                                     "false"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> envs;
    for (char** e = environ; e && *e; ++e) {
        std::string kv(*e);
        if (!env.count(kv.substr(0, kv.find('='))))
            envs.push_back(std::move(kv));
    }
    for (const auto& [k, v] : env)
        envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : envs)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = dir + "/fieldsyncd.log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error("cannot start fieldsyncd: " + std::string(std::strerror(rc)));
    return pid;
}

// Waits for the port file (written once the listener is bound) or the process's exit. No timing
// is asserted: a slow machine only waits longer.
bool wait_listening(pid_t pid, const std::string& port_file, unsigned short& port, int& status) {
    for (;;) {
        {
            std::ifstream in(port_file);
            if (in >> port)
                return true;
        }
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

child_process_server::child_process_server(const std::string& dir, std::vector<std::string> extra,
                                           std::map<std::string, std::string> env)
    : dir_(dir) {
    std::string port_file = dir + "/port";
    pid_ = spawn(dir, extra, env, port_file);
    int status = -1;
    if (!wait_listening(pid_, port_file, port_, status)) {
        pid_ = -1;
        std::string text = log();
        if (text.size() > 2000)
            text = text.substr(text.size() - 2000);
        throw std::runtime_error("fieldsyncd exited during start (status " +
                                 std::to_string(status) + "): " + text);
    }
}

child_process_server::~child_process_server() {
    if (pid_ > 0)
        terminate();
}

void child_process_server::kill9() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

int child_process_server::terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string child_process_server::log() const {
    return read_all(dir_ + "/fieldsyncd.log");
}

tablet_login child_process_server::enrol(const std::string& user) const {
    https_client c(port_, cert());
    auto r = c.post("/v1/enrol", boost::json::value{{"code", make_code(dir_, user)}});
    if (r.status != 200)
        throw std::runtime_error("enrol: " + r.body);
    return {user, std::string(r.json.at("device").as_string()),
            std::string(r.json.at("token").as_string())};
}

child_process_server::exit_info
child_process_server::expect_refusal(const std::string& dir,
                                     std::map<std::string, std::string> env) {
    std::string port_file = dir + "/port";
    std::filesystem::remove(dir + "/fieldsyncd.log");
    pid_t pid = spawn(dir, {}, env, port_file);
    exit_info out;
    unsigned short port = 0;
    if (wait_listening(pid, port_file, port, out.status)) {
        out.listened = true;
        kill(pid, SIGTERM);
        int st = 0;
        waitpid(pid, &st, 0);
    }
    out.log = read_all(dir + "/fieldsyncd.log");
    return out;
}

std::size_t resident_bytes(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) {
            std::istringstream ss(line.substr(6));
            std::size_t kb = 0;
            ss >> kb;
            return kb * 1024;
        }
    return 0;
}

} // namespace fieldsync::testing
