#include "server/config.hpp"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

extern char** environ;

namespace fieldsync::server {

namespace {

template <class T>
bool number(const std::string& v, T& out) {
    T x{};
    auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    if (r.ec != std::errc{} || r.ptr != v.data() + v.size())
        return false;
    out = x;
    return true;
}

bool boolean(const std::string& v, bool& out) {
    if (v == "1" || v == "true" || v == "yes" || v == "on")
        out = true;
    else if (v == "0" || v == "false" || v == "no" || v == "off")
        out = false;
    else
        return false;
    return true;
}

std::string trim(std::string s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

result<void> bad(std::string* why, std::string text) {
    if (why)
        *why = std::move(text);
    return errc::invalid_argument;
}

result<void> read_file(config& c, const std::string& path, std::string* why) {
    std::ifstream in(path);
    if (!in)
        return bad(why, "cannot read config file " + path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        line = trim(line);
        if (line.empty() || line[0] == '#')
            continue;
        auto eq = line.find('=');
        if (eq == std::string::npos)
            return bad(why, path + ":" + std::to_string(n) + ": expected key = value");
        std::string sub;
        if (!set(c, trim(line.substr(0, eq)), trim(line.substr(eq + 1)), &sub))
            return bad(why, path + ":" + std::to_string(n) + ": " + sub);
    }
    return {};
}

} // namespace

result<void> set(config& c, const std::string& key, const std::string& value, std::string* why) {
    bool ok = true;
    if (key == "data")
        c.data_dir = value;
    else if (key == "listen")
        c.listen = value;
    else if (key == "cert")
        c.cert_file = value;
    else if (key == "key")
        c.key_file = value;
    else if (key == "collections")
        c.collections_file = value;
    else if (key == "port_file")
        c.port_file = value;
    else if (key == "threads")
        ok = number(value, c.threads) && c.threads > 0 && c.threads <= 256;
    else if (key == "readers")
        ok = number(value, c.readers) && c.readers > 0 && c.readers <= 64;
    else if (key == "group_mutations")
        ok = number(value, c.group_mutations) && c.group_mutations >= 1 &&
             c.group_mutations <= 1000000;
    else if (key == "writer_nice")
        ok = number(value, c.writer_nice) && c.writer_nice >= -20 && c.writer_nice <= 19;
    else if (key == "pipelined_sync")
        ok = boolean(value, c.pipelined_sync);
    else if (key == "max_body_bytes")
        ok = number(value, c.max_body_bytes) && c.max_body_bytes >= 1024;
    else if (key == "max_header_bytes")
        ok = number(value, c.max_header_bytes) && c.max_header_bytes >= 1024;
    else if (key == "max_json_depth")
        ok = number(value, c.max_json_depth) && c.max_json_depth >= 8;
    else if (key == "max_pipeline")
        ok = number(value, c.max_pipeline) && c.max_pipeline >= 1;
    else if (key == "max_connections")
        ok = number(value, c.max_connections) && c.max_connections >= 1;
    else if (key == "header_timeout_ms")
        ok = number(value, c.header_timeout_ms) && c.header_timeout_ms > 0;
    else if (key == "body_timeout_ms")
        ok = number(value, c.body_timeout_ms) && c.body_timeout_ms > 0;
    else if (key == "write_timeout_ms")
        ok = number(value, c.write_timeout_ms) && c.write_timeout_ms > 0;
    else if (key == "shutdown_grace_ms")
        ok = number(value, c.shutdown_grace_ms) && c.shutdown_grace_ms >= 0;
    else if (key == "max_clock_ahead_ms")
        ok = number(value, c.max_clock_ahead_ms) && c.max_clock_ahead_ms > 0;
    else if (key == "month_slice_persons")
        ok = number(value, c.month_slice_persons) && c.month_slice_persons <= 1000000;
    else if (key == "pull_page_keep_ms")
        ok = number(value, c.pull_page_keep_ms) && c.pull_page_keep_ms >= 100 &&
             c.pull_page_keep_ms <= 3600000;
    else if (key == "backup_dir")
        c.backup_dir = value;
    else if (key == "backup_interval_s")
        ok = number(value, c.backup_interval_s) && c.backup_interval_s >= 0 &&
             c.backup_interval_s <= 366LL * 24 * 3600;
    else if (key == "backup_keep")
        ok = number(value, c.backup_keep) && c.backup_keep >= 1 && c.backup_keep <= 1000;
    else if (key == "log_requests")
        ok = boolean(value, c.log_requests);
    else if (key == "session_idle_s")
        ok = number(value, c.session_idle_s) && c.session_idle_s > 0;
    else if (key == "session_max_s")
        ok = number(value, c.session_max_s) && c.session_max_s > 0;
    else if (key == "login_failures_per_user")
        ok = number(value, c.login_failures_per_user) && c.login_failures_per_user > 0;
    else if (key == "login_failures_per_address")
        ok = number(value, c.login_failures_per_address) && c.login_failures_per_address > 0;
    else if (key == "login_window_s")
        ok = number(value, c.login_window_s) && c.login_window_s > 0;
    else if (key == "web_origin")
        c.web_origin = value;
    else
        return bad(why, "unknown setting \"" + key + "\"");
    if (!ok)
        return bad(why, "bad value for " + key + ": \"" + value + "\"");
    return {};
}

std::map<std::string, std::string> environment() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string kv(*e);
        if (!kv.starts_with("FIELDSYNC_"))
            continue;
        auto eq = kv.find('=');
        if (eq != std::string::npos)
            out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
}

result<config> load(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env, std::string* why) {
    // Flags as key/value pairs first: --config must be known before anything else is applied.
    std::vector<std::pair<std::string, std::string>> flags;
    std::string config_file;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (!a.starts_with("--")) {
            bad(why, "unexpected argument \"" + a + "\"");
            return errc::invalid_argument;
        }
        std::string key = a.substr(2), value;
        if (auto eq = key.find('='); eq != std::string::npos) {
            value = key.substr(eq + 1);
            key = key.substr(0, eq);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            bad(why, "missing value after " + a);
            return errc::invalid_argument;
        }
        for (auto& ch : key)
            if (ch == '-')
                ch = '_';
        if (key == "config")
            config_file = value;
        else
            flags.emplace_back(key, value);
    }
    if (config_file.empty())
        if (auto it = env.find("FIELDSYNC_CONFIG"); it != env.end())
            config_file = it->second;

