// The portal's store on real SQLite: what an admin creates, lists and deletes; what deletes take with
// them; tokens (shown once, kept as digests); tunnel addresses across a restart; migrations on reopen;
// input that must be refused with a readable reason; and changes that fail half-way leaving nothing.
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>

#include "actors/portal/store.hpp"
#include "config/cidr.hpp"

using namespace firebreak::portal;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;
constexpr std::int64_t hour = 3'600'000;

constexpr const char* ada_key = "ZJgS0Rqd8n4mfwMWhdSwFb+YmhAjTxGWQJ8UmDqGIFo=";
constexpr const char* gateway_key = "0P/YpmNRiQV0gp0+0yPhtJAoTNqP2kTuFOMVklW/L20=";

firebreak::wireguard::system_random randomness;

/// A database file of its own, removed with its WAL and shared-memory files afterwards.
struct temp_db {
  fs::path path;
  temp_db() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("firebreak-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db");
    remove_all_files();
  }
  ~temp_db() { remove_all_files(); }
  void remove_all_files() {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix, ignored);
  }
  /// Runs SQL behind the store's back, as a second connection (the admin's sqlite3 shell, say).
  void raw(const char* sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    INFO((message ? message : ""));
    sqlite3_free(message);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
  std::string bytes() const {
    std::string all;
    for (const char* suffix : {"", "-wal"}) {
      std::ifstream in(path.string() + suffix, std::ios::binary);
      all.append(std::istreambuf_iterator<char>(in), {});
    }
    return all;
  }
};

store open(const std::string& path = ":memory:") {
  auto s = store::open(path, randomness);
  INFO((s ? "" : s.error().message));
  REQUIRE(s);
  return std::move(s).value();
}

template <class T>
store_error refused(const result<T>& r, error_code expected) {
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().code == expected);
  CHECK_FALSE(r.error().message.empty());
  return r.error();
}

/// Acme: an office site with one gateway and the wiki; Ada, an engineer, with a laptop.
struct acme {
  store db;
  site office;
  gateway office_gw;
  user ada;
  group engineering;
  client ada_laptop;
  resource wiki;

  explicit acme(const std::string& path = ":memory:") : db(open(path)) {
    office = *db.create_site("office");
    office_gw = db.create_gateway(office.id, "office-1")->gateway;
    ada = *db.create_user("Ada Lovelace", "ada@acme.test");
    engineering = *db.create_group("engineering");
    REQUIRE(db.add_membership(engineering.id, ada.id));
    ada_laptop = db.create_client(ada.id, "ada's laptop", ada_key)->client;
    wiki = *db.create_resource({office.id, "wiki", "10.0.0.5", {{"tcp", 443, 443}}});
  }

  policy allow(const resource& r, std::optional<std::int64_t> expires = std::nullopt, const group* g = nullptr) {
    auto p = db.create_policy({(g ? *g : engineering).id, r.id, expires, "test"}, t0);
    INFO((p ? "" : p.error().message));
    REQUIRE(p);
    return *p;
  }

  flow connect(const client& c, const resource& r, const policy& p) {
    auto f = db.record_flow({c.id, office_gw.id, r.id, p.id, p.expires_at_ms}, t0);
    INFO((f ? "" : f.error().message));
    REQUIRE(f);
    return *f;
  }
};

bool is_uuid_v4(const std::string& id) {
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') return false;
  if (id[14] != '4' || std::string("89ab").find(id[19]) == std::string::npos) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c == '-' || std::isxdigit(c); });
}

}  // namespace

// ---- opening, schema and restarts ----------------------------------------------------------------------

TEST_CASE("a new database file is created at the latest schema, and reopening it migrates nothing twice") {
  temp_db file;
  {
    auto db = open(file.path);
    CHECK(*db.schema_version() == store::latest_schema_version());
    REQUIRE(db.create_site("office"));
  }
  for (int restart = 0; restart < 2; ++restart) {
    auto db = open(file.path);
    CHECK(*db.schema_version() == store::latest_schema_version());
    auto sites = db.list_sites();
    REQUIRE(sites->size() == 1);
    CHECK((*sites)[0].name == "office");
  }
}

TEST_CASE("the file is in WAL mode with foreign keys enforced") {
  temp_db file;
  acme a(file.path);
  CHECK(fs::exists(file.path.string() + "-wal"));
  // Deleting the site takes its gateway along: ON DELETE CASCADE works only with foreign keys on.
  REQUIRE(a.db.delete_site(a.office.id, t0));
  CHECK(a.db.list_gateways()->empty());
}

