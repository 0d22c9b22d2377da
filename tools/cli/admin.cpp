// fieldsync users | tablets | divisions | backup: administration of a district database.
//
// These commands open DIR/fieldsync.db directly rather than calling fieldsyncd's admin API: they
// work whether or not the server runs (first setup, a server that will not start, recovery), and
// need no admin token on the server machine. SQLite makes this safe next to a running server: WAL
// lets readers proceed, each change here is one short IMMEDIATE transaction, and the busy timeout
// (10 s, sync/sqlite.cpp) waits for the server's writer to finish its group commit. The server
// reads users and tablets per request, so a revocation takes effect on the tablet's next request.
#include "cli/commands.hpp"
#include "server/auth.hpp"
#include "sync/engine.hpp"
#include "sync/sqlite.hpp"
#include "sync/storage_check.hpp"

#include <qrencode.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string_view>

namespace fieldsync::cli {

namespace fs = std::filesystem;

namespace {

std::int64_t now_ms() {
    return system_wall_ms();
}

std::string when(std::int64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    std::ostringstream out;
    out << std::put_time(&tm, "%Y-%m-%d %H:%M");
    return out.str();
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
        if (ch == ',') {
            if (!cur.empty())
                out.push_back(cur);
            cur.clear();
        } else if (ch != ' ') {
            cur += ch;
        }
    }
    if (!cur.empty())
        out.push_back(cur);
    return out;
}

int usage(const char* usage_line) {
    std::cerr << "usage: fieldsync " << usage_line << "\n";
    return 2;
}

// A subcommand of users, tablets or divisions, and the district database opened for it.
struct admin_command {
    std::string sub; // a[0], one of the command's subcommands
    sql::connection db;
};

// Checks the subcommand a[0] against `subs`, then opens the district database for
// administration, upgrading it first (a fresh `init`ed folder has no user tables until migration
// 0002 runs). Nothing, once it has said why, for an unknown subcommand, no --data, no database or
// one written by a newer fieldsync: the command exits with 2.
std::optional<admin_command> open_admin(const args& a, const char* usage_line,
                                        std::initializer_list<std::string_view> subs) {
    std::string sub = a.empty() ? "" : a[0];
    if (std::find(subs.begin(), subs.end(), sub) == subs.end()) {
        usage(usage_line);
        return std::nullopt;
    }
    auto dir = option(a, "--data");
    if (dir.empty()) {
        usage(usage_line);
        return std::nullopt;
    }
    if (!fs::exists(database_path(dir))) {
        std::cerr << "fieldsync: no database in " << dir << " (run fieldsync init first)\n";
        return std::nullopt;
    }
    sql::connection c(database_path(dir), sql::open_mode::read_write);
    if (!migrate_server_database(c)) {
        std::cerr << "fieldsync: the database was written by a newer fieldsync\n";
        return std::nullopt;
    }
    return admin_command{std::move(sub), std::move(c)};
}

int report(const auth::failure& f) {
    std::cerr << "fieldsync: " << f.message << " (" << f.wire_code << ")\n";
    return 1;
}

void print_user(const auth::user& u) {
    std::cout << std::left << std::setw(20) << u.username << std::setw(16)
              << auth::to_string(u.role) << std::setw(11)
              << (u.township.empty() ? "(district)" : u.township);
    std::string v;
    for (const auto& x : u.villages)
        v += (v.empty() ? "" : ",") + x;
    std::cout << std::setw(28) << (v.empty() ? "-" : v) << (u.disabled ? "disabled" : "active")
              << "\n";
}

// Two QR rows per terminal line with half blocks. Light modules are drawn (the terminal's dark
// background shows the dark ones), with the four-module quiet zone scanners need.
void print_qr(const std::string& text) {
    std::unique_ptr<QRcode, void (*)(QRcode*)> qr(
        QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1), QRcode_free);
    if (!qr) {
        std::cerr << "(could not draw a QR code)\n";
        return;
    }
    const int n = qr->width, quiet = 4, size = n + 2 * quiet;
    auto dark = [&](int x, int y) {
        x -= quiet;
        y -= quiet;
        if (x < 0 || y < 0 || x >= n || y >= n)
            return false;
        return (qr->data[y * n + x] & 1) != 0;
    };
    for (int y = 0; y < size; y += 2) {
        std::string line;
        for (int x = 0; x < size; ++x) {
            bool top = !dark(x, y), bottom = y + 1 < size && !dark(x, y + 1);
            line += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
        }
        std::cout << line << "\n";
    }
}

} // namespace

