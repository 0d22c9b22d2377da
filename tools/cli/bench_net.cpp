// fieldsync bench: the lean HTTPS load client, the fieldsyncd child process and /proc figures.
#include "cli/bench.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fieldsync::cli::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

double latencies::percentile(double p) const {
    if (ms.empty())
        return 0;
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

proc_sample sample_process(pid_t pid) {
    proc_sample s;
    if (pid <= 0)
        return s;
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(st, line))
        return s;
    // Fields after the command name "(…)": state is field 3, utime 14, stime 15.
    auto close = line.rfind(')');
    if (close == std::string::npos)
        return s;
    std::istringstream rest(line.substr(close + 2));
    std::vector<std::string> f;
    for (std::string w; rest >> w;)
        f.push_back(w);
    if (f.size() < 13)
        return s;
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    s.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / tick;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(status, line)) {
        auto kb = [&](std::string_view key) {
            return std::stod(line.substr(key.size())) / 1024.0; // "VmHWM:   1234 kB"
        };
        if (line.starts_with("VmHWM:"))
            s.hwm_mb = kb("VmHWM:");
        else if (line.starts_with("VmRSS:"))
            s.rss_mb = kb("VmRSS:");
    }
    s.ok = true;
    return s;
}

double self_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

pid_t start_profiler(pid_t pid, const std::string& out) {
    std::vector<std::string> args = {"perf", "record", "-F", "499", "-g",
                                     "-q",   "-o",     out,  "-p",  std::to_string(pid)};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t child = -1;
    int rc = posix_spawnp(&child, "perf", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    // perf needs a moment to attach; a sample lost at the very start does not matter.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    int status = 0;
    if (waitpid(child, &status, WNOHANG) == child)
        return -1;
    return child;
}

void stop_profiler(pid_t perf) {
    if (perf <= 0)
        return;
    kill(perf, SIGINT);
    int status = 0;
    waitpid(perf, &status, 0);
}

void raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

std::optional<endpoint> parse_url(const std::string& url) {
    constexpr std::string_view scheme = "https://";
    if (!url.starts_with(scheme))
        return std::nullopt;
    std::string rest = url.substr(scheme.size());
    while (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    if (rest.find('/') != std::string::npos)
        return std::nullopt;
    endpoint ep;
    if (rest.starts_with("[")) { // [::1]:8443
        auto end = rest.find(']');
        if (end == std::string::npos)
            return std::nullopt;
        ep.host = rest.substr(1, end - 1);
        rest = rest.substr(end + 1);
        ep.port = rest.starts_with(":") ? rest.substr(1) : "443";
    } else {
        auto colon = rest.rfind(':');
        ep.host = rest.substr(0, colon);
        ep.port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
    }
    if (ep.host.empty() || ep.port.empty() ||
        !std::all_of(ep.port.begin(), ep.port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return ep;
}

// ---- https_conn
// ----------------------------------------------------------------------------------

namespace {

// One io_context and TLS context per trust setting, shared by every connection: blocking
// operations do not run the io_context, and a configured ssl::context is safe to share.
struct shared_tls {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
};

shared_tls& tls_for(const endpoint& ep) {
    static std::mutex m;
    static std::map<std::string, std::unique_ptr<shared_tls>> by_key;
    std::lock_guard lock(m);
    auto key = ep.ca_file + (ep.verify ? "|v" : "|-");
    auto& slot = by_key[key];
    if (!slot) {
        slot = std::make_unique<shared_tls>();
        if (!ep.verify)
            slot->ctx.set_verify_mode(ssl::verify_none);
        else {
            if (ep.ca_file.empty())
                slot->ctx.set_default_verify_paths();
            else
                slot->ctx.load_verify_file(ep.ca_file);
            slot->ctx.set_verify_mode(ssl::verify_peer);
        }
    }
    return *slot;
}

} // namespace

struct https_conn::impl {
    explicit impl(shared_tls& t) : stream(t.ioc, t.ctx) {}
    beast::ssl_stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    std::string host;
};

https_conn::https_conn(const endpoint& ep) {
    auto& t = tls_for(ep);
    impl_ = std::make_unique<impl>(t);
    impl_->host = ep.host;
    tcp::resolver resolver(t.ioc);
    auto results = resolver.resolve(ep.host, ep.port);
    beast::get_lowest_layer(impl_->stream).connect(results);
    beast::get_lowest_layer(impl_->stream).socket().set_option(tcp::no_delay(true));
    if (ep.verify)
        impl_->stream.set_verify_callback(ssl::host_name_verification(ep.host));
    beast::error_code not_ip;
    asio::ip::make_address(ep.host, not_ip);
    if (not_ip && !SSL_set_tlsext_host_name(impl_->stream.native_handle(), ep.host.c_str()))
        throw std::runtime_error("TLS: cannot set the server name");
    impl_->stream.handshake(ssl::stream_base::client);
}

https_conn::~https_conn() {
    close();
}

void https_conn::close() {
    if (!impl_)
        return;
    beast::error_code ec;
    beast::get_lowest_layer(impl_->stream).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(impl_->stream).socket().close(ec);
}

namespace {
template <class Stream>
reply exchange(Stream& s, beast::flat_buffer& buffer, http::request<http::string_body>& req) {
    http::write(s, req);
    http::response_parser<http::string_body> p;
    p.body_limit(1ull << 31);
    p.header_limit(1 << 16);
    http::read(s, buffer, p);
    reply r;
    r.status = p.get().result_int();
    r.body = std::move(p.get().body());
    return r;
}
} // namespace

reply https_conn::post(const std::string& target, std::string body, const std::string& token) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, impl_->host);
    req.set(http::field::content_type, "application/json");
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + token);
    req.body() = std::move(body);
    req.prepare_payload();
    return exchange(impl_->stream, impl_->buffer, req);
}

reply https_conn::get(const std::string& target, const std::string& token) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, impl_->host);
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + token);
    return exchange(impl_->stream, impl_->buffer, req);
}

// ---- server_process
// ------------------------------------------------------------------------------

namespace {
std::string self_dir() {
    std::error_code ec;
    auto exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : exe.parent_path().string();
}
} // namespace

server_process::server_process(const std::string& data_dir,
                               const std::vector<std::string>& extra_args)
    : dir_(data_dir) {
    const std::string bin = self_dir() + "/fieldsyncd";
    if (access(bin.c_str(), X_OK) != 0)
        throw std::runtime_error("cannot find fieldsyncd next to fieldsync (" + bin +
                                 "); build it, or use --server URL");
    const std::string port_file = dir_ + "/bench-port";
    fs::remove(port_file);
    std::vector<std::string> args = {bin, "--data", dir_, "--listen", "127.0.0.1:0", "--port-file",
                                     port_file, "--log-requests", "false",
                                     // idle-connections holds keep-alive connections open for
                                     // the whole run; a production server closes them at 15 s.
                                     "--header-timeout-ms", "600000"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = dir_ + "/fieldsyncd.log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        pid_ = -1;
        throw std::runtime_error("cannot start " + bin);
    }
    // The port file is written once the listener is bound.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
        std::ifstream in(port_file);
        if (in >> port_ && port_ != 0)
            break;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("fieldsyncd exited during start; see " + log);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            stop();
            throw std::runtime_error("fieldsyncd did not start listening; see " + log);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

server_process::~server_process() {
    stop();
}

int server_process::stop() {
    if (pid_ <= 0)
        return 0;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

endpoint server_process::where() const {
    endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = std::to_string(port_);
    ep.ca_file = dir_ + "/dev-cert.pem";
    return ep;
}

} // namespace fieldsync::cli::bench