TEST_CASE("the database and its WAL files are the owner's alone (0600), even under a permissive umask") {
  temp_db file;
  const auto old_mask = ::umask(0022);
  {
    acme a(file.path);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      CAPTURE(suffix);
      const auto p = fs::path(file.path.string() + suffix);
      REQUIRE(fs::exists(p));
      CHECK((fs::status(p).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    }
  }
  // A file an older Firebreak left readable by everyone is narrowed when opened.
  fs::permissions(file.path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  {
    auto reopened = store::open(file.path.string(), randomness);
    REQUIRE(reopened);
    CHECK((fs::status(file.path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  }
  ::umask(old_mask);
}

TEST_CASE("a database written by a newer Firebreak is refused, not rewritten") {
  temp_db file;
  { open(file.path); }
  file.raw("PRAGMA user_version = 99");
  auto again = store::open(file.path, randomness);
  auto e = refused(again, error_code::io);
  CHECK(e.message.find("newer") != std::string::npos);
  CHECK(e.message.find("99") != std::string::npos);
}

TEST_CASE("a restart loses nothing: every kind of record comes back as it was") {
  temp_db file;
  std::string gw_token, client_token;
  access_snapshot before;
  std::vector<flow> flows_before;
  std::vector<site> sites_before;
  {
    acme a(file.path);
    auto p = a.allow(a.wiki, t0 + hour);
    a.connect(a.ada_laptop, a.wiki, p);
    REQUIRE(a.db.set_gateway_public_key(a.office_gw.id, gateway_key));
    auto gw2 = a.db.create_gateway(a.office.id, "office-2");
    gw_token = gw2->token.reveal();
    auto phone = a.db.create_client(a.ada.id, "ada's phone");
    client_token = phone->token.reveal();
    before = *a.db.snapshot();
    flows_before = *a.db.list_flows();
    sites_before = *a.db.list_sites();
  }
  auto db = open(file.path);
  auto after = *db.snapshot();
  CHECK(after.clients == before.clients);
  CHECK(after.gateways == before.gateways);
  CHECK(after.resources == before.resources);
  CHECK(after.policies == before.policies);
  CHECK(after.memberships == before.memberships);
  CHECK(*db.list_flows() == flows_before);
  CHECK(*db.list_sites() == sites_before);
  CHECK(db.authenticate_gateway(gw_token));
  CHECK(db.authenticate_client(client_token));
}

// ---- create, read, list, delete -------------------------------------------------------------------------

TEST_CASE("sites, gateways, users, groups, clients and resources: create, get, list, delete") {
  acme a;
  CHECK(is_uuid_v4(a.office.id));
  CHECK(is_uuid_v4(a.office_gw.id));
  CHECK(a.office_gw.site_id == a.office.id);
  CHECK(a.office_gw.public_key.empty());  // until the gateway first connects

  CHECK(*a.db.get_site(a.office.id) == a.office);
  CHECK(*a.db.get_gateway(a.office_gw.id) == a.office_gw);
  CHECK(*a.db.get_user(a.ada.id) == a.ada);
  CHECK(*a.db.get_group(a.engineering.id) == a.engineering);
  CHECK(*a.db.get_client(a.ada_laptop.id) == a.ada_laptop);
  CHECK(*a.db.get_resource(a.wiki.id) == a.wiki);
  CHECK(a.db.get_resource(a.wiki.id)->filters == std::vector<port_filter>{{"tcp", 443, 443}});
  CHECK(a.ada_laptop.public_key == ada_key);

  auto lab = *a.db.create_site("lab");
  auto sites = *a.db.list_sites();
  REQUIRE(sites.size() == 2);  // in the order they were made
  CHECK(sites[0] == a.office);
  CHECK(sites[1] == lab);
  CHECK(*a.db.list_memberships() == std::vector<membership>{{a.engineering.id, a.ada.id}});

  REQUIRE(a.db.delete_site(lab.id, t0));
  refused(a.db.get_site(lab.id), error_code::not_found);
  refused(a.db.delete_site(lab.id, t0), error_code::not_found);
  refused(a.db.get_client("no-such-client"), error_code::not_found);
  refused(a.db.delete_policy("no-such-policy", t0), error_code::not_found);
  refused(a.db.remove_membership(a.engineering.id, "nobody", t0), error_code::not_found);
  refused(a.db.delete_flow("no-such-flow"), error_code::not_found);
}

TEST_CASE("public keys arrive later, must be WireGuard keys, and belong to one device each") {
  acme a;
  auto gw = a.db.set_gateway_public_key(a.office_gw.id, gateway_key);
  REQUIRE(gw);
  CHECK(gw->public_key == gateway_key);
  refused(a.db.set_gateway_public_key(a.office_gw.id, "not-a-key"), error_code::invalid);
  refused(a.db.set_gateway_public_key("no-such-gateway", gateway_key), error_code::not_found);

  auto phone = a.db.create_client(a.ada.id, "ada's phone");
  REQUIRE(phone);
  CHECK(phone->client.public_key.empty());
  refused(a.db.set_client_public_key(phone->client.id, ada_key), error_code::conflict);  // the laptop's
  // One key, one peer, across clients and gateways; and the all-zero key is no one's.
  refused(a.db.set_client_public_key(phone->client.id, gateway_key), error_code::conflict);
  refused(a.db.create_client(a.ada.id, "ada's tablet", gateway_key), error_code::conflict);
  refused(a.db.set_gateway_public_key(a.office_gw.id, ada_key), error_code::conflict);
  refused(a.db.set_client_public_key(phone->client.id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), error_code::invalid);
  CHECK(a.db.get_client(phone->client.id)->public_key.empty());
  CHECK(a.db.get_gateway(a.office_gw.id)->public_key == gateway_key);
}

TEST_CASE("names that exist already, and a second identical membership, are conflicts") {
  acme a;
  CHECK(refused(a.db.create_site("office"), error_code::conflict).message.find("office") != std::string::npos);
  refused(a.db.create_group("engineering"), error_code::conflict);
  refused(a.db.create_user("Another Ada", "ada@acme.test"), error_code::conflict);
  refused(a.db.create_gateway(a.office.id, "office-1"), error_code::conflict);
  refused(a.db.create_resource({a.office.id, "wiki", "10.0.0.6", {}}), error_code::conflict);
  refused(a.db.add_membership(a.engineering.id, a.ada.id), error_code::conflict);

  // The same names are fine elsewhere: a gateway and a resource are named within their site.
  auto lab = *a.db.create_site("lab");
  CHECK(a.db.create_gateway(lab.id, "office-1"));
  CHECK(a.db.create_resource({lab.id, "wiki", "10.1.0.5", {}}));
}

// ---- invalid input -----------------------------------------------------------------------------------------

TEST_CASE("a resource with a bad address, an unknown site or bad filters is refused, saying why") {
  acme a;
  auto site = a.office.id;
  auto message = [&](const new_resource& r) { return refused(a.db.create_resource(r), error_code::invalid).message; };

  CHECK(message({site, "db", "10.0.0.300", {}}).find("10.0.0.300") != std::string::npos);
  CHECK(message({site, "db", "example.com", {}}).find("CIDR") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.0/33", {}}).find("10.0.0.0/33") != std::string::npos);
  CHECK(message({site, "db", "10.1.2.3/24", {}}).find("10.1.2.0/24") != std::string::npos);  // suggests the network
  CHECK(message({site, "db", "100.64.0.9", {}}).find("tunnel range") != std::string::npos);
  CHECK(message({site, "db", "fd00:2021:1111::/64", {}}).find("tunnel range") != std::string::npos);
  CHECK(message({"no-such-site", "db", "10.0.0.7", {}}).find("no site with id 'no-such-site'") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.7", {{"tcp", 8080, 80}}}) == "port range 8080-80 is reversed; write 80-8080");
  CHECK(message({site, "db", "10.0.0.7", {{"tcp", 0, 80}}}).find("between 1 and 65535") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.7", {{"udp", 53, 70000}}}).find("between 1 and 65535") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.7", {{"sctp", 1, 2}}}).find("tcp, udp or icmp") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.7", {{"icmp", 1, 1}}}).find("no ports") != std::string::npos);
  CHECK(message({site, "db", "10.0.0.7", {{"tcp", 22, 22}, {"tcp", 22, 22}}}).find("twice") != std::string::npos);
  CHECK(message({site, "", "10.0.0.7", {}}) == "a resource needs a name");

  // And the good shapes: a bare address, IPv6, a broad range around the tunnel range, every protocol.
  CHECK(a.db.create_resource({site, "db", "10.0.0.7", {{"tcp", 5432, 5432}, {"udp", 1, 65535}, {"icmp", 0, 0}}}));
  CHECK(a.db.create_resource({site, "v6 lab", "fd00:1::/64", {}}));
  CHECK(a.db.create_resource({site, "everything", "0.0.0.0/0", {}}));
  CHECK(a.db.list_resources()->size() == 4);
}

TEST_CASE("other input that is refused as invalid") {
  acme a;
  refused(a.db.create_site(""), error_code::invalid);
  refused(a.db.create_site("   "), error_code::invalid);
  refused(a.db.create_site("line\nbreak"), error_code::invalid);
  refused(a.db.create_site(std::string(201, 'x')), error_code::invalid);
  refused(a.db.create_user("Bob", "bob"), error_code::invalid);
  refused(a.db.create_user("Bob", "bob@"), error_code::invalid);
  refused(a.db.create_gateway("no-such-site", "gw"), error_code::invalid);
  refused(a.db.create_client("no-such-user", "laptop"), error_code::invalid);
  refused(a.db.create_client(a.ada.id, "laptop", "too-short"), error_code::invalid);
  refused(a.db.add_membership("no-such-group", a.ada.id), error_code::invalid);
  refused(a.db.add_membership(a.engineering.id, "no-such-user"), error_code::invalid);
  refused(a.db.create_policy({"no-such-group", a.wiki.id, {}, ""}, t0), error_code::invalid);
  refused(a.db.create_policy({a.engineering.id, "no-such-resource", {}, ""}, t0), error_code::invalid);
  auto past = refused(a.db.create_policy({a.engineering.id, a.wiki.id, t0 - 1, ""}, t0), error_code::invalid);
  CHECK(past.message.find("expire") != std::string::npos);

  // A flow goes through a gateway of the resource's own site, under a policy for that resource.
  auto p = a.allow(a.wiki);
  auto lab = *a.db.create_site("lab");
  auto lab_gw = a.db.create_gateway(lab.id, "lab-1")->gateway;
  auto crm = *a.db.create_resource({a.office.id, "crm", "10.0.0.6", {}});
  refused(a.db.record_flow({a.ada_laptop.id, lab_gw.id, a.wiki.id, p.id, {}}, t0), error_code::invalid);
  refused(a.db.record_flow({a.ada_laptop.id, a.office_gw.id, crm.id, p.id, {}}, t0), error_code::invalid);
  refused(a.db.record_flow({"nobody", a.office_gw.id, a.wiki.id, p.id, {}}, t0), error_code::invalid);
  CHECK(a.db.list_flows()->empty());
}

TEST_CASE("a result without a value says so when read anyway") {
  acme a;
  auto missing = a.db.get_site("no-such-site");
  CHECK_THROWS_AS(missing.value(), bad_result_access);
  CHECK(to_string(missing.error().code) == "not_found");
}

// ---- tokens ---------------------------------------------------------------------------------------------

TEST_CASE("a gateway's token is shown once, authenticates it, and stops working when it is deleted") {
  temp_db file;
  acme a(file.path);
  auto created = a.db.create_gateway(a.office.id, "office-2");
  REQUIRE(created);
  const std::string secret = created->token.reveal();
  CHECK(secret.starts_with("fbg_"));
  CHECK(secret.size() == 47);
  CHECK(secret.find_first_of("+/=") == std::string::npos);  // base64url, no padding

  auto who = a.db.authenticate_gateway(secret);
  REQUIRE(who);
  CHECK(*who == created->gateway);

  SUBCASE("a wrong or malformed token is refused, and the refusal never repeats it") {
    std::string wrong = secret;
    wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
    for (const auto& bad : {wrong, std::string("fbg_short"), std::string(), secret + "x"}) {
      auto e = refused(a.db.authenticate_gateway(bad), error_code::unauthorized);
      if (!bad.empty()) CHECK(e.message.find(bad) == std::string::npos);
    }
    // A client token, however valid, is no gateway token.
    auto laptop = a.db.create_client(a.ada.id, "ada's second laptop");
    refused(a.db.authenticate_gateway(laptop->token.reveal()), error_code::unauthorized);
    refused(a.db.authenticate_client(secret), error_code::unauthorized);
  }
  SUBCASE("the database keeps a digest, never the token") {
    auto bytes = file.bytes();
    REQUIRE_FALSE(bytes.empty());
    CHECK(bytes.find(secret) == std::string::npos);
    CHECK(bytes.find(secret.substr(4)) == std::string::npos);
  }
  SUBCASE("after delete") {
    REQUIRE(a.db.delete_gateway(created->gateway.id, t0));
    refused(a.db.authenticate_gateway(secret), error_code::unauthorized);
  }
}

TEST_CASE("a client's token authenticates it until it is disabled or deleted") {
  acme a;
  auto phone = a.db.create_client(a.ada.id, "ada's phone");
  REQUIRE(phone);
  const std::string secret = phone->token.reveal();
  CHECK(secret.starts_with("fbc_"));
  CHECK(a.db.authenticate_client(secret)->id == phone->client.id);

  REQUIRE(a.db.set_client_disabled(phone->client.id, true, t0));
  CHECK(refused(a.db.authenticate_client(secret), error_code::unauthorized).message.find("disabled") !=
        std::string::npos);
  REQUIRE(a.db.set_client_disabled(phone->client.id, false, t0));
  CHECK(a.db.authenticate_client(secret));

  REQUIRE(a.db.delete_client(phone->client.id, t0));
  refused(a.db.authenticate_client(secret), error_code::unauthorized);
}

TEST_CASE("admin credentials: fba_ tokens that work until deleted") {
  acme a;
  auto admin = a.db.create_admin_token("ops laptop");
  REQUIRE(admin);
  CHECK(admin->token.reveal().starts_with("fba_"));
  CHECK(*a.db.authenticate_admin(admin->token.reveal()) == admin->id);
  REQUIRE(a.db.delete_admin_token(admin->id));
  refused(a.db.authenticate_admin(admin->token.reveal()), error_code::unauthorized);
}

TEST_CASE("minted tokens differ, and a moved-from token holds nothing") {
  firebreak::wireguard::system_random r;
  auto a = mint_token(token_kind::client, r);
  auto b = mint_token(token_kind::client, r);
  CHECK(a.reveal() != b.reveal());
  CHECK(is_well_formed(a.reveal(), token_kind::client));
  CHECK_FALSE(is_well_formed(a.reveal(), token_kind::gateway));
  CHECK(digests_equal(digest(a.reveal()), digest(a.reveal())));
  CHECK_FALSE(digests_equal(digest(a.reveal()), digest(b.reveal())));
  token moved = std::move(a);
  CHECK(a.reveal().empty());  // NOLINT(bugprone-use-after-move): that is the point
  CHECK(is_well_formed(moved.reveal(), token_kind::client));
}

// ---- tunnel addresses ----------------------------------------------------------------------------------------

TEST_CASE("tunnel addresses are unique across clients and gateways, and across a restart") {
  temp_db file;
  std::set<std::string> v4, v6;
  auto remember = [&](const std::string& a4, const std::string& a6) {
    CHECK(v4.insert(a4).second);
    CHECK(v6.insert(a6).second);
  };
  std::string deleted_address;
  {
    acme a(file.path);
    remember(a.office_gw.ipv4, a.office_gw.ipv6);
    remember(a.ada_laptop.ipv4, a.ada_laptop.ipv6);
    CHECK(a.office_gw.ipv4 == "100.64.0.1");
    CHECK(a.office_gw.ipv6 == "fd00:2021:1111::1");
    for (int i = 0; i < 300; ++i) {  // enough to cross 100.64.0.255 and 100.64.1.0
      auto c = a.db.create_client(a.ada.id, "device " + std::to_string(i));
      REQUIRE(c);
      remember(c->client.ipv4, c->client.ipv6);
    }
    deleted_address = a.ada_laptop.ipv4;
    REQUIRE(a.db.delete_client(a.ada_laptop.id, t0));
  }
  {
    auto db = open(file.path);
    auto site = (*db.list_sites())[0];
    for (int i = 0; i < 5; ++i) {
      auto g = db.create_gateway(site.id, "after restart " + std::to_string(i));
      REQUIRE(g);
      remember(g->gateway.ipv4, g->gateway.ipv6);
      CHECK(g->gateway.ipv4 != deleted_address);  // not handed out again soon after its owner went
    }
  }
  const auto pool4 = *firebreak::config::cidr::parse("100.64.0.0/10");
  const auto pool6 = *firebreak::config::cidr::parse("fd00:2021:1111::/48");
  for (const auto& a : v4) {
    auto parsed = firebreak::config::cidr::parse(a);
    REQUIRE(parsed);
    CHECK(pool4.contains(parsed->addr, false));
    CHECK(parsed->addr[3] != 0);
    CHECK(parsed->addr[3] != 255);
  }
  for (const auto& a : v6) {
    auto parsed = firebreak::config::cidr::parse(a);
    REQUIRE(parsed);
    CHECK(pool6.contains(parsed->addr, true));
  }
  CHECK(v4.count("100.64.0.255") == 0);
  CHECK(v4.count("100.64.1.0") == 0);
  CHECK(v4.size() == 307);
}

// ---- what deletes take with them ---------------------------------------------------------------------------

TEST_CASE("deleting a site takes its gateways, resources, their policies and flows, and says so") {
  acme a;
  auto p = a.allow(a.wiki);
  auto f = a.connect(a.ada_laptop, a.wiki, p);
  auto lab = *a.db.create_site("lab");
  auto lab_db = *a.db.create_resource({lab.id, "db", "10.9.0.1", {}});
  a.allow(lab_db);

  auto changes = a.db.delete_site(a.office.id, t0);
  REQUIRE(changes);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].flow == f);
  CHECK((*changes)[0].kind == flow_change_kind::revoke);
  CHECK((*changes)[0].reason == revoke_reason::gateway_deleted);

  CHECK(a.db.list_gateways()->empty());
  CHECK(*a.db.list_resources() == std::vector<resource>{lab_db});
  CHECK(a.db.list_policies()->size() == 1);
  CHECK(a.db.list_flows()->empty());
  // People and groups are not the site's.
  CHECK(a.db.list_users()->size() == 1);
  CHECK(a.db.list_clients()->size() == 1);
  CHECK(a.db.list_memberships()->size() == 1);
}

TEST_CASE("deleting a resource revokes its flows and takes its policies") {
  acme a;
  auto p = a.allow(a.wiki);
  a.connect(a.ada_laptop, a.wiki, p);
  auto changes = a.db.delete_resource(a.wiki.id, t0);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].reason == revoke_reason::resource_deleted);
  CHECK(a.db.list_policies()->empty());
  CHECK(a.db.list_flows()->empty());
  CHECK(a.db.list_gateways()->size() == 1);
}

TEST_CASE("deleting a group takes its memberships and policies, and revokes what they granted") {
  acme a;
  auto p = a.allow(a.wiki);
  a.connect(a.ada_laptop, a.wiki, p);
  auto changes = a.db.delete_group(a.engineering.id, t0);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].reason == revoke_reason::access_removed);
  CHECK(a.db.list_memberships()->empty());
  CHECK(a.db.list_policies()->empty());
  CHECK(a.db.list_flows()->empty());
  CHECK(a.db.list_users()->size() == 1);
  CHECK(a.db.list_resources()->size() == 1);
}