int cmd_users(const args& a) {
    const char* usage_line =
        "users add --data DIR --username U --role field_worker|township_head|district_admin\n"
        "                [--township CODE] [--villages CODE,CODE] [--password-stdin]\n"
        "       fieldsync users list --data DIR\n"
        "       fieldsync users scope --data DIR --username U --township CODE [--villages …]\n"
        "       fieldsync users disable --data DIR --username U [--enable]";
    auto cmd = open_admin(a, usage_line, {"add", "list", "scope", "disable"});
    if (!cmd)
        return 2;
    auto& [sub, c] = *cmd;
    if (sub == "list") {
        for (const auto& u : auth::list_users(c))
            print_user(u);
        return 0;
    }
    std::string username = option(a, "--username");
    if (username.empty())
        return usage(usage_line);
    sql::transaction tx(c);
    if (sub == "add") {
        auto role = auth::parse_role(option(a, "--role"));
        if (!role) {
            std::cerr
                << "fieldsync: --role must be field_worker, township_head or district_admin\n";
            return 2;
        }
        std::string password;
        if (flag(a, "--password-stdin"))
            std::getline(std::cin, password); // never a flag: it would show in `ps`
        auth::user u;
        u.username = username;
        u.role = *role;
        u.township = option(a, "--township");
        u.villages = split_list(option(a, "--villages"));
        auto r = auth::add_user(c, u, password, now_ms());
        if (!r)
            return report(r.error);
        tx.commit();
        print_user(*r.value);
        return 0;
    }
    if (sub == "scope") {
        auto r = auth::set_scope(c, username, option(a, "--township"),
                                 split_list(option(a, "--villages")), now_ms());
        if (!r)
            return report(r.error);
        tx.commit();
        print_user(*r.value);
        std::cout << "(the user's tablets start their next pull from scratch)\n";
        return 0;
    }
    auto r = auth::set_disabled(c, username, !flag(a, "--enable"), now_ms());
    if (!r)
        return report(r.error);
    tx.commit();
    print_user(*r.value);
    return 0;
}

int cmd_tablets(const args& a) {
    const char* usage_line =
        "tablets code --data DIR --username U [--ttl-minutes 30] [--server URL] [--no-qr]\n"
        "       fieldsync tablets list --data DIR [--username U]\n"
        "       fieldsync tablets revoke --data DIR --device ID";
    auto cmd = open_admin(a, usage_line, {"code", "list", "revoke"});
    if (!cmd)
        return 2;
    auto& [sub, c] = *cmd;
    if (sub == "list") {
        for (const auto& d : auth::list_devices(c, option(a, "--username"))) {
            std::cout << std::left << std::setw(20) << d.device << std::setw(20) << d.username
                      << std::setw(18) << when(d.enrolled_ms) << std::setw(10)
                      << ("#" + std::to_string(d.last_seq))
                      << (d.revoked_ms ? "revoked " + when(*d.revoked_ms) : std::string("active"))
                      << (d.label.empty() ? "" : "  " + d.label) << "\n";
        }
        return 0;
    }
    sql::transaction tx(c);
    if (sub == "revoke") {
        auto device = option(a, "--device");
        if (device.empty())
            return usage(usage_line);
        auto r = auth::revoke_device(c, device, now_ms());
        if (!r)
            return report(r.error);
        tx.commit();
        std::cout << "revoked " << device << " (" << r.value->username
                  << "): its next request is refused with device_revoked and it wipes its data\n";
        return 0;
    }
    auto username = option(a, "--username");
    if (username.empty())
        return usage(usage_line);
    std::int64_t minutes = 30;
    if (auto t = option(a, "--ttl-minutes"); !t.empty())
        minutes = std::stoll(t);
    auto r = auth::create_enrolment_code(c, username, minutes * 60000, now_ms());
    if (!r)
        return report(r.error);
    tx.commit();
    const auto& code = *r.value;
    std::cout << "enrolment code for " << username << ": " << code.code << "\n"
              << "valid once, until " << when(code.expires_ms) << "\n";
    if (!flag(a, "--no-qr")) {
        auto server = option(a, "--server");
        // The tablet app scans this: the code and, when given, where to send it.
        std::string text = "fieldsync:enrol?code=" + code.code;
        if (!server.empty())
            text += "&server=" + server;
        print_qr(text);
    }
    return 0;
}

int cmd_divisions(const args& a) {
    const char* usage_line = "divisions add --data DIR --code CODE --name NAME\n"
                             "       fieldsync divisions list --data DIR";
    auto cmd = open_admin(a, usage_line, {"add", "list"});
    if (!cmd)
        return 2;
    auto& [sub, c] = *cmd;
    if (sub == "list") {
        auto s = c.cached("SELECT code, name FROM divisions ORDER BY code");
        while (s->step())
            std::cout << s->text(0) << "  " << s->text(1) << "\n";
        return 0;
    }
    auto code = option(a, "--code"), name = option(a, "--name");
    if ((code.size() != 6 && code.size() != 9 && code.size() != 12) || name.empty()) {
        std::cerr << "fieldsync: --code must have 6 (district), 9 (township) or 12 (village) "
                     "digits, and --name is required\n";
        return 2;
    }
    sql::transaction tx(c);
    engine::put_division(c, code, name);
    tx.commit();
    std::cout << code << "  " << name << "\n";
    return 0;
}

int cmd_backup(const args& a) {
    auto dir = option(a, "--data"), out = option(a, "--out");
    if (dir.empty() || out.empty()) {
        std::cerr << "usage: fieldsync backup --data DIR --out FILE\n";
        return 2;
    }
    if (!fs::exists(database_path(dir))) {
        std::cerr << "fieldsync: no database in " << dir << "\n";
        return 1;
    }
    std::string why;
    auto seq = backup_database(database_path(dir), out, &why);
    if (!seq) {
        std::cerr << "fieldsync: " << why << "\n";
        return 1;
    }
    std::cout << "backup written: " << out << " (" << fs::file_size(out) << " bytes, last change #"
              << *seq << ", integrity ok)\n";
    return 0;
}

} // namespace fieldsync::cli
