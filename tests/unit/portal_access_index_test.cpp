// The access index: which resources each client may reach at a moment, from the tables the store actor
// caches, and the difference a connected client must be pushed when that moves. Times are unix
// milliseconds on a made-up clock.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "actors/portal/access_index.hpp"

using namespace firebreak::portal;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;
constexpr std::int64_t hour = 3'600'000;

/// Ada (engineering and on-call) and Bob (sales) each have a laptop; Carol's laptop is disabled.
struct office {
  std::map<std::string, client> clients{
      {"c-ada", {"c-ada", "u-ada", "ada's laptop", "", "100.64.0.1", "fd00::1", false}},
      {"c-bob", {"c-bob", "u-bob", "bob's laptop", "", "100.64.0.2", "fd00::2", false}},
      {"c-carol", {"c-carol", "u-carol", "carol's laptop", "", "100.64.0.3", "fd00::3", true}},
  };
  std::vector<resource> resources{{"r-wiki", "s-office", "wiki", "10.0.0.5", {{"tcp", 443, 443}}},
                                  {"r-crm", "s-office", "crm", "10.0.0.6", {}},
                                  {"r-db", "s-office", "db", "10.0.1.0/24", {{"icmp", 0, 0}}}};
  std::vector<membership> memberships{{"grp-eng", "u-ada"}, {"grp-oncall", "u-ada"}, {"grp-sales", "u-bob"},
                                      {"grp-eng", "u-carol"}};
  std::vector<policy> policies{{"p-eng-wiki", "grp-eng", "r-wiki", std::nullopt, ""},
                               {"p-oncall-db", "grp-oncall", "r-db", t0 + hour, "tonight only"},
                               {"p-oncall-wiki", "grp-oncall", "r-wiki", std::nullopt, ""},
                               {"p-sales-crm", "grp-sales", "r-crm", std::nullopt, ""}};

  access_index index() const { return access_index(policies, memberships, resources, clients); }
};

std::vector<std::string> ids(const resource_view& v) {
  std::vector<std::string> out;
  for (const auto& [id, fingerprint] : v) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("a client reaches the resources of every group its user is in, each once, while policies last") {
  office o;
  auto index = o.index();
  CHECK(ids(index.granted("c-ada", t0)) == std::vector<std::string>{"r-db", "r-wiki"});
  CHECK(ids(index.granted("c-bob", t0)) == std::vector<std::string>{"r-crm"});
  // At its expiry (exclusive) the on-call policy no longer grants the database.
  CHECK(ids(index.granted("c-ada", t0 + hour)) == std::vector<std::string>{"r-wiki"});
}

TEST_CASE("a disabled or unknown client reaches nothing") {
  office o;
  auto index = o.index();
  CHECK(index.granted("c-carol", t0).empty());
  CHECK(index.granted("c-nobody", t0).empty());
  CHECK_FALSE(index.may_connect("c-carol"));
  CHECK_FALSE(index.may_connect("c-nobody"));
  CHECK(index.may_connect("c-ada"));
}

TEST_CASE("descriptions are the wire form clients are sent; an unknown resource has none") {
  office o;
  auto index = o.index();
  auto wiki = nlohmann::json::parse(index.description("r-wiki"));
  CHECK(wiki["id"] == "r-wiki");
  CHECK(wiki["address"] == "10.0.0.5");
  CHECK(wiki["site_id"] == "s-office");
  REQUIRE(wiki["filters"].size() == 1);
  CHECK(wiki["filters"][0]["protocol"] == "tcp");
  CHECK(wiki["filters"][0]["port_range_start"] == 443);
  auto db = nlohmann::json::parse(index.description("r-db"));
  CHECK(db["filters"][0]["protocol"] == "icmp");
  CHECK_FALSE(db["filters"][0].contains("port_range_start"));
  CHECK(index.description("r-gone").empty());
}

TEST_CASE("the diff names what is new or changed and what is gone, and nothing when nothing moved") {
  office o;
  const auto before = o.index().granted("c-ada", t0);
  CHECK(o.index().diff(before, before).empty());

  // The on-call policy for the database is deleted and the wiki moves to another port.
  std::erase_if(o.policies, [](const policy& p) { return p.id == "p-oncall-db"; });
  o.resources[0].filters = {{"tcp", 8443, 8443}};
  // Bob joins on-call.
  o.memberships.push_back({"grp-oncall", "u-bob"});
  auto index = o.index();

  auto ada = index.diff(before, index.granted("c-ada", t0));
  CHECK(ada.deleted_ids == std::vector<std::string>{"r-db"});
  REQUIRE(ada.upserted.size() == 1);
  CHECK(nlohmann::json::parse(ada.upserted[0])["filters"][0]["port_range_start"] == 8443);

  auto bob = index.diff(o.index().granted("c-bob", t0 - 1), index.granted("c-bob", t0));
  CHECK(bob.empty());  // the same index, the same moment: no change
  office fresh;
  auto bob_gain = index.diff(fresh.index().granted("c-bob", t0), index.granted("c-bob", t0));
  CHECK(bob_gain.deleted_ids.empty());
  REQUIRE(bob_gain.upserted.size() == 1);
  CHECK(nlohmann::json::parse(bob_gain.upserted[0])["id"] == "r-wiki");
}