TEST_CASE("deleting a user takes their clients and memberships") {
  acme a;
  auto p = a.allow(a.wiki);
  a.connect(a.ada_laptop, a.wiki, p);
  auto changes = a.db.delete_user(a.ada.id, t0);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].reason == revoke_reason::client_deleted);
  CHECK(a.db.list_clients()->empty());
  CHECK(a.db.list_memberships()->empty());
  CHECK(a.db.list_groups()->size() == 1);
}

TEST_CASE("delete_flows_for client, resource and gateway remove exactly those flows") {
  acme a;
  auto crm = *a.db.create_resource({a.office.id, "crm", "10.0.0.6", {}});
  auto p_wiki = a.allow(a.wiki);
  auto p_crm = a.allow(crm);
  auto phone = a.db.create_client(a.ada.id, "ada's phone")->client;
  auto laptop_wiki = a.connect(a.ada_laptop, a.wiki, p_wiki);
  auto laptop_crm = a.connect(a.ada_laptop, crm, p_crm);
  auto phone_wiki = a.connect(phone, a.wiki, p_wiki);

  CHECK(*a.db.delete_flows_for_client(phone.id) == std::vector<flow>{phone_wiki});
  CHECK(*a.db.delete_flows_for_resource(crm.id) == std::vector<flow>{laptop_crm});
  CHECK(*a.db.list_flows() == std::vector<flow>{laptop_wiki});
  CHECK(*a.db.delete_flows_for_gateway(a.office_gw.id) == std::vector<flow>{laptop_wiki});
  CHECK(a.db.list_flows()->empty());
  CHECK(a.db.delete_flows_for_gateway(a.office_gw.id)->empty());
}

