#include "fault_proxy.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <mutex>
#include <random>
#include <thread>

namespace fieldsync::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

struct link : std::enable_shared_from_this<link> {
    link(asio::io_context& ioc, tcp::socket s, std::int64_t up, std::int64_t down,
         std::atomic<std::size_t>& cut_count)
        : client(std::move(s)), server(ioc), budget{up, down}, cuts(cut_count) {}

    void start(unsigned short port) {
        server.async_connect({asio::ip::make_address("127.0.0.1"), port},
                             [self = shared_from_this()](error_code ec) {
                                 if (ec)
                                     return self->close();
                                 self->pump(0);
                                 self->pump(1);
                             });
    }

    // Direction 0: client → server (requests); 1: server → client (answers).
    void pump(int dir) {
        auto& from = dir == 0 ? client : server;
        from.async_read_some(asio::buffer(buf[dir]),
                             [self = shared_from_this(), dir](error_code ec, std::size_t n) {
                                 if (ec)
                                     return self->close();
                                 self->forward(dir, n);
                             });
    }

    void forward(int dir, std::size_t n) {
        auto& to = dir == 0 ? server : client;
        bool cut_here = budget[dir] >= 0 && static_cast<std::int64_t>(n) >= budget[dir];
        std::size_t send = cut_here ? static_cast<std::size_t>(budget[dir]) : n;
        if (budget[dir] >= 0)
            budget[dir] -= static_cast<std::int64_t>(send);
        asio::async_write(to, asio::buffer(buf[dir].data(), send),
                          [self = shared_from_this(), dir, cut_here](error_code ec, std::size_t) {
                              if (ec)
                                  return self->close();
                              if (cut_here) {
                                  ++self->cuts;
                                  return self->close();
                              }
                              self->pump(dir);
                          });
    }

    void close() {
        error_code ignored;
        client.close(ignored);
        server.close(ignored);
    }

    tcp::socket client, server;
    std::array<std::array<char, 4096>, 2> buf{};
    std::int64_t budget[2]; // bytes still forwarded before the cut; -1: no cut
    std::atomic<std::size_t>& cuts;
};

} // namespace

struct fault_proxy::impl {
    asio::io_context ioc;
    tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    unsigned short target;
    std::mt19937_64 rng;
    std::atomic<double> rate;
    std::atomic<std::size_t> connections{0}, cuts{0};
    std::thread thread;

    impl(unsigned short t, std::uint64_t seed, double r) : target(t), rng(seed), rate(r) {}

    void accept() {
        acceptor.async_accept([this](error_code ec, tcp::socket s) {
            if (ec)
                return;
            ++connections;
            std::int64_t up = -1, down = -1;
            std::uniform_real_distribution<double> coin(0, 1);
            if (double r = rate.load(); r > 0) {
                // Every connection is cut sooner or later (a tablet's link does not last), the
                // sooner the higher the rate. Few bytes before the cut land inside the TLS
                // handshake; 0 on the answer side is "applied but never acknowledged".
                auto most = static_cast<std::int64_t>(6000 / r);
                std::uniform_int_distribution<std::int64_t> where(0, most);
                (coin(rng) < 0.5 ? up : down) = where(rng);
            }
            std::make_shared<link>(ioc, std::move(s), up, down, cuts)->start(target);
            accept();
        });
    }
};

fault_proxy::fault_proxy(unsigned short target_port, std::uint64_t seed, double rate)
    : impl_(std::make_unique<impl>(target_port, seed, rate)) {
    impl_->accept();
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

fault_proxy::~fault_proxy() {
    impl_->ioc.stop();
    impl_->thread.join();
}

unsigned short fault_proxy::port() const {
    return impl_->acceptor.local_endpoint().port();
}
void fault_proxy::set_rate(double rate) {
    impl_->rate = rate;
}
std::size_t fault_proxy::connections() const {
    return impl_->connections;
}
std::size_t fault_proxy::cuts() const {
    return impl_->cuts;
}

} // namespace fieldsync::testing