    config c;
    if (!config_file.empty())
        if (auto r = read_file(c, config_file, why); !r)
            return r.error();
    for (const auto& [name, value] : env) {
        if (name == "FIELDSYNC_CONFIG")
            continue;
        std::string key = name.substr(10);
        for (auto& ch : key)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::string sub;
        if (!set(c, key, value, &sub)) {
            // Other fieldsync tools have FIELDSYNC_* variables of their own (FIELDSYNC_JOBS, …).
            if (sub.starts_with("unknown setting"))
                continue;
            bad(why, "environment " + name + ": " + sub);
            return errc::invalid_argument;
        }
    }
    for (const auto& [key, value] : flags)
        if (auto r = set(c, key, value, why); !r)
            return r.error();
    if (c.data_dir.empty()) {
        bad(why, "--data DIR is required (the folder of the district database)");
        return errc::invalid_argument;
    }
    if (c.cert_file.empty() != c.key_file.empty()) {
        bad(why, "give both cert and key, or neither (a development certificate is generated)");
        return errc::invalid_argument;
    }
    return c;
}

std::string usage() {
    return "usage: fieldsyncd --data DIR [--listen ADDR:PORT] [--config FILE] [--cert PEM --key "
           "PEM]\n"
           "                  [--collections JSON] [--threads N] [--readers N] [--port-file F]\n"
           "Every setting is also a config-file key (key = value) and an environment variable\n"
           "FIELDSYNC_<KEY>; flags win over the environment, which wins over the file.\n"
           "Settings: data listen cert key collections threads readers group_mutations "
           "writer_nice pipelined_sync\n"
           "  max_body_bytes max_header_bytes max_json_depth max_pipeline max_connections\n"
           "  header_timeout_ms body_timeout_ms write_timeout_ms shutdown_grace_ms\n"
           "  max_clock_ahead_ms month_slice_persons pull_page_keep_ms backup_dir "
           "backup_interval_s\n"
           "  backup_keep port_file"
           " log_requests session_idle_s session_max_s login_failures_per_user\n"
           "  login_failures_per_address login_window_s web_origin\n";
}

} // namespace fieldsync::server