TEST_CASE("the same client, resource and gateway again reuse their flow: 500 grants, one row") {
  acme a;
  auto p = a.allow(a.wiki);
  const auto first = a.connect(a.ada_laptop, a.wiki, p);
  for (int i = 0; i < 499; ++i) {
    auto again = a.db.record_flow({a.ada_laptop.id, a.office_gw.id, a.wiki.id, p.id, p.expires_at_ms}, t0 + 1000 + i);
    REQUIRE(again);
    CHECK(again->id == first.id);
    CHECK(again->created_at_ms == first.created_at_ms);
  }
  CHECK(a.db.list_flows()->size() == 1);
  // Under a later policy with an expiry, the same row takes the new policy and expiry.
  auto later = a.allow(a.wiki, t0 + 3'600'000);
  auto moved = a.db.record_flow({a.ada_laptop.id, a.office_gw.id, a.wiki.id, later.id, later.expires_at_ms}, t0 + 5000);
  REQUIRE(moved);
  CHECK(moved->id == first.id);
  CHECK(moved->policy_id == later.id);
  CHECK(moved->expires_at_ms == later.expires_at_ms);
  CHECK(*a.db.list_flows() == std::vector<flow>{*moved});
}

TEST_CASE("a client moved to another gateway of the site: its flow there replaces the old one, reported as moved") {
  acme a;
  auto p = a.allow(a.wiki);
  auto crm = *a.db.create_resource({a.office.id, "crm", "10.0.0.6", {}});
  auto q = a.allow(crm);
  const auto old = a.connect(a.ada_laptop, a.wiki, p);
  const auto other_resource = a.connect(a.ada_laptop, crm, q);
  const auto second_gw = a.db.create_gateway(a.office.id, "office-2")->gateway;
  flow_changes superseded;
  auto moved = a.db.record_flow({a.ada_laptop.id, second_gw.id, a.wiki.id, p.id, {}}, t0 + 10, &superseded);
  REQUIRE(moved);
  CHECK(moved->gateway_id == second_gw.id);
  REQUIRE(superseded.size() == 1);
  CHECK(superseded[0].flow == old);
  CHECK(superseded[0].kind == flow_change_kind::revoke);
  CHECK(superseded[0].reason == revoke_reason::moved);
  // The client's other resource on the first gateway is untouched: one flow per client and resource.
  CHECK(*a.db.list_flows() == std::vector<flow>{other_resource, *moved});
  // Back again (the second gateway restarted in turn): still one flow for the wiki.
  superseded.clear();
  auto back = a.db.record_flow({a.ada_laptop.id, a.office_gw.id, a.wiki.id, p.id, {}}, t0 + 20, &superseded);
  REQUIRE(back);
  REQUIRE(superseded.size() == 1);
  CHECK(superseded[0].flow == *moved);
  CHECK(a.db.list_flows()->size() == 2);
}

