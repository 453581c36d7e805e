// The actor trace of a revoke, end to end (tests/e2e/daemon_topology.hpp): gw-b's trace switched on at
// run time with `firebreak gateway trace on`, the client's from the start (FIREBREAK_TRACE). An
// administrator revokes the client's flow; `firebreak trace` merges both files and must show, in order,
// the gateway's hops from the portal's frame to the wire and the client's from the wire to its tunnel.
// The HTML page is opened in headless Chromium (a screenshot, and the goodbye arrow in its DOM), and
// no token or key used in the session appears in either trace.
// Needs root, coturn, curl and python3; Chromium for the page (skipped with a message without it).
#include "tests/e2e/daemon_topology.hpp"

using namespace firebreak::test::daemons;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string first_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string l;
  std::getline(in, l);
  while (!l.empty() && std::isspace(static_cast<unsigned char>(l.back()))) l.pop_back();
  return l;
}

}  // namespace

TEST_CASE("a revoke, as the actor trace tells it") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  const auto gw_trace = t.dir / "gw-b.trace.jsonl", client_trace = t.dir / "client.trace.jsonl";
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2", {"--trace-file", gw_trace.string()});
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  auto switch_gateway = [&](const char* state) {
    return detail::capture({"ip", "netns", "exec", t.gw_b.name(), firebreak_binary(), "gateway", "trace", state,
                            "--status-socket", (t.dir / "gw-b.sock").string()},
                           10s);
  };
  auto on = switch_gateway("on");
  REQUIRE_MESSAGE(on.ok(), on.output);
  CHECK(on.output.find("actor trace on") != std::string::npos);
  auto client = t.client(false, {"FIREBREAK_TRACE=true", "FIREBREAK_TRACE_FILE=" + client_trace.string()});
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  const auto gb = gateway_of(client_status(), t.lab_res);

  // The administrator revokes this one flow: the gateway drops it and says goodbye; the client keeps
  // the resource (its policy stands), so nothing on its side closes first.
  std::string flow;
  for (const auto& f : t.admin({"flows", "list"}))
    if (f.at("resource_id") == t.lab_res) flow = f.at("id");
  REQUIRE(!flow.empty());
  t.admin({"flows", "revoke", flow});
  REQUIRE(wait_until([&] { return !live_connection_to(client_status(), gb); }, 10s));

  // SIGUSR1 switches the gateway's trace off again.
  ::kill(gw_b.pid(), SIGUSR1);
  CHECK(wait_until([&] { return gw_b.log().find("actor trace off") != std::string::npos; }, 5s));
  const int client_exit = client.terminate(5s);
  CHECK_MESSAGE(client_exit == 0, client.log());
  CHECK(gw_b.terminate(5s) == 0);

  auto text = detail::capture({firebreak_binary(), "trace", gw_trace.string(), client_trace.string()}, 30s);
  REQUIRE_MESSAGE(text.ok(), text.output);
  // In order: the gateway from the portal's frame to the wire, then the client from the wire inward.
  struct hop {
    std::string role, from, to, type;
  };
  const std::vector<hop> hops = {
      {"gateway", "portal", "portal_link", "reject_access"},
      {"gateway", "supervisor", "authorization", "reject_access"},
      {"gateway", "authorization", "gateway_tunnel", "client_unauthorized"},
      {"gateway", "gateway_tunnel", "connection", "close_connection"},
      {"gateway", "connection", "wireguard", "close_connection"},
      {"gateway", "wireguard", "ice", "goodbye"},
      {"gateway", "ice", "wire", "goodbye"},
      {"client", "wire", "ice", "goodbye"},
      {"client", "ice", "wireguard", "goodbye"},
      {"client", "wireguard", "connection", "wg_status"},
      {"client", "connection", "client_tunnel", "connection_event"},
  };
  std::vector<std::string> lines;
  {
    std::istringstream in(text.output);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  std::size_t next = 0;
  for (const auto& h : hops) {
    const std::regex re(R"(^\S+  )" + h.role + R"(\s+)" + h.from + " -> " + h.to + R"(\s+)" + h.type +
                        R"(\b)");
    std::size_t i = next;
    while (i < lines.size() && !std::regex_search(lines[i], re)) ++i;
    CHECK_MESSAGE(i < lines.size(),
                  "missing, or out of order: " << h.role << " " << h.from << " -> " << h.to << " " << h.type << "\n"
                                               << text.output);
    if (i < lines.size()) next = i + 1;
  }
  CHECK_MESSAGE(text.output.find("remote_goodbye") != std::string::npos, client.log());

  // The HTML page: self-contained, with the goodbye drawn.
  const auto page = t.dir / "trace.html";
  auto html = detail::capture(
      {firebreak_binary(), "trace", gw_trace.string(), client_trace.string(), "--format", "html", "-o", page.string()},
      30s);
  REQUIRE_MESSAGE(html.ok(), html.output);
  const auto page_text = slurp(page);
  CHECK(page_text.find("class=\"message goodbye\"") != std::string::npos);
  if (!executable_in_path("chromium")) {
    MESSAGE("Chromium is not installed: the page is not opened (deploy/install-deps.sh installs it)");
  } else {
    const auto profile = t.dir / "chromium-profile";
    const auto shot = t.dir / "trace.png";
    const std::vector<std::string> common = {"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                             "--user-data-dir=" + profile.string(), "--window-size=1600,1200"};
    auto with = [&](std::vector<std::string> extra) {
      auto argv = common;
      argv.insert(argv.end(), extra.begin(), extra.end());
      argv.push_back("file://" + page.string());
      return detail::capture(argv, 90s);
    };
    auto screenshot = with({"--screenshot=" + shot.string()});
    CHECK_MESSAGE(std::filesystem::exists(shot), screenshot.output);
    if (std::filesystem::exists(shot)) CHECK(std::filesystem::file_size(shot) > 10'000);
    auto dom = with({"--dump-dom"});
    CHECK_MESSAGE(dom.output.find("class=\"message goodbye\"") != std::string::npos, dom.output.substr(0, 2000));
    CHECK(dom.output.find("data-type=\"goodbye\"") != std::string::npos);
  }

  // No secret of the session in either trace: tokens, private keys, the admin token.
  const auto traces = slurp(gw_trace) + slurp(client_trace);
  REQUIRE(traces.size() > 1000);
  for (const char* secret_file : {"client.token", "gw-b.token", "client.key", "gw-b.key", "portal/admin-token",
                                  "relay-secret"}) {
    const auto secret = first_line(t.dir / secret_file);
    REQUIRE_MESSAGE(secret.size() >= 16, secret_file);
    CHECK_MESSAGE(traces.find(secret) == std::string::npos, secret_file << " appears in a trace");
  }
}
