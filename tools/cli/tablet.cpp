// fieldsync tablet --state DIR …: a tablet simulator over the sync client library
// (sync/client), the same code an app embeds. Each invocation opens the tablet's state folder,
// does one thing, and closes it, so scripts can drive several tablets side by side.
#include "cli/commands.hpp"
#include "sync/client/sync_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace fieldsync::cli {

namespace json = boost::json;

namespace {

const char* usage_text =
    "usage: fieldsync tablet --state DIR <command>\n"
    "  enrol --server URL --code CODE [--pin FINGERPRINT] [--ca FILE] [--label TEXT]\n"
    "  record COLLECTION [--json FILE] [--field NAME=VALUE ...]   a new record\n"
    "  edit ID [--json FILE] [--field NAME=VALUE ...]             change a record\n"
    "  delete ID\n"
    "  list [--collection NAME]     records with their status\n"
    "  sync                         push, then pull (a progress bar on a terminal)\n"
    "  status [--json]              counts: pending, synced, rejected, conflicts, returned\n"
    "VALUE is text for text, code, date and choice fields; JSON otherwise (5, true, [..]).\n";

// The fields of a record/edit command: --json FILE first, then each --field on top.
// A --field value: text for the record type's text-like fields (codes with leading digits stay
// text), JSON otherwise when it parses.
json::value field_value(std::string_view collection, const std::string& name,
                        const std::string& text) {
    const auto* coll = catalog::builtin().find(collection);
    const auto* decl = coll ? coll->field(name) : nullptr;
    if (decl) {
        switch (decl->type) {
        case field_type::integer:
        case field_type::number:
        case field_type::boolean:
        case field_type::enum_set:
            break;
        default:
            return json::value(text);
        }
    }
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    return ec ? json::value(text) : v;
}

std::optional<json::object> fields_from(std::string_view collection, const args& a,
                                        std::string* why) {
    json::object fields;
    if (auto file = option(a, "--json"); !file.empty()) {
        std::ifstream in(file);
        std::stringstream ss;
        ss << in.rdbuf();
        boost::system::error_code ec;
        auto v = json::parse(ss.str(), ec);
        if (!in || ec || !v.is_object()) {
            *why = file + " is not a JSON object";
            return std::nullopt;
        }
        fields = v.as_object();
    }
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
        if (a[i] != "--field")
            continue;
        const std::string& kv = a[i + 1];
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) {
            *why = "--field wants NAME=VALUE, got " + kv;
            return std::nullopt;
        }
        fields[kv.substr(0, eq)] = field_value(collection, kv.substr(0, eq), kv.substr(eq + 1));
    }
    if (fields.empty()) {
        *why = "no fields: give --json FILE or --field NAME=VALUE";
        return std::nullopt;
    }
    return fields;
}

client::options tablet_options(const std::string& state) {
    client::options o;
    o.state_dir = state;
    return o;
}

std::unique_ptr<client::sync_client> open_tablet(const std::string& state) {
    std::string why;
    auto c = client::sync_client::open(tablet_options(state), &why);
    if (!c) {
        std::cerr << "fieldsync tablet: " << why << "\n";
        return nullptr;
    }
    return std::move(*c);
}

int enrol(const std::string& state, const args& a) {
    auto server = option(a, "--server");
    auto code = option(a, "--code");
    if (server.empty() || code.empty()) {
        std::cerr << usage_text;
        return 2;
    }
    auto opts = tablet_options(state);
    opts.ca_file = option(a, "--ca");
    std::string why;
    auto c = client::sync_client::enrol(opts, server, code, option(a, "--pin"),
                                        option(a, "--label"), &why);
    if (!c) {
        std::cerr << "fieldsync tablet: enrolment failed: " << why << "\n";
        return 1;
    }
    const auto& id = (*c)->identity();
    std::cout << "enrolled " << id.device << " for " << id.user << " (" << id.role << ", township "
              << id.township << ")\n";
    return 0;
}