// ---- access changes on live flows --------------------------------------------------------------------------

TEST_CASE("deleting a policy while another still covers the flow moves its expiry, in the store too") {
  acme a;
  auto forever = a.allow(a.wiki);
  auto f = a.connect(a.ada_laptop, a.wiki, forever);
  auto trial = a.allow(a.wiki, t0 + 2 * hour);

  auto changes = a.db.delete_policy(forever.id, t0 + 1);
  REQUIRE(changes);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].kind == flow_change_kind::expiry_updated);
  CHECK((*changes)[0].new_expires_at_ms == t0 + 2 * hour);
  CHECK((*changes)[0].new_policy_id == trial.id);

  auto stored = *a.db.list_flows();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].id == f.id);
  CHECK(stored[0].policy_id == trial.id);
  CHECK(stored[0].expires_at_ms == t0 + 2 * hour);

  auto last = a.db.delete_policy(trial.id, t0 + 2);
  REQUIRE(last->size() == 1);
  CHECK((*last)[0].kind == flow_change_kind::revoke);
  CHECK(a.db.list_flows()->empty());
}

TEST_CASE("a policy that expires while a flow is live: the timer's reevaluation revokes it") {
  acme a;
  auto p = a.allow(a.wiki, t0 + hour);
  a.connect(a.ada_laptop, a.wiki, p);
  CHECK(*a.db.next_policy_expiry(t0) == t0 + hour);

  CHECK(a.db.reevaluate_flows(t0 + hour - 1)->empty());
  auto changes = a.db.reevaluate_flows(t0 + hour);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].kind == flow_change_kind::revoke);
  CHECK((*changes)[0].reason == revoke_reason::expired);
  CHECK(a.db.list_flows()->empty());
  CHECK_FALSE(*a.db.next_policy_expiry(t0 + hour));
  CHECK(a.db.resources_for_client(a.ada_laptop.id, t0 + hour)->empty());
}

