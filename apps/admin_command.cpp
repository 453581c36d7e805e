#include "apps/admin_command.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "transport/websocket/target.hpp"
#include "transport/websocket/https_client.hpp"

namespace firebreak::apps {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::uint16_t default_admin_port = 8444;
constexpr auto request_timeout = std::chrono::seconds(15);

// ---- small text helpers -----------------------------------------------------------------------------------

/// One path segment, percent-encoded: ids come from the command line and must not change the path.
std::string path_segment(std::string_view text) { return websocket::percent_encode(text); }

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

/// "90s", "10m", "2h", "1d", "1h30m": a duration in seconds.
std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == i || digits == text.size() || digits - i > 9) return std::nullopt;
    const auto number = parse_integer(text.substr(i, digits - i));
    std::int64_t unit = 0;
    switch (text[digits]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return std::nullopt;
    }
    total += *number * unit;
    i = digits + 1;
  }
  if (total <= 0) return std::nullopt;
  return total;
}

/// "tcp:80-443", "udp:53", "icmp" -> a filter for the admin API; nullopt with `why` otherwise.
std::optional<json> parse_filter(std::string_view text, std::string& why) {
  std::string protocol(text.substr(0, text.find(':')));
  std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool has_ports = text.find(':') != std::string_view::npos;
  if (protocol == "icmp") {
    if (has_ports) {
      why = "icmp has no ports; write just icmp";
      return std::nullopt;
    }
    return json{{"protocol", "icmp"}};
  }
  if (protocol != "tcp" && protocol != "udp") {
    why = "the protocol is tcp, udp or icmp";
    return std::nullopt;
  }
  if (!has_ports) {
    why = "give the ports, as in " + protocol + ":443 or " + protocol + ":8000-8999";
    return std::nullopt;
  }
  const auto ports = text.substr(text.find(':') + 1);
  const auto dash = ports.find('-');
  const auto start = parse_integer(ports.substr(0, dash));
  const auto end = dash == std::string_view::npos ? start : parse_integer(ports.substr(dash + 1));
  if (!start || !end) {
    why = "ports are numbers, as in " + protocol + ":443 or " + protocol + ":8000-8999";
    return std::nullopt;
  }
  return json{{"protocol", protocol}, {"port_range_start", *start}, {"port_range_end", *end}};
}

/// host:port, [v6]:port or a bare host (port 8444).
bool split_portal(const std::string& text, std::string& host, std::uint16_t& port) {
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return false;
      port_text = text.substr(close + 2);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  } else {
    host = text;  // a bare name, or an IPv6 literal without brackets
  }
  if (host.empty()) return false;
  port = default_admin_port;
  if (!port_text.empty() || (text.back() == ':')) {
    const auto p = parse_integer(port_text);
    if (!p || *p < 1 || *p > 65535) return false;
    port = static_cast<std::uint16_t>(*p);
  }
  return true;
}

// ---- output -----------------------------------------------------------------------------------------------

/// Columns on a terminal: UTF-8 code points, not bytes.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& h : headers) widths.push_back(display_width(h));
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out.append(widths[i] - display_width(cells[i]) + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(headers);
  for (const auto& row : rows) line(row);
}

std::string text_of(const json& object, const char* key) {
  if (!object.is_object()) return "-";
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
  return it->dump();
}

/// "2025-06-01 14:00:00 UTC (in 9m)" or "never".
std::string time_of(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) return "never";
  const std::time_t at = object[key].get<std::int64_t>();
  std::tm tm{};
  gmtime_r(&at, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto left = static_cast<std::int64_t>(at) - now;
  std::string relative;
  if (left <= 0) {
    relative = " (expired)";
  } else if (left < 120) {
    relative = " (in " + std::to_string(left) + "s)";
  } else if (left < 2 * 3600) {
    relative = " (in " + std::to_string(left / 60) + "m)";
  } else if (left < 2 * 86400) {
    relative = " (in " + std::to_string(left / 3600) + "h)";
  } else {
    relative = " (in " + std::to_string(left / 86400) + "d)";
  }
  return buffer + relative;
}

std::string filters_of(const json& resource) {
  if (!resource.contains("filters") || !resource["filters"].is_array() || resource["filters"].empty())
    return "all traffic";
  std::string out;
  for (const auto& f : resource["filters"]) {
    if (!out.empty()) out += ", ";
    out += text_of(f, "protocol");
    if (f.contains("port_range_start")) {
      out += ":" + text_of(f, "port_range_start");
      if (f["port_range_end"] != f["port_range_start"]) out += "-" + text_of(f, "port_range_end");
    }
  }
  return out;
}

