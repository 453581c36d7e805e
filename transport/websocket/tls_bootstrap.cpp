#include "transport/websocket/tls_bootstrap.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "transport/websocket/logger.hpp"

namespace firebreak::websocket {

namespace {

namespace fs = std::filesystem;

constexpr const char* ca_cert_file = "ca-cert.pem";
constexpr const char* ca_key_file = "ca-key.pem";
constexpr const char* server_cert_file = "server-cert.pem";
constexpr const char* server_key_file = "server-key.pem";
/// notBefore lies this far in the past, so a peer whose clock is a little behind still accepts.
constexpr auto clock_skew = std::chrono::hours(1);

template <auto fn>
struct deleter {
  template <class T>
  void operator()(T* p) const { fn(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using names_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;

/// Something failed; carries the message up to ensure_certificates.
struct failure {
  std::string message;
};

/// The newest OpenSSL error on this thread, for an error message; clears the queue.
std::string openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

[[noreturn]] void fail(std::string what) { throw failure{std::move(what) + ": " + openssl_error()}; }

std::time_t to_time_t(std::chrono::system_clock::time_point t) { return std::chrono::system_clock::to_time_t(t); }

// ---- names ------------------------------------------------------------------------------------------

/// One subject alternative name in a canonical spelling: "DNS:name" (lower case) or "IP:address"
/// (inet_ntop's form), so that a requested set and a certificate's set compare as strings.
struct san {
  bool is_ip = false;
  std::string value;  // DNS name in lower case, or the address text
  std::string canonical() const { return (is_ip ? "IP:" : "DNS:") + value; }
};

std::optional<std::string> ip_from_bytes(const unsigned char* bytes, int length) {
  char text[INET6_ADDRSTRLEN] = {};
  int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : -1;
  if (family < 0 || inet_ntop(family, bytes, text, sizeof text) == nullptr) return std::nullopt;
  return std::string(text);
}

bool valid_dns_name(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (name[i - 1] == '-' || name[i - label] == '-') return false;
      label = 0;
      continue;
    }
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
    ++label;
  }
  return true;
}

std::vector<san> parse_names(const std::vector<std::string>& requested) {
  if (requested.empty()) throw failure{"no host name or IP address given for the server certificate"};
  std::vector<san> out;
  std::set<std::string> seen;
  for (const auto& entry : requested) {
    san name;
    unsigned char bytes[16];
    if (inet_pton(AF_INET, entry.c_str(), bytes) == 1) {
      name = {true, *ip_from_bytes(bytes, 4)};
    } else if (inet_pton(AF_INET6, entry.c_str(), bytes) == 1) {
      name = {true, *ip_from_bytes(bytes, 16)};
    } else {
      std::string lower = entry;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!valid_dns_name(lower)) {
        throw failure{"'" + entry + "' is neither an IP address nor a DNS name for the server certificate"};
      }
      name = {false, std::move(lower)};
    }
    if (seen.insert(name.canonical()).second) out.push_back(std::move(name));
  }
  return out;
}

std::set<std::string> canonical_set(const std::vector<san>& names) {
  std::set<std::string> out;
  for (const auto& n : names) out.insert(n.canonical());
  return out;
}

/// The certificate's subject alternative names, canonical; an unreadable entry yields "?" so that the
/// sets differ and the certificate is replaced.
std::set<std::string> certificate_sans(X509* cert) {
  std::set<std::string> out;
  names_ptr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                        static_cast<std::size_t>(ASN1_STRING_length(s)));
      std::transform(value.begin(), value.end(), value.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.insert("DNS:" + value);
    } else if (name->type == GEN_IPADD) {
      auto ip = ip_from_bytes(ASN1_STRING_get0_data(name->d.iPAddress), ASN1_STRING_length(name->d.iPAddress));
      out.insert(ip ? "IP:" + *ip : "?");
    } else {
      out.insert("?");
    }
  }
  return out;
}