TEST_CASE("a policy that expires while a flow is live, with a second longer policy: the expiry moves") {
  acme a;
  auto p = a.allow(a.wiki, t0 + hour);
  a.connect(a.ada_laptop, a.wiki, p);
  auto longer = a.allow(a.wiki, t0 + 8 * hour);

  auto changes = a.db.reevaluate_flows(t0 + hour);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].kind == flow_change_kind::expiry_updated);
  CHECK((*changes)[0].new_expires_at_ms == t0 + 8 * hour);
  CHECK(a.db.list_flows()->at(0).expires_at_ms == t0 + 8 * hour);
  CHECK(a.db.list_flows()->at(0).policy_id == longer.id);
  CHECK(a.db.reevaluate_flows(t0 + hour + 1)->empty());  // told once
}

TEST_CASE("removing the membership revokes the member's flows") {
  acme a;
  auto p = a.allow(a.wiki);
  a.connect(a.ada_laptop, a.wiki, p);
  auto changes = a.db.remove_membership(a.engineering.id, a.ada.id, t0);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].kind == flow_change_kind::revoke);
  CHECK((*changes)[0].flow.client_id == a.ada_laptop.id);
  CHECK(a.db.list_flows()->empty());
  CHECK(a.db.list_policies()->size() == 1);  // the policy stays for the rest of the group
}

