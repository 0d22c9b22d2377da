#include "server/server.hpp"

#include "schema/catalog.hpp"
#include "server/api.hpp"
#include "server/backups.hpp"
#include "server/metrics.hpp"
#include "server/tls.hpp"
#include "sync/engine.hpp"
#include "sync/rollups.hpp"
#include "sync/storage_check.hpp"
#include "sync/writer.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace fieldsync::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

class session;

// What sessions share: the API, the TLS context, the settings and the registry used at shutdown.
struct shared_state {
    shared_state(const config& c, metrics& m, asio::io_context& io) : cfg(c), stats(m), ioc(io) {}
    const config& cfg;
    metrics& stats;
    asio::io_context& ioc;
    api* app = nullptr; // set once before serving
    std::mutex mutex;
    std::unordered_map<const session*, std::weak_ptr<session>> sessions; // guarded by mutex
    std::atomic<std::uint64_t> next_request{0};
    std::uint32_t request_prefix = 0;

    std::string new_request_id() {
        char buf[24];
        std::snprintf(buf, sizeof buf, "%08x%08llx", request_prefix,
                      static_cast<unsigned long long>(++next_request));
        return buf;
    }
};

std::chrono::milliseconds ms(std::int64_t v) {
    return std::chrono::milliseconds(v);
}

// One client connection: TLS handshake, then HTTP/1.1 requests read one after another while at
// most `max_pipeline` are unanswered; responses go out in request order. Everything runs on
// the connection's strand; API completions are posted back to it.
class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket&& socket, ssl::context& ctx, shared_state& st)
        : stream_(std::move(socket), ctx), st_(st) {
        st_.stats.connection_opened();
        beast::error_code ec;
        auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
        if (!ec)
            peer_ = peer.address().to_string();
    }
    ~session() {
        st_.stats.connection_closed();
        std::lock_guard lock(st_.mutex);
        st_.sessions.erase(this);
    }

    void run() {
        {
            std::lock_guard lock(st_.mutex);
            st_.sessions[this] = weak_from_this();
        }
        asio::dispatch(stream_.get_executor(),
                       beast::bind_front_handler(&session::on_run, shared_from_this()));
    }

    // Graceful shutdown: answer what was read, read nothing more, close.
    void stop() {
        asio::post(stream_.get_executor(),
                   beast::bind_front_handler(&session::on_stop, shared_from_this()));
    }