// ---- files ------------------------------------------------------------------------------------------

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

x509_ptr read_certificate(const fs::path& path) {
  bio_ptr in(BIO_new_file(path.c_str(), "r"));
  if (!in) fail("cannot open " + path.string());
  x509_ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) fail(path.string() + " holds no PEM certificate");
  return cert;
}

pkey_ptr read_key(const fs::path& path) {
  bio_ptr in(BIO_new_file(path.c_str(), "r"));
  if (!in) fail("cannot open " + path.string());
  pkey_ptr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) fail(path.string() + " holds no PEM private key");
  return key;
}

/// Writes `bytes` to `path` atomically with `mode`: a temporary file beside it, fsync, rename.
void write_file_atomically(const fs::path& path, const char* bytes, std::size_t size, mode_t mode) {
  fs::path temporary = path;
  temporary += ".tmp";
  ::unlink(temporary.c_str());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw failure{"cannot create " + temporary.string() + ": " + std::strerror(errno)};
  bool ok = ::fchmod(fd, mode) == 0;  // the umask may have taken bits away; put back exactly `mode`
  for (std::size_t done = 0; ok && done < size;) {
    ssize_t n = ::write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  int saved = errno;
  ok = ok && ::fsync(fd) == 0;
  if (!ok) saved = errno;
  ::close(fd);
  if (ok && ::rename(temporary.c_str(), path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    ::unlink(temporary.c_str());
    throw failure{"cannot write " + path.string() + ": " + std::strerror(saved)};
  }
}

void write_certificate(const fs::path& path, X509* cert) {
  bio_ptr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert) != 1) fail("cannot encode " + path.string());
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  write_file_atomically(path, data, static_cast<std::size_t>(size), 0644);
}

void write_key(const fs::path& path, EVP_PKEY* key) {
  // Secure memory BIO: the PEM text is wiped when the BIO is freed.
  bio_ptr out(BIO_new(BIO_s_secmem()));
  if (!out || PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("cannot encode the key for " + path.string());
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(out.get(), &data);
  write_file_atomically(path, data, static_cast<std::size_t>(size), 0600);
}

// ---- certificates -----------------------------------------------------------------------------------

pkey_ptr make_p256_key() {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("cannot generate an EC P-256 key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) fail(std::string("cannot add extension ") + OBJ_nid2sn(nid));
}

/// A v3 certificate for `key` with a random 159-bit serial, `subject_cn`, and the validity window.
x509_ptr new_certificate(EVP_PKEY* key, const std::string& subject_cn, std::time_t not_before,
                         std::time_t not_after) {
  x509_ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) fail("cannot create a certificate");
  bn_ptr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    fail("cannot make a certificate serial number");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) == nullptr) {
    fail("cannot set the certificate validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add = [&](const char* field, const std::string& value) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                   -1, -1, 0) != 1) {
      fail("cannot set the certificate subject");
    }
  };
  add("O", "Firebreak");
  add("CN", subject_cn);
  if (X509_set_pubkey(cert.get(), key) != 1) fail("cannot set the certificate key");
  return cert;
}

struct ca {
  x509_ptr cert;
  pkey_ptr key;  // null when the CA key is not on this host
};