TEST_CASE("disabling a client revokes its flows and hides its resources") {
  acme a;
  auto p = a.allow(a.wiki);
  a.connect(a.ada_laptop, a.wiki, p);
  auto changes = a.db.set_client_disabled(a.ada_laptop.id, true, t0);
  REQUIRE(changes->size() == 1);
  CHECK((*changes)[0].reason == revoke_reason::client_disabled);
  CHECK(a.db.get_client(a.ada_laptop.id)->disabled);
  CHECK(a.db.resources_for_client(a.ada_laptop.id, t0)->empty());
  refused(a.db.set_client_disabled("no-such-client", true, t0), error_code::not_found);
}

TEST_CASE("a client's resources are those its groups have an active policy for, with their filters") {
  acme a;
  auto crm = *a.db.create_resource({a.office.id, "crm", "10.0.0.6", {{"tcp", 80, 443}}});
  auto vault = *a.db.create_resource({a.office.id, "vault", "10.0.0.7", {}});
  auto sales = *a.db.create_group("sales");
  a.allow(a.wiki);
  a.allow(a.wiki, t0 + hour);  // a second policy: still one wiki
  a.allow(crm, t0 + hour);
  a.allow(vault, std::nullopt, &sales);  // Ada is not in sales

  CHECK(*a.db.resources_for_client(a.ada_laptop.id, t0) == std::vector<resource>{a.wiki, crm});
  CHECK(*a.db.resources_for_client(a.ada_laptop.id, t0 + hour) == std::vector<resource>{a.wiki});
  refused(a.db.resources_for_client("no-such-client", t0), error_code::not_found);

  // It agrees with authorize() over a snapshot.
  auto snap = *a.db.snapshot();
  for (const auto& r : snap.resources) {
    const bool listed = r.id == a.wiki.id || r.id == crm.id;
    CHECK(authorize(a.ada_laptop, r, snap.policies, snap.memberships, t0).allowed == listed);
  }
}

// ---- nothing half-written -------------------------------------------------------------------------------------
// A trigger added behind the store's back fails one statement in the middle of a multi-statement change.

