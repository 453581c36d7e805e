// The store over SQLite. Sections: the schema and its migrations; a thin layer over SQLite (cached
// prepared statements, transactions, errors); validation; tunnel address allocation; then the API.
#include "actors/portal/store.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "config/cidr.hpp"
#include "transport/wireguard/crypto.hpp"

namespace firebreak::portal {

std::string_view to_string(error_code code) {
  switch (code) {
    case error_code::not_found: return "not_found";
    case error_code::conflict: return "conflict";
    case error_code::invalid: return "invalid";
    case error_code::unauthorized: return "unauthorized";
    case error_code::io: return "io";
  }
  return "unknown";
}

namespace {

// ---- schema -------------------------------------------------------------------------------------------

struct migration {
  int version;
  const char* sql;  // ends by setting `PRAGMA user_version` to `version`
};

// Append only. A migration that has shipped never changes: files in the field have run it already.
// Flows point at their policy with ON DELETE SET NULL, not CASCADE: when a policy goes, another may
// still cover the flow, and the portal learns which from `reevaluate` in the same transaction.
constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE sites (
  id   TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE gateways (
  id         TEXT PRIMARY KEY,
  site_id    TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  public_key TEXT NOT NULL DEFAULT '',
  ipv4       TEXT NOT NULL UNIQUE,
  ipv6       TEXT NOT NULL UNIQUE,
  token_hash BLOB NOT NULL UNIQUE,
  UNIQUE (site_id, name)
);
CREATE UNIQUE INDEX gateways_public_key ON gateways (public_key) WHERE public_key <> '';
CREATE TABLE users (
  id    TEXT PRIMARY KEY,
  name  TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE
);
CREATE TABLE user_groups (
  id   TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE memberships (
  group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
  user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
CREATE TABLE clients (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  public_key TEXT NOT NULL DEFAULT '',
  ipv4       TEXT NOT NULL UNIQUE,
  ipv6       TEXT NOT NULL UNIQUE,
  disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  token_hash BLOB NOT NULL UNIQUE
);
CREATE INDEX clients_user ON clients (user_id);
CREATE UNIQUE INDEX clients_public_key ON clients (public_key) WHERE public_key <> '';
CREATE TABLE resources (
  id      TEXT PRIMARY KEY,
  site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  name    TEXT NOT NULL,
  address TEXT NOT NULL,
  UNIQUE (site_id, name)
);
CREATE TABLE resource_filters (
  resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  protocol    TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'icmp')),
  port_start  INTEGER NOT NULL CHECK (port_start BETWEEN 0 AND 65535),
  port_end    INTEGER NOT NULL CHECK (port_end BETWEEN port_start AND 65535),
  PRIMARY KEY (resource_id, position)
);
CREATE TABLE policies (
  id            TEXT PRIMARY KEY,
  group_id      TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
  resource_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
  expires_at_ms INTEGER,
  description   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX policies_group ON policies (group_id);
CREATE INDEX policies_resource ON policies (resource_id);
CREATE TABLE flows (
  id            TEXT PRIMARY KEY,
  client_id     TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  gateway_id    TEXT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
  resource_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
  policy_id     TEXT REFERENCES policies (id) ON DELETE SET NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER
);
CREATE INDEX flows_client ON flows (client_id);
CREATE INDEX flows_gateway ON flows (gateway_id);
CREATE INDEX flows_resource ON flows (resource_id);
CREATE INDEX flows_policy ON flows (policy_id);
CREATE TABLE address_allocator (
  singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
  next_offset INTEGER NOT NULL
);
INSERT INTO address_allocator (singleton, next_offset) VALUES (1, 1);
CREATE TABLE admin_tokens (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE
);
PRAGMA user_version = 1;
)sql"},
};

constexpr int latest_version = migrations[std::size(migrations) - 1].version;

// ---- SQLite, thinly ------------------------------------------------------------------------------------

/// A cached prepared statement on loan: reset and unbound when the loan ends, ready for the next one.
class statement {
 public:
  explicit statement(sqlite3_stmt* s) : s_(s) {}
  statement(statement&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  statement& operator=(statement&&) = delete;
  ~statement() {
    if (s_) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }

  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, const std::optional<std::int64_t>& v) {
    if (v) sqlite3_bind_int64(s_, i, *v);
    else sqlite3_bind_null(s_, i);
  }
  void bind(int i, const token_digest& d) {
    sqlite3_bind_blob(s_, i, d.data(), static_cast<int>(d.size()), SQLITE_TRANSIENT);
  }
  template <class... A>
  void bind_all(const A&... args) {
    int i = 0;
    (bind(++i, args), ...);
  }

  int step() { return sqlite3_step(s_); }

  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }
  std::optional<std::int64_t> maybe_integer(int col) const {
    if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
    return integer(col);
  }
  token_digest digest_at(int col) const {
    token_digest out{};
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s_, col));
    if (p && sqlite3_column_bytes(s_, col) == static_cast<int>(out.size())) std::copy_n(p, out.size(), out.begin());
    return out;
  }

 private:
  sqlite3_stmt* s_;
};

/// Rolls back unless committed, so an early `return error` leaves nothing half-written.
class transaction {
 public:
  explicit transaction(sqlite3* db) : db_(db) {}
  transaction(transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  transaction& operator=(transaction&&) = delete;
  ~transaction() {
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  result<void> commit(std::string_view doing) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      store_error e{error_code::io, "database error while " + std::string(doing) + ": " +
                                        (message ? message : sqlite3_errstr(rc))};
      sqlite3_free(message);
      return e;  // the destructor rolls back
    }
    db_ = nullptr;
    return {};
  }

 private:
  sqlite3* db_;
};

store_error failure(error_code code, std::string message) { return {code, std::move(message)}; }

/// User input echoed in a message, cut short so a pasted novel does not become the message.
std::string shown(std::string_view text) {
  constexpr std::size_t limit = 64;
  return "'" + std::string(text.substr(0, limit)) + (text.size() > limit ? "...'" : "'");
}

/// A unique-constraint failure reworded for people; other errors pass through.
store_error conflict_as(store_error e, std::string message) {
  if (e.code == error_code::conflict) e.message = std::move(message);
  return e;
}

// ---- validation ------------------------------------------------------------------------------------------

constexpr std::size_t max_name_length = 200;
constexpr std::size_t max_description_length = 1000;

std::optional<store_error> check_name(std::string_view what, std::string_view name) {
  if (name.find_first_not_of(" \t") == std::string_view::npos)
    return failure(error_code::invalid, "a " + std::string(what) + " needs a name");
  if (name.size() > max_name_length)
    return failure(error_code::invalid, "a " + std::string(what) + " name is at most " +
                                            std::to_string(max_name_length) + " characters");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return failure(error_code::invalid, "a " + std::string(what) + " name cannot contain control characters");
  return std::nullopt;
}