struct column {
  const char* header;
  std::string (*cell)(const json&);
};

struct entity {
  const char* plural;    // "sites": the path under /v1 and the subcommand
  const char* singular;  // "site"
  std::vector<column> columns;
};

const entity sites_entity{"sites", "site",
                          {{"ID", [](const json& j) { return text_of(j, "id"); }},
                           {"NAME", [](const json& j) { return text_of(j, "name"); }}}};
const entity gateways_entity{
    "gateways", "gateway",
    {{"ID", [](const json& j) { return text_of(j, "id"); }},
     {"NAME", [](const json& j) { return text_of(j, "name"); }},
     {"SITE", [](const json& j) { return text_of(j, "site_id"); }},
     {"IPV4", [](const json& j) { return text_of(j, "ipv4"); }},
     {"IPV6", [](const json& j) { return text_of(j, "ipv6"); }},
     {"PUBLIC KEY", [](const json& j) {
        auto k = text_of(j, "public_key");
        return k == "-" ? std::string("(not connected yet)") : k;
      }}}};
const entity users_entity{"users", "user",
                          {{"ID", [](const json& j) { return text_of(j, "id"); }},
                           {"NAME", [](const json& j) { return text_of(j, "name"); }},
                           {"EMAIL", [](const json& j) { return text_of(j, "email"); }}}};
const entity groups_entity{
    "groups", "group",
    {{"ID", [](const json& j) { return text_of(j, "id"); }},
     {"NAME", [](const json& j) { return text_of(j, "name"); }},
     {"MEMBERS", [](const json& j) {
        return j.contains("members") && j["members"].is_array() ? std::to_string(j["members"].size())
                                                                 : std::string("-");
      }}}};
const entity clients_entity{
    "clients", "client",
    {{"ID", [](const json& j) { return text_of(j, "id"); }},
     {"NAME", [](const json& j) { return text_of(j, "name"); }},
     {"USER", [](const json& j) { return text_of(j, "user_id"); }},
     {"IPV4", [](const json& j) { return text_of(j, "ipv4"); }},
     {"STATE", [](const json& j) {
        return std::string(j.value("disabled", false) ? "disabled" : "enabled");
      }},
     {"PUBLIC KEY", [](const json& j) {
        auto k = text_of(j, "public_key");
        return k == "-" ? std::string("(not connected yet)") : k;
      }}}};
const entity resources_entity{"resources", "resource",
                              {{"ID", [](const json& j) { return text_of(j, "id"); }},
                               {"NAME", [](const json& j) { return text_of(j, "name"); }},
                               {"SITE", [](const json& j) { return text_of(j, "site_id"); }},
                               {"ADDRESS", [](const json& j) { return text_of(j, "address"); }},
                               {"TRAFFIC", [](const json& j) { return filters_of(j); }}}};
const entity policies_entity{"policies", "policy",
                             {{"ID", [](const json& j) { return text_of(j, "id"); }},
                              {"GROUP", [](const json& j) { return text_of(j, "group_id"); }},
                              {"RESOURCE", [](const json& j) { return text_of(j, "resource_id"); }},
                              {"EXPIRES", [](const json& j) { return time_of(j, "expires_at"); }},
                              {"DESCRIPTION", [](const json& j) { return text_of(j, "description"); }}}};
const entity flows_entity{"flows", "flow",
                          {{"ID", [](const json& j) { return text_of(j, "id"); }},
                           {"CLIENT", [](const json& j) { return text_of(j, "client_id"); }},
                           {"GATEWAY", [](const json& j) { return text_of(j, "gateway_id"); }},
                           {"RESOURCE", [](const json& j) { return text_of(j, "resource_id"); }},
                           {"EXPIRES", [](const json& j) { return time_of(j, "expires_at"); }}}};

void print_rows(const entity& e, const json& items) {
  if (!items.is_array() || items.empty()) {
    std::cout << "(no " << e.plural << ")\n";
    return;
  }
  std::vector<std::string> headers;
  for (const auto& c : e.columns) headers.emplace_back(c.header);
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (const auto& c : e.columns) row.push_back(c.cell(item));
    rows.push_back(std::move(row));
  }
  print_table(headers, rows);
}

