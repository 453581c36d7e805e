// Policy evaluation on plain data: who may reach what and until when, and what the portal must tell
// gateways about live flows when a policy, a membership, a resource or a client changes, or a policy
// runs out while a flow is live. Times are unix milliseconds on a made-up clock.
#include <doctest/doctest.h>

#include "actors/portal/policy.hpp"

using namespace firebreak::portal;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;  // "now" when the story starts
constexpr std::int64_t minute = 60'000;
constexpr std::int64_t hour = 60 * minute;

/// Ada is an engineer with a laptop; Bob is in sales with his own. The wiki sits behind the office site.
struct office {
  client ada_laptop{"c-ada", "u-ada", "ada's laptop", "", "100.64.0.1", "fd00:2021:1111::1", false};
  client bob_laptop{"c-bob", "u-bob", "bob's laptop", "", "100.64.0.2", "fd00:2021:1111::2", false};
  gateway office_gw{"g-office", "s-office", "office-1", "", "100.64.0.3", "fd00:2021:1111::3"};
  resource wiki{"r-wiki", "s-office", "wiki", "10.0.0.5", {{"tcp", 443, 443}}};
  resource crm{"r-crm", "s-office", "crm", "10.0.0.6", {}};
  std::vector<membership> memberships{{"grp-engineering", "u-ada"}, {"grp-sales", "u-bob"}};
  std::vector<policy> policies{{"p-eng-wiki", "grp-engineering", "r-wiki", std::nullopt, "engineers read the wiki"},
                               {"p-sales-crm", "grp-sales", "r-crm", t0 + hour, "sales, for the quarter"}};

  access_snapshot snapshot() const {
    return {{ada_laptop, bob_laptop}, {office_gw}, {wiki, crm}, policies, memberships};
  }

  /// A flow as the portal would have recorded it when it authorized `c` for `r`.
  flow granted(const client& c, const resource& r, std::int64_t at = t0) const {
    auto d = authorize(c, r, policies, memberships, at);
    REQUIRE(d.allowed);
    return {"f-" + c.id + "-" + r.id, c.id, office_gw.id, r.id, d.policy_id, at, d.expires_at_ms};
  }

  void remove_policy(const std::string& id) {
    std::erase_if(policies, [&](const policy& p) { return p.id == id; });
  }
};

}  // namespace

// ---- authorize ------------------------------------------------------------------------------------------

TEST_CASE("a member of a group with a policy for the resource may reach it, for good when the policy never ends") {
  office o;
  auto d = authorize(o.ada_laptop, o.wiki, o.policies, o.memberships, t0);
  CHECK(d.allowed);
  CHECK(d.policy_id == "p-eng-wiki");
  CHECK_FALSE(d.expires_at_ms);
}

TEST_CASE("someone outside the group is refused, even with a policy for the resource elsewhere") {
  office o;
  CHECK_FALSE(authorize(o.bob_laptop, o.wiki, o.policies, o.memberships, t0).allowed);
  CHECK_FALSE(authorize(o.ada_laptop, o.crm, o.policies, o.memberships, t0).allowed);
  auto refused = authorize(o.bob_laptop, o.wiki, o.policies, o.memberships, t0);
  CHECK(refused.policy_id.empty());
  CHECK_FALSE(refused.expires_at_ms);
}

TEST_CASE("a disabled client is never allowed, whatever its user's groups") {
  office o;
  o.ada_laptop.disabled = true;
  CHECK_FALSE(authorize(o.ada_laptop, o.wiki, o.policies, o.memberships, t0).allowed);
}

TEST_CASE("a policy grants until its expiry, and not at or after it") {
  office o;
  auto before = authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0 + hour - 1);
  CHECK(before.allowed);
  CHECK(before.expires_at_ms == t0 + hour);
  CHECK_FALSE(authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0 + hour).allowed);
  CHECK_FALSE(authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0 + 2 * hour).allowed);
}

