#include "manager/server/identity.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/fs/admin_files.h"
#include "core/tls/fingerprint.h"

namespace mamori::manager {
namespace {

constexpr size_t kMaxPem = 64 * 1024;
constexpr long kValidSeconds = 10L * 366 * 86400;

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

tl::unexpected<Error> ssl_fail(std::string op) {
  return fail_msg(std::move(op), "", "OpenSSL failed (out of memory?)");
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

struct Pair {
  std::string cert_pem;
  std::string key_pem;
};

Result<Pair> make_pair(const std::string& host_name) {
  PKeyCtx kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!kctx || EVP_PKEY_keygen_init(kctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx.get(), NID_X9_62_prime256v1) <= 0 ||
      EVP_PKEY_keygen(kctx.get(), &raw) <= 0)
    return ssl_fail("make the manager's key");
  PKey key(raw);

  Cert cert(X509_new());
  if (!cert) return ssl_fail("make the manager's certificate");
  std::string serial;
  serial = MAMORI_TRY(random_bytes(16));
  serial[0] = static_cast<char>(serial[0] & 0x7f);  // positive
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()),
                         static_cast<int>(serial.size()), nullptr);
  const std::string cn = host_name.substr(0, 64);  // the CN's length limit
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string san = (is_ip(host_name) ? "IP:" : "DNS:") + host_name;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  Ext ext_san(X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str()));
  Ext ext_bc(X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints, "critical,CA:FALSE"));
  Ext ext_ku(X509V3_EXT_conf_nid(nullptr, &v3, NID_key_usage, "critical,digitalSignature"));
  Ext ext_eku(X509V3_EXT_conf_nid(nullptr, &v3, NID_ext_key_usage, "serverAuth"));
  const bool ok =
      bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) &&
      X509_set_version(cert.get(), 2) && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidSeconds) &&
      X509_set_pubkey(cert.get(), key.get()) &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) &&
      X509_set_issuer_name(cert.get(), name) && ext_san && ext_bc && ext_ku && ext_eku &&
      X509_add_ext(cert.get(), ext_san.get(), -1) && X509_add_ext(cert.get(), ext_bc.get(), -1) &&
      X509_add_ext(cert.get(), ext_ku.get(), -1) && X509_add_ext(cert.get(), ext_eku.get(), -1) &&
      X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  BN_free(bn);
  if (!ok) return ssl_fail("sign the manager's certificate");

  Bio cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  if (!cb || !kb || !PEM_write_bio_X509(cb.get(), cert.get()) ||
      !PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
    return ssl_fail("write the manager's certificate");
  return Pair{bio_text(cb.get()), bio_text(kb.get())};
}

// The file's content, or nullopt when it does not exist; `max_mode`: refuse group/other
// access beyond it.
Result<std::optional<std::string>> read_optional(const std::string& path, bool secret) {
  auto fd = fs::open_admin_read(path);
  if (!fd) {
    if (fd.error().errnum == ENOENT) return std::optional<std::string>();
    return tl::unexpected(std::move(fd).error());
  }
  struct stat st = {};
  if (::fstat(fd->get(), &st) != 0) return fail_errno("fstat", path);
  if (secret && (st.st_mode & 077) != 0)
    return fail("read the manager's key", path, EPERM,
                fmt::format("is mode {:04o}: the private key must be readable by its owner "
                            "alone (chmod 600 it)",
                            st.st_mode & 07777));
  fd->reset();
  return std::optional<std::string>(MAMORI_TRY(fs::read_small_file(path, kMaxPem)));
}

}  // namespace

Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return fail_errno("getrandom", "");
    got += static_cast<size_t>(r);
  }
  return out;
}

Result<Identity> load_or_create_identity(Env& env, const std::string& state_dir,
                                         const std::string& host_name) {
  Identity id;
  id.cert_path = state_dir + "/manager.crt";
  id.key_path = state_dir + "/manager.key";
  auto cert = MAMORI_TRY(read_optional(id.cert_path, false));
  auto key = MAMORI_TRY(read_optional(id.key_path, true));
  if (!cert && !key) {
    Pair p = MAMORI_TRY(make_pair(host_name));
    // The key first: a crash in between leaves a key without a certificate, refused
    // below with the way out, never a certificate whose key is lost.
    if (!MAMORI_TRY(fs::create_file_exclusive(env, id.key_path, p.key_pem, 0600)) ||
        !MAMORI_TRY(fs::create_file_exclusive(env, id.cert_path, p.cert_pem, 0644)))
      return fail("create the manager's certificate", state_dir, EEXIST,
                  "another process made one at the same time");
    cert = p.cert_pem;
    key = p.key_pem;
    id.created = true;
  } else if (!cert || !key) {
    const std::string& missing = cert ? id.key_path : id.cert_path;
    return fail("load the manager's certificate", missing, ENOENT,
                "is missing while its pair exists: restore it, or delete both manager.crt and "
                "manager.key to make a new pair (agents then need new tokens)");
  }
  id.cert_pem = std::move(*cert);
  id.key_pem = std::move(*key);
  id.fingerprint = MAMORI_TRY(tls::fingerprint_of_pem(id.cert_pem));
  return id;
}

}  // namespace mamori::manager