std::string flows_note(const json& answer) {
  const auto revoked = answer.value("flows_revoked", 0);
  const auto updated = answer.value("flows_updated", 0);
  std::string note;
  if (revoked > 0) note += "; revoked " + std::to_string(revoked) + (revoked == 1 ? " live flow" : " live flows");
  if (updated > 0)
    note += "; " + std::to_string(updated) + (updated == 1 ? " live flow" : " live flows") +
            " now last until another policy's expiry";
  return note;
}

// ---- the subcommands ----------------------------------------------------------------------------------------

/// Everything a leaf subcommand may take; each leaf owns one.
struct leaf_args {
  std::string first, second;  // positionals: NAME, ID, GROUP USER
  std::string site, name, user, group, resource, address, email, expires_in, expires_at;
  std::vector<std::string> filters;
};

using builder = std::function<bool(const leaf_args&, admin_call&, std::string&)>;
using printer = std::function<void(const leaf_args&, const json&)>;

CLI::App* leaf(CLI::App* parent, const std::shared_ptr<admin_options>& options, const std::string& name,
               const std::string& description, const std::function<void(CLI::App*, leaf_args&)>& setup,
               builder build, printer print) {
  auto args = std::make_shared<leaf_args>();
  auto* cmd = parent->add_subcommand(name, description);
  setup(cmd, *args);
  cmd->callback([options, args, build = std::move(build), print = std::move(print)] {
    options->build = [args, build](admin_call& call, std::string& usage) { return build(*args, call, usage); };
    options->print = [args, print](const std::string& body) {
      const json parsed = body.empty() ? json(nullptr) : json::parse(body, nullptr, false);
      print(*args, parsed);
    };
  });
  return cmd;
}

builder get_list(const entity& e) {
  return [&e](const leaf_args&, admin_call& call, std::string&) {
    call = {"GET", std::string("/v1/") + e.plural, ""};
    return true;
  };
}

printer print_list(const entity& e) {
  return [&e](const leaf_args&, const json& answer) { print_rows(e, answer); };
}

builder delete_one(const entity& e) {
  return [&e](const leaf_args& a, admin_call& call, std::string&) {
    call = {"DELETE", std::string("/v1/") + e.plural + "/" + path_segment(a.first), ""};
    return true;
  };
}

printer print_deleted(const entity& e) {
  return [&e](const leaf_args& a, const json& answer) {
    std::cout << "deleted " << e.singular << " " << a.first << flows_note(answer) << "\n";
  };
}

/// A created item as a one-row table; a token, shown this once, on a line of its own.
printer print_created(const entity& e) {
  return [&e](const leaf_args&, const json& answer) {
    print_rows(e, json::array({answer}));
    if (answer.is_object() && answer.contains("token") && answer["token"].is_string()) {
      std::cout << "\nThe " << e.singular
                << "'s token follows. It is shown this once (the portal keeps only its hash); hand it to the "
                << e.singular << " now:\n"
                << answer["token"].get<std::string>() << "\n";
    }
  };
}

void add_id(CLI::App* cmd, leaf_args& a, const std::string& what) {
  cmd->add_option(what == "flow" ? "FLOW_ID" : "ID", a.first, "the " + what + "'s id")->required();
}

void add_crud(CLI::App* parent, const std::shared_ptr<admin_options>& options, const entity& e) {
  leaf(parent, options, "list", std::string("List the ") + e.plural + ".", [](CLI::App*, leaf_args&) {}, get_list(e),
       print_list(e));
  leaf(
      parent, options, "delete",
      std::string("Delete a ") + e.singular + " (and what belongs to it); live flows it granted are revoked.",
      [&e](CLI::App* cmd, leaf_args& a) { add_id(cmd, a, e.singular); }, delete_one(e), print_deleted(e));
}

builder post(const entity& e, std::function<json(const leaf_args&, std::string&)> body) {
  return [&e, body = std::move(body)](const leaf_args& a, admin_call& call, std::string& usage) {
    auto j = body(a, usage);
    if (!usage.empty()) return false;
    call = {"POST", std::string("/v1/") + e.plural, j.dump()};
    return true;
  };
}