private:
    struct pending {
        http_request meta;
        std::optional<http::response<http::string_body>> res;
        bool keep_alive = true;
        std::shared_ptr<void> work; // keeps the io_context running while the API works
    };

    void on_run() {
        beast::get_lowest_layer(stream_).expires_after(ms(st_.cfg.header_timeout_ms));
        stream_.async_handshake(
            ssl::stream_base::server,
            beast::bind_front_handler(&session::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec) {
        if (ec)
            return; // failed or timed out handshakes just close
        handshaken_ = true;
        if (stopping_)
            return close_now();
        do_read();
    }

    void do_read() {
        if (stopping_ || closing_) {
            if (pending_.empty() && !writing_)
                do_shutdown();
            return;
        }
        if (pending_.size() >= st_.cfg.max_pipeline) {
            read_paused_ = true; // resumed by on_write
            return;
        }
        parser_.emplace();
        parser_->body_limit(st_.cfg.max_body_bytes);
        parser_->header_limit(static_cast<std::uint32_t>(st_.cfg.max_header_bytes));
        reading_ = true;
        beast::get_lowest_layer(stream_).expires_after(ms(st_.cfg.header_timeout_ms));
        http::async_read_header(
            stream_, buffer_, *parser_,
            beast::bind_front_handler(&session::on_read_header, shared_from_this()));
    }

    void on_read_header(beast::error_code ec, std::size_t) {
        if (ec)
            return on_read_error(ec);
        if (parser_->is_done())
            return on_request();
        beast::get_lowest_layer(stream_).expires_after(ms(st_.cfg.body_timeout_ms));
        const auto& h = parser_->get();
        if (beast::iequals(h[http::field::expect], "100-continue") && !writing_ &&
            pending_.empty()) {
            // curl and others wait for this before sending a body.
            writing_ = true;
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            asio::async_write(stream_, asio::buffer(cont.data(), cont.size()),
                              [self = shared_from_this()](beast::error_code wec, std::size_t) {
                                  self->writing_ = false;
                                  if (wec)
                                      return self->on_read_error(wec);
                                  self->read_body();
                              });
            return;
        }
        read_body();
    }

    void read_body() {
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&session::on_read_body, shared_from_this()));
    }

    void on_read_body(beast::error_code ec, std::size_t) {
        if (ec)
            return on_read_error(ec);
        on_request();
    }

    void on_read_error(beast::error_code ec) {
        reading_ = false;
        closing_ = true;
        auto reject = [&](unsigned status, std::string_view code, std::string_view message) {
            auto request_id = st_.new_request_id();
            st_.app->record_transport_error(request_id, status, code);
            auto p = std::make_shared<pending>();
            p->meta.request_id = request_id;
            p->keep_alive = false;
            p->res = to_beast(error_response(status, code, message), request_id, false);
            pending_.push_back(std::move(p));
            unread_input_ = true;
            do_write();
        };
        if (ec == http::error::body_limit)
            return reject(413, "payload_too_large",
                          "the body is larger than " + std::to_string(st_.cfg.max_body_bytes) +
                              " bytes; send fewer mutations per push");
        if (ec == http::error::header_limit)
            return reject(431, "header_too_large", "the request headers are too large");
        if (ec == beast::error::timeout) {
            // A slow or idle client: close without answering (it is not reading anyway).
            if (parser_ && parser_->got_some())
                st_.app->record_transport_error(st_.new_request_id(), 408, "timeout");
            return close_now();
        }
        if (ec == http::error::end_of_stream || ec == ssl::error::stream_truncated ||
            ec == asio::error::eof || ec == asio::error::operation_aborted ||
            ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
            ec.category() == asio::error::get_ssl_category()) {
            // The client went away (or we cancelled at shutdown): finish what was asked.
            if (pending_.empty() && !writing_)
                return close_now();
            return;
        }
        // Anything else is a malformed request the parser refused.
        reject(400, "bad_request", "malformed HTTP request: " + ec.message());
    }

    void on_request() {
        reading_ = false;
        auto req = parser_->release();
        auto p = std::make_shared<pending>();
        p->keep_alive = req.keep_alive();
        p->meta.request_id = st_.new_request_id();
        p->meta.client_address = peer_;
        p->meta.started = std::chrono::steady_clock::now();
        p->meta.method = req.method() == http::verb::get    ? method::get
                         : req.method() == http::verb::post ? method::post
                                                            : method::other;
        p->meta.target = std::string(req.target());
        p->work = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
            st_.ioc.get_executor());
        pending_.push_back(p);
        if (!p->keep_alive)
            closing_ = true;

        http_request r = p->meta;
        r.content_type = std::string(req[http::field::content_type]);
        r.authorization = std::string(req[http::field::authorization]);
        r.cookie = std::string(req[http::field::cookie]);
        r.csrf_token = std::string(req["X-CSRF-Token"]);
        r.origin = std::string(req[http::field::origin]);
        r.host = std::string(req[http::field::host]);
        r.if_none_match = std::string(req[http::field::if_none_match]);
        r.accept_encoding = std::string(req[http::field::accept_encoding]);
        r.body = std::move(req.body());
        st_.app->handle(
            std::move(r), [self = shared_from_this(), p](http_response res, request_facts facts) {
                asio::post(self->stream_.get_executor(),
                           [self, p, res = std::move(res), facts = std::move(facts)]() mutable {
                               self->st_.app->record(p->meta, res, facts);
                               p->res = to_beast(std::move(res), p->meta.request_id, p->keep_alive);
                               p->work.reset();
                               self->do_write();
                           });
            });
        do_read(); // pipelining: read the next request while this one is handled
    }

    static http::response<http::string_body>
    to_beast(http_response res, const std::string& request_id, bool keep_alive) {
        http::response<http::string_body> r{static_cast<http::status>(res.status), 11};
        r.set(http::field::server, "fieldsyncd");
        r.set(http::field::content_type, res.content_type);
        r.set(http::field::cache_control, "no-store");
        r.set("X-Content-Type-Options", "nosniff");
        r.set("X-Request-Id", request_id);
        for (const auto& [k, v] : res.headers) // a header given twice replaces, but cookies add up
            if (beast::iequals(k, "Set-Cookie"))
                r.insert(k, v);
            else
                r.set(k, v);
        r.keep_alive(keep_alive);
        r.body() = std::move(res.body);
        r.prepare_payload();
        return r;
    }

    void do_write() {
        if (writing_ || pending_.empty() || !pending_.front()->res)
            return;
        writing_ = true;
        beast::get_lowest_layer(stream_).expires_after(ms(st_.cfg.write_timeout_ms));
        http::async_write(stream_, *pending_.front()->res,
                          beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
        writing_ = false;
        if (ec)
            return close_now();
        bool keep_alive = pending_.front()->keep_alive;
        pending_.pop_front();
        if (!keep_alive) {
            closing_ = true;
            if (pending_.empty() && !reading_)
                return do_shutdown();
        }
        if (pending_.empty() && (stopping_ || closing_) && !reading_)
            return do_shutdown();
        if (read_paused_ && !reading_) {
            read_paused_ = false;
            do_read();
        }
        do_write();
    }

    void on_stop() {
        stopping_ = true;
        if (!handshaken_ || (reading_ && pending_.empty() && !writing_))
            return close_now(); // idle keep-alive connection or handshake in progress
        if (reading_)
            beast::get_lowest_layer(stream_).cancel(); // answer what is pending, then close
    }

    void do_shutdown() {
        if (shut_)
            return;
        shut_ = true;
        if (unread_input_)
            return linger();
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
        stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
            // stream_truncated and friends are a normal end here.
            self->close_now();
        });
    }

    // After refusing a request whose body is still coming (413, 431, 400) the client may still be
    // writing it; closing at once would reset the connection, and the reset can destroy the answer
    // in the client's receive buffer before it reads it (a tablet would see "connection reset",
    // not why it was refused). So: stop sending (FIN), then read and drop what still arrives for
    // up to 2 s and 16 MiB, as web servers do ("lingering close"), then close.
    void linger() {
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
        buffer_.clear();
        drain(0);
    }

    void drain(std::size_t dropped) {
        beast::get_lowest_layer(stream_).async_read_some(
            buffer_.prepare(16384),
            [self = shared_from_this(), dropped](beast::error_code ec, std::size_t n) {
                if (ec || dropped + n > (16u << 20))
                    return self->close_now(); // the client closed, or 2 s or 16 MiB passed
                self->drain(dropped + n);
            });
    }

    void close_now() {
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(stream_).close();
    }

    beast::ssl_stream<beast::tcp_stream> stream_;
    shared_state& st_;
    std::string peer_; // the client's IP address, for throttling guessed secrets
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::deque<std::shared_ptr<pending>> pending_; // in request order
    bool handshaken_ = false, reading_ = false, writing_ = false, read_paused_ = false;
    bool closing_ = false, stopping_ = false, shut_ = false;
    bool unread_input_ = false; // a refused request's body may still be arriving (linger)
};

