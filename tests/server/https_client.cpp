#include "https_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cctype>
#include <stdexcept>

namespace fieldsync::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string http_reply::error_code() const {
    if (const auto* o = json.if_object())
        if (const auto* e = o->if_contains("error"); e && e->is_object())
            if (const auto* c = e->as_object().if_contains("code"); c && c->is_string())
                return std::string(c->as_string());
    return {};
}

std::string http_reply::header(std::string_view name) const {
    auto lower = [](std::string_view s) {
        std::string out(s);
        for (auto& ch : out)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return out;
    };
    for (const auto& [k, v] : headers)
        if (lower(k) == lower(name))
            return v;
    return {};
}

struct https_client::impl {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;
};

https_client::https_client(unsigned short port, const std::string& cert_file,
                           const std::string& source)
    : impl_(std::make_unique<impl>()) {
    impl_->ctx.load_verify_file(cert_file);
    impl_->ctx.set_verify_mode(ssl::verify_peer);
    impl_->stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(impl_->ioc, impl_->ctx);
    impl_->stream->set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    if (!source.empty()) {
        auto& sock = beast::get_lowest_layer(*impl_->stream).socket();
        sock.open(tcp::v4());
        sock.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    }
    beast::get_lowest_layer(*impl_->stream)
        .connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    impl_->stream->handshake(ssl::stream_base::client);
}

https_client::~https_client() {
    beast::error_code ec;
    beast::get_lowest_layer(*impl_->stream).socket().close(ec);
}

namespace {
http_reply convert(http::response<http::string_body>& res) {
    http_reply r;
    r.status = res.result_int();
    r.body = res.body();
    r.content_type = std::string(res[http::field::content_type]);
    for (const auto& f : res)
        r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (!ec)
        r.json = std::move(v);
    return r;
}
} // namespace

http_reply https_client::read_reply() {
    http::response_parser<http::string_body> p;
    p.body_limit(512u << 20);
    http::read(*impl_->stream, impl_->buffer, p);
    auto res = p.release();
    return convert(res);
}

http_reply https_client::get(const std::string& target, const std::string& token) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + token);
    http::write(*impl_->stream, req);
    return read_reply();
}

http_reply https_client::post(const std::string& target, const std::string& body,
                              const std::string& token, const std::string& content_type) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!content_type.empty())
        req.set(http::field::content_type, content_type);
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + token);
    req.body() = body;
    req.prepare_payload();
    http::write(*impl_->stream, req);
    return read_reply();
}

http_reply https_client::post(const std::string& target, const json::value& body,
                              const std::string& token) {
    return post(target, json::serialize(body), token);
}

void https_client::send_raw(const std::string& bytes) {
    asio::write(*impl_->stream, asio::buffer(bytes));
}

void https_client::cut() {
    beast::error_code ec;
    beast::get_lowest_layer(*impl_->stream).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(*impl_->stream).socket().close(ec);
}

bool https_client::wait_closed() {
    char buf[256];
    beast::error_code ec;
    for (;;) {
        impl_->stream->read_some(asio::buffer(buf), ec);
        if (ec)
            return true;
    }
}

void sync_over(https_client& c, replica& r, const std::string& token, std::size_t batch) {
    for (int guard = 0; guard < 10000; ++guard) {
        auto req = r.next_push(batch);
        if (req.mutations.empty())
            break;
        auto reply = c.post("/v1/sync/push", encode(req), token);
        if (reply.status != 200)
            throw std::runtime_error("push: HTTP " + std::to_string(reply.status) + " " +
                                     reply.body);
        auto res = decode_push_result(reply.json);
        if (!res)
            throw std::runtime_error("push: undecodable result " + reply.body);
        r.apply_push_result(req, *res);
    }
    for (int guard = 0; guard < 10000; ++guard) {
        auto reply = c.post("/v1/sync/pull", encode(r.next_pull(7)), token);
        if (reply.status != 200)
            throw std::runtime_error("pull: HTTP " + std::to_string(reply.status) + " " +
                                     reply.body);
        auto res = decode_pull_result(reply.json);
        if (!res)
            throw std::runtime_error("pull: undecodable result " + reply.body);
        r.apply_pull_result(*res);
        if (res->complete)
            break;
    }
}

} // namespace fieldsync::testing
