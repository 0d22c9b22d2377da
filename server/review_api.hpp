// The review and rollups part of the HTTP API (docs/protocol.md, "Review and rollups"): township
// heads review their township, district admins the district. Transport-independent like api.hpp:
// it is called on a reader thread with the caller authenticated, answers reads from that reader
// connection and hands writes to the writer thread.
//
// Thread-safety: handle() may run on any reader thread concurrently; the reply callback runs on
// the reader or the writer thread.
#pragma once

#include "server/api.hpp"
#include "server/auth.hpp"
#include "sync/review.hpp"
#include "sync/rollups.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::server {

struct review_call {
    fieldsync::server::method method = method::other;
    std::string_view path;  // without the query
    std::string_view query; // after '?', undecoded
    const boost::json::object& body;
    const auth::identity& id;
};

class review_api {
public:
    using reply_fn = std::function<void(http_response)>;

    // `monthly` is the server's rollups observer (one instance, so that its opening_pending()
    // also knows of months a report began to open). Months not open yet are counted its
    // open_slice_persons persons per writer job (0: at once), each job weighing `slice_weight`
    // (a whole writer group).
    review_api(engine& eng, writer& w, rollups& monthly, std::size_t slice_weight = 1);

    // True for the paths this part of the API serves.
    static bool serves(std::string_view path);

    // The route label for logs and metrics: fixed text, no ids or other user data.
    static std::string label_for(std::string_view path);

    // Answers the call through `reply` (at once, or after the writer committed).
    void handle(const review_call& call, sql::connection& c, reply_fn reply);

private:
    // GET /v1/review/overview: one township's month at a glance (computed on `c`).
    http_response overview(sql::connection& c, const principal& who, const std::string& township,
                           const std::string& month) const;
    // GET /v1/rollups/trend: monthly totals (and, for admins, townships) over `months`.
    http_response trend(sql::connection& c, const std::vector<std::string>& months, bool admin,
                        const std::string& township) const;
    // Why a month's figures may not be computed on request now (nullopt: they may).
    static std::optional<std::string> not_openable(std::string_view month, std::int64_t now_ms);
    // Answers with `compute` once the months' person-based figures are maintained (400 for a
    // month not open that not_openable refuses): on this
    // reader if they are, else on the writer right after opening them (once per month, ever),
    // a slice of persons per writer job so that pushes go on between the slices.
    void with_open_months(sql::connection& c, std::vector<std::string> months,
                          std::function<http_response(sql::connection&)> compute,
                          const reply_fn& reply);

    engine& engine_;
    writer& writer_;
    review office_;
    rollups& monthly_; // opens months for approvals and reports
    std::size_t slice_weight_;
};

} // namespace fieldsync::server
