#include "server/backups.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <tuple>

namespace fieldsync::server {

namespace fs = std::filesystem;
using std::chrono::system_clock;

namespace {

constexpr std::string_view prefix = "fieldsync-", suffix = ".db";
constexpr std::size_t stamp_length = 15; // YYYYMMDD-HHMMSS

// The time in a backup's name, or none if the name is not one of ours.
std::optional<system_clock::time_point> time_of(const std::string& name) {
    if (name.size() != prefix.size() + stamp_length + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix))
        return std::nullopt;
    std::tm tm{};
    char dash = 0;
    char tail = 0;
    if (std::sscanf(name.c_str() + prefix.size(), "%4d%2d%2d%c%2d%2d%2d%c", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &dash, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tail) != 8 ||
        dash != '-' || tail != '.')
        return std::nullopt;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    auto t = timegm(&tm);
    if (t < 0)
        return std::nullopt;
    auto at = system_clock::from_time_t(t);
    if (backup_file_name(at) != name)
        return std::nullopt; // a 13th month or a 99th day, which timegm would roll over
    return at;
}

// Made while the clock was ahead (a minute of slack for a clock that was merely adjusted).
bool from_the_future(system_clock::time_point at, system_clock::time_point now) {
    return at > now + std::chrono::minutes(1);
}

} // namespace

std::string backup_file_name(system_clock::time_point at) {
    std::time_t t = system_clock::to_time_t(at);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    return std::string(prefix) + buf + std::string(suffix);
}

std::vector<fs::path> list_backups(const fs::path& dir, system_clock::time_point now) {
    std::vector<std::tuple<bool, system_clock::time_point, fs::path>> found; // present, at, file
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec))
            if (auto at = time_of(it->path().filename().string()))
                found.emplace_back(!from_the_future(*at, now), *at, it->path());
    std::sort(found.begin(), found.end());
    std::vector<fs::path> out;
    for (auto& f : found)
        out.push_back(std::move(std::get<2>(f)));
    return out;
}

std::size_t prune_backups(const fs::path& dir, std::size_t keep, system_clock::time_point now) {
    auto all = list_backups(dir, now);
    std::size_t removed = 0;
    for (std::size_t i = 0; i + keep < all.size(); ++i) {
        std::error_code ec;
        if (fs::remove(all[i], ec))
            ++removed;
    }
    return removed;
}

std::size_t remove_unfinished_backups(const fs::path& dir) {
    std::vector<fs::path> left;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        auto name = it->path().filename().string();
        if (it->is_regular_file(ec) && name.starts_with(prefix) &&
            name.find(".db.partial") != std::string::npos)
            left.push_back(it->path());
    }
    std::size_t removed = 0;
    for (const auto& p : left)
        removed += fs::remove(p, ec) ? 1 : 0;
    return removed;
}

std::optional<system_clock::time_point> newest_backup(const fs::path& dir,
                                                      system_clock::time_point now) {
    auto all = list_backups(dir, now);
    if (all.empty())
        return std::nullopt;
    auto at = time_of(all.back().filename().string());
    if (at && from_the_future(*at, now))
        return std::nullopt; // only copies from the future: as if there were none
    return at;
}

std::chrono::seconds next_backup_in(std::optional<system_clock::time_point> newest,
                                    system_clock::time_point now, std::chrono::seconds interval,
                                    std::chrono::seconds first_delay) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    auto due = newest ? duration_cast<seconds>(*newest + interval - now) : first_delay;
    return std::clamp(due, std::min(first_delay, interval), interval);
}

} // namespace fieldsync::server