std::optional<store_error> check_email(std::string_view email) {
  const auto at = email.find('@');
  const bool shaped = at != std::string_view::npos && at > 0 && at + 1 < email.size() &&
                      email.find('@', at + 1) == std::string_view::npos && email.size() <= 254 &&
                      std::none_of(email.begin(), email.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
  if (!shaped) return failure(error_code::invalid, "email " + shown(email) + " is not an address like ada@example.com");
  return std::nullopt;
}

std::optional<store_error> check_public_key(std::string_view key) {
  const auto decoded = wireguard::key_from_base64(key);
  if (!decoded)
    return failure(error_code::invalid,
                   "a WireGuard public key is 32 bytes in base64, 44 characters (what `wg pubkey` prints)");
  // The all-zero key is no one's: X25519 with it gives an all-zero secret, which WireGuard refuses.
  if (decoded->is_zero())
    return failure(error_code::invalid, "the all-zero public key is not a WireGuard key anyone holds");
  return std::nullopt;
}

// The tunnel address ranges. Resources may not sit inside them: packets for them would never leave
// the tunnel network.
constexpr std::uint32_t ipv4_pool_base = 0x64400000;  // 100.64.0.0
constexpr std::uint32_t ipv4_pool_size = 1u << 22;    // /10
constexpr const char* ipv4_pool_text = "100.64.0.0/10";
constexpr const char* ipv6_pool_text = "fd00:2021:1111::/48";

std::optional<store_error> check_address(std::string_view address) {
  const auto parsed = config::cidr::parse(address);
  if (!parsed)
    return failure(error_code::invalid, "resource address " + shown(address) +
                                            " is not an IP address or a CIDR prefix "
                                            "(for example 10.0.0.5, 10.0.0.0/24 or fd00::/64)");
  if (parsed->has_host_bits())
    return failure(error_code::invalid, "resource address " + shown(address) +
                                            " has bits set after the prefix; did you mean " +
                                            parsed->masked().to_string() + "?");
  for (const char* pool_text : {ipv4_pool_text, ipv6_pool_text}) {
    const auto pool = config::cidr::parse(pool_text);
    if (pool && parsed->prefix >= pool->prefix && pool->contains(parsed->addr, parsed->v6))
      return failure(error_code::invalid, "resource address " + shown(address) + " lies inside the tunnel range " +
                                              pool_text + ", which Firebreak assigns to clients and gateways");
  }
  return std::nullopt;
}

std::string describe(const port_filter& f) {
  if (f.protocol == "icmp") return "icmp";
  return f.protocol + " " + std::to_string(f.port_start) + "-" + std::to_string(f.port_end);
}

std::optional<store_error> check_filters(const std::vector<port_filter>& filters) {
  for (std::size_t i = 0; i < filters.size(); ++i) {
    const auto& f = filters[i];
    if (f.protocol == "icmp") {
      if (f.port_start != 0 || f.port_end != 0)
        return failure(error_code::invalid, "an icmp filter has no ports; leave them 0");
    } else if (f.protocol == "tcp" || f.protocol == "udp") {
      if (f.port_start < 1 || f.port_start > 65535 || f.port_end < 1 || f.port_end > 65535)
        return failure(error_code::invalid, "ports of a " + f.protocol + " filter lie between 1 and 65535 (got " +
                                                std::to_string(f.port_start) + "-" + std::to_string(f.port_end) + ")");
      if (f.port_start > f.port_end)
        return failure(error_code::invalid, "port range " + std::to_string(f.port_start) + "-" +
                                                std::to_string(f.port_end) + " is reversed; write " +
                                                std::to_string(f.port_end) + "-" + std::to_string(f.port_start));
    } else {
      return failure(error_code::invalid,
                     "filter protocol " + shown(f.protocol) + " is not one of tcp, udp or icmp");
    }
    for (std::size_t j = 0; j < i; ++j)
      if (filters[j] == f) return failure(error_code::invalid, "filter " + describe(f) + " is listed twice");
  }
  return std::nullopt;
}

// ---- tunnel addresses -------------------------------------------------------------------------------------
// One offset into the pool gives a client or gateway both addresses: 100.64.0.0 + offset and
// fd00:2021:1111:: + offset. Offsets come from a persistent counter, so an address freed by a delete
// is not handed out again until the pool wraps: a gateway that still remembers the old owner cannot
// mistake the new one for it.

struct tunnel_addresses {
  std::string ipv4;
  std::string ipv6;
};

/// Not the network-like .0 or the broadcast-like .255 of any /24, which some stacks treat specially.
bool usable(std::uint32_t offset) {
  const auto last = offset & 0xff;
  return offset > 0 && offset < ipv4_pool_size && last != 0 && last != 0xff;
}

tunnel_addresses addresses_at(std::uint32_t offset) {
  const std::uint32_t v4 = ipv4_pool_base + offset;
  char text[INET6_ADDRSTRLEN] = {};
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", v4 >> 24, (v4 >> 16) & 0xff, (v4 >> 8) & 0xff, v4 & 0xff);
  tunnel_addresses out{text, {}};
  std::array<std::uint8_t, 16> v6{0xfd, 0x00, 0x20, 0x21, 0x11, 0x11};
  v6[12] = static_cast<std::uint8_t>(offset >> 24);
  v6[13] = static_cast<std::uint8_t>(offset >> 16);
  v6[14] = static_cast<std::uint8_t>(offset >> 8);
  v6[15] = static_cast<std::uint8_t>(offset);
  inet_ntop(AF_INET6, v6.data(), text, sizeof text);
  out.ipv6 = text;
  return out;
}

// ---- rows ----------------------------------------------------------------------------------------------------

site read_site(const statement& s) { return {s.text(0), s.text(1)}; }
gateway read_gateway(const statement& s) {
  return {s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)};
}
user read_user(const statement& s) { return {s.text(0), s.text(1), s.text(2)}; }
group read_group(const statement& s) { return {s.text(0), s.text(1)}; }
membership read_membership(const statement& s) { return {s.text(0), s.text(1)}; }
client read_client(const statement& s) {
  return {s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.integer(6) != 0};
}
resource read_resource(const statement& s) { return {s.text(0), s.text(1), s.text(2), s.text(3), {}}; }
policy read_policy(const statement& s) {
  return {s.text(0), s.text(1), s.text(2), s.maybe_integer(3), s.text(4)};
}
flow read_flow(const statement& s) {
  return {s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.integer(5), s.maybe_integer(6)};
}
std::int64_t read_integer(const statement& s) { return s.integer(0); }
std::optional<std::int64_t> read_maybe_integer(const statement& s) { return s.maybe_integer(0); }

}  // namespace

// ---- the connection and its helpers ---------------------------------------------------------------------------