int sync_now(client::sync_client& c) {
    bool tty = isatty(STDOUT_FILENO) != 0;
    auto rep = c.sync([&](const client::sync_progress& p) {
        const char* phase = p.phase == client::sync_phase::push ? "push" : "pull";
        if (tty) {
            std::string bar;
            if (p.total > 0) {
                std::size_t filled = 30 * std::min(p.done, p.total) / p.total;
                bar = "[" + std::string(filled, '#') + std::string(30 - filled, ' ') + "] ";
            }
            std::cout << "\r" << phase << " " << bar << p.done;
            if (p.total > 0)
                std::cout << "/" << p.total;
            if (p.retry > 0)
                std::cout << " (retry " << p.retry << ")";
            std::cout << "      " << std::flush;
        } else {
            std::cout << phase << " " << p.done;
            if (p.total > 0)
                std::cout << "/" << p.total;
            if (p.retry > 0)
                std::cout << " retry " << p.retry;
            std::cout << "\n";
        }
    });
    if (tty)
        std::cout << "\n";
    std::cout << "sync " << client::to_string(rep.outcome) << ": pushed " << rep.pushed
              << " (applied " << rep.applied << ", rejected " << rep.rejected << ", conflicts "
              << rep.conflicts << ", restamped " << rep.restamped << "), pulled " << rep.pulled
              << " in " << rep.pages << " pages";
    if (rep.resets)
        std::cout << ", reset (" << rep.reset_reason << ")";
    if (rep.retries)
        std::cout << ", " << rep.retries << " retries";
    std::cout << "\n";
    if (rep.restamped)
        std::cout << "this tablet's clock was wrong: the server corrected " << rep.restamped
                  << " clock(s); offset now " << rep.clock_offset_ms << " ms\n";
    if (rep.outcome == client::sync_outcome::revoked)
        std::cout << "this tablet was revoked: its local data was deleted; enrol again\n";
    if (rep.outcome != client::sync_outcome::complete) {
        std::cerr << "fieldsync tablet: " << rep.error << "\n";
        return 1;
    }
    return 0;
}

int list(client::sync_client& c, const args& a) {
    for (const auto& r : c.records(option(a, "--collection"))) {
        std::cout << r.id.to_string() << "  " << r.collection << "  " << to_string(r.state);
        if (!r.code.empty() || !r.message.empty())
            std::cout << "  " << r.code << (r.field.empty() ? "" : " " + r.field) << " "
                      << r.message;
        std::cout << "\n    " << json::serialize(r.fields) << "\n";
    }
    return 0;
}

int status(client::sync_client& c, const args& a) {
    auto n = c.counts();
    const auto& id = c.identity();
    if (flag(a, "--json")) {
        std::cout << json::serialize(json::object{{"device", id.device},
                                                  {"user", id.user},
                                                  {"server", id.server},
                                                  {"enrolled", c.enrolled()},
                                                  {"records", n.records},
                                                  {"pending", n.pending},
                                                  {"synced", n.synced},
                                                  {"rejected", n.rejected},
                                                  {"conflicts", n.conflicts},
                                                  {"returned", n.returned},
                                                  {"outbox", n.outbox}})
                  << "\n";
        return 0;
    }
    std::cout << "tablet " << id.device << " (" << id.user << ") on " << id.server << "\n"
              << "records   " << n.records << "\n"
              << "pending   " << n.pending << " (" << n.outbox << " unsent changes)\n"
              << "synced    " << n.synced << "\n"
              << "rejected  " << n.rejected << "\n"
              << "conflicts " << n.conflicts << "\n"
              << "returned  " << n.returned << "\n";
    return 0;
}

} // namespace

int cmd_tablet(const args& all) {
    auto state = option(all, "--state");
    args a;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i] == "--state") {
            ++i;
            continue;
        }
        a.push_back(all[i]);
    }
    if (state.empty() || a.empty() || a[0] == "--help" || a[0] == "help") {
        std::cerr << usage_text;
        return state.empty() || a.empty() ? 2 : 0;
    }
    std::string sub = a[0];
    args rest(a.begin() + 1, a.end());
    if (sub == "enrol" || sub == "enroll")
        return enrol(state, rest);
    auto c = open_tablet(state);
    if (!c)
        return 1;
    if (sub == "sync")
        return sync_now(*c);
    if (sub == "list")
        return list(*c, rest);
    if (sub == "status")
        return status(*c, rest);
    if (sub == "record" || sub == "edit") {
        if (rest.empty()) {
            std::cerr << usage_text;
            return 2;
        }
        std::string why;
        std::string collection = rest[0];
        if (sub == "edit")
            if (auto id = uuid::parse(rest[0]))
                if (auto r = c->local().get(*id))
                    collection = r->collection;
        auto fields = fields_from(collection, rest, &why);
        if (!fields) {
            std::cerr << "fieldsync tablet: " << why << "\n";
            return 2;
        }
        if (sub == "record") {
            auto id = c->create(rest[0], *fields);
            if (!id) {
                std::cerr << "fieldsync tablet: " << id.error().message() << "\n";
                return 1;
            }
            std::cout << id->to_string() << "\n";
            return 0;
        }
        auto id = uuid::parse(rest[0]);
        auto r = id ? c->update(*id, *fields) : result<void>(errc::invalid_argument);
        if (!r) {
            std::cerr << "fieldsync tablet: " << r.error().message() << "\n";
            return 1;
        }
        return 0;
    }
    if (sub == "delete" && !rest.empty()) {
        auto id = uuid::parse(rest[0]);
        auto r = id ? c->remove(*id) : result<void>(errc::invalid_argument);
        if (!r) {
            std::cerr << "fieldsync tablet: " << r.error().message() << "\n";
            return 1;
        }
        return 0;
    }
    std::cerr << usage_text;
    return 2;
}

} // namespace fieldsync::cli
