// fieldsync bench [--scenario NAME] [--tablets N] [--batch B] [--records N[,N…]|small] [--json]
//                 [--scale S] [--idle N] [--share F] [--window MS] [--data DIR] [--keep]
//                 [--profile DIR]
//                 [--server URL --admin-code CODE [--ca FILE|--insecure] [--server-pid PID]]
//                 [-- fieldsyncd options…]
//
// Starts a fieldsyncd (the binary next to this one) on a free loopback port over a data folder
// it makes (the demo district, `--scale`), or targets `--server`, and drives it over real TLS
// with concurrent simulated tablets. One fresh server and data folder per scenario, so each
// scenario's server memory and CPU are its own. docs/benchmarks.md has the scenarios, results
// and what bounds them.
#include "cli/bench.hpp"
#include "cli/commands.hpp"

#include <boost/json/serialize.hpp>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/json/parse.hpp>

#include <unistd.h>

namespace fieldsync::cli {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

using namespace bench;

constexpr std::string_view usage_text =
    "usage: fieldsync bench [--scenario NAME] [--tablets N] [--batch B] [--records "
    "N[,N...]|small]\n"
    "                       [--json] [--scale S] [--idle N] [--share F] [--data DIR] [--keep]\n"
    "                       [--window MS] [--profile DIR]\n"
    "                       [--server URL --admin-code CODE [--ca FILE | --insecure]\n"
    "                        [--server-pid PID]] [-- fieldsyncd options...]\n"
    "\n"
    "scenarios (default: all, in this order):\n"
    "  sqlite-reference  SQLite alone: durable appends/s, time-ordered vs random keys\n"
    "  push-new          64 tablets push batches of 200 new records (durable acks)\n"
    "  push-mixed        the same with a share (--share, 0.25) of edits to shared households\n"
    "  initial-pull      a new tablet pulls a whole township (100,000 records)\n"
    "  day-end           256 connected tablets each push a 50-record day, then pull; they come\n"
    "                    back over --window MS (default 2000; 0: all at the same moment)\n"
    "  idle-connections  1,000 idle keep-alive TLS connections (--idle) while 16 tablets sync\n"
    "\n"
    "  --records    push-new/push-mixed: records pushed in all; initial-pull: the township's\n"
    "               size; day-end: records per tablet; idle-connections: sync rounds per tablet;\n"
    "               sqlite-reference: rows. 10k,100k,1m runs a growth series. small: tiny sizes\n"
    "  --tablets    simulated tablets (initial-pull: tablets pulling at once)\n"
    "  --batch      records per push (initial-pull: records per page, at most 5000;\n"
    "               sqlite-reference: rows per commit, 2000)\n"
    "  --scale      demo district size under the bench data (0: divisions only; default 1)\n"
    "  --json       JSON on stdout instead of the table\n"
    "  --data DIR   where data folders are made (default a temporary folder); --keep keeps them\n"
    "  --profile D  perf record -g of the server during each timed phase, into D/NAME.perf.data\n"
    "  --server     an existing fieldsyncd (a demo district): bench users are made through the\n"
    "               admin API with a district admin's one-time code (--admin-code); --server-pid\n"
    "               lets it read that server's memory and CPU\n";

std::optional<std::size_t> parse_size(std::string s) {
    if (s.empty())
        return std::nullopt;
    std::size_t mult = 1;
    char last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
    if (last == 'k' || last == 'm') {
        mult = last == 'k' ? 1000 : 1000000;
        s.pop_back();
    }
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 12)
        return std::nullopt;
    return std::stoull(s) * mult;
}