struct store::impl {
  sqlite3* db = nullptr;
  wireguard::random_source* random = nullptr;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache;  // keyed by the SQL literal

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    for (auto& entry : cache) sqlite3_finalize(entry.second);
    if (db) sqlite3_close_v2(db);
  }

  store_error db_error(std::string_view doing, int rc) const {
    error_code code = error_code::io;
    switch (rc) {
      case SQLITE_CONSTRAINT_UNIQUE:
      case SQLITE_CONSTRAINT_PRIMARYKEY: code = error_code::conflict; break;
      case SQLITE_CONSTRAINT_FOREIGNKEY:
      case SQLITE_CONSTRAINT_CHECK:
      case SQLITE_CONSTRAINT_NOTNULL: code = error_code::invalid; break;
      default: break;
    }
    return {code, "database error while " + std::string(doing) + ": " + sqlite3_errmsg(db)};
  }

  result<statement> prepare(std::string_view sql, std::string_view doing) {
    if (auto it = cache.find(sql); it != cache.end()) return statement(it->second);
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                                      nullptr);
    if (rc != SQLITE_OK) return db_error(doing, rc);
    cache.emplace(sql, s);
    return statement(s);
  }

  /// Statements without parameters: pragmas and migrations.
  result<void> exec(const char* sql, std::string_view doing) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return {};
    store_error e{error_code::io, "database error while " + std::string(doing) + ": " +
                                      (message ? message : sqlite3_errstr(rc))};
    sqlite3_free(message);
    return e;
  }

  /// Runs a statement that returns no rows; the number of rows it changed.
  template <class... A>
  result<int> run(std::string_view doing, std::string_view sql, const A&... args) {
    auto st = prepare(sql, doing);
    if (!st) return st.error();
    st->bind_all(args...);
    const int rc = st->step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_error(doing, rc);
    return sqlite3_changes(db);
  }

  template <class Read, class... A>
  auto rows(std::string_view doing, std::string_view sql, Read read, const A&... args)
      -> result<std::vector<decltype(read(std::declval<const statement&>()))>> {
    auto st = prepare(sql, doing);
    if (!st) return st.error();
    st->bind_all(args...);
    std::vector<decltype(read(std::declval<const statement&>()))> out;
    for (;;) {
      const int rc = st->step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return db_error(doing, rc);
      out.push_back(read(*st));
    }
  }

  template <class Read, class... A>
  auto row(std::string_view doing, std::string_view sql, Read read, const A&... args)
      -> result<std::optional<decltype(read(std::declval<const statement&>()))>> {
    auto st = prepare(sql, doing);
    if (!st) return st.error();
    st->bind_all(args...);
    using row_type = decltype(read(std::declval<const statement&>()));
    const int rc = st->step();
    if (rc == SQLITE_DONE) return std::optional<row_type>();
    if (rc != SQLITE_ROW) return db_error(doing, rc);
    return std::optional<row_type>(read(*st));
  }

  /// IMMEDIATE: take the write lock now, so the transaction cannot fail half-way on a busy database.
  result<transaction> begin_write(std::string_view doing) {
    if (auto r = exec("BEGIN IMMEDIATE", doing); !r) return r.error();
    return transaction(db);
  }
  result<transaction> begin_read(std::string_view doing) {
    if (auto r = exec("BEGIN", doing); !r) return r.error();
    return transaction(db);
  }

  std::string new_id() {
    std::array<std::uint8_t, 16> b{};
    random->fill(b);
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // variant 1
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
      out += hex[b[i] >> 4];
      out += hex[b[i] & 0x0f];
    }
    return out;
  }

  result<int> user_version() {
    auto v = row("reading the schema version", "PRAGMA user_version", read_integer);
    if (!v) return v.error();
    return static_cast<int>(v->value_or(0));
  }

  result<void> migrate() {
    auto before = user_version();
    if (!before) return before.error();
    if (*before > latest_version)
      return failure(error_code::io, "the database was written by a newer Firebreak (schema version " +
                                         std::to_string(*before) + "; this build knows up to " +
                                         std::to_string(latest_version) + "); refusing to open it");
    if (*before == latest_version) return {};

    auto tx = begin_write("migrating the database");
    if (!tx) return tx.error();
    auto current = user_version();  // again, under the lock: another process may have migrated meanwhile
    if (!current) return current.error();
    for (const auto& m : migrations) {
      if (m.version <= *current) continue;
      if (auto r = exec(m.sql, "applying schema migration " + std::to_string(m.version)); !r) return r.error();
    }
    auto after = user_version();
    if (!after) return after.error();
    if (*after != latest_version)
      return failure(error_code::io, "schema migration ended at version " + std::to_string(*after) + ", expected " +
                                         std::to_string(latest_version));
    return tx->commit("migrating the database");
  }

  /// Within the caller's transaction.
  result<tunnel_addresses> allocate_addresses() {
    constexpr std::string_view doing = "allocating tunnel addresses";
    auto next = row(doing, "SELECT next_offset FROM address_allocator WHERE singleton = 1", read_integer);
    if (!next) return next.error();
    std::uint32_t candidate = 1;
    if (*next && **next > 0 && **next < ipv4_pool_size) candidate = static_cast<std::uint32_t>(**next);
    for (std::uint32_t tries = 0; tries < ipv4_pool_size; ++tries) {
      const std::uint32_t offset = candidate;
      candidate = candidate + 1 < ipv4_pool_size ? candidate + 1 : 1;
      if (!usable(offset)) continue;
      auto addresses = addresses_at(offset);
      auto taken = row(doing,
                       "SELECT EXISTS (SELECT 1 FROM clients WHERE ipv4 = ?1) "
                       "OR EXISTS (SELECT 1 FROM gateways WHERE ipv4 = ?1)",
                       read_integer, addresses.ipv4);
      if (!taken) return taken.error();
      if (taken->value_or(0) != 0) continue;
      auto saved = run(doing, "UPDATE address_allocator SET next_offset = ?1 WHERE singleton = 1",
                       static_cast<std::int64_t>(candidate));
      if (!saved) return saved.error();
      return addresses;
    }
    return failure(error_code::conflict, std::string("every tunnel address in ") + ipv4_pool_text + " is taken");
  }

  // ---- loaders, without a transaction of their own ----

  result<std::vector<port_filter>> load_filters(const std::string& resource_id) {
    return rows(
        "reading resource filters",
        "SELECT protocol, port_start, port_end FROM resource_filters WHERE resource_id = ?1 ORDER BY position",
        [](const statement& s) {
          return port_filter{s.text(0), static_cast<int>(s.integer(1)), static_cast<int>(s.integer(2))};
        },
        resource_id);
  }

  result<void> attach_filters(std::vector<resource>& resources) {
    for (auto& r : resources) {
      auto filters = load_filters(r.id);
      if (!filters) return filters.error();
      r.filters = std::move(*filters);
    }
    return {};
  }

  result<std::vector<client>> load_clients() {
    return rows("listing clients",
                "SELECT id, user_id, name, public_key, ipv4, ipv6, disabled FROM clients ORDER BY rowid", read_client);
  }
  result<std::vector<gateway>> load_gateways() {
    return rows("listing gateways", "SELECT id, site_id, name, public_key, ipv4, ipv6 FROM gateways ORDER BY rowid",
                read_gateway);
  }
  result<std::vector<resource>> load_resources() {
    auto out = rows("listing resources", "SELECT id, site_id, name, address FROM resources ORDER BY rowid",
                    read_resource);
    if (!out) return out.error();
    if (auto r = attach_filters(*out); !r) return r.error();
    return out;
  }
  result<std::vector<policy>> load_policies() {
    return rows("listing policies",
                "SELECT id, group_id, resource_id, expires_at_ms, description FROM policies ORDER BY rowid",
                read_policy);
  }
  result<std::vector<membership>> load_memberships() {
    return rows("listing memberships", "SELECT group_id, user_id FROM memberships ORDER BY rowid", read_membership);
  }
  result<std::vector<flow>> load_flows() {
    return rows("listing flows",
                "SELECT id, client_id, gateway_id, resource_id, COALESCE(policy_id, ''), created_at_ms, expires_at_ms "
                "FROM flows ORDER BY rowid",
                read_flow);
  }

  result<access_snapshot> load_snapshot() {
    access_snapshot s;
    auto clients = load_clients();
    if (!clients) return clients.error();
    auto gateways = load_gateways();
    if (!gateways) return gateways.error();
    auto resources = load_resources();
    if (!resources) return resources.error();
    auto policies = load_policies();
    if (!policies) return policies.error();
    auto memberships = load_memberships();
    if (!memberships) return memberships.error();
    return access_snapshot{std::move(*clients), std::move(*gateways), std::move(*resources), std::move(*policies),
                           std::move(*memberships)};
  }

  /// One key, one peer across kinds: a client holding a gateway's key could pass for that gateway
  /// towards other clients, and the other way round. A conflict when the other kind's table has `key`.
  std::optional<store_error> key_held_by_other_kind(std::string_view doing, bool other_is_clients,
                                                    std::string_view key) {
    auto held = exists(doing,
                       other_is_clients ? "SELECT 1 FROM clients WHERE public_key = ?1"
                                        : "SELECT 1 FROM gateways WHERE public_key = ?1",
                       key);
    if (!held) return held.error();
    if (*held)
      return failure(error_code::conflict,
                     std::string(other_is_clients ? "a client" : "a gateway") + " uses this public key already");
    return std::nullopt;
  }

  result<bool> exists(std::string_view doing, std::string_view sql, std::string_view id) {
    auto r = row(doing, sql, read_integer, id);
    if (!r) return r.error();
    return r->has_value();
  }

  // ---- changes to access ----

  /// Writes what `reevaluate` decided: revoked flows go, updated ones take their new expiry and policy.
  /// Flows that keep their grant unchanged but whose policy went away are moved to the one that covers
  /// them now, so every stored flow names a live policy.
  result<void> apply(const std::vector<flow>& live, const flow_changes& changes, const access_snapshot& after,
                     std::int64_t now) {
    constexpr std::string_view doing = "updating flows";
    std::unordered_set<std::string> touched;
    for (const auto& c : changes) {
      touched.insert(c.flow.id);
      auto r = c.kind == flow_change_kind::revoke
                   ? run(doing, "DELETE FROM flows WHERE id = ?1", c.flow.id)
                   : run(doing, "UPDATE flows SET expires_at_ms = ?1, policy_id = ?2 WHERE id = ?3",
                         c.new_expires_at_ms, c.new_policy_id, c.flow.id);
      if (!r) return r.error();
    }
    std::unordered_set<std::string> active;
    for (const auto& p : after.policies)
      if (is_active(p, now)) active.insert(p.id);
    for (const auto& f : live) {
      if (touched.contains(f.id) || active.contains(f.policy_id)) continue;
      auto c = std::find_if(after.clients.begin(), after.clients.end(), [&](auto& x) { return x.id == f.client_id; });
      auto r = std::find_if(after.resources.begin(), after.resources.end(),
                            [&](auto& x) { return x.id == f.resource_id; });
      if (c == after.clients.end() || r == after.resources.end()) continue;  // revoked above
      const auto d = authorize(*c, *r, after.policies, after.memberships, now);
      if (!d.allowed) continue;
      if (auto u = run(doing, "UPDATE flows SET policy_id = ?1 WHERE id = ?2", d.policy_id, f.id); !u)
        return u.error();
    }
    return {};
  }

  /// One transaction: `mutate`, then reevaluate every live flow against what is left, and apply that.
  result<flow_changes> change_access(std::string_view doing, std::int64_t now,
                                     const std::function<result<void>()>& mutate) {
    auto tx = begin_write(doing);
    if (!tx) return tx.error();
    auto live = load_flows();
    if (!live) return live.error();
    if (auto r = mutate(); !r) return r.error();
    auto after = load_snapshot();
    if (!after) return after.error();
    auto changes = reevaluate(*live, *after, now);
    if (auto r = apply(*live, changes, *after, now); !r) return r.error();
    if (auto r = tx->commit(doing); !r) return r.error();
    return changes;
  }

  /// A DELETE of one row by id inside `change_access`; not_found when there was none.
  result<flow_changes> delete_by_id(std::string_view what, std::string_view sql, std::string_view id,
                                    std::int64_t now) {
    const std::string doing = "deleting a " + std::string(what);
    return change_access(doing, now, [&]() -> result<void> {
      auto r = run(doing, sql, id);
      if (!r) return r.error();
      if (*r == 0) return failure(error_code::not_found, "no " + std::string(what) + " with id " + shown(id));
      return {};
    });
  }

  result<std::vector<flow>> delete_flows_where(std::string_view select_sql, std::string_view delete_sql,
                                               std::string_view id) {
    constexpr std::string_view doing = "deleting flows";
    auto tx = begin_write(doing);
    if (!tx) return tx.error();
    auto gone = rows(doing, select_sql, read_flow, id);
    if (!gone) return gone.error();
    if (auto r = run(doing, delete_sql, id); !r) return r.error();
    if (auto r = tx->commit(doing); !r) return r.error();
    return gone;
  }
};

