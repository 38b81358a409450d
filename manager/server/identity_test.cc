#include "manager/server/identity.h"

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/hash/sha256.h"
#include "core/proto/channel.h"
#include "core/tls/fingerprint.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

mode_t mode_of(const std::string& path) {
  struct stat st = {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(Identity, MadeOnceThenLoadedAsItIs) {
  testing::TempDir dir;
  RealEnv env;
  auto a = load_or_create_identity(env, dir.path(), "mgr.example");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(mode_of(a->key_path), 0600u);
  EXPECT_EQ(mode_of(a->cert_path), 0644u);
  EXPECT_TRUE(proto::channel::is_fingerprint(a->fingerprint)) << a->fingerprint;

  auto b = load_or_create_identity(env, dir.path(), "other.example");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->fingerprint, a->fingerprint);
  EXPECT_EQ(b->key_pem, a->key_pem);
}

TEST(Identity, CertificateIsP256SelfSignedWithTheHostName) {
  testing::TempDir dir;
  RealEnv env;
  auto id = load_or_create_identity(env, dir.path(), "mgr.example");
  ASSERT_TRUE(id);
  BIO* bio = BIO_new_mem_buf(id->cert_pem.data(), static_cast<int>(id->cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "mgr.example");
  EXPECT_EQ(X509_check_host(cert, "mgr.example", 0, 0, nullptr), 1);  // the SAN
  EVP_PKEY* key = X509_get0_pubkey(cert);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_base_id(key), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_bits(key), 256);
  EXPECT_EQ(X509_verify(cert, key), 1);  // signed by its own key
  // The fingerprint is SHA-256 of the DER.
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  ASSERT_GT(n, 0);
  EXPECT_EQ(hash::sha256(std::string_view(reinterpret_cast<char*>(der), size_t(n))).hex(),
            id->fingerprint);
  OPENSSL_free(der);
  EXPECT_EQ(tls::fingerprint(cert).value(), id->fingerprint);
  X509_free(cert);
  EXPECT_EQ(tls::fingerprint_of_pem(id->cert_pem).value(), id->fingerprint);
}

TEST(Identity, HalfAPairOrALooseKeyIsRefused) {
  testing::TempDir dir;
  RealEnv env;
  ASSERT_TRUE(load_or_create_identity(env, dir.path(), "h"));
  ASSERT_EQ(::chmod((dir / "manager.key").c_str(), 0644), 0);
  auto loose = load_or_create_identity(env, dir.path(), "h");
  ASSERT_FALSE(loose);
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(::chmod((dir / "manager.key").c_str(), 0600), 0);
  ASSERT_EQ(::unlink((dir / "manager.crt").c_str()), 0);
  auto half = load_or_create_identity(env, dir.path(), "h");
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().message().find("delete both"), std::string::npos);
}

TEST(Identity, RandomBytes) {
  auto r = random_bytes(32);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 32u);
  EXPECT_NE(*r, random_bytes(32).value());
  EXPECT_TRUE(proto::channel::is_secret(proto::channel::base64url(*r)));
}

}  // namespace
}  // namespace mamori::manager