std::optional<settings> parse(const args& a, std::string& why) {
    settings o;
    std::size_t end = a.size();
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] == "--") {
            end = i;
            o.server_args.assign(a.begin() + static_cast<std::ptrdiff_t>(i) + 1, a.end());
            break;
        }
    const args mine(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(end));
    static const std::vector<std::string_view> valued = {
        "--scenario",   "--tablets",    "--batch",   "--records", "--scale",
        "--idle",       "--share",      "--data",    "--server",  "--ca",
        "--admin-code", "--server-pid", "--profile", "--window"};
    static const std::vector<std::string_view> flags = {"--json", "--keep", "--insecure"};
    for (std::size_t i = 0; i < mine.size(); ++i) {
        if (std::find(flags.begin(), flags.end(), mine[i]) != flags.end())
            continue;
        if (std::find(valued.begin(), valued.end(), mine[i]) != valued.end() &&
            i + 1 < mine.size()) {
            ++i;
            continue;
        }
        why = "unknown or incomplete option \"" + mine[i] + "\"";
        return std::nullopt;
    }
    auto number = [&](std::string_view name, std::size_t& out) {
        auto v = option(mine, name);
        if (v.empty())
            return true;
        auto n = parse_size(v);
        if (!n || *n == 0) {
            why = std::string(name) + " needs a positive number";
            return false;
        }
        out = *n;
        return true;
    };
    if (!number("--tablets", o.tablets) || !number("--batch", o.batch) || !number("--idle", o.idle))
        return std::nullopt;
    if (auto v = option(mine, "--scale"); !v.empty()) {
        auto n = parse_size(v);
        if (!n || *n > 1000) {
            why = "--scale needs a number from 0 to 1000";
            return std::nullopt;
        }
        o.scale = *n;
    }
    if (auto v = option(mine, "--window"); !v.empty()) {
        auto n = parse_size(v);
        if (!n || *n > 3600000) {
            why = "--window needs milliseconds (0 to 3600000)";
            return std::nullopt;
        }
        o.window_ms = static_cast<std::int64_t>(*n);
    }
    if (auto v = option(mine, "--share"); !v.empty()) {
        try {
            o.mixed_share = std::stod(v);
        } catch (const std::exception&) {
            o.mixed_share = -1;
        }
        if (!(o.mixed_share >= 0 && o.mixed_share <= 1)) {
            why = "--share needs a fraction from 0 to 1";
            return std::nullopt;
        }
    }
    if (auto v = option(mine, "--records"); !v.empty()) {
        if (v == "small") {
            o.small = true;
        } else {
            std::stringstream ss(v);
            for (std::string part; std::getline(ss, part, ',');) {
                auto n = parse_size(part);
                if (!n || *n == 0) {
                    why = "--records needs positive numbers (10k,100k,1m) or \"small\"";
                    return std::nullopt;
                }
                o.records.push_back(*n);
            }
        }
    }
    if (o.batch > 5000 && option(mine, "--scenario") == "initial-pull") {
        why = "--batch is at most 5000 records per page for initial-pull";
        return std::nullopt;
    }
    const auto name = option(mine, "--scenario");
    if (name.empty() || name == "all") {
        o.scenarios.push_back("sqlite-reference");
        for (const auto& s : scenarios())
            o.scenarios.push_back(s.name);
    } else {
        bool known = name == "sqlite-reference";
        for (const auto& s : scenarios())
            known = known || name == s.name;
        if (!known) {
            why = "unknown scenario \"" + name + "\"";
            return std::nullopt;
        }
        o.scenarios.push_back(name);
    }
    o.json = flag(mine, "--json");
    o.keep = flag(mine, "--keep");
    o.insecure = flag(mine, "--insecure");
    o.data_dir = option(mine, "--data");
    o.profile_dir = option(mine, "--profile");
    o.server_url = option(mine, "--server");
    o.ca_file = option(mine, "--ca");
    o.admin_code = option(mine, "--admin-code");
    if (auto v = option(mine, "--server-pid"); !v.empty()) {
        auto n = parse_size(v);
        if (!n) {
            why = "--server-pid needs a process id";
            return std::nullopt;
        }
        o.server_pid = static_cast<pid_t>(*n);
    }
    if (!o.server_url.empty()) {
        if (!parse_url(o.server_url)) {
            why = "--server needs https://HOST:PORT";
            return std::nullopt;
        }
        if (o.admin_code.empty()) {
            why = "--server needs --admin-code (a district admin's one-time enrolment code: "
                  "fieldsync tablets code --data DIR --username admin)";
            return std::nullopt;
        }
    }
    o.progress = isatty(STDERR_FILENO) == 1;
    return o;
}