// ---- opening ---------------------------------------------------------------------------------------------------

int store::latest_schema_version() { return latest_version; }

store::store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
store::store(store&&) noexcept = default;
store& store::operator=(store&&) noexcept = default;
store::~store() = default;

result<store> store::open(const std::string& path, wireguard::random_source& random) {
  auto state = std::make_unique<impl>();
  state->random = &random;
  // The file holds token digests and every peer's address: owner only. SQLite gives its -wal and -shm
  // files the database's mode, so the file is made 0600 before SQLite opens it; older installs' files
  // are narrowed to 0600 too.
  if (path != ":memory:" && !path.empty()) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return failure(error_code::io, "cannot open the database " + shown(path) + ": " + std::strerror(errno));
    ::close(fd);
    for (const auto& file : {path, path + "-wal", path + "-shm"}) ::chmod(file.c_str(), 0600);
  }
  const int rc = sqlite3_open_v2(path.c_str(), &state->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK)
    return failure(error_code::io, "cannot open the database " + shown(path) + ": " +
                                       (state->db ? sqlite3_errmsg(state->db) : sqlite3_errstr(rc)));
  sqlite3_extended_result_codes(state->db, 1);

  // Wait for a lock held by another process (a backup, the admin's sqlite3 shell) instead of failing.
  if (auto r = state->exec("PRAGMA busy_timeout = 5000", "opening the database"); !r) return r.error();
  if (auto r = state->exec("PRAGMA foreign_keys = ON", "opening the database"); !r) return r.error();
  auto fk = state->row("opening the database", "PRAGMA foreign_keys", read_integer);
  if (!fk) return fk.error();
  if (fk->value_or(0) != 1)
    return failure(error_code::io, "this SQLite does not enforce foreign keys; deletes could not cascade");
  // WAL: readers never wait for the writer, and a commit is one append.
  auto mode = state->row("opening the database", "PRAGMA journal_mode = WAL",
                         [](const statement& s) { return s.text(0); });
  if (!mode) return mode.error();
  if (path != ":memory:" && mode->value_or("") != "wal")
    return failure(error_code::io, "cannot switch the database " + shown(path) + " to WAL journaling (got " +
                                       shown(mode->value_or("")) + "); is it on a network file system?");
  // With WAL, NORMAL syncs at checkpoints rather than on every commit: the file stays consistent
  // after a crash, and a power cut can lose at most the last moments of changes.
  if (auto r = state->exec("PRAGMA synchronous = NORMAL", "opening the database"); !r) return r.error();
  if (auto r = state->migrate(); !r) return r.error();
  return store(std::move(state));
}