tcp::endpoint parse_endpoint(const std::string& text) {
    std::string host, port;
    if (!text.empty() && text[0] == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            throw std::runtime_error("listen address must look like 127.0.0.1:8443 or [::1]:8443");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos)
            throw std::runtime_error("listen address must look like 127.0.0.1:8443");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    beast::error_code ec;
    auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec)
        throw std::runtime_error("listen address \"" + host + "\" is not an IP address");
    int p = 0;
    try {
        p = std::stoi(port);
    } catch (const std::exception&) {
        p = -1;
    }
    if (p < 0 || p > 65535)
        throw std::runtime_error("listen port \"" + port + "\" is not a port number");
    return {addr, static_cast<unsigned short>(p)};
}

catalog load_catalog(const config& cfg) {
    catalog cat = catalog::builtin();
    if (!cfg.collections_file.empty()) {
        std::ifstream in(cfg.collections_file);
        if (!in)
            throw std::runtime_error("cannot read collections file " + cfg.collections_file);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::string err;
        if (!cat.add(text, &err))
            throw std::runtime_error(cfg.collections_file + ": " + err);
    }
    return cat;
}

sql::connection open_database(const std::string& path) {
    sql::connection c(path, sql::open_mode::read_write_create);
    if (!migrate_server_database(c))
        throw std::runtime_error(path + " was written by a newer fieldsync; refusing to serve it");
    return c;
}

} // namespace