void add_entities(CLI::App* admin, const std::shared_ptr<admin_options>& options) {
  auto* sites = admin->add_subcommand("sites", "Sites: places with resources and the gateways that reach them.");
  sites->require_subcommand(1);
  add_crud(sites, options, sites_entity);
  leaf(
      sites, options, "create", "Create a site.",
      [](CLI::App* cmd, leaf_args& a) { cmd->add_option("NAME", a.first, "the site's name")->required(); },
      post(sites_entity, [](const leaf_args& a, std::string&) { return json{{"name", a.first}}; }),
      print_created(sites_entity));

  auto* gateways = admin->add_subcommand("gateways", "Gateways: the data plane of a site.");
  gateways->require_subcommand(1);
  add_crud(gateways, options, gateways_entity);
  leaf(
      gateways, options, "create", "Create a gateway in a site; prints its token once.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("--site", a.site, "the site's id")->required();
        cmd->add_option("--name", a.name, "the gateway's name")->required();
      },
      post(gateways_entity,
           [](const leaf_args& a, std::string&) { return json{{"site_id", a.site}, {"name", a.name}}; }),
      print_created(gateways_entity));

  auto* users = admin->add_subcommand("users", "Users: people, who belong to groups and own clients.");
  users->require_subcommand(1);
  add_crud(users, options, users_entity);
  leaf(
      users, options, "create", "Create a user.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("NAME", a.first, "the user's name")->required();
        cmd->add_option("--email", a.email, "the user's email address (unique)")->required();
      },
      post(users_entity, [](const leaf_args& a, std::string&) { return json{{"name", a.first}, {"email", a.email}}; }),
      print_created(users_entity));

  auto* groups = admin->add_subcommand("groups", "Groups of users: what policies grant access to.");
  groups->require_subcommand(1);
  add_crud(groups, options, groups_entity);
  leaf(
      groups, options, "create", "Create a group.",
      [](CLI::App* cmd, leaf_args& a) { cmd->add_option("NAME", a.first, "the group's name")->required(); },
      post(groups_entity, [](const leaf_args& a, std::string&) { return json{{"name", a.first}}; }),
      print_created(groups_entity));
  leaf(
      groups, options, "add-member", "Add a user to a group.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("GROUP", a.first, "the group's id")->required();
        cmd->add_option("USER", a.second, "the user's id")->required();
      },
      [](const leaf_args& a, admin_call& call, std::string&) {
        call = {"POST", "/v1/groups/" + path_segment(a.first) + "/members", json{{"user_id", a.second}}.dump()};
        return true;
      },
      [](const leaf_args& a, const json&) { std::cout << "added user " << a.second << " to group " << a.first << "\n"; });
  leaf(
      groups, options, "remove-member", "Remove a user from a group; flows that needed the membership are revoked.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("GROUP", a.first, "the group's id")->required();
        cmd->add_option("USER", a.second, "the user's id")->required();
      },
      [](const leaf_args& a, admin_call& call, std::string&) {
        call = {"DELETE", "/v1/groups/" + path_segment(a.first) + "/members/" + path_segment(a.second), ""};
        return true;
      },
      [](const leaf_args& a, const json& answer) {
        std::cout << "removed user " << a.second << " from group " << a.first << flows_note(answer) << "\n";
      });

  auto* clients = admin->add_subcommand("clients", "Clients: a user's devices.");
  clients->require_subcommand(1);
  add_crud(clients, options, clients_entity);
  leaf(
      clients, options, "create", "Create a client for a user; prints its token once.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("--user", a.user, "the user's id")->required();
        cmd->add_option("--name", a.name, "the device's name")->required();
      },
      post(clients_entity, [](const leaf_args& a, std::string&) { return json{{"user_id", a.user}, {"name", a.name}}; }),
      print_created(clients_entity));
  for (const bool disable : {true, false}) {
    leaf(
        clients, options, disable ? "disable" : "enable",
        disable ? "Disable a client: it is refused and its live flows are revoked." : "Enable a disabled client.",
        [](CLI::App* cmd, leaf_args& a) { add_id(cmd, a, "client"); },
        [disable](const leaf_args& a, admin_call& call, std::string&) {
          call = {"PATCH", "/v1/clients/" + path_segment(a.first), json{{"disabled", disable}}.dump()};
          return true;
        },
        [disable](const leaf_args& a, const json& answer) {
          std::cout << (disable ? "disabled" : "enabled") << " client " << a.first << flows_note(answer) << "\n";
        });
  }

  auto* resources = admin->add_subcommand("resources", "Resources: an address or a range behind a site.");
  resources->require_subcommand(1);
  add_crud(resources, options, resources_entity);
  leaf(
      resources, options, "create", "Create a resource in a site.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("--site", a.site, "the site's id")->required();
        cmd->add_option("--name", a.name, "the resource's name")->required();
        cmd->add_option("--address", a.address, "an IP address or a CIDR prefix, e.g. 10.0.0.5 or 10.0.0.0/24")
            ->required();
        cmd->add_option("--filter", a.filters,
                        "allow only this traffic, e.g. tcp:443, tcp:80-443, udp:53, icmp (repeat for more; "
                        "none: all traffic)")
            ->allow_extra_args(false);
      },
      post(resources_entity,
           [](const leaf_args& a, std::string& usage) {
             json filters = json::array();
             for (const auto& text : a.filters) {
               std::string why;
               auto f = parse_filter(text, why);
               if (!f) {
                 usage = "--filter " + text + ": " + why;
                 return json();
               }
               filters.push_back(std::move(*f));
             }
             return json{{"site_id", a.site}, {"name", a.name}, {"address", a.address}, {"filters", filters}};
           }),
      print_created(resources_entity));

  auto* policies = admin->add_subcommand("policies", "Policies: a group may reach a resource, for good or until a time.");
  policies->require_subcommand(1);
  add_crud(policies, options, policies_entity);
  leaf(
      policies, options, "create", "Let a group reach a resource, for good or until a time.",
      [](CLI::App* cmd, leaf_args& a) {
        cmd->add_option("--group", a.group, "the group's id")->required();
        cmd->add_option("--resource", a.resource, "the resource's id")->required();
        auto* in = cmd->add_option("--expires-in", a.expires_in, "access ends after this long: 90s, 10m, 8h, 7d, 1h30m");
        auto* at = cmd->add_option("--expires-at", a.expires_at, "access ends at this time, in unix seconds");
        in->excludes(at);
        at->excludes(in);
      },
      post(policies_entity,
           [](const leaf_args& a, std::string& usage) {
             json body{{"group_id", a.group}, {"resource_id", a.resource}};
             if (!a.expires_in.empty()) {
               auto d = parse_duration(a.expires_in);
               if (!d) {
                 usage = "--expires-in " + a.expires_in + ": write a duration such as 90s, 10m, 8h, 7d or 1h30m";
                 return json();
               }
               const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
               body["expires_at"] = static_cast<std::int64_t>(now) + *d;
             } else if (!a.expires_at.empty()) {
               auto at = parse_integer(a.expires_at);
               if (!at || *at <= 0) {
                 usage = "--expires-at " + a.expires_at + ": write a time in unix seconds, e.g. $(date -d 'tomorrow 18:00' +%s)";
                 return json();
               }
               body["expires_at"] = *at;
             }
             return body;
           }),
      print_created(policies_entity));

  auto* flows = admin->add_subcommand("flows", "Flows: access the portal granted and gateways enforce now.");
  flows->require_subcommand(1);
  leaf(flows, options, "list", "List the live flows.", [](CLI::App*, leaf_args&) {}, get_list(flows_entity),
       print_list(flows_entity));
  leaf(
      flows, options, "revoke",
      "Revoke one flow: its gateway drops it and says goodbye. The policy stays; the client may ask again.",
      [](CLI::App* cmd, leaf_args& a) { add_id(cmd, a, "flow"); }, delete_one(flows_entity),
      [](const leaf_args& a, const json&) { std::cout << "revoked flow " << a.first << "\n"; });
}