// ---- Targets
// -------------------------------------------------------------------------------------

class own_target final : public target {
public:
    own_target(const std::string& dir, const std::vector<std::string>& args, std::string run)
        : dir_(dir), proc_(dir, args), run_(std::move(run)) {}
    endpoint where() const override { return proc_.where(); }
    std::vector<std::string> codes(const std::vector<std::string>& townships) override {
        return make_codes(dir_, townships, run_ + "-" + std::to_string(calls_++));
    }
    pid_t pid() const override { return proc_.pid(); }
    std::string data_dir() const override { return dir_; }
    int stop() { return proc_.stop(); }

private:
    std::string dir_;
    server_process proc_;
    std::string run_;
    int calls_ = 0;
};

class remote_target final : public target {
public:
    remote_target(const settings& o, std::string run) : run_(std::move(run)) {
        ep_ = *parse_url(o.server_url);
        ep_.ca_file = o.ca_file;
        ep_.verify = !o.insecure;
        pid_ = o.server_pid;
        https_conn c(ep_);
        auto r = c.post("/v1/enrol",
                        json::serialize(json::object{{"code", o.admin_code}, {"label", "bench"}}));
        if (r.status != 200)
            throw std::runtime_error("--admin-code: enrolment failed: HTTP " +
                                     std::to_string(r.status) + " " + r.body);
        auto doc = json::parse(r.body).as_object();
        if (doc.at("role").as_string() != "district_admin")
            throw std::runtime_error("--admin-code must be a district admin's code");
        token_ = std::string(doc.at("token").as_string());
    }
    endpoint where() const override { return ep_; }
    std::vector<std::string> codes(const std::vector<std::string>& townships) override {
        https_conn c(ep_);
        std::vector<std::string> out;
        const auto prefix = "bench-" + run_ + "-" + std::to_string(calls_++) + "-";
        for (std::size_t i = 0; i < townships.size(); ++i) {
            const auto name = prefix + std::to_string(i);
            auto u = c.post("/v1/admin/users",
                            json::serialize(json::object{{"username", name},
                                                         {"role", "field_worker"},
                                                         {"township", townships[i]}}),
                            token_);
            if (u.status != 201)
                throw std::runtime_error("admin API: cannot add " + name + ": " + u.body);
            auto k = c.post("/v1/admin/enrolment-codes",
                            json::serialize(json::object{{"username", name}}), token_);
            if (k.status != 201)
                throw std::runtime_error("admin API: no code for " + name + ": " + k.body);
            out.emplace_back(json::parse(k.body).at("code").as_string());
        }
        return out;
    }
    pid_t pid() const override { return pid_; }

private:
    endpoint ep_;
    std::string token_;
    std::string run_;
    pid_t pid_ = 0;
    int calls_ = 0;
};

// ---- Progress line
// -------------------------------------------------------------------------------

class progress_line {
public:
    progress_line(bool on, std::string name, progress& p) : on_(on), name_(std::move(name)), p_(p) {
        if (on_)
            thread_ = std::thread([this] { loop(); });
    }
    ~progress_line() {
        if (!on_)
            return;
        {
            std::lock_guard lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
        std::cerr << "\r\033[K" << std::flush;
    }

private:
    void loop() {
        const auto t0 = std::chrono::steady_clock::now();
        std::unique_lock lock(m_);
        while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stop_; })) {
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::ostringstream line;
            line << "\r\033[K" << name_ << ": " << p_.phase.load() << "  " << p_.done.load();
            if (auto t = p_.total.load())
                line << "/" << t;
            line << " records  " << std::fixed << std::setprecision(1) << s << " s";
            std::cerr << line.str() << std::flush;
        }
    }
    bool on_;
    std::string name_;
    progress& p_;
    std::thread thread_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false; // guarded by m_
};