TEST_CASE("with several covering policies, access lasts until the latest expiry") {
  office o;
  o.policies.push_back({"p-sales-crm-week", "grp-sales", "r-crm", t0 + 7 * 24 * hour, "a week"});
  o.policies.push_back({"p-sales-crm-day", "grp-sales", "r-crm", t0 + 24 * hour, "a day"});
  auto d = authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0);
  CHECK(d.policy_id == "p-sales-crm-week");
  CHECK(d.expires_at_ms == t0 + 7 * 24 * hour);

  SUBCASE("and for good when one of them never expires") {
    o.policies.push_back({"p-sales-crm-forever", "grp-sales", "r-crm", std::nullopt, ""});
    auto forever = authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0);
    CHECK(forever.policy_id == "p-sales-crm-forever");
    CHECK_FALSE(forever.expires_at_ms);
  }
  SUBCASE("an expired policy never wins, however late it once was") {
    auto later = authorize(o.bob_laptop, o.crm, o.policies, o.memberships, t0 + 2 * 24 * hour);
    CHECK(later.policy_id == "p-sales-crm-week");
  }
}

TEST_CASE("next_expiry is the earliest expiry still ahead") {
  office o;
  o.policies.push_back({"p-later", "grp-sales", "r-crm", t0 + 3 * hour, ""});
  o.policies.push_back({"p-past", "grp-sales", "r-crm", t0 - hour, ""});
  CHECK(next_expiry(o.policies, t0) == t0 + hour);
  CHECK(next_expiry(o.policies, t0 + hour) == t0 + 3 * hour);  // an expiry at `now` is behind us
  CHECK_FALSE(next_expiry(o.policies, t0 + 3 * hour));
}

// ---- reevaluate -----------------------------------------------------------------------------------------

TEST_CASE("nothing changed, nothing to tell") {
  office o;
  std::vector<flow> live{o.granted(o.ada_laptop, o.wiki), o.granted(o.bob_laptop, o.crm)};
  CHECK(reevaluate(live, o.snapshot(), t0 + minute).empty());
}

TEST_CASE("a policy that expires while a flow is live revokes the flow") {
  office o;
  std::vector<flow> live{o.granted(o.bob_laptop, o.crm)};
  REQUIRE(live[0].expires_at_ms == t0 + hour);

  CHECK(reevaluate(live, o.snapshot(), t0 + hour - 1).empty());
  auto changes = reevaluate(live, o.snapshot(), t0 + hour);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].kind == flow_change_kind::revoke);
  CHECK(changes[0].reason == revoke_reason::expired);
  CHECK(changes[0].flow == live[0]);
}

TEST_CASE("a policy that expires while a flow is live, with a second longer policy, extends the flow") {
  office o;
  std::vector<flow> live{o.granted(o.bob_laptop, o.crm)};  // granted under the one-hour policy
  o.policies.push_back({"p-sales-crm-extended", "grp-sales", "r-crm", t0 + 5 * hour, "extended"});

  auto changes = reevaluate(live, o.snapshot(), t0 + hour + 1);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].kind == flow_change_kind::expiry_updated);
  CHECK(changes[0].new_expires_at_ms == t0 + 5 * hour);
  CHECK(changes[0].new_policy_id == "p-sales-crm-extended");
  CHECK(changes[0].reason == revoke_reason::none);

  SUBCASE("the second policy already counts before the first one runs out") {
    auto early = reevaluate(live, o.snapshot(), t0);
    REQUIRE(early.size() == 1);
    CHECK(early[0].kind == flow_change_kind::expiry_updated);
    CHECK(early[0].new_expires_at_ms == t0 + 5 * hour);
  }
}