TEST_CASE("a failed multi-step change leaves nothing half-written") {
  temp_db file;
  acme a(file.path);

  SUBCASE("a client whose insert fails leaves no address taken") {
    file.raw("CREATE TRIGGER fail BEFORE INSERT ON clients BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    refused(a.db.create_client(a.ada.id, "ada's phone"), error_code::io);
    file.raw("DROP TRIGGER fail");
    CHECK(a.db.list_clients()->size() == 1);
    // The allocator's step forward was rolled back with the insert: the next client gets the next address.
    CHECK(a.db.create_client(a.ada.id, "ada's phone")->client.ipv4 == "100.64.0.3");
  }
  SUBCASE("a resource whose filters fail to save is not saved either") {
    file.raw("CREATE TRIGGER fail BEFORE INSERT ON resource_filters "
             "WHEN NEW.position = 1 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    refused(a.db.create_resource({a.office.id, "db", "10.0.0.9", {{"tcp", 5432, 5432}, {"tcp", 6432, 6432}}}),
            error_code::io);
    CHECK(*a.db.list_resources() == std::vector<resource>{a.wiki});
  }
  SUBCASE("a policy deletion whose flow update fails keeps the policy and the flow as they were") {
    auto forever = a.allow(a.wiki);
    auto f = a.connect(a.ada_laptop, a.wiki, forever);
    a.allow(a.wiki, t0 + hour);
    file.raw("CREATE TRIGGER fail BEFORE UPDATE OF expires_at_ms ON flows BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    refused(a.db.delete_policy(forever.id, t0), error_code::io);
    CHECK(a.db.get_policy(forever.id));
    CHECK(*a.db.list_flows() == std::vector<flow>{f});
  }
}

// ---- model-based: who may reach what, through which gateway, after random sequences ------------------------
//
// Random sequences of grants (a client asking for a resource, through either gateway of the site: a
// move when it had another), revokes of one flow, policies added (some expiring) and deleted, time
// passing with the portal's reevaluation, and gateways deleted and replaced (as an operator does), run
// against the store and against a reference model of the rules: one flow per client and resource; a
// flow lives while some policy of its resource is active, and while its gateway exists. After every step
// the store's flows, which a restarting gateway receives as its authorizations, are the model's.
TEST_CASE("model-based: random grants, moves, revokes, policy changes, expiries and gateway deletions") {
  for (unsigned seed = 1; seed <= 8; ++seed) {
    CAPTURE(seed);
    acme a;
    std::mt19937 rng(seed);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<client> clients = {a.ada_laptop, a.db.create_client(a.ada.id, "ada's phone")->client};
    std::vector<resource> resources = {a.wiki, *a.db.create_resource({a.office.id, "crm", "10.0.0.6", {}})};
    std::vector<gateway> gateways = {a.office_gw, a.db.create_gateway(a.office.id, "office-2")->gateway};
    int next_gateway = 3;

    struct model_policy {
      std::string id, resource_id;
      std::optional<std::int64_t> expires_at_ms;
    };
    std::vector<model_policy> policies;
    std::map<std::pair<std::string, std::string>, std::string> flows;  // (client, resource) -> gateway
    std::int64_t now = t0;
    auto active = [&](const std::string& resource_id) -> const model_policy* {
      const model_policy* best = nullptr;
      for (const auto& p : policies)
        if (p.resource_id == resource_id && (!p.expires_at_ms || *p.expires_at_ms > now))
          if (!best || !p.expires_at_ms || (best->expires_at_ms && *p.expires_at_ms > *best->expires_at_ms)) best = &p;
      return best;
    };
    // What the store's reevaluation does to every live flow: gone without an active policy or its gateway.
    auto prune = [&] {
      for (auto it = flows.begin(); it != flows.end();) {
        const bool gateway_exists = std::any_of(gateways.begin(), gateways.end(), [&](const gateway& g) { return g.id == it->second; });
        it = (!active(it->first.second) || !gateway_exists) ? flows.erase(it) : std::next(it);
      }
    };

    for (int step = 0; step < 300; ++step) {
      CAPTURE(step);
      switch (pick(7)) {
        case 0:
        case 1: {  // a client asks for a resource; the portal grants it through one of the gateways
          const auto& c = clients[pick(clients.size())];
          const auto& r = resources[pick(resources.size())];
          const auto& g = gateways[pick(gateways.size())];
          const auto* p = active(r.id);
          if (!p) break;
          auto f = a.db.record_flow({c.id, g.id, r.id, p->id, p->expires_at_ms}, now);
          REQUIRE(f);
          flows[{c.id, r.id}] = g.id;
          break;
        }
        case 2: {  // an administrator revokes one flow
          auto live = a.db.list_flows();
          REQUIRE(live);
          if (live->empty()) break;
          const auto f = (*live)[pick(live->size())];
          REQUIRE(a.db.delete_flow(f.id));
          flows.erase({f.client_id, f.resource_id});
          break;
        }
        case 3: {  // a policy is added, one in two expiring within a few seconds
          const auto& r = resources[pick(resources.size())];
          std::optional<std::int64_t> expires;
          if (pick(2) == 0) expires = now + 1 + static_cast<std::int64_t>(pick(5000));
          auto p = a.db.create_policy({a.engineering.id, r.id, expires, "model"}, now);
          REQUIRE(p);
          policies.push_back({p->id, r.id, expires});
          break;
        }
        case 4: {  // a policy is deleted
          if (policies.empty()) break;
          const auto i = pick(policies.size());
          REQUIRE(a.db.delete_policy(policies[i].id, now));
          policies.erase(policies.begin() + static_cast<std::ptrdiff_t>(i));
          prune();
          break;
        }
        case 5: {  // time passes; the portal's expiry timer reevaluates
          now += static_cast<std::int64_t>(pick(3000));
          REQUIRE(a.db.reevaluate_flows(now));
          prune();
          break;
        }
        case 6: {  // a gateway is deleted (one in four steps of this kind) and another enrolled in its place
          if (pick(4) != 0) break;
          const auto i = pick(gateways.size());
          REQUIRE(a.db.delete_gateway(gateways[i].id, now));
          gateways[i] = a.db.create_gateway(a.office.id, "office-" + std::to_string(next_gateway++))->gateway;
          prune();
          break;
        }
      }
      // The store agrees with the model, and so does what each gateway would be given at a restart.
      auto live = a.db.list_flows();
      REQUIRE(live);
      std::map<std::pair<std::string, std::string>, std::string> stored;
      for (const auto& f : *live) {
        CHECK_MESSAGE(stored.emplace(std::pair{f.client_id, f.resource_id}, f.gateway_id).second,
                      "two flows for one client and resource");
      }
      REQUIRE(stored == flows);
      for (const auto& g : gateways) {
        std::size_t expected = 0, given = 0;
        for (const auto& [key, gw] : flows) expected += gw == g.id;
        for (const auto& f : *live) given += f.gateway_id == g.id;
        CHECK(given == expected);
      }
    }
  }
}