// ---- Report
// --------------------------------------------------------------------------------------

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("model name")) {
            auto c = line.find(':');
            return c == std::string::npos ? line : line.substr(c + 2);
        }
    return "unknown";
}

double round_to(double v, int digits) {
    const double f = std::pow(10.0, digits);
    return std::round(v * f) / f;
}

json::object to_json(const scenario_result& r) {
    json::object o{{"scenario", r.scenario},
                   {"client", r.client},
                   {"tablets", r.tablets},
                   {"records", r.records},
                   {"requests", r.requests},
                   {"errors", r.errors},
                   {"wall_s", round_to(r.wall_s, 3)},
                   {"records_per_s", std::round(r.records_per_s())},
                   {"requests_per_s", round_to(r.requests_per_s(), 1)},
                   {"p50_ms", round_to(r.lat.percentile(50), 2)},
                   {"p95_ms", round_to(r.lat.percentile(95), 2)},
                   {"p99_ms", round_to(r.lat.percentile(99), 2)},
                   {"client_cpu_s", round_to(r.client_cpu_s, 2)}};
    auto opt = [&](const char* k, const std::optional<double>& v) {
        o[k] = v ? json::value(round_to(*v, 2)) : json::value(nullptr);
    };
    opt("server_peak_rss_mb", r.server_peak_rss_mb);
    opt("server_rss_mb", r.server_rss_mb);
    opt("server_cpu_s", r.server_cpu_s);
    o["stored"] = r.stored ? json::value(*r.stored) : json::value(nullptr);
    o["expected_stored"] =
        r.expected_stored >= 0 ? json::value(r.expected_stored) : json::value(nullptr);
    json::object kinds;
    for (const auto& [k, l] : r.by_kind)
        kinds[k] = {{"count", l.ms.size()},
                    {"p50_ms", round_to(l.percentile(50), 2)},
                    {"p95_ms", round_to(l.percentile(95), 2)},
                    {"p99_ms", round_to(l.percentile(99), 2)}};
    o["latency_by_request"] = std::move(kinds);
    o["target"] = r.target;
    o["meets_target"] = r.meets_target ? json::value(*r.meets_target) : json::value(nullptr);
    o["details"] = r.extra;
    json::array notes;
    for (const auto& n : r.notes)
        notes.push_back(json::value(n));
    o["notes"] = std::move(notes);
    return o;
}

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