// ---- talking to the portal ---------------------------------------------------------------------------------

int fail(const std::string& message, int code = 1) {
  std::cerr << "firebreak admin: " << message << "\n";
  return code;
}

/// The admin token: $FIREBREAK_ADMIN_TOKEN, or the first line of the token file.
std::optional<std::string> load_token(const admin_options& options, std::string& why) {
  if (const char* env = std::getenv("FIREBREAK_ADMIN_TOKEN"); env && *env) return std::string(env);
  std::ifstream in(options.token_file);
  if (!in) {
    std::error_code ec;
    const bool exists = fs::exists(options.token_file, ec);
    why = "cannot read the admin token file " + options.token_file + ": " +
          (exists ? "permission denied (run as the portal's user, or set FIREBREAK_ADMIN_TOKEN)"
                  : "it does not exist (the portal writes it on its first start; pass --token-file, or set "
                    "FIREBREAK_ADMIN_TOKEN)");
    return std::nullopt;
  }
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) {
    why = "the admin token file " + options.token_file + " is empty";
    return std::nullopt;
  }
  return token;
}

}  // namespace

std::shared_ptr<admin_options> add_admin_command(CLI::App& app) {
  auto options = std::make_shared<admin_options>();
  auto* admin = app.add_subcommand(
      "admin",
      "Manage the portal over its admin API: sites, gateways, users, groups, clients, resources, policies, flows.\n"
      "The admin token is read from $FIREBREAK_ADMIN_TOKEN when set, otherwise from --token-file.\n"
      "Exit status: 0 done, 1 the portal refused or could not be reached, 2 a usage error.");
  admin->require_subcommand(1);
  admin->fallthrough();  // global options may follow the subcommands: `firebreak admin sites list --json`
  admin->add_option("--portal", options->portal, "the portal's admin API, host:port")
      ->envname("FIREBREAK_ADMIN_PORTAL")
      ->capture_default_str();
  admin->add_option("--token-file", options->token_file, "the file holding the admin token")
      ->envname("FIREBREAK_ADMIN_TOKEN_FILE")
      ->capture_default_str();
  admin->add_option("--ca-file", options->ca_file,
                    "the CA certificate that vouches for the portal (default: tls/ca-cert.pem beside the token file)")
      ->envname("FIREBREAK_ADMIN_CA_FILE");
  admin->add_flag("--json", options->json, "print the portal's JSON answer as it is, for scripts");
  add_entities(admin, options);
  return options;
}

