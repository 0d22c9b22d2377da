#include "schema/rules.hpp"

#include "schema/formats.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

namespace fieldsync {

namespace json = boost::json;

bool is_field_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 64)
        return false;
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    });
}

bool is_valid_utf8(std::string_view s) noexcept {
    auto u = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    std::size_t i = 0, n = s.size();
    while (i < n) {
        unsigned c = u(i);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        unsigned cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((u(i + k) & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (u(i + k) & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

bool has_duplicate_keys(std::string_view text, const json::value& parsed) {
    // In valid JSON a ':' outside strings follows exactly one key, so the text names as many
    // keys as it has such colons; the parsed value has fewer when a key repeated.
    std::size_t colons = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\')
                ++i;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == ':') {
            ++colons;
        }
    }
    std::size_t members = 0;
    std::vector<const json::value*> todo{&parsed};
    while (!todo.empty()) {
        const json::value* v = todo.back();
        todo.pop_back();
        if (const auto* o = v->if_object()) {
            members += o->size();
            for (const auto& kv : *o)
                todo.push_back(&kv.value());
        } else if (const auto* a = v->if_array()) {
            for (const auto& e : *a)
                todo.push_back(&e);
        }
    }
    return members != colons;
}

std::size_t utf8_length(std::string_view s) noexcept {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

namespace {

bool digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int to_int(std::string_view s) {
    int v = 0;
    for (char c : s)
        v = v * 10 + (c - '0');
    return v;
}

// Days from civil (Howard Hinnant's algorithm): proleptic Gregorian date → days since epoch.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

} // namespace

std::optional<std::int64_t> parse_date(std::string_view s) noexcept {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-')
        return std::nullopt;
    auto ys = s.substr(0, 4), ms = s.substr(5, 2), ds = s.substr(8, 2);
    if (!digits(ys) || !digits(ms) || !digits(ds))
        return std::nullopt;
    int y = to_int(ys), m = to_int(ms), d = to_int(ds);
    static constexpr int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1)
        return std::nullopt;
    int maxd = mdays[m - 1] + (m == 2 && leap(y) ? 1 : 0);
    if (d > maxd)
        return std::nullopt;
    return days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

std::optional<std::int64_t> parse_datetime(std::string_view s) noexcept {
    // YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)
    if (s.size() < 20 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return std::nullopt;
    auto day = parse_date(s.substr(0, 10));
    auto hs = s.substr(11, 2), mis = s.substr(14, 2), ss = s.substr(17, 2);
    if (!day || !digits(hs) || !digits(mis) || !digits(ss))
        return std::nullopt;
    int h = to_int(hs), mi = to_int(mis), sec = to_int(ss);
    if (h > 23 || mi > 59 || sec > 60)
        return std::nullopt;
    std::size_t i = 19;
    std::int64_t frac_ms = 0;
    if (i < s.size() && s[i] == '.') {
        std::size_t start = ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            ++i;
        auto f = s.substr(start, i - start);
        if (f.empty() || f.size() > 9)
            return std::nullopt;
        std::string three(f.substr(0, 3));
        three.resize(3, '0');
        frac_ms = to_int(three);
    }
    std::int64_t offset_min = 0;
    auto rest = s.substr(i);
    if (rest == "Z") {
        offset_min = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
               digits(rest.substr(1, 2)) && digits(rest.substr(4, 2))) {
        int oh = to_int(rest.substr(1, 2)), om = to_int(rest.substr(4, 2));
        if (oh > 14 || om > 59)
            return std::nullopt;
        offset_min = (oh * 60 + om) * (rest[0] == '-' ? -1 : 1);
    } else {
        return std::nullopt;
    }
    std::int64_t secs = *day * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    return secs * 1000 + frac_ms;
}

const format_check* find_format(std::string_view name) {
    static const std::map<std::string, format_check, std::less<>> formats = builtin_formats();
    auto it = formats.find(name);
    return it == formats.end() ? nullptr : &it->second;
}

const record_rule* find_rule(std::string_view name) {
    static const std::map<std::string, record_rule, std::less<>> rules = builtin_rules();
    auto it = rules.find(name);
    return it == rules.end() ? nullptr : &it->second;
}

namespace {

std::optional<rejection> check_division(const field_decl& f, std::string_view code) {
    if (code.size() != static_cast<std::size_t>(f.level) || !digits(code))
        return make_rejection("bad_division_code", &f);
    // Existence is checked with the whole record (validate_record), where references are known.
    return std::nullopt;
}

bool in_values(const field_decl& f, std::string_view s) {
    return std::find(f.values.begin(), f.values.end(), s) != f.values.end();
}

} // namespace

namespace {
// Whether json::serialize(v) is longer than `limit`, without writing it for the usual values: a
// number or literal takes fewer than 32 bytes, a string at most 6 per byte (\u00XX) plus quotes.
bool serialized_size_exceeds(const json::value& v, std::size_t limit) {
    if (v.is_string() && limit >= 2 && v.get_string().size() <= (limit - 2) / 6)
        return false;
    if (!v.is_string() && !v.is_array() && !v.is_object() && limit >= 32)
        return false;
    return json::serialize(v).size() > limit;
}
} // namespace

std::optional<rejection> validate_value(const collection_decl& c, std::string_view name,
                                        const json::value& v, const validation_context& ctx) {
    const catalog_limits def;
    const catalog_limits& lim = ctx.cat ? ctx.cat->limits() : def;
    if (!is_field_name(name))
        return make_rejection("bad_field_name", name);
    if (serialized_size_exceeds(v, lim.max_value_bytes))
        return make_rejection("value_too_large", name);
    const field_decl* f = c.field(name);
    if (!f) {
        // Forward compatibility: keep what a newer tablet sends, but only valid text.
        std::optional<rejection> bad;
        auto walk = [&](auto& self, const json::value& x, int depth) -> void {
            if (bad)
                return;
            if (depth > 16) {
                bad = make_rejection("value_too_large", name);
            } else if (x.is_string() && !is_valid_utf8(x.as_string())) {
                bad = make_rejection("invalid_utf8", name);
            } else if (x.is_array()) {
                for (const auto& e : x.as_array())
                    self(self, e, depth + 1);
            } else if (x.is_object()) {
                for (const auto& kv : x.as_object()) {
                    if (!is_valid_utf8(kv.key()))
                        bad = make_rejection("invalid_utf8", name);
                    self(self, kv.value(), depth + 1);
                }
            }
        };
        walk(walk, v, 0);
        return bad;
    }
    if (v.is_null())
        return std::nullopt;
    auto wrong = [&] {
        return std::optional<rejection>(make_rejection("wrong_type", f, to_string(f->type)));
    };
    switch (f->type) {
    case field_type::string: {
        if (!v.is_string())
            return wrong();
        std::string_view s = v.as_string();
        if (!is_valid_utf8(s))
            return make_rejection("invalid_utf8", f);
        std::size_t max = f->max_length ? f->max_length : lim.max_string_length;
        if (utf8_length(s) > max)
            return make_rejection("too_long", f);
        if (f->min && utf8_length(s) < static_cast<std::size_t>(*f->min))
            return make_rejection("too_short", f);
        if (!f->format.empty())
            if (const auto* fmt = find_format(f->format))
                return (*fmt)(*f, s);
        return std::nullopt;
    }
    case field_type::integer: {
        double d;
        if (v.is_int64())
            d = static_cast<double>(v.as_int64());
        else if (v.is_uint64())
            d = static_cast<double>(v.as_uint64());
        else if (v.is_double() && std::trunc(v.as_double()) == v.as_double() &&
                 std::abs(v.as_double()) < 9e15)
            d = v.as_double();
        else
            return wrong();
        if ((f->min && d < *f->min) || (f->max && d > *f->max))
            return make_rejection("out_of_range", f);
        return std::nullopt;
    }
    case field_type::number: {
        if (!v.is_number())
            return wrong();
        double d = v.to_number<double>();
        if (!std::isfinite(d) || (f->min && d < *f->min) || (f->max && d > *f->max))
            return make_rejection("out_of_range", f);
        return std::nullopt;
    }
    case field_type::boolean:
        return v.is_bool() ? std::nullopt : wrong();
    case field_type::date: {
        if (!v.is_string())
            return wrong();
        auto d = parse_date(v.as_string());
        if (!d)
            return make_rejection("bad_date", f);
        if (!f->allow_future && ctx.now_ms && *d * 86400000 > ctx.now_ms + ctx.future_slack_ms)
            return make_rejection("date_in_future", f);
        return std::nullopt;
    }
    case field_type::datetime: {
        if (!v.is_string())
            return wrong();
        auto t = parse_datetime(v.as_string());
        if (!t)
            return make_rejection("bad_datetime", f);
        if (!f->allow_future && ctx.now_ms && *t > ctx.now_ms + ctx.future_slack_ms)
            return make_rejection("date_in_future", f);
        return std::nullopt;
    }
    case field_type::enumeration:
        if (!v.is_string())
            return wrong();
        return in_values(*f, v.as_string()) ? std::nullopt
                                            : std::optional(make_rejection("not_in_enum", f));
    case field_type::enum_set: {
        if (!v.is_array())
            return wrong();
        std::set<std::string_view> seen;
        for (const auto& e : v.as_array()) {
            if (!e.is_string())
                return wrong();
            if (!in_values(*f, e.as_string()))
                return make_rejection("not_in_enum", f);
            if (!seen.insert(e.as_string()).second)
                return make_rejection("duplicate_value", f);
        }
        return std::nullopt;
    }
    case field_type::reference: {
        if (!v.is_string())
            return wrong();
        std::string_view s = v.as_string();
        bool ok = s.size() == 36;
        for (std::size_t i = 0; ok && i < s.size(); ++i) {
            char ch = s[i];
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            ok = dash ? ch == '-' : ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
        }
        return ok ? std::nullopt : std::optional(make_rejection("bad_reference", f));
    }
    case field_type::division:
        if (!v.is_string())
            return wrong();
        return check_division(*f, v.as_string());
    case field_type::geo: {
        if (!v.is_object())
            return wrong();
        const auto& o = v.as_object();
        auto* lat = o.if_contains("lat");
        auto* lon = o.if_contains("lon");
        if (!lat || !lon || !lat->is_number() || !lon->is_number())
            return wrong();
        double la = lat->to_number<double>(), lo = lon->to_number<double>();
        if (!(la >= -90 && la <= 90 && lo >= -180 && lo <= 180))
            return make_rejection("out_of_range", f);
        return std::nullopt;
    }
    case field_type::json:
        return std::nullopt;
    }
    return wrong();
}

namespace {
// Rules apply to live records; a tombstone only needs its scope.
bool is_tombstone(const json::object& record) {
    const auto* deleted = record.if_contains("_deleted");
    return deleted && deleted->is_bool() && deleted->as_bool();
}

std::optional<rejection> reference_rejection(const field_decl& f, const json::value* v,
                                             const validation_context& ctx) {
    if (!ctx.refs || !v || !v->is_string())
        return std::nullopt;
    if (f.type == field_type::division && !ctx.refs->division_exists(v->as_string()))
        return make_rejection("unknown_division", &f);
    if (f.type == field_type::reference && !ctx.refs->record_exists(f.ref, v->as_string()))
        return make_rejection("reference_missing", &f);
    return std::nullopt;
}
} // namespace

std::optional<rejection> validate_references(const collection_decl& c, const json::object& record,
                                             const validation_context& ctx) {
    if (!ctx.refs || is_tombstone(record))
        return std::nullopt;
    for (const auto& f : c.fields)
        if (f.type == field_type::division || f.type == field_type::reference)
            if (auto r = reference_rejection(f, record.if_contains(f.name), ctx))
                return r;
    return std::nullopt;
}

std::optional<rejection> validate_record(const collection_decl& c, const json::object& record,
                                         const validation_context& ctx) {
    if (ctx.cat && record.size() > ctx.cat->limits().max_fields)
        return make_rejection("too_many_fields", std::string_view{});
    if (is_tombstone(record))
        return std::nullopt;
    // Each declared field looked up once for both checks (a lookup compares keys one by one).
    std::vector<const json::value*> values(c.fields.size());
    for (std::size_t i = 0; i < c.fields.size(); ++i) {
        const auto& f = c.fields[i];
        const auto* v = values[i] = record.if_contains(f.name);
        if (f.required && (!v || v->is_null()))
            return make_rejection("required_missing", &f);
    }
    for (std::size_t i = 0; i < c.fields.size(); ++i)
        if (auto r = reference_rejection(c.fields[i], values[i], ctx))
            return r;
    for (const auto& name : c.rules)
        if (const auto* rule = find_rule(name))
            if (auto r = (*rule)(c, record, ctx))
                return r;
    return std::nullopt;
}

} // namespace fieldsync