std::string grouped(double v) {
    auto s = std::to_string(static_cast<long long>(std::llround(v)));
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
        s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

void print_table(const std::vector<scenario_result>& rs, std::ostream& out) {
    const std::vector<std::string> head = {"scenario",  "tablets", "records", "rec/s",  "req/s",
                                           "p50 ms",    "p95 ms",  "p99 ms",  "srv MB", "srv CPU s",
                                           "cli CPU s", "wall s",  "target"};
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : rs) {
        auto opt = [](const std::optional<double>& v, int d) { return v ? fixed(*v, d) : "-"; };
        rows.push_back({r.scenario, r.tablets ? std::to_string(r.tablets) : "-",
                        grouped(static_cast<double>(r.records)), grouped(r.records_per_s()),
                        fixed(r.requests_per_s(), 0), fixed(r.lat.percentile(50), 1),
                        fixed(r.lat.percentile(95), 1), fixed(r.lat.percentile(99), 1),
                        opt(r.server_peak_rss_mb, 0), opt(r.server_cpu_s, 2),
                        fixed(r.client_cpu_s, 2), fixed(r.wall_s, 2),
                        !r.meets_target   ? "-"
                        : *r.meets_target ? "met"
                                          : "NOT met"});
    }
    std::vector<std::size_t> width(head.size());
    auto display = [](const std::string& s) { // UTF-8 aware enough for our ASCII cells
        return s.size();
    };
    for (std::size_t c = 0; c < head.size(); ++c) {
        width[c] = display(head[c]);
        for (const auto& row : rows)
            width[c] = std::max(width[c], display(row[c]));
    }
    auto line = [&](const std::vector<std::string>& cells) {
        for (std::size_t c = 0; c < cells.size(); ++c) {
            if (c == 0 || c + 1 == cells.size())
                out << std::left << std::setw(static_cast<int>(width[c])) << cells[c];
            else
                out << std::right << std::setw(static_cast<int>(width[c])) << cells[c];
            out << (c + 1 == cells.size() ? "\n" : "  ");
        }
    };
    line(head);
    for (const auto& row : rows)
        line(row);
    out << "\n";
    for (const auto& r : rs) {
        out << r.scenario << " (" << r.client << "): target " << r.target << "\n";
        if (r.stored)
            out << "  stored " << *r.stored << " records"
                << (r.expected_stored >= 0
                        ? " of " + std::to_string(r.expected_stored) + " expected"
                        : std::string())
                << "\n";
        for (const auto& n : r.notes)
            out << "  " << n << "\n";
    }
    // Growth series: the same scenario at several sizes.
    std::map<std::string, std::vector<const scenario_result*>> series;
    for (const auto& r : rs)
        series[r.scenario].push_back(&r);
    for (const auto& [name, list] : series) {
        if (list.size() < 2)
            continue;
        out << "\n" << name << " growth (time per record relative to the smallest run):\n";
        const auto* first = list.front();
        const double base =
            first->records ? first->wall_s / static_cast<double>(first->records) : 0;
        const double cpu_base = first->records && first->server_cpu_s
                                    ? *first->server_cpu_s / static_cast<double>(first->records)
                                    : 0;
        for (const auto* r : list) {
            const double per = r->records ? r->wall_s / static_cast<double>(r->records) : 0;
            out << "  " << std::setw(10) << grouped(static_cast<double>(r->records))
                << " records: " << fixed(r->wall_s, 2) << " s wall (x" << fixed(per / base, 2)
                << " per record)";
            if (r->server_cpu_s && cpu_base > 0)
                out << ", server CPU " << fixed(*r->server_cpu_s, 2) << " s (x"
                    << fixed(*r->server_cpu_s / static_cast<double>(r->records) / cpu_base, 2)
                    << " per record)";
            out << "\n";
        }
    }
}

std::string make_run_id() {
    std::mt19937_64 rng(
        std::random_device{}() ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    const char* hex = "0123456789abcdef";
    std::string id;
    for (int i = 0; i < 6; ++i)
        id += hex[rng() % 16];
    return id;
}

} // namespace