struct server::impl {
    explicit impl(config c)
        : cfg(std::move(c)), cat(load_catalog(cfg)),
          db_path((fs::path(cfg.data_dir) / "fieldsync.db").string()),
          monthly(rollup_config{.open_slice_persons = cfg.month_slice_persons}),
          ssl_ctx(ssl::context::tls_server), state(cfg, stats, ioc),
          ioc(static_cast<int>(cfg.threads)), acceptor(ioc), signals(ioc), drain_timer(ioc),
          months_timer(asio::make_strand(ioc)), sweep_timer(months_timer.get_executor()),
          backup_timer(months_timer.get_executor()) {}

    config cfg;
    catalog cat;
    std::string db_path;
    tls_files tls;
    std::string fingerprint;
    metrics stats;
    // Monthly figures maintained by the writer in step with the records (before eng: outlives it).
    rollups monthly;
    std::unique_ptr<engine> eng;
    std::unique_ptr<writer> wr;
    std::unique_ptr<reader_pool> readers;
    std::unique_ptr<api> app;
    // Declared before the io_context so that they outlive it: sessions still referenced by
    // handlers that never ran (a shutdown past its grace period) are destroyed with it.
    ssl::context ssl_ctx;
    shared_state state;
    asio::io_context ioc;
    tcp::acceptor acceptor;
    asio::signal_set signals;
    asio::steady_timer drain_timer;
    asio::steady_timer months_timer; // on a strand of its own: tend_months, begin_stop
    asio::steady_timer sweep_timer;  // on the same strand: sweep_pull_pages
    asio::steady_timer backup_timer; // on the same strand: tend_backups
    std::thread backup_thread;       // the last copy made (joined before the next, and at the end)
    std::atomic<bool> backup_cancel{false};
    std::vector<std::thread> threads;
    std::atomic<bool> stopping{false};
    bool background = false; // start() rather than run(): stop() joins the threads
    bool finished = false;
    std::chrono::steady_clock::time_point drain_deadline;