ca make_ca(std::chrono::system_clock::time_point now) {
  ca out;
  out.key = make_p256_key();
  // A random tag in the name tells this portal's CA apart from another portal's in a trust store.
  bn_ptr tag(BN_new());
  if (!tag || BN_rand(tag.get(), 32, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) fail("cannot make a CA tag");
  char* hex = BN_bn2hex(tag.get());
  std::string cn = std::string("Firebreak private CA ") + (hex ? hex : "");
  OPENSSL_free(hex);

  out.cert = new_certificate(out.key.get(), cn, to_time_t(now - clock_skew), to_time_t(now + ca_validity));
  if (X509_set_issuer_name(out.cert.get(), X509_get_subject_name(out.cert.get())) != 1) fail("cannot set the CA issuer");
  add_extension(out.cert.get(), out.cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_extension(out.cert.get(), out.cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(out.cert.get(), out.cert.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(out.cert.get(), out.key.get(), EVP_sha256()) == 0) fail("cannot sign the CA certificate");
  return out;
}

struct server_identity {
  x509_ptr cert;
  pkey_ptr key;
};

server_identity make_server_certificate(const ca& authority, const std::vector<san>& names,
                                        std::chrono::system_clock::time_point now) {
  server_identity out;
  out.key = make_p256_key();
  // Never past the CA: a chain is only as valid as its shortest link.
  std::time_t not_after = to_time_t(now + server_validity);
  if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(authority.cert.get()), not_after) < 0) {
    std::tm ca_end{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(authority.cert.get()), &ca_end) != 1) fail("cannot read the CA's expiry");
    not_after = ::timegm(&ca_end);
  }
  out.cert = new_certificate(out.key.get(), names.front().value, to_time_t(now - clock_skew), not_after);
  if (X509_set_issuer_name(out.cert.get(), X509_get_subject_name(authority.cert.get())) != 1) {
    fail("cannot set the server certificate issuer");
  }
  add_extension(out.cert.get(), authority.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(out.cert.get(), authority.cert.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(out.cert.get(), authority.cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(out.cert.get(), authority.cert.get(), NID_subject_key_identifier, "hash");
  add_extension(out.cert.get(), authority.cert.get(), NID_authority_key_identifier, "keyid:always");

  // Built entry by entry rather than from "DNS:a,IP:b" text, so no name can smuggle in another entry.
  names_ptr sans(sk_GENERAL_NAME_new_null());
  if (!sans) fail("cannot allocate the subject alternative names");
  for (const auto& name : names) {
    GENERAL_NAME* entry = GENERAL_NAME_new();
    if (!entry) fail("cannot allocate a subject alternative name");
    if (name.is_ip) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.value.c_str());
      if (!ip) {
        GENERAL_NAME_free(entry);
        fail("cannot encode IP address " + name.value);
      }
      GENERAL_NAME_set0_value(entry, GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (!dns || ASN1_STRING_set(dns, name.value.data(), static_cast<int>(name.value.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(entry);
        fail("cannot encode DNS name " + name.value);
      }
      GENERAL_NAME_set0_value(entry, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(sans.get(), entry) == 0) {
      GENERAL_NAME_free(entry);
      fail("cannot add a subject alternative name");
    }
  }
  if (X509_add1_ext_i2d(out.cert.get(), NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    fail("cannot add the subject alternative names");
  }
  if (X509_sign(out.cert.get(), authority.key.get(), EVP_sha256()) == 0) fail("cannot sign the server certificate");
  return out;
}

/// True when `cert` is valid at `now` and stays valid for renew_before more.
bool fresh(X509* cert, std::chrono::system_clock::time_point now) {
  return ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert), to_time_t(now)) <= 0 &&
         ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), to_time_t(now + renew_before)) > 0;
}

/// Why the server files in `dir` cannot be reused, or nullopt when they can.
std::optional<std::string> server_unusable(const fs::path& cert_path, const fs::path& key_path, X509* ca_cert,
                                           const std::set<std::string>& wanted,
                                           std::chrono::system_clock::time_point now) {
  if (!file_exists(cert_path) || !file_exists(key_path)) return "no server certificate yet";
  x509_ptr cert;
  pkey_ptr key;
  try {
    cert = read_certificate(cert_path);
    key = read_key(key_path);
  } catch (const failure& f) {
    return f.message;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "the server key does not belong to the server certificate";
  }
  EVP_PKEY* ca_key = X509_get0_pubkey(ca_cert);
  if (ca_key == nullptr || X509_verify(cert.get(), ca_key) != 1) {
    ERR_clear_error();
    return "the server certificate is not signed by the CA";
  }
  if (!fresh(cert.get(), now)) return "the server certificate expires within 30 days";
  if (certificate_sans(cert.get()) != wanted) return "the requested host names and addresses changed";
  struct stat st {};
  if (::stat(key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    logger()->warn("{} may be read by others than its owner (mode {:o}); chmod 600 it", key_path.string(),
                   st.st_mode & 0777);
  }
  return std::nullopt;
}

}  // namespace

bootstrap_result ensure_certificates(const std::filesystem::path& dir,
                                     const std::vector<std::string>& hostnames_and_ips,
                                     std::chrono::system_clock::time_point now) {
  bootstrap_result result;
  const fs::path ca_cert_path = dir / ca_cert_file;
  const fs::path ca_key_path = dir / ca_key_file;
  const fs::path server_cert_path = dir / server_cert_file;
  const fs::path server_key_path = dir / server_key_file;
  auto log = logger();
  try {
    auto names = parse_names(hostnames_and_ips);
    auto wanted = canonical_set(names);

    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      if (!fs::create_directories(dir, ec) && ec) throw failure{"cannot create " + dir.string() + ": " + ec.message()};
      fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    }

    ca authority;
    if (file_exists(ca_cert_path)) {
      authority.cert = read_certificate(ca_cert_path);
      if (ASN1_TIME_cmp_time_t(X509_get0_notAfter(authority.cert.get()), to_time_t(now + renew_before)) <= 0) {
        log->warn("the private CA in {} expires within 30 days: making a new one; clients and gateways must trust "
                  "the new {}",
                  dir.string(), ca_cert_path.string());
        authority.cert.reset();
      } else if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(authority.cert.get()), to_time_t(now)) > 0) {
        // Not valid yet: the clock is more likely wrong (no RTC, no NTP yet) than the CA. Replacing it
        // would cut off every peer that trusts it, so keep it.
        log->warn("the private CA in {} is not valid yet by this host's clock; is the clock right?", dir.string());
      }
    }
    if (!authority.cert) {
      // No CA certificate (or a stale one) means nobody can rely on the old one: a stray key is replaced.
      authority = make_ca(now);
      write_key(ca_key_path, authority.key.get());
      write_certificate(ca_cert_path, authority.cert.get());
      result.ca_created = true;
      log->info("made a private CA: peers must trust {}", ca_cert_path.string());
    }

    auto why = result.ca_created ? std::optional<std::string>("a new CA")
                                 : server_unusable(server_cert_path, server_key_path, authority.cert.get(), wanted, now);
    if (why) {
      if (!authority.key) {
        if (!file_exists(ca_key_path)) {
          throw failure{"a new server certificate is needed (" + *why + ") but the CA key " + ca_key_path.string() +
                        " is not here: put it back, or remove " + ca_cert_path.string() +
                        " to make a new CA (peers must then trust the new one)"};
        }
        authority.key = read_key(ca_key_path);
        if (X509_check_private_key(authority.cert.get(), authority.key.get()) != 1) {
          ERR_clear_error();
          throw failure{ca_key_path.string() + " is not the key of " + ca_cert_path.string()};
        }
      }
      auto server = make_server_certificate(authority, names, now);
      write_key(server_key_path, server.key.get());
      write_certificate(server_cert_path, server.cert.get());
      result.created = true;
      log->info("made a server certificate in {} ({})", server_cert_path.string(), *why);
    }
  } catch (const failure& f) {
    result.error = f.message;
    return result;
  } catch (const std::exception& e) {
    result.error = std::string("cannot prepare TLS certificates in ") + dir.string() + ": " + e.what();
    return result;
  }
  result.ca_cert_path = ca_cert_path;
  result.server_cert_path = server_cert_path;
  result.server_key_path = server_key_path;
  return result;
}

}  // namespace firebreak::websocket