int cmd_bench(const args& a) {
    std::string why;
    auto parsed = parse(a, why);
    if (!parsed) {
        if (!why.empty())
            std::cerr << "fieldsync bench: " << why << "\n";
        std::cerr << usage_text;
        return 2;
    }
    const settings& o = *parsed;
    raise_fd_limit();
    bool temp_root = o.data_dir.empty();
    std::string root = o.data_dir;
    if (temp_root) {
        std::string templ = (fs::temp_directory_path() / "fieldsync-bench-XXXXXX").string();
        if (!mkdtemp(templ.data()))
            throw std::runtime_error("cannot make a temporary folder");
        root = templ;
    }
    fs::create_directories(root);
    const std::string run = make_run_id();
    // Other work on the machine skews every figure: the report says how busy it was.
    std::string load;
    {
        std::ifstream in("/proc/loadavg");
        std::string one, five, fifteen;
        in >> one >> five >> fifteen;
        load = one + " " + five + " " + fifteen;
    }

    std::vector<scenario_result> results;
    for (const auto& name : o.scenarios) {
        std::vector<std::size_t> sizes = o.records;
        if (sizes.empty())
            sizes.push_back(0);
        for (std::size_t size : sizes) {
            const std::string folder =
                (fs::path(root) / (size ? name + "-" + std::to_string(size) : name)).string();
            progress prog;
            scenario_result r;
            {
                progress_line line(o.progress, name, prog);
                if (name == "sqlite-reference") {
                    fs::remove_all(folder);
                    fs::create_directories(folder);
                    prog.phase = "running";
                    r = sqlite_reference(o, folder, size ? size : default_records(name, o.small),
                                         prog);
                } else {
                    const scenario_info* info = nullptr;
                    for (const auto& s : scenarios())
                        if (name == s.name)
                            info = &s;
                    if (!o.server_url.empty()) {
                        remote_target srv(o, run);
                        scenario_context ctx{o, srv, prog, size, run, fs::path(folder).filename()};
                        r = info->run(ctx);
                    } else {
                        fs::remove_all(folder);
                        prog.phase = "making the district";
                        // One district per run (the demo's logins make it slow), copied into
                        // each scenario's fresh folder.
                        const auto base =
                            (fs::path(root) / ("district-" + std::to_string(o.scale))).string();
                        if (!fs::exists(database_path(base)))
                            prepare_district(base, o.scale);
                        fs::create_directories(folder);
                        for (const char* suffix : {"", "-wal"})
                            if (fs::exists(database_path(base) + suffix))
                                fs::copy_file(database_path(base) + suffix,
                                              database_path(folder) + suffix);
                        if (info->seeding == scenario_info::seed::township) {
                            prog.phase = "seeding the township";
                            const std::size_t n = size ? size : default_records(name, o.small);
                            prog.total = n;
                            seed_township(folder, district_townships().front(), n, &prog);
                            prog.done = 0;
                            prog.total = 0;
                        }
                        prog.phase = "starting fieldsyncd";
                        own_target srv(folder, o.server_args, run);
                        scenario_context ctx{o, srv, prog, size, run, fs::path(folder).filename()};
                        r = info->run(ctx);
                        if (int rc = srv.stop(); rc != 0)
                            r.notes.push_back("fieldsyncd exited with status " +
                                              std::to_string(rc));
                    }
                }
            }
            if (!o.keep)
                fs::remove_all(folder);
            if (!o.json && !o.progress)
                std::cerr << "bench: " << r.scenario << " done\n";
            results.push_back(std::move(r));
        }
    }
    if (!o.keep)
        fs::remove_all(fs::path(root) / ("district-" + std::to_string(o.scale)));
    if (temp_root && !o.keep)
        fs::remove_all(root);

    const auto cores = std::thread::hardware_concurrency();
    if (o.json) {
        json::array list;
        for (const auto& r : results)
            list.push_back(to_json(r));
        json::object doc{
            {"machine", {{"cores", cores}, {"cpu", cpu_model()}, {"load_average", load}}},
            {"server", o.server_url.empty() ? "fieldsyncd started by the bench" : o.server_url},
            {"scenarios", std::move(list)}};
        std::cout << json::serialize(doc) << "\n";
    } else {
        std::cout << "fieldsync bench on " << cores << " cores (" << cpu_model()
                  << "), load average before the run " << load
                  << (o.keep ? ", data kept in " + root : std::string()) << "\n\n";
        print_table(results, std::cout);
    }
    bool ok = true;
    for (const auto& r : results) {
        if (r.errors) {
            std::cerr << "fieldsync bench: " << r.scenario << ": " << r.errors
                      << " requests failed\n";
            ok = false;
        }
        if (r.stored && r.expected_stored >= 0 && *r.stored != r.expected_stored) {
            std::cerr << "fieldsync bench: " << r.scenario << ": the server stored " << *r.stored
                      << " records, expected " << r.expected_stored << "\n";
            ok = false;
        }
    }
    return ok ? 0 : 1;
}

} // namespace fieldsync::cli