    void do_accept() {
        acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec,
                                                             tcp::socket socket) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open())
                    return;
                // Out of descriptors and the like: keep serving the connections we have.
            } else if (static_cast<std::size_t>(stats.open_connections()) >= cfg.max_connections) {
                beast::error_code ignored;
                socket.close(ignored);
            } else {
                // An answer's last TLS record must not wait for the tablet's delayed ACK (Nagle):
                // that held many pull pages back by 40 ms.
                beast::error_code ignored;
                socket.set_option(tcp::no_delay(true), ignored);
                std::make_shared<session>(std::move(socket), ssl_ctx, state)->run();
            }
            if (!stopping)
                do_accept();
        });
    }

    // Months being opened a slice of persons at a time (rollup_config::open_slice_persons). A
    // slice is a writer job of its own (the weight of a whole group), queued behind the pushes
    // already waiting; the next one follows at once if nothing else is queued, else after 100 ms,
    // so that a busy writer spends most of its time on pushes. Runs on months_timer's strand.
    void tend_months(std::chrono::milliseconds after, bool retry = false) {
        if (stopping)
            return;
        months_timer.expires_after(after);
        months_timer.async_wait([this, retry](beast::error_code ec) {
            if (ec || stopping)
                return;
            // Also set by the reports' slices (review_api shares this instance): a month one
            // of them left half counted after a failure is finished here.
            if (!retry && !monthly.opening_pending())
                return tend_months(std::chrono::seconds(1));
            wr->submit(
                [this](sql::connection& db) { monthly.open_some(db, cfg.month_slice_persons); },
                [this](boost::system::error_code failed) {
                    // A slice that was not committed (storage trouble) is tried again later.
                    asio::post(months_timer.get_executor(), [this, failed] {
                        using std::chrono::milliseconds;
                        if (failed)
                            tend_months(std::chrono::seconds(1), true);
                        else
                            tend_months(milliseconds(wr->queue_depth() == 0 ? 0 : 100));
                    });
                },
                cfg.group_mutations);
        });
    }

    // Prepared pull pages nobody asked for go within 1.5 × pull_page_keep_ms, also on an idle
    // server (up to 64 MB otherwise stayed until the next pull). On months_timer's strand.
    void sweep_pull_pages() {
        if (stopping)
            return;
        sweep_timer.expires_after(ms(std::max<std::int64_t>(cfg.pull_page_keep_ms / 2, 50)));
        sweep_timer.async_wait([this](beast::error_code ec) {
            if (ec || stopping)
                return;
            app->drop_expired_pull_pages();
            sweep_pull_pages();
        });
    }

    fs::path backup_folder() const {
        return cfg.backup_dir.empty() ? fs::path(cfg.data_dir) / "backups"
                                      : fs::path(cfg.backup_dir);
    }

    // A copy of the database every backup_interval_s (server/backups.hpp), made on a thread of
    // its own: backup_database reads one snapshot and never holds the writer up. On
    // months_timer's strand.
    void tend_backups(std::chrono::seconds after) {
        if (stopping || cfg.backup_interval_s <= 0)
            return;
        backup_timer.expires_after(after);
        backup_timer.async_wait([this](beast::error_code ec) {
            if (ec || stopping)
                return;
            if (backup_thread.joinable())
                backup_thread.join(); // it ended: its last step armed this timer
            backup_thread = std::thread([this] { make_backup(); });
        });
    }

    void make_backup() {
        const auto started = std::chrono::steady_clock::now();
        const auto dir = backup_folder();
        std::error_code ec;
        fs::create_directories(dir, ec);
        remove_unfinished_backups(dir); // what a crash or a full disk cut off before
        const auto now = std::chrono::system_clock::now();
        const auto file = dir / backup_file_name(now);
        std::string why;
        result<std::uint64_t> seq = errc::storage_failure;
        if (wr->failed()) // a WAL fsync failed: what is on the disk is not known, copy nothing
            why = "the database's storage failed (wal_sync_failed); restart fieldsyncd first";
        else
            seq = backup_database(db_path, file.string(), &why, &backup_cancel);
        json::object line;
        if (seq) {
            stats.backup_made(
                std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
            fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, ec);
            auto removed = prune_backups(dir, cfg.backup_keep);
            line = {{"level", "info"},
                    {"event", "backup"},
                    {"file", file.string()},
                    {"bytes", static_cast<std::int64_t>(fs::file_size(file, ec))},
                    {"last_change", *seq},
                    {"removed", removed}};
        } else if (!backup_cancel) {
            stats.backup_failed();
            line = {{"level", "error"},
                    {"event", "backup_failed"},
                    {"why", why},
                    {"hint", "tried again in an hour; fieldsync backup makes one by hand"}};
        }
        if (!line.empty()) {
            line["ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
            std::cerr << json::serialize(line) + "\n" << std::flush;
        }
        const std::chrono::seconds interval(cfg.backup_interval_s);
        asio::post(months_timer.get_executor(), [this, interval, ok = bool(seq)] {
            tend_backups(ok ? interval : std::min(interval, std::chrono::seconds(3600)));
        });
    }

    // Also with month_slice_persons 0: a month an earlier run left half opened is finished (at
    // once) instead of staying partial until somebody asks for it.
    void start_months() {
        asio::post(months_timer.get_executor(), [this] {
            tend_months(std::chrono::milliseconds(0));
            sweep_pull_pages();
            if (cfg.backup_interval_s > 0) {
                auto newest = newest_backup(backup_folder());
                if (newest)
                    stats.backup_found(
                        std::chrono::duration_cast<std::chrono::seconds>(newest->time_since_epoch())
                            .count());
                tend_backups(next_backup_in(newest, std::chrono::system_clock::now(),
                                            std::chrono::seconds(cfg.backup_interval_s),
                                            std::chrono::minutes(10)));
            }
        });
    }

    void begin_stop() {
        asio::post(ioc, [this] {
            if (stopping.exchange(true))
                return;
            // After `stopping`: whatever runs on the strand later arms no timer again.
            backup_cancel = true; // a copy being made stops at its next step
            asio::post(months_timer.get_executor(), [this] {
                months_timer.cancel();
                sweep_timer.cancel();
                backup_timer.cancel();
            });
            app->begin_shutdown();
            beast::error_code ignored;
            acceptor.close(ignored);
            signals.cancel();
            std::vector<std::shared_ptr<session>> live;
            {
                std::lock_guard lock(state.mutex);
                for (auto& [p, w] : state.sessions)
                    if (auto s = w.lock())
                        live.push_back(std::move(s));
            }
            for (auto& s : live)
                s->stop();
            drain_deadline = std::chrono::steady_clock::now() + ms(cfg.shutdown_grace_ms);
            check_drained();
        });
    }

    // Polls until every session has closed; past the grace period the rest are cut off.
    void check_drained() {
        bool empty;
        {
            std::lock_guard lock(state.mutex);
            empty = state.sessions.empty();
        }
        if (empty)
            return; // no more work: run() returns once in-flight handlers finish
        if (std::chrono::steady_clock::now() >= drain_deadline) {
            ioc.stop();
            return;
        }
        drain_timer.expires_after(std::chrono::milliseconds(20));
        drain_timer.async_wait([this](beast::error_code ec) {
            if (!ec)
                check_drained();
        });
    }

    void finish() {
        if (finished)
            return;
        finished = true;
        backup_cancel = true;
        if (backup_thread.joinable())
            backup_thread.join();
        // The writer commits everything queued before its thread ends; completions posted to the
        // stopped io_context are dropped with it.
        wr->stop();
        readers->stop();
    }
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
    auto& d = *impl_;
    fs::create_directories(d.cfg.data_dir);

    std::string why;
    if (d.cfg.cert_file.empty()) {
        auto t = ensure_dev_certificate(d.cfg.data_dir, &why);
        if (!t)
            throw std::runtime_error(why);
        d.tls = *t;
    } else {
        d.tls = {d.cfg.cert_file, d.cfg.key_file, false};
    }
    auto fp = certificate_fingerprint(d.tls.cert, &why);
    if (!fp)
        throw std::runtime_error(why);
    d.fingerprint = *fp;

    // TLS 1.2 and 1.3 only; for 1.2 only forward-secret AEAD suites (1.3's are all AEAD).
    d.ssl_ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    SSL_CTX* native = d.ssl_ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(native,
                                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1)
        throw std::runtime_error("no usable TLS 1.2 cipher suites");
    try {
        d.ssl_ctx.use_certificate_chain_file(d.tls.cert);
        d.ssl_ctx.use_private_key_file(d.tls.key, ssl::context::pem);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot load certificate " + d.tls.cert + " / key " + d.tls.key +
                                 ": " + e.what());
    }

    // The database: migrated once here, then owned by the writer thread.
    auto conn = open_database(d.db_path);
    engine_config ec;
    ec.max_clock_ahead_ms = d.cfg.max_clock_ahead_ms;
    d.eng = std::make_unique<engine>(d.cat, ec, conn);
    d.eng->add_observer(&d.monthly);
    writer_config wc;
    wc.max_group_weight = d.cfg.group_mutations;
    wc.nice = d.cfg.writer_nice;
    wc.pipelined_sync = d.cfg.pipelined_sync;
    wc.sync_file = d.cfg.wal_sync;
    wc.mark = [](sql::connection& c) { return engine::last_seq(c); };
    d.wr = std::make_unique<writer>(std::move(conn), wc);
    d.eng->serve_durable_only(
        [w = d.wr.get()](std::uint64_t mark) { return w->wait_durable(mark); });
    d.readers = std::make_unique<reader_pool>(d.db_path, d.cfg.readers);
    d.app = std::make_unique<api>(d.cfg, *d.eng, *d.wr, *d.readers, d.monthly, d.stats);
    d.state.app = d.app.get();
    unsigned char r[4];
    RAND_bytes(r, sizeof r);
    d.state.request_prefix = static_cast<std::uint32_t>(r[0]) << 24 | r[1] << 16 | r[2] << 8 | r[3];

    auto ep = parse_endpoint(d.cfg.listen);
    beast::error_code err;
    d.acceptor.open(ep.protocol(), err);
    if (!err)
        d.acceptor.set_option(asio::socket_base::reuse_address(true), err);
    if (!err)
        d.acceptor.bind(ep, err);
    if (!err)
        d.acceptor.listen(asio::socket_base::max_listen_connections, err);
    if (err)
        throw std::runtime_error("cannot listen on " + d.cfg.listen + ": " + err.message());
    if (!d.cfg.port_file.empty()) {
        std::string tmp = d.cfg.port_file + ".tmp";
        {
            std::ofstream out(tmp);
            out << port() << "\n";
        }
        fs::rename(tmp, d.cfg.port_file);
    }
}