int run_admin(const admin_options& options) {
  if (!options.build) return fail("choose what to do, e.g. `firebreak admin sites list` (see --help)", 2);
  admin_call call;
  std::string usage;
  if (!options.build(call, usage)) return fail(usage, 2);

  std::string host;
  std::uint16_t port = 0;
  if (!split_portal(options.portal, host, port))
    return fail("--portal " + options.portal + ": write host:port, e.g. 127.0.0.1:8444 or [::1]:8444", 2);

  std::string why;
  auto token = load_token(options, why);
  if (!token) return fail(why);

  const fs::path ca = options.ca_file.empty() ? fs::path(options.token_file).parent_path() / "tls" / "ca-cert.pem"
                                              : fs::path(options.ca_file);
  if (std::error_code ec; !fs::exists(ca, ec))
    return fail("the CA file " + ca.string() + " does not exist; pass --ca-file with the CA that vouches for the "
                "portal (a portal that made its own keeps it in <data dir>/tls/ca-cert.pem)");

  std::map<std::string, std::string> headers{{"Authorization", "Bearer " + *token}, {"Accept", "application/json"}};
  if (!call.body.empty()) headers["Content-Type"] = "application/json";
  const std::string where = host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                                                 : host + ":" + std::to_string(port);
  auto answer = websocket::https_request(host, port, call.method, call.target, headers, call.body, ca,
                                         std::chrono::duration_cast<std::chrono::milliseconds>(request_timeout));
  if (answer.error) {
    using kind = websocket::client_error::kind;
    switch (answer.error->what) {
      case kind::resolve:
      case kind::connect:
        return fail("cannot reach the portal's admin API at " + where + " (" + answer.error->message +
                    "). The portal may not be running, or listens elsewhere: start `firebreak portal`, or point "
                    "--portal (FIREBREAK_ADMIN_PORTAL) at its admin address.");
      case kind::timeout:
        return fail("the portal's admin API at " + where + " did not answer within " +
                    std::to_string(request_timeout.count()) + " s; it may be overloaded or not running");
      case kind::tls:
        return fail("TLS with the portal at " + where + " failed (" + answer.error->message + "): " + ca.string() +
                    " does not vouch for it, or its certificate does not name " + host + ". Pass --ca-file with the "
                    "portal's CA, or start the portal with --hostname " + host + ".");
      default:
        return fail("talking to the portal at " + where + " failed: " + answer.error->message);
    }
  }

  if (answer.status < 200 || answer.status >= 300) {
    const auto body = json::parse(answer.body, nullptr, false);
    std::string message = body.is_object() && body.contains("error") && body["error"].is_string()
                              ? body["error"].get<std::string>()
                              : "the portal answered HTTP " + std::to_string(answer.status);
    if (answer.status == 401 || answer.status == 403)
      message += " (the token came from " +
                 std::string(std::getenv("FIREBREAK_ADMIN_TOKEN") && *std::getenv("FIREBREAK_ADMIN_TOKEN")
                                 ? "$FIREBREAK_ADMIN_TOKEN"
                                 : options.token_file) +
                 ")";
    if (options.json) std::cout << answer.body << "\n";
    return fail(message);
  }

  if (options.json) {
    if (!answer.body.empty()) std::cout << answer.body << "\n";
  } else {
    options.print(answer.body);
  }
  return 0;
}

}  // namespace firebreak::apps
