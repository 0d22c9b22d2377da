#include "schema/catalog.hpp"

#include "schema/embedded.hpp"
#include "schema/rules.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>

namespace fieldsync {

namespace json = boost::json;

const field_decl* collection_decl::field(std::string_view n) const noexcept {
    for (const auto& f : fields)
        if (f.name == n)
            return &f;
    return nullptr;
}

std::string_view value_title(const field_decl& f, std::string_view value, bool zh) noexcept {
    for (std::size_t i = 0; i < f.values.size() && i < f.value_titles.size(); ++i)
        if (f.values[i] == value)
            return zh ? f.value_titles[i].zh : f.value_titles[i].en;
    return value;
}

std::string_view to_string(field_type t) noexcept {
    switch (t) {
    case field_type::string:
        return "string";
    case field_type::integer:
        return "integer";
    case field_type::number:
        return "number";
    case field_type::boolean:
        return "boolean";
    case field_type::date:
        return "date";
    case field_type::datetime:
        return "datetime";
    case field_type::enumeration:
        return "enum";
    case field_type::enum_set:
        return "enum_set";
    case field_type::reference:
        return "reference";
    case field_type::division:
        return "division";
    case field_type::geo:
        return "geo";
    case field_type::json:
        return "json";
    }
    return "unknown";
}

namespace {

std::optional<field_type> parse_type(std::string_view s) {
    for (auto t :
         {field_type::string, field_type::integer, field_type::number, field_type::boolean,
          field_type::date, field_type::datetime, field_type::enumeration, field_type::enum_set,
          field_type::reference, field_type::division, field_type::geo, field_type::json})
        if (to_string(t) == s)
            return t;
    return std::nullopt;
}

bool is_identifier(std::string_view s) {
    if (s.empty() || s.size() > 64)
        return false;
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (char c : s)
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    return true;
}

// Declaration errors are programming errors in schema/collections; they are reported with a
// path so that the author can find them.
struct decl_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

label parse_label(const json::value* v, std::string_view fallback) {
    label l{std::string(fallback), std::string(fallback)};
    if (!v)
        return l;
    if (v->is_string()) {
        l.zh = l.en = std::string(v->as_string());
    } else if (v->is_object()) {
        if (auto* zh = v->as_object().if_contains("zh"); zh && zh->is_string())
            l.zh = std::string(zh->as_string());
        if (auto* en = v->as_object().if_contains("en"); en && en->is_string())
            l.en = std::string(en->as_string());
    }
    return l;
}

field_decl parse_field(std::string_view coll, std::string_view name, const json::value& v) {
    std::string where = std::string(coll) + "." + std::string(name);
    if (!is_identifier(name))
        throw decl_error(where + ": field name is not an identifier");
    if (!v.is_object())
        throw decl_error(where + ": declaration must be an object");
    const auto& o = v.as_object();
    field_decl f;
    f.name = std::string(name);
    auto* type = o.if_contains("type");
    if (!type || !type->is_string())
        throw decl_error(where + ": missing \"type\"");
    auto t = parse_type(type->as_string());
    if (!t)
        throw decl_error(where + ": unknown type \"" + std::string(type->as_string()) + "\"");
    f.type = *t;
    f.title = parse_label(o.if_contains("label"), name);
    auto flag = [&](const char* key) {
        auto* b = o.if_contains(key);
        if (b && !b->is_bool())
            throw decl_error(where + ": \"" + key + "\" must be true or false");
        return b && b->as_bool();
    };
    f.required = flag("required");
    f.immutable = flag("immutable");
    f.personal = flag("personal");
    f.allow_future = flag("allow_future");
    auto number = [&](const char* key) -> std::optional<double> {
        auto* n = o.if_contains(key);
        if (!n)
            return std::nullopt;
        if (!n->is_number())
            throw decl_error(where + ": \"" + key + "\" must be a number");
        return n->to_number<double>();
    };
    f.min = number("min");
    f.max = number("max");
    if (auto ml = number("max_length"))
        f.max_length = static_cast<std::size_t>(*ml);
    if (auto* vals = o.if_contains("values")) {
        if (!vals->is_array())
            throw decl_error(where + ": \"values\" must be an array of strings");
        for (const auto& x : vals->as_array()) {
            if (!x.is_string())
                throw decl_error(where + ": \"values\" must be an array of strings");
            f.values.emplace_back(x.as_string());
        }
    }
    if ((f.type == field_type::enumeration || f.type == field_type::enum_set) && f.values.empty())
        throw decl_error(where + ": an enum needs \"values\"");
    for (const auto& code : f.values)
        f.value_titles.push_back(label{code, code});
    if (auto* labels = o.if_contains("value_labels")) {
        if (!labels->is_object() || f.values.empty())
            throw decl_error(where +
                             ": \"value_labels\" must be an object {value: label} of an enum");
        for (const auto& kv : labels->as_object()) {
            auto it = std::find(f.values.begin(), f.values.end(), kv.key());
            if (it == f.values.end())
                throw decl_error(where + ": \"value_labels\" names \"" + std::string(kv.key()) +
                                 "\", which is not one of \"values\"");
            if (!kv.value().is_object() && !kv.value().is_string())
                throw decl_error(where + ": the label of \"" + std::string(kv.key()) +
                                 "\" must be {\"zh\", \"en\"} or a string");
            f.value_titles[static_cast<std::size_t>(it - f.values.begin())] =
                parse_label(&kv.value(), kv.key());
        }
    }
    if (auto* fmt = o.if_contains("format")) {
        if (!fmt->is_string() || !find_format(fmt->as_string()))
            throw decl_error(where + ": unknown format");
        f.format = std::string(fmt->as_string());
    }
    if (f.type == field_type::reference) {
        auto* r = o.if_contains("ref");
        if (!r || !r->is_string())
            throw decl_error(where + ": a reference needs \"ref\"");
        f.ref = std::string(r->as_string());
    }
    if (f.type == field_type::division) {
        auto* l = o.if_contains("level");
        std::string_view lv = (l && l->is_string()) ? std::string_view(l->as_string()) : "";
        if (lv == "district")
            f.level = division_level::district;
        else if (lv == "township")
            f.level = division_level::township;
        else if (lv == "village")
            f.level = division_level::village;
        else
            throw decl_error(where + ": a division needs \"level\" district|township|village");
    }
    return f;
}

collection_decl parse_collection(std::string_view name, const json::value& v) {
    std::string where(name);
    if (!is_identifier(name))
        throw decl_error(where + ": collection name is not an identifier");
    if (!v.is_object())
        throw decl_error(where + ": declaration must be an object");
    const auto& o = v.as_object();
    collection_decl c;
    c.name = std::string(name);
    c.title = parse_label(o.if_contains("label"), name);
    auto* fields = o.if_contains("fields");
    if (!fields || !fields->is_object())
        throw decl_error(where + ": missing \"fields\"");
    for (const auto& kv : fields->as_object()) {
        if (kv.key().starts_with("_"))
            throw decl_error(where + ": field names starting with _ are reserved");
        c.fields.push_back(parse_field(name, kv.key(), kv.value()));
    }
    auto* scope = o.if_contains("scope");
    if (!scope || !scope->is_object())
        throw decl_error(where + ": missing \"scope\" {\"township\": field}");
    auto* tf = scope->as_object().if_contains("township");
    if (!tf || !tf->is_string())
        throw decl_error(where + ": scope needs \"township\"");
    c.township_field = std::string(tf->as_string());
    auto* twp = c.field(c.township_field);
    if (!twp || twp->type != field_type::division || twp->level != division_level::township ||
        !twp->required)
        throw decl_error(where + ": scope township field must be a required township division");
    if (auto* vf = scope->as_object().if_contains("village")) {
        if (!vf->is_string())
            throw decl_error(where + ": scope village must name a field");
        c.village_field = std::string(vf->as_string());
        auto* vil = c.field(c.village_field);
        if (!vil || vil->type != field_type::division || vil->level != division_level::village)
            throw decl_error(where + ": scope village field must be a village division");
    }
    if (auto* rules = o.if_contains("rules")) {
        if (!rules->is_array())
            throw decl_error(where + ": \"rules\" must be an array of rule names");
        for (const auto& r : rules->as_array()) {
            if (!r.is_string() || !find_rule(r.as_string()))
                throw decl_error(where + ": unknown rule " + json::serialize(r));
            c.rules.emplace_back(r.as_string());
        }
    }
    return c;
}

} // namespace

result<void> catalog::add(std::string_view text, std::string* error) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object()) {
        if (error)
            *error = "declaration is not a JSON object: " + ec.message();
        return errc::invalid_argument;
    }
    try {
        const auto& o = doc.as_object();
        if (auto* v = o.if_contains("schema_version"); v && v->is_int64())
            schema_version_ = std::max(schema_version_, static_cast<int>(v->as_int64()));
        auto* cols = o.if_contains("collections");
        if (!cols || !cols->is_object())
            throw decl_error("missing \"collections\" object");
        std::map<std::string, collection_decl, std::less<>> added;
        for (const auto& kv : cols->as_object()) {
            if (collections_.count(kv.key()) || added.count(kv.key()))
                throw decl_error(std::string(kv.key()) + ": declared twice");
            added.emplace(std::string(kv.key()), parse_collection(kv.key(), kv.value()));
        }
        for (auto& [n, c] : added) {
            for (const auto& f : c.fields)
                if (f.type == field_type::reference && !added.count(f.ref) &&
                    !collections_.count(f.ref))
                    throw decl_error(n + "." + f.name + ": reference to unknown collection " +
                                     f.ref);
        }
        collections_.merge(added);
    } catch (const decl_error& e) {
        if (error)
            *error = e.what();
        return errc::invalid_argument;
    }
    return {};
}

result<catalog> catalog::from_json(std::string_view text, std::string* error) {
    catalog c;
    auto r = c.add(text, error);
    if (!r)
        return r.error();
    return c;
}

const catalog& catalog::builtin() {
    static const catalog c = [] {
        catalog built;
        for (const auto& f : schema_files::files()) {
            if (!f.name.starts_with("collections/") || !f.name.ends_with(".json"))
                continue;
            std::string err;
            if (!built.add(f.data, &err))
                throw std::logic_error("schema/" + std::string(f.name) + ": " + err);
        }
        return built;
    }();
    return c;
}

const collection_decl* catalog::find(std::string_view collection) const noexcept {
    auto it = collections_.find(collection);
    return it == collections_.end() ? nullptr : &it->second;
}

} // namespace fieldsync
