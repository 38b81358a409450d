#include "core/tls/fingerprint.h"

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <memory>

#include "core/hash/sha256.h"

namespace mamori::tls {

Result<std::string> fingerprint(X509* cert) {
  if (!cert) return fail_msg("fingerprint a certificate", "", "no certificate");
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  if (n <= 0) return fail_msg("fingerprint a certificate", "", "cannot encode it as DER");
  std::string fp = hash::sha256(std::string_view(reinterpret_cast<char*>(der), size_t(n))).hex();
  OPENSSL_free(der);
  return fp;
}

Result<std::string> fingerprint_of_pem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free_all);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  if (!cert) return fail_msg("read a certificate", "", "not a PEM certificate");
  return fingerprint(cert.get());
}

}  // namespace mamori::tls