result<int> store::schema_version() { return impl_->user_version(); }

// ---- sites --------------------------------------------------------------------------------------------------

result<site> store::create_site(std::string_view name) {
  if (auto bad = check_name("site", name)) return *bad;
  site s{impl_->new_id(), std::string(name)};
  auto r = impl_->run("creating a site", "INSERT INTO sites (id, name) VALUES (?1, ?2)", s.id, s.name);
  if (!r) return conflict_as(r.error(), "a site named " + shown(name) + " exists already");
  return s;
}

result<std::vector<site>> store::list_sites() {
  return impl_->rows("listing sites", "SELECT id, name FROM sites ORDER BY rowid", read_site);
}

result<site> store::get_site(std::string_view id) {
  auto r = impl_->row("reading a site", "SELECT id, name FROM sites WHERE id = ?1", read_site, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no site with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_site(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("site", "DELETE FROM sites WHERE id = ?1", id, now);
}

// ---- gateways -----------------------------------------------------------------------------------------------

result<gateway_with_token> store::create_gateway(std::string_view site_id, std::string_view name) {
  constexpr std::string_view doing = "creating a gateway";
  if (auto bad = check_name("gateway", name)) return *bad;
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto site_exists = impl_->exists(doing, "SELECT 1 FROM sites WHERE id = ?1", site_id);
  if (!site_exists) return site_exists.error();
  if (!*site_exists) return failure(error_code::invalid, "no site with id " + shown(site_id));
  auto addresses = impl_->allocate_addresses();
  if (!addresses) return addresses.error();

  gateway g{impl_->new_id(), std::string(site_id), std::string(name), "", addresses->ipv4, addresses->ipv6};
  auto secret = mint_token(token_kind::gateway, *impl_->random);
  auto r = impl_->run(doing,
                      "INSERT INTO gateways (id, site_id, name, public_key, ipv4, ipv6, token_hash) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      g.id, g.site_id, g.name, g.public_key, g.ipv4, g.ipv6, digest(secret.reveal()));
  if (!r) return conflict_as(r.error(), "this site has a gateway named " + shown(name) + " already");
  if (auto c = tx->commit(doing); !c) return c.error();
  return gateway_with_token{std::move(g), std::move(secret)};
}

result<std::vector<gateway>> store::list_gateways() { return impl_->load_gateways(); }

result<gateway> store::get_gateway(std::string_view id) {
  auto r = impl_->row("reading a gateway",
                      "SELECT id, site_id, name, public_key, ipv4, ipv6 FROM gateways WHERE id = ?1", read_gateway, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no gateway with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_gateway(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("gateway", "DELETE FROM gateways WHERE id = ?1", id, now);
}

result<gateway> store::set_gateway_public_key(std::string_view id, std::string_view public_key) {
  if (auto bad = check_public_key(public_key)) return *bad;
  if (auto taken = impl_->key_held_by_other_kind("setting a gateway's public key", true, public_key)) return *taken;
  auto r = impl_->run("setting a gateway's public key", "UPDATE gateways SET public_key = ?1 WHERE id = ?2",
                      public_key, id);
  if (!r) return conflict_as(r.error(), "another gateway uses this public key already");
  if (*r == 0) return failure(error_code::not_found, "no gateway with id " + shown(id));
  return get_gateway(id);
}

// The digest finds the row through the index; the digest comparison that follows runs in constant
// time. Timing of the lookup tells an attacker about a SHA-256 output, not about any token.
result<gateway> store::authenticate_gateway(std::string_view presented_token) {
  if (!is_well_formed(presented_token, token_kind::gateway))
    return failure(error_code::unauthorized, "not a gateway token (those start with fbg_ and are 47 characters)");
  const auto presented = digest(presented_token);
  auto r = impl_->row(
      "checking a gateway token",
      "SELECT id, site_id, name, public_key, ipv4, ipv6, token_hash FROM gateways WHERE token_hash = ?1",
      [](const statement& s) { return std::pair(read_gateway(s), s.digest_at(6)); }, presented);
  if (!r) return r.error();
  if (!*r || !digests_equal((*r)->second, presented))
    return failure(error_code::unauthorized, "no gateway has this token (never issued, or its gateway was deleted)");
  return std::move((*r)->first);
}

// ---- users and groups ----------------------------------------------------------------------------------------

result<user> store::create_user(std::string_view name, std::string_view email) {
  if (auto bad = check_name("user", name)) return *bad;
  if (auto bad = check_email(email)) return *bad;
  user u{impl_->new_id(), std::string(name), std::string(email)};
  auto r = impl_->run("creating a user", "INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)", u.id, u.name,
                      u.email);
  if (!r) return conflict_as(r.error(), "a user with email " + shown(email) + " exists already");
  return u;
}

result<std::vector<user>> store::list_users() {
  return impl_->rows("listing users", "SELECT id, name, email FROM users ORDER BY rowid", read_user);
}

result<user> store::get_user(std::string_view id) {
  auto r = impl_->row("reading a user", "SELECT id, name, email FROM users WHERE id = ?1", read_user, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no user with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_user(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("user", "DELETE FROM users WHERE id = ?1", id, now);
}

result<group> store::create_group(std::string_view name) {
  if (auto bad = check_name("group", name)) return *bad;
  group g{impl_->new_id(), std::string(name)};
  auto r = impl_->run("creating a group", "INSERT INTO user_groups (id, name) VALUES (?1, ?2)", g.id, g.name);
  if (!r) return conflict_as(r.error(), "a group named " + shown(name) + " exists already");
  return g;
}

result<std::vector<group>> store::list_groups() {
  return impl_->rows("listing groups", "SELECT id, name FROM user_groups ORDER BY rowid", read_group);
}

result<group> store::get_group(std::string_view id) {
  auto r = impl_->row("reading a group", "SELECT id, name FROM user_groups WHERE id = ?1", read_group, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no group with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_group(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("group", "DELETE FROM user_groups WHERE id = ?1", id, now);
}

result<membership> store::add_membership(std::string_view group_id, std::string_view user_id) {
  constexpr std::string_view doing = "adding a user to a group";
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto group_exists = impl_->exists(doing, "SELECT 1 FROM user_groups WHERE id = ?1", group_id);
  if (!group_exists) return group_exists.error();
  if (!*group_exists) return failure(error_code::invalid, "no group with id " + shown(group_id));
  auto user_exists = impl_->exists(doing, "SELECT 1 FROM users WHERE id = ?1", user_id);
  if (!user_exists) return user_exists.error();
  if (!*user_exists) return failure(error_code::invalid, "no user with id " + shown(user_id));
  auto r = impl_->run(doing, "INSERT INTO memberships (group_id, user_id) VALUES (?1, ?2)", group_id, user_id);
  if (!r) return conflict_as(r.error(), "user " + shown(user_id) + " is in group " + shown(group_id) + " already");
  if (auto c = tx->commit(doing); !c) return c.error();
  return membership{std::string(group_id), std::string(user_id)};
}

result<flow_changes> store::remove_membership(std::string_view group_id, std::string_view user_id,
                                              std::int64_t now) {
  constexpr std::string_view doing = "removing a user from a group";
  return impl_->change_access(doing, now, [&]() -> result<void> {
    auto r = impl_->run(doing, "DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2", group_id, user_id);
    if (!r) return r.error();
    if (*r == 0)
      return failure(error_code::not_found, "user " + shown(user_id) + " is not in group " + shown(group_id));
    return {};
  });
}

result<std::vector<membership>> store::list_memberships() { return impl_->load_memberships(); }

// ---- clients -------------------------------------------------------------------------------------------------

result<client_with_token> store::create_client(std::string_view user_id, std::string_view name,
                                               std::string_view public_key) {
  constexpr std::string_view doing = "creating a client";
  if (auto bad = check_name("client", name)) return *bad;
  if (!public_key.empty())
    if (auto bad = check_public_key(public_key)) return *bad;
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto user_exists = impl_->exists(doing, "SELECT 1 FROM users WHERE id = ?1", user_id);
  if (!user_exists) return user_exists.error();
  if (!*user_exists) return failure(error_code::invalid, "no user with id " + shown(user_id));
  if (!public_key.empty())
    if (auto taken = impl_->key_held_by_other_kind(doing, false, public_key)) return *taken;
  auto addresses = impl_->allocate_addresses();
  if (!addresses) return addresses.error();

  client c{impl_->new_id(), std::string(user_id), std::string(name), std::string(public_key),
           addresses->ipv4, addresses->ipv6, false};
  auto secret = mint_token(token_kind::client, *impl_->random);
  auto r = impl_->run(doing,
                      "INSERT INTO clients (id, user_id, name, public_key, ipv4, ipv6, disabled, token_hash) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
                      c.id, c.user_id, c.name, c.public_key, c.ipv4, c.ipv6, digest(secret.reveal()));
  if (!r) return conflict_as(r.error(), "another client uses this public key already");
  if (auto k = tx->commit(doing); !k) return k.error();
  return client_with_token{std::move(c), std::move(secret)};
}

result<std::vector<client>> store::list_clients() { return impl_->load_clients(); }

result<client> store::get_client(std::string_view id) {
  auto r = impl_->row("reading a client",
                      "SELECT id, user_id, name, public_key, ipv4, ipv6, disabled FROM clients WHERE id = ?1",
                      read_client, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no client with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_client(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("client", "DELETE FROM clients WHERE id = ?1", id, now);
}

result<flow_changes> store::set_client_disabled(std::string_view id, bool disabled, std::int64_t now) {
  constexpr std::string_view doing = "disabling or enabling a client";
  return impl_->change_access(doing, now, [&]() -> result<void> {
    auto r = impl_->run(doing, "UPDATE clients SET disabled = ?1 WHERE id = ?2", std::int64_t{disabled}, id);
    if (!r) return r.error();
    if (*r == 0) return failure(error_code::not_found, "no client with id " + shown(id));
    return {};
  });
}

result<client> store::set_client_public_key(std::string_view id, std::string_view public_key) {
  if (auto bad = check_public_key(public_key)) return *bad;
  if (auto taken = impl_->key_held_by_other_kind("setting a client's public key", false, public_key)) return *taken;
  auto r = impl_->run("setting a client's public key", "UPDATE clients SET public_key = ?1 WHERE id = ?2",
                      public_key, id);
  if (!r) return conflict_as(r.error(), "another client uses this public key already");
  if (*r == 0) return failure(error_code::not_found, "no client with id " + shown(id));
  return get_client(id);
}

result<client> store::authenticate_client(std::string_view presented_token) {
  if (!is_well_formed(presented_token, token_kind::client))
    return failure(error_code::unauthorized, "not a client token (those start with fbc_ and are 47 characters)");
  const auto presented = digest(presented_token);
  auto r = impl_->row(
      "checking a client token",
      "SELECT id, user_id, name, public_key, ipv4, ipv6, disabled, token_hash FROM clients WHERE token_hash = ?1",
      [](const statement& s) { return std::pair(read_client(s), s.digest_at(7)); }, presented);
  if (!r) return r.error();
  if (!*r || !digests_equal((*r)->second, presented))
    return failure(error_code::unauthorized, "no client has this token (never issued, or its client was deleted)");
  if ((*r)->first.disabled)
    return failure(error_code::unauthorized, "client " + shown((*r)->first.name) + " is disabled");
  return std::move((*r)->first);
}

// ---- resources -----------------------------------------------------------------------------------------------

result<resource> store::create_resource(const new_resource& draft) {
  constexpr std::string_view doing = "creating a resource";
  if (auto bad = check_name("resource", draft.name)) return *bad;
  if (auto bad = check_address(draft.address)) return *bad;
  if (auto bad = check_filters(draft.filters)) return *bad;
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto site_exists = impl_->exists(doing, "SELECT 1 FROM sites WHERE id = ?1", draft.site_id);
  if (!site_exists) return site_exists.error();
  if (!*site_exists) return failure(error_code::invalid, "no site with id " + shown(draft.site_id));

  resource r{impl_->new_id(), draft.site_id, draft.name, draft.address, draft.filters};
  auto inserted = impl_->run(doing, "INSERT INTO resources (id, site_id, name, address) VALUES (?1, ?2, ?3, ?4)",
                             r.id, r.site_id, r.name, r.address);
  if (!inserted) return conflict_as(inserted.error(), "this site has a resource named " + shown(r.name) + " already");
  for (std::size_t i = 0; i < r.filters.size(); ++i) {
    const auto& f = r.filters[i];
    auto added = impl_->run(doing,
                            "INSERT INTO resource_filters (resource_id, position, protocol, port_start, port_end) "
                            "VALUES (?1, ?2, ?3, ?4, ?5)",
                            r.id, static_cast<std::int64_t>(i), f.protocol, std::int64_t{f.port_start},
                            std::int64_t{f.port_end});
    if (!added) return added.error();
  }
  if (auto c = tx->commit(doing); !c) return c.error();
  return r;
}

result<std::vector<resource>> store::list_resources() {
  auto tx = impl_->begin_read("listing resources");
  if (!tx) return tx.error();
  auto out = impl_->load_resources();
  if (!out) return out.error();
  if (auto c = tx->commit("listing resources"); !c) return c.error();
  return out;
}

result<resource> store::get_resource(std::string_view id) {
  constexpr std::string_view doing = "reading a resource";
  auto tx = impl_->begin_read(doing);
  if (!tx) return tx.error();
  auto r = impl_->row(doing, "SELECT id, site_id, name, address FROM resources WHERE id = ?1", read_resource, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no resource with id " + shown(id));
  auto filters = impl_->load_filters((*r)->id);
  if (!filters) return filters.error();
  (*r)->filters = std::move(*filters);
  if (auto c = tx->commit(doing); !c) return c.error();
  return std::move(**r);
}

result<flow_changes> store::delete_resource(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("resource", "DELETE FROM resources WHERE id = ?1", id, now);
}

result<std::vector<resource>> store::resources_for_client(std::string_view client_id, std::int64_t now) {
  constexpr std::string_view doing = "listing a client's resources";
  auto tx = impl_->begin_read(doing);
  if (!tx) return tx.error();
  auto client_exists = impl_->exists(doing, "SELECT 1 FROM clients WHERE id = ?1", client_id);
  if (!client_exists) return client_exists.error();
  if (!*client_exists) return failure(error_code::not_found, "no client with id " + shown(client_id));
  auto out = impl_->rows(doing,
                         "SELECT r.id, r.site_id, r.name, r.address FROM resources r "
                         "WHERE EXISTS ("
                         "  SELECT 1 FROM policies p "
                         "  JOIN memberships m ON m.group_id = p.group_id "
                         "  JOIN clients c ON c.user_id = m.user_id "
                         "  WHERE p.resource_id = r.id AND c.id = ?1 AND c.disabled = 0 "
                         "    AND (p.expires_at_ms IS NULL OR p.expires_at_ms > ?2)) "
                         "ORDER BY r.rowid",
                         read_resource, client_id, now);
  if (!out) return out.error();
  if (auto r = impl_->attach_filters(*out); !r) return r.error();
  if (auto c = tx->commit(doing); !c) return c.error();
  return out;
}

// ---- policies ------------------------------------------------------------------------------------------------

result<policy> store::create_policy(const new_policy& draft, std::int64_t now) {
  constexpr std::string_view doing = "creating a policy";
  if (draft.expires_at_ms && *draft.expires_at_ms <= now)
    return failure(error_code::invalid, "the policy would expire before it starts (expires_at is not in the future)");
  if (draft.description.size() > max_description_length)
    return failure(error_code::invalid,
                   "a policy description is at most " + std::to_string(max_description_length) + " characters");
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto group_exists = impl_->exists(doing, "SELECT 1 FROM user_groups WHERE id = ?1", draft.group_id);
  if (!group_exists) return group_exists.error();
  if (!*group_exists) return failure(error_code::invalid, "no group with id " + shown(draft.group_id));
  auto resource_exists = impl_->exists(doing, "SELECT 1 FROM resources WHERE id = ?1", draft.resource_id);
  if (!resource_exists) return resource_exists.error();
  if (!*resource_exists) return failure(error_code::invalid, "no resource with id " + shown(draft.resource_id));

  policy p{impl_->new_id(), draft.group_id, draft.resource_id, draft.expires_at_ms, draft.description};
  auto r = impl_->run(doing,
                      "INSERT INTO policies (id, group_id, resource_id, expires_at_ms, description) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
                      p.id, p.group_id, p.resource_id, p.expires_at_ms, p.description);
  if (!r) return r.error();
  if (auto c = tx->commit(doing); !c) return c.error();
  return p;
}

result<std::vector<policy>> store::list_policies() { return impl_->load_policies(); }

result<policy> store::get_policy(std::string_view id) {
  auto r = impl_->row("reading a policy",
                      "SELECT id, group_id, resource_id, expires_at_ms, description FROM policies WHERE id = ?1",
                      read_policy, id);
  if (!r) return r.error();
  if (!*r) return failure(error_code::not_found, "no policy with id " + shown(id));
  return std::move(**r);
}

result<flow_changes> store::delete_policy(std::string_view id, std::int64_t now) {
  return impl_->delete_by_id("policy", "DELETE FROM policies WHERE id = ?1", id, now);
}

result<std::optional<std::int64_t>> store::next_policy_expiry(std::int64_t now) {
  auto r = impl_->row("finding the next policy expiry", "SELECT MIN(expires_at_ms) FROM policies WHERE expires_at_ms > ?1",
                      read_maybe_integer, now);
  if (!r) return r.error();
  return r->value_or(std::nullopt);
}

// ---- flows ---------------------------------------------------------------------------------------------------

result<flow> store::record_flow(const new_flow& draft, std::int64_t now, flow_changes* superseded) {
  constexpr std::string_view doing = "recording a flow";
  auto tx = impl_->begin_write(doing);
  if (!tx) return tx.error();
  auto client_exists = impl_->exists(doing, "SELECT 1 FROM clients WHERE id = ?1", draft.client_id);
  if (!client_exists) return client_exists.error();
  if (!*client_exists) return failure(error_code::invalid, "no client with id " + shown(draft.client_id));
  auto gateway_site = impl_->row(doing, "SELECT site_id FROM gateways WHERE id = ?1",
                                 [](const statement& s) { return s.text(0); }, draft.gateway_id);
  if (!gateway_site) return gateway_site.error();
  if (!*gateway_site) return failure(error_code::invalid, "no gateway with id " + shown(draft.gateway_id));
  auto resource_site = impl_->row(doing, "SELECT site_id FROM resources WHERE id = ?1",
                                  [](const statement& s) { return s.text(0); }, draft.resource_id);
  if (!resource_site) return resource_site.error();
  if (!*resource_site) return failure(error_code::invalid, "no resource with id " + shown(draft.resource_id));
  if (**gateway_site != **resource_site)
    return failure(error_code::invalid, "gateway " + shown(draft.gateway_id) + " is not in the site of resource " +
                                            shown(draft.resource_id));
  auto policy_resource = impl_->row(doing, "SELECT resource_id FROM policies WHERE id = ?1",
                                    [](const statement& s) { return s.text(0); }, draft.policy_id);
  if (!policy_resource) return policy_resource.error();
  if (!*policy_resource) return failure(error_code::invalid, "no policy with id " + shown(draft.policy_id));
  if (**policy_resource != draft.resource_id)
    return failure(error_code::invalid, "policy " + shown(draft.policy_id) + " is not about resource " +
                                            shown(draft.resource_id));

  // The client's flow to this resource through another gateway ends here: it reaches it through this one.
  auto elsewhere = impl_->rows(doing,
                               "SELECT id, client_id, gateway_id, resource_id, COALESCE(policy_id, ''), created_at_ms, "
                               "expires_at_ms FROM flows WHERE client_id = ?1 AND resource_id = ?2 AND gateway_id <> ?3",
                               read_flow, draft.client_id, draft.resource_id, draft.gateway_id);
  if (!elsewhere) return elsewhere.error();
  for (const auto& old : *elsewhere) {
    if (auto d = impl_->run(doing, "DELETE FROM flows WHERE id = ?1", old.id); !d) return d.error();
    if (superseded) superseded->push_back({old, flow_change_kind::revoke, revoke_reason::moved, std::nullopt, {}});
  }

  // The same client, resource and gateway again (a reconnect, a restarted gateway, a client asking
  // twice): the flow it already has, under its current policy and expiry, not one more row.
  auto existing = impl_->row(doing,
                             "SELECT id, created_at_ms FROM flows WHERE client_id = ?1 AND gateway_id = ?2 AND "
                             "resource_id = ?3",
                             [](const statement& st) { return std::pair{st.text(0), st.integer(1)}; },
                             draft.client_id, draft.gateway_id, draft.resource_id);
  if (!existing) return existing.error();
  if (*existing) {
    flow same{(*existing)->first,  draft.client_id, draft.gateway_id,   draft.resource_id,
              draft.policy_id,     (*existing)->second, draft.expires_at_ms};
    auto u = impl_->run(doing, "UPDATE flows SET policy_id = ?2, expires_at_ms = ?3 WHERE id = ?1", same.id,
                        same.policy_id, same.expires_at_ms);
    if (!u) return u.error();
    if (auto c = tx->commit(doing); !c) return c.error();
    return same;
  }

  flow f{impl_->new_id(), draft.client_id, draft.gateway_id, draft.resource_id, draft.policy_id, now,
         draft.expires_at_ms};
  auto r = impl_->run(doing,
                      "INSERT INTO flows (id, client_id, gateway_id, resource_id, policy_id, created_at_ms, "
                      "expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      f.id, f.client_id, f.gateway_id, f.resource_id, f.policy_id, f.created_at_ms, f.expires_at_ms);
  if (!r) return r.error();
  if (auto c = tx->commit(doing); !c) return c.error();
  return f;
}

result<std::vector<flow>> store::list_flows() { return impl_->load_flows(); }

result<void> store::delete_flow(std::string_view id) {
  auto r = impl_->run("deleting a flow", "DELETE FROM flows WHERE id = ?1", id);
  if (!r) return r.error();
  if (*r == 0) return failure(error_code::not_found, "no flow with id " + shown(id));
  return {};
}

result<std::vector<flow>> store::delete_flows_for_client(std::string_view client_id) {
  return impl_->delete_flows_where(
      "SELECT id, client_id, gateway_id, resource_id, COALESCE(policy_id, ''), created_at_ms, expires_at_ms "
      "FROM flows WHERE client_id = ?1 ORDER BY rowid",
      "DELETE FROM flows WHERE client_id = ?1", client_id);
}

result<std::vector<flow>> store::delete_flows_for_resource(std::string_view resource_id) {
  return impl_->delete_flows_where(
      "SELECT id, client_id, gateway_id, resource_id, COALESCE(policy_id, ''), created_at_ms, expires_at_ms "
      "FROM flows WHERE resource_id = ?1 ORDER BY rowid",
      "DELETE FROM flows WHERE resource_id = ?1", resource_id);
}

result<std::vector<flow>> store::delete_flows_for_gateway(std::string_view gateway_id) {
  return impl_->delete_flows_where(
      "SELECT id, client_id, gateway_id, resource_id, COALESCE(policy_id, ''), created_at_ms, expires_at_ms "
      "FROM flows WHERE gateway_id = ?1 ORDER BY rowid",
      "DELETE FROM flows WHERE gateway_id = ?1", gateway_id);
}

result<flow_changes> store::reevaluate_flows(std::int64_t now) {
  return impl_->change_access("reevaluating flows", now, [] { return result<void>(); });
}

result<access_snapshot> store::snapshot() {
  auto tx = impl_->begin_read("reading a snapshot");
  if (!tx) return tx.error();
  auto s = impl_->load_snapshot();
  if (!s) return s.error();
  if (auto c = tx->commit("reading a snapshot"); !c) return c.error();
  return s;
}

// ---- admin credentials ------------------------------------------------------------------------------------------

result<admin_with_token> store::create_admin_token(std::string_view name) {
  if (auto bad = check_name("admin token", name)) return *bad;
  admin_with_token out{impl_->new_id(), std::string(name), mint_token(token_kind::admin, *impl_->random)};
  auto r = impl_->run("creating an admin token", "INSERT INTO admin_tokens (id, name, token_hash) VALUES (?1, ?2, ?3)",
                      out.id, out.name, digest(out.token.reveal()));
  if (!r) return r.error();
  return out;
}

result<std::string> store::authenticate_admin(std::string_view presented_token) {
  if (!is_well_formed(presented_token, token_kind::admin))
    return failure(error_code::unauthorized, "not an admin token (those start with fba_ and are 47 characters)");
  const auto presented = digest(presented_token);
  auto r = impl_->row("checking an admin token", "SELECT id, token_hash FROM admin_tokens WHERE token_hash = ?1",
                      [](const statement& s) { return std::pair(s.text(0), s.digest_at(1)); }, presented);
  if (!r) return r.error();
  if (!*r || !digests_equal((*r)->second, presented))
    return failure(error_code::unauthorized, "no admin credential has this token");
  return std::move((*r)->first);
}

result<void> store::delete_admin_token(std::string_view id) {
  auto r = impl_->run("deleting an admin token", "DELETE FROM admin_tokens WHERE id = ?1", id);
  if (!r) return r.error();
  if (*r == 0) return failure(error_code::not_found, "no admin token with id " + shown(id));
  return {};
}

}  // namespace firebreak::portal