server::~server() {
    if (impl_->background)
        stop();
    impl_->finish();
}

unsigned short server::port() const {
    return impl_->acceptor.local_endpoint().port();
}

std::string server::url() const {
    auto addr = impl_->acceptor.local_endpoint().address();
    std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    return "https://" + host + ":" + std::to_string(port());
}

const std::string& server::fingerprint() const {
    return impl_->fingerprint;
}

const std::string& server::certificate_file() const {
    return impl_->tls.cert;
}

void server::run(bool handle_signals) {
    auto& d = *impl_;
    if (handle_signals) {
        d.signals.add(SIGINT);
        d.signals.add(SIGTERM);
        d.signals.async_wait([this](beast::error_code ec, int) {
            if (!ec)
                impl_->begin_stop();
        });
    }
    d.do_accept();
    d.start_months();
    for (std::size_t i = 1; i < d.cfg.threads; ++i)
        d.threads.emplace_back([&d] { d.ioc.run(); });
    d.ioc.run();
    for (auto& t : d.threads)
        t.join();
    d.threads.clear();
    d.finish();
}

void server::start() {
    auto& d = *impl_;
    d.background = true;
    d.do_accept();
    d.start_months();
    for (std::size_t i = 0; i < d.cfg.threads; ++i)
        d.threads.emplace_back([&d] { d.ioc.run(); });
}

void server::stop() {
    auto& d = *impl_;
    d.begin_stop();
    if (!d.background)
        return; // run() returns by itself once drained
    for (auto& t : d.threads)
        if (t.joinable())
            t.join();
    d.threads.clear();
    d.finish();
}

} // namespace fieldsync::server
