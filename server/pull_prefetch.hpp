// The next page of a tablet's pull, prepared while the current one travels.
//
// A tablet that pulls a township page by page asks for the next page only after it has received
// and read the current one; until then the server's readers would sit idle. After answering a page
// that was not the last, the server computes the next one on a reader (the same engine::pull the
// request would run) and keeps its answer here for a short while. When the tablet's request for it
// arrives (same device, same scope, same cursor and page size) the kept answer is sent at once;
// if the page is still being computed the request waits for it rather than computing it a second
// time next to the first (on two cores that doubled the work and the wait).
// The request is authenticated as usual first, so a revoked tablet or a moved worker never gets a
// kept page; the page is as of a snapshot a few milliseconds older than the request, which is what
// a server that answered slightly sooner would have sent.
//
// Thread-safety: every member function may be called from any thread.
#pragma once

#include "sync/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::server {

class pull_prefetch {
public:
    struct settings {
        std::size_t max_bytes = 64u << 20; // answers kept at once, in total
        std::int64_t keep_ms = 10000;      // an answer not asked for by then is dropped
    };
    struct page {
        std::string body;        // the answer as sent
        std::size_t changes = 0; // records in it
        std::string cursor;      // the cursor it ends with
        bool last = true;        // complete (or a reset): nothing to prepare after it
    };

    pull_prefetch() : pull_prefetch(settings{}) {}
    explicit pull_prefetch(settings s) : settings_(s) {}

    // The key of a pull: who asks (device and scope fingerprint), from where, how much, in which
    // form.
    static std::string key(std::string_view device, std::string_view scope,
                           const pull_request& req);

    // Reserves the slot for `key` before the page is computed. False if the slot is taken or
    // memory is short: do not compute it. Replaces any slot the same device had.
    bool reserve(const std::string& key, std::string_view device, std::int64_t now_ms);
    // Stores the computed page in its reserved slot (dropped if the slot was replaced meanwhile,
    // or if it would exceed max_bytes).
    void fill(const std::string& key, page p);
    // Forgets a reserved slot whose page could not be computed.
    void cancel(const std::string& key);
    // Called once with the page a request waited for, or with nothing if it will not come
    // (could not be computed, was dropped): then the request computes its page itself.
    using waiter = std::function<void(std::optional<page>)>;
    struct taken {
        std::optional<page> ready; // the page, if it was ready
        bool waiting = false;      // it is being computed: `then` will be called
    };
    // Takes the ready page for `key`, if any. If it is still being computed and `then` is given,
    // `then` is kept and called by whichever thread finishes or drops the slot (never under this
    // object's lock, never from inside this call).
    taken take(const std::string& key, std::int64_t now_ms, waiter then = {});

    // Drops every page kept longer than keep_ms (and tells any request waiting for one that it
    // will not come). take() and reserve() do this too; the server also calls it on a timer, so
    // that an idle server does not keep pages nobody asked for.
    void drop_expired(std::int64_t now_ms);

    std::size_t bytes() const;
    std::uint64_t hits() const;   // pages used (ready or waited for)
    std::uint64_t waited() const; // of which waited for

private:
    struct slot {
        std::string device;
        std::int64_t reserved_ms = 0;
        std::optional<page> ready;
        waiter then; // a request waiting for the page (only while it is not ready)
    };
    using waiters = std::vector<waiter>; // to be told "nothing", after the lock is released
    template <class Pred>
    void drop_if(Pred pred, waiters& dropped);          // mutex_ held
    void expire(std::int64_t now_ms, waiters& dropped); // mutex_ held
    static void tell_nothing(waiters& dropped);

    settings settings_;
    mutable std::mutex mutex_;
    std::map<std::string, slot, std::less<>> slots_; // guarded by mutex_
    std::size_t bytes_ = 0;                          // guarded by mutex_
    std::uint64_t hits_ = 0;                         // guarded by mutex_
    std::uint64_t waited_ = 0;                       // guarded by mutex_
};

} // namespace fieldsync::server