TEST_CASE("deleting the only policy revokes; deleting one of two moves the expiry") {
  office o;
  std::vector<flow> live{o.granted(o.ada_laptop, o.wiki)};  // forever, under p-eng-wiki

  SUBCASE("only policy") {
    o.remove_policy("p-eng-wiki");
    auto changes = reevaluate(live, o.snapshot(), t0);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].kind == flow_change_kind::revoke);
    CHECK(changes[0].reason == revoke_reason::access_removed);
  }
  SUBCASE("a shorter policy still covers it") {
    o.policies.push_back({"p-eng-wiki-trial", "grp-engineering", "r-wiki", t0 + 2 * hour, "trial"});
    o.remove_policy("p-eng-wiki");
    auto changes = reevaluate(live, o.snapshot(), t0);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].kind == flow_change_kind::expiry_updated);
    CHECK(changes[0].new_expires_at_ms == t0 + 2 * hour);
    CHECK(changes[0].new_policy_id == "p-eng-wiki-trial");
  }
  SUBCASE("another policy with the same expiry covers it: the gateway needs to hear nothing") {
    o.policies.push_back({"p-eng-wiki-too", "grp-engineering", "r-wiki", std::nullopt, ""});
    o.remove_policy("p-eng-wiki");
    CHECK(reevaluate(live, o.snapshot(), t0).empty());
  }
}

TEST_CASE("deleting a membership revokes the member's flows and nobody else's") {
  office o;
  o.memberships.push_back({"grp-engineering", "u-bob"});
  std::vector<flow> live{o.granted(o.ada_laptop, o.wiki), o.granted(o.bob_laptop, o.wiki),
                         o.granted(o.bob_laptop, o.crm)};
  std::erase(o.memberships, membership{"grp-engineering", "u-bob"});

  auto changes = reevaluate(live, o.snapshot(), t0);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].flow.client_id == "c-bob");
  CHECK(changes[0].flow.resource_id == "r-wiki");
  CHECK(changes[0].kind == flow_change_kind::revoke);
  CHECK(changes[0].reason == revoke_reason::access_removed);
}

TEST_CASE("disabling a client revokes all of its flows") {
  office o;
  o.policies.push_back({"p-eng-crm", "grp-engineering", "r-crm", std::nullopt, ""});
  std::vector<flow> live{o.granted(o.ada_laptop, o.wiki), o.granted(o.ada_laptop, o.crm),
                         o.granted(o.bob_laptop, o.crm)};
  o.ada_laptop.disabled = true;
  auto changes = reevaluate(live, o.snapshot(), t0);
  REQUIRE(changes.size() == 2);
  for (const auto& c : changes) {
    CHECK(c.flow.client_id == "c-ada");
    CHECK(c.kind == flow_change_kind::revoke);
    CHECK(c.reason == revoke_reason::client_disabled);
  }
}

TEST_CASE("flows to a deleted resource, from a deleted client, or through a deleted gateway are revoked") {
  office o;
  std::vector<flow> live{o.granted(o.ada_laptop, o.wiki), o.granted(o.bob_laptop, o.crm)};
  auto snap = o.snapshot();

  SUBCASE("resource") {
    std::erase(snap.resources, o.wiki);
    auto changes = reevaluate(live, snap, t0);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].flow.resource_id == "r-wiki");
    CHECK(changes[0].reason == revoke_reason::resource_deleted);
  }
  SUBCASE("client") {
    std::erase(snap.clients, o.bob_laptop);
    auto changes = reevaluate(live, snap, t0);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].flow.client_id == "c-bob");
    CHECK(changes[0].reason == revoke_reason::client_deleted);
  }
  SUBCASE("gateway") {
    snap.gateways.clear();
    auto changes = reevaluate(live, snap, t0);
    CHECK(changes.size() == 2);
    for (const auto& c : changes) CHECK(c.reason == revoke_reason::gateway_deleted);
  }
}

TEST_CASE("reasons and kinds have names for logs and traces") {
  CHECK(to_string(flow_change_kind::revoke) == "revoke");
  CHECK(to_string(flow_change_kind::expiry_updated) == "expiry_updated");
  CHECK(to_string(revoke_reason::expired) == "expired");
  CHECK(to_string(revoke_reason::access_removed) == "access_removed");
}
